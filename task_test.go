package swoole_test

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// Task worker tests over real processes (the "task" server of task_helpers_test.go). Each
// waits on replies and events with deadlines; cleanup checks that every process is gone.

func taskStart(t testing.TB, env ...string) *mpServer {
	t.Helper()
	return mpStartServer(t, "task", "managerstart", env...)
}

// taskWorkerPIDs returns the pids of task worker id that started (workerstart), in order.
func taskWorkerPIDs(ms *mpServer, id int) []int {
	var pids []int
	for _, e := range ms.events() {
		if e.Name == "workerstart" && e.int(0) == id {
			pids = append(pids, e.PID)
		}
	}
	return pids
}

func taskWantFields(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

// TestTaskManyConcurrent: 10,000 tasks from several workers (4 connections over 2 workers,
// 2,500 each, 200 in flight), every result matched to its task id and payload, in both
// task_ipc_mode 1 and 3.
func TestTaskManyConcurrent(t *testing.T) {
	for _, mode := range []string{"1", "3"} {
		t.Run("mode"+mode, func(t *testing.T) {
			ms := taskStart(t, taskEnvMode+"="+mode, taskEnvTasks+"=2")
			var clients []*mpClient
			workers := map[int]bool{}
			for range 4 {
				c := ms.dial()
				id, _, _ := c.who()
				workers[id] = true
				clients = append(clients, c)
			}
			if len(workers) != 2 {
				t.Logf("connections landed on workers %v (the kernel chose)", workers)
			}
			for _, c := range clients {
				c.send("burst 2500 200 echo")
			}
			for _, c := range clients {
				taskWantFields(t, "burst", c.read(), "burst", "2500", "0", "0")
			}
			c := clients[0]
			ms.eventually("queue drained", func() bool {
				f := c.do("stats")
				return f[3] == "0" && f[4] == "0" && f[5] == "0"
			})
		})
	}
}

// TestTaskWaitTimeoutLateResult: a TaskWait that times out gets 2003; its late result is
// dropped with a warning and never reaches the next waiter.
func TestTaskWaitTimeoutLateResult(t *testing.T) {
	ms := taskStart(t, mpEnvWorkers+"=1", taskEnvTasks+"=1")
	c := ms.dial()
	taskWantFields(t, "timed out", c.do("tw 100 -1 sleep 400 late"), "tw", "2003")
	// The same task worker is still busy with the late task: this one queues behind it and
	// must get its own result, not the late one.
	taskWantFields(t, "next", c.do("tw 5000 -1 echo fresh"), "tw", "0", "r:fresh")
	ms.eventually("late-result warning", func() bool {
		return strings.Contains(ms.output(), "after its wait timed out")
	})
	taskWantFields(t, "nil", c.do("tw 2000 -1 nil"), "tw", "509")
	taskWantFields(t, "finish", c.do("tw 2000 -1 finish a"), "tw", "0", "f:a")
}

// TestTaskDst: dst picks the task worker (index → global id worker_num + index); an index
// out of range is refused with 503.
func TestTaskDst(t *testing.T) {
	ms := taskStart(t, mpEnvWorkers+"=2", taskEnvTasks+"=3")
	c := ms.dial()
	for dst := range 3 {
		f := c.do("tw 5000 " + strconv.Itoa(dst) + " who")
		if len(f) != 5 || f[1] != "0" || f[2] != strconv.Itoa(2+dst) || f[3] != "true" {
			t.Fatalf("dst %d: %q", dst, f)
		}
		// GetWorkerPID and GetWorkerStatus answer for task worker ids.
		p := c.do("pid " + strconv.Itoa(2+dst))
		if p[1] != f[4] || p[3] != "0" || (p[2] != "1" && p[2] != "2") {
			t.Fatalf("pid of task worker %d: %q, want pid %s", 2+dst, p, f[4])
		}
	}
	taskWantFields(t, "dst 3", c.do("tw 100 3 echo x"), "tw", "503")
	taskWantFields(t, "dst -2", c.do("tw 100 -2 echo x"), "tw", "503")
	// SendMessage to a task worker reaches its OnPipeMessage.
	taskWantFields(t, "msg", c.do("msg 3 hello"), "msg", "0")
	ms.waitEvent("pipemessage", func(e mpEv) bool { return e.Fields[0] == "3" && e.Fields[1] == "true" && e.Fields[3] == "hello" })
	// Errors: Task inside a task worker, Finish in a worker, TaskWaitMulti above 1024.
	taskWantFields(t, "task in task worker", c.do("tw 5000 -1 task"), "tw", "0", "code", "507")
	taskWantFields(t, "finish in worker", c.do("finish"), "finish", "503")
	taskWantFields(t, "multi 1025", c.do("manymulti 1025"), "manymulti", "505")
}

// TestTaskMultiAndCo: results by index; a timed-out task's entry is nil.
func TestTaskMultiAndCo(t *testing.T) {
	ms := taskStart(t, mpEnvWorkers+"=1", taskEnvTasks+"=3")
	c := ms.dial()
	taskWantFields(t, "multi", c.do("multi 3000 echo a|echo b|echo c"), "multi", "0", "r:a|r:b|r:c")
	// The echo tasks have the whole timeout (3 s, a loaded machine included); the sleeping
	// one outlasts it by as much.
	taskWantFields(t, "multi timeout", c.do("multi 3000 echo a|sleep 6000 b|echo c"), "multi", "0", "r:a|-|r:c")
	taskWantFields(t, "co", c.do("co 3000 echo a|nil|echo c"), "co", "0", "r:a|-|r:c")
}

// TestTaskPreemptive: task_ipc_mode 3 spreads tasks over the idle task workers.
func TestTaskPreemptive(t *testing.T) {
	ms := taskStart(t, mpEnvWorkers+"=1", taskEnvTasks+"=3", taskEnvMode+"=3")
	c := ms.dial()
	// Each task lasts 1 s: long enough that every task worker takes one, even on a loaded
	// machine where one wakes late.
	taskWantFields(t, "burst", c.do("burst 6 6 sleep 1000"), "burst", "6", "0", "0")
	seen := map[string]bool{}
	for _, e := range ms.events() {
		if e.Name == "taskstart" {
			seen[e.Fields[0]] = true
		}
	}
	if len(seen) != 3 {
		t.Fatalf("tasks ran on task workers %v; want all 3", seen)
	}
	// Large payloads spill to task_tmpdir (a task cannot be split across readers), both ways.
	taskWantFields(t, "big task", c.do("bigtw 100000 0"), "bigtw", "0", "len", "100000", "sum", strconv.Itoa(100000*0xfe))
	taskWantFields(t, "big result", c.do("bigtw 0 3000000"), "bigtw", "0", "len", "3000000", "ok", "true")
	if left, _ := os.ReadDir(ms.dir + "/tmp"); len(left) != 0 {
		t.Fatalf("task_tmpdir keeps %d files", len(left))
	}
}

// TestTaskKilledMidTask: a task worker SIGKILLed during a task: the waiter times out, the
// manager starts a new task worker, and tasks work again.
func TestTaskKilledMidTask(t *testing.T) {
	ms := taskStart(t, mpEnvWorkers+"=1", taskEnvTasks+"=1")
	c := ms.dial()
	c.send("tw 1500 -1 sleep 10000 doomed")
	ev := ms.waitEvent("taskstart", nil)
	if err := syscall.Kill(ev.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	taskWantFields(t, "killed", c.read(), "tw", "2003")
	ms.waitEvent("workererror", func(e mpEv) bool { return e.int(0) == 1 && e.int(1) == ev.PID })
	ms.eventually("replacement", func() bool { return len(taskWorkerPIDs(ms, 1)) == 2 })
	taskWantFields(t, "after", c.do("tw 5000 -1 echo back"), "tw", "0", "r:back")
	f := c.do("stats")
	taskWantFields(t, "stats", f, "stats", "1", "1", "0", "0", "0")
}

// TestTaskReloadUnderLoad: Reload(true) (SIGUSR2) restarts only the task workers, one at a
// time, while tasks stream in: no task is lost.
func TestTaskReloadUnderLoad(t *testing.T) {
	ms := taskStart(t, mpEnvWorkers+"=2", taskEnvTasks+"=2")
	a, b := ms.dial(), ms.dial()
	a.send("burst 1500 64 sleep 1")
	b.send("burst 1500 64 sleep 1")
	ms.eventually("tasks running", func() bool { return ms.count("taskstart", nil) > 100 })
	ms.signal(syscall.SIGUSR2)
	taskWantFields(t, "a", a.read(), "burst", "1500", "0", "0")
	taskWantFields(t, "b", b.read(), "burst", "1500", "0", "0")
	ms.waitEvent("afterreload", nil)
	for _, id := range []int{2, 3} {
		if n := len(taskWorkerPIDs(ms, id)); n != 2 {
			t.Fatalf("task worker %d started %d times; want 2 (reloaded once)", id, n)
		}
	}
	for _, id := range []int{0, 1} {
		if n := len(taskWorkerPIDs(ms, id)); n != 1 {
			t.Fatalf("worker %d started %d times; a task reload must not touch it", id, n)
		}
	}
	// Reload(true) from a worker does the same.
	taskWantFields(t, "reloadtask", a.do("reloadtask"), "reloadtask", "0")
	ms.eventually("second reload", func() bool { return len(taskWorkerPIDs(ms, 2)) == 3 && len(taskWorkerPIDs(ms, 3)) == 3 })
	taskWantFields(t, "after", a.do("tw 5000 -1 echo ok"), "tw", "0", "r:ok")
}

// TestTaskSingleWorkerCoroutine: worker_num 1 with task workers runs a manager, one worker
// and the task workers; a TaskWait in a callback leaves the loop serving other connections.
func TestTaskSingleWorkerCoroutine(t *testing.T) {
	ms := taskStart(t, mpEnvWorkers+"=1", taskEnvTasks+"=1")
	a, b := ms.dial(), ms.dial()
	a.send("tw 5000 -1 sleep 600 slow")
	ms.waitEvent("taskstart", nil)
	// While a's callback waits, b is served at once by the same (only) worker.
	taskWantFields(t, "b", b.do("echo hi"), "hi")
	taskWantFields(t, "a", a.read(), "tw", "0", "r:slow")
	if n := ms.count("workerstart", nil); n != 2 {
		t.Fatalf("%d processes started; want 1 worker + 1 task worker", n)
	}
}

// TestTaskNoCoroutine: with enable_coroutine false a TaskWait holds the loop.
func TestTaskNoCoroutine(t *testing.T) {
	ms := taskStart(t, mpEnvWorkers+"=1", taskEnvTasks+"=1", taskEnvCoroutine+"=0")
	a, b := ms.dial(), ms.dial()
	a.send("tw 5000 -1 sleep 400 slow")
	ms.waitEvent("taskstart", nil)
	b.send("echo hi")
	taskWantFields(t, "a first", a.read(), "tw", "0", "r:slow")
	taskWantFields(t, "then b", b.read(), "hi")
	taskWantFields(t, "fast", a.do("tw 5000 -1 echo x"), "tw", "0", "r:x")
}

// TestTaskQueueFull: the queue holds task_worker_num × 1024 tasks; beyond, Task waits for
// room (up to max_wait_time, then 9007: task_routing_test.go), so 1,200 tasks sent while the
// task worker sleeps 1 s are all sent and all deliver their results; the queue then drains.
func TestTaskQueueFull(t *testing.T) {
	ms := taskStart(t, mpEnvWorkers+"=1", taskEnvTasks+"=1")
	c := ms.dial()
	f := c.do("flood 1200 1000")
	if len(f) != 4 || f[1] != "1200" || f[2] != "0" || atoi(f[3]) > 1024 {
		t.Fatalf("flood: %q; want all 1200 sent, at most 1024 queued at once", f)
	}
	ms.eventually("drained", func() bool { return ms.count("finish", nil) == atoi(f[1]) })
	taskWantFields(t, "stats", c.do("stats"), "stats", "1", "1", "0", "0", "0")
}

// TestTaskMaxRequest: task_max_request replaces a task worker after that many tasks, losing
// none.
func TestTaskMaxRequest(t *testing.T) {
	ms := taskStart(t, mpEnvWorkers+"=1", taskEnvTasks+"=1", taskEnvMax+"=5")
	c := ms.dial()
	taskWantFields(t, "burst", c.do("burst 20 1 echo"), "burst", "20", "0", "0")
	ms.eventually("replacements", func() bool { return len(taskWorkerPIDs(ms, 1)) >= 3 })
	if ms.count("workererror", nil) != 0 {
		t.Fatalf("a task_max_request restart reported WorkerError")
	}
}

// TestTaskStartErrors: task settings checked at Start, before any process starts.
func TestTaskStartErrors(t *testing.T) {
	s := newEcho(t, map[string]any{"task_worker_num": 1})
	wantCode(t, s, "Start without OnTask", s.Start(), swoole.ErrServerInvalidCallback)
	s = newEcho(t, map[string]any{"task_worker_num": 1, "task_ipc_mode": 2})
	s.OnTask(func(*swoole.Server, int, int, []byte) any { return nil })
	wantCode(t, s, "Start with task_ipc_mode 2", s.Start(), swoole.ErrOperationNotSupport)
	s = newEcho(t, nil)
	_, err := s.Task("x", -1)
	wantCode(t, s, "Task before Start", err, swoole.ErrRefused)
}

var _ = time.Second

// TestTaskCommand: Command to a task worker, by its index (Swoole's processId for
// CommandTaskWorker), runs there and answers; an index out of range is 505.
func TestTaskCommand(t *testing.T) {
	ms := taskStart(t)
	c := ms.dial()
	for idx := range 2 {
		f := c.do("cmdtask " + strconv.Itoa(idx))
		if len(f) != 6 || f[1] != "0" || f[2] != strconv.Itoa(2+idx) || f[3] != "true" || f[5] != "hi" {
			t.Fatalf("Command to task worker %d: %q, want worker id %d, a task worker, data hi", idx, f, 2+idx)
		}
	}
	if f := c.do("cmdtask 2"); len(f) < 2 || f[1] != strconv.Itoa(swoole.ErrInvalidParams) {
		t.Fatalf("Command to task worker 2 of 2: %q, want 505", f)
	}
}

// TestTaskEnableCoroutine: with task_enable_coroutine one task worker runs several OnTask at
// once: three tasks that each wait for the other two all complete (run one at a time, the
// first would give up alone), and Finish from a task's goroutine finishes that task.
func TestTaskEnableCoroutine(t *testing.T) {
	ms := taskStart(t, mpEnvWorkers+"=1", taskEnvTasks+"=1", taskEnvCo+"=1")
	c := ms.dial()
	taskWantFields(t, "co barrier", c.do("multi 8000 barrier 3 a|barrier 3 b|barrier 3 f"), "multi", "0", "met:a|met:b|finished:f")
	// Without it, the same tasks run one at a time: each waits alone.
	ms2 := taskStart(t, mpEnvWorkers+"=1", taskEnvTasks+"=1")
	c2 := ms2.dial()
	f := c2.do("multi 20000 barrier 2 a|barrier 2 b")
	if len(f) != 3 || !strings.HasPrefix(f[2], "alone:a|") {
		t.Fatalf("without task_enable_coroutine: %q, want the first task alone", f)
	}
}

// TestTaskWorkerStopped: Stop with a task worker's id (they follow the workers' ids, as in
// Swoole's kill_worker) replaces that task worker, asked from a worker, in both process
// modes; tasks go on, and an id past the task workers is refused.
func TestTaskWorkerStopped(t *testing.T) {
	for _, mode := range []string{"base", "process"} {
		t.Run(mode, func(t *testing.T) {
			env := []string{mpEnvWorkers + "=1", taskEnvTasks + "=2"}
			if mode == "process" {
				env = append(env, mpEnvMode+"=process")
			}
			ms := taskStart(t, env...)
			c := ms.dial()
			ms.eventually("task worker 2 started", func() bool { return len(taskWorkerPIDs(ms, 2)) == 1 })
			old := taskWorkerPIDs(ms, 2)[0]
			taskWantFields(t, "stop 2", c.do("stop 2"), "stop", "0")
			ms.eventually("task worker 2 replaced", func() bool { return len(taskWorkerPIDs(ms, 2)) == 2 })
			if !mpGoneWithin(old, mpTimeout) {
				t.Fatalf("the stopped task worker %d still exists", old)
			}
			// Task worker 1 (TaskWait's index) is id 2.
			taskWantFields(t, "a task to the new one", c.do("tw 5000 1 echo again"), "tw", "0", "r:again")
			taskWantFields(t, "stop 3", c.do("stop 3"), "stop", "505")
		})
	}
}
