package swoole

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/conntable"
	"github.com/goswoole/swoole/internal/dispatch"
	"github.com/goswoole/swoole/internal/ipc"
	"github.com/goswoole/swoole/internal/reactor"
	"github.com/goswoole/swoole/internal/sys"
)

// ModeProcess, as Swoole runs it:
//
//	master  (the process that called Start; user code after Start runs here)
//	│   reactor_num reactor loops (goroutines, each its own epoll): accept, read, frame,
//	│   write; every connection lives here, so workers come and go without dropping one.
//	│   It also supervises the workers (the manager's job: spawn, reap, restart, reload), so
//	│   GetManagerPID() is the master's pid.
//	├── worker 0   this executable again, GOSWOOLE_ROLE=worker:0: no listener in its loop;
//	│              it reads its pipe (Connect, Data, Close, Packet events) and runs callbacks;
//	│              Send/Close/Pause/Resume/SendFile go back over the pipe of the connection's
//	│              reactor
//	└── worker N-1
//
// Pipes: the per-worker pairs of ModeBase (the master writes events to a_w, the worker reads
// b_w) and one pair per reactor r: every worker writes to a_r ("ipc.r.<r>"), reactor r reads
// b_r. The master keeps every end for the server's life, so a restarted worker inherits its
// pipe and the events queued there.
//
// A connection's slot in the table has Worker = -2 - r for reactor r (ownerReactor), so any
// process finds the pipe that reaches it.

// Messages of ModeProcess beyond ipc's predefined ones (numbered apart from manager.go's).
const (
	msgCloseAck = ipc.TypeUser + 16 // worker → reactor: OnClose of session Fd has run
	msgPacket   = ipc.TypeUser + 17 // master → worker: a datagram; Aux port index
	msgFull     = ipc.TypeUser + 18 // master → worker: OnBufferFull of session Fd; Aux port index
	msgEmpty    = ipc.TypeUser + 19 // master → worker: OnBufferEmpty of session Fd; Aux port index
)

// flagAppClose marks a Close event for a connection the application closed (OnClose gets
// reactorID -1).
const flagAppClose ipc.Flags = 1 << 2

const filePrefixR = "ipc.r."

// ownerReactor is the Slot.Worker value of a connection held by the master's reactor r.
func ownerReactor(r int) int32 { return int32(-2 - r) }

// reactorOf returns the reactor a Slot.Worker value names, or -1 if it names a worker.
func reactorOf(owner int) int {
	if owner <= -2 {
		return -2 - owner
	}
	return -1
}

// masterState is what the master of a ModeProcess server adds to multi.
type masterState struct {
	reactors []*worker
	picker   *dispatch.Picker
	events   bool // OnConnect/OnClose/OnBufferFull/OnBufferEmpty are delivered (!connEventsOff)
	pairs    [][2]*os.File
	readers  []*ipc.Reader
	running  sync.WaitGroup
}

// prepareProcessMode checks what ModeProcess adds to prepare, with s.mu held. As Swoole 6.2's
// Server::start_check: under a dispatch mode that may spread one connection's events over
// several workers (every mode but 2 and 4), without a DispatchFunc or enable_unsafe_event,
// OnConnect, OnClose, OnBufferFull and OnBufferEmpty are left out (not delivered) and a
// warning (9015) says so for each one registered; the server starts. The master logs it,
// once.
func (s *Server) prepareProcessMode() error {
	if !s.connEventsOff() || (s.mp != nil && s.mp.child) {
		return nil
	}
	for _, ev := range []struct {
		name, swoole string
		set          func(p *Port) bool
	}{
		{"OnConnect", "onConnect", func(p *Port) bool { return p.ecb.connect != nil }},
		{"OnClose", "onClose", func(p *Port) bool { return p.ecb.close != nil }},
		{"OnBufferFull", "onBufferFull", func(p *Port) bool { return p.ecb.bufferFull != nil }},
		{"OnBufferEmpty", "onBufferEmpty", func(p *Port) bool { return p.ecb.bufferEmpty != nil }},
	} {
		for _, p := range s.ports {
			if p.sock.isStream() && ev.set(p) {
				s.log.Warn("swoole: cannot set '"+ev.swoole+"' event when using dispatch_mode="+strconv.Itoa(s.eff.DispatchMode)+": "+ev.name+" is not delivered, since this mode may pass one connection's events to several workers out of order; set enable_unsafe_event to receive it anyway, or use dispatch_mode 2 or 4 or a DispatchFunc", "code", ErrServerInvalidCallback)
				break
			}
		}
	}
	return nil
}

// connEventsOff reports whether OnConnect, OnClose, OnBufferFull and OnBufferEmpty are left
// out: ModeProcess under a dispatch mode other than 2 (fd modulo) and 4 (IP modulo), Swoole's
// hash modes, with neither a DispatchFunc nor enable_unsafe_event. (Swoole 6.2 leaves them
// out under dispatch_mode 5 too (measured, 6.2.2), its docs notwithstanding.)
func (s *Server) connEventsOff() bool {
	m := s.eff.DispatchMode
	return s.mode != ModeBase && s.eff.DispatchFunc == nil && !s.eff.EnableUnsafeEvent && m != dispatch.FDMod && m != dispatch.IPMod
}

// buildMasterLoops creates the master's reactor loops and their pipes (buildManager, ModeProcess).
func (s *Server) buildMasterLoops() error {
	mp := s.mp
	ms := &masterState{picker: dispatch.NewPicker(s.eff.WorkerNum)}
	ms.events = !s.connEventsOff()
	mp.master = ms
	pid := int32(os.Getpid())
	cfg := s.ipcConfig()
	for r := range s.eff.ReactorNum {
		w := &worker{s: s, id: r, slot: new(conntable.WorkerSlot), pid: pid, ms: ms, ev: masterEvents{}, heldMark: make([]bool, s.procTotal())}
		loop, err := reactor.New(w, reactor.Config{Rounds: masterRounds{w}})
		if err != nil {
			return wrapErrno("", err, "cannot create reactor %d", r)
		}
		w.loop = loop
		loop.SetTimers(&w.timers)
		ms.reactors = append(ms.reactors, w)
		s.workers = append(s.workers, w)

		a, b, err := ipc.NewPair()
		if err != nil {
			return wrapErrno("", err, "cannot create the pipe of reactor %d", r)
		}
		ms.pairs = append(ms.pairs, [2]*os.File{a, b})
		rd, err := ipc.NewReader(b, cfg)
		if err != nil {
			return wrapErrno("", err, "cannot read the pipe of reactor %d", r)
		}
		ms.readers = append(ms.readers, rd)
		w.in = rd
		pin := &reactorPipeIn{w: w, r: rd}
		if err := loop.AddFD(rd.FD(), pin, reactor.Readable); err != nil {
			return wrapErrno("", err, "cannot watch the pipe of reactor %d", r)
		}
	}
	return nil
}

// masterWriter wraps the master's end of worker w's pipe: reactor 0 flushes what the socket
// does not take at once. The pipe of an event worker (events) has no queue limit of its own:
// the reactors bound it by throttling connections (pipeQueueBound), so that no connection's
// data is ever dropped.
func (s *Server) masterWriter(a *os.File, events bool) (*ipc.Writer, error) {
	ms := s.mp.master
	loop := ms.reactors[0].loop
	po := &pipeOut{loop: loop, s: s}
	cfg := s.ipcConfig()
	cfg.OnQueue = func() { loop.Post(reactor.Task{Fn: po.arm}) }
	// With max_request each event takes a datagram of its own: a worker that reaches its
	// limit reads no event past it (see worker.requestBudget), the rest is its replacement's.
	cfg.NoPacking = s.eff.MaxRequest > 0
	if events {
		cfg.MaxBuffered = math.MaxInt / 2
	}
	wr, err := ipc.NewWriter(a, cfg)
	if err != nil {
		return nil, err
	}
	po.wr, po.fd = wr, wr.FD()
	if err := loop.AddFD(po.fd, po, 0); err != nil {
		return nil, err
	}
	return wr, nil
}

// masterListen puts the listeners in every reactor loop (each watches them with
// EPOLLEXCLUSIVE: one reactor wakes per connection).
func (s *Server) masterListen() error { return s.listenOn(s.mp.master.reactors) }

// listenOn puts every port's listener in each of the reactor loops reactors (a ModeProcess
// master's, a ModeThread server's).
func (s *Server) listenOn(reactors []*worker) error {
	for _, p := range s.ports {
		p.noteListener()
		for _, w := range reactors {
			ln := &reactor.Listener{FD: p.fd, Owner: p, Dgram: !p.sock.isStream(), Exclusive: len(reactors) > 1}
			if p.ln == nil {
				p.ln = ln
			}
			w.masterLns = append(w.masterLns, ln)
			if err := w.loop.AddListener(ln); err != nil {
				return wrapErrno("", err, "cannot watch port %d", p.port)
			}
		}
	}
	return nil
}

// runReactors starts the master's loops, each on a goroutine of its own.
func (s *Server) runReactors() { s.runReactorLoops(s.mp.master.reactors, &s.mp.master.running) }

// runReactorLoops starts reactor loops (a ModeProcess master's, a ModeThread server's), each
// on a goroutine of its own counted in running, with the idle scan.
func (s *Server) runReactorLoops(reactors []*worker, running *sync.WaitGroup) {
	iv := s.idleCheckInterval()
	for _, w := range reactors {
		running.Add(1)
		go func() {
			defer running.Done()
			// Not locked to a thread (Swoole's reactors are threads): a locked goroutine
			// that blocks in epoll_wait costs a thread handoff each time it wakes.
			// Measured unlocked against locked, 3 s runs in pairs (BENCHMARKS.md, notes):
			// at one connection 44–53 against 59–97 µs of CPU per message.
			w.loop.BindGoroutine()
			if iv > 0 {
				w.timers.Add(w.loop.Now(), iv, iv, func(int) { w.idleConns(true, false) })
			}
			if err := w.loop.Run(); err != nil {
				s.log.Error("swoole: a reactor loop failed", "reactor", w.id, "err", err)
			}
		}()
	}
}

// closeReactors stops accepting and closes every connection (OnClose events go to the
// workers), then returns once each reactor has done so or the deadline passed.
func (s *Server) closeReactors(deadline time.Time) {
	ms := s.mp.master
	var wg sync.WaitGroup
	for _, w := range ms.reactors {
		wg.Add(1)
		if !w.loop.Post(reactor.Task{Fn: func() {
			defer wg.Done()
			for _, ln := range w.masterLns {
				w.loop.RemoveListener(ln)
			}
			w.loop.CloseAll(reactor.CloseShutdown)
		}}) {
			wg.Done()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
		s.log.Warn("swoole: the reactors did not close every connection in time")
	}
	for _, wr := range s.mp.toWorker {
		_ = wr.FlushBlocking(deadline)
	}
}

// stopReactors ends the master's loops and waits for them.
func (s *Server) stopReactors() {
	ms := s.mp.master
	for _, w := range ms.reactors {
		w.loop.Post(reactor.Task{Fn: func() {
			w.timers.Clear()
			w.loop.Stop()
		}})
	}
	ms.running.Wait()
}

// cleanupMaster closes the reactor pipes.
func (s *Server) cleanupMaster() {
	ms := s.mp.master
	for _, r := range ms.readers {
		r.Release()
	}
	for _, p := range ms.pairs {
		p[0].Close()
		p[1].Close()
	}
}

// pick chooses the worker for an event of connection c (c is nil for a datagram: key then
// holds its source). It returns -1 to drop the event and -2 to close the connection.
func (w *worker) pick(c *conn, ev int, key dispatch.Key, data []byte) int {
	return w.pickFD(c, 0, ev, key, data)
}

// pickFD is pick with the fd DispatchFunc sees for a datagram (c nil): what Swoole passes,
// packetFD of the sender.
func (w *worker) pickFD(c *conn, pktFD int64, ev int, key dispatch.Key, data []byte) int {
	s := w.s
	ms := w.ms
	n := s.eff.WorkerNum
	if fn := s.eff.DispatchFunc; fn != nil {
		fd := pktFD
		if c != nil {
			fd = c.id
		}
		if len(data) > dispatchFuncMax {
			data = data[:dispatchFuncMax]
		}
		switch id := fn(s, fd, ev, data); {
		case id >= 0 && id < n:
			return id
		case id == -1, id == -2:
			return id
		case id == -3: // fall back to dispatch_mode
		default:
			if ok, left := s.logLimits[logDispatchBad].allow(); ok {
				s.log.Warn("swoole: dispatch_func returned an invalid worker id: the event is dropped", "fd", fd, "worker", id, "worker_num", n, "code", ErrInvalidParams, "suppressed", left)
			}
			return -1
		}
	}
	id, noIdle := ms.picker.Pick(s.eff.DispatchMode, key, w.idleWorker)
	if noIdle && s.thr != nil {
		// ModeThread: a worker's reply reaches its client before the worker marks itself
		// idle (it writes to the socket itself), so a client's next request can find it
		// busy by a few instructions: take the worker that became busy last.
		id, noIdle = s.thr.latestBusy(), false
	}
	if noIdle {
		if ok, left := s.logLimits[logNoIdle].allow(); ok {
			s.lastErr.Store(ErrServerNoIdleWorker)
			s.log.Warn("swoole: no idle worker: the event is queued for a busy one (dispatch_mode "+strconv.Itoa(s.eff.DispatchMode)+")", "worker", id, "code", ErrServerNoIdleWorker, "suppressed", left)
		}
	}
	return id
}

// throttleCheck is how often a reactor looks whether the connections it stopped reading
// (max_queued_bytes, pipeQueueBound) may be read again, while it has any.
const throttleCheck = 2 * time.Millisecond

// The master never drops a connection's data on its way to a worker: when a worker does not
// keep up, the reactors stop reading the connections that send to it (the kernel's buffers
// then push back on the peers) and read on once it catches up. Two bounds decide it:
// max_queued_bytes per connection (default 4 MiB: what it dispatched and the workers have not
// handled), and pipeQueueBound per worker (what the master holds queued for the worker's
// pipe, all connections together). So the master holds at most about
// worker_num × pipeQueueBound, plus one read's frames per connection, for workers that do
// not read. Events that cannot wait (connect, close, datagrams) are dropped, with a
// rate-limited 9006 warning, only past pipeDropBound.
const (
	pipeQueueBound = 32 << 20
	pipeDropBound  = 128 << 20
)

// throttle stops reading c until the workers catch up: it dispatched more than
// max_queued_bytes not yet handled, or the queue of worker pipe's pipe passed pipeQueueBound
// (pipe < 0: not that).
func (w *worker) throttle(c *conn, pipe int) {
	if pipe >= 0 {
		c.mc.waitPipe = int16(pipe + 1)
	}
	if c.mc.throttled {
		return
	}
	c.mc.throttled = true
	c.rc.Pause()
	w.throttled = append(w.throttled, c)
	if w.throttleTimer == 0 {
		w.throttleTimer = w.timers.Add(w.loop.Now(), throttleCheck, throttleCheck, func(int) { w.unthrottle(false) })
	}
}

// unthrottle reads again the connections whose dispatched bytes fell to max_queued_bytes and
// whose worker's pipe queue fell to half of pipeQueueBound (all of them with reset: a worker
// died, and what it held will never be taken off).
func (w *worker) unthrottle(reset bool) {
	limit := int64(w.s.eff.MaxQueuedBytes)
	var pipes []*ipc.Writer // none in ModeThread: its queues are bounded by max_queued_bytes alone
	if w.s.mp != nil {
		pipes = w.s.mp.toWorker
	}
	if len(w.pipeState) < len(pipes) {
		w.pipeState = make([]int8, len(pipes))
	}
	clear(w.pipeState) // by worker: 0 not looked at, 1 drained enough, 2 not
	pipeOK := func(id int16) bool {
		if id == 0 {
			return true
		}
		st := &w.pipeState[id-1]
		if *st == 0 {
			*st = 2
			if pipes[id-1].Buffered() <= pipeQueueBound/2 {
				*st = 1
			}
		}
		return *st == 1
	}
	kept := w.throttled[:0]
	for _, c := range w.throttled {
		switch {
		case c.mc.gone:
		case reset || (c.slot.RecvQueued.Load() <= limit && pipeOK(c.mc.waitPipe)):
			if reset {
				c.slot.RecvQueued.Store(0)
			}
			c.mc.throttled = false
			c.mc.waitPipe = 0
			if !c.slot.HasFlag(conntable.FlagPaused) {
				c.rc.Resume()
			}
		default:
			kept = append(kept, c)
		}
	}
	clear(w.throttled[len(kept):])
	w.throttled = kept
	if len(kept) == 0 && w.throttleTimer != 0 {
		w.timers.Cancel(w.throttleTimer)
		w.throttleTimer = 0
	}
}

// dispatchFuncMax is how much of the data a dispatch_func sees (Swoole's 8180 bytes).
const dispatchFuncMax = 8180

func (w *worker) idleWorker(i int) bool {
	ws := w.s.table.Worker(i)
	return ws != nil && ws.Status.Load() == WorkerIdle
}

func (c *conn) key() dispatch.Key {
	return dispatch.Key{FD: c.rc.FD, IP: c.mc.ipKey, UID: c.slot.UID.Load()}
}

// toWorker writes an event to worker id's pipe. The loop never blocks on it: what the pipe
// does not take is queued (reactor 0 flushes it).
func (w *worker) toWorker(id int, h ipc.Header, payload []byte) bool {
	s := w.s
	h.SrcWorker = managerSrcID
	if w.bursting && !w.heldMark[id] {
		w.heldMark[id] = true
		w.held = append(w.held, id)
		s.mp.toWorker[id].Hold()
	}
	wr := s.mp.toWorker[id]
	if h.Type != ipc.TypeData && wr.Buffered() > pipeDropBound {
		// Data waits (the connection is throttled); what cannot wait is dropped past a bound.
		if ok, left := s.logLimits[logEventDrop].allow(); ok {
			s.log.Warn("swoole: an event could not be passed to a worker: dropped", "worker", id, "type", h.Type.String(), "fd", h.Fd, "bytes", len(payload), "err", ipc.ErrQueueFull, "code", ErrServerPipeBufferFull, "suppressed", left)
		}
		return false
	}
	if err := wr.Write(h, payload); err != nil {
		if ok, left := s.logLimits[logEventDrop].allow(); ok {
			s.log.Warn("swoole: an event could not be passed to a worker: dropped", "worker", id, "type", h.Type.String(), "fd", h.Fd, "bytes", len(payload), "err", err, "code", ErrServerPipeBufferFull, "suppressed", left)
		}
		return false
	}
	ctr := s.table.Counters()
	ctr.DispatchCount.Add(1)
	if ws := s.table.Worker(id); ws != nil {
		ws.DispatchCount.Add(1)
	}
	return true
}

// masterRounds makes a round of a reactor (the events of one epoll_wait) a burst: the
// events it dispatches to a worker, for however many connections, leave in one sendmmsg
// (small ones packed into one datagram) when the round ends.
type masterRounds struct{ w *worker }

func (m masterRounds) RoundStart() { m.w.bursting = true }
func (m masterRounds) RoundEnd()   { m.w.endBurst() }

// endBurst sends the events held during a burst (several frames of one read).
func (w *worker) endBurst() {
	w.bursting = false
	for _, id := range w.held {
		w.heldMark[id] = false
		if err := w.s.mp.toWorker[id].Release(); err != nil {
			w.s.log.Warn("swoole: events could not be passed to a worker", "worker", id, "err", err, "code", ErrServerPipeBufferFull)
		}
	}
	w.held = w.held[:0]
}

// uncorkBatch writes what a batch of the reactor's pipe sent to each connection.
func (w *worker) uncorkBatch() {
	for _, c := range w.corked {
		if c.mc.batchCorked {
			c.mc.batchCorked = false
			if !c.mc.gone {
				c.rc.Uncork()
			} else {
				c.rc.Unloan() // the batch's buffers are read over next
			}
		}
	}
	clear(w.corked)
	w.corked = w.corked[:0]
}

// Replies in batches (a worker of a ModeProcess server). The Sends the callbacks of one read
// of the worker's pipe make go to the master's reactors held (ipc.Writer.Hold: packed into
// shared datagrams, one sendmmsg when the batch ends) instead of one sendmsg each. The batch
// ends right after the last callback has returned and the worker has marked itself idle, so
// a client that answers a reply at once finds the worker idle (dispatch_mode 3). While a
// batch lasts, a timer sends what is held every replyFlushEvery, so a slow callback does not
// hold back the replies made before it (or by it).

// replyFlushEvery bounds how long a reply waits in a held batch.
const replyFlushEvery = time.Millisecond

// masterOpened passes OnConnect to a worker (when the dispatch mode delivers it). The
// certificate a TLS client presented travels with it, in PEM, and the event is sent for it
// even without an OnConnect, as Swoole's reactor does: that worker's GetClientInfo returns it
// (workerCerts, tls.go).
func (w *worker) masterOpened(c *conn) {
	var cert []byte
	if c.rc.IsTLS() {
		if p := certPEM(c.rc); p != "" {
			cert = []byte(p)
		}
	}
	if (c.port.ecb.connect == nil && cert == nil) || !w.ms.events {
		return
	}
	id := w.pick(c, dispatch.EventConnect, c.key(), nil)
	switch {
	case id >= 0:
		w.toWorker(id, ipc.Header{Type: ipc.TypeConnect, Fd: c.id, ReactorID: int16(w.id), Aux: uint16(c.port.index)}, cert)
	case id == -2:
		w.closeByDispatch(c)
	}
}

// masterBufferEvent passes OnBufferFull (full) or OnBufferEmpty to the worker that gets the
// connection's data, as Swoole's master notifies its worker. Only with a dispatch mode that
// keeps a connection on one worker (the events are left out otherwise, connEventsOff); the
// worker is the one dispatch_mode names (DispatchFunc is not asked: it has no event type for
// these).
func (w *worker) masterBufferEvent(c *conn, full bool) {
	cb := c.port.ecb.bufferEmpty
	typ := msgEmpty
	if full {
		cb, typ = c.port.ecb.bufferFull, msgFull
	}
	if cb == nil || !w.ms.events {
		return
	}
	id, _ := w.ms.picker.Pick(w.s.eff.DispatchMode, c.key(), w.idleWorker)
	if id >= 0 {
		w.toWorker(id, ipc.Header{Type: typ, Fd: c.id, ReactorID: int16(w.id), Aux: uint16(c.port.index)}, nil)
	}
}

// masterDeliver passes one frame (or chunk) to a worker.
func (w *worker) masterDeliver(c *conn, data []byte, now int64) {
	c.slot.LastDispatch.Store(now)
	id := w.pick(c, dispatch.EventData, c.key(), data)
	switch {
	case id >= 0:
		// recv_queued_bytes: dispatched, not yet handled. Counted before the write: the
		// worker takes them off once handled, which may be before Write returns.
		q := c.slot.RecvQueued.Add(int64(len(data)))
		switch {
		case !w.toWorker(id, ipc.Header{Type: ipc.TypeData, Fd: c.id, ReactorID: int16(w.id), Aux: uint16(c.port.index)}, data):
			c.slot.RecvQueued.Add(-int64(len(data)))
		case w.s.mp.toWorker[id].Buffered() > pipeQueueBound:
			w.throttle(c, id) // the worker does not keep up: stop reading until it does
		case q > int64(w.s.eff.MaxQueuedBytes):
			w.throttle(c, -1) // max_queued_bytes
		}
	case id == -2:
		w.closeByDispatch(c)
	}
}

func (w *worker) closeByDispatch(c *conn) {
	if w.s.table.MarkClosing(c.slot, c.id) {
		c.rc.CloseOnLoop(false) // dispatch: on the loop
	}
}

// masterClosed passes OnClose to a worker. It reports whether the session must stay
// reserved until the worker acknowledges (GetClientInfo works inside OnClose).
func (w *worker) masterClosed(c *conn) bool {
	c.mc.gone = true
	if c.port.ecb.close == nil || !w.ms.events {
		return false
	}
	id := w.pick(c, dispatch.EventClose, c.key(), nil)
	if id < 0 {
		return false
	}
	h := ipc.Header{Type: ipc.TypeClose, Fd: c.id, ReactorID: int16(w.id), Aux: uint16(c.port.index)}
	if c.appClosed() {
		h.Flags = flagAppClose
	}
	if !w.toWorker(id, h, nil) {
		return false
	}
	c.mc.closeTo = int16(id)
	c.mc.closePending = true
	return true
}

// closeAcked releases a session whose OnClose ran in a worker.
func (w *worker) closeAcked(fd int64) {
	s := w.s
	c := s.conns[fd&s.mask].Load()
	if c == nil || c.id != fd || !c.mc.closePending {
		return
	}
	c.mc.closePending = false
	if !c.mc.finished {
		return // its output still drains: Finished releases it
	}
	s.conns[fd&s.mask].CompareAndSwap(c, nil)
	s.table.Release(c.slot)
}

// releaseClosesOf releases, on each reactor, the sessions whose OnClose was passed to worker
// id, which died: its replacement acknowledges only what is still queued in the pipe.
func (s *Server) releaseClosesOf(id int) {
	for _, w := range s.mp.master.reactors {
		w.loop.Post(reactor.Task{Fn: func() {
			w.unthrottle(true)
			for i := range s.conns {
				c := s.conns[i].Load()
				if c != nil && c.w == w && c.mc.closePending && int(c.mc.closeTo) == id {
					c.mc.closePending = false
					if !c.mc.finished {
						continue // Finished releases it
					}
					s.conns[i].CompareAndSwap(c, nil)
					s.table.Release(c.slot)
				}
			}
		}})
	}
}

// packetFD is the fd DispatchFunc gets for a datagram, as Swoole passes it: an IPv4 sender's
// address as its in_addr reads in memory (a.b.c.d → a | b<<8 | c<<16 | d<<24: 127.0.0.1 is
// 16777343), the CRC-32 of an IPv6 sender's address, 0 for a unix socket's.
func packetFD(ip []byte) int64 {
	if v4 := net.IP(ip).To4(); v4 != nil {
		return int64(binary.LittleEndian.Uint32(v4))
	}
	if len(ip) == net.IPv6len {
		return int64(crc32.ChecksumIEEE(ip))
	}
	return 0
}

// masterPacket passes a datagram to a worker, with its sender.
func (w *worker) masterPacket(p *Port, data []byte, from unix.Sockaddr) {
	s := w.s
	fam, ip, port, path := sys.PeerAddr(from)
	var key dispatch.Key
	key.FD = p.fd
	if addr, ok := netip.AddrFromSlice(ip); ok {
		key.IP = dispatch.IPKey(addr)
	}
	id := w.pickFD(nil, packetFD(ip), dispatch.EventPacket, key, data)
	if id < 0 {
		return
	}
	// payload: family (1), port (2), address length (1), address, data
	addr := ip
	if path != "" {
		addr = []byte(path)
	}
	if len(addr) > 255 {
		addr = addr[:255]
	}
	buf := w.pktBuf[:0] // the Writer copies what it does not send at once: reuse it
	buf = append(buf, byte(fam))
	buf = binary.LittleEndian.AppendUint16(buf, uint16(port))
	buf = append(buf, byte(len(addr)))
	buf = append(buf, addr...)
	buf = append(buf, data...)
	s.table.Counters().TotalRecvBytes.Add(int64(len(data)))
	w.toWorker(id, ipc.Header{Type: msgPacket, ReactorID: int16(w.id), Aux: uint16(p.index)}, buf)
	w.pktBuf = buf[:0]
}

// reactorPipeIn is a master reactor's pipe: the workers' requests for its connections, and
// their acknowledgements of OnClose. No callback runs in its reads; the replies of one batch
// to one connection leave in one write (corked).
type reactorPipeIn struct {
	w *worker
	r *ipc.Reader
}

func (p *reactorPipeIn) Readable() {
	p.w.pipeBatch = p.r
	_, err := p.r.ReadBatch(p.w.reactorMessage)
	p.w.pipeBatch = nil
	p.w.uncorkBatch()
	if err != nil {
		p.w.s.log.Warn("swoole: reading a reactor's pipe", "reactor", p.w.id, "err", err)
	}
}

func (p *reactorPipeIn) Writable() {}

// reactorMessage applies one message from a worker to a master reactor.
func (w *worker) reactorMessage(h ipc.Header, payload []byte) {
	if !w.s.fromManager(w.in, h, false) {
		return
	}
	if h.Type == msgCloseAck {
		w.closeAcked(h.Fd)
		return
	}
	w.connRequest(h, payload)
}
