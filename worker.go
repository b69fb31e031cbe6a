package swoole

import (
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/conntable"
	"github.com/goswoole/swoole/internal/dispatch"
	"github.com/goswoole/swoole/internal/framing"
	"github.com/goswoole/swoole/internal/ipc"
	"github.com/goswoole/swoole/internal/pidfile"
	"github.com/goswoole/swoole/internal/reactor"
	"github.com/goswoole/swoole/internal/supervisor"
	"github.com/goswoole/swoole/internal/sys"
	"github.com/goswoole/swoole/internal/timer"
)

// worker is one event loop that accepts, reads and runs callbacks (a ModeBase worker).
type worker struct {
	s      *Server
	id     int
	loop   *reactor.Loop
	slot   *conntable.WorkerSlot
	timers timer.Heap  // this worker's timers (loop goroutine only)
	pid    int32       // this process's pid, stored in the slots of the connections it owns
	in     *ipc.Reader // the pipe whose messages pipeMessage handles (descriptors: TakeFD)

	maxRequests int64 // max_request (with its grace) in a worker process; 0 = no limit
	requests    int64 // requests handled by this process (loop goroutine only)

	// A reactor of a ModeProcess master (master.go): ms is nil in every other loop.
	ms            *masterState
	masterLns     []*reactor.Listener
	pktBuf        []byte  // scratch for a datagram event
	throttled     []*conn // connections not read because of max_queued_bytes or pipeQueueBound
	throttleTimer int     // the timer that looks at throttled while it is not empty (0: none)
	pipeState     []int8  // unthrottle's scratch, by worker
	corkSends     bool    // reading the reactor's pipe: Sends to a connection are corked
	corked        []*conn // connections corked during this pipe batch
	bursting      bool    // delivering several frames of one read: events to workers are held
	held          []int   // workers whose pipe is held during this burst
	heldMark      []bool  // by worker id: in held
}

// conn is a connection held by this process.
type conn struct {
	id       int64
	slot     *conntable.Slot
	port     *Port
	w        *worker
	rc       *reactor.Conn
	in       []byte          // pending input: an incomplete frame (loop only)
	dec      framing.Decoder // the port's framing state for this connection (loop only)
	openedAt int64           // Unix nanoseconds when it was accepted
	appClose atomic.Bool     // closed by Close (OnClose gets reactorID -1)
	inClose  atomic.Bool     // OnClose is running

	mc *masterConn // a ModeProcess master's state of the connection (master.go), else nil
}

// masterConn is what a ModeProcess master keeps per connection beyond conn (loop goroutine
// only). It is apart so that the other modes' connections stay in a smaller size class.
type masterConn struct {
	ipKey        uint32 // dispatch.IPKey of the peer
	closeTo      int16  // the worker OnClose was passed to
	closePending bool   // the session waits for that worker's acknowledgement
	finished     bool   // the descriptor is closed (queued output written): Finished ran
	gone         bool   // the socket is closed: requests from workers are dropped
	throttled    bool   // not read: more than max_queued_bytes dispatched and not handled, or see waitPipe
	waitPipe     int16  // 1 + the worker whose pipe queue passed pipeQueueBound when c dispatched to it (0: none)
	batchCorked  bool   // corked until the end of the reactor's pipe batch
}

// Start runs the server: it listens, starts the workers and serves until Shutdown or SIGTERM,
// then returns nil. Callbacks run on the calling goroutine (the worker's event loop) in a
// single-process ModeBase server. A second Start is an error (9008).
//
// With worker_num > 1 (ModeBase) the calling process becomes the manager: Start re-executes
// this program once per worker and returns nil in the manager once the whole tree has shut
// down. In each worker process the program's main runs again up to Start (NewServer and
// AddListener adopt the manager's sockets), and there Start serves and never returns: the
// process exits when the worker stops. So code before Start runs in every process; code
// after it only in the manager. See docs/process-model.md.
func (s *Server) Start() error {
	if !s.state.CompareAndSwap(stateNew, stateStarting) {
		if s.state.Load() == stateStopped && s.table == nil {
			return s.fail(newError(ErrRefused, "Start after Shutdown: the server was shut down before it started; create a new server"))
		}
		return s.fail(newError(ErrServerOnlyStartOne, "Start called twice: a server starts once; create a new server to serve again"))
	}
	if err := s.prepare(); err != nil {
		s.cleanup()
		s.state.Store(stateStopped)
		if s.mp != nil && s.mp.child {
			s.childFailed(err) // never returns: user code after Start runs only in the manager
		}
		return s.fail(err)
	}
	if s.mp != nil {
		if s.mp.child {
			if s.mp.role.Kind == supervisor.KindTaskWorker {
				s.runTaskChild() // task_worker.go; never returns
			}
			s.runChild() // never returns
		}
		return s.runManager()
	}
	w := s.cur
	if s.eff.PidFile != "" {
		pf, err := pidfile.Write(s.eff.PidFile)
		if err != nil {
			s.cleanup()
			s.state.Store(stateStopped)
			return s.fail(wrapErrno("", err, "cannot write pid_file %q: check the directory and its permissions", s.eff.PidFile))
		}
		defer pf.Remove()
	}
	s.state.Store(stateRunning) // publishes what prepare built to every goroutine
	if s.stopRequested.Load() {
		_ = s.Shutdown() // asked while Start was preparing
	}
	s.sigDone = make(chan struct{})
	sigCh := make(chan os.Signal, 1)
	signal.Notify(sigCh, syscall.SIGTERM)
	go func() {
		select {
		case <-sigCh:
			_ = s.Shutdown()
		case <-s.sigDone:
		}
	}()

	w.loop.BindGoroutine()
	if iv := s.idleCheckInterval(); iv > 0 {
		w.timers.Add(w.loop.Now(), iv, iv, func(int) { w.idleConns(true, false) })
	}
	if s.eff.StatsFile != "" {
		w.timers.Add(w.loop.Now(), 0, time.Second, func(int) { s.writeStatsFile() })
	}
	daemonReady() // daemonize: the process that called Start exits now (daemon.go)
	if s.cb.start != nil {
		s.cb.start(s)
	}
	w.slot.Status.Store(WorkerIdle) // OnWorkerStart sees its worker idle, as in Swoole
	if s.cb.workerStart != nil {
		s.cb.workerStart(s, w.id)
	}
	err := w.loop.Run()

	signal.Stop(sigCh)
	close(s.sigDone)
	if s.cb.shutdown != nil {
		s.cb.shutdown(s)
	}
	s.cleanup()
	s.state.Store(stateStopped)
	if err != nil {
		return s.fail(wrapErrno("", err, "the event loop failed"))
	}
	return nil
}

// prepare resolves settings, builds the connection table and the worker, and starts
// listening.
func (s *Server) prepare() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	given := s.given
	if given.WorkerNum == 0 {
		// Swoole's default is one worker per CPU. In ModeBase an unset worker_num runs one
		// process (code before Start runs in every process: more is opt-in, README);
		// ModeProcess, which always has worker processes, takes Swoole's default.
		given.WorkerNum = 1
		if s.mode == ModeProcess {
			given.WorkerNum = runtime.NumCPU()
		}
	}
	s.eff = given.withDefaults()
	if err := s.eff.validate(); err != nil {
		return err
	}
	if err := s.checkTaskSettings(); err != nil { // task.go
		return err
	}
	if err := s.chooseProcessModel(); err != nil {
		return err
	}
	s.chooseRuntime() // role.go: the role is decided here, once
	if s.eff.Daemonize {
		if err := s.daemonize(); err != nil { // does not return in the process that called Start
			return err
		}
	}
	if err := s.newLogger(); err != nil {
		return err
	}
	for _, p := range s.ports {
		p.resolve(s.eff, s.cb.port)
		if p.sock.isStream() {
			if p.ecb.receive == nil {
				return newError(ErrServerInvalidCallback, "port %s has no Receive handler: register one with OnReceive (on the server or the port)", p.addr())
			}
			f, err := p.framingConfig()
			if err != nil {
				return err
			}
			p.frame = f
		} else if p.ecb.packet == nil {
			return newError(ErrServerInvalidCallback, "datagram port %s has no Packet handler: register one with OnPacket (on the server or the port)", p.addr())
		}
	}
	if err := s.prepareProcessMode(); err != nil {
		return err
	}
	if s.mp != nil {
		return nil // the manager (base_multi.go) or the worker process (child.go) builds the rest
	}
	t, err := conntable.New(s.eff.MaxConnection, s.eff.WorkerNum, s.eff.StartSessionID)
	if err != nil {
		return wrapErrno("", err, "cannot create the connection table (max_connection %d)", s.eff.MaxConnection)
	}
	s.table = t
	runtime.AddCleanup(s, func(t *conntable.Table) { t.Close() }, t)
	s.conns = make([]atomic.Pointer[conn], t.Capacity())
	s.mask = int64(t.Capacity() - 1)
	t.Counters().StartTime.Store(time.Now().Unix())

	w := &worker{s: s, id: 0, slot: t.Worker(0), pid: int32(os.Getpid())}
	w.slot.PID.Store(int32(os.Getpid()))
	w.slot.Status.Store(WorkerBusy) // starting: OnStart and OnWorkerStart run first
	w.slot.StartTime.Store(time.Now().Unix())
	loop, err := reactor.New(w, reactor.Config{})
	if err != nil {
		return wrapErrno("", err, "cannot create the event loop")
	}
	w.loop = loop
	loop.SetTimers(&w.timers)
	s.workers = []*worker{w}
	s.cur = w

	for _, p := range s.ports {
		if err := p.listen(); err != nil {
			return err
		}
		p.ln = &reactor.Listener{FD: p.fd, Owner: p, Dgram: !p.sock.isStream()}
		if err := loop.AddListener(p.ln); err != nil {
			return wrapErrno("", err, "cannot watch port %d", p.port)
		}
	}
	return nil
}

// listen applies the listener options and starts listening.
func (p *Port) listen() error {
	if p.eff.EnableReusePort && p.sock.isStream() && p.sock.base() != SockUnixStream {
		// SO_REUSEPORT must be set before bind: bind again, on the same port, with it.
		if err := syscall.Close(p.fd); err != nil {
			return wrapErrno("close", err, "cannot rebind port %d with SO_REUSEPORT", p.port)
		}
		fam := sys.FamilyInet4
		if p.sock.base() == SockTCP6 {
			fam = sys.FamilyInet6
		}
		fd, _, err := sys.Bind(sys.ListenSpec{Family: fam, Stream: true, Host: p.host, Port: p.port, ReusePort: true})
		if err != nil {
			return wrapErrno("", err, "cannot rebind port %d with SO_REUSEPORT", p.port)
		}
		p.fd = fd
	}
	if p.sock.base() == SockTCP || p.sock.base() == SockTCP6 {
		if p.eff.TCPDeferAccept > 0 {
			_ = sys.SetInt(p.fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, p.eff.TCPDeferAccept)
		}
		if p.eff.TCPFastOpen {
			_ = sys.SetInt(p.fd, unix.IPPROTO_TCP, unix.TCP_FASTOPEN, 128)
		}
	}
	if !p.sock.isStream() {
		return nil
	}
	if err := sys.Listen(p.fd, p.eff.Backlog); err != nil {
		return wrapErrno("", err, "cannot listen on port %d", p.port)
	}
	return nil
}

// cleanup releases what prepare built. Listening sockets close here.
func (s *Server) cleanup() {
	for _, p := range s.ports {
		if p.fd >= 0 {
			syscall.Close(p.fd)
			p.fd = -1
			if (p.sock.base() == SockUnixStream || p.sock.base() == SockUnixDgram) && !p.adopted {
				os.Remove(p.host)
			}
		}
		p.mu.Lock()
		if p.file != nil {
			p.file.Close()
			p.file = nil
		}
		p.mu.Unlock()
	}
	for _, w := range s.workers {
		if w.loop != nil {
			w.loop.Close()
		}
	}
	// The connection table stays mapped: a goroutine that checked the state a moment ago may
	// still be reading it. It is unmapped when the Server becomes unreachable (prepare).
	if s.logFile != nil {
		s.logFile.Close()
	}
}

// Shutdown stops the server (Swoole's shutdown; SIGTERM does the same): BeforeShutdown runs,
// listeners close, every connection closes (OnClose for each), WorkerStop runs, then Start
// runs Shutdown and returns. Shutdown returns at once; it may be called from any goroutine,
// including a callback.
//
// In a server of several processes it works from every process: a worker, a task worker, a
// user process, the manager's and the master's callbacks. A worker that is being stopped
// (Stop, max_request, a reload) still ends the server when it calls Shutdown from one of its
// callbacks (OnWorkerStop, OnWorkerExit, ...); a call there from another goroutine is taken
// for a program that answers SIGTERM with Shutdown, and ignored (see docs/process-model.md).
//
// Shutdown before Start releases the ports NewServer and AddListener bound (the server can no
// longer start) and returns ErrRefused (503), since the server was not running.
func (s *Server) Shutdown() error {
	for {
		if st := s.state.Load(); st == stateRunning || st == stateStopping {
			// Each runtime knows what a Shutdown while stopping means: nothing in the
			// process that is shutting the server down; in a worker the manager is
			// stopping (OnWorkerStop after Stop), a request for the whole server's end.
			return s.run.shutdown()
		}
		if s.state.CompareAndSwap(stateNew, stateStopped) {
			s.mu.Lock()
			s.cleanup()
			s.releaseProcs() // the user processes' socket pairs (AddProcess)
			s.mu.Unlock()
			return s.fail(newError(ErrRefused, "Shutdown before Start: the server was not running; its ports are released and it cannot start any more"))
		}
		switch s.state.Load() {
		case stateStarting:
			// Start is preparing: it checks this flag right after it starts running.
			s.stopRequested.Store(true)
			if s.state.Load() == stateStarting {
				return nil
			}
		case stateStopping:
			return nil
		case stateStopped:
			return s.running("Shutdown")
		}
	}
}

// shutdownSingle is Shutdown in a single-process server: the loop runs the shutdown.
func (s *Server) shutdownSingle() error {
	if s.state.CompareAndSwap(stateRunning, stateStopping) {
		w := s.cur
		w.loop.Post(reactor.Task{Fn: w.shutdown})
	}
	return nil
}

// shutdown runs on the loop.
func (w *worker) shutdown() {
	s := w.s
	if s.cb.beforeShutdown != nil {
		s.cb.beforeShutdown(s)
	}
	for _, p := range s.ports {
		if p.ln != nil {
			w.loop.RemoveListener(p.ln)
		}
	}
	w.loop.CloseAll(reactor.CloseShutdown)
	if s.cb.workerStop != nil {
		s.cb.workerStop(s, w.id)
	}
	w.timers.Clear()
	w.slot.Status.Store(WorkerExit)
	w.loop.Stop()
}

// Accept registers a new connection in the table.
func (w *worker) Accept(ln *reactor.Listener, fd int, peer unix.Sockaddr) *reactor.Conn {
	s := w.s
	p := ln.Owner.(*Port)
	ctr := s.table.Counters()
	id, slot, ok := int64(0), (*conntable.Slot)(nil), false
	if int(ctr.ConnectionNum.Load()) < s.eff.MaxConnection {
		id, slot, ok = s.table.Alloc()
	}
	if !ok {
		ctr.AbortCount.Add(1)
		if ok, left := s.logLimits[logRefused].allow(); ok {
			s.log.Warn("swoole: connection refused: max_connection reached", "code", ErrServerTooManySocket, "max_connection", s.eff.MaxConnection, "port", p.port, "suppressed", left)
		}
		return nil
	}
	now := time.Now()
	slot.OwnerPID.Store(w.pid)
	if w.ms != nil {
		slot.Worker.Store(ownerReactor(w.id))
	} else {
		slot.Worker.Store(int32(w.id))
	}
	slot.FD.Store(int32(fd))
	slot.ReactorID.Store(int32(w.id))
	slot.ServerFD.Store(int32(p.fd))
	slot.ServerPort.Store(int32(p.port))
	slot.SocketType.Store(int32(p.sock))
	slot.PortIndex.Store(int32(p.index))
	fam, ip, port, path := sys.PeerAddr(peer)
	slot.SetRemoteAddr(fam, ip, port, path)
	slot.RemotePort.Store(int32(port))
	slot.ConnectTime.Store(now.Unix())
	if p.sock.base() != SockUnixStream {
		if p.eff.OpenTCPNoDelay {
			_ = sys.SetNoDelay(fd)
		}
		if p.eff.OpenTCPKeepalive {
			_ = sys.SetKeepAlive(fd, p.eff.TCPKeepIdle, p.eff.TCPKeepInterval, p.eff.TCPKeepCount)
		}
		if p.eff.TCPUserTimeout > 0 {
			_ = sys.SetInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, p.eff.TCPUserTimeout)
		}
	}
	if p.eff.KernelSocketRecvBufferSize > 0 {
		_ = sys.SetInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, p.eff.KernelSocketRecvBufferSize)
	}
	if p.eff.KernelSocketSendBufferSize > 0 {
		_ = sys.SetInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, p.eff.KernelSocketSendBufferSize)
	}
	c := &conn{id: id, slot: slot, port: p, w: w, openedAt: now.UnixNano()}
	if w.ms != nil {
		c.mc = &masterConn{}
		if a, ok := netip.AddrFromSlice(ip); ok {
			c.mc.ipKey = dispatch.IPKey(a)
		}
	}
	c.dec = framing.NewDecoder(p.frame)
	c.rc = reactor.NewConn(fd, c, reactor.ConnOptions{
		MaxQueued: p.eff.SocketBufferSize,
		High:      p.eff.BufferHighWatermark,
		Low:       p.eff.BufferLowWatermark,
		Delayed:   s.eff.EnableDelayReceive,
	})
	if s.eff.EnableDelayReceive {
		slot.SetFlag(conntable.FlagDelayRecv)
	}
	s.conns[id&s.mask].Store(c)
	return c.rc
}

// Opened publishes the connection and runs OnConnect.
func (w *worker) Opened(rc *reactor.Conn) {
	c := rc.Owner.(*conn)
	s := w.s
	s.table.Publish(c.slot)
	ctr := s.table.Counters()
	ctr.ConnectionNum.Add(1)
	ctr.AcceptCount.Add(1)
	fd := int64(rc.FD)
	if m := ctr.MaxFD.Load(); fd > m {
		ctr.MaxFD.CompareAndSwap(m, fd)
	}
	if m := ctr.MinFD.Load(); m == 0 || fd < m {
		ctr.MinFD.CompareAndSwap(m, fd)
	}
	if w.ms != nil {
		w.masterOpened(c)
		return
	}
	if cb := c.port.ecb.connect; cb != nil {
		w.slot.Status.Store(WorkerBusy)
		cb(s, c.id, w.id)
		w.slot.Status.Store(WorkerIdle)
	}
}

// Closed runs OnClose and releases the session.
func (w *worker) Closed(rc *reactor.Conn, reason reactor.CloseReason, errno unix.Errno) {
	c := rc.Owner.(*conn)
	s := w.s
	s.table.MarkClosing(c.slot, c.id)
	c.slot.CloseErrno.Store(int32(errno))
	reactorID := w.id
	if c.appClose.Load() {
		reactorID = -1
	}
	if w.ms != nil {
		w.dropInput(c)
		c.mc.closePending = w.masterClosed(c)
		return
	}
	if cb := c.port.ecb.close; cb != nil {
		c.inClose.Store(true)
		w.slot.Status.Store(WorkerBusy)
		cb(s, c.id, reactorID)
		w.slot.Status.Store(WorkerIdle)
		c.inClose.Store(false)
	}
	w.dropInput(c)
}

// Finished runs once the connection's descriptor is closed: right after Closed, or, for a
// Close with output queued, once that output is written (or the connection is reset). Until
// then the session stays, closing: connection_num counts it, a second Close is 1004 and
// Close(fd, true) drops the rest (Swoole's close_queued). In a ModeProcess master the session
// also waits for the worker's acknowledgement of OnClose (closeAcked).
func (w *worker) Finished(rc *reactor.Conn) {
	c := rc.Owner.(*conn)
	s := w.s
	ctr := s.table.Counters()
	ctr.ConnectionNum.Add(-1)
	ctr.CloseCount.Add(1)
	if c.mc != nil {
		c.mc.finished = true
		if c.mc.closePending {
			return
		}
	}
	s.conns[c.id&s.mask].CompareAndSwap(c, nil)
	s.table.Release(c.slot)
}

// Overflow keeps the connection's FlagOverflow in the shared table in step with its output
// queue (at or above socket_buffer_size, or below again), so that other processes refuse
// Sends to it (sendRemote). Called with the Conn's lock held, from any goroutine.
func (w *worker) Overflow(rc *reactor.Conn, over bool) {
	c := rc.Owner.(*conn)
	if over {
		c.slot.SetFlag(conntable.FlagOverflow)
	} else {
		c.slot.ClearFlag(conntable.FlagOverflow)
	}
}

// BufferFull runs OnBufferFull; a ModeProcess master passes it to a worker.
func (w *worker) BufferFull(rc *reactor.Conn) {
	c := rc.Owner.(*conn)
	if w.ms != nil {
		w.masterBufferEvent(c, true)
		return
	}
	if cb := c.port.ecb.bufferFull; cb != nil {
		cb(w.s, c.id)
	}
}

// BufferEmpty runs OnBufferEmpty; a ModeProcess master passes it to a worker.
func (w *worker) BufferEmpty(rc *reactor.Conn) {
	c := rc.Owner.(*conn)
	if w.ms != nil {
		w.masterBufferEvent(c, false)
		return
	}
	if cb := c.port.ecb.bufferEmpty; cb != nil {
		cb(w.s, c.id)
	}
}
