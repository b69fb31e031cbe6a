//go:build linux

package ipc

import (
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/sys"
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
//
// A message sent with a descriptor ([Writer.WriteFD]) brings a descriptor of the Reader's
// process: fn takes it with [Reader.TakeFD], or the Reader closes it when fn returns. A
// descriptor that comes with a datagram that cannot carry one (several records, a chunk,
// more than one descriptor) is closed and the datagram dropped (ErrMalformed); so is every
// descriptor of a datagram the Reader drops or never delivers (fn panicked).
type Reader struct {
	f     *os.File
	fd    int
	c     *Counters
	slot  int
	batch int
	sets  []*recvSet  // by nesting depth: the buffers of one recvmmsg
	stack []*received // the batches of the ReadBatch calls in progress, outermost first
	asm   reassembler
	held  int       // the descriptor of the message fn is being given (TakeFD), or -1
	area  *recvArea // Config.Area: where the first-level batches are received, or nil
}

// recvSet is the buffers of one recvmmsg: Batch slots of slot bytes, and a control buffer
// per slot for the descriptors a datagram brings.
type recvSet struct {
	bufs []byte
	ctl  []byte
	iov  []unix.Iovec
	msgs []unix.Mmsghdr
	st   received
	area *recvArea // bufs lie in it (the first-level set of a Reader with an Area)
}

// received is what one ReadBatch call received and is delivering: datagrams next..n-1 of
// its set are still to feed, and the records of cur from off; fd is the descriptor that
// came with cur (-1: none), not yet given to fn.
type received struct {
	set  *recvSet
	n    int
	next int
	cur  []byte
	off  int
	fd   int
	pid  int32 // the sender's pid of cur (0: unknown)
	idx  int   // cur's datagram in set
	// resumed: the datagrams were received by a previous Reader on the same Area; what the
	// kernel said of each is in the Area.
	resumed bool
}

// ctlSize is the control buffer of one datagram.
var ctlSize = sys.ControlSpace()

// newRecvSet makes the buffers of one recvmmsg: in a, or new ones when a is nil. In an area
// only the pointers are set (they are this process's addresses): what a dead Reader's
// recvmmsg recorded there stays for Resume.
func newRecvSet(batch, slot int, a *recvArea) *recvSet {
	rs := &recvSet{area: a}
	if a != nil {
		rs.bufs, rs.ctl, rs.iov, rs.msgs = a.bufs, a.ctl, a.iov, a.msgs
	} else {
		rs.bufs = make([]byte, batch*slot)
		rs.ctl = make([]byte, batch*ctlSize)
		rs.iov = make([]unix.Iovec, batch)
		rs.msgs = make([]unix.Mmsghdr, batch)
	}
	for i := range rs.msgs {
		rs.iov[i].Base = &rs.bufs[i*slot]
		rs.iov[i].SetLen(slot)
		rs.msgs[i].Hdr.Iov = &rs.iov[i]
		rs.msgs[i].Hdr.SetIovlen(1)
		rs.msgs[i].Hdr.Control = &rs.ctl[i*ctlSize]
	}
	rs.st.set = rs
	rs.st.fd = -1
	return rs
}

// control returns what came with datagram i of rs besides its bytes (descriptors, the
// sender's credentials): the caller owns the descriptors.
func (rs *recvSet) control(i int) sys.Control {
	n := int(rs.msgs[i].Hdr.Controllen)
	if n == 0 {
		return sys.Control{}
	}
	return sys.ParseControl(rs.ctl[i*ctlSize : i*ctlSize+min(n, ctlSize)])
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
		held:  -1,
	}
	if cfg.Area != nil {
		if r.area, err = newArea(cfg.Area, r.batch, r.slot); err != nil {
			return nil, err
		}
	}
	r.sets = []*recvSet{newRecvSet(r.batch, r.slot, r.area)}
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
		r.sets = append(r.sets, newRecvSet(r.batch, r.slot, nil))
	}
	rs := r.sets[depth]
	msgs := rs.msgs
	if limit > 0 && limit < len(msgs) {
		msgs = msgs[:limit]
	}
	for i := range msgs {
		msgs[i].Hdr.SetControllen(ctlSize) // the kernel wrote the last read's length there
	}
	if rs.area != nil {
		rs.area.receiving(len(msgs))
	}
	n, errno := recvmmsg(r.fd, msgs)
	r.c.RecvSyscalls.Add(1)
	if errno != 0 {
		if rs.area != nil {
			rs.area.received(0)
		}
		if errno == unix.EAGAIN {
			return 0, nil
		}
		return 0, os.NewSyscallError("recvmmsg", errno)
	}
	r.c.DgramsRecv.Add(uint64(n))
	if rs.area != nil {
		rs.area.received(n)
	}
	st := &rs.st
	st.n, st.next, st.cur, st.off, st.fd, st.resumed = n, 0, nil, 0, -1, false
	r.stack = append(r.stack, st)
	defer r.pop(st) // fn may panic
	for r.step(st, fn) {
	}
	if rs.area != nil {
		rs.area.done()
	}
	return n, nil
}

// Resume delivers, before the socket is read, what a previous Reader on the same Area (a
// process that died) received and did not deliver: the messages after the one it was
// handing to fn when it died. That one is lost (its header is returned, with lost true)
// unless redeliver, asked with its header, returns true: it is then given to fn again, so
// that it is delivered at least once. Descriptors that came with those datagrams died with
// that process: such a message is dropped (ErrMalformed). Without an Area, or with nothing
// left there, Resume does nothing. Call it before the first ReadBatch.
func (r *Reader) Resume(fn func(h Header, payload []byte), redeliver func(h Header) bool) (h Header, lost bool) {
	a := r.area
	if a == nil || len(r.stack) > 0 {
		return Header{}, false
	}
	n := a.left(r.batch)
	if n == 0 {
		a.done()
		return Header{}, false
	}
	rs := r.sets[0]
	st := &rs.st
	st.n, st.next, st.cur, st.off, st.fd, st.resumed = n, 0, nil, 0, -1, true
	if cur, off := int(a.hdr.cur.Load()), int(a.hdr.off.Load()); cur >= 0 && cur < n {
		// The record in hand: skip the ones before it in its datagram, and it too unless
		// it is to be delivered again.
		st.next = cur + 1
		if r.open(st, cur) {
			for st.off < off && st.off < len(st.cur) {
				st.off += HeaderSize + int(decodeHeader(st.cur[st.off:]).Len)
			}
			switch {
			case st.off != off:
				r.asm.drop(Header{}, errResume) // not a record's start: the rest of it is dropped
				st.cur, st.off = nil, 0
			case st.off < len(st.cur):
				if h = decodeHeader(st.cur[st.off:]); redeliver == nil || !redeliver(h) {
					lost = true
					st.off += HeaderSize + int(h.Len)
				}
			}
		}
	}
	r.stack = append(r.stack, st)
	defer r.pop(st)
	for r.step(st, fn) {
	}
	a.done()
	return h, lost
}

// pop ends a ReadBatch call: st is done, or abandoned by a panic in fn, and the descriptors
// of the datagrams it did not deliver are closed.
func (r *Reader) pop(st *received) {
	r.stack = r.stack[:len(r.stack)-1]
	if st.fd >= 0 {
		unix.Close(st.fd)
		st.fd = -1
	}
	for i := st.next; i < st.n; i++ {
		c := st.set.control(i)
		c.CloseFDs()
	}
	st.next = st.n
}

// SenderPID returns the pid of the process that sent the message fn is handling, as the
// kernel tells it (SCM_CREDENTIALS on a socket with SO_PASSCRED, which NewPair sets), or 0
// when it is not known (a socket made otherwise). A process cannot claim another pid
// without CAP_SYS_ADMIN: unlike the header's SrcWorker, it tells the processes of a server
// apart. Call it only from fn.
func (r *Reader) SenderPID() int32 { return r.asm.pid }

// TakeFD returns the descriptor that came with the message fn is handling (sent by
// [Writer.WriteFD]), or -1 when it brought none. The caller owns it and must close it; a
// second call returns -1. A descriptor fn does not take is closed when fn returns. Call it
// only from fn, before any nested ReadBatch.
func (r *Reader) TakeFD() int {
	fd := r.held
	r.held = -1
	return fd
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

// Stable reports whether payload, handed to the function of the ReadBatch now running, lies
// in the datagrams that call received (not in a reassembled message's buffer): it then stays
// unchanged until the next ReadBatch, so the caller may keep a reference to it until then
// instead of a copy.
func (r *Reader) Stable(payload []byte) bool {
	if len(r.stack) == 0 || len(payload) == 0 {
		return false
	}
	bufs := r.stack[len(r.stack)-1].set.bufs
	if len(bufs) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(bufs)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(payload)))
	return p >= lo && p+uintptr(len(payload)) <= lo+uintptr(len(bufs))
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
		r.open(st, i)
	}
	h := decodeHeader(st.cur[st.off:])
	if a := st.set.area; a != nil {
		a.handing(st.idx, st.off) // should this process die in fn, this record was in hand
	}
	end := st.off + HeaderSize + int(h.Len)
	body := st.cur[st.off+HeaderSize : end]
	st.off = end
	outerPID := r.asm.pid // a nested call: the outer fn's SenderPID is its own again after
	r.asm.pid = st.pid
	if st.fd >= 0 || r.held >= 0 {
		// A message with a descriptor, or any message given to fn while an outer fn
		// holds one (nested ReadBatch): TakeFD must answer for this message alone.
		fd := st.fd
		st.fd = -1
		r.deliverFD(h, body, fn, fd)
	} else {
		r.asm.record(h, body, fn)
	}
	r.asm.pid = outerPID
	return true
}

// open makes datagram i of st's set the one to deliver (st.cur from offset 0), or drops it
// (false): a datagram that does not check out, or brings descriptors it cannot carry.
func (r *Reader) open(st *received, i int) bool {
	var d []byte
	var ctl sys.Control
	trunc, fds := false, false
	if st.resumed {
		// What a dead Reader's recvmmsg recorded. Descriptors that came with a datagram
		// were the dead process's: their numbers mean nothing here, and are never closed.
		m := &st.set.msgs[i]
		d = st.set.bufs[i*r.slot : i*r.slot+min(int(m.Len), r.slot)]
		trunc = m.Hdr.Flags&unix.MSG_TRUNC != 0
		if m.Hdr.Controllen != 0 {
			c := st.set.control(i)
			ctl.Cred, ctl.PID = c.Cred, c.PID
			fds = c.NFD > 0 || c.More
		}
	} else {
		m := &st.set.msgs[i]
		d = st.set.bufs[i*r.slot : i*r.slot+int(m.Len)]
		if m.Hdr.Controllen != 0 {
			ctl = st.set.control(i)
		}
		trunc = m.Hdr.Flags&unix.MSG_TRUNC != 0
		fds = ctl.NFD > 0 && (ctl.NFD > 1 || ctl.More || m.Hdr.Flags&unix.MSG_CTRUNC != 0)
	}
	if trunc {
		ctl.CloseFDs()
		var h Header
		if len(d) >= HeaderSize {
			h = decodeHeader(d)
		}
		r.asm.drop(h, ErrTruncated)
		return false
	}
	records, h, err := checkDatagram(d)
	if err == nil && (fds || ctl.NFD > 0 && (records != 1 || h.Flags&FlagChunkMask != FlagChunkMask)) {
		err = errFD // too many descriptors, or on a datagram that cannot carry one, or lost
	}
	if err != nil {
		ctl.CloseFDs()
		r.asm.drop(h, err)
		return false
	}
	st.cur, st.off, st.idx = d, 0, i
	if ctl.NFD == 1 {
		st.fd = ctl.FDs[0]
	}
	st.pid = 0
	if ctl.Cred {
		st.pid = ctl.PID
	}
	return true
}

// deliverFD gives fn one record with fd (-1: none) as the descriptor TakeFD returns, and
// closes fd if fn did not take it; the outer message's descriptor is TakeFD's again after.
func (r *Reader) deliverFD(h Header, body []byte, fn func(Header, []byte), fd int) {
	outer := r.held
	r.held = fd
	defer func() {
		if r.held >= 0 {
			unix.Close(r.held)
		}
		r.held = outer
	}()
	r.asm.record(h, body, fn)
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
