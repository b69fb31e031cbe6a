package swoole

import (
	"os"
	"syscall"

	"github.com/goswoole/swoole/internal/supervisor"
)

// The role of this process, chosen once when Start begins (chooseRuntime), and the runtime
// that answers for it. The API methods validate their arguments and then ask the runtime;
// they never ask which process they run in. See docs/architecture.md.

// role is the kind of process this is.
type role uint8

const (
	roleSingle        role = iota + 1 // ModeBase in one process: listeners, connections, callbacks on one loop
	roleManager                       // ModeBase manager of worker processes: no connection, no event callback
	roleMaster                        // ModeProcess master: reactors that hold every connection, plus the manager's work
	roleWorker                        // ModeBase worker process: its own connections and callbacks
	roleProcessWorker                 // ModeProcess worker process: callbacks; the connections are the master's
	roleTaskWorker                    // task worker process (either mode)
	roleUserProcess                   // user process (AddProcess)
)

// selfPID is this process's pid. A Go program never forks without exec, so it cannot change;
// os.Getpid is a system call, and the master compares a message's sender with it per message.
var selfPID = os.Getpid()

var roleNames = [...]string{"", "single process", "manager", "master", "event worker", "event worker", "task worker", "user process"}

func (r role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return "unknown role"
}

// roleRuntime is what differs between the processes of a server for the calls that act on the
// server as a whole. Each method is called once the server runs.
type roleRuntime interface {
	role() role
	// selfID is this process's global id (a worker, task worker or user process id), -1 for
	// the manager and the master.
	selfID() int
	// workerID is GetWorkerID: selfID, but -1 in a user process too.
	workerID() int
	// loop is the event loop that runs this process's timers and Defer, with the error for a
	// process that has none.
	loop(call string) (*worker, error)
	reload(onlyTaskWorkers bool) error
	// stop stops worker workerID, a valid worker id or -1 (this worker).
	stop(workerID int, waitEvent bool) error
	shutdown() error
	sendMessage(payload []byte, dst int) error
	heartbeat(closeConns bool) ([]int64, error)
	// command runs Command's request (checked) here or in the process it names.
	command(name string, cmd command, processID, processType int, payload []byte) ([]byte, error)
	// asyncPipes reports whether this process's writes to other processes' pipes may be
	// queued and flushed later by its event loop (a worker, a task worker); where no loop
	// flushes them (the manager, the master, a user process), writers wait for room.
	asyncPipes() bool
	// sendsTasks is nil where Task and its kin may be called, the error they get where not
	// (a task worker: Swoole's "Server->task() cannot use in the task-worker").
	sendsTasks(call string) error
	// finish is Finish: a task worker finishes the task OnTask runs; elsewhere an error.
	finish(data any) error
	masterPID() int
	managerPID() int
}

// chooseRuntime sets s.run for the role this process was started in. It runs once, while
// Start prepares (chooseProcessModel decided s.mp).
func (s *Server) chooseRuntime() {
	switch {
	case s.mode == ModeThread:
		s.thr = &threads{s: s}
		s.run = threadRuntime{s: s, t: s.thr}
	case s.mp == nil:
		s.run = singleRuntime{s}
	case !s.mp.child && s.mode == ModeProcess:
		s.run = masterRuntime{managerRuntime{s}}
	case !s.mp.child:
		s.run = managerRuntime{s}
	case s.mp.role.Kind == supervisor.KindUserProcess:
		s.run = userRuntime{childRuntime{s}}
	case s.mp.role.Kind == supervisor.KindTaskWorker:
		s.run = taskWorkerRuntime{childRuntime{s}}
	case s.mode == ModeProcess:
		s.run = processWorkerRuntime{childRuntime{s}}
	default:
		s.run = childRuntime{s}
	}
}

// rt returns the runtime once Start has chosen it (nil before: Start writes it while
// preparing).
func (s *Server) rt() roleRuntime {
	if st := s.state.Load(); st == stateNew || st == stateStarting {
		return nil
	}
	return s.run
}

// singleRuntime: ModeBase in one process.
type singleRuntime struct{ s *Server }

func (r singleRuntime) role() role                        { return roleSingle }
func (r singleRuntime) selfID() int                       { return 0 }
func (r singleRuntime) workerID() int                     { return 0 }
func (r singleRuntime) loop(string) (*worker, error)      { return r.s.cur, nil }
func (r singleRuntime) heartbeat(c bool) ([]int64, error) { return r.s.cur.idleConns(c, true), nil }
func (r singleRuntime) masterPID() int                    { return selfPID }
func (r singleRuntime) managerPID() int                   { return 0 }
func (r singleRuntime) shutdown() error                   { return r.s.shutdownSingle() }
func (r singleRuntime) asyncPipes() bool                  { return false }

// command: the single process is master, manager-less, and worker 0.
func (r singleRuntime) command(name string, cmd command, processID, processType int, payload []byte) ([]byte, error) {
	s := r.s
	switch processType {
	case CommandEventWorker:
		if processID < 0 || processID >= s.eff.WorkerNum {
			return nil, s.fail(newError(ErrInvalidParams, "Command(%q): no worker %d: ids are 0 to %d", name, processID, s.eff.WorkerNum-1))
		}
	case CommandManager:
		return nil, s.fail(newError(ErrInvalidParams, "Command(%q): this single-process server has no manager", name))
	case CommandTaskWorker:
		return nil, s.fail(newError(ErrInvalidParams, "Command(%q): the server has no task worker %d", name, processID))
	}
	return s.commandHere(name, cmd, payload)
}

func (r singleRuntime) reload(onlyTaskWorkers bool) error {
	// Beyond Swoole: a single process that serves TLS re-reads its certificate files for the
	// connections it accepts from now on (tls.go); there is no worker to restart.
	if !onlyTaskWorkers && r.s.reloadTLS() {
		return nil
	}
	return r.s.fail(newError(ErrOperationNotSupport, "Reload: this server runs in a single process, with no manager to restart workers: reload needs worker_num > 1 or task workers (multi-process model)"))
}

func (r singleRuntime) stop(int, bool) error {
	return r.s.fail(newError(ErrOperationNotSupport, "Stop: this server runs in a single process, with no manager to restart the worker: use Shutdown"))
}

func (r singleRuntime) sendMessage(_ []byte, dst int) error {
	return r.s.fail(newError(ErrOperationNotSupport, "SendMessage: worker %d is in another process, which the single-process server does not have", dst))
}

// managerRuntime: the manager of a ModeBase server of several processes.
type managerRuntime struct{ s *Server }

func (r managerRuntime) role() role    { return roleManager }
func (r managerRuntime) selfID() int   { return managerSrcID }
func (r managerRuntime) workerID() int { return -1 }

func (r managerRuntime) loop(call string) (*worker, error) {
	if w := r.s.timerLoop; w != nil {
		return w, nil
	}
	return nil, r.s.notInManager(call)
}

func (r managerRuntime) reload(onlyTaskWorkers bool) error {
	r.s.reloadManager(onlyTaskWorkers)
	return nil
}

func (r managerRuntime) stop(workerID int, waitEvent bool) error {
	if workerID == -1 {
		return r.s.fail(newError(ErrInvalidParams, "Stop(-1): the %s is not a worker: give a worker id", r.s.run.role()))
	}
	if err := r.s.mp.mgr.StopSlot(workerID, waitEvent); err != nil {
		return r.s.fail(newError(ErrRefused, "Stop: worker %d: %v", workerID, err))
	}
	return nil
}

func (r managerRuntime) shutdown() error {
	r.s.shutdownManager()
	return nil
}

func (r managerRuntime) sendMessage(payload []byte, dst int) error {
	return r.s.sendMessageMulti(payload, dst)
}

func (r managerRuntime) asyncPipes() bool { return false }

func (r managerRuntime) command(name string, cmd command, processID, processType int, payload []byte) ([]byte, error) {
	return r.s.commandCross(name, cmd, processID, processType, payload)
}

func (r managerRuntime) heartbeat(bool) ([]int64, error) {
	return nil, r.s.notInManager("Heartbeat")
}

// masterPID: a ModeBase server of several processes has no master; as in Swoole, it is
// worker 0's pid (0 while worker 0 is being replaced).
func (r managerRuntime) masterPID() int  { return int(r.s.table.Worker(0).PID.Load()) }
func (r managerRuntime) managerPID() int { return selfPID }

// masterRuntime: the master of a ModeProcess server, which does the manager's work too.
type masterRuntime struct{ managerRuntime }

func (r masterRuntime) role() role                   { return roleMaster }
func (r masterRuntime) masterPID() int               { return selfPID }
func (r masterRuntime) loop(string) (*worker, error) { return r.s.mp.master.reactors[0], nil }

// childRuntime: a worker process of a ModeBase server; the other children embed it.
type childRuntime struct{ s *Server }

func (r childRuntime) role() role                        { return roleWorker }
func (r childRuntime) selfID() int                       { return r.s.cur.id }
func (r childRuntime) workerID() int                     { return r.s.cur.id }
func (r childRuntime) loop(string) (*worker, error)      { return r.s.cur, nil }
func (r childRuntime) heartbeat(c bool) ([]int64, error) { return r.s.cur.idleConns(c, true), nil }
func (r childRuntime) masterPID() int                    { return int(r.s.table.Worker(0).PID.Load()) }
func (r childRuntime) managerPID() int                   { return supervisor.ParentPID() }

func (r childRuntime) reload(onlyTaskWorkers bool) error {
	sig := syscall.SIGUSR1
	if onlyTaskWorkers {
		sig = syscall.SIGUSR2
	}
	return r.s.signalManager("Reload", sig)
}

func (r childRuntime) stop(workerID int, waitEvent bool) error {
	if workerID == -1 {
		workerID = r.s.cur.id
	}
	if err := r.s.cur.requestStop(workerID, waitEvent); err != nil {
		return r.s.fail(wrapErrno("", err, "Stop: cannot reach the manager"))
	}
	return nil
}

// shutdown asks the manager to stop the tree (SIGTERM). Once the server shuts down it does
// nothing. In a worker that the manager is stopping (Stop, max_request, a reload), a call
// from the worker's own loop (a callback, such as OnWorkerStop) is honoured, as in Swoole,
// while a call from another goroutine is not: that is a program answering SIGTERM with
// Shutdown, which caught the signal that stops this worker only (see workerStopping).
func (r childRuntime) shutdown() error {
	s := r.s
	if s.table.Counters().ServerFlags.Load()&flagShutdown != 0 {
		return nil // the manager is shutting the server down already
	}
	if s.workerStopping() && (s.cur == nil || s.cur.loop == nil || !s.cur.loop.OnLoop()) {
		return nil // see workerStopping
	}
	return s.signalManager("Shutdown", syscall.SIGTERM)
}

func (r childRuntime) asyncPipes() bool { return true }

func (r childRuntime) command(name string, cmd command, processID, processType int, payload []byte) ([]byte, error) {
	return r.s.commandCross(name, cmd, processID, processType, payload)
}

func (r childRuntime) sendMessage(payload []byte, dst int) error {
	return r.s.sendMessageMulti(payload, dst)
}

// processWorkerRuntime: a worker process of a ModeProcess server.
type processWorkerRuntime struct{ childRuntime }

func (r processWorkerRuntime) role() role     { return roleProcessWorker }
func (r processWorkerRuntime) masterPID() int { return supervisor.ParentPID() }
func (r processWorkerRuntime) heartbeat(c bool) ([]int64, error) {
	return r.s.heartbeatRemote(c), nil
}

// taskWorkerRuntime: a task worker process.
type taskWorkerRuntime struct{ childRuntime }

func (r taskWorkerRuntime) role() role { return roleTaskWorker }

func (r taskWorkerRuntime) masterPID() int {
	if r.s.mode == ModeProcess {
		return supervisor.ParentPID()
	}
	return r.childRuntime.masterPID()
}

func (r taskWorkerRuntime) heartbeat(c bool) ([]int64, error) {
	if r.s.mode == ModeProcess {
		return r.s.heartbeatRemote(c), nil
	}
	return r.childRuntime.heartbeat(c)
}

// userRuntime: a user process (AddProcess). It has no event loop of its own but the timer
// loop, and no worker id.
type userRuntime struct{ childRuntime }

func (r userRuntime) role() role    { return roleUserProcess }
func (r userRuntime) selfID() int   { return int(r.s.mp.src) }
func (r userRuntime) workerID() int { return -1 }

func (r userRuntime) loop(call string) (*worker, error) {
	if w := r.s.timerLoop; w != nil {
		return w, nil
	}
	return nil, r.s.notInManager(call)
}

func (r userRuntime) asyncPipes() bool { return false }

func (r userRuntime) stop(workerID int, waitEvent bool) error {
	return r.s.stopFromUserProcess(workerID, waitEvent)
}

func (r userRuntime) heartbeat(bool) ([]int64, error) {
	return nil, r.s.notInManager("Heartbeat")
}

func (r userRuntime) masterPID() int {
	if r.s.mode == ModeProcess {
		return supervisor.ParentPID()
	}
	return r.childRuntime.masterPID()
}

// notTaskWorker is the part of the runtimes of every process but a task worker's that
// concerns tasks: it may send them, and has none to finish.
type notTaskWorker struct{ s *Server }

func (notTaskWorker) sendsTasks(string) error { return nil }

func (r notTaskWorker) finish(any) error {
	return r.s.fail(newError(ErrRefused, "Finish: only a task worker can finish a task, and this process is not one"))
}

func (r singleRuntime) sendsTasks(call string) error  { return notTaskWorker(r).sendsTasks(call) }
func (r singleRuntime) finish(data any) error         { return notTaskWorker(r).finish(data) }
func (r managerRuntime) sendsTasks(call string) error { return notTaskWorker(r).sendsTasks(call) }
func (r managerRuntime) finish(data any) error        { return notTaskWorker(r).finish(data) }
func (r childRuntime) sendsTasks(call string) error   { return notTaskWorker(r).sendsTasks(call) }
func (r childRuntime) finish(data any) error          { return notTaskWorker(r).finish(data) }

func (r taskWorkerRuntime) sendsTasks(call string) error { return noTasksFromTaskWorker(r.s, call) }

// noTasksFromTaskWorker is the error Task and its kin get in a task worker.
func noTasksFromTaskWorker(s *Server, call string) error {
	return s.fail(newError(ErrOperationNotSupport, "%s in a task worker: a task worker cannot send tasks; return the work from OnTask, or send it from an event worker", call))
}

func (r taskWorkerRuntime) finish(data any) error { return r.s.task.runner.finish(data) }
