package swoole

import (
	"testing"
	"time"
)

// TestNanotime: the cheap wall clock agrees with time.Now, before and after its offset is
// taken anew (a second after the last time), and allocates nothing.
func TestNanotime(t *testing.T) {
	check := func(when string) {
		t.Helper()
		before := time.Now().UnixNano()
		got := nanotime()
		after := time.Now().UnixNano()
		// The offset is taken from one time.Now reading: allow a few µs of skew between the
		// wall and monotonic readings inside time.Now.
		const slack = int64(50 * time.Microsecond)
		if got < before-slack || got > after+slack {
			t.Errorf("%s: nanotime %d outside [%d, %d]", when, got, before, after)
		}
	}
	check("fresh")
	wallRebased.Store(wallRebased.Load() - int64(2*time.Second)) // as if taken 2 s ago
	check("rebased")
	if n := testing.AllocsPerRun(1000, func() { _ = nanotime() }); n != 0 {
		t.Errorf("nanotime: %.1f allocations, want 0", n)
	}
}
