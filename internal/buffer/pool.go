// Package buffer holds the byte-slice pools the reactor uses for queued output and leftover
// input: power-of-two size classes from 512 B to 4 MiB, each a sync.Pool, so a busy server
// reuses its buffers instead of allocating one per message.
package buffer

import (
	"math/bits"
	"sync"
)

const (
	minShift = 9  // 512 B
	maxShift = 22 // 4 MiB
)

var pools [maxShift - minShift + 1]sync.Pool

// class returns the pool index for a buffer of capacity at least n, or -1 when n is above
// the largest class.
func class(n int) int {
	if n <= 1<<minShift {
		return 0
	}
	s := bits.Len(uint(n - 1))
	if s > maxShift {
		return -1
	}
	return s - minShift
}

// Get returns a slice of length n whose capacity is a size class. Its contents are undefined.
// Slices above the largest class are allocated and never pooled.
func Get(n int) []byte {
	c := class(n)
	if c < 0 {
		return make([]byte, n)
	}
	if p, ok := pools[c].Get().(*[]byte); ok {
		b := (*p)[:n]
		bufHeaders.Put(p)
		return b
	}
	return make([]byte, n, 1<<(c+minShift))
}

// Put returns b to its pool. b must not be used afterwards. Slices whose capacity is not a
// size class are dropped.
func Put(b []byte) {
	c := cap(b)
	if c < 1<<minShift || c > 1<<maxShift || c&(c-1) != 0 {
		return
	}
	p, _ := bufHeaders.Get().(*[]byte)
	if p == nil {
		p = new([]byte)
	}
	*p = b[:0]
	pools[class(c)].Put(p)
}

// bufHeaders recycles the *[]byte boxes that sync.Pool needs, so Put does not allocate.
var bufHeaders sync.Pool
