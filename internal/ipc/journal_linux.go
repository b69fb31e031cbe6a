//go:build linux

package ipc

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// A journal is a Writer's send queue mirrored in memory that outlives the process (a
// MAP_SHARED mapping of a memfd): a process killed with messages queued and not yet sent
// (held in a batch, or refused by a full socket) leaves them there, and its replacement,
// attaching a Writer on the same socket to the same journal, sends them first
// ([Writer.AttachJournal]). The Writer queues its datagrams in the journal itself while
// they fit (room, commitNew, growRoom, commitGrow) and sends them from there, so a queued
// message is copied once, as without a journal; a sent datagram is counted as sent right
// after the system call that sent it, so a process killed in between has its replacement
// send it again: a window of a few instructions.
//
// Layout: a journalHeader, then records of a 4-byte length and a datagram, 4-byte aligned.

const (
	journalMagic  = 0x6a726e6c // "jrnl"
	journalHeader = 64
	// MinJournal is the smallest journal AttachJournal accepts.
	MinJournal = journalHeader + 4 + HeaderSize
)

// journalHdr is the journal's state, written only by the Writer attached to it.
type journalHdr struct {
	magic    atomic.Uint32
	size     atomic.Uint32
	count    atomic.Int32 // datagrams journaled
	sent     atomic.Int32 // of those, sent (they are the first ones)
	used     atomic.Int32 // bytes of records
	overflow atomic.Uint32
	_        [40]byte
}

// journal is a Writer's view of its journal.
type journal struct {
	h    *journalHdr
	recs []byte
	last int // offset of the last record (its length word), -1: none
}

func newJournal(mem []byte) (*journal, error) {
	if len(mem) < MinJournal || len(mem) > 1<<31 {
		return nil, fmt.Errorf("ipc: a journal of %d bytes: it takes %d to 2 GiB", len(mem), MinJournal)
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(mem)))%8 != 0 {
		return nil, fmt.Errorf("ipc: the journal is not 8-byte aligned")
	}
	j := &journal{h: (*journalHdr)(unsafe.Pointer(unsafe.SliceData(mem))), recs: mem[journalHeader:], last: -1}
	switch j.h.magic.Load() {
	case 0:
		j.h.size.Store(uint32(len(mem)))
		j.reset()
		j.h.magic.Store(journalMagic)
	case journalMagic:
		if j.h.size.Load() != uint32(len(mem)) {
			return nil, fmt.Errorf("ipc: the journal was made %d bytes long, not %d", j.h.size.Load(), len(mem))
		}
	default:
		return nil, fmt.Errorf("ipc: the journal holds something else (magic %#x)", j.h.magic.Load())
	}
	return j, nil
}

// leftovers returns copies of the datagrams journaled and not sent (a dead Writer's), in
// order, and empties the journal.
func (j *journal) leftovers() [][]byte {
	var out [][]byte
	count, sent, used := int(j.h.count.Load()), int(j.h.sent.Load()), int(j.h.used.Load())
	if used > len(j.recs) {
		used = 0 // not ours to trust
	}
	for i, off := 0, 0; i < count && off+4 <= used; i++ {
		n := int(binary.LittleEndian.Uint32(j.recs[off:]))
		if n < HeaderSize || off+4+n > used {
			break
		}
		if i >= sent {
			out = append(out, append([]byte(nil), j.recs[off+4:off+4+n]...))
		}
		off += 4 + (n+3)&^3
	}
	j.reset()
	return out
}

func (j *journal) reset() {
	j.h.count.Store(0)
	j.h.sent.Store(0)
	j.h.used.Store(0)
	j.h.overflow.Store(0)
	j.last = -1
}

// add journals a copy of a new datagram; false when it does not fit (the journal then takes
// nothing more until it is empty again: what follows is not protected).
func (j *journal) add(d []byte) bool {
	b := j.room(len(d))
	if b == nil {
		return false
	}
	copy(b, d)
	j.commitNew(len(d))
	return true
}

// room returns the n bytes where the next datagram goes, not journaled yet: fill them, then
// commitNew. It returns nil when they do not fit (the journal then takes nothing more until
// it is empty again: what follows is not protected).
func (j *journal) room(n int) []byte {
	if j.h.overflow.Load() != 0 {
		return nil
	}
	off := int(j.h.used.Load())
	if off+4+n > len(j.recs) {
		j.h.overflow.Store(1)
		return nil
	}
	return j.recs[off+4 : off+4+n : off+4+n]
}

// commitNew journals the datagram of n bytes written where room said, and returns its
// offset in recs.
func (j *journal) commitNew(n int) int {
	off := int(j.h.used.Load())
	binary.LittleEndian.PutUint32(j.recs[off:], uint32(n))
	j.last = off
	j.h.used.Store(int32(off + 4 + (n+3)&^3))
	j.h.count.Add(1) // last: the record is complete
	return off + 4
}

// growRoom returns the n bytes right after the last journaled datagram, where a message
// packed into it goes: fill them, then commitGrow. It returns nil when they do not fit (the
// journal then takes nothing more until it is empty again).
func (j *journal) growRoom(n int) []byte {
	if j.last < 0 || j.h.overflow.Load() != 0 {
		return nil
	}
	end := j.last + 4 + int(binary.LittleEndian.Uint32(j.recs[j.last:]))
	if end+n > len(j.recs) {
		j.h.overflow.Store(1)
		return nil
	}
	return j.recs[end : end+n : end+n]
}

// commitGrow adds the n bytes written where growRoom said to the last datagram.
func (j *journal) commitGrow(n int) {
	m := int(binary.LittleEndian.Uint32(j.recs[j.last:])) + n
	j.h.used.Store(int32(j.last + 4 + (m+3)&^3))
	binary.LittleEndian.PutUint32(j.recs[j.last:], uint32(m)) // last: the datagram is whole
}

// sentN counts n more journaled datagrams as sent.
func (j *journal) sentN(n int) { j.h.sent.Add(int32(n)) }
