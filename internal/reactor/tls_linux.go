//go:build linux

package reactor

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/buffer"
)

// TLS connections. A connection accepted with ConnOptions.TLS is terminated by Go's
// crypto/tls, driven from the loop:
//
//	handshake  a short-lived goroutine runs tls.Conn.Handshake over a blocking adapter; the
//	           loop reads the socket and feeds it the ciphertext (hsFeed); the handshake's
//	           own writes go straight to the socket (or the output queue) under c.mu. The
//	           goroutine ends with the handshake (done, failed or timed out) and posts the
//	           result to the loop: Opened runs then, or, on failure, TLSHandler.HandshakeFailed
//	           and the descriptor closes (no Opened, no Closed).
//	reading    after the handshake no goroutine is left: the loop reads ciphertext, hands it
//	           to the adapter, and calls tls.Conn.Read until the adapter has nothing left. The
//	           adapter then says "would block" with a net.Error whose Temporary() is true,
//	           which crypto/tls does not make sticky: a partial record stays inside tls.Conn
//	           until more arrives.
//	writing    Send encrypts with tls.Conn.Write under c.mu; the adapter writes the records to
//	           the socket, or queues them as any output. Every call into tls.Conn after the
//	           handshake holds c.mu, so the lock order is c.mu, then crypto/tls's own locks.
//	           SendFile's segments are read and encrypted chunk by chunk as the queue drains
//	           (no sendfile(2): the kernel cannot encrypt them).
//
// Handshake-time sends are refused (ErrClosed): the session is not open before Opened.

// TLSHandler is implemented by a Handler that serves TLS connections: HandshakeFailed is
// called on the loop goroutine, instead of Opened and Closed, for a connection whose handshake
// failed (bad bytes, a bad certificate, the peer gone, the handshake timeout) or that was
// closed while handshaking; the descriptor closes right after it returns.
type TLSHandler interface {
	HandshakeFailed(c *Conn, err error)
}

// DefaultHandshakeTimeout bounds a TLS handshake when ConnOptions.HandshakeTimeout is 0.
const DefaultHandshakeTimeout = 10 * time.Second

// maxHandshakeInput is the most ciphertext a handshake may have waiting (not yet taken by
// crypto/tls): a peer that sends more before the handshake ends is cut off.
const maxHandshakeInput = 256 << 10

// tlsFileChunk is how much of a SendFile segment is read and encrypted at a time.
const tlsFileChunk = 64 << 10

// ErrHandshakeTimeout is the error a TLS handshake fails with when it does not finish within
// its timeout.
var ErrHandshakeTimeout = errors.New("reactor: TLS handshake timed out")

// ErrAborted is the error HandshakeFailed gets for a connection the server closed (Close, the
// loop stopping) before its handshake ended.
var ErrAborted = errors.New("reactor: closed by the server during the TLS handshake")

// errWouldBlock is what the adapter returns when the loop has no more ciphertext for
// crypto/tls: a temporary net.Error, which crypto/tls does not keep as the connection's error.
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "reactor: no more TLS input for now" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// tlsState is a TLS connection's state, and the net.Conn crypto/tls reads from and writes to.
type tlsState struct {
	c       *Conn
	tc      *tls.Conn
	timeout time.Duration

	// Guarded by c.mu.
	hs          *handshake // until the handshake's result reached the loop
	established bool       // the handshake succeeded and Opened ran (or runs)
	stalled     bool       // ciphertext waits in in (owned) until reading resumes
	capture     bool       // Write appends to sink instead of writing (a SendFile chunk)
	sink        []byte
	werr        unix.Errno // a write of ciphertext to the socket failed

	aborted bool // HandshakeFailed ran: no Finished (loop only)
	in      []byte
}

// handshake is what the loop and the handshake goroutine share.
type handshake struct {
	mu      sync.Mutex
	pending []byte // ciphertext the loop read, not yet taken
	eof     bool   // the peer closed
	aborted bool   // the loop closed the connection
	sig     chan struct{}
}

func newTLSState(c *Conn, cfg *tls.Config, timeout time.Duration) *tlsState {
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	t := &tlsState{c: c, timeout: timeout, hs: &handshake{sig: make(chan struct{}, 1)}}
	t.tc = tls.Server(t, cfg)
	return t
}

// IsTLS reports whether c is a TLS connection.
func (c *Conn) IsTLS() bool { return c.tls != nil }

// PeerCertificates returns the certificates the TLS peer presented (leaf first), nil for a
// plain connection or a peer that sent none.
func (c *Conn) PeerCertificates() []*x509.Certificate {
	if c.tls == nil {
		return nil
	}
	c.mu.Lock()
	ok := c.tls.established
	c.mu.Unlock()
	if !ok {
		return nil
	}
	return c.tls.tc.ConnectionState().PeerCertificates
}

// ServerName returns the server name the TLS peer asked for (SNI), "" for none.
func (c *Conn) ServerName() string {
	if c.tls == nil {
		return ""
	}
	c.mu.Lock()
	ok := c.tls.established
	c.mu.Unlock()
	if !ok {
		return ""
	}
	return c.tls.tc.ConnectionState().ServerName
}

// ---- the net.Conn crypto/tls sees ----

// Read gives crypto/tls ciphertext: during the handshake it waits for the loop to feed some
// (or the timeout); after it, it returns what the loop read, then errWouldBlock.
func (t *tlsState) Read(b []byte) (int, error) {
	if hs := t.hs; hs != nil && !t.established {
		return hs.read(b)
	}
	if len(t.in) == 0 {
		return 0, errWouldBlock
	}
	n := copy(b, t.in)
	t.in = t.in[n:]
	return n, nil
}

// Write takes records from crypto/tls. After the handshake its caller holds c.mu.
func (t *tlsState) Write(b []byte) (int, error) {
	c := t.c
	if !t.established {
		// The handshake goroutine: c.mu is not held.
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || c.closing {
			return 0, net.ErrClosed
		}
		t.writeLocked(b)
		if t.werr != 0 {
			return 0, t.werr
		}
		c.updateEventsLocked()
		return len(b), nil
	}
	if t.capture {
		t.sink = append(t.sink, b...)
		return len(b), nil
	}
	t.writeLocked(b)
	if t.werr != 0 {
		return 0, t.werr
	}
	return len(b), nil
}

// writeLocked writes ciphertext to the socket, queueing what it does not take (or all of it
// when output is already queued). c.mu must be held.
func (t *tlsState) writeLocked(b []byte) {
	c := t.c
	if c.closed {
		t.werr = unix.EBADF
		return
	}
	if c.queued == 0 && !c.corked {
		n, err := writeFull(c.FD, b)
		if n == len(b) {
			return
		}
		if err != nil && err != unix.EAGAIN {
			t.werr, _ = err.(unix.Errno)
			if t.werr == 0 {
				t.werr = unix.EIO
			}
			return
		}
		b = b[n:]
	}
	c.enqueueLocked(b)
}

func (t *tlsState) Close() error                     { return nil }
func (t *tlsState) LocalAddr() net.Addr              { return tlsAddr{} }
func (t *tlsState) RemoteAddr() net.Addr             { return tlsAddr{} }
func (t *tlsState) SetDeadline(time.Time) error      { return nil }
func (t *tlsState) SetReadDeadline(time.Time) error  { return nil }
func (t *tlsState) SetWriteDeadline(time.Time) error { return nil }
func (h *handshake) signal()                         { notify(h.sig) }
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
func (tlsAddr) Network() string { return "tcp" }
func (tlsAddr) String() string  { return "reactor-tls" }

type tlsAddr struct{}

// read is the handshake goroutine's blocking read.
func (h *handshake) read(b []byte) (int, error) {
	for {
		h.mu.Lock()
		if h.aborted {
			h.mu.Unlock()
			return 0, net.ErrClosed
		}
		if len(h.pending) > 0 {
			n := copy(b, h.pending)
			h.pending = h.pending[n:]
			if len(h.pending) == 0 {
				h.pending = nil
			}
			h.mu.Unlock()
			return n, nil
		}
		if h.eof {
			h.mu.Unlock()
			return 0, io.EOF
		}
		h.mu.Unlock()
		<-h.sig
	}
}

// feed hands the handshake goroutine ciphertext the loop read; false when too much waits.
func (h *handshake) feed(p []byte) bool {
	h.mu.Lock()
	if len(h.pending)+len(p) > maxHandshakeInput {
		h.mu.Unlock()
		return false
	}
	h.pending = append(h.pending, p...)
	h.mu.Unlock()
	h.signal()
	return true
}

func (h *handshake) setEOF() {
	h.mu.Lock()
	h.eof = true
	h.mu.Unlock()
	h.signal()
}

func (h *handshake) abort() {
	h.mu.Lock()
	h.aborted = true
	h.mu.Unlock()
	h.signal()
}

// ---- the loop's side ----

// startHandshake runs c's handshake on a goroutine that ends with it. Loop goroutine only.
func (l *Loop) startHandshake(c *Conn) {
	t := c.tls
	hs := t.hs
	go func() {
		timer := time.AfterFunc(t.timeout, func() {
			hs.mu.Lock()
			if !hs.aborted {
				hs.aborted = true
				hs.eof = true
			}
			hs.mu.Unlock()
			hs.signal()
		})
		err := t.tc.Handshake()
		if !timer.Stop() && err != nil {
			err = ErrHandshakeTimeout
		}
		l.Post(Task{Fn: func() { l.handshakeDone(c, err) }})
	}()
}

// handshakeDone runs on the loop with the handshake's result.
func (l *Loop) handshakeDone(c *Conn, err error) {
	if c.closed || c.notified {
		return // already closed (and reported) by the loop
	}
	if err != nil {
		l.abortTLS(c, err)
		return
	}
	t := c.tls
	hs := t.hs
	hs.mu.Lock()
	rest := hs.pending
	hs.pending = nil
	hs.mu.Unlock()
	c.mu.Lock()
	t.established = true
	t.hs = nil
	t.in = rest
	// Application data may have come with the end of the handshake: crypto/tls may hold it
	// already (or it is in rest), and no readiness report will come for it.
	t.stalled = true
	c.updateEventsLocked()
	c.mu.Unlock()
	l.active = append(l.active, c)
	l.h.Opened(c)
	l.active = l.active[:len(l.active)-1]
	l.resumeTLS(c)
}

// abortTLS ends a connection whose handshake did not complete: HandshakeFailed, then the
// descriptor closes. Loop goroutine only.
func (l *Loop) abortTLS(c *Conn, err error) {
	if c.notified || c.closed {
		return
	}
	t := c.tls
	c.notified = true
	t.aborted = true
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	t.hs.abort()
	if th, ok := l.h.(TLSHandler); ok {
		th.HandshakeFailed(c, err)
	}
	l.finalClose(c)
}

// tlsEvent reads a TLS connection's socket. Loop goroutine only.
func (l *Loop) tlsEvent(c *Conn) {
	t := c.tls
	for {
		n, err := unix.Read(c.FD, l.buf)
		if err == unix.EINTR {
			continue
		}
		switch {
		case n > 0:
			c.mu.Lock()
			hs := t.hs
			c.mu.Unlock()
			if hs != nil {
				if !hs.feed(l.buf[:n]) {
					l.abortTLS(c, errors.New("reactor: too much data before the TLS handshake ended"))
				}
				return
			}
			t.in = l.buf[:n]
			l.driveTLS(c)
		case n == 0 && err == nil:
			c.mu.Lock()
			hs := t.hs
			c.mu.Unlock()
			if hs != nil {
				hs.setEOF() // the goroutine fails with EOF and reports it
				c.mu.Lock()
				c.paused = true // no more read interest: the socket stays readable at EOF
				c.updateEventsLocked()
				c.mu.Unlock()
				return
			}
			l.closeConn(c, ClosePeer, 0)
			l.finalClose(c)
		case err == unix.EAGAIN:
		default:
			errno, _ := err.(unix.Errno)
			l.closeConn(c, CloseError, errno)
			l.finalClose(c)
		}
		return
	}
}

// driveTLS decrypts what crypto/tls can from the ciphertext in t.in (and what it keeps) and
// delivers the plaintext to Data, until the input runs out, the connection closes, or it stops
// reading (Pause, Confirm pending): then the rest waits (stalled) for resumeTLS.
func (l *Loop) driveTLS(c *Conn) {
	t := c.tls
	for {
		if l.tbuf == nil {
			l.tbuf = make([]byte, len(l.buf))
			if l.depth > 0 {
				l.nest[l.depth-1].tbuf = l.tbuf
			}
		}
		buf := l.tbuf
		off := 0
		var rerr error
		c.mu.Lock()
		for off < len(buf) {
			n, err := t.tc.Read(buf[off:])
			off += n
			if err != nil {
				rerr = err
				break
			}
		}
		werr := t.werr
		if c.queued > 0 {
			c.updateEventsLocked() // crypto/tls answered something (a key update)
		}
		c.mu.Unlock()
		if off > 0 && !c.notified {
			l.active = append(l.active, c)
			l.h.Data(c, buf[:off])
			l.active = l.active[:len(l.active)-1]
		}
		if c.notified || c.closed {
			t.in = nil
			return
		}
		if werr != 0 {
			l.closeConn(c, CloseError, werr)
			l.finalClose(c)
			return
		}
		switch {
		case rerr == nil:
			// The buffer filled: more may wait.
		case errors.Is(rerr, errWouldBlock):
			return
		case rerr == io.EOF:
			l.closeConn(c, ClosePeer, 0)
			l.finalClose(c)
			return
		default:
			// A broken record, a bad MAC, an alert: the connection fails.
			l.closeConn(c, CloseError, unix.EPROTO)
			l.finalClose(c)
			return
		}
		c.mu.Lock()
		reading := c.wantEvents()&unix.EPOLLIN != 0 || c.held > 0
		if !reading {
			t.in = append([]byte(nil), t.in...) // l.buf is the loop's: keep a copy
			t.stalled = true
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// resumeTLS delivers the input a TLS connection kept while it was not reading. Loop goroutine
// only.
func (l *Loop) resumeTLS(c *Conn) {
	if c.closed || c.notified {
		return
	}
	c.mu.Lock()
	t := c.tls
	if !t.stalled || c.wantEvents()&unix.EPOLLIN == 0 {
		c.mu.Unlock()
		return
	}
	t.stalled = false
	c.mu.Unlock()
	l.driveTLS(c)
}

// resumedLocked runs after c started reading again (Resume, Confirm): a TLS connection with
// kept input has it delivered by the loop. c.mu must be held.
func (c *Conn) resumedLocked() {
	if c.tls != nil && c.tls.stalled && c.loop != nil && !c.closed {
		l := c.loop
		l.Post(Task{Fn: func() { l.resumeTLS(c) }})
	}
}

// sendTLS is Send for a TLS connection: p is encrypted whole, under c.mu.
func (c *Conn) sendTLS(p []byte, closing, force bool) error {
	c.mu.Lock()
	t := c.tls
	if c.closed || (c.closing && !closing) || !t.established {
		c.mu.Unlock()
		return ErrClosed
	}
	if !force && c.queued > 0 && c.maxQueued > 0 && c.queued+len(p) > int(c.maxQueued) {
		full := c.markFullLocked()
		c.mu.Unlock()
		if full {
			c.raiseFull()
		}
		return ErrOverflow
	}
	before := c.queued
	_, err := t.tc.Write(p)
	if err != nil || t.werr != 0 {
		errno := t.werr
		if errno == 0 {
			errno = unix.EIO
		}
		c.closing = true
		c.mu.Unlock()
		c.loop.Post(Task{Op: opClose, Conn: c, Why: CloseError, Errno: errno})
		return ErrClosed
	}
	full := false
	if c.queued != before {
		full = c.queuedLocked()
	}
	c.mu.Unlock()
	if full {
		c.raiseFull()
	}
	return nil
}

// encryptFileLocked reads the next chunk of the file segment at the head of c's queue and puts
// its ciphertext in front of it. c.mu must be held.
func (c *Conn) encryptFileLocked() unix.Errno {
	t := c.tls
	q := c.q
	head := &q.out[0]
	k := int(min(head.n, tlsFileChunk))
	plain := buffer.Get(k)
	var n int
	for {
		var err error
		n, err = unix.Pread(head.fileFD, plain[:k], head.off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			buffer.Put(plain)
			errno, _ := err.(unix.Errno)
			return errno
		}
		break
	}
	if n <= 0 {
		// The file ended before the length given to SendFile.
		buffer.Put(plain)
		return unix.EIO
	}
	head.off += int64(n)
	head.n -= int64(n)
	c.queued -= n
	if head.n == 0 {
		c.popFileLocked()
	}
	t.sink = buffer.Get(n + n/16 + 1024)[:0]
	t.capture = true
	_, err := t.tc.Write(plain[:n])
	t.capture = false
	buffer.Put(plain)
	ct := t.sink
	t.sink = nil
	if err != nil {
		buffer.Put(ct)
		return unix.EIO
	}
	q.out = append(q.out, outItem{})
	copy(q.out[1:], q.out)
	q.out[0] = outItem{buf: ct}
	q.outOff = 0
	c.queued += len(ct)
	return 0
}

// closeNotifyLocked sends a TLS close_notify before a graceful close. c.mu must be held.
func (c *Conn) closeNotifyLocked() {
	if t := c.tls; t != nil && t.established && !c.closed && !c.reset {
		_ = t.tc.CloseWrite()
	}
}

// closeError describes why a handshaking connection was closed.
func closeError(why CloseReason, errno unix.Errno) error {
	switch why {
	case ClosePeer:
		return io.EOF
	case CloseError:
		if errno != 0 {
			return errno
		}
		return errors.New("reactor: connection failed")
	}
	return ErrAborted
}
