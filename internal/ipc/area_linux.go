//go:build linux

package ipc

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A receive area is a Reader's first-level receive buffers placed in memory that outlives
// the process (Config.Area): a worker killed in the middle of a batch leaves there the
// datagrams it received, and which record it was handing to its callback. Its replacement,
// reading the same socket with the same Area, first delivers the records after that one
// (Resume), then reads the socket: a dead reader loses at most the message in hand, never
// the ones received with it.
//
// Layout: an areaHeader, then Batch areaDgram entries, then (page-aligned) Batch datagram
// slots of HeaderSize+MaxPayload bytes.

const areaMagic = 0x61726561 // "area"

// areaHeader is the area's state, written only by the Reader that owns the socket.
type areaHeader struct {
	magic atomic.Uint32
	batch atomic.Uint32
	slot  atomic.Uint32
	n     atomic.Int32 // datagrams of the batch being delivered; 0: none
	cur   atomic.Int32 // the datagram of the record being handed to fn; -1: none yet
	off   atomic.Int32 // that record's offset in its datagram
	_     [40]byte
}

// areaDgram is what the kernel said of one received datagram.
type areaDgram struct {
	len   atomic.Int32
	pid   atomic.Int32 // its sender's pid (0: unknown)
	flags atomic.Uint32
	_     uint32
}

const (
	areaTrunc uint32 = 1 << iota // larger than a slot (MSG_TRUNC)
	areaFD                       // came with descriptors: they died with the reader
)

// recvArea is an Area mapped in this process.
type recvArea struct {
	hdr  *areaHeader
	dg   []areaDgram
	bufs []byte
}

func areaLayout(batch, slot int) (bufsOff, total int) {
	page := os.Getpagesize()
	meta := int(unsafe.Sizeof(areaHeader{})) + batch*int(unsafe.Sizeof(areaDgram{}))
	bufsOff = (meta + page - 1) / page * page
	return bufsOff, bufsOff + batch*slot
}

// AreaSize returns the size of the Area a Reader with cfg needs.
func AreaSize(cfg Config) (int, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return 0, err
	}
	_, total := areaLayout(cfg.Batch, HeaderSize+cfg.MaxPayload)
	return total, nil
}

// newArea lays the area out on mem: a fresh (zero) area is initialised, one a previous
// Reader used must have been made for the same Batch and slot size.
func newArea(mem []byte, batch, slot int) (*recvArea, error) {
	bufsOff, total := areaLayout(batch, slot)
	if len(mem) < total {
		return nil, fmt.Errorf("ipc: Area is %d bytes; a Reader with Batch %d and MaxPayload %d needs %d", len(mem), batch, slot-HeaderSize, total)
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(mem)))%8 != 0 {
		return nil, fmt.Errorf("ipc: Area is not 8-byte aligned")
	}
	a := &recvArea{
		hdr:  (*areaHeader)(unsafe.Pointer(unsafe.SliceData(mem))),
		dg:   unsafe.Slice((*areaDgram)(unsafe.Pointer(&mem[unsafe.Sizeof(areaHeader{})])), batch),
		bufs: mem[bufsOff:total:total],
	}
	switch a.hdr.magic.Load() {
	case 0:
		a.hdr.batch.Store(uint32(batch))
		a.hdr.slot.Store(uint32(slot))
		a.hdr.n.Store(0)
		a.hdr.magic.Store(areaMagic)
	case areaMagic:
		if a.hdr.batch.Load() != uint32(batch) || a.hdr.slot.Load() != uint32(slot) {
			return nil, fmt.Errorf("ipc: Area was made for Batch %d and %d-byte slots, not %d and %d", a.hdr.batch.Load(), a.hdr.slot.Load(), batch, slot)
		}
	default:
		return nil, fmt.Errorf("ipc: Area holds something else (magic %#x)", a.hdr.magic.Load())
	}
	return a, nil
}

// received records a batch of n datagrams (before any is delivered).
func (a *recvArea) received(rs *recvSet, n int) {
	for i := range n {
		m := &rs.msgs[i]
		var flags uint32
		var pid int32
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			flags |= areaTrunc
		}
		if m.Hdr.Controllen != 0 {
			c := rs.control(i)
			if c.Cred {
				pid = c.PID
			}
			if c.NFD > 0 || c.More {
				flags |= areaFD
			}
		}
		d := &a.dg[i]
		d.len.Store(int32(m.Len))
		d.pid.Store(pid)
		d.flags.Store(flags)
	}
	a.hdr.cur.Store(-1)
	a.hdr.n.Store(int32(n)) // last: the batch is complete
}

// handing records that the record at off of datagram i is being given to fn.
func (a *recvArea) handing(i, off int) {
	a.hdr.cur.Store(int32(i))
	a.hdr.off.Store(int32(off))
}

// done records that the batch was delivered.
func (a *recvArea) done() { a.hdr.n.Store(0) }
