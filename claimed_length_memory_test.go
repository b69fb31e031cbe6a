package swoole_test

// A peer's claimed frame length does not size the server's memory: a connection that sends
// only a length header claiming package_max_length costs the server a buffer that grows
// with the bytes that arrive (64 KiB at first, see receive.go inputSize), not
// package_max_length.

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/goswoole/swoole"
)

// claimedPerConnMax is the documented bound (SECURITY.md) on the server's heap per
// connection that sent a header but no body: a 64 KiB input buffer, plus the connection's own
// state and this test's client side, with room to spare.
const claimedPerConnMax = 128 << 10

// TestClaimedLengthDoesNotSizeMemory: 200 connections each send only a 4-byte header that
// claims a frame of package_max_length (2 MiB); once the server has read every header, its
// live heap grew by at most claimedPerConnMax per connection (it grew by 2 MiB each when the
// buffer was sized from the header). The frames then complete and are echoed whole.
func TestClaimedLengthDoesNotSizeMemory(t *testing.T) {
	const (
		conns  = 200
		maxLen = 2 << 20
		body   = maxLen - 4
	)
	set := ftSettingsN(maxLen)
	set.MaxConnection = 1024
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, set)
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		var reply [4]byte
		binary.BigEndian.PutUint32(reply[:], uint32(len(data)))
		_ = s.Send(fd, reply[:])
	})
	ftStart(t, s)
	before := heapAfterGC()
	recv0 := s.Stats().TotalRecvBytes
	var header [4]byte
	binary.BigEndian.PutUint32(header[:], body)
	cs := make([]net.Conn, conns)
	for i := range cs {
		cs[i] = ftDial(t, s.Ports()[0])
		ftWrite(t, cs[i], header[:])
	}
	ftEventually(t, "the server to read every header", func() bool {
		return s.Stats().TotalRecvBytes-recv0 >= conns*4
	})
	after := heapAfterGC()
	grew := int64(after) - int64(before)
	t.Logf("heap grew by %d KiB for %d connections that sent a header claiming %d bytes (%d KiB each)", grew>>10, conns, maxLen, grew/conns>>10)
	if grew > conns*claimedPerConnMax {
		t.Errorf("the heap grew by %d MiB for %d connections that sent only a header (%d KiB each); want at most %d KiB each: the header's claim sized the buffer",
			grew>>20, conns, grew/conns>>10, claimedPerConnMax>>10)
	}
	// The frames, sent in full, are still received whole (a few of them: each is 2 MiB).
	chunk := make([]byte, body)
	for _, c := range cs[:4] {
		ftWrite(t, c, chunk)
		if got := binary.BigEndian.Uint32(ftReadFull(t, c, 4)); got != maxLen {
			t.Errorf("a frame of package_max_length came back as %d bytes, want %d", got, maxLen)
		}
	}
}
