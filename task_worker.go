package swoole

import (
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/goswoole/swoole/internal/ipc"
	"github.com/goswoole/swoole/internal/reactor"
	"github.com/goswoole/swoole/internal/supervisor"
)

// A task worker process (role supervisor.KindTaskWorker, global id worker_num + index). The
// user's main runs again in it; NewServer and AddListener adopt the manager's sockets (never
// watched here), and Start enters runTaskChild, which never returns. Its loop reads:
//
//	ipc.in     its own pipe: tasks sent to it (task_ipc_mode 1, or a dst given), SendMessage
//	ipc.tq.in  task_ipc_mode 3: the shared queue, one task per datagram, read by whichever
//	           task worker is free (each reads one datagram at a time)
//
// and runs OnTask for each task, one at a time, with its status BUSY meanwhile. Timers work
// (it is a reactor.Loop). On SIGTERM (reload, shutdown, task_max_request) it stops reading
// after the task in hand; what is still queued in its pipe waits for its replacement, which
// inherits the same pipe from the manager.

// taskRunner is a task worker's state.
type taskRunner struct {
	ts       *taskState
	w        *worker
	in       *ipc.Reader // its own pipe
	qin      *ipc.Reader // mode 3: the shared queue
	requests int64
	max      int64 // task_max_request with its grace; 0 = no limit

	mu  sync.Mutex
	cur *taskCtx           // the task OnTask is running on the loop
	byG map[int64]*taskCtx // task_enable_coroutine: the task each OnTask goroutine runs

	running int // task_enable_coroutine: OnTask goroutines not yet done (loop only)

	hand *inHand // the tasks it holds, for the manager should it die (task_inhand.go)

	resume []*ipc.Reader // its Readers, to resume what its predecessor received (event_area.go)
}

// taskCtx is the task in hand.
type taskCtx struct {
	id       int64
	src      int
	flags    uint16
	finished bool
	hand     int // its entry in the table of tasks in hand, -1 if none (tr.mu)
}

// taskMsg is one message read from a task worker's pipes.
type taskMsg struct {
	h    ipc.Header
	data []byte
	hand int // its entry in the table of tasks in hand, -1 if none
}

// runTaskChild is Start in a task worker process. It never returns.
func (s *Server) runTaskChild() {
	mp := s.mp
	_ = supervisor.WatchLifeline(func() { os.Exit(1) })
	if err := s.buildTaskChild(); err != nil {
		s.cleanup()
		s.childFailed(err)
	}
	w := s.cur
	tr := s.task.runner
	s.state.Store(stateRunning)
	if s.stopRequested.Load() {
		_ = s.run.shutdown()
	}
	go func() {
		select {
		case <-childTerm:
			mp.termed.Store(true)
			w.loop.Post(reactor.Task{Fn: tr.exit})
		case <-mp.done:
		}
	}()
	w.loop.BindGoroutine()
	tr.resumeTasks() // event_area.go: what a predecessor that died received
	w.slot.StartTime.Store(time.Now().Unix())
	w.slot.RequestCount.Store(0)
	w.slot.PID.Store(w.pid)
	w.slot.Status.Store(WorkerIdle) // ready; OnWorkerStart sees its worker idle, as in Swoole
	if s.cb.workerStart != nil {
		s.cb.workerStart(s, w.id)
	}
	err := w.loop.Run()
	close(mp.done)
	code := 0
	if err != nil {
		s.log.Error("swoole: the task worker's event loop failed", "worker", w.id, "err", err)
		code = 1
	}
	s.exitChild(code)
}

// buildTaskChild maps the table, creates the task worker's loop and adopts its pipes.
func (s *Server) buildTaskChild() error {
	mp := s.mp
	ts := s.task
	id := mp.role.ID
	if ts == nil || id < s.eff.WorkerNum || id >= s.eff.WorkerNum+s.eff.TaskWorkerNum {
		return newError(ErrOperationNotSupport, "task worker process %d: this server has no such task worker (task_worker_num %d): set the same task_worker_num in every process", id, s.eff.TaskWorkerNum)
	}
	ts.spillNm = spillPrefix + strconv.Itoa(supervisor.ParentPID()) + "-"
	what := "task worker process " + strconv.Itoa(id)
	w, err := s.bootChild(what, true)
	if err != nil {
		return err
	}
	loop := w.loop
	tr := &taskRunner{ts: ts, w: w, max: requestLimit(s.eff.TaskMaxRequest, s.eff.TaskMaxRequestGrace)}
	ts.runner = tr

	// One datagram per read: a task worker takes one task (or one packed burst sent to it)
	// at a time, so that in mode 3 the others get the rest. Received in its area
	// (event_area.go): a task read and not yet recorded as held is its replacement's.
	rcfg := s.taskReaderConfig()
	one, size, err := s.taskAreaSize()
	if err != nil {
		return wrapErrno("", err, "%s: cannot size the receive area", what)
	}
	mem, err := mapArea(what, size)
	if err != nil {
		return err
	}
	areas := [][]byte{mem[:one:one], mem[one:size:size]}
	adoptIn := func(name string) (*ipc.Reader, error) {
		cfg := rcfg
		cfg.Area, areas = areas[0], areas[1:]
		r, err := s.adoptInPipe(what, name, cfg)
		if err != nil {
			return nil, err
		}
		tr.resume = append(tr.resume, r)
		if err := loop.AddFD(r.FD(), &taskIn{tr: tr, r: r}, reactor.Readable); err != nil {
			return nil, wrapErrno("", err, "cannot watch %s", name)
		}
		return r, nil
	}
	if tr.in, err = adoptIn(fileIn); err != nil {
		return err
	}
	mp.reader = tr.in
	if ts.mode == 3 {
		if tr.qin, err = adoptIn(fileTaskQueueIn); err != nil {
			return err
		}
	}
	cfg := s.ipcConfig()
	for j := range s.eff.WorkerNum {
		rf, ok := supervisor.Inherited(filePrefixRes + strconv.Itoa(j))
		if !ok {
			return newError(ErrOperationNotSupport, "task worker process %d: the manager passed no result pipe for worker %d", id, j)
		}
		wr, err := s.adoptWriter(loop, rf, filePrefixRes+strconv.Itoa(j), cfg)
		if err != nil {
			return wrapErrno("", err, "task worker process %d: cannot adopt the result pipe of worker %d", id, j)
		}
		ts.resOut = append(ts.resOut, wr)
	}
	if err := ts.adoptInHand(id - s.eff.WorkerNum); err != nil { // task_inhand.go
		return err
	}
	return nil
}

// taskReaderConfig is the configuration of a task worker's Readers.
func (s *Server) taskReaderConfig() ipc.Config {
	cfg := s.ipcConfig()
	cfg.Batch = 1
	return cfg
}

// taskIn is one of a task worker's pipes in its loop.
type taskIn struct {
	tr *taskRunner
	r  *ipc.Reader
}

func (p *taskIn) Readable() {
	p.tr.take(p.r, func(fn func(ipc.Header, []byte)) error {
		_, err := p.r.ReadBatch(fn)
		return err
	})
}

// resumeTasks takes, before the task worker reads its pipes, what its predecessor received
// and had not recorded as held (it died in between). The message it was handing over when it
// died is taken again if it is a task that the predecessor had not recorded yet (the
// manager answers those it had: task_inhand.go); another kind of message is lost, as in
// Swoole.
func (tr *taskRunner) resumeTasks() {
	for _, r := range tr.resume {
		tr.take(r, func(fn func(ipc.Header, []byte)) error {
			r.Resume(fn, func(h ipc.Header) bool {
				return h.Type == ipc.TypeTask && !tr.hand.heldBefore(h)
			})
			return nil
		})
	}
	tr.hand.release()
}

// take collects what read delivers from r, then runs it.
func (tr *taskRunner) take(r *ipc.Reader, read func(fn func(ipc.Header, []byte)) error) {
	s := tr.ts.s
	var batch []taskMsg
	if err := read(func(h ipc.Header, payload []byte) {
		if !s.fromManager(r, h, false) {
			return
		}
		if h.Type == msgLogReopen { // logfile.go
			s.logReopenMessage(h, r.TakeFD())
			return
		}
		m := taskMsg{h: h, data: append([]byte(nil), payload...), hand: -1}
		if h.Type == ipc.TypeTask {
			// Held from now: should this process die before answering, the manager
			// tells the sender (task_inhand.go).
			m.hand = tr.hand.claim(h)
		}
		batch = append(batch, m)
	}); err != nil {
		s.log.Warn("swoole: reading the task worker's pipe", "worker", tr.w.id, "err", err)
	}
	// Every task read leaves the queue now (a task worker killed mid-batch loses them, but
	// leaves no count behind), then they run one at a time, outside ReadBatch.
	ctr := s.table.Counters()
	for _, m := range batch {
		if m.h.Type == ipc.TypeTask {
			ctr.TaskQueueNum.Add(-1)
			ctr.TaskQueueBytes.Add(-tr.ts.taskSize(m))
		}
	}
	for _, m := range batch {
		switch m.h.Type {
		case ipc.TypeTask:
			tr.run(m)
		case ipc.TypePipeMessage:
			if s.cb.pipeMessage != nil {
				tr.w.slot.Status.Store(WorkerBusy)
				s.cb.pipeMessage(s, int(m.h.SrcWorker), m.data)
				tr.w.slot.Status.Store(WorkerIdle)
			}
		case ipc.TypeCommand, ipc.TypeCommandReply:
			s.commandMessage(m.h, m.data) // Command to (or answered to) this task worker
		default:
			s.log.Debug("swoole: task worker: unexpected message dropped", "type", m.h.Type.String(), "from", m.h.SrcWorker)
		}
	}
}

func (p *taskIn) Writable() {}

// taskSize is the size a task counted in task_queue_bytes when it was sent.
func (ts *taskState) taskSize(m taskMsg) int64 {
	if m.h.Aux&taskFlagSpill != 0 {
		if fi, err := os.Stat(string(m.data)); err == nil {
			return fi.Size()
		}
		return 0
	}
	return int64(len(m.data))
}

// run runs OnTask for one task, on the loop.
func (tr *taskRunner) run(m taskMsg) {
	s := tr.ts.s
	data := m.data
	ctx := &taskCtx{id: m.h.Fd, src: int(m.h.SrcWorker), flags: m.h.Aux &^ taskFlagSpill, hand: m.hand}
	if m.h.Aux&taskFlagSpill != 0 {
		var err error
		if data, err = tr.ts.unspill(data); err != nil {
			s.log.Warn("swoole: a task was lost: cannot read its file", "task", m.h.Fd, "from", m.h.SrcWorker, "err", err)
			if ctx.flags&(taskFlagWait|taskFlagCallback) != 0 {
				_ = tr.send(ctx, "could not read its payload from task_tmpdir ("+err.Error()+")", taskFlagLost)
			}
			tr.answered(ctx)
			return
		}
	}
	if s.eff.TaskEnableCoroutine {
		tr.runConcurrent(ctx, data)
		return
	}
	tr.mu.Lock()
	tr.cur = ctx
	tr.mu.Unlock()
	w := tr.w
	w.slot.Status.Store(WorkerBusy)
	w.slot.RequestCount.Add(1)
	ret := s.cb.task(s, int(ctx.id), ctx.src, data)
	tr.mu.Lock()
	finished := ctx.finished
	tr.cur = nil
	tr.mu.Unlock()
	// Idle once OnTask returned, before the result leaves: the sender, once it has the
	// result, sees this task worker idle (Stats, GetWorkerStatus).
	w.slot.Status.Store(WorkerIdle)
	if ret != nil && !finished {
		if err := tr.send(ctx, ret, 0); err != nil {
			s.log.Warn("swoole: cannot send the task's result", "task", ctx.id, "to", ctx.src, "err", err)
		}
	} else if !finished && ctx.flags&(taskFlagWait|taskFlagCallback) != 0 {
		// The sender waits: tell it there is no result rather than let it time out.
		_ = tr.send(ctx, nil, taskFlagNoResult)
	}
	tr.answered(ctx)
	tr.requests++
	if tr.requests == tr.max {
		s.mp.termed.Store(true)
		s.log.Info("swoole: task_max_request reached: the task worker is replaced", "worker", w.id, "tasks", tr.requests)
		tr.stopReading() // what is queued waits for the replacement
		w.requestStop(w.id, true)
	}
}

// runConcurrent runs OnTask for one task on a goroutine of its own (task_enable_coroutine):
// the task worker goes on reading tasks while it runs, so it works on several at once. The
// worker is busy while any runs; each task's result leaves when its OnTask returns.
func (tr *taskRunner) runConcurrent(ctx *taskCtx, data []byte) {
	s := tr.ts.s
	w := tr.w
	tr.running++
	w.slot.Status.Store(WorkerBusy)
	w.slot.RequestCount.Add(1)
	go func() {
		g := reactor.GoroutineID()
		tr.mu.Lock()
		if tr.byG == nil {
			tr.byG = map[int64]*taskCtx{}
		}
		tr.byG[g] = ctx
		tr.mu.Unlock()
		ret := s.cb.task(s, int(ctx.id), ctx.src, data)
		tr.mu.Lock()
		delete(tr.byG, g)
		finished := ctx.finished
		tr.mu.Unlock()
		if ret != nil && !finished {
			if err := tr.send(ctx, ret, 0); err != nil {
				s.log.Warn("swoole: cannot send the task's result", "task", ctx.id, "to", ctx.src, "err", err)
			}
		} else if !finished && ctx.flags&(taskFlagWait|taskFlagCallback) != 0 {
			_ = tr.send(ctx, nil, taskFlagNoResult)
		}
		tr.answered(ctx)
		w.loop.Post(reactor.Task{Fn: func() {
			tr.running--
			if tr.running == 0 {
				w.slot.Status.Store(WorkerIdle)
			}
			tr.requests++
			if tr.requests == tr.max {
				s.mp.termed.Store(true)
				s.log.Info("swoole: task_max_request reached: the task worker is replaced", "worker", w.id, "tasks", tr.requests)
				tr.stopReading()
				w.requestStop(w.id, true)
			}
		}})
	}()
}

// finish is Finish in a task worker.
func (tr *taskRunner) finish(data any) error {
	s := tr.ts.s
	tr.mu.Lock()
	ctx := tr.cur
	if ctx == nil && tr.byG != nil {
		ctx = tr.byG[reactor.GoroutineID()] // task_enable_coroutine: this goroutine's task
	}
	if ctx == nil {
		tr.mu.Unlock()
		return s.fail(newError(ErrWrongOperation, "Finish outside OnTask: call it while OnTask runs (or return the result from OnTask)"))
	}
	if ctx.finished {
		tr.mu.Unlock()
		return s.fail(newError(ErrWrongOperation, "Finish: task %d is finished already: a task has one result", ctx.id))
	}
	if !tr.ts.fromWorker(ctx) {
		tr.mu.Unlock()
		return s.fail(newError(ErrWrongOperation, "Finish: task %d was sent by %s, which receives no results (a one-way task): return nil from OnTask, or send the task from an event worker to get its result", ctx.id, tr.ts.senderName(ctx.src)))
	}
	ctx.finished = true
	tr.mu.Unlock()
	if err := tr.send(ctx, data, 0); err != nil {
		return s.fail(err)
	}
	tr.answered(ctx)
	return nil
}

// answered frees the task's entry in the table of tasks in hand, once (its answer is sent).
func (tr *taskRunner) answered(ctx *taskCtx) {
	tr.mu.Lock()
	i := ctx.hand
	ctx.hand = -1
	tr.mu.Unlock()
	tr.hand.answered(i, ctx.src)
}

// fromWorker reports whether the task was sent by an event worker, the only kind of process
// that receives results (the manager, the master and user processes send one-way tasks).
func (ts *taskState) fromWorker(ctx *taskCtx) bool {
	return ctx.src >= 0 && ctx.src < len(ts.resOut)
}

// senderName names the process with global id src that sent a one-way task, for errors.
func (ts *taskState) senderName(src int) string {
	switch {
	case src < 0 && ts.s.mode == ModeProcess:
		return "the master"
	case src < 0:
		return "the manager"
	case src >= ts.w+ts.t:
		return "user process " + strconv.Itoa(src-ts.w-ts.t)
	}
	return "process " + strconv.Itoa(src)
}

// send writes a task's result to the result pipe of the worker that sent it.
func (tr *taskRunner) send(ctx *taskCtx, data any, flags uint16) error {
	ts := tr.ts
	if !ts.fromWorker(ctx) {
		return nil // sent by the manager (or a user process): one-way
	}
	var payload []byte
	if flags&taskFlagNoResult == 0 { // a result, or the reason of a taskFlagLost
		var err error
		if payload, err = encode(data); err != nil {
			return err
		}
	}
	flags |= ctx.flags & (taskFlagWait | taskFlagCallback)
	if len(payload) > finishInlineMax {
		name, err := ts.spill(payload)
		if err != nil {
			return &Error{Code: ErrTaskPackageTooBig, Msg: "swoole: Finish: cannot write the result to task_tmpdir " + ts.tmpdir, Err: err}
		}
		payload, flags = []byte(name), flags|taskFlagSpill
	}
	h := ipc.Header{Type: ipc.TypeFinish, SrcWorker: int16(tr.w.id), Fd: ctx.id, Aux: flags}
	if err := ts.resOut[ctx.src].Write(h, payload); err != nil {
		if flags&taskFlagSpill != 0 {
			os.Remove(string(payload))
		}
		return &Error{Code: ErrServerPipeBufferFull, Msg: "swoole: Finish: cannot send the result to worker " + strconv.Itoa(ctx.src), Err: err}
	}
	return nil
}

// exit stops the task worker after the task in hand: it stops reading its pipes (what is
// queued there waits for its replacement), then leaves as a worker does (WorkerExit while
// timers remain, WorkerStop).
func (tr *taskRunner) exit() {
	tr.stopReading()
	if tr.running == 0 {
		tr.w.exitWorker()
		return
	}
	// task_enable_coroutine: the tasks in hand finish first (up to max_wait_time).
	w := tr.w
	deadline := w.loop.Now() + int64(tr.ts.s.eff.MaxWaitTime)
	var id int
	id = w.timers.Add(w.loop.Now(), 5*time.Millisecond, 5*time.Millisecond, func(int) {
		if tr.running == 0 || w.loop.Now() >= deadline {
			w.timers.Cancel(id)
			w.exitWorker()
		}
	})
}

// stopReading stops reading the task worker's pipes.
func (tr *taskRunner) stopReading() {
	tr.w.loop.RemoveFD(tr.in.FD())
	if tr.qin != nil {
		tr.w.loop.RemoveFD(tr.qin.FD())
	}
}
