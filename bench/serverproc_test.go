package bench

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildCommand builds the bench command ./cmd/<name> into the test's temporary directory.
func buildCommand(t *testing.T, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a command")
	}
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("no /proc")
	}
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/"+name).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serverProc is a bench server command a test started: the address of each of its
// "listening on" lines (one per process that prints one), and its end.
type serverProc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	lines  chan string
	exited chan error
	ended  bool
}

// startServerProc starts bin with args; Cleanup kills it if the test did not stop it.
func startServerProc(t *testing.T, bin string, args ...string) *serverProc {
	t.Helper()
	p := &serverProc{cmd: exec.Command(bin, args...), lines: make(chan string, 16), exited: make(chan error, 1)}
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, a, ok := strings.Cut(sc.Text(), "listening on "); ok {
				p.lines <- a
			}
		}
		p.exited <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if !p.ended {
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// listening waits for the next "listening on" line and returns its address.
func (p *serverProc) listening(t *testing.T) string {
	t.Helper()
	select {
	case a := <-p.lines:
		return a
	case err := <-p.exited:
		p.ended = true
		t.Fatalf("exited before listening: %v\n%s", err, p.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatal("no 'listening on' line within 20s")
	}
	return ""
}

// stop sends SIGTERM and waits until the command has exited, cleanly.
func (p *serverProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.ended = true
		if err != nil {
			t.Errorf("exit: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("not stopped within 20s of SIGTERM")
	}
}

// waitGone fails the test unless every pid is gone (or a zombie) within 10 s.
func waitGone(t *testing.T, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for procAlive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d still runs 10s after the server stopped", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// procAlive reports whether pid exists and is not a zombie.
func procAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}
