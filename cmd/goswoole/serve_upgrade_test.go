package main

import (
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestServeUpgradesOnSIGHUP: SIGHUP to "serve" (one process) starts the executable again on
// the same port (its listen line comes on the same stdout, pid_file names it); a
// connection opened before keeps echoing through the old process until it closes, a new
// one echoes through the new process, the old one exits 0 and the new one stops on SIGTERM.
func TestServeUpgradesOnSIGHUP(t *testing.T) {
	// The new process is the old one's child: once the old one exits it is re-parented
	// here, where its exit status can be read.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	pidFile := t.TempDir() + "/gs.pid"
	c := startChild(t, "serve", "--port", "0", "--pid-file", pidFile)
	l := c.line(10 * time.Second)
	m := listenLine.FindStringSubmatch(l)
	if m == nil {
		t.Fatalf("first line %q does not match %v", l, listenLine)
	}
	addr := net.JoinHostPort(m[1], m[2])
	old := c.cmd.Process.Pid
	echo := func(nc net.Conn, msg string) {
		t.Helper()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Write([]byte(msg)); err != nil {
			t.Fatalf("write: %v", err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(nc, got); err != nil || string(got) != msg {
			t.Fatalf("echo of %q: %q, %v; stderr:\n%s", msg, got, err, c.stderr)
		}
	}
	before, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	echo(before, "before")

	if err := c.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if l := c.line(20 * time.Second); l != "goswoole: echo server listening on "+addr+" (mode base, 1 worker)" {
		t.Fatalf("after SIGHUP: %q, want the new process's listen line on the same address; stderr:\n%s", l, c.stderr)
	}
	var newPID int
	deadline := time.Now().Add(10 * time.Second)
	for newPID == 0 || newPID == old {
		if time.Now().After(deadline) {
			t.Fatalf("pid_file still names %d, not the new process; stderr:\n%s", newPID, c.stderr)
		}
		b, _ := os.ReadFile(pidFile)
		newPID, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		time.Sleep(5 * time.Millisecond)
	}
	reaped := false // once reaped, the pid may be another process's: never signal it then
	t.Cleanup(func() {
		if !reaped {
			_ = unix.Kill(newPID, unix.SIGKILL)
			reap(newPID, 10*time.Second)
		}
	})

	after, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("a connection after the upgrade: %v", err)
	}
	defer after.Close()
	echo(after, "after")
	echo(before, "still") // the old process drains: it serves its connection on
	before.Close()

	if err := unix.Kill(newPID, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// stdout closes once both processes are gone (they share it).
	if code := c.exitCode(20 * time.Second); code != 0 {
		t.Fatalf("the old process: exit code %d, want 0; stderr:\n%s", code, c.stderr)
	}
	ws, ok := reap(newPID, 20*time.Second)
	reaped = ok
	if !ok || !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("the new process: %v (reaped %v), want exit status 0; stderr:\n%s", ws, ok, c.stderr)
	}
	if rest := c.rest(5 * time.Second); strings.Count(strings.Join(rest, "\n"), "goswoole: echo server stopped") != 2 {
		t.Errorf("stdout after the listen lines = %q, want both processes' stop lines", rest)
	}
	if !strings.Contains(c.stderr.String(), "goswoole: upgraded") {
		t.Errorf("the outcome was not logged; stderr:\n%s", c.stderr)
	}
}

// reap waits up to d for pid, a child of this process (or re-parented to it), to exit.
func reap(pid int, d time.Duration) (unix.WaitStatus, bool) {
	var ws unix.WaitStatus
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		n, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if n == pid {
			return ws, true
		}
		if err != nil && err != unix.EINTR {
			return ws, false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return ws, false
}
