package swoole_test

// Over real processes: OnStart runs once every worker, task worker and user process is up
// (GetWorkerPID and Command reach them from OnStart), and Shutdown from any process of the
// tree (event worker, task worker, user process, the manager's and the master's callbacks,
// a worker that is being stopped) ends the server: Start returns nil in the process that
// called it and no child is left. The server is the "lifecycle" builder (lcServer).

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

const (
	lcEnvCaller = "GOSWOOLE_TEST_LC_CALLER" // who calls Shutdown (see lcServer)
	lcEnvBroken = "GOSWOOLE_TEST_LC_BROKEN" // "1": worker 1's process dies before Start
	lcEnvSlow   = "GOSWOOLE_TEST_LC_SLOW"   // "1": every child but worker 0 takes 300 ms to start
)

func init() {
	mpMoreServers["lifecycle"] = lcServer
}

// lcServer is a line server (worker_num 2, task_worker_num 1, one user process: global ids
// 0, 1 event workers, 2 the task worker, 3 the user process) in the mode mpMode says. The
// process that calls Start logs "boot <port>" before it and "returned <error code>" after.
// OnStart logs "start <pid of 1> <Command to worker 1: error code> <its reply> <pid of 2>
// <pid of 3>" (the Command only without lcEnvCaller and lcEnvBroken; else "-1 -"). Every worker and task worker logs "workerstart <id>", the user process
// "uprocstart". lcEnvCaller names who calls Shutdown:
//
//	worker    the event worker that reads the line "shutdown"
//	task      the task worker that runs the task a worker sends on the line "shutdown"
//	uproc     the user process, on a pipe message a worker sends on the line "shutdown"
//	manager   OnManagerStart
//	start     OnStart (the master in ModeProcess, worker 0 in ModeBase)
//	stopstart every OnWorkerStart of an event worker calls Stop(-1); the first OnWorkerStop
//	          of the server calls Shutdown (Swoole's stop_in_workerStart.phpt)
//
// Each call logs "shutdown-call <who> <error code>".
func lcServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	if os.Getenv(lcEnvBroken) == "1" && os.Getenv("GOSWOOLE_ROLE") == "worker:1" {
		os.Exit(1) // a worker that can never start
	}
	if role := os.Getenv("GOSWOOLE_ROLE"); os.Getenv(lcEnvSlow) == "1" && role != "" && role != "worker:0" {
		time.Sleep(300 * time.Millisecond) // a process with a slow start (loading its data)
	}
	set := mpLineSettings(2)
	set.TaskWorkerNum = 1
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	caller := os.Getenv(lcEnvCaller)
	shutdown := func(who string) { mpEvent("shutdown-call", who, mpCode(s.Shutdown())) }

	uproc := swoole.NewProcess(func(p *swoole.Process) {
		mpEvent("uprocstart")
		select {} // its work comes as OnPipeMessage
	})
	if _, err := s.AddProcess(uproc); err != nil {
		fmt.Fprintln(os.Stderr, "AddProcess:", err)
		return 2
	}
	_ = s.AddCommand("getpid", swoole.CommandEventWorker, func(*swoole.Server, []byte) []byte {
		return []byte(strconv.Itoa(os.Getpid()))
	})
	s.OnStart(func(s *swoole.Server) {
		pid1, pid2, pid3 := s.GetWorkerPID(1), s.GetWorkerPID(2), s.GetWorkerPID(3) // before Command waits
		code, reply := -1, "-"
		if caller == "" && os.Getenv(lcEnvBroken) != "1" { // worker 1 is there to answer
			r, err := s.Command("getpid", 1, swoole.CommandEventWorker, "")
			code, reply = mpCode(err), string(r)
			if reply == "" {
				reply = "-"
			}
		}
		mpEvent("start", pid1, code, reply, pid2, pid3)
		if caller == "start" {
			shutdown("start")
		}
	})
	s.OnManagerStart(func(s *swoole.Server) {
		mpEvent("managerstart", port)
		if caller == "manager" {
			shutdown("manager")
		}
	})
	s.OnWorkerStart(func(s *swoole.Server, id int) {
		mpEvent("workerstart", id)
		if caller == "stopstart" && !s.IsTaskWorker() {
			mpEvent("stop-call", id, mpCode(s.Stop(-1, false)))
		}
	})
	s.OnWorkerStop(func(s *swoole.Server, id int) {
		mpEvent("workerstop", id)
		if caller != "stopstart" || s.IsTaskWorker() {
			return
		}
		// Once per server: the first worker that stops creates the file.
		f, err := os.OpenFile(os.Getenv(mpEnvDir)+"/stopped-once", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			f.Close()
			shutdown("workerstop")
		}
	})
	s.OnTask(func(s *swoole.Server, _ int, _ int, data []byte) any {
		if string(data) == "shutdown" {
			shutdown("task")
		}
		return nil
	})
	s.OnPipeMessage(func(s *swoole.Server, _ int, data []byte) {
		if string(data) == "shutdown" {
			shutdown("uproc")
		}
	})
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		if strings.TrimSpace(string(data)) != "shutdown" {
			return
		}
		switch caller {
		case "worker":
			shutdown("worker")
		case "task":
			_, err := s.Task("shutdown", -1)
			mpEvent("task-sent", mpCode(err))
		case "uproc":
			mpEvent("msg-sent", mpCode(s.SendMessage("shutdown", 3)))
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

// lcModes are the modes of the table tests: ModeBase with two workers (a manager and its
// children) and ModeProcess.
var lcModes = []struct {
	name string
	env  string
}{
	{"base", mpEnvMode + "=base"},
	{"process", mpEnvMode + "=process"},
}

// lcPIDs returns the pids of every process of the tree the events show.
func lcPIDs(ms *mpServer) []int {
	var pids []int
	for _, e := range ms.events() {
		if e.Name == "workerstart" || e.Name == "uprocstart" {
			pids = append(pids, e.PID)
		}
	}
	return pids
}

// lcEnded waits for the process that called Start to exit with status 0 after Start
// returned nil, and checks that no process of the tree is left.
func lcEnded(t *testing.T, ms *mpServer) {
	t.Helper()
	st := ms.wait(mpTimeout)
	if !st.Success() {
		t.Fatalf("the server's top process exited with %v, want 0\n%s", st, ms.output())
	}
	if e := ms.waitEvent("returned", nil); e.PID != ms.Manager || e.Fields[0] != "0" {
		t.Fatalf("Start returned %v in pid %d, want nil (0) in %d", e.Fields, e.PID, ms.Manager)
	}
	for _, pid := range lcPIDs(ms) {
		if !mpGoneWithin(pid, mpTimeout) {
			t.Errorf("process %d of the tree is still alive after the server ended", pid)
		}
	}
}

// TestOnStartSeesEveryProcess: in OnStart every worker, task worker and user process has
// started, even those that start slowly: GetWorkerPID gives their pids and a Command to
// worker 1 is answered by it.
func TestOnStartSeesEveryProcess(t *testing.T) {
	for _, m := range lcModes {
		t.Run(m.name, func(t *testing.T) {
			ms := mpStartServer(t, "lifecycle", "boot", m.env, lcEnvSlow+"=1")
			e := ms.waitEvent("start", nil)
			ms.waitEvent("managerstart", nil)
			ms.eventually("every process to start", func() bool {
				return ms.count("workerstart", nil) >= 3 && ms.count("uprocstart", nil) >= 1
			})
			want := map[int]int{} // global id → pid
			for _, ev := range ms.events() {
				switch ev.Name {
				case "workerstart":
					want[ev.int(0)] = ev.PID
				case "uprocstart":
					want[3] = ev.PID
				}
			}
			if got := e.int(0); got != want[1] {
				t.Errorf("OnStart: GetWorkerPID(1) = %d, want worker 1's pid %d", got, want[1])
			}
			if code, reply := e.int(1), e.Fields[2]; code != 0 || reply != strconv.Itoa(want[1]) {
				t.Errorf("OnStart: Command to worker 1 gave error %d and %q, want worker 1's pid %d", code, reply, want[1])
			}
			if got := e.int(3); got != want[2] {
				t.Errorf("OnStart: GetWorkerPID(2) = %d, want the task worker's pid %d", got, want[2])
			}
			if got := e.int(4); got != want[3] {
				t.Errorf("OnStart: GetWorkerPID(3) = %d, want the user process's pid %d", got, want[3])
			}
			if n := ms.count("start", nil); n != 1 {
				t.Errorf("OnStart ran %d times, want once", n)
			}
			ms.signal(syscall.SIGTERM)
			lcEnded(t, ms)
		})
	}
}

// TestOnStartRunsWhenAWorkerCannotStart: a worker whose process dies before it starts does
// not hold OnStart and OnManagerStart back for good, and the server still shuts down.
func TestOnStartRunsWhenAWorkerCannotStart(t *testing.T) {
	for _, m := range lcModes {
		t.Run(m.name, func(t *testing.T) {
			ms := mpStartServer(t, "lifecycle", "boot", m.env, lcEnvBroken+"=1")
			ms.waitEvent("start", nil)
			ms.waitEvent("managerstart", nil)
			ms.signal(syscall.SIGTERM)
			lcEnded(t, ms)
		})
	}
}

// TestShutdownFromEveryProcess: Shutdown called in an event worker, a task worker, a user
// process, OnManagerStart and OnStart ends the whole server, in ModeBase with two workers and
// in ModeProcess.
func TestShutdownFromEveryProcess(t *testing.T) {
	callers := []struct {
		name    string
		trigger bool // a client sends "shutdown" once the server runs
	}{
		{"worker", true},
		{"task", true},
		{"uproc", true},
		{"manager", false},
		{"start", false},
	}
	for _, m := range lcModes {
		for _, c := range callers {
			t.Run(m.name+"/"+c.name, func(t *testing.T) {
				ms := mpStartServer(t, "lifecycle", "boot", m.env, lcEnvCaller+"="+c.name)
				if c.trigger {
					ms.waitEvent("managerstart", nil)
					ms.eventually("every process to start", func() bool {
						return ms.count("workerstart", nil) >= 3 && ms.count("uprocstart", nil) >= 1
					})
					cl := ms.dial()
					cl.send("shutdown")
				}
				e := ms.waitEvent("shutdown-call", nil)
				if e.Fields[0] != c.name || e.Fields[1] != "0" {
					t.Errorf("Shutdown in %s: %v, want %s and no error", c.name, e.Fields, c.name)
				}
				lcEnded(t, ms)
			})
		}
	}
}

// TestShutdownFromAStoppingWorker is Swoole's stop_in_workerStart.phpt: every event worker
// stops itself in OnWorkerStart (the manager replaces it) and the first OnWorkerStop calls
// Shutdown, which ends the server instead of the workers being replaced for ever.
func TestShutdownFromAStoppingWorker(t *testing.T) {
	for _, m := range lcModes {
		t.Run(m.name, func(t *testing.T) {
			ms := mpStartServer(t, "lifecycle", "boot", m.env, lcEnvCaller+"=stopstart")
			e := ms.waitEvent("shutdown-call", nil)
			if e.Fields[0] != "workerstop" || e.Fields[1] != "0" {
				t.Errorf("Shutdown in OnWorkerStop: %v, want no error", e.Fields)
			}
			lcEnded(t, ms)
		})
	}
}
