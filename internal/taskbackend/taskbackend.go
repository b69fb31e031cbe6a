// Package taskbackend is the hook between the root package's task API (Task,
// TaskWithCallback, TaskWait, TaskWaitMulti, TaskCo, Finish, OnTask, OnFinish) and a
// backend that carries the tasks somewhere else than the server's own task workers: the
// cluster package's JetStream stream. It holds no state of its own: the root package sets
// Attach in its init, and the backend's package calls it, before the server starts, to
// become the server's task backend. A program that imports no backend never sets one.
package taskbackend

// Task is one task of the root API on its way through a backend.
type Task struct {
	// ID is the task id the sender's Task call returned (counted per sending process).
	ID int64
	// Src is the sending worker's id (GetWorkerID), OnTask's srcWorkerID.
	Src int
	// Data is the payload, encoded as the root's Task encodes it ([]byte and string as
	// they are, other values through the server's codec).
	Data []byte
	// Reply reports whether the sender takes the task's result (a worker: its waiter,
	// callback or OnFinish); a one-way task's Finish is refused.
	Reply bool
}

// Backend carries a server's tasks: the root's task calls hand every task to it.
type Backend interface {
	// Send stores one task, or returns why not (a *swoole.Error the call returns as is).
	// When t.Reply is set, done runs once at most, on any goroutine, with the task's
	// result, or noResult when OnTask returned nil and did not call Finish; it may never
	// run (the sender's wait times out on its own).
	Send(call string, t Task, done func(result []byte, noResult bool)) error
}

// Runner runs the tasks a backend takes on this host through the server's own OnTask.
type Runner interface {
	// HasHandler reports whether the server registered an OnTask: a host without one
	// takes no task.
	HasHandler() bool
	// Run runs OnTask for t on the calling goroutine, with a handle of its own whose
	// Finish answers t (once). It returns the result (Finish's, or OnTask's non-nil return
	// value, encoded), noResult when there is none, or err when the result cannot be
	// encoded. A panic of OnTask is not recovered: the backend decides what it means.
	Run(t Task) (result []byte, noResult bool, err error)
}

// Attach makes b the task backend of server (a *swoole.Server that has not started) and
// returns the runner of its OnTask. The root package sets it in its init; nil means the
// root package is not linked (it always is where a *swoole.Server exists).
var Attach func(server any, b Backend) (Runner, error)

// Deliver runs the OnPipeMessage of worker workerID of server (a running *swoole.Server)
// for a message that comes from outside its processes (another host): on that worker's
// loop, with srcWorkerID -1. It returns the *swoole.Error SendMessage would (no handler, no
// such worker, not running). The root package sets it in its init.
var Deliver func(server any, data []byte, workerID int) error
