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

// TestConnMemSize keeps a connection's one allocation (conn and reactor.Conn together, and
// the masterConn where the loop passes events on) in the size classes that the parts took
// when they were allocated apart (112 + 96 and 112 + 16 + 96 bytes): keeping them together
// must not cost idle memory.
func TestConnMemSize(t *testing.T) {
	if n := unsafe.Sizeof(connMem{}); n > 208 {
		t.Errorf("sizeof connMem = %d, want at most 208 (the 208-byte size class)", n)
	}
	if n := unsafe.Sizeof(masterConnMem{}); n > 224 {
		t.Errorf("sizeof masterConnMem = %d, want at most 224 (the 224-byte size class)", n)
	}
}
