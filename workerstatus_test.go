package swoole_test

// GetWorkerStatus and the idle counters of Stats, seen from inside the server's processes
// (Swoole's getWorkerStatus.phpt, idle_worekr_num.phpt, task/idle_worekr_num.phpt).

import (
	"strconv"
	"testing"

	"github.com/goswoole/swoole"
)

// TestGetWorkerStatusBusyIdle: inside a callback, GetWorkerStatus(-1) and GetWorkerStatus of
// its own id are WorkerBusy, while the other worker, which has nothing to do, is WorkerIdle;
// in ModeBase with worker processes and in ModeProcess.
func TestGetWorkerStatusBusyIdle(t *testing.T) {
	for _, mode := range []struct{ name, env string }{{"base", mpEnvMode + "=base"}, {"process", mpEnvMode + "=process"}} {
		t.Run(mode.name, func(t *testing.T) {
			ms := upStart(t, mode.env)
			c := ms.dial()
			id, _, _ := c.who()
			busy, idle := strconv.Itoa(swoole.WorkerBusy), strconv.Itoa(swoole.WorkerIdle)
			wantFields(t, c.do("status -1"), "status", busy, "0")
			wantFields(t, c.do("status "+strconv.Itoa(id)), "status", busy, "0")
			// The other worker is idle once it has started (it may still be starting).
			other := "status " + strconv.Itoa(1-id)
			ms.eventually("the other worker idle", func() bool {
				f := c.do(other)
				return len(f) == 3 && f[1] == idle && f[2] == "0"
			})
		})
	}
}

// TestStatsIdleWorkers: with three workers, a callback sees idle_worker_num 2 (all but
// itself), from the shared table.
func TestStatsIdleWorkers(t *testing.T) {
	ms := mpStart(t, mpEnvWorkers+"=3")
	c := ms.dial()
	// "stats <worker_num> <connection_num> <idle_worker_num> ...": the other two workers may
	// still be starting; once they run they are idle.
	ms.eventually("idle_worker_num 2", func() bool {
		f := c.do("stats")
		return len(f) == 6 && f[1] == "3" && f[3] == "2"
	})
}

// TestStatsTaskIdleWorkers: while one of three task workers runs a long task, Stats in the
// worker shows task_idle_worker_num 2 and tasking_num 1, and 3 idle again once it is done.
func TestStatsTaskIdleWorkers(t *testing.T) {
	ms := taskStart(t, mpEnvWorkers+"=1", taskEnvTasks+"=3")
	a, b := ms.dial(), ms.dial()
	ms.eventually("three idle task workers", func() bool {
		f := b.do("stats") // "stats <task_worker_num> <idle> <tasking> <queue> <bytes>"
		return len(f) == 6 && f[1] == "3" && f[2] == "3"
	})
	a.send("tw 10000 -1 sleep 1500 slow")
	ms.waitEvent("taskstart", nil)
	taskWantFields(t, "stats during the task", b.do("stats"), "stats", "3", "2", "1", "0", "0")
	taskWantFields(t, "the task", a.read(), "tw", "0", "r:slow")
	ms.eventually("three idle task workers again", func() bool {
		f := b.do("stats")
		return len(f) == 6 && f[2] == "3" && f[3] == "0"
	})
}
