//go:build linux

package reactor

import (
	"testing"
	"unsafe"
)

// TestConnSize guards the per-connection memory: an idle connection's Conn is one allocation
// of the 96-byte size class, and the loop keeps one pointer per descriptor.
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 96 {
		t.Errorf("sizeof Conn = %d, want at most 96 (the 96-byte size class)", n)
	}
	if n := unsafe.Sizeof(outQueue{}); n > 32 {
		t.Errorf("sizeof outQueue = %d, want at most 32", n)
	}
}
