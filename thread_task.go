package swoole

import (
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/goswoole/swoole/internal/reactor"
)

// Tasks in ModeThread: a task is a value handed from the sender to a task-worker loop's
// queue (no pipe, no serialization of a []byte or string payload), and its result is handed
// back: straight to a waiter (TaskWait, TaskWaitMulti, TaskCo), or to the sending worker's
// queue (OnFinish, the task's callback), so that those run on the sender's loop. Every task
// ends in exactly one of: a result, an error (OnTask gave none: 509; its task worker's
// callback panicked: 2003 at once), or its wait's timeout (2003).

// threadTasks is the task machinery of a ModeThread server.
type threadTasks struct {
	th     *threads
	w, t   int // worker_num, task_worker_num
	nextID atomic.Int64
	rr     atomic.Uint32
}

// threadTask is one task on its way.
type threadTask struct {
	id       int64
	src      *threadLoop // the sending worker's loop; nil: the master (no result goes back)
	data     []byte
	flags    uint16
	wt       *taskWaiter
	finished atomic.Bool
}

func (tt *threadTasks) init(th *threads) {
	tt.th, tt.w, tt.t = th, th.s.eff.WorkerNum, th.s.eff.TaskWorkerNum
}

// threadTaskSender is the task transport of one ModeThread handle.
type threadTaskSender struct {
	s  *Server
	tt *threadTasks
}

// inWorker reports whether the handle is an event worker's, which receives results.
func (ts threadTaskSender) inWorker() bool {
	r, ok := ts.s.run.(threadRuntime)
	return ok && r.tl != nil && !r.tl.task
}

func (ts threadTaskSender) send(call string, data any, dst int, flags uint16, wt *taskWaiter) (int, error) {
	s, tt := ts.s, ts.tt
	if dst < -1 || dst >= tt.t {
		return -1, s.fail(newError(ErrRefused, "%s: no task worker %d: task worker indexes are 0 to %d, or -1 for any", call, dst, tt.t-1))
	}
	payload, err := encode(data)
	if err != nil {
		return -1, s.fail(err)
	}
	if dst < 0 {
		dst = tt.pick()
	}
	task := &threadTask{id: tt.nextID.Add(1) - 1, data: payload, flags: flags, wt: wt}
	if r, ok := s.run.(threadRuntime); ok && r.tl != nil && !r.tl.task {
		task.src = r.tl
	}
	ctr := s.table.Counters()
	ctr.TaskQueueNum.Add(1)
	ctr.TaskQueueBytes.Add(int64(len(payload)))
	tt.th.loops[tt.w+dst].push(threadEvent{typ: tevTask, task: task})
	return int(task.id), nil
}

// pick chooses a task worker for dst -1: an idle one if there is one, from the next in
// turn, else the next in turn.
func (tt *threadTasks) pick() int {
	start := int(tt.rr.Add(1)-1) % tt.t
	for k := range tt.t {
		i := (start + k) % tt.t
		if ws := tt.th.s.table.Worker(tt.w + i); ws != nil && ws.Status.Load() == WorkerIdle {
			return i
		}
	}
	return start
}

// wait waits for the waiters' results up to timeout. It blocks the calling goroutine (a
// worker's callback holds its loop meanwhile; the other loops serve on). On timeout the
// waiters still open are cancelled: a result that comes later is dropped with a warning.
func (ts threadTaskSender) wait(ws []*taskWaiter, _ []int64, timeout time.Duration) bool {
	s := ts.s
	if r, ok := s.run.(threadRuntime); ok && r.tl != nil && r.task == nil && *s.eff.EnableCoroutine && s.cur != nil && s.cur.loop.OnLoop() {
		return r.tl.waitTasks(s.cur, ws, orDefault(timeout))
	}
	timer := time.NewTimer(orDefault(timeout))
	defer timer.Stop()
each:
	for _, wt := range ws {
		select {
		case <-wt.ch:
		case <-timer.C:
			break each
		}
	}
	return giveUp(ws)
}

// waitTasks waits on worker w's own loop for ws's results, up to timeout, as TaskWait does
// on a loop with enable_coroutine in the other modes: the loop goes on serving its queue
// meanwhile (timers too), but not the events of the session whose callback waits, which stay
// queued in order (drain). On timeout the waiters still open are cancelled, as in wait.
func (tl *threadLoop) waitTasks(w *worker, ws []*taskWaiter, timeout time.Duration) bool {
	for _, wt := range ws {
		wt.wake.Store(w.loop)
	}
	tl.yieldBatch(w)
	st := w.slot.Status.Load()
	ok := w.loop.RunUntil(func() bool { return allDone(ws) }, w.loop.Now()+int64(timeout))
	w.slot.Status.Store(st)
	if ok {
		return true
	}
	return giveUp(ws)
}

// runTask runs OnTask for task on task worker loop tl (w is its generation).
func (tl *threadLoop) runTask(w *worker, task *threadTask) {
	h := w.s
	src := takeTask(w, task)
	tl.inHand = task
	out := h.cb.task(h, int(task.id), src, task.data)
	w.slot.Status.Store(WorkerIdle)
	tl.inHand = nil
	if task.finished.Load() {
		return
	}
	if out != nil {
		_ = tl.t.tasks.result(h, task, out)
		return
	}
	tl.t.tasks.answer(task, nil, errNoResult(task.id))
}

// takeTask takes task off the queue's counters and marks worker w busy with it; it returns
// OnTask's srcWorkerID (-1: the master sent it).
func takeTask(w *worker, task *threadTask) int {
	ctr := w.s.table.Counters()
	ctr.TaskQueueNum.Add(-1)
	ctr.TaskQueueBytes.Add(-int64(len(task.data)))
	w.slot.Status.Store(WorkerBusy)
	w.slot.RequestCount.Add(1)
	if task.src != nil {
		return task.src.id
	}
	return -1
}

// startTask runs OnTask for task on a goroutine of its own (task_enable_coroutine: several
// at once per task worker), with a handle of its own whose Finish answers this task. Its
// end is counted on the loop (task_max_request, the worker's status). A panic answers the
// task (its waiter fails at once with 2003) and is raised again on the loop, which logs it and
// is replaced, as after a panic in any callback.
func (tl *threadLoop) startTask(w *worker, task *threadTask) {
	h := w.s
	src := takeTask(w, task)
	w.thrTasks++
	th := &Server{serverCore: h.serverCore, cur: w}
	th.run = threadRuntime{s: th, t: tl.t, tl: tl, task: task}
	go func() {
		var out any
		defer func() {
			r := recover()
			switch {
			case r != nil:
				h.log.Error("swoole: OnTask panicked", "worker", tl.id, "task", task.id, "panic", r, "stack", string(debug.Stack()), "code", ErrServerWorkerTerminated)
				if !task.finished.Load() {
					tl.t.tasks.answer(task, nil, newError(ErrTaskTimeout, "task %d is lost: the OnTask of task worker %d panicked, so no result will come: send it again if it must run", task.id, tl.id))
				}
			case task.finished.Load():
			case out != nil:
				_ = tl.t.tasks.result(th, task, out)
			default:
				tl.t.tasks.answer(task, nil, errNoResult(task.id))
			}
			w.loop.Post(reactor.Task{Fn: func() {
				w.thrTasks--
				running := w.thrEnd == 0 // not retiring: the worker's slot is still its own
				if w.thrTasks == 0 && running {
					w.slot.Status.Store(WorkerIdle)
				}
				if r != nil {
					panic(r) // the loop's generation ends as after a panic in its own callback
				}
				if running {
					tl.countRequest(w) // task_max_request
				}
			}})
		}()
		out = h.cb.task(th, int(task.id), src, task.data)
	}()
}

// finish is Finish on task worker tl's handle h.
func (tt *threadTasks) finish(h *Server, tl *threadLoop, data any) error {
	task := tl.inHand
	if task == nil {
		return h.fail(newError(ErrWrongOperation, "Finish: no task is running in this task worker: call it during OnTask"))
	}
	return tt.result(h, task, data)
}

// result sends data as task's result, once.
func (tt *threadTasks) result(h *Server, task *threadTask, data any) error {
	if task.src == nil {
		task.finished.Store(true)
		return h.fail(newError(ErrWrongOperation, "Finish: task %d was sent by the master, which receives no result: the result is dropped", task.id))
	}
	payload, err := encode(data)
	if err != nil {
		return h.fail(err)
	}
	if !task.finished.CompareAndSwap(false, true) {
		return h.fail(newError(ErrWrongOperation, "Finish: task %d has its result already: a task finishes once", task.id))
	}
	tt.answer(task, payload, nil)
	return nil
}

// answer delivers a task's outcome: to its waiter, or to the sender's loop (its callback or
// OnFinish). err (with nil data) is a task that gives no result.
func (tt *threadTasks) answer(task *threadTask, data []byte, err error) {
	task.finished.Store(true)
	if task.src == nil {
		return
	}
	if wt := task.wt; wt != nil && wt.ch != nil {
		if !wt.deliver(data, err) {
			tt.th.s.log.Warn("swoole: task result arrived after its wait timed out: dropped", "task", task.id, "code", ErrTaskTimeout)
		}
		return
	}
	if err != nil && (task.wt == nil || err.(*Error).Code != ErrTaskTimeout) {
		return // no result: neither OnFinish nor a callback runs (only a lost task's callback)
	}
	task.data = data
	task.src.push(threadEvent{typ: tevFinish, task: task})
}

// finished runs a task's result callback, or OnFinish, on the sender's loop.
func (tl *threadLoop) finished(w *worker, task *threadTask) {
	h := w.s
	st := w.slot.Status.Load()
	w.slot.Status.Store(WorkerBusy)
	switch {
	case task.wt != nil && task.wt.cb != nil:
		if task.data == nil {
			h.lastErr.Store(ErrTaskTimeout) // the task is lost (its task worker's callback panicked)
		}
		task.wt.cb(h, int(task.id), task.data)
	case h.cb.finish != nil:
		h.cb.finish(h, int(task.id), task.data)
	default:
		h.log.Warn("swoole: a task result arrived but no OnFinish is registered: dropped", "task", task.id)
	}
	w.slot.Status.Store(st)
}

// lostTask answers the task a task worker held when its callback panicked: its waiter
// fails at once with 2003, its callback runs with nil data.
func (tl *threadLoop) lostTask() {
	task := tl.inHand
	tl.inHand = nil
	if task == nil || task.finished.Load() {
		return
	}
	tl.t.tasks.answer(task, nil, newError(ErrTaskTimeout, "task %d is lost: the OnTask of task worker %d panicked, so no result will come: send it again if it must run", task.id, tl.id))
}
