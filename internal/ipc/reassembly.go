package ipc

import (
	"encoding/binary"

	"github.com/goswoole/swoole/internal/buffer"
)

// reassembler turns datagrams into messages. It keeps at most one partial message per
// sender (SrcWorker): a Writer sends a message's datagrams in order and never interleaves
// another message of its own between them, so the next datagram from a sender either
// continues its partial message or proves that message abandoned.
//
// It is used by one goroutine at a time (the Reader's).
type reassembler struct {
	maxPayload int
	maxMessage int
	maxPending int
	pending    int // bytes held by partial messages
	active     int // senders with a partial message (or a skipped one)
	parts      map[int16]*partial
	c          *Counters
	onDrop     func(Header, error)
	pid        int32 // the sender's pid of the datagram being fed (SO_PASSCRED); 0: unknown
}

// partial is one sender's message in progress.
type partial struct {
	h     Header // the first chunk's header
	buf   []byte // pooled, len = the message's total length; nil while skipping
	off   int    // bytes received so far
	pid   int32  // the sender's pid of its first chunk (0: unknown)
	state uint8
}

const (
	partIdle uint8 = iota // no message in progress
	partFill              // filling buf
	partSkip              // dropping the rest of a message (too large, no memory)
)

func newReassembler(cfg Config) reassembler {
	return reassembler{
		maxPayload: cfg.MaxPayload,
		maxMessage: cfg.MaxMessage,
		maxPending: cfg.MaxPending,
		parts:      make(map[int16]*partial),
		c:          cfg.Counters,
		onDrop:     cfg.OnDrop,
	}
}

func (r *reassembler) drop(h Header, err error) {
	r.c.Dropped.Add(1)
	if r.onDrop != nil {
		r.onDrop(h, err)
	}
}

// reset abandons p's message, returning its buffer.
func (r *reassembler) reset(p *partial) {
	if p.state == partIdle {
		return
	}
	if p.buf != nil {
		r.pending -= len(p.buf)
		buffer.Put(p.buf)
		p.buf = nil
	}
	p.state = partIdle
	r.active--
}

// abandon drops p's message (if any) as incomplete.
func (r *reassembler) abandon(p *partial) {
	if p.state == partFill {
		r.drop(p.h, ErrIncomplete)
	}
	r.reset(p)
}

// feed takes one datagram and calls fn for each message it completes, in order. payload
// passed to fn is valid only during the call. A datagram that does not check out is dropped
// whole.
func (r *reassembler) feed(dgram []byte, fn func(Header, []byte)) {
	records, h, err := checkDatagram(dgram)
	if err != nil {
		r.drop(h, err)
		return
	}
	if records == 1 {
		r.record(h, dgram[HeaderSize:], fn)
		return
	}
	for off := 0; off < len(dgram); {
		h := decodeHeader(dgram[off:])
		end := off + HeaderSize + int(h.Len)
		r.record(h, dgram[off+HeaderSize:end], fn)
		off = end
	}
}

// record handles one checked record.
func (r *reassembler) record(h Header, body []byte, fn func(Header, []byte)) {
	var p *partial
	if r.active > 0 {
		p = r.parts[h.SrcWorker]
	}
	switch h.Flags & FlagChunkMask {
	case FlagChunkMask: // a whole message in one datagram
		if p != nil {
			r.abandon(p)
		}
		r.c.MsgsRecv.Add(1)
		fn(h, body)
	case FlagChunkBegin:
		if p != nil {
			r.abandon(p)
		}
		r.begin(h, body)
	default: // a later chunk
		if p == nil || p.state == partIdle {
			r.drop(h, errChunk)
			return
		}
		if p.pid != r.pid {
			// Another process using the same SrcWorker: its chunk is not part of this
			// message, which goes on.
			r.drop(h, errSender)
			return
		}
		if p.h.MsgID != h.MsgID || p.h.Type != h.Type || p.h.Fd != h.Fd {
			r.abandon(p)
			r.drop(h, errChunk)
			return
		}
		if p.state == partSkip {
			if h.Flags&FlagChunkEnd != 0 {
				r.reset(p)
			}
			return
		}
		if len(body) > len(p.buf)-p.off || len(body) > r.maxPayload {
			r.drop(p.h, errTotal)
			r.reset(p)
			return
		}
		p.off += copy(p.buf[p.off:], body)
		if h.Flags&FlagChunkEnd == 0 {
			return
		}
		if p.off != len(p.buf) {
			r.drop(p.h, errTotal)
			r.reset(p)
			return
		}
		mh := p.h
		mh.Flags |= FlagChunkMask
		mh.Len = uint32(len(p.buf))
		buf := p.buf
		p.buf = nil
		r.pending -= len(buf)
		r.reset(p)
		r.c.MsgsRecv.Add(1)
		fn(mh, buf)
		buffer.Put(buf)
	}
}

// begin starts a chunked message from its first datagram.
func (r *reassembler) begin(h Header, body []byte) {
	if len(body) < prefixSize {
		r.drop(h, errTotal)
		return
	}
	total := int(binary.LittleEndian.Uint32(body))
	body = body[prefixSize:]
	p := r.parts[h.SrcWorker]
	if p == nil {
		p = new(partial)
		r.parts[h.SrcWorker] = p
	}
	p.h = h
	p.off = 0
	p.pid = r.pid
	r.active++
	switch {
	case total > r.maxMessage:
		r.drop(h, ErrTooLarge)
		p.state = partSkip
		return
	case total <= len(body):
		// A chunked message is longer than its first chunk.
		r.drop(h, errTotal)
		r.active--
		return
	case r.pending+total > r.maxPending:
		r.drop(h, ErrReassemblyFull)
		p.state = partSkip
		return
	}
	p.state = partFill
	p.buf = buffer.Get(total)
	r.pending += total
	p.off = copy(p.buf, body)
}

// close returns every buffer held by partial messages.
func (r *reassembler) close() {
	for _, p := range r.parts {
		r.reset(p)
	}
}
