package swoole

// threads is the state of a ModeThread server (filled in by the thread runtime).
type threads struct{}
