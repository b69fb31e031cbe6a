package swoole_test

// reload_async and the timers of a stopping worker, in ModeProcess (Swoole's reload_async and
// force_reload4 phpts): a worker that reloads the server while a timer of its own still has
// work lets that work finish before it exits; a tick that never ends does not hold a
// shutdown past max_wait_time (the worker is stopped with warning 9101).

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// raEnvCase selects the scenario of raServer.
const raEnvCase = "GOSWOOLE_TEST_RA_CASE"

func init() { mpMoreServers["reloadasync"] = raServer }

// raServer is a ModeProcess server with reload_async. The process that calls Start logs
// "boot <port>" before it and "returned <error code>" after; OnShutdown logs "shutdown".
// raEnvCase:
//
//	reload   worker_num 3, max_wait_time 10 s. Worker 0, the first time it starts, waits
//	         (10 s at most) until every worker started, sets a 100 ms tick that logs "n <k>"
//	         for k = 1…5 and then "reloaded", and calls Reload ("reload <error code>").
//	forever  worker_num 1, max_wait_time 2 s. Worker 0 sets a 5 s tick that never ends and,
//	         500 ms later, calls Shutdown ("shutdown-call <error code>").
func raServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeProcess, swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	c := os.Getenv(raEnvCase)
	set := swoole.Settings{WorkerNum: 3, LogLevel: swoole.LogLevelWarning, MaxConnection: 1024, MaxWaitTime: 10 * time.Second, ReloadAsync: swoole.Bool(true)}
	if c == "forever" {
		set.WorkerNum, set.MaxWaitTime = 1, 2*time.Second
	}
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	dir := os.Getenv(mpEnvDir)
	s.OnShutdown(func(*swoole.Server) { mpEvent("shutdown") })
	s.OnWorkerStart(func(s *swoole.Server, id int) {
		mpEvent("workerstart", id)
		if id != 0 {
			return
		}
		switch c {
		case "reload":
			f, err := os.OpenFile(dir+"/reloaded-once", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil {
				return // the replacement
			}
			f.Close()
			for deadline := time.Now().Add(mpTimeout); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				b, _ := os.ReadFile(dir + "/events")
				if strings.Count(string(b), "workerstart ") >= 3 {
					break
				}
			}
			k := 0
			_, _ = s.Tick(100, func(id int) {
				k++
				mpEvent("n", k)
				if k == 5 {
					s.ClearTimer(id)
					mpEvent("reloaded")
				}
			})
			mpEvent("reload", mpCode(s.Reload(false)))
		case "forever":
			_, _ = s.Tick(5000, func(int) { mpEvent("tick") })
			_, _ = s.After(500, func() { mpEvent("shutdown-call", mpCode(s.Shutdown())) })
		}
	})
	s.OnReceive(func(*swoole.Server, int64, int, []byte) {})
	if os.Getenv("GOSWOOLE_ROLE") == "" {
		mpEvent("boot", port)
	}
	err = s.Start()
	mpEvent("returned", mpCode(err))
	if err != nil {
		return 1
	}
	return 0
}

// TestReloadAsyncLetsTimersFinish is reload_async: worker 0 calls Reload while its tick has
// five more runs to make; they all run (1 to 5, then "reloaded") in the old process before
// it exits, and worker 0 is replaced.
func TestReloadAsyncLetsTimersFinish(t *testing.T) {
	ms := mpStartServer(t, "reloadasync", "boot", raEnvCase+"=reload")
	e := ms.waitEvent("reload", nil)
	if e.Fields[0] != "0" {
		t.Fatalf("Reload: code %s, want 0", e.Fields[0])
	}
	old := e.PID
	done := ms.waitEvent("reloaded", nil)
	if done.PID != old {
		t.Errorf("the tick finished in pid %d, want the reloaded worker %d", done.PID, old)
	}
	var ns []string
	for _, ev := range ms.events() {
		if ev.Name == "n" && ev.PID == old {
			ns = append(ns, ev.Fields[0])
		}
	}
	if strings.Join(ns, " ") != "1 2 3 4 5" {
		t.Errorf("the old worker's tick ran %v, want 1 to 5", ns)
	}
	ms.eventually("worker 0's replacement", func() bool {
		return ms.count("workerstart", func(ev mpEv) bool { return ev.Fields[0] == "0" && ev.PID != old }) == 1
	})
	if !mpGoneWithin(old, mpTimeout) {
		t.Errorf("the reloaded worker %d still runs", old)
	}
}

// TestShutdownStopsWorkerKeptByTick is force_reload4: worker 0 keeps a 5 s tick and calls
// Shutdown 500 ms after it starts; with reload_async and max_wait_time 2 s the worker is
// stopped with warning 9101 and the server ends (OnShutdown runs, exit 0).
func TestShutdownStopsWorkerKeptByTick(t *testing.T) {
	ms := mpStartServer(t, "reloadasync", "boot", raEnvCase+"=forever")
	if e := ms.waitEvent("shutdown-call", nil); e.Fields[0] != "0" {
		t.Fatalf("Shutdown: code %s, want 0", e.Fields[0])
	}
	st := ms.wait(mpTimeout)
	if !st.Success() {
		t.Fatalf("the server exited with %v, want 0\n%s", st, ms.output())
	}
	ms.waitEvent("shutdown", nil)
	if out := ms.output(); !strings.Contains(out, "9101") {
		t.Errorf("no warning 9101 (worker exit timeout) in the server's output\n%s", out)
	}
	for _, e := range ms.events() {
		if e.Name == "workerstart" && !mpGoneWithin(e.PID, mpTimeout) {
			t.Errorf("worker %d still runs", e.PID)
		}
	}
}
