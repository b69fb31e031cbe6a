package bench

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/goswoole/swoole/bench/load"
	"github.com/goswoole/swoole/bench/servers"
)

// serverCase is one server the tests start in this process: a name of servers.Names and
// its options.
type serverCase struct {
	name   string // the subtest's
	server string
	opts   servers.Options
}

// serverCases lists every server of servers.Names with o, and goswoole in ModeThread (one
// reactor loop, two worker loops; threadpair.sh's goswoole-thread) with o's MaxConn.
func serverCases(o servers.Options) []serverCase {
	var cs []serverCase
	for _, name := range servers.Names {
		cs = append(cs, serverCase{name: name, server: name, opts: o})
	}
	return append(cs, serverCase{name: "goswoole-thread", server: "goswoole",
		opts: servers.Options{MaxConn: o.MaxConn, Thread: true, Reactors: 1, Workers: 2}})
}

// TestModes runs the idle and connect modes against every server (in this process, so the
// idle figures are not the server's alone: only that the modes work is checked), with the
// options the matrix uses.
func TestModes(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	for _, sc := range serverCases(servers.Options{Multicore: true, MaxConn: 1000}) {
		t.Run(sc.name, func(t *testing.T) {
			srv, err := servers.StartWith(sc.server, "127.0.0.1:0", sc.opts)
			if errors.Is(err, servers.ErrUnsupported) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := srv.Close(); err != nil {
					t.Error(err)
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			self := load.ProcTree{Pid: os.Getpid()}
			idle, err := load.Idle(ctx, load.IdleConfig{Addr: srv.Addr(), Conns: 200, Ping: 64, Settle: time.Millisecond, Probe: self})
			if err != nil {
				t.Fatal(err)
			}
			if idle.Conns != 200 || idle.RSSAfter <= 0 {
				t.Errorf("idle: %v", idle)
			}
			conn, err := load.Connect(ctx, load.ConnectConfig{Addr: srv.Addr(), Workers: 5, Size: 64,
				Duration: 150 * time.Millisecond, Warmup: 10 * time.Millisecond, Probe: self})
			if err != nil {
				t.Fatal(err)
			}
			if conn.Conns == 0 || conn.Errors != 0 || conn.ServerCPU < 0 { // CPU time comes in 10 ms ticks
				t.Errorf("connect: %v", conn)
			}
		})
	}
}

// TestSwooleMaxConn checks that -maxconn reaches goswoole's max_connection: with 5, the
// connections above it are closed by the server and the idle run fails.
func TestSwooleMaxConn(t *testing.T) {
	srv, err := servers.StartWith("goswoole", "127.0.0.1:0", servers.Options{MaxConn: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	probe := load.ProcTree{Pid: os.Getpid()}
	if _, err := load.Idle(ctx, load.IdleConfig{Addr: srv.Addr(), Conns: 5, Ping: 8, Settle: time.Millisecond, Probe: probe, IOTimeout: 5 * time.Second}); err != nil {
		t.Fatalf("5 connections under max_connection 5: %v", err)
	}
	if _, err := load.Idle(ctx, load.IdleConfig{Addr: srv.Addr(), Conns: 20, Ping: 8, Settle: time.Millisecond, Probe: probe, IOTimeout: 5 * time.Second}); err == nil {
		t.Error("20 connections under max_connection 5: no error")
	}
}
