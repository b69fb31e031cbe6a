package swoole_test

// daemonize hands its bound sockets to the daemon and exits once the daemon serves: the port
// the starting process bound is served, by the daemon, the moment the starter has exited
// (it used to be closed, and bound again by the daemon later: free in between, and with
// port 0 another port altogether).

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole"
)

func init() {
	mpMoreServers["daemonport"] = dpServerMain
}

// dpServerMain: a daemonized echo server on port 0 (ModeBase in one process, or ModeProcess
// with mpEnvMode=process), pid_file and log_file in the test's directory. Every process
// logs "bound <port>" once NewServer has its port (the starter's line carries its pid).
func dpServerMain() int {
	mode := swoole.ModeBase
	if os.Getenv(mpEnvMode) == "process" {
		mode = swoole.ModeProcess
	}
	s, err := swoole.NewServer("127.0.0.1", 0, mode, swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	mpEvent("bound", s.Ports()[0].Port())
	dir := os.Getenv(mpEnvDir)
	set := swoole.Settings{WorkerNum: 1, Daemonize: true, PidFile: dir + "/pid", LogFile: dir + "/log", LogLevel: swoole.LogLevelWarning, MaxWaitTime: 3 * time.Second}
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) { _ = s.Send(fd, data) })
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// TestDaemonizeKeepsThePort: once the process that called Start has exited, the port it
// bound is served at once (a connection made right then echoes) by the daemon, which has
// written pid_file already.
func TestDaemonizeKeepsThePort(t *testing.T) {
	for _, mode := range []string{"base", "process"} {
		t.Run(mode, func(t *testing.T) {
			mpSubreaper.Do(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
			dir := t.TempDir()
			ms := &mpServer{t: t, dir: dir, exited: make(chan struct{})}
			t.Cleanup(func() { // stop the daemon (its pid_file names it) and its children
				b, _ := os.ReadFile(dir + "/pid")
				if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
					_ = unix.Kill(pid, unix.SIGTERM)
					if !mpGoneWithin(pid, mpTimeout) {
						t.Errorf("the daemon %d did not stop on SIGTERM", pid)
						_ = unix.Kill(pid, unix.SIGKILL)
					}
				}
				for _, e := range ms.events() {
					if !mpGoneWithin(e.PID, 5*time.Second) {
						t.Errorf("pid %d outlived the daemon", e.PID)
						_ = unix.Kill(e.PID, unix.SIGKILL)
					}
				}
			})
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), mpEnvServer+"=daemonport", mpEnvDir+"="+dir, mpEnvMode+"="+mode, "GORACE=atexit_sleep_ms=0")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("the starting process: %v\n%s", err, out)
			}
			// The starter has exited: its port must be served now, with no wait.
			port := -1
			for _, e := range ms.events() {
				if e.Name == "bound" && e.PID == cmd.Process.Pid {
					port = e.int(0)
				}
			}
			if port <= 0 {
				t.Fatalf("the starter logged no port\n%s", ms.output())
			}
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), mpTimeout)
			if err != nil {
				t.Fatalf("the starter's port %d right after it exited: %v (the port was free)", port, err)
			}
			defer c.Close()
			if _, err := os.Stat(dir + "/pid"); err != nil {
				t.Errorf("pid_file when the starter exited: %v (the daemon was not serving yet)", err)
			}
			_ = c.SetDeadline(time.Now().Add(mpTimeout))
			if _, err := c.Write([]byte("daemon")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 6)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "daemon" {
				t.Fatalf("echo on the starter's port %d: %q, %v\n%s", port, buf, err, ms.output())
			}
		})
	}
}
