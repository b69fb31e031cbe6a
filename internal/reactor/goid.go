package reactor

import "runtime"

// goroutineID returns the current goroutine's id, parsed from runtime.Stack's header. It costs
// about a microsecond and is used only on rare paths (watermark crossings) to tell whether the
// caller is the loop goroutine.
func goroutineID() int64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	const prefix = "goroutine "
	if n <= len(prefix) {
		return 0
	}
	var id int64
	for _, ch := range buf[len(prefix):n] {
		if ch < '0' || ch > '9' {
			break
		}
		id = id*10 + int64(ch-'0')
	}
	return id
}
