package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// asMain makes the test binary run the example's main (its workers and user process are
// this binary started again, with the same environment).
const asMain = "GOSWOOLE_EXAMPLE_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// TestBroadcast runs the example (a manager, one worker, the user process): a line sent by
// one client reaches every client.
func TestBroadcast(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-port", "0", "-workers", "1")
	cmd.Env = append(os.Environ(), asMain+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("the example exited with %v", err)
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("the example did not stop within 20s of SIGTERM")
		}
	}()
	var addr string
	select {
	case l := <-lines:
		m := regexp.MustCompile(`^broadcast on (127\.0\.0\.1:\d+):`).FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("first line %q", l)
		}
		addr = m[1]
	case <-time.After(20 * time.Second):
		t.Fatal("the example did not start")
	}
	var clients []*bufio.Reader
	var conns []net.Conn
	for range 3 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		conns = append(conns, c)
		clients = append(clients, bufio.NewReader(c))
	}
	// readUntil reads client i's lines until want (earlier broadcasts may come first).
	readUntil := func(i int, want string) {
		t.Helper()
		for {
			l, err := clients[i].ReadString('\n')
			if err != nil {
				t.Fatalf("client %d: waiting for %q: %v", i, want, err)
			}
			if l == want {
				return
			}
		}
	}
	// Each client's own line comes back to it: then its connection is in the table.
	for i, c := range conns {
		msg := "hi " + string(rune('0'+i)) + "\n"
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		readUntil(i, msg)
	}
	// Now a line reaches every client.
	if _, err := conns[0].Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	for i := range clients {
		readUntil(i, "hello\n")
	}
	go func() {
		for range lines { // the rest of stdout, so that the example never blocks on it
		}
	}()
}
