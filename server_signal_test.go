package swoole_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// runChild is the child side of the process tests: TestMain calls it when childEnv is set,
// and the test binary exits with its result.
func runChild(role string) int {
	switch role {
	case "sigterm":
		return sigtermChild()
	}
	fmt.Fprintf(os.Stderr, "unknown %s role %q\n", childEnv, role)
	return 2
}

// sigtermChild runs a server that prints "port N", then one "event NAME" line per event as
// it happens, and "exit" once Start has returned nil. A watchdog ends it if the parent
// never sends SIGTERM.
func sigtermChild() int {
	time.AfterFunc(60*time.Second, func() {
		fmt.Println("watchdog")
		os.Exit(3)
	})
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", args...)
	}
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeBase, swoole.SockTCP)
	if err != nil {
		say("error %v", err)
		return 1
	}
	if err := s.SetOptions(map[string]any{"log_level": 6, "max_connection": 64}); err != nil {
		say("error %v", err)
		return 1
	}
	s.OnStart(func(*swoole.Server) { say("event start") })
	s.OnWorkerStart(func(*swoole.Server, int) { say("event workerstart") })
	s.OnConnect(func(*swoole.Server, int64, int) { say("event connect") })
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		say("event receive")
		if err := s.Send(fd, data); err != nil {
			say("error %v", err)
		}
	})
	s.OnClose(func(*swoole.Server, int64, int) { say("event close") })
	s.OnBeforeShutdown(func(*swoole.Server) { say("event beforeshutdown") })
	s.OnWorkerStop(func(*swoole.Server, int) { say("event workerstop") })
	s.OnShutdown(func(*swoole.Server) { say("event shutdown") })
	say("port %d", s.Ports()[0].Port())
	if err := s.Start(); err != nil {
		say("error %v", err)
		return 1
	}
	say("exit")
	return 0
}

// TestSIGTERM runs a server in a child process, connects, sends SIGTERM to the child and
// checks that it shuts down gracefully: the open connection gets EOF, the events come in
// order, and the process exits 0.
func TestSIGTERM(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=sigterm")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait() // after stdout is drained, as StdoutPipe requires
	}()
	waited := false
	t.Cleanup(func() {
		if !waited {
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})

	var got []string
	next := func(what string) string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the child's output ended while waiting for %s; got %q", what, got)
			}
			got = append(got, l)
			return l
		case <-time.After(startTimeout):
			t.Fatalf("no %s from the child within %v; got %q", what, startTimeout, got)
		}
		return ""
	}
	waitLine := func(want string) {
		t.Helper()
		for l := next(want); l != want; l = next(want) {
			if strings.HasPrefix(l, "error") || l == "watchdog" {
				t.Fatalf("child: %s", l)
			}
		}
	}

	var port int
	if _, err := fmt.Sscanf(next("the port"), "port %d", &port); err != nil {
		t.Fatalf("first line %q: %v", got[0], err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// The child listens before it prints its port; dial until it serves.
	var c net.Conn
	waitFor(t, startTimeout, "the child to accept", func() bool {
		c, err = net.DialTimeout("tcp", addr, ioTimeout)
		return err == nil
	})
	defer c.Close()
	roundTrip(t, c, "hello")
	waitLine("event receive")

	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatalf("kill -TERM %d: %v", cmd.Process.Pid, err)
	}
	if _, err := readUntilClosed(t, c); err != nil {
		t.Errorf("the open connection ended with %v at SIGTERM, want EOF", err)
	}
	waitLine("exit")
	for l := range lines { // anything printed after "exit" is wrong
		got = append(got, l)
	}
	select {
	case err := <-exited:
		waited = true
		if err != nil {
			t.Fatalf("the child exited with %v after SIGTERM, want status 0", err)
		}
	case <-time.After(startTimeout):
		t.Fatal("the child did not exit after SIGTERM")
	}
	var events []string
	for _, l := range got[1:] {
		events = append(events, strings.TrimPrefix(l, "event "))
	}
	want := []string{"start", "workerstart", "connect", "receive", "beforeshutdown", "close", "workerstop", "shutdown", "exit"}
	if !slices.Equal(events, want) {
		t.Errorf("the child's events:\n got %q\nwant %q", events, want)
	}
}
