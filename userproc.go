package swoole

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/ipc"
	"github.com/goswoole/swoole/internal/supervisor"
)

// User processes (AddProcess) of a ModeBase server of several processes.
//
// Ids, as in Swoole: workers 0 … W−1, task workers W … W+T−1, user processes W+T … W+T+P−1
// (W = worker_num, T = task_worker_num, P = len(s.procs)). The manager's per-process pipes
// (mp.toWorker, files ipc.w.<id>), its supervisor slots and the worker slots of the
// connection table are all indexed by that global id; every computation of a user process's
// id goes through userProcessID.
//
// A user process is a supervisor slot of kind KindUserProcess (Role.ID = its AddProcess
// index), restarted when it exits (RestartAlways), left out of reloads (they name
// KindWorker / KindTaskWorker only), and sent SIGTERM at shutdown with every other child.
// It inherits what a worker inherits (the table, every pipe, the listeners: NewServer and
// AddListener adopt them there too) plus its end of its ExportSocket pair:
//
//	proc.<i>.w   the workers' end of user process i's unix datagram pair (every child but i)
//	proc.<i>.p   the process's end (user process i only)
//
// In the user process Start runs the Process's function on the calling goroutine; a reader
// goroutine serves its pipe (OnPipeMessage, one at a time on a goroutine of its own; replies
// to its Command calls). It has no event loop: its writes to other processes wait for room
// (WriteBlocking). Its timers (Tick, After, Defer) run on a timer loop of its own, one at a
// time, beside the function (timers.go); Heartbeat and SendWait return 507.
//
// The manager passes the layout (W, T, P) in envLayout, so that a child knows which of the
// inherited pipes are workers', task workers' and user processes'.

const (
	envLayout      = "GOSWOOLE_LAYOUT" // "W,T,P" in every child of the manager
	envPorts       = "GOSWOOLE_PORTS"  // the ports' numbers, by index, in every child
	procFilePrefix = "proc."
)

func procFileW(i int) string { return procFilePrefix + strconv.Itoa(i) + ".w" }
func procFileP(i int) string { return procFilePrefix + strconv.Itoa(i) + ".p" }

// userProcessID is the global id (GetWorkerPID, SendMessage) of the user process with
// AddProcess index i: after the workers and the task workers.
func (s *Server) userProcessID(i int) int { return s.eff.WorkerNum + s.eff.TaskWorkerNum + i }

// procTotal is the number of processes with a global id: workers, task workers, user
// processes. It is the number of per-process pipes and worker slots of the table.
func (s *Server) procTotal() int { return s.userProcessID(len(s.procs)) }

// userProcessIndex returns the AddProcess index of global id, or -1 when id is not a user
// process's.
func (s *Server) userProcessIndex(id int) int {
	if i := id - s.userProcessID(0); i >= 0 && i < len(s.procs) {
		return i
	}
	return -1
}

// inUserProcess reports whether this process is a user process.
func (s *Server) inUserProcess() bool {
	return s.mp != nil && s.mp.child && s.mp.role.Kind == supervisor.KindUserProcess
}

// setup creates (in the process that will be the manager) or adopts (in a child) the unix
// datagram pair of the user process with index i. p.mu is held.
func (p *Process) setup(i int) error {
	if role, child := supervisor.Current(); child {
		name := procFileW(i)
		if role.Kind == supervisor.KindUserProcess && role.ID == i {
			name = procFileP(i)
		}
		f, ok := supervisor.Inherited(name)
		if !ok {
			return newError(ErrOperationNotSupport, "AddProcess: this process (%s) inherited no socket for user process %d: add the same user processes, in the same order, in every process (code before Start runs in each of them)", role, i)
		}
		fd, err := privateFD(f)
		if err != nil {
			return wrapErrno("", err, "AddProcess: cannot adopt the socket of user process %d", i)
		}
		c, err := fdConn(fd, "goswoole-process")
		if err != nil {
			return wrapErrno("", err, "AddProcess: cannot adopt the socket of user process %d", i)
		}
		p.conn = c
		return nil
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return wrapErrno("socketpair", err, "AddProcess: cannot create the socket pair of user process %d", i)
	}
	for k, fd := range fds {
		// Room for bursts: each Write is one datagram, up to the send buffer's size.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, ipc.SocketBufferSize)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, ipc.SocketBufferSize)
		f, err := shareSocket(fd, "goswoole-process")
		unix.Close(fd)
		if err != nil {
			p.closeEnds()
			return wrapErrno("", err, "AddProcess: cannot create the socket pair of user process %d", i)
		}
		p.ends[k] = f
	}
	// The manager (and code after Start) sees the workers' end, as a worker does.
	fd, err := unix.FcntlInt(p.ends[0].Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err == nil {
		p.conn, err = fdConn(fd, "goswoole-process")
	}
	if err != nil {
		p.closeEnds()
		return wrapErrno("", err, "AddProcess: cannot create the socket pair of user process %d", i)
	}
	return nil
}

func (p *Process) closeEnds() {
	for k, f := range p.ends {
		if f != nil {
			f.Close()
			p.ends[k] = nil
		}
	}
}

// fdConn turns a socket descriptor into a net.Conn (which holds a duplicate) and closes fd.
func fdConn(fd int, name string) (net.Conn, error) {
	_ = unix.SetNonblock(fd, false) // os.NewFile then leaves it out of the poller (see shareSocket)
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return net.FileConn(f) // the duplicate is made non-blocking and joins the poller
}

// childFiles is what the child with global id id inherits (a worker's or a user process's
// files; see manager.go and above). mgrEnd is the manager's pipe.
func (s *Server) childFiles(id int, mgrEnd *os.File) supervisor.Files {
	mp := s.mp
	files := supervisor.Files{fileTable: s.table.File(), fileIn: mp.pairs[id][1], fileMgr: mgrEnd, filePidMap: mp.pids.file}
	if id < len(mp.areas) && mp.areas[id] != nil {
		files[fileArea] = mp.areas[id] // event_area.go
	}
	if s.logFile != nil {
		files[fileLog] = s.logFile // files.go: children never open log_file themselves
	}
	for j := range mp.pairs {
		files[filePrefixW+strconv.Itoa(j)] = mp.pairs[j][0]
	}
	for k, f := range mp.lnFiles {
		// A stream listener goes only to the processes that accept on it (ModeBase's
		// event workers): a ModeProcess worker, a task worker or a user process that held
		// it could take the server's connections (SECURITY.md). Datagram ports go to every
		// child, for SendTo.
		if s.ports[k].sock.isStream() && !s.acceptsIn(id) {
			continue
		}
		files[filePrefixL+strconv.Itoa(k)] = f
	}
	if mp.master != nil { // ModeProcess: the pipes to the master's reactors
		for r, p := range mp.master.pairs {
			files[filePrefixR+strconv.Itoa(r)] = p[0]
		}
	}
	for i, p := range s.procs {
		if id == s.userProcessID(i) {
			files[procFileP(i)] = p.ends[1]
		} else {
			files[procFileW(i)] = p.ends[0]
		}
	}
	return files
}

// layoutEnv is the environment every child gets: the layout of the global ids, and the
// ports' numbers (a child that is given no stream listener still reports its port).
func (s *Server) layoutEnv() []string {
	ports := make([]string, len(s.ports))
	for i, p := range s.ports {
		ports[i] = strconv.Itoa(p.port)
	}
	return []string{
		fmt.Sprintf("%s=%d,%d,%d", envLayout, s.eff.WorkerNum, s.eff.TaskWorkerNum, len(s.procs)),
		envPorts + "=" + strings.Join(ports, ","),
	}
}

// acceptsIn reports whether the child with global id id accepts connections: an event
// worker of a ModeBase server (a ModeProcess master accepts for its workers; task workers
// and user processes never accept).
func (s *Server) acceptsIn(id int) bool { return s.mode == ModeBase && id < s.eff.WorkerNum }

// childPort is the port number of port index from the manager's envPorts (0 if absent).
func childPort(index int) int {
	nums := strings.Split(os.Getenv(envPorts), ",")
	if index < len(nums) {
		n, _ := strconv.Atoi(nums[index])
		return n
	}
	return 0
}

// userProcessSlots are the supervisor slots of the user processes, after the workers' and
// the task workers'.
func (s *Server) userProcessSlots(mgrEnd *os.File) []supervisor.SlotSpec {
	var slots []supervisor.SlotSpec
	for i := range s.procs {
		slots = append(slots, supervisor.SlotSpec{
			Role:    supervisor.Role{Kind: supervisor.KindUserProcess, ID: i},
			Files:   s.childFiles(s.userProcessID(i), mgrEnd),
			Restart: supervisor.RestartAlways,
			Spawn:   supervisor.SpawnOptions{User: s.eff.User, Group: s.eff.Group, Env: s.layoutEnv()},
		})
	}
	return slots
}

// childLayout applies, in a child, the layout the manager passed: the manager's worker_num
// and task_worker_num are the ones in force (the pipes were made for them), and this process
// must have added the same user processes. It sets mp.src of a user process.
func (s *Server) childLayout(mp *multi) error {
	w, t, p := -1, -1, -1
	if v := os.Getenv(envLayout); v != "" {
		if _, err := fmt.Sscanf(v, "%d,%d,%d", &w, &t, &p); err != nil {
			w = -1
		}
	}
	total := len(mp.inherited)
	if w < 1 {
		// No layout: a manager without user processes' support; every pipe is a worker's.
		w, t, p = total-s.eff.TaskWorkerNum-len(s.procs), s.eff.TaskWorkerNum, len(s.procs)
	}
	role := mp.role
	switch {
	case total == 0 || w < 1 || t < 0 || w+t+p != total:
		return newError(ErrOperationNotSupport, "%s process inherited %d process pipes (layout %d workers, %d task workers, %d user processes): it was not started by a goswoole manager", role, total, w, t, p)
	case p != len(s.procs):
		return newError(ErrOperationNotSupport, "%s process: the manager has %d user processes and this process added %d: call AddProcess the same way in every process (code before Start runs in each of them)", role, p, len(s.procs))
	case role.Kind == supervisor.KindWorker && role.ID >= w+t, role.Kind == supervisor.KindUserProcess && role.ID >= p:
		return newError(ErrOperationNotSupport, "%s process: no such process in the manager's layout (%d workers, %d task workers, %d user processes)", role, w, t, p)
	}
	s.eff.WorkerNum, s.eff.TaskWorkerNum = w, t
	if role.Kind == supervisor.KindUserProcess {
		mp.src = int16(s.userProcessID(role.ID))
	}
	return nil
}

// procExt is the state of a multi-process server's multi (commands between
// processes, user processes).
type procExt struct {
	cmds cmdWaits

	// worker process, loop goroutine only
	inRead  int // depth of ReadBatch calls on the loop (pipeIn.Readable, Command waits)
	waiting int // Command waits in progress on the loop

	// user process
	proc *Process
	msgs chan pipeMsg // OnPipeMessage deliveries, run one at a time
}

type pipeMsg struct {
	src  int
	data []byte
}

// runUserProcess is Start in a user process: it runs the Process's function and then ends
// the process (the manager starts it again). It never returns.
func (s *Server) runUserProcess() {
	mp := s.mp
	_ = supervisor.WatchLifeline(func() { os.Exit(1) }) // the manager died: Pdeathsig backs this up
	if err := s.buildUserProcess(); err != nil {
		s.cleanup()
		s.childFailed(err)
	}
	id := int(mp.src)
	slot := s.table.Worker(id)
	if err := s.startTimerLoop(id); err != nil {
		s.cleanup()
		s.childFailed(err)
	}
	s.state.Store(stateRunning)
	go s.userProcessReader()
	var inMessage sync.Mutex // held while OnPipeMessage runs
	go func() {
		for m := range mp.ext.msgs {
			inMessage.Lock()
			s.cb.pipeMessage(s, m.src, m.data)
			inMessage.Unlock()
		}
	}()
	go func() {
		// The manager's SIGTERM (shutdown, Stop): the process ends, once the OnPipeMessage
		// in progress returned (up to max_wait_time): a message that asked for the shutdown
		// finishes what it does after Shutdown. The handler was installed before main ran
		// (childTerm), so the signal is never lost.
		<-childTerm
		mp.termed.Store(true)
		idle := make(chan struct{})
		go func() { inMessage.Lock(); close(idle) }()
		select {
		case <-idle:
		case <-time.After(s.eff.MaxWaitTime):
		}
		s.userProcessExit(0)
	}()
	slot.StartTime.Store(time.Now().Unix())
	slot.PID.Store(int32(os.Getpid()))
	slot.Status.Store(WorkerBusy) // running its function: ready, as the manager sees it
	p := mp.ext.proc
	p.fn(p)
	s.log.Info("swoole: the user process's function returned: the manager starts it again", "process", mp.role.ID, "id", id)
	s.userProcessExit(0)
}

// userProcessExit flushes what this user process still has to send and exits.
func (s *Server) userProcessExit(code int) {
	mp := s.mp
	if ws := s.table.Worker(int(mp.src)); ws != nil && ws.PID.Load() == int32(os.Getpid()) {
		ws.Status.Store(WorkerExit)
	}
	s.exitChild(code)
}

// buildUserProcess maps the table and adopts the pipes of a user process.
func (s *Server) buildUserProcess() error {
	mp := s.mp
	idx := mp.role.ID
	mp.ext.proc = s.procs[idx] // childLayout checked the index
	mp.ext.msgs = make(chan pipeMsg, 256)
	what := fmt.Sprintf("user process %d", idx)
	if _, err := s.bootChild(what, false); err != nil {
		return err
	}
	var err error
	mp.reader, err = s.adoptInPipe(what, fileIn, s.ipcConfig())
	return err
}

// userProcessReader serves a user process's pipe for the process's life.
func (s *Server) userProcessReader() {
	mp := s.mp
	handle := func(h ipc.Header, payload []byte) {
		if !s.fromManager(mp.reader, h, false) {
			return
		}
		switch h.Type {
		case ipc.TypePipeMessage:
			if s.cb.pipeMessage != nil {
				mp.ext.msgs <- pipeMsg{src: int(h.SrcWorker), data: bytes.Clone(payload)}
			}
		case ipc.TypeCommand, ipc.TypeCommandReply:
			s.commandMessage(h, payload)
		case msgLogReopen: // logfile.go
			s.logReopenMessage(h, mp.reader.TakeFD())
		default:
			s.log.Debug("swoole: user process: unexpected message dropped", "type", h.Type.String(), "from", h.SrcWorker)
		}
	}
	for {
		if err := mp.reader.WaitReadable(time.Time{}); err != nil && !errors.Is(err, ipc.ErrTimeout) {
			s.log.Warn("swoole: user process pipe", "err", err)
			time.Sleep(stopReadPoll)
			continue
		}
		if _, err := mp.reader.ReadBatch(handle); err != nil {
			s.log.Warn("swoole: user process pipe", "err", err)
			time.Sleep(stopReadPoll)
		}
	}
}

// userProcessExited is the manager's part of a user process's exit: it is restarted (the
// supervisor's RestartAlways); OnWorkerError is for workers and task workers only.
func (s *Server) userProcessExited(slot, pid, exitCode, sig int, expected bool) {
	if expected {
		return
	}
	s.log.Info("swoole: user process exited: the manager starts it again", "process", s.userProcessIndex(slot), "id", slot, "pid", pid, "exit_code", exitCode, "signal", sig)
}

// stopFromUserProcess is Stop called in a user process: the request goes to the manager.
func (s *Server) stopFromUserProcess(workerID int, waitEvent bool) error {
	if workerID == -1 {
		return s.fail(newError(ErrInvalidParams, "Stop(-1): a user process is not a worker: give a worker id"))
	}
	aux := uint16(0)
	if waitEvent {
		aux = 1
	}
	h := ipc.Header{Type: msgStop, SrcWorker: s.mp.src, Fd: int64(workerID), Aux: aux}
	if err := s.mp.toMgr.WriteBlocking(h, nil, time.Now().Add(s.eff.MaxWaitTime)); err != nil {
		return s.fail(wrapErrno("", err, "Stop: cannot reach the manager"))
	}
	return nil
}

// cleanupProcs closes the manager's ends of the user processes' pairs.
func (s *Server) cleanupProcs() {
	for _, p := range s.procs {
		p.mu.Lock()
		p.closeEnds()
		p.mu.Unlock()
	}
	// p.conn stays open: code after Start may still hold it; it goes with the process.
}

// releaseProcs closes everything AddProcess made, for a server that will never start
// (Shutdown before Start): both ends of each pair, and the end ExportSocket returns, whose
// reads and writes then fail (net.ErrClosed).
func (s *Server) releaseProcs() {
	s.cleanupProcs()
	for _, p := range s.procs {
		p.mu.Lock()
		if p.conn != nil {
			p.conn.Close()
		}
		p.mu.Unlock()
	}
}
