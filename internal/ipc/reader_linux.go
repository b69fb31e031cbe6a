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
// ReadBatch may be called again from inside its own fn (a callback that waits for a reply on
// the same socket): the inner call first delivers the messages the outer calls received and
// have not delivered yet, in order, and only then receives more, into buffers of its own (the
// outer fn's payload stays intact). So one Reader serves the socket whatever the nesting, and
// a message of several datagrams is never split between two readers.
//
// The Reader does not own the file: it keeps it referenced, and the caller closes it after
// the last call has returned.
type Reader struct {
	f     *os.File
	fd    int
	c     *Counters
	slot  int
	batch int
	sets  []*recvSet  // by nesting depth: the buffers of one recvmmsg
	stack []*received // the batches of the ReadBatch calls in progress, outermost first
	asm   reassembler
}

// recvSet is the buffers of one recvmmsg: Batch slots of slot bytes.
type recvSet struct {
	bufs []byte
	iov  []unix.Iovec
	msgs []unix.Mmsghdr
	st   received
}

// received is what one ReadBatch call received and is delivering: datagrams next..n-1 of
// its set are still to feed, and the records of cur from off.
type received struct {
	set  *recvSet
	n    int
	next int
	cur  []byte
	off  int
}

func newRecvSet(batch, slot int) *recvSet {
	rs := &recvSet{
		bufs: make([]byte, batch*slot),
		iov:  make([]unix.Iovec, batch),
		msgs: make([]unix.Mmsghdr, batch),
	}
	for i := range rs.msgs {
		rs.iov[i].Base = &rs.bufs[i*slot]
		rs.iov[i].SetLen(slot)
		rs.msgs[i].Hdr.Iov = &rs.iov[i]
		rs.msgs[i].Hdr.SetIovlen(1)
	}
	rs.st.set = rs
	return rs
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
		f:     f,
		fd:    fd,
		c:     cfg.Counters,
		slot:  HeaderSize + cfg.MaxPayload,
		batch: cfg.Batch,
		asm:   newReassembler(cfg),
	}
	r.sets = []*recvSet{newRecvSet(r.batch, r.slot)}
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
// the datagrams after them stay in the socket for the next read.
//
// Called from inside fn (see Reader), it delivers what the calls in progress received and
// have not delivered yet, and returns their number without receiving (n counts datagrams
// not fed yet when the call began); when there are none, it receives as a first call does.
func (r *Reader) ReadBatchMax(fn func(h Header, payload []byte), limit int) (n int, err error) {
	if len(r.stack) > 0 {
		if n = r.Pending(); n > 0 {
			for _, st := range r.stack {
				for r.step(st, fn) {
				}
			}
			return n, nil
		}
	}
	depth := len(r.stack)
	if depth == len(r.sets) {
		r.sets = append(r.sets, newRecvSet(r.batch, r.slot))
	}
	rs := r.sets[depth]
	msgs := rs.msgs
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
	st := &rs.st
	st.n, st.next, st.cur, st.off = n, 0, nil, 0
	r.stack = append(r.stack, st)
	defer func() { r.stack = r.stack[:len(r.stack)-1] }() // fn may panic
	for r.step(st, fn) {
	}
	return n, nil
}

// Pending returns the number of datagrams that the ReadBatch calls in progress (fn runs)
// received and have not fed yet: a ReadBatch from inside fn delivers their messages first,
// without waiting for the socket.
func (r *Reader) Pending() int {
	n := 0
	for _, st := range r.stack {
		n += st.n - st.next
		if st.off < len(st.cur) {
			n++
		}
	}
	return n
}

// step feeds the next record of st, moving st past it before fn runs (a nested call goes
// on from there). It returns false when st has nothing left.
func (r *Reader) step(st *received, fn func(h Header, payload []byte)) bool {
	for st.off >= len(st.cur) {
		if st.next >= st.n {
			st.cur, st.off = nil, 0
			return false
		}
		i := st.next
		st.next++
		m := &st.set.msgs[i]
		d := st.set.bufs[i*r.slot : i*r.slot+int(m.Len)]
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			var h Header
			if len(d) >= HeaderSize {
				h = decodeHeader(d)
			}
			r.asm.drop(h, ErrTruncated)
			continue
		}
		if _, h, err := checkDatagram(d); err != nil {
			r.asm.drop(h, err)
			continue
		}
		st.cur, st.off = d, 0
	}
	h := decodeHeader(st.cur[st.off:])
	end := st.off + HeaderSize + int(h.Len)
	body := st.cur[st.off+HeaderSize : end]
	st.off = end
	r.asm.record(h, body, fn)
	return true
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
