package bench

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goswoole/swoole/bench/load"
)

// TestSwooleWorkersCommand builds cmd/swooleecho and runs it as the matrix's goswoole-2w row
// does (-workers 2: a manager and two worker processes) and as its goswoole-proc row does
// (-mode process -workers 2: a master holding the connections and two worker processes): it
// echoes correctly, prints its line from each of the three processes, the process tree that
// the probes sum has the three processes, and SIGTERM stops them all.
func TestSwooleWorkersCommand(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"base", []string{"-workers", "2"}},
		{"process", []string{"-mode", "process", "-workers", "2"}},
	} {
		t.Run(tc.name, func(t *testing.T) { testSwooleWorkersCommand(t, tc.args) })
	}
}

func testSwooleWorkersCommand(t *testing.T, args []string) {
	if testing.Short() {
		t.Skip("builds a command")
	}
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("no /proc")
	}
	bin := filepath.Join(t.TempDir(), "swooleecho")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/swooleecho").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0", "-maxconn", "1000", "-nofile"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addrc := make(chan string, 3)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, a, ok := strings.Cut(sc.Text(), "listening on "); ok {
				addrc <- a
			}
		}
		exited <- cmd.Wait()
	}()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(20 * time.Second):
		t.Fatal("no 'listening on' line within 20s")
	}
	pid := cmd.Process.Pid
	// Every worker prints its line once its loop runs; wait for the two.
	for range 2 {
		select {
		case a := <-addrc:
			if a != addr {
				t.Errorf("a process printed %s, another %s", a, addr)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the workers did not all start within 20s")
		}
	}
	tree, err := load.Tree(pid)
	if err != nil || len(tree) != 3 {
		t.Errorf("process tree %v, %v: want the manager (or master) and 2 workers", tree, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := load.Run(ctx, load.Config{Addr: addr, Conns: 20, Size: 512, Depth: 4, Messages: 4000, Verify: true,
		Probe: load.ProcTree{Pid: pid}})
	if err != nil {
		t.Fatal(err)
	}
	// Server CPU time is read in clock ticks (10 ms): a quick run may show 0, so only the
	// count is checked.
	if res.Msgs != 4000 || res.ServerCPU < 0 {
		t.Errorf("%d round trips, server CPU %v", res.Msgs, res.ServerCPU)
	}
	idle, err := load.Idle(ctx, load.IdleConfig{Addr: addr, Conns: 100, Ping: 8, Settle: time.Millisecond, Probe: load.ProcTree{Pid: pid}})
	if err != nil || idle.RSSAfter <= idle.RSSBefore/2 {
		t.Errorf("idle: %v, %v", idle, err)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("not stopped within 20s of SIGTERM")
	}
	for _, p := range tree[1:] {
		if err := syscall.Kill(p, 0); err == nil {
			if b, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat"); !strings.Contains(string(b), ") Z ") {
				t.Errorf("worker %d still runs after the manager stopped", p)
			}
		}
	}
}
