package swoole

import "time"

// noTaskWorkers is the error every task call gets on a server without task workers.
func (s *Server) noTaskWorkers(call string) error {
	if err := s.running(call); err != nil {
		return err
	}
	return s.fail(newError(ErrOperationNotSupport, "%s: the server has no task workers: set task_worker_num > 0 and register OnTask", call))
}

// Task sends data to a task worker (dstWorkerID is the task-worker index, -1 = any) and returns
// the task id at once. The result, if any, arrives in OnFinish.
func (s *Server) Task(data any, dstWorkerID int) (int, error) {
	return -1, s.noTaskWorkers("Task")
}

// TaskWithCallback is Task with a handler for this task's result that replaces OnFinish.
func (s *Server) TaskWithCallback(data any, dstWorkerID int, cb func(s *Server, taskID int, data []byte)) (int, error) {
	return -1, s.noTaskWorkers("TaskWithCallback")
}

// TaskWait sends a task and waits up to timeout for its result.
func (s *Server) TaskWait(data any, timeout time.Duration, dstWorkerID int) ([]byte, error) {
	return nil, s.noTaskWorkers("TaskWait")
}

// TaskWaitMulti sends several tasks and waits up to timeout for their results; a nil entry
// means that task timed out.
func (s *Server) TaskWaitMulti(tasks []any, timeout time.Duration) ([][]byte, error) {
	return nil, s.noTaskWorkers("TaskWaitMulti")
}

// TaskCo sends several tasks concurrently and waits up to timeout; a nil entry means that task
// failed or timed out.
func (s *Server) TaskCo(tasks []any, timeout time.Duration) ([][]byte, error) {
	return nil, s.noTaskWorkers("TaskCo")
}

// Finish sends a task's result back to the worker that sent it. Only in a task worker.
func (s *Server) Finish(data any) error {
	if err := s.running("Finish"); err != nil {
		return err
	}
	return s.fail(newError(ErrRefused, "Finish: only a task worker can finish a task, and this process is not one"))
}
