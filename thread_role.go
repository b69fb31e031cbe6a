package swoole

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/reactor"
)

// threadRuntime answers for one handle of a ModeThread server: the master's (tl nil: the
// handle NewServer returned) or one worker or task-worker loop's. Every id and pid is the
// process's: GetMasterPID, GetManagerPID and GetWorkerPID(id) all give os.Getpid().
type threadRuntime struct {
	s  *Server
	t  *threads
	tl *threadLoop
	// task is the task this handle's OnTask runs, with task_enable_coroutine (each such
	// OnTask gets a handle of its own, so that Finish knows its task); nil otherwise.
	task *threadTask
}

func (r threadRuntime) role() role {
	switch {
	case r.tl == nil:
		return roleMaster
	case r.tl.proc >= 0:
		return roleUserProcess
	case r.tl.task:
		return roleTaskWorker
	}
	return roleWorker
}

func (r threadRuntime) selfID() int {
	if r.tl == nil {
		return -1
	}
	return r.tl.id
}

// workerID: -1 in a user process, as in the other modes.
func (r threadRuntime) workerID() int {
	if r.tl != nil && r.tl.proc >= 0 {
		return -1
	}
	return r.selfID()
}

// loop: a worker's own loop; the master's timers run on reactor 0, as in ModeProcess.
func (r threadRuntime) loop(string) (*worker, error) {
	if r.tl == nil {
		return r.t.reactors[0], nil
	}
	return r.s.cur, nil
}

func (r threadRuntime) reload(onlyTaskWorkers bool) error { return r.t.reload(onlyTaskWorkers) }

func (r threadRuntime) stop(workerID int, waitEvent bool) error {
	if workerID == -1 {
		if r.tl == nil {
			return r.s.fail(newError(ErrInvalidParams, "Stop(-1): the master is not a worker: give a worker id"))
		}
		workerID = r.tl.id
	}
	// The loop is replaced after the events queued before the request (waitEvent or not:
	// none of them is lost, the queue passes to the replacement anyway).
	r.t.loops[workerID].push(threadEvent{typ: tevReplace})
	return nil
}

func (r threadRuntime) shutdown() error { return r.t.shutdown() }

func (r threadRuntime) sendMessage(payload []byte, dst int) error {
	r.t.loops[dst].push(threadEvent{typ: tevPipe, src: r.selfID(), data: payload})
	return nil
}

// heartbeat scans every reactor's connections (the table and the connections are safe to
// read from any goroutine; a close is applied by the connection's reactor).
func (r threadRuntime) heartbeat(closeConns bool) ([]int64, error) {
	idle := []int64{}
	for _, w := range r.t.reactors {
		idle = append(idle, w.idleConns(closeConns, true)...)
	}
	return idle, nil
}

// command runs the command on the loop that processID and processType name: the master
// and the manager are reactor 0 (one process is both), a worker or task worker its loop.
// The caller waits up to commandWait for the reply.
func (r threadRuntime) command(name string, cmd command, processID, processType int, payload []byte) ([]byte, error) {
	s, t := r.s, r.t
	switch processType {
	case CommandMaster, CommandManager:
		w := t.reactors[0]
		if w.loop.OnLoop() {
			return cmd.fn(t.s, payload), nil
		}
		var out []byte
		done := make(chan struct{})
		if !w.loop.Post(reactor.Task{Fn: func() { out = cmd.fn(t.s, payload); close(done) }}) {
			return nil, s.fail(newError(ErrRefused, "Command(%q): the server is shutting down", name))
		}
		if !r.waitServing(done, commandWait) {
			return nil, s.fail(wrapErrno("", unix.ETIMEDOUT, "Command(%q): the master did not answer within %v (reactor 0 is busy)", name, commandWait))
		}
		return out, nil
	case CommandEventWorker:
		if processID < 0 || processID >= s.eff.WorkerNum {
			return nil, s.fail(newError(ErrInvalidParams, "Command(%q): no worker %d: ids are 0 to %d", name, processID, s.eff.WorkerNum-1))
		}
	case CommandTaskWorker:
		if processID < 0 || processID >= s.eff.TaskWorkerNum {
			return nil, s.fail(newError(ErrInvalidParams, "Command(%q): no task worker %d: the server has %d", name, processID, s.eff.TaskWorkerNum))
		}
		processID += s.eff.WorkerNum
	}
	if r.tl != nil && r.tl.id == processID {
		return cmd.fn(s, payload), nil // this loop's own command: run it here
	}
	var out []byte
	done := make(chan struct{})
	t.loops[processID].push(threadEvent{typ: tevFn, fn: func(h *Server) { out = cmd.fn(h, payload); close(done) }})
	if !r.waitServing(done, commandWait) {
		return nil, s.fail(wrapErrno("", unix.ETIMEDOUT, "Command(%q): process %d did not answer within %v (its loop is busy)", name, processID, commandWait))
	}
	return out, nil
}

// waitServing waits for done up to d. On a loop's own goroutine it serves the commands
// queued for the loop meanwhile, so that two loops that ask each other at once (a worker's
// Command to the master, whose probe asks that worker) both get their answer.
func (r threadRuntime) waitServing(done <-chan struct{}, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	var tl *threadLoop
	if r.tl != nil && r.s.cur != nil && r.s.cur.loop.OnLoop() {
		tl = r.tl
	}
	var wake chan struct{}
	if tl != nil {
		wake = make(chan struct{}, 1)
		tl.mu.Lock()
		tl.waker = wake
		tl.mu.Unlock()
		defer func() {
			tl.mu.Lock()
			tl.waker = nil
			tl.mu.Unlock()
		}()
		wake <- struct{}{} // serve what is queued already
	}
	for {
		select {
		case <-done:
			return true
		case <-tm.C:
			return false
		case <-wake:
			tl.runQueuedCommands(r.s)
		}
	}
}

// commandWait is how long Command waits for another loop's reply in ModeThread.
const commandWait = 10 * time.Second

func (r threadRuntime) asyncPipes() bool { return false }

func (r threadRuntime) sendsTasks(call string) error {
	if r.tl != nil && r.tl.task {
		return noTasksFromTaskWorker(r.s, call)
	}
	return nil
}

func (r threadRuntime) finish(data any) error {
	if r.tl == nil {
		return r.s.fail(newError(ErrRefused, "Finish: this is the master's handle (the one NewServer returned); in OnTask, call it on the *Server OnTask receives (its task worker's handle)"))
	}
	if !r.tl.task {
		return notTaskWorker{r.s}.finish(data)
	}
	if r.task != nil {
		return r.t.tasks.result(r.s, r.task, data)
	}
	return r.t.tasks.finish(r.s, r.tl, data)
}

func (r threadRuntime) masterPID() int  { return selfPID }
func (r threadRuntime) managerPID() int { return selfPID }

// runQueuedCommands takes the commands (tevFn) out of tl's queue, leaving the rest in order,
// and runs them with handle h.
func (tl *threadLoop) runQueuedCommands(h *Server) {
	var fns []func(*Server)
	tl.mu.Lock()
	kept := tl.items[:0]
	for _, ev := range tl.items {
		if ev.typ == tevFn {
			fns = append(fns, ev.fn)
			continue
		}
		kept = append(kept, ev)
	}
	clear(tl.items[len(kept):])
	tl.items = kept
	tl.mu.Unlock()
	for _, fn := range fns {
		fn(h)
	}
}
