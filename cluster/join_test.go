package cluster_test

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/goswoole/swoole"
	"github.com/goswoole/swoole/cluster"
)

func TestMain(m *testing.M) {
	if os.Getenv(envRole) != "" {
		os.Exit(runHostProcess())
	}
	if a := os.Getenv(envBroadcastClients); a != "" {
		os.Exit(runBroadcastClients(a)) // bench_test.go
	}
	goleak.VerifyTestMain(m)
}

// TestJoinRefusesSeveralProcesses: only servers whose connections live in one process join.
func TestJoinRefusesSeveralProcesses(t *testing.T) {
	cfg := cluster.Config{Cluster: "t", Node: "a"}
	for _, tc := range []struct {
		name string
		mode swoole.Mode
		set  swoole.Settings
	}{
		{"process", swoole.ModeProcess, swoole.Settings{}},
		{"base workers", swoole.ModeBase, swoole.Settings{WorkerNum: 2}},
		{"base task workers", swoole.ModeBase, swoole.Settings{TaskWorkerNum: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := swoole.NewServer("127.0.0.1", 0, tc.mode, swoole.SockTCP)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Set(tc.set); err != nil {
				t.Fatal(err)
			}
			_, err = cluster.Join(s, cfg)
			if code(err) != swoole.ErrOperationNotSupport {
				t.Fatalf("Join: %v, want code 507", err)
			}
			t.Log(err)
			if sock, err := s.GetSocket(); err == nil {
				_ = sock.Close()
			}
			_ = s.Shutdown()
		})
	}
}

// TestJoinBadConfig: a bad Config is 505, and nothing is registered.
func TestJoinBadConfig(t *testing.T) {
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeBase, swoole.SockTCP)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Shutdown() }()
	for _, cfg := range []cluster.Config{
		{Cluster: "", Node: "a"},
		{Cluster: "c", Node: "a.b"},
		{Cluster: "c", Node: "a", URL: "nats://x:4222", Embedded: cluster.Embedded{Port: 5}},
		{Cluster: "c", Node: "a", RequestTimeout: -1},
		{Cluster: "c", Node: "a", Tasks: 7},
	} {
		if _, err := cluster.Join(s, cfg); code(err) != swoole.ErrInvalidParams {
			t.Errorf("Join(%+v): %v, want code 505", cfg, err)
		}
	}
	if _, err := cluster.Join(nil, cluster.Config{Cluster: "c", Node: "a"}); code(err) != swoole.ErrInvalidParams {
		t.Errorf("Join(nil): %v", err)
	}
	if _, err := cluster.ParseSession("a/x"); code(err) != swoole.ErrSessionInvalidID {
		t.Errorf("ParseSession: %v", err)
	}
}

// TestOneHost: one node with an embedded NATS, in ModeBase and ModeThread: sessions, uids,
// broadcast, stats and tasks on one host; nothing of the node is left after Start returns.
func TestOneHost(t *testing.T) {
	for _, mode := range []swoole.Mode{swoole.ModeBase, swoole.ModeThread} {
		t.Run(mode.String(), func(t *testing.T) {
			defer goleak.VerifyNone(t)
			s, node, err := newHost(mode, cluster.Config{Cluster: "one", Node: "solo", Logger: quiet,
				Embedded: cluster.Embedded{StoreDir: t.TempDir()}})
			if err != nil {
				t.Fatal(err)
			}
			// Before Start: ENOTCONN.
			if _, err := node.Broadcast([]byte("x")); code(err) != 107 {
				t.Fatalf("Broadcast before Start: %v", err)
			}
			done := make(chan error, 1)
			go func() { done <- s.Start() }()
			stopped := false
			defer func() {
				if !stopped {
					_ = s.Shutdown()
					<-done
				}
			}()
			select {
			case <-node.Ready():
			case err := <-done:
				t.Fatalf("Start returned %v (node: %v)", err, node.Err())
			case <-time.After(20 * time.Second):
				t.Fatal("the node is not ready after 20 s")
			}
			port := s.Ports()[0].Port()
			a, b := dial(t, port), dial(t, port)
			sa := a.call("hello", "hi ", 10*time.Second)[3:]
			if got := b.call("bind 7", "", 10*time.Second); got != "bound" {
				t.Fatalf("bind: %q", got)
			}
			if got := a.call("touid 7 hello-7", "touid", 10*time.Second); got != "touid ok" {
				t.Fatalf("touid: %q", got)
			}
			b.expect("msg hello-7", 10*time.Second)
			if got := a.call("bcast all", "bcast", 10*time.Second); got != "bcast 2 0" {
				t.Fatalf("bcast: %q", got)
			}
			b.expect("msg all", 10*time.Second)
			if got := a.call("stats", "stats", 10*time.Second); got != "stats solo 0" {
				t.Fatalf("stats: %q", got)
			}
			if got := a.call("task x1", "task", 20*time.Second); got != "task done:x1" {
				t.Fatalf("task: %q", got)
			}
			if got := a.call("tasks 50 4 20000", "tasks", 60*time.Second); got != "tasks ok=50 bad=0 fail=0 " {
				t.Fatalf("tasks: %q", got)
			}
			// A handler that panics: the task is delivered again (after a second) and done.
			if got := a.call("task panic-once:p", "task", 20*time.Second); got != "task done:panic-once:p" {
				t.Fatalf("task whose handler panicked once: %q", got)
			}
			// Task with OnFinish: the result comes once, with the task's id.
			finished := make(chan string, 2)
			node.OnFinish(func(id string, result []byte) { finished <- id + " " + string(result) })
			id, err := node.Task([]byte("async"))
			if err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-finished:
				if got != id+" done:async" {
					t.Fatalf("OnFinish: %q, want %q", got, id+" done:async")
				}
			case <-time.After(20 * time.Second):
				t.Fatal("no OnFinish within 20 s")
			}
			sess, err := cluster.ParseSession(sa)
			if err != nil || !node.Exist(sess) {
				t.Fatalf("session %q: %v", sa, err)
			}
			// The bound client leaves: its uid entry goes.
			_ = b.conn.Close()
			waitFor(t, 10*time.Second, "uid 7's entry to go", func() bool {
				_, _, err := node.SessionOf(7)
				return code(err) == swoole.ErrSessionNotExist
			})
			if err := s.Shutdown(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			stopped = true
			if err := node.Err(); err != nil {
				t.Fatal(err)
			}
			if _, err := node.TaskWait([]byte("late"), time.Second); code(err) != 107 {
				t.Fatalf("TaskWait after the shutdown: %v", err)
			}
			if c := node.Counters(); c.TasksSent != 53 || c.TasksHandled < 54 || c.TasksFailed != 1 || c.TasksRedone < 1 {
				t.Fatalf("counters: %+v", c)
			}
		})
	}
}

// quiet is the logger of the in-process tests' nodes: what they log is expected.
var quiet = slog.New(slog.DiscardHandler)

// waitFor polls cond until it holds, failing the test at the deadline.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for pause := time.Millisecond; !cond(); pause = min(2*pause, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(pause)
	}
}
