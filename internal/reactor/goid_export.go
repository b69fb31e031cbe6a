package reactor

// GoroutineID returns the calling goroutine's id (about a microsecond: rare paths only).
func GoroutineID() int64 { return goroutineID() }
