package swoole

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/ipc"
	"github.com/goswoole/swoole/internal/pidfile"
	"github.com/goswoole/swoole/internal/supervisor"
	"github.com/goswoole/swoole/internal/sys"
)

// ModeBase with more than one process (worker_num > 1), as Swoole runs it:
//
//	the process that called Start = the manager (no master; user code after Start runs here)
//	│   holds: the listeners (bound and listening), the connection table (memfd), one ipc
//	│   socket pair per worker and one for itself; spawns, reaps, restarts, reloads
//	├── worker 0   this executable again, GOSWOOLE_ROLE=worker:0: the user's main runs again,
//	│              NewServer/AddListener adopt the inherited listeners, Start enters the
//	│              worker's loop: accepts on the shared listeners (EPOLLEXCLUSIVE) or on a
//	│              SO_REUSEPORT socket of its own, owns what it accepted, reads its pipe
//	└── worker N-1
//
// A worker reaches a connection of another worker (Send, Close, Pause, Resume, Confirm,
// SendFile) by writing to that worker's pipe: the session's slot in the shared table says which
// worker owns it. Pipes: for worker w the manager creates the pair (a_w, b_w); w reads b_w, and
// everyone who writes to w (the other workers, the manager) writes to a_w. The manager keeps
// both ends for the server's life, so a restarted worker inherits the same pipe. The manager
// reads its own pair's b end (stop requests from workers).
//
// Files a worker inherits, by name (supervisor.Inherited):
//
//	conntable       the memfd of the connection table
//	listener.<i>    the socket of port i (Ports()[i])
//	ipc.in          b_w, its own read end
//	ipc.w.<j>       a_j for every worker j
//	ipc.mgr         the manager's a end
//	lifeline        (supervisor) the pipe whose end-of-file means the manager died

// Messages between the processes of a ModeBase server, beyond ipc's predefined types
// (TypeSend, TypeCloseReq, TypePause, TypeResume, TypeSendFile, TypePipeMessage).
const (
	msgConfirm = ipc.TypeUser + iota // to the owner: Confirm session Fd
	msgStop                          // worker → manager: stop worker Fd; Aux 1 = let it finish (async)
)

// Bits of conntable.Counters.ServerFlags.
const (
	flagStartRan uint64 = 1 << 0 // OnStart has run (once per server life, in worker 0)
	flagShutdown uint64 = 1 << 1 // the whole server is shutting down (not a reload)
	flagReady    uint64 = 1 << 2 // every child has started (or the manager gave up waiting): OnStart may run
	managerSrcID        = -1     // SrcWorker of the manager's messages (OnPipeMessage's srcWorkerID)
	readyTimeout        = 30 * time.Second
	stopReadPoll        = 100 * time.Millisecond
)

// File names of the inheritance (see above).
const (
	fileTable   = "conntable"
	fileIn      = "ipc.in"
	fileMgr     = "ipc.mgr"
	filePrefixW = "ipc.w."
	filePrefixL = "listener."
)

// multi is the state of a server that runs as several processes: the manager's, or one
// worker process's. It is nil in a single-process server.
type multi struct {
	child bool
	role  supervisor.Role // in a worker process
	src   int16           // SrcWorker of the messages this process writes
	pids  *pidMap         // who holds each global id (pidmap.go): written by the manager, read by all

	toWorker []*ipc.Writer // by worker id: what reaches that worker's loop
	toMgr    *ipc.Writer   // a worker's pipe to the manager
	files    []*os.File    // ipc files this process closes at the end

	// worker process
	inherited  []*os.File // the ipc.w.<j> files, claimed when the process model is chosen
	reader     *ipc.Reader
	exiting    bool        // loop goroutine only
	termed     atomic.Bool // the worker got SIGTERM: the manager stops it
	leaving    atomic.Bool // the worker takes no more events (stopIntake): it is stopping
	hbTimer    int         // the idle-check timer's id, 0 if none
	pin        *pipeIn     // the worker's own pipe, watched once taken (takePipe)
	pipeTimer  int         // the timer that waits to take the pipe, 0 if none
	statsTimer int         // the stats_file timer's id (worker 0), 0 if none
	done       chan struct{}

	// manager
	mgr      *supervisor.Manager
	pairs    [][2]*os.File // per worker: {a, b}
	mgrPair  [2]*os.File
	areas    []*os.File // ModeProcess, master: each event worker's receive area (event_area.go)
	journals [][]byte   // ModeProcess worker: the reply journal of each reactor pipe (event_area.go)
	lnFiles  []*os.File
	shutOnce sync.Once
	reloadWG sync.WaitGroup
	reloads  int // reloads accepted (the supervisor's BeforeReload calls are serialised)

	// ModeProcess (master.go)
	master      *masterState  // in the master
	toReactor   []*ipc.Writer // in a worker: the pipes to the master's reactors
	inClose     atomic.Int64  // in a worker: the session whose OnClose runs (written on the loop)
	replyHolds  int           // in a worker: 1 while a batch holds its replies (loop only)
	batchEvents int           // in a worker: events of the current pipe batch (loop only)
	batchGen    atomic.Uint64 // in a worker: batches ended (the flush timer's stop signal)
	tickGen     atomic.Uint64 // in a worker: the batch the flush timer was armed for
	flushTimer  *time.Timer   // in a worker: flushes a held batch (loop sets it once)
	certs       workerCerts   // in a worker: the TLS client certificates the master passed (tls.go)

	ext procExt // commands between processes, user processes (userproc.go)
}

// chooseProcessModel decides, while Start prepares, whether this server runs as several
// processes, and in which role this process does. s.mu is held.
func (s *Server) chooseProcessModel() error {
	role, isChild := supervisor.Current()
	if isChild {
		if role.Kind != supervisor.KindWorker && role.Kind != supervisor.KindUserProcess && role.Kind != supervisor.KindTaskWorker { // user processes (userproc.go), task workers (task_worker.go)
			return newError(ErrOperationNotSupport, "this process was started as %s, a role this server does not have", role)
		}
		mp := &multi{child: true, role: role, src: int16(role.ID), done: make(chan struct{})}
		for j := 0; ; j++ {
			f, ok := supervisor.Inherited(filePrefixW + strconv.Itoa(j))
			if !ok {
				break
			}
			mp.inherited = append(mp.inherited, f)
		}
		// the manager's layout (worker_num, task_worker_num, user processes) is the
		// one in force: the pipes were made for it (userproc.go).
		if err := s.childLayout(mp); err != nil {
			return err
		}
		s.mp = mp
		return nil
	}
	// User processes and task workers need the manager, even with worker_num 1; ModeProcess
	// always has one (the master does its work).
	// max_request and user/group need a manager too (to replace the worker, to start it as
	// another user), as in Swoole.
	needManager := s.eff.WorkerNum > 1 || s.eff.TaskWorkerNum > 0 || len(s.procs) > 0 || s.eff.MaxRequest > 0 || s.eff.User != "" || s.eff.Group != ""
	if (s.mode == ModeBase && needManager) || s.mode == ModeProcess {
		s.mp = &multi{src: managerSrcID}
		return nil
	}
	return nil
}

// ipcConfig is the configuration of every pipe end of the server. A ModeProcess master
// passes each frame to a worker as one message, so a message may be as large as the largest
// package_max_length of the ports (every process resolves the same settings, so both ends
// agree); the pipes' own limit, 2 GiB, caps it.
func (s *Server) ipcConfig() ipc.Config {
	cfg := ipc.Config{OnDrop: s.ipcDropped}
	largest := s.eff.PackageMaxLength
	for _, p := range s.ports {
		largest = max(largest, p.eff.PackageMaxLength)
	}
	if largest > ipc.DefaultMaxMessage {
		cfg.MaxMessage = min(largest, 1<<31)
	}
	return cfg
}

// ipcDropped accounts for a message a Reader of this process dropped: counted in Stats
// (lost_message_count) and logged, once per second at most.
func (s *Server) ipcDropped(h ipc.Header, err error) {
	if s.table != nil {
		s.table.Counters().LostMessageCount.Add(1)
	}
	if ok, left := s.logLimits[logIPCDrop].allow(); ok {
		s.log.Warn("swoole: a message between the server's processes was dropped", "type", h.Type.String(), "from", h.SrcWorker, "fd", h.Fd, "err", err, "suppressed", left)
	}
}

// runManager is Start in the manager: it spawns the workers and supervises them until the
// server shuts down, then returns nil.
func (s *Server) runManager() error {
	mp := s.mp
	if err := s.buildManager(); err != nil {
		s.cleanupMulti()
		s.cleanup()
		s.state.Store(stateStopped)
		return s.fail(err)
	}
	if s.eff.PidFile != "" {
		// The manager is the process to signal (SIGTERM, SIGUSR1), as Swoole's pid_file says.
		pf, err := pidfile.Write(s.eff.PidFile)
		if err != nil {
			s.cleanupMulti()
			s.cleanup()
			s.state.Store(stateStopped)
			return s.fail(wrapErrno("", err, "cannot write pid_file %q: check the directory and its permissions", s.eff.PidFile))
		}
		defer pf.Remove()
		defer s.serveAdmin()() // the admin socket beside the pid file (admin.go)
	}
	if err := s.listenAdmin(); err != nil { // admin_server.go
		s.cleanupMulti()
		s.cleanup()
		s.state.Store(stateStopped)
		return s.fail(err)
	}
	defer s.stopAdmin() // a listener that never served
	if mp.master != nil {
		if err := s.masterListen(); err != nil {
			s.cleanupMulti()
			s.cleanup()
			s.state.Store(stateStopped)
			return s.fail(err)
		}
		s.runReactors()
	} else if err := s.startTimerLoop(managerSrcID); err != nil {
		s.cleanupMulti()
		s.cleanup()
		s.state.Store(stateStopped)
		return s.fail(err)
	}
	s.state.Store(stateRunning)
	if s.stopRequested.Load() {
		s.shutdownManager() // asked while Start was preparing: Run returns at once
	}
	sigCh := make(chan os.Signal, 4)
	signal.Notify(sigCh, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2)

	s.startLogWatch() // logfile.go: SIGRTMIN and log_rotation; stopped in cleanupMulti
	runErr := make(chan error, 1)
	go func() { runErr <- mp.mgr.Run(context.Background()) }()
	// Signals are answered at once: a worker catches SIGTERM from its first moments (its
	// handler is installed when the package initialises, see childTerm), so even one that
	// is still starting stops cleanly.
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { defer bg.Done(); s.managerSignals(sigCh, stop) }()
	go func() { defer bg.Done(); s.managerReader(stop) }()
	// OnStart and ManagerStart run once every worker, task worker and user process has
	// started (or the wait gave up): GetWorkerPID answers for each and a Command reaches
	// them. ModeProcess: OnStart runs here in the master, then ManagerStart (Swoole runs
	// them in parallel, with no order). ModeBase: worker 0 runs OnStart once it sees
	// flagReady, in parallel with ManagerStart here.
	s.waitWorkersReady(readyTimeout)
	s.table.Counters().ServerFlags.Or(flagReady)
	s.startAdmin()
	daemonReady() // daemonize: the process that called Start exits now (daemon.go)
	select {
	case <-mp.mgr.Done(): // the workers could not start, or the server stopped already
	default:
		if mp.master != nil && s.cb.start != nil {
			s.cb.start(s)
		}
		if s.cb.managerStart != nil {
			s.cb.managerStart(s)
		}
	}

	err := <-runErr
	s.stopAdmin() // before the pipes and the table go
	signal.Stop(sigCh)
	close(stop)
	bg.Wait()
	mp.reloadWG.Wait()
	s.state.CompareAndSwap(stateRunning, stateStopping)
	if mp.master != nil {
		s.stopReactors()
	}
	if s.cb.managerStop != nil {
		s.cb.managerStop(s)
	}
	s.stopTimerLoop()
	if s.cb.shutdown != nil {
		s.cb.shutdown(s)
	}
	s.cleanupMulti()
	s.cleanup()
	s.state.Store(stateStopped)
	if err != nil {
		return s.fail(&Error{Code: ErrSystemCallFail, Msg: "swoole: the workers could not be started", Err: err})
	}
	return nil
}

// buildManager creates what the workers inherit and the supervisor that spawns them.
func (s *Server) buildManager() error {
	mp := s.mp
	n := s.procSlots()     // workers, then task workers (task_manager.go)
	total := s.procTotal() // a pipe and a table slot per global id (workers, task workers, user processes)
	if _, err := s.newTable(total); err != nil {
		return err
	}
	pids, err := newPidMap(total)
	if err != nil {
		return wrapErrno("", err, "cannot create the pid map of the workers")
	}
	mp.pids = pids
	if s.mode == ModeProcess {
		if err := s.buildMasterLoops(); err != nil {
			return err
		}
	}

	for _, p := range s.ports {
		listen := p.listenManager
		if s.mode == ModeProcess {
			listen = p.listen // the master accepts: workers never do
		}
		if err := listen(); err != nil {
			return err
		}
		f, err := shareSocket(p.fd, "goswoole-listener")
		if err != nil {
			return wrapErrno("", err, "cannot pass port %d to the workers", p.port)
		}
		mp.lnFiles = append(mp.lnFiles, f)
	}
	cfg := s.ipcConfig()
	if err := s.buildAreas(); err != nil { // event_area.go
		return err
	}
	for range total {
		a, b, err := ipc.NewPair()
		if err != nil {
			return wrapErrno("", err, "cannot create the workers' pipes")
		}
		mp.pairs = append(mp.pairs, [2]*os.File{a, b})
		var wr *ipc.Writer
		if mp.master != nil {
			wr, err = s.masterWriter(a, len(mp.toWorker) < s.eff.WorkerNum)
		} else {
			wr, err = ipc.NewWriter(a, cfg)
		}
		if err != nil {
			return wrapErrno("", err, "cannot create the workers' pipes")
		}
		mp.toWorker = append(mp.toWorker, wr)
	}
	if err := s.buildTaskManager(); err != nil { // task_manager.go
		return err
	}
	a, b, err := ipc.NewPair()
	if err != nil {
		return wrapErrno("", err, "cannot create the manager's pipe")
	}
	mp.mgrPair = [2]*os.File{a, b}
	if mp.reader, err = ipc.NewReader(b, cfg); err != nil {
		return wrapErrno("", err, "cannot create the manager's pipe")
	}

	slots := make([]supervisor.SlotSpec, n)
	for i := range n {
		files := s.childFiles(i, a) // userproc.go: pipes of every global id, user processes' sockets
		s.taskFiles(i, files)       // task_manager.go
		slots[i] = supervisor.SlotSpec{
			Role:  supervisor.Role{Kind: s.slotKind(i), ID: i},
			Files: files,
			Spawn: supervisor.SpawnOptions{User: s.eff.User, Group: s.eff.Group, Env: s.layoutEnv()},
		}
	}
	slots = append(slots, s.userProcessSlots(a)...) // after the workers (and task workers)
	mp.mgr = supervisor.NewManager(supervisor.ManagerConfig{
		Slots:        slots,
		OnStart:      mp.pids.record,
		OnExit:       s.workerExited,
		BeforeReload: s.beforeReload,
		AfterReload:  s.afterReload,
		MaxWaitTime:  s.eff.MaxWaitTime,
		Logger:       s.log,
	})
	return nil
}

// listenManager readies a port for the workers: it listens, except with enable_reuse_port
// on a TCP port, where every worker listens on a SO_REUSEPORT socket of its own and the
// manager's socket stays bound only (holding the port without taking a share of its
// connections, which it would never accept).
func (p *Port) listenManager() error {
	if !(p.eff.EnableReusePort && p.sock.isStream() && p.sock.base() != SockUnixStream) {
		return p.listen()
	}
	if err := syscall.Close(p.fd); err != nil {
		return wrapErrno("close", err, "cannot rebind port %d with SO_REUSEPORT", p.port)
	}
	p.fd = -1
	fam := sys.FamilyInet4
	if p.sock.base() == SockTCP6 {
		fam = sys.FamilyInet6
	}
	fd, _, err := sys.Bind(sys.ListenSpec{Family: fam, Stream: true, Host: p.host, Port: p.port, ReusePort: true})
	if err != nil {
		return wrapErrno("", err, "cannot rebind port %d with SO_REUSEPORT", p.port)
	}
	p.fd = fd
	return nil
}

// shareSocket wraps a duplicate of fd in an *os.File to pass to children. The descriptor is
// made blocking while os.NewFile looks at it, so that the file stays out of Go's poller and
// its Fd method (which os/exec calls) never changes the mode; it is non-blocking again
// before any child exists. The mode belongs to the open socket, shared with every worker:
// a blocking listener would block a worker's accept4 whenever another worker won the race.
func shareSocket(fd int, name string) (*os.File, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	if err := unix.SetNonblock(nfd, false); err != nil {
		unix.Close(nfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(nfd), name)
	if err := unix.SetNonblock(nfd, true); err != nil {
		f.Close()
		return nil, os.NewSyscallError("fcntl", err)
	}
	return f, nil
}

// waitWorkersReady waits until every worker, task worker and user process has started (its
// current process stored its pid and a status in its slot), the supervisor stopped, the
// server began to shut down, or the timeout passed. A slot counts once it was seen started;
// one whose first process died before that (a worker that cannot start: the supervisor
// restarts it with a back-off) is not waited for any more.
func (s *Server) waitWorkersReady(timeout time.Duration) {
	mgr := s.mp.mgr
	total := s.procTotal()
	started := make([]bool, total)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-mgr.Done():
			return
		default:
		}
		if s.state.Load() != stateRunning {
			return // shutting down
		}
		ready := true
		for _, st := range mgr.Status() {
			if st.ID >= total || started[st.ID] {
				continue
			}
			ws := s.table.Worker(st.ID)
			status := ws.Status.Load()
			switch {
			case st.PID != 0 && int(ws.PID.Load()) == st.PID && (status == WorkerBusy || status == WorkerIdle):
				started[st.ID] = true
			case st.Restarts > 0 || st.State != supervisor.SlotRunning:
				started[st.ID] = true // it could not start: not waited for
				s.log.Warn("swoole: a worker died before it started; the manager does not wait for it", "worker", st.ID)
			default:
				ready = false
			}
		}
		if ready && !slices.Contains(started, false) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	s.log.Warn("swoole: not every worker started in time; the manager goes on", "timeout", timeout)
}

// waitReadyForStart waits, in worker 0 of a ModeBase server of several processes, until the
// manager saw every process start (flagReady), so that OnStart runs with the whole tree up.
// It returns false when the server or this worker stops first: OnStart does not run then.
// The manager's wait is bounded (readyTimeout), and so is this one.
func (s *Server) waitReadyForStart() bool {
	flags := &s.table.Counters().ServerFlags
	deadline := time.Now().Add(readyTimeout + 5*time.Second)
	for time.Now().Before(deadline) {
		f := flags.Load()
		switch {
		case f&flagShutdown != 0 || s.mp.termed.Load():
			return false
		case f&flagReady != 0:
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	s.log.Warn("swoole: the manager did not report the workers ready in time; OnStart runs anyway")
	return true
}

// managerSignals answers SIGTERM (shutdown), SIGUSR1 (reload every worker) and SIGUSR2
// (reload task workers: none in ModeBase yet) until stop closes.
func (s *Server) managerSignals(sigCh <-chan os.Signal, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case sig := <-sigCh:
			s.log.Info("swoole: manager got a signal", "signal", sig.String())
			switch sig {
			case syscall.SIGTERM:
				s.shutdownManager()
			case syscall.SIGUSR1:
				s.reloadManager(false)
			case syscall.SIGUSR2:
				s.reloadManager(true)
			}
		}
	}
}

// managerReader serves the manager's pipe: stop requests from workers (Stop, max_request).
func (s *Server) managerReader(stop <-chan struct{}) {
	r := s.mp.reader
	handle := func(h ipc.Header, payload []byte) {
		if h.Type == ipc.TypeCommand || h.Type == ipc.TypeCommandReply { // command_multi.go
			s.commandMessage(h, payload)
			return
		}
		if h.Type != msgStop {
			s.log.Debug("swoole: manager: unexpected message dropped", "type", h.Type.String(), "from", h.SrcWorker)
			return
		}
		id, wait := int(h.Fd), h.Aux == 1
		if len(payload) == 4 {
			// A worker that asks to stop itself (max_request, Stop(-1)) names its pid: if it
			// is no longer the slot's current worker (a reload replaced it already), the
			// request is not about the current one.
			if pid := int(binary.LittleEndian.Uint32(payload)); s.mp.mgr.PIDs()[id] != pid {
				s.log.Debug("swoole: stop request from a worker that is being replaced: ignored", "worker", id, "pid", pid)
				return
			}
		}
		if err := s.mp.mgr.StopSlot(id, wait); err != nil && !errors.Is(err, supervisor.ErrStopped) {
			s.log.Warn("swoole: cannot stop worker", "worker", id, "err", err)
		}
	}
	for {
		select {
		case <-stop:
			return
		default:
		}
		if err := r.WaitReadable(time.Now().Add(stopReadPoll)); err != nil {
			if !errors.Is(err, ipc.ErrTimeout) {
				s.log.Warn("swoole: manager pipe", "err", err)
				time.Sleep(stopReadPoll)
			}
			continue
		}
		if _, err := r.ReadBatch(handle); err != nil {
			s.log.Warn("swoole: manager pipe", "err", err)
		}
	}
}

// workerExited is the supervisor's OnExit: it reclaims what a dead worker left in the table
// and reports an abnormal exit as OnWorkerError.
func (s *Server) workerExited(slot, pid, exitCode, sig int, expected bool) {
	if live, _ := s.table.ReleaseOwnedBy(int32(pid)); live > 0 {
		ctr := s.table.Counters()
		ctr.ConnectionNum.Add(-int64(live))
		ctr.CloseCount.Add(int64(live))
		s.log.Info("swoole: released the connections of a worker that died", "worker", slot, "pid", pid, "connections", live)
	}
	if ws := s.table.Worker(slot); ws != nil && ws.PID.CompareAndSwap(int32(pid), 0) {
		ws.Status.Store(WorkerExit)
	}
	if s.mp.master != nil {
		s.releaseClosesOf(slot)
	}
	// task_inhand.go: the senders of the tasks it held learn that they are lost.
	s.taskWorkerExited(slot, pid, exitCode, sig)
	if s.userProcessIndex(slot) >= 0 { // no OnWorkerError for user processes
		s.userProcessExited(slot, pid, exitCode, sig, expected)
		return
	}
	if expected || (exitCode == 0 && sig == 0) {
		return
	}
	s.log.Warn("swoole: worker exited abnormally", "worker", slot, "pid", pid, "exit_code", exitCode, "signal", sig)
	if s.cb.workerError != nil {
		s.cb.workerError(s, slot, pid, exitCode, sig)
	}
}

// beforeReload runs once the supervisor accepted a reload, before it touches a worker.
func (s *Server) beforeReload() {
	// Every reload moves every worker slot one generation on: the workers it replaces are
	// those of an older generation (see workerStopping).
	s.mp.reloads++
	s.table.Counters().ReloadGen.Store(int64(s.mp.reloads))
	if s.cb.beforeReload != nil {
		s.cb.beforeReload(s)
	}
}

func (s *Server) afterReload() {
	s.table.Counters().ReloadGen.Store(0)
	if s.cb.afterReload != nil {
		s.cb.afterReload(s)
	}
}

// shutdownManager starts the graceful shutdown of the whole tree (SIGTERM, or Shutdown in the
// manager). It returns at once.
func (s *Server) shutdownManager() {
	mp := s.mp
	mp.shutOnce.Do(func() {
		s.table.Counters().ServerFlags.Or(flagShutdown)
		s.state.CompareAndSwap(stateRunning, stateStopping)
		// Manager.Shutdown waits for the tree: never from a supervisor callback's goroutine.
		go func() {
			if mp.master != nil {
				// ModeProcess: the master stops accepting and closes every connection
				// while the workers still run, so their OnClose events are delivered.
				if s.cb.beforeShutdown != nil {
					s.cb.beforeShutdown(s)
				}
				s.closeReactors(time.Now().Add(s.eff.MaxWaitTime))
			}
			_ = mp.mgr.Shutdown()
		}()
	})
}

// reloadManager starts a reload: every worker (SIGUSR1, Reload(false)) asynchronously when
// reload_async, else one at a time; task workers only (SIGUSR2, Reload(true)) is nothing to
// do without task workers. A reload asked for while one runs is ignored, as in Swoole.
func (s *Server) reloadManager(onlyTask bool) {
	kinds, rolling, ok := s.reloadKinds(onlyTask) // task_manager.go
	if !ok {
		s.log.Info("swoole: reload of task workers ignored: the server has none")
		return
	}
	if !onlyTask && s.run.role() == roleMaster {
		// Beyond Swoole: the ModeProcess master terminates TLS, and re-reads its certificate
		// files for the connections it accepts from now on (ModeBase workers read theirs as
		// they start).
		s.reloadTLS()
	}
	mp := s.mp
	mp.reloadWG.Add(1)
	go func() {
		defer mp.reloadWG.Done()
		var err error
		if !rolling {
			err = mp.mgr.Reload(kinds...)
		} else {
			err = mp.mgr.ReloadRolling(kinds...)
		}
		switch {
		case errors.Is(err, supervisor.ErrReloading):
			s.log.Info("swoole: a reload is already in progress: this one is ignored")
		case errors.Is(err, supervisor.ErrStopped), errors.Is(err, supervisor.ErrNotRunning):
		case err != nil:
			s.log.Warn("swoole: reload", "err", err)
		}
	}()
}

// cleanupMulti closes the pipes and the files made for the workers.
func (s *Server) cleanupMulti() {
	s.stopLogWatch() // logfile.go: before the pipes to the children close
	mp := s.mp
	if mp.reader != nil {
		mp.reader.Release()
	}
	for _, f := range mp.lnFiles {
		f.Close()
	}
	if mp.pids != nil && mp.pids.file != nil {
		mp.pids.file.Close()
	}
	for _, p := range mp.pairs {
		p[0].Close()
		p[1].Close()
	}
	for _, f := range mp.mgrPair {
		if f != nil {
			f.Close()
		}
	}
	for _, f := range mp.areas {
		if f != nil {
			f.Close()
		}
	}
	for _, f := range mp.files {
		f.Close()
	}
	if mp.master != nil {
		s.cleanupMaster()
	}
	s.cleanupProcs()       // the user processes' socket pairs
	s.cleanupTaskManager() // task_manager.go
}
