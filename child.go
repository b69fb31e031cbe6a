package swoole

import (
	"encoding/binary"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/conntable"
	"github.com/goswoole/swoole/internal/ipc"
	"github.com/goswoole/swoole/internal/reactor"
	"github.com/goswoole/swoole/internal/supervisor"
)

// A worker process of a multi-process ModeBase server (see manager.go). The user's main
// runs again in it: NewServer and AddListener adopt the listeners the manager passed
// (adoptPort), Set and On run as in the manager, and Start enters runChild, which never
// returns: the process exits when the worker stops, so code after Start runs only in the
// manager.

// childTerm receives the SIGTERM the manager sends a worker to stop it (shutdown, reload,
// Stop, max_request). It is installed when the package initialises, before the user's main
// runs, so that a worker signalled while it is still starting stops cleanly instead of dying
// of the signal's default action.
var childTerm = func() chan os.Signal {
	if r, ok := supervisor.Current(); ok && (r.Kind == supervisor.KindWorker || r.Kind == supervisor.KindUserProcess || r.Kind == supervisor.KindTaskWorker) {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		return ch
	}
	return nil
}()

// childWorkerID returns this process's worker id when it is a worker or task worker process
// (task workers adopt the listeners too, without watching them), else -1.
func childWorkerID() int {
	if r, ok := supervisor.Current(); ok && (r.Kind == supervisor.KindWorker || r.Kind == supervisor.KindTaskWorker) {
		return r.ID
	}
	return -1
}

// adoptPort takes, in a worker process, the socket the manager passed for the port with this
// index instead of binding one: ok is false outside a child process (worker, user process)
// unless this process inherited the port's socket from the process that started it (a
// daemon's starter, or the process Upgrade replaces: daemonListener). The port number is
// read from the socket, so Port.Port() is the manager's even for port 0.
func (s *Server) adoptPort(index int, host string, sock SockType, want int) (p *Port, ok bool, err error) {
	_, child := supervisor.Current() // user processes adopt the listeners too
	who, same := "worker process", "in every process"
	var f *os.File
	if child {
		found := false
		if f, found = supervisor.Inherited(filePrefixL + strconv.Itoa(index)); !found {
			if role, _ := supervisor.Current(); sock.isStream() && (s.mode != ModeBase || role.Kind != supervisor.KindWorker) {
				// A process that does not accept is given no stream listener (childFiles):
				// the port is known by its number only.
				return &Port{s: s, host: host, port: childPort(index), sock: sock, fd: -1, adopted: true}, true, nil
			}
			return nil, true, newError(ErrOperationNotSupport, "worker process: the manager passed no socket for port %d (%s): create the same ports, in the same order, in every process (code before Start runs in each of them)", index, host)
		}
	} else if f = daemonListener(index); f == nil {
		return nil, false, nil // neither a child nor a daemon given this port: bind it
	} else {
		who, same = "inherited listener", "as the process that passed it"
	}
	fd, err := privateFD(f)
	if err != nil {
		return nil, true, wrapErrno("", err, "%s: cannot adopt the socket of port %d", who, index)
	}
	fail := func(format string, args ...any) (*Port, bool, error) {
		unix.Close(fd)
		return nil, true, newError(ErrOperationNotSupport, "%s: port %d: "+format+": create the same ports, in the same order, %s", append(append([]any{who, index}, args...), same)...)
	}
	typ, err1 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	dom, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err1 != nil || err2 != nil {
		return fail("the inherited descriptor is not a socket")
	}
	wantDom := map[SockType]int{SockTCP: unix.AF_INET, SockUDP: unix.AF_INET, SockTCP6: unix.AF_INET6, SockUDP6: unix.AF_INET6, SockUnixStream: unix.AF_UNIX, SockUnixDgram: unix.AF_UNIX}[sock.base()]
	if (typ == unix.SOCK_STREAM) != sock.isStream() || dom != wantDom {
		return fail("the passed socket (domain %d, type %d) is not a %v socket", dom, typ, sock.base())
	}
	// The listener is shared with every worker: it must stay non-blocking (a blocking accept4
	// would hang a worker that lost the race for a connection).
	_ = unix.SetNonblock(fd, true)
	port := 0
	if dom != unix.AF_UNIX {
		sa, err := unix.Getsockname(fd)
		if err != nil {
			unix.Close(fd)
			return nil, true, wrapErrno("getsockname", err, "%s: cannot read the port of socket %d", who, index)
		}
		switch a := sa.(type) {
		case *unix.SockaddrInet4:
			port = a.Port
		case *unix.SockaddrInet6:
			port = a.Port
		}
		if !child && want != 0 && port != want {
			// An upgraded program that moved a port: adopting the old one would serve the
			// wrong port. (A worker runs the same code as its manager.)
			return fail("the passed socket is bound to port %d, not %d", port, want)
		}
	}
	// A daemon owns the sockets its starter passed (it unlinks a unix path when it stops).
	return &Port{s: s, host: host, port: port, sock: sock, fd: fd, adopted: child, inherited: !child}, true, nil
}

// privateFD returns a close-on-exec duplicate of an inherited file's descriptor and closes
// the file (which os.NewFile may have put in Go's poller; the duplicate is not). The open
// file, and its O_NONBLOCK flag, stay shared with the other processes.
func privateFD(f *os.File) (int, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	f.Close()
	if err != nil {
		return -1, os.NewSyscallError("fcntl", err)
	}
	return fd, nil
}

// adoptPipe adopts an inherited ipc end.
func adoptPipe(f *os.File, name string) (*os.File, error) {
	fd, err := privateFD(f)
	if err != nil {
		return nil, err
	}
	nf, err := ipc.Inherit(uintptr(fd), name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return nf, nil
}

// workerStopping reports, in a worker process, whether the manager is stopping this worker:
// the server shuts down, a reload replaces it, or it got the manager's SIGTERM. Shutdown
// does nothing then: a program that answers SIGTERM with Shutdown (the usual Go way) also
// catches, in every worker, the SIGTERM with which the manager stops that worker, and must
// not take it for a request to stop the whole server. The flags are set in the shared table
// before the manager sends any signal.
func (s *Server) workerStopping() bool {
	ctr := s.table.Counters()
	if s.mp.termed.Load() || ctr.ServerFlags.Load()&flagShutdown != 0 {
		return true
	}
	gen := ctr.ReloadGen.Load()
	return gen > 0 && int64(supervisor.Generation()) < gen
}

// childFailed ends a worker process whose Start failed: user code after Start must not run
// in a worker. The manager sees the exit status 1 (OnWorkerError) and restarts it.
func (s *Server) childFailed(err error) {
	s.log.Error("swoole: worker process cannot start: "+err.Error(), "worker", childWorkerID())
	os.Exit(1)
}

// runChild is Start in a worker process. It never returns.
func (s *Server) runChild() {
	mp := s.mp
	if mp.role.Kind == supervisor.KindUserProcess { // userproc.go
		s.runUserProcess() // never returns
	}
	_ = supervisor.WatchLifeline(func() { os.Exit(1) }) // the manager died: Pdeathsig backs this up
	if err := s.buildChild(); err != nil {
		s.cleanup()
		s.childFailed(err)
	}
	w := s.cur
	s.state.Store(stateRunning)
	if s.stopRequested.Load() {
		_ = s.run.shutdown() // asked while Start was preparing
	}
	go func() {
		select {
		case <-childTerm:
			mp.termed.Store(true)
			w.loop.Post(reactor.Task{Fn: w.exitWorker})
		case <-mp.done:
		}
	}()

	w.loop.BindGoroutine()
	w.takePipe()
	if iv := s.idleCheckInterval(); iv > 0 {
		mp.hbTimer = w.timers.Add(w.loop.Now(), iv, iv, func(int) { w.idleConns(true, false) })
	}
	if s.eff.StatsFile != "" && w.id == 0 {
		mp.statsTimer = w.timers.Add(w.loop.Now(), 0, time.Second, func(int) { s.writeStatsFile() })
	}
	w.slot.StartTime.Store(time.Now().Unix())
	w.slot.RequestCount.Store(0)
	w.slot.ResponseCount.Store(0)
	w.slot.DispatchCount.Store(0)
	w.slot.PID.Store(w.pid)
	w.slot.Status.Store(WorkerBusy) // ready: the manager waits for this
	if s.mode != ModeProcess && w.id == 0 && s.cb.start != nil && s.table.Counters().ServerFlags.Load()&flagStartRan == 0 {
		// ModeBase: OnStart runs in worker 0, once, when the whole tree is up (the other
		// processes do not wait for worker 0 to start: it holds only its own loop).
		if s.waitReadyForStart() && s.table.Counters().ServerFlags.Or(flagStartRan)&flagStartRan == 0 {
			s.cb.start(s)
		}
	}
	w.slot.Status.Store(WorkerIdle) // OnWorkerStart sees its worker idle, as in Swoole
	if s.cb.workerStart != nil {
		s.cb.workerStart(s, w.id)
	}
	err := w.loop.Run()
	close(mp.done)
	code := 0
	if err != nil {
		s.log.Error("swoole: the worker's event loop failed", "worker", w.id, "err", err)
		code = 1
	}
	s.exitChild(code)
}

// exitChild ends a child process: what its pipes could not send yet (replies, a stop
// request, task results) goes out first, up to a second, then the log is synced.
func (s *Server) exitChild(code int) {
	mp := s.mp
	deadline := time.Now().Add(time.Second)
	pipes := append(append(mp.toWorker, mp.toMgr), mp.toReactor...)
	if s.task != nil {
		pipes = append(pipes, s.task.resOut...)
	}
	for _, wr := range pipes {
		if wr != nil {
			_ = wr.FlushBlocking(deadline)
		}
	}
	if s.logFile != nil {
		s.logFile.Sync()
	}
	os.Exit(code)
}

// adoptTable maps, in a child process (what names it in errors), the connection table the
// manager passed.
func (s *Server) adoptTable(what string) (*conntable.Table, error) {
	f, ok := supervisor.Inherited(fileTable)
	if !ok {
		return nil, newError(ErrOperationNotSupport, "%s: the manager passed no connection table", what)
	}
	t, err := conntable.Open(f)
	if err != nil {
		return nil, wrapErrno("", err, "%s: cannot map the connection table", what)
	}
	s.table = t
	runtime.AddCleanup(s.serverCore, func(t *conntable.Table) { t.Close() }, t)
	s.conns = make([]atomic.Pointer[conn], t.Capacity())
	s.mask = int64(t.Capacity() - 1)
	return t, nil
}

// buildChild maps the table, creates the worker's loop and connects its listeners and pipes.
func (s *Server) buildChild() error {
	mp := s.mp
	id := mp.role.ID
	what := "worker process " + strconv.Itoa(id)
	w, err := s.bootChild(what, true)
	if err != nil {
		return err
	}
	w.maxRequests = requestLimit(s.eff.MaxRequest, s.eff.MaxRequestGrace)
	loop := w.loop
	for _, p := range s.ports {
		if s.mode == ModeProcess {
			break // the master accepts and reads; the adopted sockets serve SendTo and GetSocket
		}
		shared := true
		if p.eff.EnableReusePort && p.sock.isStream() && p.sock.base() != SockUnixStream {
			// A listening socket of this worker's own in the port's SO_REUSEPORT group:
			// the kernel spreads connections over the workers.
			if err := p.listen(); err != nil {
				return err
			}
			shared = false
		}
		p.ownFD = !shared
		p.noteListener()
		p.ln = &reactor.Listener{FD: p.fd, Owner: p, Dgram: !p.sock.isStream(), Exclusive: shared}
		if err := loop.AddListener(p.ln); err != nil {
			return wrapErrno("", err, "cannot watch port %d", p.port)
		}
	}
	rcfg := s.ipcConfig()
	if s.mode == ModeProcess {
		if rcfg, err = s.adoptEventArea(what, rcfg); err != nil { // event_area.go
			return err
		}
	}
	if mp.reader, err = s.adoptInPipe(what, fileIn, rcfg); err != nil {
		return err
	}
	mp.pin = &pipeIn{w: w, r: mp.reader, area: rcfg.Area != nil} // watched once this process holds the pipe (takePipe)
	w.in = mp.reader
	mp.pin.fn = w.pipeMessage
	if s.mode == ModeProcess {
		mp.pin.fn = w.processWorkerMessage // the master's events come on it too
	}
	return s.attachTaskWorker(loop) // task.go: the result pipe, the task queue
}

// takePipe starts reading the worker's pipe once no other process reads it: during a
// reload the old process of this worker id reads it until it stops (it then clears
// ReaderPID), so that the events of one connection are never handled by two processes at
// once and a chunked message is never split between them. A reader that died (killed) lets
// go by dying. Until then the loop looks again every millisecond.
func (w *worker) takePipe() {
	mp := w.s.mp
	if w.tryTakePipe() {
		return
	}
	mp.pipeTimer = w.timers.Add(w.loop.Now(), time.Millisecond, time.Millisecond, func(int) {
		if w.tryTakePipe() {
			w.timers.Cancel(mp.pipeTimer)
			mp.pipeTimer = 0
		}
	})
}

func (w *worker) tryTakePipe() bool {
	mp := w.s.mp
	ws := w.slot
	for {
		cur := ws.ReaderPID.Load()
		if cur != 0 && cur != w.pid && unix.Kill(int(cur), 0) != unix.ESRCH {
			return false // the previous process still reads it
		}
		if ws.ReaderPID.CompareAndSwap(cur, w.pid) {
			break
		}
	}
	w.resumeEvents() // what a predecessor that died received and did not handle
	if err := w.loop.AddFD(mp.reader.FD(), mp.pin, reactor.Readable); err != nil {
		w.s.log.Error("swoole: cannot watch the worker's pipe", "worker", w.id, "err", err)
	}
	return true
}

// pipeIn is the worker's own pipe in its loop.
type pipeIn struct {
	w    *worker
	r    *ipc.Reader
	fn   func(ipc.Header, []byte)
	area bool // the Reader receives in an event area (event_area.go)
}

func (p *pipeIn) Readable() {
	s := p.w.s
	ext := &s.mp.ext // a Command wait in a callback of this read must know (command_multi.go)
	ext.inRead++
	s.beginReplyBatch() // ModeProcess: the Sends of one batch go to the master together
	_, err := p.r.ReadBatchMax(p.fn, p.w.requestBudget())
	s.endReplyBatch()
	ext.inRead--
	if err != nil {
		p.w.s.log.Warn("swoole: reading the worker's pipe", "worker", p.w.id, "err", err)
	}
}

func (p *pipeIn) Writable() {}

// pipeOut is a pipe this worker writes to (another worker's, the manager's): the loop
// watches it for room while the Writer holds queued messages.
type pipeOut struct {
	loop *reactor.Loop
	wr   *ipc.Writer
	fd   int
	s    *Server // for the accounting of what it cannot deliver
}

// arm watches for room when messages are queued (posted by the Writer's OnQueue).
func (p *pipeOut) arm() {
	if p.wr.Buffered() > 0 {
		_ = p.loop.SetFDInterest(p.fd, reactor.Writable)
	}
}

func (p *pipeOut) Writable() {
	done, err := p.wr.Flush()
	if err != nil {
		// The other end refuses for good: what is queued cannot be delivered.
		n := p.wr.Discard()
		if s := p.s; s != nil {
			s.table.Counters().LostMessageCount.Add(int64(n))
			if ok, left := s.logLimits[logIPCDrop].allow(); ok {
				s.log.Warn("swoole: messages queued for another process were dropped: its pipe refuses them", "datagrams", n, "err", err, "suppressed", left)
			}
		}
		done = true
	}
	if done {
		_ = p.loop.SetFDInterest(p.fd, 0)
	}
}

// Readable is called only for an error or hang-up on the socket (no read interest): stop
// watching it rather than spin; writes still try it directly.
func (p *pipeOut) Readable() {
	if s := p.s; s != nil && p.wr.Buffered() > 0 {
		s.log.Warn("swoole: a pipe to another process reported an error or hang-up while messages wait for it", "bytes", p.wr.Buffered())
	}
	p.loop.RemoveFD(p.fd)
}

// pipeMessage applies one message from another process to a ModeBase worker, on its loop:
// a pipe message, a command, or a request for one of its connections (connRequest).
func (w *worker) pipeMessage(h ipc.Header, payload []byte) {
	s := w.s
	if !s.fromManager(w.in, h, false) {
		return
	}
	switch h.Type {
	case ipc.TypePipeMessage:
		if s.cb.pipeMessage != nil {
			w.slot.Status.Store(WorkerBusy)
			s.cb.pipeMessage(s, int(h.SrcWorker), payload)
			w.slot.Status.Store(WorkerIdle)
		}
		return
	case ipc.TypeCommand, ipc.TypeCommandReply: // command_multi.go
		s.commandMessage(h, payload)
		return
	case msgLogReopen: // logfile.go
		ffd := -1
		if w.in != nil {
			ffd = w.in.TakeFD()
		}
		s.logReopenMessage(h, ffd)
		return
	}
	w.connRequest(h, payload)
}

// processWorkerMessage applies one message to a ModeProcess worker: an event from the
// master (process_worker.go procEvent), else a pipe message or a command.
func (w *worker) processWorkerMessage(h ipc.Header, payload []byte) {
	if !w.procEvent(h, payload) {
		w.pipeMessage(h, payload)
	}
}

// connRequest applies another process's request (Send, Close, Pause, Resume, Confirm,
// SendFile) to a connection this loop holds: a ModeBase worker's, or a master reactor's.
func (w *worker) connRequest(h ipc.Header, payload []byte) {
	s := w.s
	c := s.conns[h.Fd&s.mask].Load()
	// A reset may still reach a gone connection of the master: one whose queued output drains.
	if c == nil || c.id != h.Fd || (c.mc != nil && c.mc.gone && (h.Type != ipc.TypeCloseReq || h.Aux != 1)) {
		s.log.Debug("swoole: a request for a connection that is gone was dropped", "fd", h.Fd, "type", h.Type.String(), "from", h.SrcWorker, "code", ErrSessionDiscardData)
		return
	}
	switch h.Type {
	case ipc.TypeSend:
		if w.pipeBatch != nil && !c.mc.batchCorked { // a master's reactor: c.mc is set
			c.mc.batchCorked = true
			c.rc.Cork()
			w.corked = append(w.corked, c)
		}
		// The sender's Send returned nil already: the bytes are queued even past
		// socket_buffer_size (never dropped); the queue then marks the connection's
		// FlagOverflow, and the senders refuse further Sends until it drains (sendRemote).
		var err error
		switch {
		case c.inCloseCallback():
			err = c.rc.SendClosing(payload)
		case w.pipeBatch != nil && w.pipeBatch.Stable(payload):
			// Reading a reactor's pipe (corked above): the reply lies in the batch being
			// read, which stays intact until uncorkBatch flushes the connection.
			err = c.rc.SendLoaned(payload)
		default:
			err = c.rc.SendOver(payload)
		}
		if err != nil {
			return
		}
		s.countSend(c, int64(len(payload)))
	case ipc.TypeCloseReq:
		if c.mc != nil && c.mc.batchCorked { // what this batch sent goes out before the close
			c.mc.batchCorked = false
			c.rc.Uncork()
		}
		switch {
		case c.inCloseCallback():
		case s.table.MarkClosing(c.slot, c.id):
			c.markAppClose()
			c.rc.CloseOnLoop(h.Aux == 1) // a pipe message: on the loop
		case h.Aux == 1: // closing already (its output drains): reset drops the rest
			c.rc.Reset()
		}
	case ipc.TypePause:
		c.slot.SetFlag(conntable.FlagPaused)
		c.rc.Pause()
	case ipc.TypeResume:
		c.slot.ClearFlag(conntable.FlagPaused)
		c.rc.Resume()
	case msgConfirm:
		c.slot.SetFlag(conntable.FlagConfirmed)
		c.rc.Confirm()
	case ipc.TypeSendFile:
		ffd := -1
		if w.in != nil {
			ffd = w.in.TakeFD()
		}
		w.sendFileFor(c, payload, ffd)
	default:
		s.log.Debug("swoole: unexpected message dropped", "type", h.Type.String(), "from", h.SrcWorker)
	}
}

// countRequest counts a request against max_request. The worker that reaches it stops
// taking events at once, right after the callback that reached it (as Swoole's worker
// leaves after that event): what is still queued in its pipe is for its replacement, which
// the manager starts now; then it leaves as a stopping worker does (exitWorker).
func (w *worker) countRequest() {
	w.requests++
	if w.requests == w.maxRequests {
		w.s.mp.termed.Store(true) // the manager's SIGTERM follows
		w.s.log.Info("swoole: max_request reached: the worker is replaced", "worker", w.id, "requests", w.requests)
		w.stopIntake()
		w.requestStop(w.id, true)
		w.loop.Post(reactor.Task{Fn: w.exitWorker})
	}
}

// requestBudget is how many datagrams a read of a ModeProcess worker's pipe may take (0:
// no limit): no more than the requests left before max_request, so that the events after
// the one that reaches it stay in the pipe for the replacement (the master sends each event
// in a datagram of its own then: masterWriter).
func (w *worker) requestBudget() int {
	if w.maxRequests <= 0 || w.s.mode != ModeProcess {
		return 0
	}
	return int(max(w.maxRequests-w.requests, 1))
}

// stopIntake makes this worker process take no more events: it stops reading its pipe
// (what is queued there is for the replacement, which may read it now) and its listeners.
// A request that still reaches it from a read in progress (the frames after it in a
// connection's read) is dropped: its ModeBase connections close with it.
func (w *worker) stopIntake() {
	s := w.s
	mp := s.mp
	if mp.leaving.Swap(true) {
		return
	}
	w.loop.RemoveFD(mp.reader.FD())
	if mp.pipeTimer != 0 {
		w.timers.Cancel(mp.pipeTimer)
		mp.pipeTimer = 0
	}
	w.slot.ReaderPID.CompareAndSwap(w.pid, 0) // the replacement may read it now
	for _, p := range s.ports {
		if p.ln != nil {
			w.loop.RemoveListener(p.ln)
		}
		if p.ownFD && p.fd >= 0 {
			// Leave the SO_REUSEPORT group at once, so that no connection waits in a
			// queue nobody accepts from.
			syscall.Close(p.fd)
			p.fd = -1
		}
	}
}

// leaving reports whether this worker process takes no more events (stopIntake).
func (w *worker) leaving() bool {
	return w.s.mp != nil && w.s.mp.leaving.Load()
}

// requestStop asks the manager to stop worker id (wait: start its replacement first). If
// the manager cannot be reached and id is this worker, it stops on its own.
func (w *worker) requestStop(id int, wait bool) error {
	mp := w.s.mp
	aux := uint16(0)
	if wait {
		aux = 1
	}
	var self []byte
	if id == w.id {
		self = binary.LittleEndian.AppendUint32(nil, uint32(w.pid))
	}
	err := mp.toMgr.Write(ipc.Header{Type: msgStop, SrcWorker: mp.src, Fd: int64(id), Aux: aux}, self)
	if err == nil {
		return nil
	}
	w.s.log.Warn("swoole: cannot reach the manager", "err", err)
	if id == w.id {
		w.loop.Post(reactor.Task{Fn: w.exitWorker})
		return nil
	}
	return err
}

// exitWorker stops this worker process, on its loop: BeforeShutdown (worker 0, when the whole
// server shuts down), then it stops reading its pipe and its listeners, closes its
// connections (OnClose for each), keeps its loop running while its timers remain (up to
// max_wait_time; OnWorkerExit runs meanwhile), runs WorkerStop and ends the loop; runChild
// then exits the process.
func (w *worker) exitWorker() {
	s := w.s
	mp := s.mp
	if mp.exiting {
		return
	}
	mp.exiting = true
	if s.mode != ModeProcess && w.id == 0 && s.table.Counters().ServerFlags.Load()&flagShutdown != 0 && s.cb.beforeShutdown != nil {
		s.cb.beforeShutdown(s)
	}
	s.state.CompareAndSwap(stateRunning, stateStopping)
	if s.mode == ModeProcess && !mp.leaving.Load() && s.table.Counters().ServerFlags.Load()&flagShutdown != 0 {
		// The server shuts down: the master closed every connection before stopping the
		// workers, so the OnClose events wait in the pipe; nobody would read them later.
		handle := w.pipeMessage
		if mp.pin != nil {
			handle = mp.pin.fn // an event worker's: the master's events first
		}
		for {
			if n, err := mp.reader.ReadBatch(handle); n == 0 || err != nil {
				break
			}
		}
	}
	w.stopIntake()
	w.loop.CloseAll(reactor.CloseShutdown)
	for _, id := range []*int{&mp.hbTimer, &mp.statsTimer} {
		if *id != 0 {
			w.timers.Cancel(*id)
			*id = 0
		}
	}
	// The loop runs on while the worker's timers remain (their callbacks run, and may
	// clear one another), up to max_wait_time, with or without OnWorkerExit; OnWorkerExit
	// runs each round while some remain, so that the user can clear them.
	deadline := w.loop.Now() + int64(s.eff.MaxWaitTime)
	var round func(int)
	round = func(int) {
		if w.timers.Len() > 0 && s.cb.workerExit != nil {
			s.cb.workerExit(s, w.id)
		}
		if w.timers.Len() == 0 || w.loop.Now() >= deadline {
			if w.timers.Len() > 0 {
				s.log.Warn("swoole: the worker's timers still run after max_wait_time: it stops anyway", "worker", w.id, "timers", w.timers.Len(), "code", ErrServerWorkerExitTimeout)
			}
			w.finishExit()
			return
		}
		w.timers.Add(w.loop.Now(), workerExitRound, 0, round)
	}
	round(0)
}

// workerExitRound is how often WorkerExit runs while a stopping worker still has timers.
const workerExitRound = 50 * time.Millisecond

func (w *worker) finishExit() {
	s := w.s
	if s.cb.workerStop != nil {
		s.cb.workerStop(s, w.id)
	}
	w.timers.Clear()
	if w.slot.PID.Load() == w.pid {
		w.slot.Status.Store(WorkerExit)
	}
	w.loop.Stop()
}
