package swoole_test

// User processes that die, that ignore SIGTERM, and the ids of user processes behind task
// workers; killed user processes and task workers in ModeProcess (Swoole's
// addProcess_with_error.phpt, addProcess_with_tick.phpt, user_process_force_exit.phpt,
// user_process_pid.phpt, kill_user_process_01.phpt, task/kill_task_worker_02.phpt).

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

func init() { mpMoreServers["uprestart"] = upRestartServer }

// upEnvBehaviour picks what the user process of the "uprestart" server does:
//
//	panic    → logs "upstart", panics 50 ms later
//	tickpanic→ logs "upstart", panics in a 20 ms Tick callback
//	noterm   → ignores SIGTERM, logs "upstart", blocks for ever
//	(else)   → logs "upstart", blocks for ever
const upEnvBehaviour = "GOSWOOLE_TEST_UP_BEHAVIOUR"

// upRestartServer: mpMode(), 2 workers, 3 task workers, one user process (global id 5),
// max_wait_time 1 s. A worker answers "pid <id>" with "pid <GetWorkerPID(id)>".
func upRestartServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	set := swoole.Settings{
		WorkerNum: 2, TaskWorkerNum: 3, LogLevel: swoole.LogLevelError, MaxConnection: 1024,
		OpenEOFSplit: true, PackageEOF: "\n", MaxWaitTime: time.Second,
	}
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	p := swoole.NewProcess(func(p *swoole.Process) {
		switch os.Getenv(upEnvBehaviour) {
		case "panic":
			mpEvent("upstart", s.GetWorkerID())
			time.Sleep(50 * time.Millisecond)
			panic("the user process fails on purpose")
		case "tickpanic":
			mpEvent("upstart", s.GetWorkerID())
			_, _ = s.Tick(20, func(int) { panic("the user process's tick fails on purpose") })
			select {}
		case "noterm":
			signal.Ignore(syscall.SIGTERM)
			mpEvent("upstart", s.GetWorkerID())
			select {}
		default:
			mpEvent("upstart", s.GetWorkerID())
			select {}
		}
	})
	if _, err := s.AddProcess(p); err != nil {
		fmt.Fprintln(os.Stderr, "AddProcess:", err)
		return 2
	}
	s.OnManagerStart(func(s *swoole.Server) { mpEvent("managerstart", port) })
	s.OnWorkerStart(func(s *swoole.Server, id int) { mpEvent("workerstart", id) })
	s.OnWorkerError(func(s *swoole.Server, id, pid, code, sig int) { mpEvent("workererror", id, pid, code, sig) })
	s.OnTask(func(*swoole.Server, int, int, []byte) any { return nil })
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		var id int
		if _, err := fmt.Sscanf(string(data), "pid %d", &id); err == nil {
			_ = s.Send(fd, []byte(fmt.Sprintf("pid %d\n", s.GetWorkerPID(id))))
			return
		}
		_ = s.Send(fd, []byte("unknown\n"))
	})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	mpEvent("exit")
	return 0
}

// upRestartStart starts the "uprestart" server; at cleanup every user process it saw must be
// gone.
func upRestartStart(t *testing.T, env ...string) *mpServer {
	t.Helper()
	var ms *mpServer
	t.Cleanup(func() {
		if ms == nil {
			return
		}
		for _, e := range ms.events() {
			if e.Name == "upstart" && !mpGoneWithin(e.PID, 5*time.Second) {
				t.Errorf("user process pid %d outlived the server: killing it", e.PID)
				_ = syscall.Kill(e.PID, syscall.SIGKILL)
				mpGoneWithin(e.PID, 5*time.Second)
			}
		}
	})
	ms = mpStartServer(t, "uprestart", "managerstart", env...)
	return ms
}

var upModes = []struct{ name, env string }{{"base", mpEnvMode + "=base"}, {"process", mpEnvMode + "=process"}}

// TestUserProcessRestartedAfterPanic: a user process whose function panics, or whose timer
// callback panics, is started again each time, under the same id; the workers go on.
func TestUserProcessRestartedAfterPanic(t *testing.T) {
	for _, mode := range upModes {
		for _, how := range []string{"panic", "tickpanic"} {
			t.Run(mode.name+"/"+how, func(t *testing.T) {
				ms := upRestartStart(t, mode.env, upEnvBehaviour+"="+how)
				ms.allowPanic = true
				ms.eventually("three starts of the user process", func() bool { return ms.count("upstart", nil) >= 3 })
				pids := map[int]bool{}
				for _, e := range ms.events() {
					if e.Name == "upstart" {
						pids[e.PID] = true
						if e.Fields[0] != "-1" {
							t.Errorf("GetWorkerID in the user process = %s, want -1", e.Fields[0])
						}
					}
				}
				if len(pids) < 3 {
					t.Fatalf("user process starts in pids %v: want a new process each time", pids)
				}
				c := ms.dial()
				if f := c.do("pid 0"); len(f) != 2 || atoi(f[1]) <= 0 {
					t.Fatalf("a worker after the user process's restarts: %q", f)
				}
			})
		}
	}
}

// TestUserProcessPIDAfterTaskWorkers: with 2 workers and 3 task workers, the user process has
// global id 5, and GetWorkerPID(5) in a worker is its pid, also after it was killed and
// started again (ModeBase and ModeProcess).
func TestUserProcessPIDAfterTaskWorkers(t *testing.T) {
	for _, mode := range upModes {
		t.Run(mode.name, func(t *testing.T) {
			ms := upRestartStart(t, mode.env)
			first := ms.waitEvent("upstart", nil)
			c := ms.dial()
			ms.eventually("GetWorkerPID(5) is the user process", func() bool {
				f := c.do("pid 5")
				return len(f) == 2 && atoi(f[1]) == first.PID
			})
			if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			second := ms.waitEvent("upstart", func(e mpEv) bool { return e.PID != first.PID })
			ms.eventually("GetWorkerPID(5) is the new user process", func() bool {
				f := c.do("pid 5")
				return len(f) == 2 && atoi(f[1]) == second.PID
			})
			if n := ms.count("workererror", nil); n != 0 {
				t.Errorf("%d workererror events for a killed user process", n)
			}
		})
	}
}

// TestUserProcessIgnoringSIGTERM: a user process that ignores SIGTERM does not hold the
// shutdown: the server's tree ends within 2 × max_wait_time (1 s) plus slack, and the user
// process is gone (killed).
func TestUserProcessIgnoringSIGTERM(t *testing.T) {
	for _, mode := range upModes {
		t.Run(mode.name, func(t *testing.T) {
			ms := upRestartStart(t, mode.env, upEnvBehaviour+"=noterm")
			up := ms.waitEvent("upstart", nil)
			start := time.Now()
			ms.signal(syscall.SIGTERM)
			st := ms.wait(mpTimeout)
			if !st.Exited() || st.ExitCode() != 0 {
				t.Errorf("the server ended with %v, want exit code 0", st)
			}
			if !mpGoneWithin(up.PID, 5*time.Second) {
				t.Fatalf("the user process %d that ignores SIGTERM outlived the shutdown", up.PID)
			}
			t.Logf("shutdown took %v", time.Since(start))
		})
	}
}

// TestKilledTaskWorkerProcessMode: in ModeProcess a task worker killed with SIGKILL in the
// middle of a task is reported (OnWorkerError in the master), replaced, and tasks work again.
func TestKilledTaskWorkerProcessMode(t *testing.T) {
	ms := taskStart(t, mpEnvMode+"=process", mpEnvWorkers+"=1", taskEnvTasks+"=1")
	c := ms.dial()
	c.send("tw 1500 -1 sleep 10000 doomed")
	ev := ms.waitEvent("taskstart", nil)
	if err := syscall.Kill(ev.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	taskWantFields(t, "killed", c.read(), "tw", "2003")
	e := ms.waitEvent("workererror", func(e mpEv) bool { return e.int(0) == 1 && e.int(1) == ev.PID })
	if e.PID != ms.Manager || e.int(3) != int(syscall.SIGKILL) {
		t.Errorf("workererror %q in pid %d: want signal 9, in the master %d", e.Fields, e.PID, ms.Manager)
	}
	ms.eventually("replacement", func() bool { return len(taskWorkerPIDs(ms, 1)) == 2 })
	taskWantFields(t, "after", c.do("tw 5000 -1 echo back"), "tw", "0", "r:back")
}

// TestKilledUserProcessProcessMode: in ModeProcess a user process killed with SIGKILL is
// started again (no OnWorkerError), and the new one serves: Send from it reaches a client.
func TestKilledUserProcessProcessMode(t *testing.T) {
	ms := upStart(t, mpEnvMode+"=process")
	u1 := ms.upPID(1)
	if err := syscall.Kill(u1, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ms.waitEvent("uprocstart", func(e mpEv) bool { return e.int(0) == 1 && e.PID != u1 })
	a, b := ms.dial(), ms.dial()
	_, _, bfd := b.who()
	wantFields(t, a.do("up send "+strconv.FormatInt(bfd, 10)+" from-new-up"), "up", "0")
	wantFields(t, b.read(), "from-new-up")
	if n := ms.count("workererror", nil); n != 0 {
		t.Errorf("%d WorkerError events for a user process", n)
	}
}
