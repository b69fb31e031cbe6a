//go:build linux

package reactor

import (
	"errors"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/buffer"
)

// Errors returned by Conn.Send.
var (
	ErrClosed   = errors.New("reactor: connection closed")
	ErrOverflow = errors.New("reactor: output queue full")
)

const chunkSize = 16 << 10

// Conn is one connection of a loop. Fields above the mutex are set before the connection is
// registered and only read afterwards; the rest are guarded by mu or owned by the loop.
type Conn struct {
	FD    int
	Owner any // the user's object for this connection (the server's *conn)

	maxQueued int // refuse a Send when this many bytes are already queued (0 = no limit)
	high, low int // watermarks for BufferFull / BufferEmpty

	loop *Loop

	mu       sync.Mutex
	out      [][]byte // queued chunks; out[0][outOff:] goes next
	outOff   int
	queued   int
	events   uint32 // interest registered with epoll
	paused   bool   // Pause: no read interest
	delayed  bool   // waiting for Confirm: no read interest
	closing  bool   // no more Send
	draining bool   // Closed ran; flushing before the descriptor closes
	closed   bool   // descriptor closed
	reset    bool   // close with RST, dropping queued output
	full     bool   // above the high watermark

	notified bool // Closed has run (loop goroutine only)
}

// ConnOptions are a connection's limits.
type ConnOptions struct {
	MaxQueued int  // bytes queued before Send fails with ErrOverflow (0 = unlimited)
	High, Low int  // watermarks; High 0 = MaxQueued
	Delayed   bool // register without read interest until Confirm
}

// NewConn wraps an accepted descriptor. Return it from Handler.Accept.
func NewConn(fd int, owner any, o ConnOptions) *Conn {
	c := &Conn{FD: fd, Owner: owner, maxQueued: o.MaxQueued, high: o.High, low: o.Low, delayed: o.Delayed}
	if c.high <= 0 {
		c.high = c.maxQueued
	}
	if c.low > c.high {
		c.low = c.high
	}
	return c
}

// Loop returns the loop c belongs to.
func (c *Conn) Loop() *Loop { return c.loop }

func (c *Conn) wantEvents() uint32 {
	var ev uint32
	if !c.paused && !c.delayed && !c.draining {
		ev |= unix.EPOLLIN
	}
	if c.queued > 0 {
		ev |= unix.EPOLLOUT
	}
	return ev
}

// updateEventsLocked re-registers c's interest if it changed. c.mu must be held.
func (c *Conn) updateEventsLocked() {
	if c.closed || c.loop == nil {
		return
	}
	if ev := c.wantEvents(); ev != c.events {
		c.events = ev
		_ = c.loop.ctl(unix.EPOLL_CTL_MOD, c.FD, ev)
	}
}

// Queued returns the number of output bytes waiting to be written.
func (c *Conn) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued
}

// Send writes p to the connection, whole or not at all, from any goroutine. When nothing is
// queued it writes directly; what the socket does not take is copied to the output queue and
// flushed by the loop. It fails with ErrClosed once the connection is closing, and with
// ErrOverflow when output is already queued and p would take the queue past its limit (a
// single Send is always accepted whole when the queue is empty, so one message is never cut).
// The call that takes the queue to the high watermark, or is refused for overflow, raises
// BufferFull once: on the spot when the caller is the loop goroutine, else posted to it.
func (c *Conn) Send(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	c.mu.Lock()
	if c.closing || c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.queued == 0 {
		n, err := writeFull(c.FD, p)
		if n == len(p) {
			c.mu.Unlock()
			return nil
		}
		if err != nil && err != unix.EAGAIN {
			c.closing = true
			c.mu.Unlock()
			errno, _ := err.(unix.Errno)
			c.loop.Post(Task{Op: opClose, Conn: c, Why: CloseError, Errno: errno})
			return ErrClosed
		}
		p = p[n:]
	} else if c.maxQueued > 0 && c.queued+len(p) > c.maxQueued {
		full := !c.full
		c.full = true
		c.mu.Unlock()
		if full {
			c.raiseFull()
		}
		return ErrOverflow
	}
	c.enqueueLocked(p)
	full := !c.full && c.high > 0 && c.queued >= c.high
	if full {
		c.full = true
	}
	c.updateEventsLocked()
	c.mu.Unlock()
	if full {
		c.raiseFull()
	}
	return nil
}

func (c *Conn) raiseFull() {
	if c.loop.OnLoop() {
		if !c.notified {
			c.loop.h.BufferFull(c)
		}
		return
	}
	c.loop.Post(Task{Op: opFull, Conn: c})
}

func writeFull(fd int, p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Write(fd, p[done:])
		if n > 0 {
			done += n
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

func (c *Conn) enqueueLocked(p []byte) {
	c.queued += len(p)
	for len(p) > 0 {
		if k := len(c.out); k > 0 {
			tail := c.out[k-1]
			if room := cap(tail) - len(tail); room > 0 {
				n := copy(tail[len(tail):cap(tail)], p)
				c.out[k-1] = tail[:len(tail)+n]
				p = p[n:]
				continue
			}
		}
		size := chunkSize
		if len(p) > size {
			size = len(p)
		}
		chunk := buffer.Get(size)[:0]
		c.out = append(c.out, chunk)
	}
}

// consumeLocked drops n written bytes from the head of the queue.
func (c *Conn) consumeLocked(n int) {
	c.queued -= n
	drop := 0
	for n > 0 {
		rest := len(c.out[drop]) - c.outOff
		if n < rest {
			c.outOff += n
			break
		}
		n -= rest
		buffer.Put(c.out[drop])
		c.outOff = 0
		drop++
	}
	if drop > 0 {
		k := copy(c.out, c.out[drop:])
		clear(c.out[k:])
		c.out = c.out[:k]
	}
}

func (c *Conn) dropQueueLocked() {
	for _, b := range c.out {
		buffer.Put(b)
	}
	clear(c.out)
	c.out = c.out[:0]
	c.outOff = 0
	c.queued = 0
}

// Close asks the loop to close c. With reset, queued output is dropped and the peer gets a
// RST; without, queued output is flushed first. Closed runs on the loop after the current
// batch of events. Close returns false when c is already closing.
func (c *Conn) Close(reset bool) bool {
	c.mu.Lock()
	if c.closing || c.closed {
		c.mu.Unlock()
		return false
	}
	c.closing = true
	c.reset = reset
	c.mu.Unlock()
	if !c.loop.Post(Task{Op: opClose, Conn: c, Why: CloseServer}) {
		return false
	}
	return true
}

// Pause stops reading from c (its data waits in the kernel) until Resume.
func (c *Conn) Pause() { c.setPaused(true) }

// Resume starts reading from c again.
func (c *Conn) Resume() { c.setPaused(false) }

func (c *Conn) setPaused(v bool) {
	c.mu.Lock()
	c.paused = v
	c.updateEventsLocked()
	c.mu.Unlock()
}

// Confirm starts reading from a connection registered with ConnOptions.Delayed. It returns
// false when c was not waiting for it.
func (c *Conn) Confirm() bool {
	c.mu.Lock()
	was := c.delayed
	c.delayed = false
	c.updateEventsLocked()
	c.mu.Unlock()
	return was
}

// Closing reports whether c is closing or closed.
func (c *Conn) Closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing || c.closed
}
