package ipc

import (
	"bytes"
	"fmt"
)

// pattern returns n bytes that depend on seed and position, so a misplaced chunk shows.
func pattern(seed, n int) []byte {
	b := make([]byte, n)
	fill(b, seed)
	return b
}

func fill(b []byte, seed int) {
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
}

// checkPattern reports how b differs from pattern(seed, want).
func checkPattern(b []byte, seed, want int) error {
	if len(b) != want {
		return fmt.Errorf("length %d, want %d", len(b), want)
	}
	if p := pattern(seed, want); !bytes.Equal(b, p) {
		for i := range b {
			if b[i] != p[i] {
				return fmt.Errorf("byte %d is %#x, want %#x", i, b[i], p[i])
			}
		}
	}
	return nil
}

// datagrams splits a message into the datagrams a Writer would send.
func datagrams(h Header, payload []byte, maxPayload int) [][]byte {
	k := chunkCount(len(payload), maxPayload)
	out := make([][]byte, k)
	for i := range k {
		out[i] = appendChunk(nil, h, payload, maxPayload, i, k)
	}
	return out
}

// delivered is one message a reassembler or Reader handed over.
type delivered struct {
	h       Header
	payload []byte
}

// collector returns a callback that keeps copies of what it is given.
func collector(dst *[]delivered) func(Header, []byte) {
	return func(h Header, p []byte) {
		*dst = append(*dst, delivered{h, bytes.Clone(p)})
	}
}
