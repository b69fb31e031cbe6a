package swoole

import (
	"math/rand/v2"
	"os"
	"strconv"

	"github.com/goswoole/swoole/internal/ipc"
	"github.com/goswoole/swoole/internal/reactor"
	"github.com/goswoole/swoole/internal/supervisor"
)

// Every child process (event worker, task worker, user process) starts the same way
// (bootChild): it maps the connection table its manager made, makes its event loop (not a user
// process: its function runs on Start's goroutine and its timers on a timer loop), and adopts
// the write ends of the pipes it sends on: every process's by global id, the manager's and, in
// ModeProcess, each master reactor's. Then each kind adopts its own input (adoptInPipe) and
// reads it its way: an event worker's loop takes its pipe once no older process reads it
// (takePipe), a task worker reads one task at a time, a user process reads on a goroutine.

// bootChild does the common part of a child's start; what names the child in errors. With
// withLoop the child gets a worker loop (s.cur) that flushes what its pipes did not take; a
// user process's writes wait for room instead.
func (s *Server) bootChild(what string, withLoop bool) (*worker, error) {
	id := s.mp.role.ID
	t, err := s.adoptTable(what)
	if err != nil {
		return nil, err
	}
	if f, ok := supervisor.Inherited(filePidMap); ok {
		pids, err := adoptPidMap(f)
		if err != nil {
			return nil, wrapErrno("", err, "%s: cannot map the pid map", what)
		}
		s.mp.pids = pids
		// Until the manager has recorded this process, the others drop what it sends.
		if !pids.awaitSelf(int(s.mp.src), pidMapWait) {
			s.log.Warn("swoole: the manager did not record this process in time: the others may drop its first messages", "process", what, "code", ErrServerWorkerTerminated)
		}
	}
	var w *worker
	if withLoop {
		w = &worker{s: s, id: id, slot: t.Worker(id), pid: int32(os.Getpid()), ev: callbackEvents{}}
		if w.slot == nil {
			return nil, newError(ErrOperationNotSupport, "%s: the connection table has no slot for it", what)
		}
		loop, err := reactor.New(w, reactor.Config{})
		if err != nil {
			return nil, wrapErrno("", err, "%s: cannot create the event loop", what)
		}
		w.loop = loop
		loop.SetTimers(&w.timers)
		s.workers = []*worker{w}
		s.cur = w
	}
	if err := s.adoptOutPipes(what, w); err != nil {
		return nil, err
	}
	return w, nil
}

// adoptOutPipes adopts the pipes a child writes to. With w, a writer queues what its pipe
// does not take and w's loop flushes it; without, a write waits for room.
func (s *Server) adoptOutPipes(what string, w *worker) error {
	mp := s.mp
	cfg := s.ipcConfig()
	outWith := func(f *os.File, name string, cfg ipc.Config) (*ipc.Writer, error) {
		if w != nil {
			return s.adoptWriter(w.loop, f, name, cfg)
		}
		nf, err := adoptPipe(f, name)
		if err != nil {
			return nil, err
		}
		mp.files = append(mp.files, nf)
		return ipc.NewWriter(nf, cfg)
	}
	out := func(f *os.File, name string) (*ipc.Writer, error) { return outWith(f, name, cfg) }
	for j, f := range mp.inherited {
		// A task worker's pipe carries one message per datagram (task.go taskPipeConfig).
		wr, err := outWith(f, filePrefixW+strconv.Itoa(j), s.taskPipeConfig(cfg, j))
		if err != nil {
			return wrapErrno("", err, "%s: cannot adopt the pipe of process %d", what, j)
		}
		mp.toWorker = append(mp.toWorker, wr)
	}
	mp.inherited = nil
	mf, ok := supervisor.Inherited(fileMgr)
	if !ok {
		return newError(ErrOperationNotSupport, "%s: the manager passed no pipe of its own", what)
	}
	var err error
	if mp.toMgr, err = out(mf, fileMgr); err != nil {
		return wrapErrno("", err, "%s: cannot adopt the manager's pipe", what)
	}
	if s.mode == ModeProcess {
		// Send, Close, Pause, ... on a client connection go to the master's reactor that
		// holds it.
		return s.adoptReactorPipes(out)
	}
	return nil
}

// adoptInPipe adopts the inherited pipe end name that this child reads.
func (s *Server) adoptInPipe(what, name string, cfg ipc.Config) (*ipc.Reader, error) {
	f, ok := supervisor.Inherited(name)
	if !ok {
		return nil, newError(ErrOperationNotSupport, "%s: the manager passed no %s", what, name)
	}
	in, err := adoptPipe(f, name)
	if err != nil {
		return nil, wrapErrno("", err, "%s: cannot adopt %s", what, name)
	}
	s.mp.files = append(s.mp.files, in)
	r, err := ipc.NewReader(in, cfg)
	if err != nil {
		return nil, wrapErrno("", err, "%s: cannot read %s", what, name)
	}
	return r, nil
}

// requestLimit is max_request (or task_max_request) with its grace: a worker stops after
// n + 1..grace requests, so that workers started together do not all restart together.
func requestLimit(n, grace int) int64 {
	if n <= 0 {
		return 0
	}
	if grace > 0 {
		n += 1 + rand.IntN(grace)
	}
	return int64(n)
}
