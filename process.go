package swoole

import (
	"net"
	"os"
	"sync"
)

// Process is a user process (Swoole's addProcess): a long-lived companion of the server that
// the manager starts with it, restarts when it exits, leaves alone at reload, and stops with
// SIGTERM at shutdown. See userproc.go and docs/process-model.md.
type Process struct {
	fn func(p *Process)

	mu    sync.Mutex
	index int      // its AddProcess index, -1 before AddProcess
	conn  net.Conn // this process's end of the pair (see ExportSocket)
	ends  [2]*os.File
}

// NewProcess creates a user process that runs fn. Give it to AddProcess before Start.
//
// fn runs in a process of its own (this program started again: its main runs up to Start,
// which then calls fn). When fn returns, the process exits and the manager starts it again,
// so fn should loop (read ExportSocket, serve a ticker, ...) for as long as the server runs.
// At shutdown (and Stop) the manager sends the process SIGTERM and it exits at once: keep
// nothing there that needs a clean stop, or save it as you go.
func NewProcess(fn func(p *Process)) *Process { return &Process{fn: fn, index: -1} }

// ExportSocket returns this process's end of the user process's unix datagram pair (the
// seed's pipe type 2): in the user process itself, the process's end; in a worker, a task
// worker, another user process or the manager, the workers' end, which they all share. Each
// Write on one end arrives as one Read on the other, so a worker's Write reaches the user
// process as one message, and the user process's Write reaches one of the workers (whichever
// reads first). The pair is created by AddProcess (before Start, so it outlives restarts); it
// is nil before AddProcess, or if the pair could not be created or adopted.
//
// Do not Close it: it belongs to the server, for the server's life.
func (p *Process) ExportSocket() net.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conn
}

// AddProcess adds a user process to the server and returns its index among user processes
// (0, 1, ...), as Swoole does; its worker id (GetWorkerPID, SendMessage's source and target)
// is worker_num + task_worker_num + index. Only before Start, and in the same order in every
// process (code before Start runs again in each child).
//
// A server with user processes runs as a manager and worker processes even with worker_num
// 1 (Swoole's BASE mode does the same). The user process runs p's function; there it may
// call Send, Close, Exist, GetClientInfo, GetClientList, Connections, Stats, SendMessage and
// Command, but not the calls that need an event loop (timers, Heartbeat, SendWait: 507).
func (s *Server) AddProcess(p *Process) (int, error) {
	if p == nil || p.fn == nil {
		return -1, s.fail(newError(ErrInvalidParams, "AddProcess: the process is nil or has no function: create it with NewProcess(fn)"))
	}
	if s.state.Load() != stateNew {
		return -1, s.fail(newError(ErrRefused, "AddProcess after Start: add user processes before calling Start"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.index >= 0 {
		return -1, s.fail(newError(ErrRefused, "AddProcess: this process was added already (index %d): create one Process per user process", p.index))
	}
	i := len(s.procs)
	if err := p.setup(i); err != nil {
		return -1, s.fail(err)
	}
	p.index = i
	s.procs = append(s.procs, p)
	return i, nil
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
	return s.run.reload(onlyTaskWorkers)
}

// Stop stops the worker or task worker workerID (-1 = this worker; task workers' ids follow
// the workers', as in Swoole); waitEvent lets it finish its events first. The manager then
// starts a new one (ModeThread: a fresh loop takes its queue).
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
	// Workers and task workers, as Swoole's kill_worker; user processes are not stopped so.
	if n := s.eff.WorkerNum + s.eff.TaskWorkerNum; workerID != -1 && (workerID < 0 || workerID >= n) {
		return s.fail(newError(ErrInvalidParams, "Stop: no worker %d: ids are 0 to %d (workers, then task workers), or -1 for this worker", workerID, n-1))
	}
	return s.run.stop(workerID, waitEvent)
}

// SendMessage sends msg to the worker, task worker or user process dstWorkerID (global ids:
// workers 0 … worker_num−1, then task workers, then user processes), whose OnPipeMessage
// receives it with the sender's id (-1 from the manager). Sending to this process itself, to
// an id out of range, or with no OnPipeMessage registered is an error (503, as in Swoole;
// Swoole does not let a user process be a target: goswoole does, and runs its OnPipeMessage
// on a goroutine of the user process, one message at a time). In a ModeBase server of
// several processes it works from every worker, user process and the manager. A worker's
// call returns once the message is queued (the loop sends it); the manager and user
// processes wait until the pipe took it. Messages of any size up to 64 MiB arrive whole.
func (s *Server) SendMessage(msg any, dstWorkerID int) error {
	if err := s.running("SendMessage"); err != nil {
		return err
	}
	total := s.procTotal()
	switch {
	case s.cb.pipeMessage == nil:
		return s.fail(newError(ErrRefused, "SendMessage: no OnPipeMessage handler is registered: register one before Start"))
	case dstWorkerID < 0 || dstWorkerID >= total:
		return s.fail(newError(ErrRefused, "SendMessage: no worker %d: ids are 0 to %d (workers, task workers, then user processes)", dstWorkerID, total-1))
	case dstWorkerID == s.run.selfID():
		return s.fail(newError(ErrRefused, "SendMessage: process %d cannot send a message to itself", dstWorkerID))
	}
	payload, err := encode(msg)
	if err != nil {
		return s.fail(err)
	}
	return s.run.sendMessage(payload, dstWorkerID)
}
