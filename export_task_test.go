package swoole

// TaskWaitsNum returns how many tasks this worker process still keeps an entry for (a
// TaskWait, TaskWaitMulti or TaskCo waiter, or a TaskWithCallback callback): the black-box
// tests check that none is left behind.
func TaskWaitsNum(s *Server) int {
	if s.task == nil {
		return 0
	}
	s.task.mu.Lock()
	defer s.task.mu.Unlock()
	return len(s.task.waits)
}
