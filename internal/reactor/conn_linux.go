//go:build linux

package reactor

import (
	"crypto/tls"
	"errors"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/buffer"
)

// Errors returned by Conn.Send.
var (
	ErrClosed   = errors.New("reactor: connection closed")
	ErrOverflow = errors.New("reactor: output queue full")
	ErrTimeout  = errors.New("reactor: timed out")
)

const chunkSize = 16 << 10

// Conn is one connection of a loop. Fields above the mutex are set before the connection is
// registered and only read afterwards; the rest are guarded by mu or owned by the loop.
type Conn struct {
	FD    int
	Owner any // the user's object for this connection (the server's *conn)

	maxQueued int32 // refuse a Send when this many bytes are already queued (0 = no limit)
	high, low int32 // watermarks for BufferFull / BufferEmpty
	// loaned: q holds loaned pieces (SendLoaned), copied at the next flush. Guarded by mu
	// like the fields below it; it sits here, in what would be padding, to keep Conn at 96 bytes.
	loaned bool

	loop *Loop

	mu       sync.Mutex
	q        *outQueue // queued output; nil until the first time output is queued
	queued   int       // bytes in q
	events   uint32    // interest registered with epoll
	paused   bool      // Pause: no read interest
	delayed  bool      // waiting for Confirm: no read interest
	closing  bool      // no more Send
	draining bool      // Closed ran; flushing before the descriptor closes
	closed   bool      // descriptor closed
	reset    bool      // close with RST, dropping queued output
	full     bool      // above the high watermark
	over     bool      // queued output reached maxQueued (OverflowHandler told)
	owedFull bool      // BufferFull is owed: set with full, cleared when delivered on the loop
	corked   bool      // Cork: Send queues without writing until Uncork
	held     uint8     // nested runs waiting inside this connection's callback: no read interest

	notified bool // Closed has run (loop goroutine only)

	tls *tlsState // a TLS connection's state (tls_linux.go); nil for a plain one
}

// outQueue is a connection's queued output. Most connections never queue anything (their
// writes complete at once), so it is allocated the first time output must wait and kept from
// then on: an idle connection costs 32 bytes less than with the queue inline in Conn.
type outQueue struct {
	out    []outItem // out[0] (from outOff, for bytes) goes next
	outOff int
}

// outQ returns c's output queue, allocating it if needed. c.mu must be held.
func (c *Conn) outQ() *outQueue {
	if c.q == nil {
		c.q = new(outQueue)
	}
	return c.q
}

// outItem is one piece of queued output: a pooled byte chunk, or a segment of a file to
// send with sendfile(2).
type outItem struct {
	buf    []byte // filled bytes of a pooled chunk, or loaned bytes (loan)
	loan   bool   // buf is the caller's (SendLoaned) until the loop's next flush: never pooled
	fileFD int    // > 0: a file segment; the descriptor is owned and closed by the queue
	off    int64  // file offset of the next byte
	n      int64  // file bytes left
}

// ConnOptions are a connection's limits.
type ConnOptions struct {
	MaxQueued int  // bytes queued before Send fails with ErrOverflow (0 = unlimited)
	High, Low int  // watermarks; High 0 = MaxQueued
	Delayed   bool // register without read interest until Confirm
	// TLS makes the connection a TLS server connection with this configuration: Opened runs
	// after the handshake, Data gets plaintext, Send encrypts (tls_linux.go).
	TLS *tls.Config
	// HandshakeTimeout bounds the TLS handshake (0: DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration
}

// NewConn wraps an accepted descriptor. Return it from Handler.Accept.
func NewConn(fd int, owner any, o ConnOptions) *Conn {
	c := new(Conn)
	c.Init(fd, owner, o)
	return c
}

// Init sets up c, a zero Conn the caller allocated, as NewConn sets up the Conn it returns.
// It lets a server keep the Conn inside its own per-connection struct: one allocation, and
// the two states that every event of the connection touches on neighbouring cache lines.
// c must not have been used.
func (c *Conn) Init(fd int, owner any, o ConnOptions) {
	c.FD, c.Owner = fd, owner
	c.maxQueued, c.high, c.low, c.delayed = clamp32(o.MaxQueued), clamp32(o.High), clamp32(o.Low), o.Delayed
	if o.TLS != nil {
		c.tls = newTLSState(c, o.TLS, o.HandshakeTimeout)
	}
	if c.high <= 0 {
		c.high = c.maxQueued
	}
	if c.low > c.high {
		c.low = c.high
	}
}

// clamp32 bounds a byte count to what an int32 holds (2 GiB is past any queue limit).
func clamp32(n int) int32 { return int32(min(n, 1<<31-1)) }

// Loop returns the loop c belongs to.
func (c *Conn) Loop() *Loop { return c.loop }

func (c *Conn) wantEvents() uint32 {
	var ev uint32
	if !c.paused && (!c.delayed || c.tls != nil && !c.tls.established) && !c.draining && c.held == 0 {
		ev |= unix.EPOLLIN
	}
	if c.queued > 0 && !c.corked {
		ev |= unix.EPOLLOUT
	}
	return ev
}

// Cork makes Sends to c queue without writing until Uncork, which writes them all with one
// writev: the loop corks a connection while it delivers several frames from one read, so
// their replies leave in one system call instead of one each. Loop goroutine only.
func (c *Conn) Cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// Uncork ends Cork and flushes what was queued meanwhile. Loop goroutine only.
func (c *Conn) Uncork() {
	c.mu.Lock()
	c.corked = false
	c.mu.Unlock()
	c.loop.flush(c)
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
func (c *Conn) Send(p []byte) error { return c.send(p, false, false, false) }

// SendClosing is Send for a connection whose Closed callback is running: the bytes still go
// out (flushed before the descriptor closes) when the server closed it. Loop goroutine only.
func (c *Conn) SendClosing(p []byte) error { return c.send(p, true, false, false) }

// SendOver is Send that never fails for overflow: p is queued whole even past the limit. It is
// for a message that was already accepted elsewhere (a Send another process made, which
// returned before the message got here): dropping it would lose data its sender counts as
// sent. A queue at or past the limit is reported to the loop's OverflowHandler, so that
// senders elsewhere refuse further messages until it drains below the limit.
func (c *Conn) SendOver(p []byte) error { return c.send(p, false, true, false) }

// SendLoaned is SendOver for bytes the caller leaves unchanged until the connection's next
// flush (Uncork): on a corked connection they are queued by reference instead of copied, and
// the flush copies whatever of them the socket did not take. A master's reactor uses it for
// replies that lie in the pipe batch it is delivering. Loop goroutine only; on an uncorked or
// TLS connection it is SendOver.
func (c *Conn) SendLoaned(p []byte) error { return c.send(p, false, true, true) }

func (c *Conn) send(p []byte, closing, force, loan bool) error {
	if len(p) == 0 {
		return nil
	}
	if c.tls != nil {
		return c.sendTLS(p, closing, force)
	}
	c.mu.Lock()
	if c.closed || (c.closing && !closing) {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.queued == 0 && !c.corked {
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
	} else if !force && c.queued > 0 && c.maxQueued > 0 && c.queued+len(p) > int(c.maxQueued) {
		// (A corked connection with nothing queued yet takes p whole, as an uncorked one.)
		full := c.markFullLocked()
		c.mu.Unlock()
		if full {
			c.raiseFull()
		}
		return ErrOverflow
	}
	if loan && c.corked {
		c.loanLocked(p)
	} else {
		c.enqueueLocked(p)
	}
	full := c.queuedLocked()
	c.mu.Unlock()
	if full {
		c.raiseFull()
	}
	return nil
}

// markFullLocked records a Send refused for overflow: the connection is full, and it
// reports whether this is the crossing that owes a BufferFull. c.mu must be held.
func (c *Conn) markFullLocked() bool {
	full := !c.full
	c.full = true
	c.owedFull = c.owedFull || full
	return full
}

// queuedLocked runs after output was queued: it re-registers interest, marks the queue over
// its limit when it reached it, and reports whether the queue just reached the high
// watermark (BufferFull owed). c.mu must be held.
func (c *Conn) queuedLocked() bool {
	full := !c.full && c.high > 0 && c.queued >= int(c.high)
	if full {
		c.full = true
		c.owedFull = true
	}
	if !c.over && c.maxQueued > 0 && c.queued >= int(c.maxQueued) {
		c.over = true
		if oh := c.loop.oh; oh != nil {
			oh.Overflow(c, true)
		}
	}
	c.updateEventsLocked()
	return full
}

// drainedLocked runs after queued output was written: a queue that was at its limit and is
// now below it is no longer over. c.mu must be held.
func (c *Conn) drainedLocked() {
	if c.over && c.queued < int(c.maxQueued) {
		c.over = false
		if oh := c.loop.oh; oh != nil {
			oh.Overflow(c, false)
		}
	}
}

func (c *Conn) raiseFull() {
	if c.loop.OnLoop() {
		c.loop.deliverFull(c)
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
	q := c.outQ()
	for len(p) > 0 {
		if k := len(q.out); k > 0 && q.out[k-1].fileFD == 0 && !q.out[k-1].loan {
			tail := q.out[k-1].buf
			if room := cap(tail) - len(tail); room > 0 {
				n := copy(tail[len(tail):cap(tail)], p)
				q.out[k-1].buf = tail[:len(tail)+n]
				p = p[n:]
				continue
			}
		}
		size := chunkSize
		if len(p) > size {
			size = len(p)
		}
		q.out = append(q.out, outItem{buf: buffer.Get(size)[:0]})
	}
}

// Unloan copies the loaned pieces still queued (SendLoaned) without writing them: for a
// corked connection that will not be uncorked. Loop goroutine only.
func (c *Conn) Unloan() {
	c.mu.Lock()
	c.ownLoansLocked()
	c.mu.Unlock()
}

// loanLocked queues p by reference (SendLoaned). c.mu must be held.
func (c *Conn) loanLocked(p []byte) {
	c.queued += len(p)
	c.loaned = true
	q := c.outQ()
	q.out = append(q.out, outItem{buf: p, loan: true})
}

// ownLoansLocked replaces the loaned pieces still queued by copies of their own, so the
// lender may reuse its memory. c.mu must be held.
func (c *Conn) ownLoansLocked() {
	if !c.loaned {
		return
	}
	c.loaned = false
	q := c.q
	for i := range q.out {
		if it := &q.out[i]; it.loan {
			*it = outItem{buf: append(buffer.Get(len(it.buf))[:0], it.buf...)}
		}
	}
}

// writeQueuedLocked writes queued output (writev for bytes, sendfile for file segments) until
// the queue is empty or the socket is full. It returns the errno of a failed write (0 when
// the socket is merely full). iov is scratch space. c.mu must be held.
func (c *Conn) writeQueuedLocked(iov []unix.Iovec) unix.Errno {
	for c.queued > 0 {
		q := c.q // not nil: output is queued
		head := &q.out[0]
		if head.fileFD > 0 && c.tls != nil {
			if errno := c.encryptFileLocked(); errno != 0 {
				return errno
			}
			continue
		}
		if head.fileFD > 0 {
			n, err := unix.Sendfile(c.FD, head.fileFD, &head.off, int(min(head.n, 1<<30)))
			if n > 0 {
				head.n -= int64(n)
				c.queued -= n
				if head.n == 0 {
					c.popFileLocked()
				}
				continue
			}
			switch err {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return 0
			case nil:
				// The file ended before the length given to SendFile: the peer would wait
				// forever for the rest, so the connection fails.
				return unix.EIO
			}
			errno, _ := err.(unix.Errno)
			return errno
		}
		cnt := 0
		off := q.outOff
		for i := range q.out {
			if cnt == len(iov) || q.out[i].fileFD > 0 {
				break
			}
			p := q.out[i].buf[off:]
			off = 0
			iov[cnt].Base = &p[0]
			iov[cnt].SetLen(len(p))
			cnt++
		}
		var r uintptr
		var e unix.Errno
		if cnt == 1 {
			// One piece: write(2), which skips writev's copy and check of the vector.
			r, _, e = unix.Syscall(unix.SYS_WRITE, uintptr(c.FD), uintptr(unsafe.Pointer(iov[0].Base)), uintptr(iov[0].Len))
		} else {
			r, _, e = unix.Syscall(unix.SYS_WRITEV, uintptr(c.FD), uintptr(unsafe.Pointer(&iov[0])), uintptr(cnt))
		}
		clear(iov[:cnt])
		switch e {
		case 0:
			c.consumeLocked(int(r))
		case unix.EINTR:
		case unix.EAGAIN:
			return 0
		default:
			return e
		}
	}
	return 0
}

func (c *Conn) popFileLocked() {
	q := c.q
	unix.Close(q.out[0].fileFD)
	k := copy(q.out, q.out[1:])
	q.out[k] = outItem{}
	q.out = q.out[:k]
}

// consumeLocked drops n written bytes from the byte chunks at the head of the queue.
func (c *Conn) consumeLocked(n int) {
	c.queued -= n
	q := c.q
	drop := 0
	for n > 0 {
		rest := len(q.out[drop].buf) - q.outOff
		if n < rest {
			q.outOff += n
			break
		}
		n -= rest
		if !q.out[drop].loan {
			buffer.Put(q.out[drop].buf)
		}
		q.outOff = 0
		drop++
	}
	if drop > 0 {
		k := copy(q.out, q.out[drop:])
		clear(q.out[k:])
		q.out = q.out[:k]
	}
}

func (c *Conn) dropQueueLocked() {
	c.queued = 0
	c.loaned = false
	q := c.q
	if q == nil {
		return
	}
	for _, it := range q.out {
		if it.fileFD > 0 {
			unix.Close(it.fileFD)
		} else if !it.loan {
			buffer.Put(it.buf)
		}
	}
	clear(q.out)
	q.out = q.out[:0]
	q.outOff = 0
}

// SendFile queues n bytes of the file fileFD from offset off, sent with sendfile(2) after
// the output already queued (so it interleaves correctly with Send). The connection owns
// fileFD from then on and closes it when the segment is sent or the connection closes, also
// when SendFile fails. Errors are those of Send.
func (c *Conn) SendFile(fileFD int, off, n int64) error {
	c.mu.Lock()
	if c.closing || c.closed || c.tls != nil && !c.tls.established {
		c.mu.Unlock()
		unix.Close(fileFD)
		return ErrClosed
	}
	if c.queued > 0 && c.maxQueued > 0 && c.queued+int(n) > int(c.maxQueued) {
		full := c.markFullLocked()
		c.mu.Unlock()
		unix.Close(fileFD)
		if full {
			c.raiseFull()
		}
		return ErrOverflow
	}
	q := c.outQ()
	q.out = append(q.out, outItem{fileFD: fileFD, off: off, n: n})
	c.queued += int(n)
	var iov [8]unix.Iovec
	if errno := c.writeQueuedLocked(iov[:]); errno != 0 {
		c.closing = true
		c.mu.Unlock()
		c.loop.Post(Task{Op: opClose, Conn: c, Why: CloseError, Errno: errno})
		return ErrClosed
	}
	full := c.queuedLocked()
	c.mu.Unlock()
	if full {
		c.raiseFull()
	}
	return nil
}

// FlushWait writes c's queued output on the calling goroutine, waiting for the socket to
// drain, until nothing is queued (nil), the connection closes (ErrClosed) or the deadline
// passes (ErrTimeout). A zero deadline waits as long as the connection lives.
func (c *Conn) FlushWait(deadline time.Time) error {
	var iov [16]unix.Iovec
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return ErrClosed
		}
		if errno := c.writeQueuedLocked(iov[:]); errno != 0 {
			c.closing = true
			c.mu.Unlock()
			c.loop.Post(Task{Op: opClose, Conn: c, Why: CloseError, Errno: errno})
			return ErrClosed
		}
		c.drainedLocked()
		if c.queued == 0 {
			empty := c.full
			c.full = false
			op := opEmpty
			if empty && c.owedFull {
				// The BufferFull this BufferEmpty answers is still owed: deliver both, in order.
				c.owedFull = false
				op = opFullEmpty
			}
			c.updateEventsLocked()
			c.mu.Unlock()
			if empty {
				c.loop.Post(Task{Op: op, Conn: c})
			}
			return nil
		}
		fd := c.FD
		c.mu.Unlock()
		wait := 100
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return ErrTimeout
			}
			wait = int(min(left, 100*time.Millisecond)/time.Millisecond) + 1
		}
		// The descriptor may close (and its number be reused) meanwhile: poll then only
		// wakes early, and the next round sees c.closed.
		_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}, wait)
	}
}

// Close asks the loop to close c. With reset, queued output is dropped and the peer gets a
// RST; without, queued output is flushed first. Closed runs on the loop after the current
// batch of events. Close returns false when c is already closing.
func (c *Conn) Close(reset bool) bool { return c.close(reset, true) }

// CloseOnLoop is Close for the loop goroutine (a handler closing a connection): the close
// is queued without waking the loop, which runs it before it waits again. Loop goroutine
// only.
func (c *Conn) CloseOnLoop(reset bool) bool { return c.close(reset, false) }

func (c *Conn) close(reset, wake bool) bool {
	c.mu.Lock()
	if c.closing || c.closed {
		c.mu.Unlock()
		return false
	}
	c.closing = true
	c.reset = reset
	c.mu.Unlock()
	return c.loop.post(Task{Op: opClose, Conn: c, Why: CloseServer}, wake)
}

// Reset closes c at once with a RST, dropping its queued output, also when a graceful close
// is already flushing it (Close(false) earlier): Closed runs (if it has not yet), then the
// descriptor closes. It returns false when the descriptor is already closed.
func (c *Conn) Reset() bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.closing = true
	c.reset = true
	c.dropQueueLocked()
	c.mu.Unlock()
	return c.loop.Post(Task{Op: opClose, Conn: c, Why: CloseServer})
}

// Pause stops reading from c (its data waits in the kernel) until Resume.
func (c *Conn) Pause() { c.setPaused(true) }

// Resume starts reading from c again.
func (c *Conn) Resume() { c.setPaused(false) }

func (c *Conn) setPaused(v bool) {
	c.mu.Lock()
	c.paused = v
	c.updateEventsLocked()
	if !v {
		c.resumedLocked()
	}
	c.mu.Unlock()
}

// Confirm starts reading from a connection registered with ConnOptions.Delayed. It returns
// false when c was not waiting for it.
func (c *Conn) Confirm() bool {
	c.mu.Lock()
	was := c.delayed
	c.delayed = false
	c.updateEventsLocked()
	c.resumedLocked()
	c.mu.Unlock()
	return was
}

// Closing reports whether c is closing or closed.
func (c *Conn) Closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing || c.closed
}
