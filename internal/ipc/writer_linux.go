//go:build linux

package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/goswoole/swoole/internal/buffer"
	"github.com/goswoole/swoole/internal/sys"
	"golang.org/x/sys/unix"
)

// hdrSlot is the scratch space for one datagram's header and length prefix.
const hdrSlot = HeaderSize + prefixSize

// Writer sends messages on one end of a pair. Its methods are safe for concurrent use; a
// mutex serialises them, and each message is sent or queued whole under it. So messages
// written by one goroutine arrive in the order written, messages of different goroutines in
// the order their calls took the lock, and the datagrams of one message are never
// interleaved with another message of the same Writer.
//
// A process must use one Writer per socket end it writes to (and a SrcWorker of its own,
// different from every other process writing to that socket): the Reader keeps
// one partial message per SrcWorker.
//
// The Writer does not own the file: it keeps it referenced, and the caller closes it after
// the last call has returned.
type Writer struct {
	mu     sync.Mutex
	f      *os.File
	fd     int
	cfg    Config
	c      *Counters
	nextID uint32

	// Scratch for one sendmmsg: headers, two iovecs (header, payload) and one mmsghdr per
	// datagram. Heap memory owned by the Writer, used under mu.
	hdr  []byte
	iov  []unix.Iovec
	msgs []unix.Mmsghdr
	ctl  []byte // one SCM_RIGHTS control message per datagram that passes a descriptor

	// The send queue: datagrams, each contiguous in a pooled slab or, with a journal, in the
	// journal itself, sent in order.
	q        []qrec
	qhead    int
	slabs    [][]byte
	slabBase int // absolute index of slabs[0]
	tail     int // bytes used in the last slab
	slabSize int
	buffered int // bytes of queued datagrams
	holds    int // Hold calls not yet Released: small messages queue (see Hold)

	jr *journal // AttachJournal: the queue mirrored where a replacement finds it, or nil
}

// HoldMax is the largest message Write queues while the Writer is held; a larger one is sent
// at once when nothing is queued (copying it would cost more than its syscall).
const HoldMax = 16 << 10

// Hold makes Write queue small messages (at most HoldMax bytes; they are packed into shared
// datagrams) instead of sending each at once, until the matching Release, which sends what
// is queued with as few sendmmsg calls as it can. Use it around a burst — the events of one
// read, the replies of one batch — to turn one syscall per message into one per burst.
// Holds nest and may come from several goroutines; OnQueue is not called while the Writer
// is held (Release calls it when something is left that the socket did not take).
func (w *Writer) Hold() {
	w.mu.Lock()
	w.holds++
	w.mu.Unlock()
}

// Release ends a Hold. The last Release flushes the queue like Flush; what the socket does
// not take stays queued and OnQueue is called, so the owner's loop flushes it later.
func (w *Writer) Release() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.holds > 0 {
		w.holds--
	}
	if w.holds > 0 || w.qhead == len(w.q) {
		return nil
	}
	done, err := w.flushLocked()
	if !done && w.cfg.OnQueue != nil {
		w.cfg.OnQueue()
	}
	return err
}

// qrec is one queued datagram.
type qrec struct {
	slab int   // absolute index of its slab; in the journal: of the last slab when it was queued
	off  int32 // offset in the slab, or in the journal's records (inj)
	n    int32 // datagram length
	msgs int32 // messages whose last record is in it
	fd   int32 // a descriptor passed with the datagram (WriteFD), owned by the queue; -1: none
	pack bool  // holds only whole messages: more may be appended
	jr   bool  // mirrored in the journal
	inj  bool  // its bytes are in the journal (not in a slab): sent from there
}

// NewWriter returns a Writer on f, an end of a pair from NewPair or Inherit.
func NewWriter(f *os.File, cfg Config) (*Writer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	fd, err := fileFD(f)
	if err != nil {
		return nil, err
	}
	w := &Writer{
		f:        f,
		fd:       fd,
		cfg:      cfg,
		c:        cfg.Counters,
		hdr:      make([]byte, cfg.Batch*hdrSlot),
		iov:      make([]unix.Iovec, 2*cfg.Batch),
		msgs:     make([]unix.Mmsghdr, cfg.Batch),
		ctl:      make([]byte, cfg.Batch*sys.RightsSpace(1)),
		slabSize: max(64<<10, HeaderSize+cfg.MaxPayload),
	}
	return w, nil
}

// FD returns the socket's descriptor, for registering EPOLLOUT while Buffered is non-zero.
func (w *Writer) FD() int { return w.fd }

// Counters returns the counters this Writer updates.
func (w *Writer) Counters() *Counters { return w.c }

// Write sends a message: h's Type, SrcWorker, ReactorID, Aux, Fd and the FlagUserMask bits
// of Flags as given; MsgID, Len and the chunk bits are the Writer's.
//
// When nothing is queued it sends at once, header and payload gathered by one sendmsg (or
// one sendmmsg per Config.Batch chunks of a large message), without copying the payload.
// Whatever the socket does not take, and any message written while others are queued, is
// copied to the queue; Flush sends it. So Write never blocks, and after it returns payload
// belongs to the caller again. A message partly sent is always queued whole (so the receiver
// never sees a torn message from a live Writer); a message that would take the queue above
// Config.MaxBuffered is refused with ErrQueueFull and nothing of it is sent.
//
// Errors: ErrTooLarge, ErrQueueFull, or the send's errno as an *os.SyscallError (ECONNREFUSED
// when the other end is closed everywhere); on a send error the message is lost.
func (w *Writer) Write(h Header, payload []byte) error {
	if len(payload) > w.cfg.MaxMessage {
		return ErrTooLarge
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	h.MsgID = w.nextID
	w.nextID++
	if f := Fault; f != nil {
		if k := chunkCount(len(payload), w.cfg.MaxPayload); k > 1 && f(h, len(payload)) {
			w.queueChunksTo(h, payload, 0, k/2, k, -1) // the rest never comes
			_, err := w.flushLocked()
			return err
		}
	}
	if w.qhead < len(w.q) || (w.holds > 0 && len(payload) <= HoldMax) {
		return w.queueMsg(h, payload)
	}
	return w.sendDirect(h, payload)
}

// Fault, when set, is asked by every Writer of the process, before it sends a message of
// several datagrams, whether to cut that message short: it then sends only the first half of
// its datagrams, as a process killed in the middle of it would. For the fault-injection
// tests only (set it before any Writer is used, in the process to be faulty); never set it
// in a program.
var Fault func(h Header, size int) bool

// WriteFD sends a message with a descriptor (SCM_RIGHTS): the receiver gets a descriptor of
// its own for the same open file with that message (see [Reader.TakeFD]). The message must
// fit one datagram (at most Config.MaxPayload bytes, else ErrTooLarge); it travels alone in
// its datagram, in order with the Writer's other messages. Header fields as for Write.
//
// fd belongs to the Writer from the call on, whatever WriteFD returns: it is closed once
// its datagram is sent, at once on an error, or by Discard. The caller must not use or
// close it afterwards (pass a dup to keep one).
func (w *Writer) WriteFD(h Header, payload []byte, fd int) error {
	if fd < 0 {
		return os.NewSyscallError("sendmsg", unix.EBADF)
	}
	if len(payload) > w.cfg.MaxPayload {
		unix.Close(fd)
		return ErrTooLarge
	}
	w.mu.Lock()
	err := w.writeFDLocked(h, payload, fd)
	w.mu.Unlock()
	if err != nil {
		unix.Close(fd)
	}
	return err
}

// WriteFDBlocking is WriteFD for processes without an event loop: like WriteBlocking, it
// first waits for room when the queue is full, and then until the queue is empty. On
// ErrTimeout after the message was queued, it stays queued with its descriptor (a later
// Flush sends it, Discard closes it); otherwise fd is closed as WriteFD says.
func (w *Writer) WriteFDBlocking(h Header, payload []byte, fd int, deadline time.Time) error {
	if fd < 0 {
		return os.NewSyscallError("sendmsg", unix.EBADF)
	}
	if len(payload) > w.cfg.MaxPayload {
		unix.Close(fd)
		return ErrTooLarge
	}
	for {
		w.mu.Lock()
		err := w.writeFDLocked(h, payload, fd)
		w.mu.Unlock()
		if err == nil {
			break
		}
		if !errors.Is(err, ErrQueueFull) {
			unix.Close(fd)
			return err
		}
		if err := w.FlushBlocking(deadline); err != nil {
			unix.Close(fd)
			return err
		}
	}
	return w.FlushBlocking(deadline)
}

// writeFDLocked sends or queues a one-datagram message with fd. On success the Writer owns
// fd; on an error it is still the caller's. Must hold w.mu.
func (w *Writer) writeFDLocked(h Header, payload []byte, fd int) error {
	h.MsgID = w.nextID
	w.nextID++
	if w.qhead < len(w.q) {
		if w.buffered+queuedSize(len(payload), w.cfg.MaxPayload) > w.cfg.MaxBuffered {
			return ErrQueueFull
		}
		w.queueChunks(h, payload, 0, 1, fd)
		return nil
	}
	n := len(payload)
	ch := chunkHeader(h, n, 0, n, 0, 1)
	hb := w.hdr[:HeaderSize]
	ch.Encode(hb)
	iov := w.iov[:2]
	iov[0].Base = &hb[0]
	iov[0].SetLen(HeaderSize)
	niov := 1
	if n > 0 {
		iov[1].Base = &payload[0]
		iov[1].SetLen(n)
		niov = 2
	}
	m := &w.msgs[0].Hdr
	m.Iov = &iov[0]
	m.SetIovlen(niov)
	w.setRights(0, fd)
	errno := sendmsg(w.fd, m)
	w.c.SendSyscalls.Add(1)
	iov[1].Base = nil
	w.setRights(0, -1)
	switch errno {
	case 0:
		w.c.DgramsSent.Add(1)
		w.c.MsgsSent.Add(1)
		unix.Close(fd) // the receiver has its own reference
		return nil
	case unix.EAGAIN:
		w.queueChunks(h, payload, 0, 1, fd)
		return nil
	}
	return os.NewSyscallError("sendmsg", errno)
}

// setRights attaches an SCM_RIGHTS message carrying fd to w.msgs[j], or none when fd < 0.
// Must hold w.mu.
func (w *Writer) setRights(j, fd int) {
	m := &w.msgs[j].Hdr
	if fd < 0 {
		m.Control = nil
		m.SetControllen(0)
		return
	}
	sz := sys.RightsSpace(1)
	b := w.ctl[j*sz : (j+1)*sz]
	n := sys.PutRights(b, fd)
	m.Control = &b[0]
	m.SetControllen(n)
}

// Enqueue queues a message without trying to send it (a pooled copy), so that a later Flush
// sends many messages per sendmmsg. Use it for bursts: enqueue what one pass of an event loop
// produces, then Flush once. Header fields and errors as for Write.
func (w *Writer) Enqueue(h Header, payload []byte) error {
	if len(payload) > w.cfg.MaxMessage {
		return ErrTooLarge
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	h.MsgID = w.nextID
	w.nextID++
	return w.queueMsg(h, payload)
}

// queueMsg queues a whole message. Must hold w.mu.
func (w *Writer) queueMsg(h Header, payload []byte) error {
	if w.buffered+queuedSize(len(payload), w.cfg.MaxPayload) > w.cfg.MaxBuffered {
		return ErrQueueFull
	}
	k := chunkCount(len(payload), w.cfg.MaxPayload)
	w.queueChunks(h, payload, 0, k, -1)
	return nil
}

// queueChunks queues datagrams i..k-1 of a message; fd (-1: none) goes with its only
// datagram, which nothing is packed with. Must hold w.mu.
func (w *Writer) queueChunks(h Header, payload []byte, i, k, fd int) {
	w.queueChunksTo(h, payload, i, k, k, fd)
}

// queueChunksTo queues datagrams i..end-1 of a message of k (end < k: a message cut short,
// see Fault). Must hold w.mu.
func (w *Writer) queueChunksTo(h Header, payload []byte, i, end, k, fd int) {
	wasEmpty := w.qhead == len(w.q)
	w.c.MsgsQueued.Add(1)
	maxD := HeaderSize + w.cfg.MaxPayload
	for ; i < end; i++ {
		start, end := chunkRange(len(payload), w.cfg.MaxPayload, i, k)
		d := HeaderSize + end - start
		if i == 0 && k > 1 {
			d += prefixSize
		}
		// A whole small message joins the last queued datagram when that one holds only
		// whole messages and both fit: one datagram, one skb, for a burst.
		if k == 1 && fd < 0 && !w.cfg.NoPacking && w.qhead < len(w.q) {
			if last := &w.q[len(w.q)-1]; last.pack && int(last.n)+d <= maxD {
				switch {
				case last.inj:
					// Written straight after it in the journal (the journal's last datagram).
					if b := w.jr.growRoom(d); b != nil {
						appendChunk(b[:0], h, payload, w.cfg.MaxPayload, 0, 1)
						w.jr.commitGrow(d)
						last.n += int32(d)
						last.msgs++
						w.buffered += d
						continue
					}
				case w.tail+d <= w.slabSize:
					// Not journaled: past the journal's room (or with no journal).
					appendChunk(w.slabs[len(w.slabs)-1][w.tail:w.tail], h, payload, w.cfg.MaxPayload, 0, 1)
					last.n += int32(d)
					last.msgs++
					w.tail += d
					w.buffered += d
					continue
				}
			}
		}
		// With a journal, the datagram is written in it and sent from there: copied once.
		if w.jr != nil && fd < 0 {
			if b := w.jr.room(d); b != nil {
				appendChunk(b[:0], h, payload, w.cfg.MaxPayload, i, k)
				off := w.jr.commitNew(d)
				r := qrec{slab: w.slabBase + len(w.slabs) - 1, off: int32(off), n: int32(d), fd: -1, pack: k == 1, jr: true, inj: true}
				if i == k-1 {
					r.msgs = 1
				}
				w.q = append(w.q, r)
				w.buffered += d
				continue
			}
		}
		if len(w.slabs) == 0 || w.tail+d > w.slabSize {
			w.slabs = append(w.slabs, buffer.Get(w.slabSize))
			w.tail = 0
		}
		// A datagram in a slab is not journaled: it carries a descriptor (which cannot outlive
		// its process), or there is no journal, or no room left in it.
		slab := w.slabs[len(w.slabs)-1]
		appendChunk(slab[w.tail:w.tail], h, payload, w.cfg.MaxPayload, i, k)
		r := qrec{slab: w.slabBase + len(w.slabs) - 1, off: int32(w.tail), n: int32(d), fd: int32(fd), pack: k == 1 && fd < 0}
		if i == k-1 {
			r.msgs = 1
		}
		w.q = append(w.q, r)
		w.tail += d
		w.buffered += d
	}
	if wasEmpty && w.cfg.OnQueue != nil && w.holds == 0 {
		w.cfg.OnQueue()
	}
}

// sendDirect sends a message with nothing queued, and queues what the socket refuses.
// Must hold w.mu.
func (w *Writer) sendDirect(h Header, payload []byte) error {
	n, maxP := len(payload), w.cfg.MaxPayload
	k := chunkCount(n, maxP)
	i := 0
	var errno unix.Errno
	for i < k {
		m := min(w.cfg.Batch, k-i)
		for j := range m {
			start, end := chunkRange(n, maxP, i+j, k)
			ch := chunkHeader(h, n, start, end, i+j, k)
			hb := w.hdr[j*hdrSlot : (j+1)*hdrSlot]
			ch.Encode(hb)
			hl := HeaderSize
			if i+j == 0 && k > 1 {
				binary.LittleEndian.PutUint32(hb[HeaderSize:], uint32(n))
				hl += prefixSize
			}
			iov := w.iov[2*j : 2*j+2]
			iov[0].Base = &hb[0]
			iov[0].SetLen(hl)
			niov := 1
			if end > start {
				iov[1].Base = &payload[start]
				iov[1].SetLen(end - start)
				niov = 2
			}
			w.msgs[j].Hdr.Iov = &iov[0]
			w.msgs[j].Hdr.SetIovlen(niov)
			w.msgs[j].Hdr.Control = nil
			w.msgs[j].Hdr.SetControllen(0)
		}
		sent := 0
		if m == 1 {
			if errno = sendmsg(w.fd, &w.msgs[0].Hdr); errno == 0 {
				sent = 1
			}
		} else {
			sent, errno = sendmmsg(w.fd, w.msgs[:m])
		}
		w.c.SendSyscalls.Add(1)
		w.c.DgramsSent.Add(uint64(sent))
		i += sent
		if sent < m || (errno != 0 && errno != unix.EAGAIN) {
			break
		}
	}
	// Drop the references to the caller's payload.
	for j := 1; j < len(w.iov); j += 2 {
		w.iov[j].Base = nil
	}
	switch {
	case i == k:
		w.c.MsgsSent.Add(1)
		return nil
	case errno != 0 && errno != unix.EAGAIN:
		return os.NewSyscallError(sendCallName(k-i), errno)
	}
	w.queueChunks(h, payload, i, k, -1)
	return nil
}

func sendCallName(m int) string {
	if m == 1 {
		return "sendmsg"
	}
	return "sendmmsg"
}

// Flush sends queued datagrams, Config.Batch per sendmmsg, until the queue is empty (done is
// true) or the socket is full (done is false, err nil: wait for EPOLLOUT or POLLOUT and call
// Flush again). On another error the unsent datagrams stay queued.
func (w *Writer) Flush() (done bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

// flushLocked is Flush with w.mu held.
func (w *Writer) flushLocked() (done bool, err error) {
	for w.qhead < len(w.q) {
		m := min(w.cfg.Batch, len(w.q)-w.qhead)
		for j := range m {
			r := w.q[w.qhead+j]
			if r.inj {
				w.iov[j].Base = &w.jr.recs[r.off]
			} else {
				w.iov[j].Base = &w.slabs[r.slab-w.slabBase][r.off]
			}
			w.iov[j].SetLen(int(r.n))
			w.msgs[j].Hdr.Iov = &w.iov[j]
			w.msgs[j].Hdr.SetIovlen(1)
			w.setRights(j, int(r.fd))
		}
		var sent int
		var errno unix.Errno
		if m == 1 {
			if errno = sendmsg(w.fd, &w.msgs[0].Hdr); errno == 0 {
				sent = 1
			}
		} else {
			sent, errno = sendmmsg(w.fd, w.msgs[:m])
		}
		w.c.SendSyscalls.Add(1)
		if sent > 0 {
			w.pop(sent)
		}
		if errno != 0 && errno != unix.EAGAIN {
			return false, os.NewSyscallError(sendCallName(m), errno)
		}
		if sent < m {
			return false, nil
		}
	}
	return true, nil
}

// pop removes the first n queued datagrams, which were sent, and frees slabs nothing refers
// to any more. Must hold w.mu.
func (w *Writer) pop(n int) {
	w.c.DgramsSent.Add(uint64(n))
	var msgs uint64
	jr := 0
	for _, r := range w.q[w.qhead : w.qhead+n] {
		if r.jr {
			jr++
		}
		w.buffered -= int(r.n)
		msgs += uint64(r.msgs)
		if r.fd >= 0 { // the receiver has its own reference now
			unix.Close(int(r.fd))
		}
	}
	w.c.MsgsSent.Add(msgs)
	if jr > 0 {
		w.jr.sentN(jr)
	}
	w.qhead += n
	if w.qhead == len(w.q) {
		if w.jr != nil {
			w.jr.reset() // all sent
		}
		// Empty: keep the last slab for the next burst, free the others.
		w.q = w.q[:0]
		w.qhead = 0
		w.freeSlabs(len(w.slabs) - 1)
		w.tail = 0
		return
	}
	w.freeSlabs(w.q[w.qhead].slab - w.slabBase)
	if w.qhead >= 256 && 2*w.qhead >= len(w.q) {
		rest := copy(w.q, w.q[w.qhead:])
		w.q = w.q[:rest]
		w.qhead = 0
	}
}

// freeSlabs returns the first n slabs to the pool. Must hold w.mu.
func (w *Writer) freeSlabs(n int) {
	if n <= 0 {
		return
	}
	for _, s := range w.slabs[:n] {
		buffer.Put(s)
	}
	rest := copy(w.slabs, w.slabs[n:])
	clear(w.slabs[rest:])
	w.slabs = w.slabs[:rest]
	w.slabBase += n
}

// Buffered returns the bytes queued (datagrams, headers included) and not yet sent.
func (w *Writer) Buffered() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buffered
}

// Discard drops everything queued and returns the number of datagrams dropped (the
// descriptors queued with them are closed). Use it when the other end is gone for good. A message partly sent is torn: the Reader drops its first
// part when the next message from this sender arrives.
func (w *Writer) Discard() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.q) - w.qhead
	for _, r := range w.q[w.qhead:] {
		if r.fd >= 0 {
			unix.Close(int(r.fd))
		}
	}
	w.q = w.q[:0]
	w.qhead = 0
	w.buffered = 0
	w.freeSlabs(len(w.slabs))
	w.tail = 0
	if w.jr != nil {
		w.jr.reset()
	}
	return n
}

// AttachJournal mirrors the Writer's send queue from now on in mem, memory shared with the
// process that will take over this socket should this one die (see the journal type): it
// first queues, ahead of what it queues next, the datagrams a previous Writer (a dead
// process) left there unsent, and returns their number. Attach only once the previous
// Writer's process is gone.
func (w *Writer) AttachJournal(mem []byte) (int, error) {
	j, err := newJournal(mem)
	if err != nil {
		return 0, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.jr != nil {
		return 0, errors.New("ipc: the Writer has a journal already: attach one once")
	}
	left := j.leftovers()
	w.jr = j
	for _, d := range left {
		if err := w.queueDatagram(d); err != nil {
			return 0, err
		}
	}
	if len(left) > 0 && w.holds == 0 {
		if done, err := w.flushLocked(); !done && err == nil && w.cfg.OnQueue != nil {
			w.cfg.OnQueue()
		}
	}
	return len(left), nil
}

// queueDatagram queues a datagram as it is (one a dead Writer left in the journal), not to
// be packed with. Must hold w.mu.
func (w *Writer) queueDatagram(d []byte) error {
	if len(d) > HeaderSize+w.cfg.MaxPayload || len(d) > w.slabSize {
		return fmt.Errorf("%w: a journaled datagram of %d bytes", ErrTooLarge, len(d))
	}
	if len(w.slabs) == 0 || w.tail+len(d) > w.slabSize {
		w.slabs = append(w.slabs, buffer.Get(w.slabSize))
		w.tail = 0
	}
	slab := w.slabs[len(w.slabs)-1]
	copy(slab[w.tail:], d)
	r := qrec{slab: w.slabBase + len(w.slabs) - 1, off: int32(w.tail), n: int32(len(d)), fd: -1, msgs: 1}
	r.jr = w.jr.add(d)
	w.q = append(w.q, r)
	w.tail += len(d)
	w.buffered += len(d)
	return nil
}

// FlushBlocking flushes, waiting with poll(2) for the socket to become writable, until the
// queue is empty or the deadline passes (ErrTimeout; the zero deadline waits for ever). For
// processes without an event loop; it does not hold the Writer's lock while it waits.
func (w *Writer) FlushBlocking(deadline time.Time) error {
	for {
		done, err := w.Flush()
		if err != nil || done {
			return err
		}
		if err := waitFD(w.fd, unix.POLLOUT, deadline); err != nil {
			return err
		}
	}
}

// WriteBlocking writes a message and then waits until the queue is empty, for processes
// without an event loop. When the queue is full it first waits for room. On ErrTimeout the
// message stays queued (it is never lost): a later Flush, FlushBlocking or WriteBlocking
// sends it, or Discard drops it.
func (w *Writer) WriteBlocking(h Header, payload []byte, deadline time.Time) error {
	err := w.Write(h, payload)
	if errors.Is(err, ErrQueueFull) {
		if err := w.FlushBlocking(deadline); err != nil {
			return err
		}
		err = w.Write(h, payload)
	}
	if err != nil {
		return err
	}
	return w.FlushBlocking(deadline)
}
