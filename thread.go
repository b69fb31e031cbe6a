package swoole

import (
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/buffer"
	"github.com/goswoole/swoole/internal/conntable"
	"github.com/goswoole/swoole/internal/dispatch"
	"github.com/goswoole/swoole/internal/reactor"
	"github.com/goswoole/swoole/internal/sys"
)

// ModeThread, Swoole 6's SWOOLE_THREAD the Go way: one process, loops instead of processes.
//
//	Start (its goroutine waits, then runs the shutdown)
//	├── reactor 0 … reactor_num−1   a goroutine and an epoll each: accept (EPOLLEXCLUSIVE),
//	│                               read, frame, write what a Send queued, heartbeat; each
//	│                               event goes to the queue of the worker dispatch_mode (or
//	│                               DispatchFunc) picks. Reactor 0 runs the master's timers.
//	├── worker 0 … worker_num−1     a goroutine and a loop each: its queue (events, pipe
//	│                               messages, task results, commands), its timers; callbacks
//	│                               run one at a time with the worker's own *Server handle
//	└── task worker W … W+T−1       the same, OnTask
//
// A reactor's events of one epoll round go to a worker's queue in one batch, and the worker
// is woken only when its queue was empty (its loop is asleep or busy with an earlier batch).
// Replies need no hop: a worker's Send writes to the socket at once (the connection's lock
// orders it with the reactor's writes) and queues the rest for the reactor's loop.
//
// Ownership: the data OnReceive gets is a copy the reactor made for that event (one copy,
// from the read buffer, into a pooled buffer): valid during the callback only, as in every
// mode (bytes.Clone it to keep it). A []byte given to SendMessage, Task and its kin, or Finish
// is handed over as it is, not copied: the sender must not change it once the call returned,
// and the receiver may keep it. A string is converted once.
//
// A worker loop is replaced (a fresh loop on a fresh goroutine, OnWorkerStop then
// OnWorkerStart) by Reload, Stop and max_request, and when a callback panics (the panic is
// logged, OnWorkerError runs with exit code 255). Its queue, and so every event not yet
// handled, passes to the replacement; the connections are the reactors' and stay open. The
// code is the same: a reload in ModeThread restarts the loops, not the program.

// Event types of a thread loop's queue.
const (
	tevData uint8 = iota + 1
	tevConnect
	tevClose
	tevFull
	tevEmpty
	tevPacket
	tevPipe    // SendMessage: data from src
	tevTask    // a task for this task worker
	tevFinish  // a task's result for this worker (OnFinish or the task's callback)
	tevFn      // fn runs on the loop (Command)
	tevReplace // the loop is replaced (Reload, Stop): what follows is the next loop's
	tevExit    // the server shuts down: the loop ends

	// tevHandedOff is not queued: a generation that ends with it started its successor
	// itself, to drain its timers beside it (retire), so its goroutine ends with it.
	tevHandedOff
)

// threadEvent is one entry of a thread loop's queue.
type threadEvent struct {
	typ      uint8
	appClose bool  // tevClose: the application closed it (OnClose gets reactorID -1)
	rid      int16 // the reactor it comes from
	fd       int64
	port     *Port
	data     []byte
	src      int         // tevPipe: the sender's id
	r        *worker     // tevClose: the reactor that waits for the acknowledgement
	client   *ClientAddr // tevPacket
	task     *threadTask // tevTask, tevFinish
	fn       func(h *Server)
	done     *sync.WaitGroup // tevReplace: Done once the replacement started
}

// threads is the state of a ModeThread server.
type threads struct {
	s        *Server // the handle NewServer returned: the master's
	ms       *masterState
	reactors []*worker
	loops    []*threadLoop // by id: workers, then task workers

	reactorsDone sync.WaitGroup
	loopsDone    sync.WaitGroup
	procsDone    sync.WaitGroup // the user processes' functions (thread_process.go)
	mu           sync.Mutex
	procConns    map[net.Conn]struct{} // the user processes' own ends in use (thread_process.go)
	stop         chan struct{}         // closed by Shutdown: Start runs the shutdown
	stopOnce     sync.Once
	idleDispatch bool // dispatch_mode 3 (idle worker): the loops note when they become busy
	reloading    atomic.Bool

	tasks threadTasks // thread_task.go
}

// threadLoop is one worker or task-worker loop: its queue outlives each generation of its
// event loop (a replacement takes over what was queued).
type threadLoop struct {
	t    *threads
	id   int
	task bool

	mu        sync.Mutex
	items     []threadEvent
	spare     []threadEvent
	armed     bool          // a drain is posted to loop
	loop      *reactor.Loop // the generation that takes events; nil between two
	drainTask reactor.Task

	proc int // a user process's AddProcess index; -1 for a worker or task worker
	// waker, while the loop's goroutine waits for a Command's reply, is told of each push:
	// the loop serves the commands queued for it meanwhile (waitServing).
	waker chan struct{}
	// inClose is the session whose OnClose runs (Send gets 1004, Close 1003 there); a
	// panic in OnClose leaves it set: the session is released all the same (generation).
	inClose atomic.Int64

	busyAt atomic.Int64 // dispatch_mode 3: when its current OnReceive began (latestBusy)

	// The running generation (its loop goroutine only).
	batch    []threadEvent // what the running drain took from items; batch[pos:] is not handled yet
	pos      int
	depth    int     // drains running, nested ones (waitTasks) included
	busyFds  []int64 // the sessions whose callbacks run (a nested drain serves none of their events)
	cur      *worker
	requests int64
	started  *sync.WaitGroup // Done once the next generation started (Reload waits on it)
	inHand   *threadTask     // a task worker: the task OnTask runs
}

// prepareThreads builds a ModeThread server: the table, the reactors with the listeners,
// the worker loops (started by runThreads). s.mu is held.
func (s *Server) prepareThreads() error {
	if s.eff.User != "" || s.eff.Group != "" {
		return newError(ErrOperationNotSupport, "user/group: ModeThread runs in one process, which cannot run its workers as another user: start the program as that user, or use ModeBase or ModeProcess")
	}
	total := s.procTotal()
	t, err := s.newTable(total)
	if err != nil {
		return err
	}

	th := s.thr
	th.stop = make(chan struct{})
	th.idleDispatch = s.eff.DispatchMode == dispatch.Idle
	th.ms = &masterState{picker: dispatch.NewPicker(s.eff.WorkerNum), events: !s.connEventsOff()}
	pid := int32(os.Getpid())
	for r := range s.eff.ReactorNum {
		w := &worker{s: s, id: r, slot: new(conntable.WorkerSlot), pid: pid, ms: th.ms, ev: threadEvents{}, heldMark: make([]bool, total)}
		w.thrOut = make([][]threadEvent, total)
		loop, err := reactor.New(w, reactor.Config{Rounds: threadRounds{w}})
		if err != nil {
			return wrapErrno("", err, "cannot create reactor %d", r)
		}
		w.loop = loop
		loop.SetTimers(&w.timers)
		th.reactors = append(th.reactors, w)
		s.workers = append(s.workers, w)
	}
	for _, p := range s.ports {
		if err := p.listen(); err != nil {
			return err
		}
	}
	if err := s.listenOn(th.reactors); err != nil {
		return err
	}
	for id := range total {
		tl := &threadLoop{t: th, id: id, task: id >= s.eff.WorkerNum && id < s.userProcessID(0), proc: s.userProcessIndex(id)}
		tl.drainTask = reactor.Task{Fn: tl.drain}
		th.loops = append(th.loops, tl)
		ws := t.Worker(id)
		ws.PID.Store(pid)
		ws.Status.Store(WorkerBusy) // starting: OnWorkerStart runs first
	}
	th.tasks.init(th)
	return nil
}

// runThreads is Start of a ModeThread server once prepared: it starts the reactors and the
// loops, waits for Shutdown (or SIGTERM), shuts the server down and returns.
func (s *Server) runThreads() error {
	th := s.thr
	s.state.Store(stateRunning)
	if s.stopRequested.Load() {
		_ = s.Shutdown()
	}
	s.startLogWatch()
	s.sigDone = make(chan struct{})
	// SIGTERM shuts down; SIGUSR1 reloads every worker loop, SIGUSR2 the task workers' (as
	// a manager does in the other modes).
	sigCh := make(chan os.Signal, 4)
	signal.Notify(sigCh, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		for {
			select {
			case sig := <-sigCh:
				if sig != syscall.SIGTERM {
					_ = th.reload(sig == syscall.SIGUSR2)
					continue
				}
				_ = s.Shutdown()
			case <-s.sigDone:
			}
			return
		}
	}()
	if s.eff.StatsFile != "" {
		w := th.reactors[0] // not running yet: its timers may be set from here
		w.timers.Add(w.loop.Now(), 0, time.Second, func(int) { s.writeStatsFile() })
	}
	s.runReactorLoops(th.reactors, &th.reactorsDone) // master.go
	if s.cb.start != nil {
		s.cb.start(s)
	}
	// The process is its own manager too (GetManagerPID): OnManagerStart and OnManagerStop
	// run on the master's handle, as a ModeProcess master runs them.
	if s.cb.managerStart != nil {
		s.cb.managerStart(s)
	}
	for _, tl := range th.loops {
		th.loopsDone.Add(1)
		go tl.serve()
		if tl.proc >= 0 {
			th.procsDone.Add(1)
			go th.runProcess(tl)
		}
	}
	s.startAdmin()
	daemonReady() // the reactors accept, the loops run: a daemon's starter, or Upgrade's old process, may go
	<-th.stop
	s.stopAdmin()
	th.shutdownNow()
	signal.Stop(sigCh)
	close(s.sigDone)
	if s.cb.shutdown != nil {
		s.cb.shutdown(s)
	}
	s.cleanup()
	s.forgetUpgrade() // handover.go
	s.state.Store(stateStopped)
	return nil
}

// shutdown is Shutdown in ModeThread: Start's goroutine does the work.
func (th *threads) shutdown() error {
	if th.s.state.CompareAndSwap(stateRunning, stateStopping) {
		th.stopOnce.Do(func() { close(th.stop) })
	}
	return nil
}

// shutdownNow runs on Start's goroutine: BeforeShutdown, the listeners close, every
// connection closes (OnClose runs in the workers), the loops end (OnWorkerStop), then the
// reactors.
func (th *threads) shutdownNow() {
	s := th.s
	if s.cb.beforeShutdown != nil {
		s.cb.beforeShutdown(s)
	}
	for _, w := range th.reactors {
		w.onLoop(func() {
			for _, ln := range w.masterLns {
				w.loop.RemoveListener(ln)
			}
			w.loop.CloseAll(reactor.CloseShutdown)
			w.flushThreadEvents()
		})
	}
	for _, tl := range th.loops {
		tl.push(threadEvent{typ: tevExit})
	}
	th.loopsDone.Wait()
	th.stopProcesses() // thread_process.go
	if s.cb.managerStop != nil {
		s.cb.managerStop(s)
	}
	for _, w := range th.reactors {
		w.loop.Post(reactor.Task{Fn: func() { w.timers.Clear(); w.loop.Stop() }})
	}
	th.reactorsDone.Wait()
}

// reload replaces every worker loop (or only the task workers'), one after the other in
// their own time: each finishes what it has in hand, runs OnWorkerStop, and a fresh loop
// runs OnWorkerStart and takes the rest of the queue. A reload asked for while one runs is
// ignored.
func (th *threads) reload(onlyTask bool) error {
	s := th.s
	if s.state.Load() != stateRunning {
		return s.fail(newError(ErrRefused, "Reload while the server shuts down"))
	}
	if !th.reloading.CompareAndSwap(false, true) {
		return nil
	}
	if s.cb.beforeReload != nil {
		s.cb.beforeReload(s)
	}
	if !onlyTask {
		s.reloadTLS() // the reactors terminate TLS: new connections get the files as they are now
	}
	var started sync.WaitGroup
	for _, tl := range th.loops {
		if onlyTask && !tl.task || tl.proc >= 0 { // user processes are left alone, as in Swoole
			continue
		}
		started.Add(1)
		tl.push(threadEvent{typ: tevReplace, done: &started})
	}
	th.loopsDone.Add(1) // Start waits for this one too
	go func() {
		defer th.loopsDone.Done()
		// Each loop takes its marker before an exit marker a shutdown queues after it, so
		// this returns before the loops end.
		started.Wait()
		if s.cb.afterReload != nil && s.state.Load() == stateRunning {
			s.cb.afterReload(s)
		}
		th.reloading.Store(false)
	}()
	return nil
}

// push queues ev; the loop is woken when it had nothing queued.
func (tl *threadLoop) push(ev threadEvent) {
	tl.mu.Lock()
	tl.items = append(tl.items, ev)
	l := tl.arm()
	if tl.waker != nil {
		select {
		case tl.waker <- struct{}{}:
		default:
		}
	}
	tl.mu.Unlock()
	if l != nil {
		l.Post(tl.drainTask)
	}
}

// pushBatch queues evs (a reactor's round) in order.
func (tl *threadLoop) pushBatch(evs []threadEvent) {
	tl.mu.Lock()
	tl.items = append(tl.items, evs...)
	l := tl.arm()
	tl.mu.Unlock()
	if l != nil {
		l.Post(tl.drainTask)
	}
}

// arm returns the loop to wake, when a drain is not posted yet. tl.mu is held.
func (tl *threadLoop) arm() *reactor.Loop {
	if tl.armed || tl.loop == nil {
		return nil
	}
	tl.armed = true
	return tl.loop
}

// attach makes l the loop that takes the queue (a new generation).
func (tl *threadLoop) attach(l *reactor.Loop) {
	tl.mu.Lock()
	tl.loop = l
	tl.armed = false
	if len(tl.items) > 0 {
		tl.armed = true
		l.Post(tl.drainTask)
	}
	tl.mu.Unlock()
}

// detach leaves the queue to the next generation.
func (tl *threadLoop) detach() {
	tl.mu.Lock()
	tl.loop = nil
	tl.armed = false
	tl.mu.Unlock()
}

// drain handles what is queued, on the loop. When the loop ends in the middle (a replace
// or exit marker, or a panic in a callback), what follows stays queued, in order, for the
// next generation; a panic loses the event in hand only.
//
// A callback that waits for task results on the loop (waitTasks) runs a drain inside its
// own: the outer drain first gives back what it has not handled yet (yieldBatch), so the
// inner one takes every event in queue order. The inner one leaves queued, in order, the
// events of the sessions whose callbacks are running (busyFds), and everything from a replace
// or exit marker on: those wait for the outer callback to return.
func (tl *threadLoop) drain() {
	w := tl.cur
	d := &w.thrDrain // the generation's: a successor started by retire has its own
	tl.mu.Lock()
	batch := tl.items
	tl.items, tl.spare = tl.spare[:0], nil
	tl.armed = false
	tl.mu.Unlock()
	outerBatch, outerPos := d.batch, d.pos
	d.batch, d.pos = batch, 0
	d.depth++
	nested := d.depth > 1
	var kept []threadEvent // nested: events of busy sessions, in order
	defer func() {
		rest := d.batch[d.pos:]
		tl.mu.Lock()
		if len(kept)+len(rest) > 0 {
			tl.items = append(append(append(make([]threadEvent, 0, len(kept)+len(rest)+len(tl.items)), kept...), rest...), tl.items...)
		}
		clear(batch)
		if tl.spare == nil && cap(batch) <= 4096 {
			tl.spare = batch[:0]
		}
		d.depth--
		d.batch, d.pos = outerBatch, outerPos
		var post *reactor.Loop
		if d.depth == 0 && len(tl.items) > 0 && tl.loop == w.loop {
			post = tl.arm() // what a nested drain left (a busy session's events) is served now
		}
		tl.mu.Unlock()
		if post != nil {
			post.Post(tl.drainTask)
		}
	}()
	for d.pos < len(d.batch) {
		ev := &d.batch[d.pos]
		if nested {
			if ev.typ == tevReplace || ev.typ == tevExit {
				return // the outer drain takes it, once the waiting callback returned
			}
			if ev.fd != 0 && slices.Contains(d.busyFds, ev.fd) {
				kept = append(kept, *ev)
				d.pos++
				continue
			}
		}
		d.pos++
		if ev.fd != 0 {
			d.busyFds = append(d.busyFds, ev.fd)
		}
		end := tl.handle(w, ev)
		if ev.fd != 0 {
			d.busyFds = d.busyFds[:len(d.busyFds)-1]
		}
		if end {
			return
		}
	}
}

// drainState is a generation's running drain (its loop goroutine only).
type drainState struct {
	batch   []threadEvent // what the running drain took from the queue; batch[pos:] is not handled yet
	pos     int
	depth   int     // drains running, nested ones (waitTasks) included
	busyFds []int64 // the sessions whose callbacks run (a nested drain serves none of their events)
}

// yieldBatch gives the events generation w's running drain has not handled yet back to the
// head of the queue, and ends that drain after the event in hand: so that a drain nested in
// that event's callback takes them first (waitTasks), or a successor that starts before this
// generation's drain returns (retire) finds them in order. Loop goroutine only.
func (tl *threadLoop) yieldBatch(w *worker) {
	d := &w.thrDrain
	rest := d.batch[d.pos:]
	tl.mu.Lock()
	if len(rest) > 0 {
		tl.items = append(append(make([]threadEvent, 0, len(rest)+len(tl.items)), rest...), tl.items...)
		clear(rest)
		d.batch = d.batch[:d.pos]
	}
	var post *reactor.Loop
	if len(tl.items) > 0 {
		post = tl.arm()
	}
	tl.mu.Unlock()
	if post != nil {
		post.Post(tl.drainTask)
	}
}

// handle runs one event on worker w's loop. It reports whether the loop ends.
func (tl *threadLoop) handle(w *worker, ev *threadEvent) bool {
	h := w.s
	ctr := h.table.Counters()
	switch ev.typ {
	case tevData:
		sl := h.table.Get(ev.fd)
		if sl != nil && sl.HasFlag(conntable.FlagCloseAsked) && sl.Session.Load() == ev.fd ||
			h.eff.DiscardTimeoutRequest && !dispatch.KeepsOrder(h.eff.DispatchMode) && h.table.Lookup(ev.fd) == nil {
			if sl != nil {
				sl.RecvQueued.Add(-int64(len(ev.data)))
			}
			buffer.Put(ev.data)
			return false // data for a session closed meanwhile (as ModeProcess)
		}
		ctr.RequestCount.Add(1)
		w.slot.RequestCount.Add(1)
		if tl.t.idleDispatch {
			tl.busyAt.Store(nanotime())
		}
		w.slot.Status.Store(WorkerBusy)
		ev.port.ecb.receive(h, ev.fd, int(ev.rid), ev.data)
		w.slot.Status.Store(WorkerIdle)
		if sl != nil {
			sl.RecvQueued.Add(-int64(len(ev.data)))
		}
		buffer.Put(ev.data) // valid during OnReceive only, as in every mode
		return tl.countRequest(w)
	case tevConnect:
		if cb := ev.port.ecb.connect; cb != nil {
			w.slot.Status.Store(WorkerBusy)
			cb(h, ev.fd, int(ev.rid))
			w.slot.Status.Store(WorkerIdle)
		}
	case tevClose:
		if cb := ev.port.ecb.close; cb != nil {
			arg := int(ev.rid)
			if ev.appClose {
				arg = -1
			}
			tl.inClose.Store(ev.fd)
			w.slot.Status.Store(WorkerBusy)
			cb(h, ev.fd, arg)
			w.slot.Status.Store(WorkerIdle)
			tl.inClose.Store(0)
		}
		r, fd := ev.r, ev.fd
		r.loop.Post(reactor.Task{Fn: func() { r.closeAcked(fd) }})
	case tevFull, tevEmpty:
		cb := ev.port.ecb.bufferEmpty
		if ev.typ == tevFull {
			cb = ev.port.ecb.bufferFull
		}
		if cb != nil {
			w.slot.Status.Store(WorkerBusy)
			cb(h, ev.fd)
			w.slot.Status.Store(WorkerIdle)
		}
	case tevPacket:
		ctr.RequestCount.Add(1)
		w.slot.RequestCount.Add(1)
		w.slot.Status.Store(WorkerBusy)
		ev.port.ecb.packet(h, ev.data, *ev.client)
		w.slot.Status.Store(WorkerIdle)
		return tl.countRequest(w)
	case tevPipe:
		if cb := h.cb.pipeMessage; cb != nil {
			w.slot.Status.Store(WorkerBusy)
			cb(h, ev.src, ev.data)
			w.slot.Status.Store(WorkerIdle)
		}
	case tevTask:
		if h.eff.TaskEnableCoroutine {
			tl.startTask(w, ev.task) // thread_task.go; counted when it ends
			return false
		}
		tl.runTask(w, ev.task)    // thread_task.go
		return tl.countRequest(w) // task_max_request
	case tevFinish:
		tl.finished(w, ev.task)
	case tevFn:
		ev.fn(h)
	case tevReplace, tevExit:
		tl.started = ev.done
		tl.retire(w, ev.typ)
		return true
	}
	return false
}

// countRequest counts a request against max_request: the loop that reaches it is replaced
// right after the event, as Swoole's worker leaves after it.
func (tl *threadLoop) countRequest(w *worker) bool {
	m := w.s.eff.MaxRequest
	if tl.task {
		m = w.s.eff.TaskMaxRequest
	}
	if m <= 0 {
		return false
	}
	tl.requests++
	if tl.requests < int64(m) {
		return false
	}
	w.s.log.Info("swoole: max_request reached: the worker loop is replaced", "worker", tl.id, "requests", tl.requests)
	tl.retire(w, tevReplace)
	return true
}

// retire ends this generation on its loop: it leaves the queue to the next one; OnWorkerStop
// runs and the loop ends. A loop that still has timers (or, with task_enable_coroutine, tasks
// in hand) keeps running them first, calling OnWorkerExit each round so that the user can
// clear them, until none is left or max_wait_time has passed, as a worker process drains
// (child.go, exitWorker). With reload_async (the default) its replacement starts at once and
// runs beside it; without, after it.
func (tl *threadLoop) retire(w *worker, how uint8) {
	s := w.s
	w.thrEnd = how
	tl.detach()
	tl.yieldBatch(w) // what follows the marker goes back to the queue before any successor runs
	if tl.proc >= 0 || w.timers.Len() == 0 && w.thrTasks == 0 {
		tl.finishRetire(w, true)
		return
	}
	owner := true // it still owns the worker's slot: no successor runs yet
	handOff := how == tevReplace && *s.eff.ReloadAsync
	if handOff {
		// A reload's OnAfterReload waits for this loop's end, not its successor's start,
		// as it waits for the old worker processes to exit in the other modes.
		w.thrAfter, tl.started = tl.started, nil
		w.thrEnd, owner = tevHandedOff, false
	}
	deadline := w.loop.Now() + int64(s.eff.MaxWaitTime)
	var round func(int)
	round = func(int) {
		if w.timers.Len() > 0 && s.cb.workerExit != nil {
			s.cb.workerExit(s, tl.id)
		}
		if w.timers.Len() == 0 && w.thrTasks == 0 || w.loop.Now() >= deadline {
			if n, k := w.timers.Len(), w.thrTasks; n > 0 || k > 0 {
				s.log.Warn("swoole: the worker loop's timers or tasks still run after max_wait_time: it stops anyway", "worker", tl.id, "timers", n, "tasks", k, "code", ErrServerWorkerExitTimeout)
			}
			tl.finishRetire(w, owner)
			return
		}
		w.timers.Add(w.loop.Now(), workerExitRound, 0, round)
	}
	round(0)
	if handOff {
		// The successor starts after the first OnWorkerExit: one order, whatever the
		// scheduler does.
		tl.t.loopsDone.Add(1)
		go tl.serve()
	}
}

// finishRetire runs OnWorkerStop and ends generation w's loop; owner: no successor runs yet,
// so the worker's slot is still w's to mark.
func (tl *threadLoop) finishRetire(w *worker, owner bool) {
	if owner {
		w.slot.Status.Store(WorkerExit)
	}
	if cb := w.s.cb.workerStop; cb != nil && tl.proc < 0 {
		cb(w.s, tl.id)
	}
	w.timers.Clear()
	w.loop.Stop()
	if wg := w.thrAfter; wg != nil {
		w.thrAfter = nil
		wg.Done()
	}
}

// serve runs the loop's generations until the server shuts down.
func (tl *threadLoop) serve() {
	defer tl.t.loopsDone.Done()
	for {
		if how := tl.generation(); how == tevExit || how == tevHandedOff {
			return
		}
	}
}

// generation runs one event loop of tl: a new handle, OnWorkerStart, the queue and the
// timers, until it is replaced or the server ends. A panic in a callback ends it: it is
// logged, OnWorkerError runs on the master's handle, and the next generation starts.
func (tl *threadLoop) generation() (how uint8) {
	th := tl.t
	s := th.s
	h := &Server{serverCore: s.serverCore}
	pid := int32(os.Getpid())
	w := &worker{s: h, id: tl.id, slot: s.table.Worker(tl.id), pid: pid, ev: callbackEvents{}}
	h.cur = w
	h.run = threadRuntime{s: h, t: th, tl: tl}
	loop, err := reactor.New(w, reactor.Config{NoPoll: true})
	if err != nil {
		s.log.Error("swoole: cannot create a worker loop: retrying", "worker", tl.id, "err", err)
		time.Sleep(100 * time.Millisecond)
		return tevReplace
	}
	w.loop = loop
	loop.SetTimers(&w.timers)
	defer loop.Close()
	tl.cur, tl.requests = w, 0
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if w.thrEnd == tevHandedOff || w.thrEnd == tevExit {
			// It panicked while draining its timers, beside its successor or at the
			// shutdown: only it ends.
			s.log.Error("swoole: a callback panicked while a retiring worker loop drained its timers", "worker", tl.id, "panic", r, "stack", string(debug.Stack()), "code", ErrServerWorkerTerminated)
			how = w.thrEnd
			if wg := w.thrAfter; wg != nil {
				w.thrAfter = nil
				wg.Done()
			}
			return
		}
		how = tevReplace
		tl.detach()
		s.log.Error("swoole: a callback panicked: the worker loop is replaced; its connections stay open", "worker", tl.id, "panic", r, "stack", string(debug.Stack()), "code", ErrServerWorkerTerminated)
		tl.lostTask() // thread_task.go
		if fd := tl.inClose.Swap(0); fd != 0 {
			// OnClose panicked: the session is still released.
			if c := s.conns[fd&s.mask].Load(); c != nil && c.id == fd {
				c.w.loop.Post(reactor.Task{Fn: func() { c.w.closeAcked(fd) }})
			}
		}
		if cb := s.cb.workerError; cb != nil && s.state.Load() == stateRunning {
			cb(s, tl.id, int(pid), 255, 0)
		}
		if ws := tl.started; ws != nil {
			tl.started = nil
			ws.Done()
		}
	}()
	w.slot.PID.Store(pid)
	w.slot.StartTime.Store(time.Now().Unix())
	w.slot.Status.Store(WorkerIdle) // OnWorkerStart sees its worker idle, as in Swoole
	if tl.proc >= 0 {
		w.slot.Status.Store(WorkerBusy) // a user process runs its function: busy, as in the other modes
	}
	loop.BindGoroutine()
	if cb := s.cb.workerStart; cb != nil && tl.proc < 0 {
		cb(h, tl.id)
	}
	if ws := tl.started; ws != nil {
		tl.started = nil
		ws.Done()
	}
	tl.attach(loop)
	if err := loop.Run(); err != nil {
		s.log.Error("swoole: a worker loop failed", "worker", tl.id, "err", err)
	}
	if w.thrEnd == 0 {
		return tevExit // the loop ended without retiring: it failed
	}
	return w.thrEnd
}

// threadEvents: a ModeThread reactor passes the events to the worker loops.
type threadEvents struct{}

func (threadEvents) owner(w *worker) int32 { return ownerReactor(w.id) }

func (threadEvents) newConn(ip []byte) *conn { return masterEvents{}.newConn(ip) }

func (threadEvents) opened(w *worker, c *conn) {
	if c.port.ecb.connect == nil || !w.ms.events {
		return
	}
	switch id := w.pick(c, dispatch.EventConnect, c.key(), nil); {
	case id >= 0:
		w.toLoop(id, threadEvent{typ: tevConnect, rid: int16(w.id), fd: c.id, port: c.port})
	case id == -2:
		w.closeByDispatch(c)
	}
}

func (threadEvents) closed(w *worker, c *conn, reactorID int) {
	w.dropInput(c)
	c.mc.gone = true
	if c.port.ecb.close == nil || !w.ms.events {
		return
	}
	id := w.pick(c, dispatch.EventClose, c.key(), nil)
	if id < 0 {
		return
	}
	w.toLoop(id, threadEvent{typ: tevClose, rid: int16(w.id), fd: c.id, port: c.port, appClose: reactorID == -1, r: w})
	c.mc.closeTo = int16(id)
	c.mc.closePending = true
}

func (threadEvents) frame(w *worker, c *conn, data []byte, now int64) {
	c.slot.LastDispatch.Store(now)
	switch id := w.pick(c, dispatch.EventData, c.key(), data); {
	case id >= 0:
		q := c.slot.RecvQueued.Add(int64(len(data)))
		b := buffer.Get(len(data)) // back to the pool once OnReceive returned (handle)
		copy(b, data)
		w.toLoop(id, threadEvent{typ: tevData, rid: int16(w.id), fd: c.id, port: c.port, data: b})
		if q > int64(w.s.eff.MaxQueuedBytes) {
			// The workers do not keep up with this connection: stop reading it until they
			// have handled all but max_queued_bytes of it (the peer's writes wait in the
			// kernel), so that a slow worker never makes the queues grow without bound.
			w.throttle(c, -1)
		}
	case id == -2:
		w.closeByDispatch(c)
	}
}

func (threadEvents) pending(*conn, int) {}

func (threadEvents) packet(w *worker, p *Port, data []byte, from unix.Sockaddr) {
	_, ip, _, _ := sys.PeerAddr(from)
	key := dispatch.Key{FD: p.fd}
	if addr, ok := netip.AddrFromSlice(ip); ok {
		key.IP = dispatch.IPKey(addr)
	}
	id := w.pickFD(nil, packetFD(ip), dispatch.EventPacket, key, data)
	if id < 0 {
		return
	}
	client := clientAddr(p, from)
	w.s.table.Counters().TotalRecvBytes.Add(int64(len(data)))
	w.toLoop(id, threadEvent{typ: tevPacket, rid: int16(w.id), port: p, data: append([]byte(nil), data...), client: &client})
}

func (threadEvents) buffer(w *worker, c *conn, full bool) {
	typ, cb := tevEmpty, c.port.ecb.bufferEmpty
	if full {
		typ, cb = tevFull, c.port.ecb.bufferFull
	}
	if cb == nil || !w.ms.events {
		return
	}
	if id, _ := w.ms.picker.Pick(w.s.eff.DispatchMode, c.key(), w.idleWorker); id >= 0 {
		w.toLoop(id, threadEvent{typ: typ, rid: int16(w.id), fd: c.id, port: c.port})
	}
}

// toLoop passes ev to worker loop id: held until the end of the reactor's round (one batch
// per worker and round), or at once outside a round.
func (w *worker) toLoop(id int, ev threadEvent) {
	ctr := w.s.table.Counters()
	ctr.DispatchCount.Add(1)
	if ws := w.s.table.Worker(id); ws != nil {
		ws.DispatchCount.Add(1)
	}
	if !w.bursting {
		w.s.thr.loops[id].push(ev)
		return
	}
	if !w.heldMark[id] {
		w.heldMark[id] = true
		w.held = append(w.held, id)
	}
	w.thrOut[id] = append(w.thrOut[id], ev)
}

// flushThreadEvents passes the events held during a round to their loops.
func (w *worker) flushThreadEvents() {
	w.bursting = false
	for _, id := range w.held {
		w.heldMark[id] = false
		w.s.thr.loops[id].pushBatch(w.thrOut[id])
		clear(w.thrOut[id])
		w.thrOut[id] = w.thrOut[id][:0]
	}
	w.held = w.held[:0]
}

// threadRounds makes a reactor's round a batch (toLoop).
type threadRounds struct{ w *worker }

func (r threadRounds) RoundStart() { r.w.bursting = true }
func (r threadRounds) RoundEnd()   { r.w.flushThreadEvents() }

// latestBusy is dispatch_mode 3's choice when no worker is idle: the worker whose current
// event began last, most likely the nearest to done (and never the one stuck longest).
func (th *threads) latestBusy() int {
	best, at := 0, int64(-1)
	for id := range th.s.eff.WorkerNum {
		if t := th.loops[id].busyAt.Load(); t > at {
			best, at = id, t
		}
	}
	return best
}
