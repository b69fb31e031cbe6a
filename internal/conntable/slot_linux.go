//go:build linux

package conntable

import (
	"encoding/binary"
	"math"
	"net/netip"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Slot states, stored in Slot.State.
const (
	StateFree     uint32 = 0 // unused; Alloc may take it
	StateReserved uint32 = 1 // taken by Alloc, being filled by its owner, not yet visible
	StateOpen     uint32 = 2 // a live connection
	StateClosing  uint32 = 3 // closing: MarkClosing succeeded, Release not yet done
)

// Connection flags, stored in Slot.Flags.
const (
	FlagBound     uint32 = 1 << 0 // a uid is bound (SetUIDOnce)
	FlagProtected uint32 = 1 << 1 // protected from heartbeat closing
	FlagPaused    uint32 = 1 << 2 // receiving is paused
	FlagDelayRecv uint32 = 1 << 3 // enable_delay_receive: not yet confirmed
	FlagConfirmed uint32 = 1 << 4 // confirmed after delayed receive
	FlagSSL       uint32 = 1 << 5 // the connection uses TLS
	// FlagOverflow: the owner's output queue for the connection is at or above
	// socket_buffer_size. The owner sets and clears it; other processes refuse a Send
	// while it is set (the owner, which gets the Send later, never drops it).
	FlagOverflow uint32 = 1 << 6
	// FlagCloseAsked: a process other than the owner asked for the connection to be closed
	// (Close forwarded to the owner). Data for the session that reaches a worker after it is
	// set is dropped (Swoole's conn->closed: Worker_discard_data).
	FlagCloseAsked uint32 = 1 << 7
)

// MaxAddrLen is the largest remote address SetRemoteAddr stores: a unix
// socket path (sun_path is 108 bytes); longer paths are truncated.
const MaxAddrLen = 108

const (
	addrWords   = 14 // ceil(MaxAddrLen / 8): the words of a long address
	inlineWords = 2  // the words of the address kept in the Slot itself
	inlineLen   = inlineWords * 8
)

// Slot is one connection in the shared mapping. Its fields are written only
// by the owning process (see the package doc); readers treat them as a
// snapshot. Unless said otherwise a field is 0 when the slot is free.
//
// A Slot is 128 bytes, and every connection touches its own: the table's
// resident memory is 128 bytes per connection (idle connections are a
// server's main cost in memory). An IP address (16 bytes at most) and a
// unix socket path of up to 16 bytes are kept in the Slot; a longer path
// goes to the table's address region (one 112-byte entry per slot, in
// pages that are touched only by connections with such a path; most unix
// peers are unnamed).
type Slot struct {
	// Session is the session id held by this slot (0 when free).
	Session atomic.Int64
	// State is StateFree, StateReserved, StateOpen or StateClosing.
	State atomic.Uint32
	// Flags holds Flag* bits; use SetFlag, ClearFlag, HasFlag.
	Flags atomic.Uint32
	// Worker is the id of the owning worker.
	Worker atomic.Int32
	// FD is the OS file descriptor of the connection in the owning process.
	FD atomic.Int32
	// ReactorID is the reactor (event loop) that serves the connection.
	ReactorID atomic.Int32
	// ServerFD is the OS fd of the listening socket that accepted it.
	ServerFD atomic.Int32
	// ServerPort is the port of that listener.
	ServerPort atomic.Int32
	// SocketType is the listener's socket type (the server's SockType value).
	SocketType atomic.Int32
	// PortIndex is the index of the listener among the server's ports.
	PortIndex atomic.Int32
	// RemotePort is the peer's port (0 for unix sockets).
	RemotePort atomic.Int32
	// CloseErrno is the errno that closed the connection, if any.
	CloseErrno atomic.Int32
	// UID is the uid bound with SetUIDOnce (0 when none).
	UID atomic.Uint32
	// ConnectTime is the accept time in unix seconds.
	ConnectTime atomic.Int64
	// LastRecv is the time of the last receive in unix nanoseconds.
	LastRecv atomic.Int64
	// LastSend is the time of the last send in unix nanoseconds.
	LastSend atomic.Int64
	// LastDispatch is the time of the last dispatch to a worker in unix nanoseconds.
	LastDispatch atomic.Int64
	// RecvQueued is the number of received bytes not yet handled.
	RecvQueued Bytes32
	// SendQueued is the number of bytes waiting to be sent.
	SendQueued Bytes32

	addrMeta atomic.Uint32 // family | length<<16
	pins     atomic.Int32  // MarkClosing callers in flight; Release waits for 0
	// OwnerPID is the OS pid of the owning process, so that the process that spawned it can
	// reclaim the slots of one that died without releasing them (ReleaseOwnedBy).
	OwnerPID atomic.Int32
	_        uint32
	addr     [inlineWords]atomic.Uint64 // raw address bytes, little endian, when they fit
}

// longAddr is the entry of a slot in the table's address region: a unix socket path longer
// than the Slot's inline space.
type longAddr [addrWords]atomic.Uint64

// Bytes32 is a byte count kept in 32 bits, with the methods of an atomic.Int64: Store
// saturates at math.MaxUint32 (4 GiB − 1) and stores a negative count as 0.
type Bytes32 struct{ v atomic.Uint32 }

// Store sets the count to n, saturated to [0, math.MaxUint32].
func (b *Bytes32) Store(n int64) { b.v.Store(uint32(min(max(n, 0), math.MaxUint32))) }

// Load returns the count.
func (b *Bytes32) Load() int64 { return int64(b.v.Load()) }

// Add adds d (which may be negative) to the count, saturated to [0, math.MaxUint32], and
// returns the new count.
func (b *Bytes32) Add(d int64) int64 {
	for {
		old := b.v.Load()
		n := uint32(min(max(int64(old)+d, 0), math.MaxUint32))
		if b.v.CompareAndSwap(old, n) {
			return int64(n)
		}
	}
}

// SetRemoteAddr records the peer address. The owner calls it before
// Publish. family is unix.AF_INET, unix.AF_INET6 or unix.AF_UNIX. For
// AF_INET, ip may be 4 bytes or 16 (IPv4-mapped); for AF_INET6 it is 16
// bytes. For AF_UNIX, path is the peer's socket path ("" when unnamed) and
// ip and port are ignored. Addresses of a wrong length are stored as empty.
func (s *Slot) SetRemoteAddr(family int, ip []byte, port int, path string) {
	var buf [addrWords * 8]byte
	n := 0
	switch family {
	case unix.AF_INET:
		switch len(ip) {
		case 4:
			n = copy(buf[:], ip)
		case 16:
			n = copy(buf[:], ip[12:])
		}
		s.RemotePort.Store(int32(port))
	case unix.AF_INET6:
		if len(ip) == 16 {
			n = copy(buf[:], ip)
		}
		s.RemotePort.Store(int32(port))
	case unix.AF_UNIX:
		n = copy(buf[:MaxAddrLen], path)
		s.RemotePort.Store(0)
		if n > inlineLen {
			la := longAddrOf(s)
			if la == nil { // not a slot of a live table: keep what fits
				n = inlineLen
				break
			}
			for i := range la {
				la[i].Store(binary.LittleEndian.Uint64(buf[i*8:]))
			}
		}
	}
	for i := range s.addr {
		s.addr[i].Store(binary.LittleEndian.Uint64(buf[i*8:]))
	}
	s.addrMeta.Store(uint32(uint16(family)) | uint32(n)<<16)
}

// RemoteFamily returns the address family given to SetRemoteAddr (0 if none).
func (s *Slot) RemoteFamily() int {
	return int(uint16(s.addrMeta.Load()))
}

// RemoteIP returns the peer address as text: "127.0.0.1", "::1", or the
// unix socket path ("" for an unnamed unix peer or when none was set).
func (s *Slot) RemoteIP() string {
	meta := s.addrMeta.Load()
	family, n := int(uint16(meta)), int(uint16(meta>>16))
	var buf [addrWords * 8]byte
	if n > inlineLen {
		la := longAddrOf(s)
		if la == nil {
			return ""
		}
		for i := range la {
			binary.LittleEndian.PutUint64(buf[i*8:], la[i].Load())
		}
	} else {
		for i := range s.addr {
			binary.LittleEndian.PutUint64(buf[i*8:], s.addr[i].Load())
		}
	}
	switch family {
	case unix.AF_INET:
		if n == 4 {
			return netip.AddrFrom4([4]byte(buf[:4])).String()
		}
	case unix.AF_INET6:
		if n == 16 {
			return netip.AddrFrom16([16]byte(buf[:16])).String()
		}
	case unix.AF_UNIX:
		if n > MaxAddrLen {
			n = MaxAddrLen
		}
		return string(buf[:n])
	}
	return ""
}

// SetFlag sets the bits of f. Any process may call it.
func (s *Slot) SetFlag(f uint32) { s.Flags.Or(f) }

// ClearFlag clears the bits of f. Any process may call it.
func (s *Slot) ClearFlag(f uint32) { s.Flags.And(^f) }

// HasFlag reports whether every bit of f is set.
func (s *Slot) HasFlag(f uint32) bool { return s.Flags.Load()&f == f }

// SetUIDOnce binds uid to the connection if no uid is bound yet and reports
// whether it did; it returns false if one is already bound. As in Swoole,
// uid 0 means "not bound", so SetUIDOnce(0) binds nothing and returns false.
// UID is set before FlagBound, so a reader that sees FlagBound sees the uid.
func (s *Slot) SetUIDOnce(uid uint32) bool {
	if uid == 0 || !s.UID.CompareAndSwap(0, uid) {
		return false
	}
	s.SetFlag(FlagBound)
	return true
}

// clear zeroes every field but Session, State and pins.
func (s *Slot) clear() {
	s.Flags.Store(0)
	s.Worker.Store(0)
	s.OwnerPID.Store(0)
	s.FD.Store(0)
	s.ReactorID.Store(0)
	s.ServerFD.Store(0)
	s.ServerPort.Store(0)
	s.SocketType.Store(0)
	s.PortIndex.Store(0)
	s.RemotePort.Store(0)
	s.CloseErrno.Store(0)
	s.UID.Store(0)
	s.ConnectTime.Store(0)
	s.LastRecv.Store(0)
	s.LastSend.Store(0)
	s.LastDispatch.Store(0)
	s.RecvQueued.Store(0)
	s.SendQueued.Store(0)
	s.addrMeta.Store(0)
	for i := range s.addr {
		s.addr[i].Store(0)
	}
}
