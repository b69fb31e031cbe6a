package swoole_test

// Shutdown called from the callbacks Swoole's event tests use, and the callbacks a shutdown
// runs: OnStart, then OnBeforeShutdown, then OnShutdown (and OnManagerStop), the process that
// called Start exits 0 and no process is left. Swoole's event/before_shutdown,
// event/shutdown, event/manager_stop, shutdown_in_master, shutdown_in_process and
// bug_11000_01 (Stats, then Shutdown, in a user process).

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// scEnvCaller names who calls Shutdown in scServer.
const scEnvCaller = "GOSWOOLE_TEST_SC_CALLER"

func init() { mpMoreServers["shutdowncb"] = scServer }

// scServer is a server in the mode mpMode says with mpEnvWorkers workers (default 1). The
// process that calls Start logs "boot <port>" before it and "returned <error code>" after.
// Events: "start", "beforeshutdown", "shutdown", "managerstart", "managerstop",
// "workerstart <id>", "receive", "shutdown-call <who> <error code>". scEnvCaller names who
// calls Shutdown:
//
//	start    OnStart
//	second   whichever of OnStart and OnManagerStart runs second (Swoole's event/manager_stop,
//	         with an atomic counter; here a file created with O_EXCL)
//	receive  OnReceive
//	uproc    a user process, after Stats (logs "uprocstats <ok>": the stats have
//	         connection_num and request_count, read without error; then "shutdown-calling
//	         uproc" before the call)
func scServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	if err := s.Set(swoole.Settings{
		WorkerNum: envInt(mpEnvWorkers, 1), LogLevel: swoole.LogLevelWarning, MaxConnection: 1024,
		MaxWaitTime: 3 * time.Second,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	caller := os.Getenv(scEnvCaller)
	shutdown := func(who string) { mpEvent("shutdown-call", who, mpCode(s.Shutdown())) }
	second := func(who string) {
		f, err := os.OpenFile(os.Getenv(mpEnvDir)+"/first", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			f.Close() // the first one
			return
		}
		shutdown(who)
	}
	if caller == "uproc" {
		if _, err := s.AddProcess(swoole.NewProcess(func(p *swoole.Process) {
			st := s.Stats()
			mpEvent("uprocstats", st.WorkerNum == 2 && st.ConnectionNum >= 0 && st.RequestCount >= 0)
			mpEvent("shutdown-calling", "uproc") // the shutdown may end this process before the call's own event
			shutdown("uproc")
			select {} // the shutdown ends this process
		})); err != nil {
			fmt.Fprintln(os.Stderr, "AddProcess:", err)
			return 2
		}
	}
	s.OnStart(func(s *swoole.Server) {
		mpEvent("start")
		switch caller {
		case "start":
			shutdown("start")
		case "second":
			second("start")
		}
	})
	s.OnManagerStart(func(s *swoole.Server) {
		mpEvent("managerstart", port)
		if caller == "second" {
			second("managerstart")
		}
	})
	s.OnManagerStop(func(*swoole.Server) { mpEvent("managerstop") })
	s.OnBeforeShutdown(func(*swoole.Server) { mpEvent("beforeshutdown") })
	s.OnShutdown(func(*swoole.Server) { mpEvent("shutdown") })
	s.OnWorkerStart(func(s *swoole.Server, id int) { mpEvent("workerstart", id) })
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		mpEvent("receive", strconv.Quote(string(data)))
		if caller == "receive" {
			shutdown("receive")
		}
	})
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

// scEnded waits for the server to end by itself: the process that called Start exits 0
// after Start returned nil, every process of the tree is gone, and the events named in
// order appear in that order, each once.
func scEnded(t *testing.T, ms *mpServer, order ...string) {
	t.Helper()
	st := ms.wait(mpTimeout)
	if !st.Success() {
		t.Fatalf("the server's top process exited with %v, want 0\n%s", st, ms.output())
	}
	if e := ms.waitEvent("returned", nil); e.PID != ms.Manager || e.Fields[0] != "0" {
		t.Fatalf("Start returned %v in pid %d, want nil (0) in %d", e.Fields, e.PID, ms.Manager)
	}
	for _, e := range ms.events() {
		if (e.Name == "workerstart" || e.Name == "managerstart") && !mpGoneWithin(e.PID, mpTimeout) {
			t.Errorf("process %d of the tree is still alive after the server ended", e.PID)
		}
	}
	var seen []string
	for _, e := range ms.events() {
		for _, name := range order {
			if e.Name == name {
				seen = append(seen, name)
			}
		}
	}
	if fmt.Sprint(seen) != fmt.Sprint(order) {
		t.Errorf("events %v, want %v, each once\n%s", seen, order, ms.output())
	}
}

// TestShutdownInOnStartRunsShutdownCallbacks: Shutdown inside OnStart (ModeProcess, one
// worker: event/before_shutdown and event/shutdown; and ModeBase, shutdown_in_master's random
// mode, with 1 and 4 workers): OnStart, OnBeforeShutdown and OnShutdown run in that order,
// and the server exits 0.
func TestShutdownInOnStartRunsShutdownCallbacks(t *testing.T) {
	for _, tc := range []struct{ mode, workers string }{
		{"process", "1"}, {"process", "4"}, {"base", "1"}, {"base", "4"},
	} {
		t.Run(tc.mode+"/"+tc.workers, func(t *testing.T) {
			ms := mpStartServer(t, "shutdowncb", "boot", mpEnvMode+"="+tc.mode, mpEnvWorkers+"="+tc.workers, scEnvCaller+"=start")
			e := ms.waitEvent("shutdown-call", nil)
			if e.Fields[1] != "0" {
				t.Errorf("Shutdown in OnStart: code %s, want 0", e.Fields[1])
			}
			scEnded(t, ms, "start", "beforeshutdown", "shutdown")
		})
	}
}

// TestManagerStopAfterShutdownFromStartCallbacks is event/manager_stop: in ModeProcess, the
// second of OnStart and OnManagerStart calls Shutdown; OnManagerStop runs and the server
// exits 0.
func TestManagerStopAfterShutdownFromStartCallbacks(t *testing.T) {
	ms := mpStartServer(t, "shutdowncb", "boot", mpEnvMode+"=process", scEnvCaller+"=second")
	e := ms.waitEvent("shutdown-call", nil)
	if e.Fields[1] != "0" {
		t.Errorf("Shutdown in %s: code %s, want 0", e.Fields[0], e.Fields[1])
	}
	scEnded(t, ms, "managerstop")
}

// TestShutdownInOnReceiveModeProcess is shutdown_in_process: in ModeProcess with 1 and 4
// workers, OnReceive calls Shutdown; OnStart ran before, OnShutdown runs, the server exits 0.
func TestShutdownInOnReceiveModeProcess(t *testing.T) {
	for _, workers := range []string{"1", "4"} {
		t.Run(workers, func(t *testing.T) {
			ms := mpStartServer(t, "shutdowncb", "boot", mpEnvMode+"=process", mpEnvWorkers+"="+workers, scEnvCaller+"=receive")
			ms.waitEvent("start", nil)
			c := ms.dial()
			if _, err := c.c.Write([]byte("some random data")); err != nil {
				t.Fatal(err)
			}
			e := ms.waitEvent("shutdown-call", nil)
			if e.Fields[1] != "0" {
				t.Errorf("Shutdown in OnReceive: code %s, want 0", e.Fields[1])
			}
			scEnded(t, ms, "start", "shutdown")
		})
	}
}

// TestShutdownFromUserProcessAfterStats is bug_11000_01: in ModeProcess, a user process
// reads Stats (connection_num, request_count) and calls Shutdown, which ends the server.
func TestShutdownFromUserProcessAfterStats(t *testing.T) {
	ms := mpStartServer(t, "shutdowncb", "boot", mpEnvMode+"=process", mpEnvWorkers+"=2", scEnvCaller+"=uproc")
	if e := ms.waitEvent("uprocstats", nil); e.Fields[0] != "true" {
		t.Errorf("Stats in a user process: %v", e.Fields)
	}
	ms.waitEvent("shutdown-calling", nil)
	scEnded(t, ms, "shutdown")
	// The shutdown stops the user process too, possibly before it logged what Shutdown
	// returned: when it did, the call succeeded.
	for _, e := range ms.events() {
		if e.Name == "shutdown-call" && (e.Fields[0] != "uproc" || e.Fields[1] != "0") {
			t.Errorf("Shutdown in the user process: %v, want code 0", e.Fields)
		}
	}
}
