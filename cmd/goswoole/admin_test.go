package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// cli runs the command in this process and returns its exit code, stdout and stderr.
func cli(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestCLIAdminNotRunning: reload, stop and stats say clearly that the server is not running.
func TestCLIAdminNotRunning(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "none.pid")
	stale := filepath.Join(dir, "stale.pid")
	if err := os.WriteFile(stale, []byte("2147483646\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.pid")
	if err := os.WriteFile(garbage, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A pid file left by a server that died, whose pid a live process (this one) has now:
	// no server holds the file, so nothing is signalled.
	reused := filepath.Join(dir, "reused.pid")
	if err := os.WriteFile(reused, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"reload", "stop", "stats"} {
		for _, c := range []struct{ file, want string }{
			{missing, "the server is not running: there is no pid file"},
			{stale, "the pid file is stale"},
			{garbage, "the pid file is stale"},
			{reused, "the pid file is stale"},
		} {
			code, _, stderr := cli(cmd, "--pid-file", c.file)
			if code != exitError || !strings.Contains(stderr, c.want) {
				t.Errorf("%s --pid-file %s: exit %d, stderr %q; want 1 and %q", cmd, filepath.Base(c.file), code, stderr, c.want)
			}
		}
		if code, _, stderr := cli(cmd); code != exitUsage || !strings.Contains(stderr, "give the server's pid file") {
			t.Errorf("%s without --pid-file: exit %d, stderr %q", cmd, code, stderr)
		}
	}
}

var procLine = regexp.MustCompile(`^\s+(\d+)\s+(\w+)\s+(\d+)\s+(\w+)$`)

// statsOf runs stats and returns its output and the worker pids it lists.
func statsOf(t *testing.T, pidFile string) (string, []int) {
	t.Helper()
	code, out, stderr := cli("stats", "--pid-file", pidFile)
	if code != 0 {
		t.Fatalf("stats: exit %d, stderr %q", code, stderr)
	}
	var pids []int
	for _, l := range strings.Split(out, "\n") {
		if m := procLine.FindStringSubmatch(l); m != nil && m[2] == "worker" {
			pid, _ := strconv.Atoi(m[3])
			pids = append(pids, pid)
		}
	}
	return out, pids
}

// TestCLIAdmin runs a server of two workers with a pid file and operates it with the CLI:
// stats printed, reload done (worker pids changed), stop done (no process left).
func TestCLIAdmin(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "server.pid")
	c := startChild(t, "serve", "--port", "0", "--workers", "2", "--pid-file", pidFile)
	l := c.line(20 * time.Second)
	m := regexp.MustCompile(`listening on (127\.0\.0\.1):(\d+) \(mode base, 2 workers\)$`).FindStringSubmatch(l)
	if m == nil {
		t.Fatalf("first line %q is not the listen line of 2 workers", l)
	}
	manager := c.cmd.Process.Pid

	var out string
	var old []int
	waitStats := func(what string, ok func([]int) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			out, old = statsOf(t, pidFile)
			if ok(old) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("stats never showed %s:\n%s", what, out)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	running := func(p []int) bool { return len(p) == 2 && p[0] > 0 && p[1] > 0 }
	waitStats("two running workers", running)
	for _, want := range []string{"manager_pid: " + strconv.Itoa(manager) + "\n", "worker_num: 2\n", "connection_num: 0\n", "processes:\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stats output lacks %q:\n%s", want, out)
		}
	}
	first := old

	// A client, counted by stats.
	nc, err := net.DialTimeout("tcp", net.JoinHostPort(m[1], m[2]), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Read(make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	waitStats("the connection", func([]int) bool { return strings.Contains(out, "connection_num: 1\n") })

	// Reload: new worker processes.
	code, stdout, stderr := cli("reload", "--pid-file", pidFile)
	if code != 0 || !strings.Contains(stdout, "reload of the workers requested") {
		t.Fatalf("reload: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	waitStats("new worker pids", func(p []int) bool {
		return running(p) && p[0] != first[0] && p[1] != first[1]
	})
	second := old

	// Stop: the whole tree exits.
	code, stdout, stderr = cli("stop", "--pid-file", pidFile)
	if code != 0 || !strings.Contains(stdout, "server stopped (pid "+strconv.Itoa(manager)+")") {
		t.Fatalf("stop: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code := c.exitCode(20 * time.Second); code != 0 {
		t.Errorf("the server exited with %d", code)
	}
	for _, pid := range append(append([]int{manager}, first...), second...) {
		deadline := time.Now().Add(10 * time.Second)
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d still runs after stop", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, f := range []string{pidFile, swoole.AdminSocketPath(pidFile), filepath.Dir(swoole.AdminSocketPath(pidFile))} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s is left after stop (%v)", f, err)
		}
	}
	if code, _, stderr := cli("stats", "--pid-file", pidFile); code != exitError || !strings.Contains(stderr, "not running") {
		t.Errorf("stats after stop: exit %d, stderr %q", code, stderr)
	}
}

// TestCLIStatsSingleProcess: a server of one process has no admin socket: stats says so;
// stop works.
func TestCLIStatsSingleProcess(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "one.pid")
	c := startChild(t, "serve", "--port", "0", "--pid-file", pidFile)
	c.line(20 * time.Second)
	code, _, stderr := cli("stats", "--pid-file", pidFile)
	if code != exitError || !strings.Contains(stderr, "serves no admin socket") {
		t.Errorf("stats of a single-process server: exit %d, stderr %q", code, stderr)
	}
	if code, stdout, stderr := cli("stop", "--pid-file", pidFile); code != 0 || !strings.Contains(stdout, "server stopped") {
		t.Fatalf("stop: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code := c.exitCode(20 * time.Second); code != 0 {
		t.Errorf("the server exited with %d", code)
	}
}
