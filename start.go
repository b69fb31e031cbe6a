package swoole

// Start, Shutdown and what they build and release: the entry points of every process's life.
// Start chooses the process's role once (role.go) and enters that role's runtime: the single
// process's loop here, the manager's (manager.go), a worker's (child.go), a task worker's
// (task_worker.go) or a user process's (userproc.go).

import (
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/conntable"
	"github.com/goswoole/swoole/internal/pidfile"
	"github.com/goswoole/swoole/internal/reactor"
	"github.com/goswoole/swoole/internal/supervisor"
	"github.com/goswoole/swoole/internal/sys"
)

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
//
// In a server of one process, Upgrade hands the listeners to a new process of the
// executable on disk; Start then returns nil once this process's connections have closed
// (or max_wait_time passed), as after Shutdown.
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
	if err := s.listenAdmin(); err != nil { // admin_server.go
		s.cleanup()
		s.state.Store(stateStopped)
		return s.fail(err)
	}
	if s.thr != nil {
		return s.runThreads() // thread.go
	}
	s.state.Store(stateRunning) // publishes what prepare built to every goroutine
	if s.stopRequested.Load() {
		_ = s.Shutdown() // asked while Start was preparing
	}
	s.startLogWatch() // logfile.go: SIGRTMIN and log_rotation; stopped in cleanup
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
	if s.cb.start != nil {
		s.cb.start(s)
	}
	w.slot.Status.Store(WorkerIdle) // OnWorkerStart sees its worker idle, as in Swoole
	if s.cb.workerStart != nil {
		s.cb.workerStart(s, w.id)
	}
	s.startAdmin()
	// The listeners are in the loop, which runs now: the process that started this one
	// (daemonize's starter, or the process Upgrade replaces) lets go of them (daemon.go).
	daemonReady()
	err := w.loop.Run()
	s.stopAdmin()
	s.forgetUpgrade() // handover.go

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
	if err := checkAdminServer(s.eff.AdminServer); err != nil { // admin_server.go
		return err
	}
	s.registerAdminCommands() // admin_commands.go
	if err := s.chooseProcessModel(); err != nil {
		return err
	}
	s.chooseRuntime()                   // role.go: the role is decided here, once
	makeRoomForLoops(s.blockingLoops()) // procs.go
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
			if p.sock&SockSSL != 0 {
				cfg, err := p.tlsConfig() // tls.go
				if err != nil {
					return err
				}
				p.tls.Store(cfg)
			}
		} else if p.ecb.packet == nil {
			return newError(ErrServerInvalidCallback, "datagram port %s has no Packet handler: register one with OnPacket (on the server or the port)", p.addr())
		}
	}
	if err := s.prepareProcessMode(); err != nil {
		return err
	}
	if s.mp != nil {
		return nil // the manager (manager.go) or the worker process (child.go) builds the rest
	}
	if s.thr != nil {
		return s.prepareThreads() // thread.go
	}
	t, err := s.newTable(s.eff.WorkerNum)
	if err != nil {
		return err
	}

	w := &worker{s: s, id: 0, slot: t.Worker(0), pid: int32(os.Getpid()), ev: callbackEvents{}}
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
		p.noteListener()
		p.ln = &reactor.Listener{FD: p.fd, Owner: p, Dgram: !p.sock.isStream()}
		if err := loop.AddListener(p.ln); err != nil {
			return wrapErrno("", err, "cannot watch port %d", p.port)
		}
	}
	return nil
}

// newTable creates the connection table with a status slot per worker id (slots) and this
// process's view of the connections, in the process that creates the server's table (the
// single process, the manager or master, a ModeThread server). It is unmapped when the
// server becomes unreachable.
func (s *Server) newTable(slots int) (*conntable.Table, error) {
	t, err := conntable.New(s.eff.MaxConnection, slots, s.eff.StartSessionID)
	if err != nil {
		return nil, wrapErrno("", err, "cannot create the connection table (max_connection %d)", s.eff.MaxConnection)
	}
	s.table = t
	runtime.AddCleanup(s.serverCore, func(t *conntable.Table) { t.Close() }, t)
	s.conns = make([]atomic.Pointer[conn], t.Capacity())
	s.mask = int64(t.Capacity() - 1)
	t.Counters().StartTime.Store(time.Now().Unix())
	return t, nil
}

// listen applies the listener options and starts listening.
func (p *Port) listen() error {
	if p.eff.EnableReusePort && p.sock.isStream() && p.sock.base() != SockUnixStream && !(p.inherited && reusePortSet(p.fd)) {
		// SO_REUSEPORT must be set before bind: bind again, on the same port, with it. Not
		// a socket the process this one replaces (Upgrade) set it on: that socket, and the
		// connections waiting in its queue, are served on.
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
		// Accepted sockets inherit TCP_NODELAY from the listening socket (noteListener).
		nodelay := 0
		if p.eff.OpenTCPNoDelay {
			nodelay = 1
		}
		_ = sys.SetInt(p.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, nodelay)
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

// reusePortSet reports whether SO_REUSEPORT is on for the socket fd.
func reusePortSet(fd int) bool {
	on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT)
	return err == nil && on != 0
}

// cleanup releases what prepare built. Listening sockets close here.
func (s *Server) cleanup() {
	s.stopLogWatch() // logfile.go
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
