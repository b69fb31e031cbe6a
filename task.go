package swoole

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goswoole/swoole/internal/ipc"
	"github.com/goswoole/swoole/internal/reactor"
	"github.com/goswoole/swoole/internal/supervisor"
)

// Task workers (task_worker_num > 0): see docs/process-model.md, "Task workers".
//
//	worker w ── Task(data, dst) ──► ipc.w.<W+dst>  (task_ipc_mode 1, or any dst ≥ 0)
//	                            └─► ipc.tq         (task_ipc_mode 3 and dst -1: one shared
//	                                                queue, each task read by one idle task worker)
//	task worker ── OnTask ── Finish / return value ──► ipc.res.<w> ──► worker w: the waiter
//	                                                   (TaskWait, TaskWaitMulti, TaskCo), the
//	                                                   task's callback, or OnFinish
//
// Each worker reads its results on a pipe of its own (ipc.res), apart from its main pipe: a
// TaskWait on the loop then runs the loop nested (reactor.RunUntil) and reads results
// without ever re-entering the main pipe's reader, which may be the very call (an
// OnPipeMessage) that is waiting.

// Flags of a task message (Header.Aux), echoed in its TypeFinish.
const (
	taskFlagSpill    uint16 = 1 << 0 // the payload is the path of a file in task_tmpdir
	taskFlagWait     uint16 = 1 << 1 // the sender waits for the result (TaskWait, TaskWaitMulti, TaskCo)
	taskFlagCallback uint16 = 1 << 2 // the sender has a callback for this task
	taskFlagNoResult uint16 = 1 << 3 // (finish) OnTask returned nil and did not call Finish
)

// Limits of the task machinery.
const (
	// taskQueueMaxPerWorker bounds the tasks queued (sent, not yet taken by a task worker),
	// server-wide, per task worker: beyond task_worker_num × this, Task fails at once with
	// 9007 and nothing is queued.
	taskQueueMaxPerWorker = 1024
	// taskQueueMaxBytes bounds the payload bytes queued, per task worker, likewise.
	taskQueueMaxBytes = 64 << 20
	// taskInlineMax is the largest task payload carried in the pipe: one datagram, so that
	// a task is never split into chunks that several task workers (task_ipc_mode 3) or an
	// old and a new task worker (reload) could each take part of. Larger ones spill to a
	// file in task_tmpdir.
	taskInlineMax = ipc.DefaultMaxPayload
	// finishInlineMax is the largest result carried in the pipe (chunked); larger ones
	// spill to a file.
	finishInlineMax = 1 << 20
	// taskWaitMultiMax is the most tasks TaskWaitMulti and TaskCo take, as in Swoole.
	taskWaitMultiMax = 1024
	// taskWaitDefault is TaskWait's timeout when none is given (Swoole's 0.5 s).
	taskWaitDefault = 500 * time.Millisecond
	// File names of the inheritance (besides manager.go's).
	fileTaskQueue   = "ipc.tq"    // task_ipc_mode 3: the shared queue's write end (workers)
	fileTaskQueueIn = "ipc.tq.in" // ... its read end (every task worker)
	fileResIn       = "ipc.res"   // a worker's result pipe, read end
	filePrefixRes   = "ipc.res."  // worker j's result pipe, write end (task workers)
	spillPrefix     = "goswoole-task-"
)

// taskState is the task machinery of one process of a server with task workers.
type taskState struct {
	s       *Server
	w, t    int // worker_num, task_worker_num: task worker i has the global id w+i
	mode    int // task_ipc_mode
	tmpdir  string
	spillNm string // spill file name prefix: goswoole-task-<manager pid>-
	// spillOwner is the uid and gid of the workers when they drop privileges (user/group)
	// and this process is the manager, running as root: the files it spills are theirs.
	spillOwner *[2]int

	nextID atomic.Int64  // task ids of this sending process, from 0
	rr     atomic.Uint32 // round robin over task workers (dst -1, mode 1)

	mu    sync.Mutex
	waits map[int64]*taskWaiter // tasks whose result someone waits for or has a callback for

	queue   *ipc.Writer   // mode 3: the shared queue (workers and the manager)
	res     *ipc.Reader   // a worker: its result pipe
	resOut  []*ipc.Writer // a task worker: the workers' result pipes
	strict  int           // waits without enable_coroutine in progress (loop goroutine only)
	runner  *taskRunner   // a task worker's state
	mgrPair [2]*os.File   // mode 3, manager: the shared queue
	resPair [][2]*os.File // manager: each worker's result pipe

	inHandTab  *inHandTable  // the tasks the task workers hold (task_inhand.go)
	inHandFile *os.File      // manager: its file
	lostOut    []*ipc.Writer // manager: each worker's result pipe, for the lost answers
}

// taskWaiter is one task whose result is awaited or has a callback.
type taskWaiter struct {
	cb     func(s *Server, taskID int, data []byte)
	ch     chan struct{} // closed when done
	done   atomic.Bool
	result []byte
	err    error
	// claimed: ModeThread's result and timeout race for the waiter; the first one wins
	// (thread_task.go).
	claimed atomic.Bool
	// wake: ModeThread, the worker loop that serves its queue while it waits (waitTasks):
	// the result posts to it, so that the wait sees it.
	wake atomic.Pointer[reactor.Loop]
}

// deliver gives wt its outcome, unless its wait gave up first (ModeThread and the task
// backend, where result and timeout race through claimed); it reports whether it did, and
// wakes the loop that waits for it, if one does (wake).
func (wt *taskWaiter) deliver(result []byte, err error) bool {
	if !wt.claimed.CompareAndSwap(false, true) {
		return false
	}
	wt.result, wt.err = result, err
	wt.done.Store(true)
	close(wt.ch)
	if l := wt.wake.Load(); l != nil {
		l.Post(wakeNoop)
	}
	return true
}

// wakeNoop is what a result posts to a loop that waits for it.
var wakeNoop = reactor.Task{Fn: func() {}}

// allDone reports whether every waiter of ws has its outcome.
func allDone(ws []*taskWaiter) bool {
	for _, wt := range ws {
		if !wt.done.Load() {
			return false
		}
	}
	return true
}

// giveUp ends a wait: each waiter still open is claimed, so that its result, if it comes, is
// dropped as late; one whose result is being delivered right now is waited for. It reports
// whether every waiter has its outcome.
func giveUp(ws []*taskWaiter) bool {
	for _, wt := range ws {
		if !wt.claimed.CompareAndSwap(false, true) {
			<-wt.ch // its result is being delivered right now
		}
	}
	return allDone(ws)
}

// errNoResult is the outcome of task id whose OnTask returned nil and did not call Finish.
func errNoResult(id int64) error {
	return newError(ErrWrongOperation, "task %d: OnTask returned nil and did not call Finish: there is no result", id)
}

// newTaskState sets up the task machinery at Start, when task_worker_num > 0.
func newTaskState(s *Server) *taskState {
	return &taskState{s: s, w: s.eff.WorkerNum, t: s.eff.TaskWorkerNum, mode: s.eff.TaskIPCMode, tmpdir: s.eff.TaskTmpdir, waits: make(map[int64]*taskWaiter)}
}

// checkTaskSettings validates the task settings at Start (s.mu held) and prepares s.task.
func (s *Server) checkTaskSettings() error {
	if s.eff.TaskWorkerNum <= 0 {
		return nil
	}
	if s.eff.TaskIPCMode == 2 {
		return newError(ErrOperationNotSupport, "task_ipc_mode 2 (System V message queue) is not available in goswoole: use 1 (a socket pair per task worker, targeted) or 3 (a shared queue idle task workers take from)")
	}
	if s.cb.task == nil {
		return newError(ErrServerInvalidCallback, "task_worker_num %d requires an OnTask callback: register one with OnTask before Start", s.eff.TaskWorkerNum)
	}
	s.task = newTaskState(s)
	return nil
}

// isTaskWorker reports whether this process is a task worker.
func (s *Server) isTaskWorker() bool {
	return s.tableLive() && s.run.role() == roleTaskWorker
}

// taskTransport is how a process (or a ModeThread handle) sends tasks and waits for their
// results: taskState's pipes, or ModeThread's queues (threadTaskSender).
type taskTransport interface {
	send(call string, data any, dst int, flags uint16, wt *taskWaiter) (int, error)
	wait(ws []*taskWaiter, ids []int64, timeout time.Duration) bool
	inWorker() bool
}

// taskSender returns the task transport for a sending call, or the error the call gets.
func (s *Server) taskSender(call string) (taskTransport, error) {
	if err := s.running(call); err != nil {
		return nil, err
	}
	if b := s.taskBackend; b != nil { // task_backend.go
		if err := s.run.sendsTasks(call); err != nil {
			return nil, err
		}
		return backendSender{s: s, b: b}, nil
	}
	ts := s.task
	if ts == nil {
		return nil, s.noTaskWorkers(call)
	}
	if err := s.run.sendsTasks(call); err != nil {
		return nil, err
	}
	if th := s.thr; th != nil {
		return threadTaskSender{s: s, tt: &th.tasks}, nil
	}
	return ts, nil
}

// noTaskWorkers is the error every task call gets on a server without task workers.
func (s *Server) noTaskWorkers(call string) error {
	if err := s.running(call); err != nil {
		return err
	}
	return s.fail(newError(ErrOperationNotSupport, "%s: the server has no task workers: set task_worker_num > 0 and register OnTask", call))
}

// Task sends data to a task worker and returns the task id at once; OnTask runs there, and a
// result (OnTask's non-nil return value, or Finish) arrives in OnFinish in this worker.
// dstWorkerID is the task-worker index (0 … task_worker_num−1) or -1 for any: an idle one
// when there is one (task_ipc_mode 1), else the next in turn; with task_ipc_mode 3 the first
// task worker to be free takes it. data is sent as is when it is []byte or a string, else
// through the server's codec (decode it with Decode).
//
// Task ids are counted per sending process, from 0. Task may be called from any goroutine
// of a worker, or from the manager, the master or a user process (one-way: the result is
// dropped, and Finish there is an error). The task queue holds task_worker_num × 1024 tasks
// and task_worker_num × 64 MiB sent and not yet taken by a task worker; while it is full,
// Task waits for room, up to max_wait_time (Settings.MaxWaitTime, default 3 s), blocking the
// caller (on the worker's loop, the worker: as Swoole's task() blocks on a full pipe), so a
// burst larger than the queue from one callback is sent whole and in order once the task
// workers take tasks. If the queue stays full that long, Task fails with
// ErrServerNoIdleWorker (9007) and sends nothing.
// Errors: 503 for a dstWorkerID out of range, 507 in a task worker or without task workers,
// 505 for a payload the codec cannot encode, 9007 as above.
//
// A server joined to a cluster with the cluster task backend (package cluster,
// Config.Tasks = TasksCluster) sends this task and those of TaskWithCallback, TaskWait,
// TaskWaitMulti and TaskCo to the cluster instead: see that package, "The server's own tasks".
func (s *Server) Task(data any, dstWorkerID int) (int, error) {
	ts, err := s.taskSender("Task")
	if err != nil {
		return -1, err
	}
	return ts.send("Task", data, dstWorkerID, 0, nil)
}

// TaskWithCallback is Task with a handler for this task's result, which runs instead of
// OnFinish, on this worker's loop. It is called only when the task produces a result (data
// is then never nil, even when empty), or once, at once, with nil data and GetLastError
// ErrTaskTimeout (2003), when the task worker that held the task died (killed, crashed)
// before it answered.
func (s *Server) TaskWithCallback(data any, dstWorkerID int, cb func(s *Server, taskID int, data []byte)) (int, error) {
	ts, err := s.taskSender("TaskWithCallback")
	if err != nil {
		return -1, err
	}
	if cb == nil {
		return -1, s.fail(newError(ErrInvalidParams, "TaskWithCallback: the callback is nil: use Task for OnFinish"))
	}
	if !ts.inWorker() {
		return -1, s.fail(newError(ErrOperationNotSupport, "TaskWithCallback: only a worker receives results; from the manager use Task (one-way)"))
	}
	return ts.send("TaskWithCallback", data, dstWorkerID, taskFlagCallback, &taskWaiter{cb: cb})
}

// TaskWait sends a task and waits up to timeout (0 or less: 0.5 s, as Swoole) for its
// result. Called in a callback on the worker's loop with enable_coroutine (the default), the
// loop keeps serving other events while it waits (but not the connection whose callback
// waits); with enable_coroutine false the loop waits. From a goroutine of the user's own it
// just blocks that goroutine. A result that arrives after the timeout is dropped with a
// warning (2003). A task whose task worker dies while holding it fails at once with 2003
// (TaskWaitMulti and TaskCo give nil for it); the tasks queued behind it are run by the
// replacement. Errors: ErrTaskTimeout (2003) on timeout; ErrWrongOperation (509) when
// OnTask returned nil and did not call Finish; those of Task.
func (s *Server) TaskWait(data any, timeout time.Duration, dstWorkerID int) ([]byte, error) {
	ts, err := s.taskSender("TaskWait")
	if err != nil {
		return nil, err
	}
	if !ts.inWorker() {
		return nil, s.notAWaiter("TaskWait")
	}
	wt := &taskWaiter{ch: make(chan struct{})}
	id, err := ts.send("TaskWait", data, dstWorkerID, taskFlagWait, wt)
	if err != nil {
		return nil, err
	}
	if !ts.wait([]*taskWaiter{wt}, []int64{int64(id)}, timeout) {
		return nil, s.fail(newError(ErrTaskTimeout, "TaskWait: task %d got no result within %v", id, orDefault(timeout)))
	}
	if wt.err != nil {
		return nil, s.fail(wt.err)
	}
	return wt.result, nil
}

// TaskWaitMulti sends tasks (at most 1024) to any task workers and waits up to timeout (0 or
// less: 0.5 s) for all of their results, which it returns by index; a nil entry is a task
// that timed out or gave no result. It waits as TaskWait does.
func (s *Server) TaskWaitMulti(tasks []any, timeout time.Duration) ([][]byte, error) {
	return s.taskMulti("TaskWaitMulti", tasks, timeout)
}

// TaskCo sends tasks (at most 1024) concurrently and waits up to timeout (0 or less: 0.5 s);
// a nil entry marks a task that failed (could not be sent, gave no result) or timed out. It
// waits as TaskWait does.
func (s *Server) TaskCo(tasks []any, timeout time.Duration) ([][]byte, error) {
	return s.taskMulti("TaskCo", tasks, timeout)
}

// notAWaiter is the error of a call that waits for task results where none can come back.
func (s *Server) notAWaiter(call string) error {
	if s.mode == ModeThread && s.run.role() == roleMaster {
		// The handle NewServer returned, captured by a callback's closure: the usual slip.
		return s.fail(newError(ErrOperationNotSupport, "%s: this is the master's handle (the one NewServer returned), which receives no task results; in a callback, call it on the *Server the callback receives (its worker's handle)", call))
	}
	return s.fail(newError(ErrOperationNotSupport, "%s: only a worker can wait for results; from the %s use Task (one-way)", call, s.run.role()))
}

func (s *Server) taskMulti(call string, tasks []any, timeout time.Duration) ([][]byte, error) {
	ts, err := s.taskSender(call)
	if err != nil {
		return nil, err
	}
	if len(tasks) > taskWaitMultiMax {
		return nil, s.fail(newError(ErrInvalidParams, "%s: %d tasks; at most %d at once: split them", call, len(tasks), taskWaitMultiMax))
	}
	if !ts.inWorker() {
		return nil, s.notAWaiter(call)
	}
	out := make([][]byte, len(tasks))
	var waiters []*taskWaiter
	var ids []int64
	var idx []int
	var firstErr error
	for i, d := range tasks {
		wt := &taskWaiter{ch: make(chan struct{})}
		id, err := ts.send(call, d, -1, taskFlagWait, wt)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		waiters, ids, idx = append(waiters, wt), append(ids, int64(id)), append(idx, i)
	}
	if len(waiters) == 0 && firstErr != nil {
		return out, firstErr
	}
	ts.wait(waiters, ids, timeout)
	for k, wt := range waiters {
		if wt.done.Load() && wt.err == nil {
			out[idx[k]] = wt.result
		}
	}
	return out, nil
}

// Finish sends the result of the task OnTask is running back to the worker that sent it
// (OnFinish, its callback, or its TaskWait). Only in a task worker, during OnTask (from its
// goroutine or another), once per task; OnTask's non-nil return value does the same.
// Errors: ErrRefused (503) outside a task worker; ErrWrongOperation (509) outside OnTask
// (a timer, OnPipeMessage), for a second Finish of one task, and for a task sent by the
// manager, the master or a user process, which receive no results (Swoole refuses Finish
// there too); the result is then dropped.
func (s *Server) Finish(data any) error {
	if err := s.running("Finish"); err != nil {
		return err
	}
	return s.run.finish(data)
}

func orDefault(d time.Duration) time.Duration {
	if d <= 0 {
		return taskWaitDefault
	}
	return d
}

// inWorker reports whether this process is an event worker (it has a result pipe).
func (ts *taskState) inWorker() bool { return ts.res != nil && ts.s.cur != nil }

// send dispatches one task; wt, when not nil, is registered for its result.
func (ts *taskState) send(call string, data any, dst int, flags uint16, wt *taskWaiter) (int, error) {
	s := ts.s
	if dst < -1 || dst >= ts.t {
		return -1, s.fail(newError(ErrRefused, "%s: no task worker %d: task worker indexes are 0 to %d, or -1 for any", call, dst, ts.t-1))
	}
	payload, err := encode(data)
	if err != nil {
		return -1, s.fail(err)
	}
	size := int64(len(payload))
	ctr := s.table.Counters()
	if err := ts.room(call, size); err != nil {
		return -1, err
	}
	id := ts.nextID.Add(1) - 1
	var spilled string
	if len(payload) > taskInlineMax {
		if spilled, err = ts.spill(payload); err != nil {
			return -1, s.fail(&Error{Code: ErrTaskPackageTooBig, Msg: fmt.Sprintf("swoole: %s: cannot write the %d-byte payload to task_tmpdir %q", call, len(payload), ts.tmpdir), Err: err})
		}
		payload, flags = []byte(spilled), flags|taskFlagSpill
	}
	if wt != nil {
		ts.mu.Lock()
		ts.waits[id] = wt
		ts.mu.Unlock()
	}
	ctr.TaskQueueNum.Add(1)
	ctr.TaskQueueBytes.Add(size)
	h := ipc.Header{Type: ipc.TypeTask, SrcWorker: s.mp.src, Fd: id, Aux: flags}
	s.flushBeforeHandoff()
	wr := ts.target(dst)
	if s.run.asyncPipes() {
		err = wr.Write(h, payload) // queued if the pipe is full: the loop flushes it
	} else {
		// The manager, the master and user processes have no loop to flush a queue.
		err = wr.WriteBlocking(h, payload, time.Now().Add(s.eff.MaxWaitTime))
	}
	if err != nil {
		ctr.TaskQueueNum.Add(-1)
		ctr.TaskQueueBytes.Add(-size)
		if wt != nil {
			ts.mu.Lock()
			delete(ts.waits, id)
			ts.mu.Unlock()
		}
		if spilled != "" {
			os.Remove(spilled)
		}
		if errors.Is(err, ipc.ErrQueueFull) || errors.Is(err, ipc.ErrTimeout) {
			return -1, s.fail(newError(ErrServerNoIdleWorker, "%s: the pipe to the task workers is full: try again later", call))
		}
		return -1, s.fail(&Error{Code: ErrTaskDispatchFail, Msg: "swoole: " + call + ": cannot send the task", Err: err})
	}
	return int(id), nil
}

// room waits until the task queue has room for one more task of size bytes (see Task): it
// returns at once while the queue holds fewer than task_worker_num × taskQueueMaxPerWorker
// tasks and task_worker_num × taskQueueMaxBytes bytes, else it polls the shared counters,
// sending meanwhile what this process queued for the task workers, for up to max_wait_time,
// and then fails with 9007. It blocks the calling goroutine (the worker's loop too, as
// Swoole's task() blocks the worker on a full pipe): no other callback runs in between, so
// tasks sent from one callback keep their order.
func (ts *taskState) room(call string, size int64) error {
	s := ts.s
	ctr := s.table.Counters()
	maxN, maxB := int64(ts.t*taskQueueMaxPerWorker), int64(ts.t)*taskQueueMaxBytes
	full := func() (bool, int64, int64) {
		n, b := ctr.TaskQueueNum.Load(), ctr.TaskQueueBytes.Load()
		return n >= maxN || b+size > maxB, n, b
	}
	isFull, n, b := full()
	if !isFull {
		return nil
	}
	if size > maxB {
		return s.fail(newError(ErrServerNoIdleWorker, "%s: a %d-byte task is larger than the task queue (%d bytes): split the data", call, size, maxB))
	}
	if w := s.cur; w != nil && w.loop.OnLoop() {
		s.flushReplies() // replies made before this wait do not wait with it
	}
	deadline := time.Now().Add(s.eff.MaxWaitTime)
	pause := 50 * time.Microsecond
	for {
		ts.flushTasks()
		if isFull, n, b = full(); !isFull {
			return nil
		}
		if !time.Now().Before(deadline) {
			return s.fail(newError(ErrServerNoIdleWorker, "%s: the task queue stayed full for max_wait_time (%v; %d tasks, %d bytes waiting for a task worker; at most %d tasks and %d bytes): the task workers do not keep up; try again later or add task workers", call, s.eff.MaxWaitTime, n, b, maxN, maxB))
		}
		time.Sleep(min(pause, time.Until(deadline)))
		pause = min(2*pause, 2*time.Millisecond)
	}
}

// flushTasks sends what this process queued on the task workers' pipes (while it waits for
// room, its loop does not).
func (ts *taskState) flushTasks() {
	mp := ts.s.mp
	for _, wr := range append(mp.toWorker[ts.w:ts.w+ts.t:ts.w+ts.t], ts.queue) {
		if wr != nil && wr.Buffered() > 0 {
			_, _ = wr.Flush()
		}
	}
}

// taskPipeConfig is cfg for a worker's Writer on the pipe of process id: a task worker's
// carries one message per datagram (no packing), as the shared queue does. A task worker
// reads one datagram at a time, so it then holds one task at a time: should it die, the
// tasks queued behind it stay in the pipe for its replacement.
func (s *Server) taskPipeConfig(cfg ipc.Config, id int) ipc.Config {
	if id >= s.eff.WorkerNum && id < s.procSlots() {
		cfg.NoPacking = true
	}
	return cfg
}

// target picks the pipe for a task to dst (-1: any).
func (ts *taskState) target(dst int) *ipc.Writer {
	mp := ts.s.mp
	if dst >= 0 {
		return mp.toWorker[ts.w+dst]
	}
	if ts.mode == 3 && ts.queue != nil {
		return ts.queue
	}
	// Mode 1: the first idle task worker from the round-robin position, else the next one
	// in turn (it queues behind its current task).
	start := int(ts.rr.Add(1)) % ts.t
	for k := range ts.t {
		i := (start + k) % ts.t
		if ws := ts.s.table.Worker(ts.w + i); ws != nil && ws.Status.Load() == WorkerIdle {
			return mp.toWorker[ts.w+i]
		}
	}
	return mp.toWorker[ts.w+start]
}

// spill writes a payload to a new file in task_tmpdir and returns its path; the reader
// removes it.
func (ts *taskState) spill(payload []byte) (string, error) {
	f, err := os.CreateTemp(ts.tmpdir, ts.spillNm+"*")
	if err != nil {
		return "", err
	}
	if o := ts.spillOwner; o != nil {
		err = f.Chown(o[0], o[1])
	}
	if err == nil {
		_, err = f.Write(payload)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// unspill reads and removes a spilled payload.
func (ts *taskState) unspill(path []byte) ([]byte, error) {
	name := string(path)
	if filepath.Dir(name) != filepath.Clean(ts.tmpdir) || !hasPrefix(filepath.Base(name), spillPrefix) {
		return nil, fmt.Errorf("not a task file of this server: %q", name)
	}
	b, err := os.ReadFile(name)
	os.Remove(name)
	return b, err
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

// wait waits for every waiter until timeout, as TaskWait describes; it returns whether all
// are done. The waiters left undone are unregistered: their results, if they come, are late.
func (ts *taskState) wait(ws []*taskWaiter, ids []int64, timeout time.Duration) bool {
	s := ts.s
	timeout = orDefault(timeout)
	all := func() bool { return allDone(ws) }
	w := s.cur
	var ok bool
	if w.loop.OnLoop() {
		s.flushReplies() // replies made before this wait do not wait with it
	}
	switch {
	case w.loop.OnLoop() && *s.eff.EnableCoroutine:
		status := w.slot.Status.Load()
		ok = w.loop.RunUntil(all, w.loop.Now()+int64(timeout))
		w.slot.Status.Store(status)
	case w.loop.OnLoop():
		// enable_coroutine false: the loop waits; only the result pipe (and the pipes the
		// tasks were written to, flushed here) are served.
		deadline := time.Now().Add(timeout)
		ts.strict++
		for _, wr := range append(append([]*ipc.Writer(nil), s.mp.toWorker[ts.w:ts.w+ts.t]...), ts.queue) {
			if wr != nil && wr.Buffered() > 0 {
				_ = wr.FlushBlocking(deadline)
			}
		}
		ok = w.loop.RunFDsUntil([]int{ts.res.FD()}, all, w.loop.Now()+int64(time.Until(deadline)))
		ts.strict--
	default:
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		ok = true
		for _, wt := range ws {
			select {
			case <-wt.ch:
			case <-timer.C:
				ok = all()
			}
			if !ok {
				break
			}
		}
	}
	if !ok {
		ts.mu.Lock()
		for k, wt := range ws {
			if !wt.done.Load() {
				delete(ts.waits, ids[k])
			}
		}
		ts.mu.Unlock()
	}
	return ok
}

// resIn is a worker's result pipe in its loop.
type resIn struct {
	ts *taskState
}

// finishMsg is one result read from the result pipe.
type finishMsg struct {
	id    int64
	src   int
	flags uint16
	data  []byte
}

func (r *resIn) Readable() {
	ts := r.ts
	var batch []finishMsg
	if _, err := ts.res.ReadBatch(func(h ipc.Header, payload []byte) {
		if h.Type != ipc.TypeFinish || !ts.s.fromManager(ts.res, h, false) {
			return
		}
		batch = append(batch, finishMsg{id: h.Fd, src: int(h.SrcWorker), flags: h.Aux, data: append([]byte(nil), payload...)})
	}); err != nil {
		ts.s.log.Warn("swoole: reading the task result pipe", "err", err)
	}
	// The batch is handled after ReadBatch returned: a callback run here may wait for
	// another result (a nested run reads this pipe again).
	for _, m := range batch {
		ts.finished(m)
	}
}

func (r *resIn) Writable() {}

// finished delivers one result, on the worker's loop.
func (ts *taskState) finished(m finishMsg) {
	s := ts.s
	data := m.data
	if m.flags&taskFlagLost != 0 {
		ts.lost(m)
		return
	}
	if data == nil {
		data = []byte{} // a result is never nil: nil is a lost task's (see TaskWithCallback)
	}
	if m.flags&taskFlagSpill != 0 {
		var err error
		if data, err = ts.unspill(data); err != nil {
			s.log.Warn("swoole: the result of a task was lost: cannot read its file", "task", m.id, "err", err)
			data, m.flags = nil, m.flags|taskFlagNoResult
		}
	}
	if m.flags&(taskFlagWait|taskFlagCallback) != 0 {
		ts.mu.Lock()
		wt := ts.waits[m.id]
		delete(ts.waits, m.id)
		ts.mu.Unlock()
		if wt == nil {
			if m.flags&taskFlagWait != 0 {
				s.log.Warn("swoole: task result arrived after its wait timed out: dropped", "task", m.id, "task_worker", m.src, "code", ErrTaskTimeout)
			}
			return
		}
		if wt.cb != nil {
			if m.flags&taskFlagNoResult == 0 {
				ts.runFinish(func() { wt.cb(s, int(m.id), data) })
			}
			return
		}
		if m.flags&taskFlagNoResult != 0 {
			wt.err = errNoResult(m.id)
		} else {
			wt.result = data
		}
		wt.done.Store(true)
		close(wt.ch)
		return
	}
	if m.flags&taskFlagNoResult != 0 {
		return
	}
	if s.cb.finish == nil {
		s.log.Warn("swoole: a task result arrived but no OnFinish is registered: dropped", "task", m.id)
		return
	}
	ts.runFinish(func() { s.cb.finish(s, int(m.id), data) })
}

// lost answers a task whose task worker died holding it (or could not read it): its waiter
// fails at once with ErrTaskTimeout (2003), its callback runs with nil data. The payload
// says what happened.
func (ts *taskState) lost(m finishMsg) {
	s := ts.s
	ts.mu.Lock()
	wt := ts.waits[m.id]
	delete(ts.waits, m.id)
	ts.mu.Unlock()
	if wt == nil {
		return // answered already, or its wait timed out
	}
	err := newError(ErrTaskTimeout, "task %d is lost: task worker %d %s, so no result will come: send it again if it must run", m.id, m.src, m.data)
	s.log.Warn(err.Msg, "task", m.id, "task_worker", m.src, "code", ErrTaskTimeout)
	if wt.cb != nil {
		ts.runFinish(func() {
			s.fail(err)
			wt.cb(s, int(m.id), nil)
		})
		return
	}
	wt.err = err
	wt.done.Store(true)
	close(wt.ch)
}

// runFinish runs a result callback with the worker busy.
func (ts *taskState) runFinish(fn func()) {
	w := ts.s.cur
	st := w.slot.Status.Load()
	w.slot.Status.Store(WorkerBusy)
	fn()
	w.slot.Status.Store(st)
}

// attachWorker connects a worker process to the task workers (called by buildChild): its
// result pipe and, in task_ipc_mode 3, the shared queue.
func (s *Server) attachTaskWorker(loop *reactor.Loop) error {
	ts := s.task
	if ts == nil {
		return nil
	}
	ts.spillNm = spillPrefix + strconv.Itoa(supervisor.ParentPID()) + "-"
	f, ok := supervisor.Inherited(fileResIn)
	if !ok {
		return newError(ErrOperationNotSupport, "worker process %d: the manager passed no task result pipe", s.cur.id)
	}
	in, err := adoptPipe(f, fileResIn)
	if err != nil {
		return wrapErrno("", err, "cannot adopt the task result pipe")
	}
	s.mp.files = append(s.mp.files, in)
	if ts.res, err = ipc.NewReader(in, s.ipcConfig()); err != nil {
		return wrapErrno("", err, "cannot read the task result pipe")
	}
	if err := loop.AddFD(ts.res.FD(), &resIn{ts: ts}, reactor.Readable); err != nil {
		return wrapErrno("", err, "cannot watch the task result pipe")
	}
	if ts.mode == 3 {
		qf, ok := supervisor.Inherited(fileTaskQueue)
		if !ok {
			return newError(ErrOperationNotSupport, "worker process %d: the manager passed no task queue", s.cur.id)
		}
		cfg := s.ipcConfig()
		cfg.NoPacking = true // one task per datagram: each goes to one task worker
		if ts.queue, err = s.adoptWriter(loop, qf, fileTaskQueue, cfg); err != nil {
			return wrapErrno("", err, "cannot adopt the task queue")
		}
	}
	return nil
}

// adoptWriter adopts an inherited pipe end this process writes to, flushed by loop.
func (s *Server) adoptWriter(loop *reactor.Loop, f *os.File, name string, cfg ipc.Config) (*ipc.Writer, error) {
	nf, err := adoptPipe(f, name)
	if err != nil {
		return nil, err
	}
	s.mp.files = append(s.mp.files, nf)
	po := &pipeOut{loop: loop, s: s}
	cfg.OnQueue = func() { loop.Post(reactor.Task{Fn: po.arm}) }
	if po.wr, err = ipc.NewWriter(nf, cfg); err != nil {
		return nil, err
	}
	po.fd = po.wr.FD()
	if err := loop.AddFD(po.fd, po, 0); err != nil {
		return nil, err
	}
	return po.wr, nil
}

// taskStats fills the task fields of Stats.
func (s *Server) taskStats(st *Stats) {
	if s.task == nil {
		return
	}
	ctr := s.table.Counters()
	st.TaskQueueNum = int(ctr.TaskQueueNum.Load())
	st.TaskQueueBytes = ctr.TaskQueueBytes.Load()
	busy := 0
	for i := range s.eff.TaskWorkerNum {
		switch s.table.Worker(s.eff.WorkerNum + i).Status.Load() {
		case WorkerIdle:
			st.TaskIdleWorkerNum++
		case WorkerBusy:
			busy++
		}
	}
	st.TaskingNum = st.TaskQueueNum + busy
}
