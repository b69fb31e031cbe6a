package swoole

import (
	"testing"
	"unsafe"
)

// TestConnSize keeps the per-connection struct in the 112-byte size class: idle memory per
// connection is one of the benchmark bars (BENCHMARKS.md) (a ModeProcess master's extra state is in masterConn).
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(conn{}); n > 112 {
		t.Fatalf("sizeof conn = %d, want at most 112 (the 112-byte size class)", n)
	}
}
