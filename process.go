package swoole

import (
	"net"
	"os"
	"sync"
	"syscall"
)

// Process is a user process (Swoole's addProcess): a long-lived companion of the server that
// the manager starts with it, restarts when it exits, and stops at shutdown.
type Process struct {
	fn func(p *Process)

	once  sync.Once
	local net.Conn // the process's end of its unix datagram pair
	peer  net.Conn // the workers' end
	err   error
}

// NewProcess creates a user process that runs fn. Give it to AddProcess before Start.
func NewProcess(fn func(p *Process)) *Process { return &Process{fn: fn} }

func (p *Process) pair() {
	p.once.Do(func() {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			p.err = os.NewSyscallError("socketpair", err)
			return
		}
		for i, fd := range fds {
			f := os.NewFile(uintptr(fd), "goswoole-process")
			c, err := net.FileConn(f)
			f.Close()
			if err != nil {
				p.err = err
				return
			}
			if i == 0 {
				p.local = c
			} else {
				p.peer = c
			}
		}
	})
}

// ExportSocket returns the process's end of a unix datagram pair (the seed's pipe type 2):
// each Write on one end arrives as one Read on the other. It is nil if the pair could not be
// created.
func (p *Process) ExportSocket() net.Conn {
	p.pair()
	return p.local
}

// AddProcess adds a user process to the server and returns its index among user processes
// (0, 1, ...). Only before Start.
//
// User processes need the manager of the multi-process model, which goswoole does not have
// yet: AddProcess returns ErrOperationNotSupport (507) until it does (see README, Status).
func (s *Server) AddProcess(p *Process) (int, error) {
	if p == nil || p.fn == nil {
		return -1, s.fail(newError(ErrInvalidParams, "AddProcess: the process is nil or has no function: create it with NewProcess(fn)"))
	}
	if s.state.Load() != stateNew {
		return -1, s.fail(newError(ErrRefused, "AddProcess after Start: add user processes before calling Start"))
	}
	return -1, s.fail(newError(ErrOperationNotSupport, "AddProcess: user processes need the manager process, which is not available yet in goswoole"))
}

// Reload restarts the workers (all of them, or only the task workers) to load new code.
//
// Reload needs a manager process: a single-process ModeBase server (worker_num 1, no task
// workers) has none, as in Swoole, so Reload returns ErrOperationNotSupport (507) there.
//
// In a ModeBase server of several processes it works from any process (a worker signals
// the manager, as SIGUSR1/SIGUSR2 do): every worker is replaced by a new process of the
// executable now on disk, asynchronously with reload_async (default), one at a time without.
// A reloaded worker's connections are closed (ModeBase, as in Swoole). A reload asked for
// while one runs is ignored. With onlyTaskWorkers only the task workers restart, one at a
// time; the tasks queued for them wait for their replacements (none is lost).
func (s *Server) Reload(onlyTaskWorkers bool) error {
	if err := s.running("Reload"); err != nil {
		return err
	}
	if s.mp != nil {
		return s.reloadMulti(onlyTaskWorkers)
	}
	return s.fail(newError(ErrOperationNotSupport, "Reload: this server runs in a single process, with no manager to restart workers: reload needs worker_num > 1 or task workers (multi-process model)"))
}

// Stop stops the worker workerID (-1 = this worker); waitEvent lets it finish its events
// first. The manager then starts a new one.
//
// Stop needs a manager to restart the worker: a single-process ModeBase server has none, so
// Stop returns ErrOperationNotSupport (507) there; use Shutdown to stop the server.
//
// In a ModeBase server of several processes the manager stops the worker (SIGTERM: it
// closes its connections and runs WorkerStop) and starts a new one; with waitEvent the new
// one starts first. It works from any process and returns once the request is made.
func (s *Server) Stop(workerID int, waitEvent bool) error {
	if err := s.running("Stop"); err != nil {
		return err
	}
	if workerID != -1 && (workerID < 0 || workerID >= s.eff.WorkerNum) {
		return s.fail(newError(ErrInvalidParams, "Stop: no worker %d: ids are 0 to %d, or -1 for this worker", workerID, s.eff.WorkerNum-1))
	}
	if s.mp != nil {
		return s.stopMulti(workerID, waitEvent)
	}
	return s.fail(newError(ErrOperationNotSupport, "Stop: this server runs in a single process, with no manager to restart the worker: use Shutdown"))
}

// SendMessage sends msg to the worker or task worker dstWorkerID, whose OnPipeMessage
// receives it. Sending to this worker itself, to an id out of range, or with no OnPipeMessage
// registered is an error (as in Swoole). In a ModeBase server of several processes it works
// from every worker and from the manager (srcWorkerID -1); it returns once the message is
// queued for the target.
func (s *Server) SendMessage(msg any, dstWorkerID int) error {
	if err := s.running("SendMessage"); err != nil {
		return err
	}
	total := s.eff.WorkerNum + s.eff.TaskWorkerNum
	switch {
	case s.cb.pipeMessage == nil:
		return s.fail(newError(ErrRefused, "SendMessage: no OnPipeMessage handler is registered: register one before Start"))
	case dstWorkerID < 0 || dstWorkerID >= total:
		return s.fail(newError(ErrRefused, "SendMessage: no worker %d: ids are 0 to %d", dstWorkerID, total-1))
	case s.cur != nil && dstWorkerID == s.cur.id:
		return s.fail(newError(ErrRefused, "SendMessage: worker %d cannot send a message to itself", dstWorkerID))
	}
	payload, err := encode(msg)
	if err != nil {
		return s.fail(err)
	}
	if s.mp != nil {
		return s.sendMessageMulti(payload, dstWorkerID)
	}
	return s.fail(newError(ErrOperationNotSupport, "SendMessage: worker %d is in another process, which the single-process server does not have", dstWorkerID))
}
