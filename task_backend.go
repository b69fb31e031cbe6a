package swoole

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/goswoole/swoole/internal/reactor"
	"github.com/goswoole/swoole/internal/taskbackend"
)

// Tasks on a backend other than the server's task workers (internal/taskbackend: the
// cluster package's JetStream stream). A backend is chosen before Start, by the package
// that carries the tasks (cluster.Join with Config.Tasks = cluster.TasksCluster); from then
// on Task, TaskWithCallback, TaskWait, TaskWaitMulti and TaskCo of every handle of the
// server hand their tasks to it, and the server's OnTask runs the tasks the backend takes
// on this host, on the backend's goroutines, with a handle of its own whose Finish answers
// that task. Results come back to the sender as with task workers: to its waiter, or to the
// sending worker's loop (the task's callback, OnFinish).

func init() {
	taskbackend.Attach = attachTaskBackend
	taskbackend.Deliver = deliverMessage
}

// deliverMessage runs OnPipeMessage on worker dst for a message from another host
// (taskbackend.Deliver): source -1, as a message from the master.
func deliverMessage(server any, data []byte, dst int) error {
	s, ok := server.(*Server)
	if !ok || s == nil {
		return newError(ErrInvalidParams, "SendMessage: no server")
	}
	if err := s.running("SendMessage"); err != nil {
		return err
	}
	switch total := s.procTotal(); {
	case s.cb.pipeMessage == nil:
		return newError(ErrRefused, "SendMessage: no OnPipeMessage handler is registered on this host")
	case dst < 0 || dst >= total:
		return newError(ErrRefused, "SendMessage: no worker %d on this host: ids are 0 to %d (workers, task workers, then user processes)", dst, total-1)
	}
	if th := s.thr; th != nil {
		th.loops[dst].push(threadEvent{typ: tevPipe, src: -1, data: data})
		return nil
	}
	if w := s.cur; s.mp == nil && w != nil {
		if !w.loop.Post(reactor.Task{Fn: func() { busyWhile(w.s, func() { s.cb.pipeMessage(w.s, -1, data) }) }}) {
			return newError(ErrRefused, "SendMessage: the server is shutting down")
		}
		return nil
	}
	return newError(ErrOperationNotSupport, "SendMessage from another host: only a one-process server (ModeBase with worker_num 1, or ModeThread) takes them")
}

// attachTaskBackend makes b the task backend of server (taskbackend.Attach).
func attachTaskBackend(server any, b taskbackend.Backend) (taskbackend.Runner, error) {
	s, ok := server.(*Server)
	if !ok || s == nil || b == nil {
		return nil, newError(ErrInvalidParams, "task backend: give a server and a backend")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Load() != stateNew {
		return nil, newError(ErrRefused, "task backend: the server started already: choose the backend before Start")
	}
	if s.taskBackend != nil {
		return nil, newError(ErrRefused, "task backend: the server has one already")
	}
	s.taskBackend = b
	return backendRunner{s}, nil
}

// backendTaskIDs numbers the tasks this process sends through a backend, from 0.
var backendTaskIDs atomic.Int64

// backendSender is the task transport of a handle whose server has a task backend.
type backendSender struct {
	s *Server
	b taskbackend.Backend
}

// inWorker reports whether the handle receives results: the one-process server's handle,
// or a ModeThread event worker's.
func (bs backendSender) inWorker() bool {
	if r, ok := bs.s.run.(threadRuntime); ok {
		return r.tl != nil && !r.tl.task
	}
	return bs.s.cur != nil && bs.s.run.role() == roleSingle
}

// post runs fn on the sending worker's loop, with the loop's current handle.
func (bs backendSender) post(fn func(h *Server)) {
	if r, ok := bs.s.run.(threadRuntime); ok && r.tl != nil {
		r.tl.push(threadEvent{typ: tevFn, fn: fn})
		return
	}
	if w := bs.s.cur; w != nil {
		w.loop.Post(reactor.Task{Fn: func() { fn(w.s) }})
	}
}

func (bs backendSender) send(call string, data any, dst int, _ uint16, wt *taskWaiter) (int, error) {
	s := bs.s
	if dst != -1 {
		return -1, s.fail(newError(ErrRefused, "%s: task worker %d: on the cluster task backend a task goes to the OnTask of any host: give -1", call, dst))
	}
	payload, err := encode(data)
	if err != nil {
		return -1, s.fail(err)
	}
	id := backendTaskIDs.Add(1) - 1
	t := taskbackend.Task{ID: id, Src: s.run.workerID(), Data: payload}
	var done func([]byte, bool)
	switch {
	case wt != nil && wt.ch != nil: // TaskWait, TaskWaitMulti, TaskCo: straight to the waiter
		t.Reply = true
		done = func(r []byte, noResult bool) {
			var err error
			if noResult {
				r, err = nil, errNoResult(id)
			} else {
				r = nonNilResult(r)
			}
			if !wt.deliver(r, err) {
				s.log.Warn("swoole: task result arrived after its wait timed out: dropped", "task", id, "code", ErrTaskTimeout)
			}
		}
	case wt != nil: // TaskWithCallback: on the sender's loop
		t.Reply = true
		done = func(r []byte, noResult bool) {
			if noResult {
				return
			}
			bs.post(func(h *Server) { busyWhile(h, func() { wt.cb(h, int(id), nonNilResult(r)) }) })
		}
	case bs.inWorker(): // Task: OnFinish on the sender's loop
		t.Reply = true
		done = func(r []byte, noResult bool) {
			if noResult {
				return
			}
			bs.post(func(h *Server) {
				if h.cb.finish == nil {
					h.log.Warn("swoole: a task result arrived but no OnFinish is registered: dropped", "task", id)
					return
				}
				busyWhile(h, func() { h.cb.finish(h, int(id), nonNilResult(r)) })
			})
		}
	}
	if err := bs.b.Send(call, t, done); err != nil {
		return -1, s.fail(err)
	}
	return int(id), nil
}

// nonNilResult: a result is never nil (nil is a lost task's, see TaskWithCallback).
func nonNilResult(r []byte) []byte {
	if r == nil {
		return []byte{}
	}
	return r
}

// busyWhile runs fn with h's worker marked busy.
func busyWhile(h *Server, fn func()) {
	w := h.cur
	if w == nil || w.slot == nil {
		fn()
		return
	}
	st := w.slot.Status.Load()
	w.slot.Status.Store(WorkerBusy)
	fn()
	w.slot.Status.Store(st)
}

// wait waits for the waiters up to timeout: on a one-process server's loop with
// enable_coroutine the loop serves other events meanwhile (as with task workers); anywhere
// else the caller blocks. The waiters still open at the end are cancelled: a result that
// comes later is dropped with a warning.
func (bs backendSender) wait(ws []*taskWaiter, _ []int64, timeout time.Duration) bool {
	s := bs.s
	timeout = orDefault(timeout)
	if w := s.cur; s.thr == nil && w != nil && w.loop.OnLoop() && *s.eff.EnableCoroutine {
		for _, wt := range ws {
			wt.wake.Store(w.loop) // a result wakes the loop that waits in RunUntil
		}
		st := w.slot.Status.Load()
		w.loop.RunUntil(func() bool { return allDone(ws) }, w.loop.Now()+int64(timeout))
		w.slot.Status.Store(st)
	} else {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
	each:
		for _, wt := range ws {
			select {
			case <-wt.ch:
			case <-timer.C:
				break each
			}
		}
	}
	return giveUp(ws)
}

// backendRunner runs the tasks a backend takes through the server's OnTask.
type backendRunner struct{ s *Server }

func (r backendRunner) HasHandler() bool { return r.s.cb.task != nil }

func (r backendRunner) Run(t taskbackend.Task) ([]byte, bool, error) {
	base := r.s
	bt := &backendTask{id: t.ID, reply: t.Reply}
	h := &Server{serverCore: base.serverCore, cur: base.cur}
	h.run = backendTaskRuntime{roleRuntime: base.run, h: h, t: bt}
	out := base.cb.task(h, int(t.ID), t.Src, t.Data)
	bt.mu.Lock()
	defer bt.mu.Unlock()
	bt.over = true
	if bt.finished {
		return bt.result, false, nil
	}
	if out == nil || !t.Reply {
		return nil, true, nil
	}
	p, err := encode(out)
	if err != nil {
		return nil, true, err
	}
	return p, false, nil
}

// backendTask is the task a backend's OnTask call runs: what its Finish answers.
type backendTask struct {
	id       int64
	reply    bool
	mu       sync.Mutex
	finished bool // Finish gave the result
	over     bool // OnTask returned
	result   []byte
}

// backendTaskRuntime is the runtime of the handle an OnTask run by a backend gets: the
// server's own, but it finishes that task and sends no task (as a task worker).
type backendTaskRuntime struct {
	roleRuntime
	h *Server
	t *backendTask
}

func (r backendTaskRuntime) sendsTasks(call string) error { return noTasksFromTaskWorker(r.h, call) }

func (r backendTaskRuntime) finish(data any) error {
	t := r.t
	if !t.reply {
		return r.h.fail(newError(ErrWrongOperation, "Finish: task %d was sent by a process that receives no result: the result is dropped", t.id))
	}
	p, err := encode(data)
	if err != nil {
		return r.h.fail(err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.over:
		return r.h.fail(newError(ErrWrongOperation, "Finish: task %d has ended (its OnTask returned): call it during OnTask", t.id))
	case t.finished:
		return r.h.fail(newError(ErrWrongOperation, "Finish: task %d has its result already: a task finishes once", t.id))
	}
	t.finished, t.result = true, p
	return nil
}
