package swoole_test

// Reload by signal, counted per process kind, and a reload that meets a worker stuck in a
// callback (Swoole's base/reload_1.phpt, base/reload_2.phpt, reload_process.phpt,
// force_reload.phpt, force_reload2.phpt, event/worker_exit.phpt).

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

func init() { mpMoreServers["wexit"] = workerExitServer }

// workerExitServer is Swoole's event/worker_exit.phpt in Go: ModeProcess, one worker that
// starts a 50 ms tick in OnWorkerStart ("ws <id> <status>", "tick <id> <status>" once) and
// clears it in OnWorkerExit ("wexit <id> <status>"); OnWorkerStop logs "wstop <id>".
func workerExitServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeProcess, swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	if err := s.Set(swoole.Settings{WorkerNum: 1, LogLevel: swoole.LogLevelWarning, MaxConnection: 1024, MaxWaitTime: 3 * time.Second}); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	status := func(s *swoole.Server) int { st, _ := s.GetWorkerStatus(-1); return st }
	s.OnManagerStart(func(s *swoole.Server) { mpEvent("managerstart", port) })
	tick := -1
	s.OnWorkerStart(func(s *swoole.Server, id int) {
		mpEvent("ws", id, status(s))
		logged := false
		tick, _ = s.Tick(50, func(int) {
			if !logged {
				logged = true
				mpEvent("tick", id, status(s))
			}
		})
	})
	s.OnWorkerExit(func(s *swoole.Server, id int) {
		mpEvent("wexit", id, status(s))
		s.ClearTimer(tick)
	})
	s.OnWorkerStop(func(s *swoole.Server, id int) { mpEvent("wstop", id) })
	s.OnReceive(func(*swoole.Server, int64, int, []byte) {})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// reloadStarts returns how many times each worker and task worker id (0 … n-1) started.
func reloadStarts(ms *mpServer, n int) []int {
	starts := make([]int, n)
	for _, e := range ms.events() {
		if e.Name == "workerstart" {
			if id := e.int(0); id >= 0 && id < n {
				starts[id]++
			}
		}
	}
	return starts
}

// TestReloadSignalCounts: each SIGUSR1 restarts every worker and every task worker once;
// each SIGUSR2 restarts only the task workers once; no reload is reported as an error
// (ModeBase with worker processes and ModeProcess; 2 workers, 2 task workers).
func TestReloadSignalCounts(t *testing.T) {
	for _, mode := range []struct{ name, env string }{{"base", mpEnvMode + "=base"}, {"process", mpEnvMode + "=process"}} {
		t.Run(mode.name, func(t *testing.T) {
			ms := taskStart(t, mode.env, mpEnvWorkers+"=2", taskEnvTasks+"=2")
			ms.eventually("four processes", func() bool { return strings.Join(intStrings(reloadStarts(ms, 4)), ",") == "1,1,1,1" })
			steps := []struct {
				sig  syscall.Signal
				want string // starts of ids 0..3 after the reload
			}{
				{syscall.SIGUSR1, "2,2,2,2"},
				{syscall.SIGUSR2, "2,2,3,3"},
				{syscall.SIGUSR2, "2,2,4,4"},
				{syscall.SIGUSR1, "3,3,5,5"},
			}
			for i, st := range steps {
				ms.signal(st.sig)
				ms.eventually("reload "+strconv.Itoa(i+1)+" done", func() bool {
					return ms.count("afterreload", nil) == i+1 && strings.Join(intStrings(reloadStarts(ms, 4)), ",") == st.want
				})
				// A reload in progress ignores another signal: the next one waits for this one.
			}
			// Every process kind works after the reloads.
			c := ms.dial()
			taskWantFields(t, "task after the reloads", c.do("tw 5000 -1 echo ok"), "tw", "0", "r:ok")
			if n := ms.count("workererror", nil); n != 0 {
				t.Errorf("%d workererror events during reloads", n)
			}
			// Keep the counts stable a moment: no process starts again by itself.
			time.Sleep(50 * time.Millisecond)
			if got := strings.Join(intStrings(reloadStarts(ms, 4)), ","); got != "3,3,5,5" {
				t.Errorf("starts %s after the reloads settled, want 3,3,5,5", got)
			}
		})
	}
}

func intStrings(v []int) []string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return s
}

// TestReloadStuckWorker: a reload meets a worker that never returns from its callback: after
// max_wait_time (3 s in the test server) the worker is killed and replaced, the other worker
// is replaced as usual, and the server serves on (ModeBase with worker processes and
// ModeProcess, reload_async on and off).
func TestReloadStuckWorker(t *testing.T) {
	for _, tc := range []struct{ name, mode, sync string }{
		{"base-async", "base", "0"}, {"base-rolling", "base", "1"},
		{"process-async", "process", "0"}, {"process-rolling", "process", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := mpStart(t, mpEnvMode+"="+tc.mode, mpEnvReloadSync+"="+tc.sync, mpEnvDispatch+"=2")
			stuck := ms.dial()
			id, pid, _ := stuck.who()
			old := map[int]bool{}
			for _, p := range ms.workerPIDs() {
				old[p] = true
			}
			stuck.send("sleep 600000") // far beyond the test's deadlines: only a kill ends it
			ms.waitEvent("sleeping", func(e mpEv) bool { return e.PID == pid })
			start := time.Now()
			ms.signal(syscall.SIGUSR1)
			ms.waitEvent("afterreload", nil)
			if !mpGoneWithin(pid, mpTimeout) {
				t.Fatalf("the stuck worker %d was not killed after max_wait_time", pid)
			}
			if d := time.Since(start); d < 2*time.Second {
				t.Errorf("the stuck worker was killed %v after the reload began, before max_wait_time (3 s)", d)
			}
			ms.eventually("both workers replaced", func() bool {
				n := 0
				for _, e := range ms.events() {
					if e.Name == "workerstart" && !old[e.PID] {
						n++
					}
				}
				return n == 2
			})
			ms.waitEvent("workerstart", func(e mpEv) bool { return e.int(0) == id && !old[e.PID] })
			c := ms.dial()
			if f := c.do("echo after"); len(f) != 1 || f[0] != "after" {
				t.Fatalf("echo after the reload: %q", f)
			}
			if _, now, _ := c.who(); old[now] {
				t.Fatalf("an old worker (%d) still serves", now)
			}
		})
	}
}

// TestWorkerExitOrder: a worker that keeps a timer during a reload runs OnWorkerExit (where
// it clears the timer) and then OnWorkerStop, once each, and its replacement starts.
// (The statuses along the way: TestWorkerStatusAlongReload.)
func TestWorkerExitOrder(t *testing.T) {
	ms := mpStartServer(t, "wexit", "managerstart")
	first := ms.waitEvent("ws", nil)
	ms.waitEvent("tick", nil)
	ms.signal(syscall.SIGUSR1)
	ms.eventually("the replacement", func() bool { return ms.count("ws", nil) == 2 })
	ms.eventually("the old worker's stop", func() bool { return ms.count("wstop", func(e mpEv) bool { return e.PID == first.PID }) == 1 })
	var order []string
	for _, e := range ms.events() {
		if e.PID == first.PID && (e.Name == "wexit" || e.Name == "wstop") {
			order = append(order, e.Name)
		}
	}
	if strings.Join(order, " ") != "wexit wstop" {
		t.Fatalf("the old worker's events %q, want wexit then wstop", order)
	}
}
