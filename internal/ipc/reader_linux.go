//go:build linux

package ipc

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Reader receives messages on one end of a pair. It is not safe for concurrent use: one
// goroutine (an event loop's) calls ReadBatch.
//
// The Reader does not own the file: it keeps it referenced, and the caller closes it after
// the last call has returned.
type Reader struct {
	f    *os.File
	fd   int
	c    *Counters
	slot int
	bufs []byte // Batch slots of slot bytes
	iov  []unix.Iovec
	msgs []unix.Mmsghdr
	asm  reassembler
}

// NewReader returns a Reader on f, an end of a pair from NewPair or Inherit. It allocates
// Config.Batch datagram buffers of HeaderSize+Config.MaxPayload bytes.
func NewReader(f *os.File, cfg Config) (*Reader, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	fd, err := fileFD(f)
	if err != nil {
		return nil, err
	}
	r := &Reader{
		f:    f,
		fd:   fd,
		c:    cfg.Counters,
		slot: HeaderSize + cfg.MaxPayload,
		iov:  make([]unix.Iovec, cfg.Batch),
		msgs: make([]unix.Mmsghdr, cfg.Batch),
		asm:  newReassembler(cfg),
	}
	r.bufs = make([]byte, cfg.Batch*r.slot)
	for i := range r.msgs {
		r.iov[i].Base = &r.bufs[i*r.slot]
		r.iov[i].SetLen(r.slot)
		r.msgs[i].Hdr.Iov = &r.iov[i]
		r.msgs[i].Hdr.SetIovlen(1)
	}
	return r, nil
}

// FD returns the socket's descriptor, for registering EPOLLIN.
func (r *Reader) FD() int { return r.fd }

// Counters returns the counters this Reader updates.
func (r *Reader) Counters() *Counters { return r.c }

// ReadBatch receives the datagrams waiting, up to Config.Batch, with one recvmmsg, and calls
// fn for each message they complete, in arrival order. The header passed to fn has Len set
// to the message's payload length and both chunk flags. payload is the Reader's buffer (or a
// pooled reassembly buffer): it is valid only until fn returns, and fn must copy what it
// keeps. ReadBatch itself allocates nothing once the pools are warm.
//
// n is the number of datagrams received, 0 when none was waiting (EAGAIN is not an error).
// Garbage and incomplete messages are dropped, counted and reported to Config.OnDrop; they
// never make ReadBatch fail. err is a receive error other than EAGAIN.
func (r *Reader) ReadBatch(fn func(h Header, payload []byte)) (n int, err error) {
	return r.ReadBatchMax(fn, 0)
}

// ReadBatchMax is ReadBatch receiving at most limit datagrams (limit <= 0: Config.Batch):
// the datagrams after them stay in the socket for the next read, or for another reader of
// the same socket.
func (r *Reader) ReadBatchMax(fn func(h Header, payload []byte), limit int) (n int, err error) {
	msgs := r.msgs
	if limit > 0 && limit < len(msgs) {
		msgs = msgs[:limit]
	}
	n, errno := recvmmsg(r.fd, msgs)
	r.c.RecvSyscalls.Add(1)
	if errno != 0 {
		if errno == unix.EAGAIN {
			return 0, nil
		}
		return 0, os.NewSyscallError("recvmmsg", errno)
	}
	r.c.DgramsRecv.Add(uint64(n))
	for i := range n {
		m := &r.msgs[i]
		d := r.bufs[i*r.slot : i*r.slot+int(m.Len)]
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			var h Header
			if len(d) >= HeaderSize {
				h = decodeHeader(d)
			}
			r.asm.drop(h, ErrTruncated)
			continue
		}
		r.asm.feed(d, fn)
	}
	return n, nil
}

// WaitReadable waits with poll(2) until a datagram is waiting or the deadline passes
// (ErrTimeout; the zero deadline waits for ever). For processes without an event loop.
func (r *Reader) WaitReadable(deadline time.Time) error {
	return waitFD(r.fd, unix.POLLIN, deadline)
}

// Release returns the buffers of partly received messages to their pool. Call it when the
// Reader is no longer used; it does not close the file.
func (r *Reader) Release() {
	r.asm.close()
}
