package bench

import (
	"context"
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
	bin := buildCommand(t, "swooleecho")
	srv := startServerProc(t, bin, append([]string{"-addr", "127.0.0.1:0", "-maxconn", "1000", "-nofile"}, args...)...)
	addr := srv.listening(t)
	pid := srv.cmd.Process.Pid
	// Every worker prints its line once its loop runs; wait for the two.
	for range 2 {
		if a := srv.listening(t); a != addr {
			t.Errorf("a process printed %s, another %s", a, addr)
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

	srv.stop(t)
	waitGone(t, tree[1:]...)
}
