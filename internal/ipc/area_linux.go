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
// The recvmmsg arguments themselves (the mmsghdr array, the iovecs, the control buffers)
// lie in the area, so the kernel writes each datagram's length, flags and sender there: a
// process killed while in recvmmsg (a fatal signal takes effect when the call returns, after
// the datagrams left the socket) still leaves a complete record of what it received.
//
// Layout: an areaHeader, the Batch mmsghdrs, the Batch iovecs, the Batch control buffers,
// then (page-aligned) Batch datagram slots of HeaderSize+MaxPayload bytes.

const areaMagic = 0x61726561 // "area"

// areaHeader is the area's state, written only by the Reader that owns the socket.
type areaHeader struct {
	magic atomic.Uint32
	batch atomic.Uint32
	slot  atomic.Uint32
	n     atomic.Int32 // datagrams of the batch being delivered; 0: none; -1: in recvmmsg
	cur   atomic.Int32 // the datagram of the record being handed to fn; -1: none yet
	off   atomic.Int32 // that record's offset in its datagram
	_     [40]byte
}

const areaReceiving = -1 // areaHeader.n while in recvmmsg

// recvArea is an Area mapped in this process.
type recvArea struct {
	hdr  *areaHeader
	msgs []unix.Mmsghdr
	iov  []unix.Iovec
	ctl  []byte
	bufs []byte
}

type areaOffsets struct{ msgs, iov, ctl, bufs, total int }

func areaLayout(batch, slot int) areaOffsets {
	page := os.Getpagesize()
	var o areaOffsets
	o.msgs = int(unsafe.Sizeof(areaHeader{}))
	o.iov = o.msgs + batch*int(unsafe.Sizeof(unix.Mmsghdr{}))
	o.ctl = o.iov + batch*int(unsafe.Sizeof(unix.Iovec{}))
	o.bufs = (o.ctl + batch*ctlSize + page - 1) / page * page
	o.total = o.bufs + batch*slot
	return o
}

// AreaSize returns the size of the Area a Reader with cfg needs.
func AreaSize(cfg Config) (int, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return 0, err
	}
	return areaLayout(cfg.Batch, HeaderSize+cfg.MaxPayload).total, nil
}

// newArea lays the area out on mem: a fresh (zero) area is initialised, one a previous
// Reader used must have been made for the same Batch and slot size.
func newArea(mem []byte, batch, slot int) (*recvArea, error) {
	o := areaLayout(batch, slot)
	if len(mem) < o.total {
		return nil, fmt.Errorf("ipc: Area is %d bytes; a Reader with Batch %d and MaxPayload %d needs %d", len(mem), batch, slot-HeaderSize, o.total)
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(mem)))%8 != 0 {
		return nil, fmt.Errorf("ipc: Area is not 8-byte aligned")
	}
	a := &recvArea{
		hdr:  (*areaHeader)(unsafe.Pointer(unsafe.SliceData(mem))),
		msgs: unsafe.Slice((*unix.Mmsghdr)(unsafe.Pointer(&mem[o.msgs])), batch),
		iov:  unsafe.Slice((*unix.Iovec)(unsafe.Pointer(&mem[o.iov])), batch),
		ctl:  mem[o.ctl : o.ctl+batch*ctlSize : o.ctl+batch*ctlSize],
		bufs: mem[o.bufs:o.total:o.total],
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

// receiving marks the first k datagram records empty (a received datagram is never), and
// the area as in recvmmsg.
func (a *recvArea) receiving(k int) {
	for i := range k {
		a.msgs[i].Len = 0
	}
	a.hdr.n.Store(areaReceiving)
}

// received records a batch of n datagrams (before any is delivered); n = 0: none.
func (a *recvArea) received(n int) {
	a.hdr.cur.Store(-1)
	a.hdr.n.Store(int32(n)) // last: the batch is complete
}

// left returns the number of datagrams a dead Reader left: its batch, or what the kernel
// recorded of a recvmmsg it was killed in.
func (a *recvArea) left(batch int) int {
	n := int(a.hdr.n.Load())
	if n == areaReceiving {
		a.hdr.cur.Store(-1)
		n = 0
		for n < batch && a.msgs[n].Len > 0 {
			n++
		}
	}
	if n < 0 || n > batch {
		return 0
	}
	return n
}

// handing records that the record at off of datagram i is being given to fn.
func (a *recvArea) handing(i, off int) {
	a.hdr.cur.Store(int32(i))
	a.hdr.off.Store(int32(off))
}

// done records that the batch was delivered.
func (a *recvArea) done() { a.hdr.n.Store(0) }
