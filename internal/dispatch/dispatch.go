// Package dispatch chooses the worker process that gets a connection's event in ModeProcess
// (Swoole's dispatch_mode). It is pure: the caller supplies the connection's keys and, for
// the idle modes, a view of which workers are idle.
package dispatch

import (
	"hash/fnv"
	"net/netip"
	"sync/atomic"
)

// Modes, with Swoole's dispatch_mode values.
const (
	RoundRobin = 1 // one step of a counter per event
	FDMod      = 2 // the connection's OS descriptor modulo the worker count
	Idle       = 3 // the first idle worker in round order
	IPMod      = 4 // the peer's address modulo the worker count
	UIDMod     = 5 // the bound uid modulo the worker count; FDMod before Bind
	Stream     = 7 // idle workers take events, like Idle (Swoole's unix-stream variant)
)

// Event types, as a dispatch_func sees them (Swoole's values).
const (
	EventData    = 0 // stream data
	EventPacket  = 1 // a datagram
	EventClose   = 4 // a connection closed
	EventConnect = 5 // a connection opened
)

// Key is what a mode may look at to choose.
type Key struct {
	FD  int    // the connection's OS descriptor in the master
	IP  uint32 // IPKey of the peer's address
	UID uint32 // the uid bound with Bind, 0 if none
}

// IPKey maps an address to the number IPMod takes the modulo of: an IPv4 address (also
// v4-mapped IPv6) as a big-endian integer, an IPv6 address as an FNV-1a hash. An invalid
// address (a unix socket peer) gives 0.
func IPKey(a netip.Addr) uint32 {
	a = a.Unmap()
	switch {
	case a.Is4():
		b := a.As4()
		return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	case a.Is6():
		b := a.As16()
		h := fnv.New32a()
		h.Write(b[:])
		return h.Sum32()
	}
	return 0
}

// KeepsOrder reports whether mode sends every event of a connection to one worker, so that
// Connect, Receive and Close arrive in order: FDMod, IPMod and UIDMod (Swoole's "hash"
// modes). The others deliver Connect and Close only with enable_unsafe_event.
func KeepsOrder(mode int) bool { return mode == FDMod || mode == IPMod || mode == UIDMod }

// Picker chooses workers among n. Its methods are safe for concurrent use (several reactor
// loops share one).
type Picker struct {
	n  int
	rr atomic.Uint64
}

// NewPicker returns a Picker over workers 0 … n-1 (n ≥ 1).
func NewPicker(n int) *Picker { return &Picker{n: max(n, 1)} }

// N returns the number of workers.
func (p *Picker) N() int { return p.n }

// Pick returns the worker for an event under mode. idle reports whether worker i is idle
// (used by Idle and Stream only; nil counts every worker as busy). noIdle is true when
// an idle mode found no idle worker: the event then goes to the next worker in round order
// (Swoole's 9007 warning: the work is still queued).
func (p *Picker) Pick(mode int, k Key, idle func(i int) bool) (id int, noIdle bool) {
	n := p.n
	switch mode {
	case RoundRobin:
		return int((p.rr.Add(1) - 1) % uint64(n)), false
	case IPMod:
		return int(k.IP % uint32(n)), false
	case UIDMod:
		if k.UID != 0 {
			return int(k.UID % uint32(n)), false
		}
		return fdMod(k.FD, n), false
	case Idle, Stream:
		start := p.rr.Add(1) - 1
		if idle != nil {
			for i := range uint64(n) {
				id := int((start + i) % uint64(n))
				if idle(id) {
					return id, false
				}
			}
		}
		return int(start % uint64(n)), true
	default: // FDMod
		return fdMod(k.FD, n), false
	}
}

func fdMod(fd, n int) int {
	if fd < 0 {
		fd = -fd
	}
	return fd % n
}
