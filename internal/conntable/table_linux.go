//go:build linux

package conntable

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Magic is the first word of every table mapping ("GOSWCTBL").
const Magic uint64 = 0x4c4254435753_4f47

// Version is the layout version; Open refuses a mapping of another version.
const Version uint32 = 2

const (
	minCapacity = 1024
	// MaxCapacity is the largest number of slots a table may have (so
	// MaxConn is at most MaxCapacity/2).
	MaxCapacity = 1 << 23
	regionAlign = 64
)

// ErrBadTable is returned (wrapped) by Open when the file does not hold a
// table of this layout.
var ErrBadTable = errors.New("conntable: not a valid table mapping")

// header is the first record of the mapping.
type header struct {
	Magic          atomic.Uint64
	Version        atomic.Uint32
	HeaderSize     atomic.Uint32
	CountersSize   atomic.Uint32
	WorkerSlotSize atomic.Uint32
	SlotSize       atomic.Uint32
	_              uint32
	Capacity       atomic.Int64
	MaxConn        atomic.Int64
	WorkerSlots    atomic.Int64
	StartSessionID atomic.Int64
	TotalSize      atomic.Int64
	Len            atomic.Int64 // sessions in Reserved/Open/Closing
	_              [6]uint64
}

// layout is where each region starts in the mapping.
type layout struct {
	counters, workers, slots, addrs, total int
}

func alignUp(n, a int) int { return (n + a - 1) &^ (a - 1) }

func computeLayout(capacity, workerSlots int) layout {
	var l layout
	l.counters = alignUp(int(unsafe.Sizeof(header{})), regionAlign)
	l.workers = alignUp(l.counters+int(unsafe.Sizeof(Counters{})), regionAlign)
	l.slots = alignUp(l.workers+workerSlots*int(unsafe.Sizeof(WorkerSlot{})), regionAlign)
	l.addrs = alignUp(l.slots+capacity*int(unsafe.Sizeof(Slot{})), regionAlign)
	l.total = alignUp(l.addrs+capacity*int(unsafe.Sizeof(longAddr{})), os.Getpagesize())
	return l
}

// Table is one process's view of the shared table. Its methods may be
// called from any goroutine, except that none may be called after (or
// concurrently with) Close.
type Table struct {
	f        *os.File
	mem      []byte
	hdr      *header
	counters *Counters
	workers  []WorkerSlot
	slots    []Slot
	addrs    []longAddr // long unix paths, by slot index
	mask     int64
	maxConn  int64
	startID  int64

	closeOnce sync.Once
	closeErr  error
}

// New creates the table in a new memfd and maps it. capacity, the number of
// slots, is the next power of two >= 2*maxConn (at least 1024); workerSlots
// is the number of WorkerSlot entries. The first session id Alloc hands out
// is startSessionID+1.
func New(maxConn, workerSlots int, startSessionID int64) (*Table, error) {
	if maxConn <= 0 || maxConn > MaxCapacity/2 {
		return nil, fmt.Errorf("conntable: maxConn %d out of range [1, %d]", maxConn, MaxCapacity/2)
	}
	if workerSlots < 0 || workerSlots > 1<<20 {
		return nil, fmt.Errorf("conntable: workerSlots %d out of range [0, %d]", workerSlots, 1<<20)
	}
	if startSessionID < 0 {
		return nil, fmt.Errorf("conntable: negative startSessionID %d", startSessionID)
	}
	capacity := minCapacity
	for capacity < 2*maxConn {
		capacity <<= 1
	}
	l := computeLayout(capacity, workerSlots)

	fd, err := unix.MemfdCreate("goswoole-conntable", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	f := os.NewFile(uintptr(fd), "goswoole-conntable")
	if err := unix.Ftruncate(fd, int64(l.total)); err != nil {
		f.Close()
		return nil, os.NewSyscallError("ftruncate", err)
	}
	// Seal the size: nobody can shrink the file under a mapping (SIGBUS).
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		f.Close()
		return nil, os.NewSyscallError("fcntl(F_ADD_SEALS)", err)
	}
	mem, err := unix.Mmap(fd, 0, l.total, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, os.NewSyscallError("mmap", err)
	}
	t := attach(f, mem, l, capacity, workerSlots)
	h := t.hdr
	h.Version.Store(Version)
	h.HeaderSize.Store(uint32(unsafe.Sizeof(header{})))
	h.CountersSize.Store(uint32(unsafe.Sizeof(Counters{})))
	h.WorkerSlotSize.Store(uint32(unsafe.Sizeof(WorkerSlot{})))
	h.SlotSize.Store(uint32(unsafe.Sizeof(Slot{})))
	h.Capacity.Store(int64(capacity))
	h.MaxConn.Store(int64(maxConn))
	h.WorkerSlots.Store(int64(workerSlots))
	h.StartSessionID.Store(startSessionID)
	h.TotalSize.Store(int64(l.total))
	t.counters.SessionRound.Store(startSessionID)
	h.Magic.Store(Magic) // last: the header is complete
	t.maxConn = int64(maxConn)
	t.startID = startSessionID
	return t, nil
}

// attach overlays the record types on mem.
func attach(f *os.File, mem []byte, l layout, capacity, workerSlots int) *Table {
	t := &Table{f: f, mem: mem, mask: int64(capacity - 1)}
	base := unsafe.Pointer(unsafe.SliceData(mem))
	t.hdr = (*header)(base)
	t.counters = (*Counters)(unsafe.Add(base, l.counters))
	if workerSlots > 0 {
		t.workers = unsafe.Slice((*WorkerSlot)(unsafe.Add(base, l.workers)), workerSlots)
	}
	t.slots = unsafe.Slice((*Slot)(unsafe.Add(base, l.slots)), capacity)
	t.addrs = unsafe.Slice((*longAddr)(unsafe.Add(base, l.addrs)), capacity)
	mapped.add(t)
	return t
}

// mapped is every table this process has mapped and not closed, so that a Slot can find
// its entry in the address region (longAddrOf) without a pointer in the shared mapping.
var mapped tableSet

type tableSet struct {
	mu     sync.RWMutex
	tables []*Table
}

func (m *tableSet) add(t *Table) {
	m.mu.Lock()
	m.tables = append(m.tables, t)
	m.mu.Unlock()
}

func (m *tableSet) remove(t *Table) {
	m.mu.Lock()
	for i, x := range m.tables {
		if x == t {
			m.tables = append(m.tables[:i], m.tables[i+1:]...)
			break
		}
	}
	m.mu.Unlock()
}

// longAddrOf returns the address-region entry of s, or nil when s is not a slot of a table
// this process has mapped. Only long unix paths need it, so the lookup is off the hot path.
func longAddrOf(s *Slot) *longAddr {
	p := uintptr(unsafe.Pointer(s))
	mapped.mu.RLock()
	defer mapped.mu.RUnlock()
	for _, t := range mapped.tables {
		if len(t.slots) == 0 {
			continue
		}
		base := uintptr(unsafe.Pointer(&t.slots[0]))
		if p >= base && p < base+uintptr(len(t.slots))*unsafe.Sizeof(Slot{}) {
			return &t.addrs[(p-base)/unsafe.Sizeof(Slot{})]
		}
	}
	return nil
}

// Open maps a table created by New in another process, given its memfd
// (usually inherited: os.NewFile(3, ...)). Open takes ownership of f: Close
// closes it, and so does Open when it fails. It validates the magic number,
// version, record sizes and region sizes, and returns an error wrapping
// ErrBadTable if they do not match this build.
func Open(f *os.File) (*Table, error) {
	if f == nil {
		return nil, fmt.Errorf("%w: nil file", ErrBadTable)
	}
	t, err := open(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return t, nil
}

func open(f *os.File) (*Table, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	hsize := int64(unsafe.Sizeof(header{}))
	if size < hsize || size > 1<<40 {
		return nil, fmt.Errorf("%w: file size %d", ErrBadTable, size)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	h := (*header)(unsafe.Pointer(unsafe.SliceData(mem)))
	fail := func(format string, args ...any) (*Table, error) {
		_ = unix.Munmap(mem)
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrBadTable}, args...)...)
	}
	if m := h.Magic.Load(); m != Magic {
		return fail("magic %#x", m)
	}
	if v := h.Version.Load(); v != Version {
		return fail("version %d, want %d", v, Version)
	}
	if h.HeaderSize.Load() != uint32(hsize) ||
		h.CountersSize.Load() != uint32(unsafe.Sizeof(Counters{})) ||
		h.WorkerSlotSize.Load() != uint32(unsafe.Sizeof(WorkerSlot{})) ||
		h.SlotSize.Load() != uint32(unsafe.Sizeof(Slot{})) {
		return fail("record sizes differ from this build")
	}
	capacity, maxConn, workerSlots := h.Capacity.Load(), h.MaxConn.Load(), h.WorkerSlots.Load()
	if capacity < minCapacity || capacity > MaxCapacity || capacity&(capacity-1) != 0 {
		return fail("capacity %d", capacity)
	}
	if maxConn <= 0 || maxConn > capacity/2 {
		return fail("maxConn %d for capacity %d", maxConn, capacity)
	}
	if workerSlots < 0 || workerSlots > 1<<20 {
		return fail("workerSlots %d", workerSlots)
	}
	l := computeLayout(int(capacity), int(workerSlots))
	if total := h.TotalSize.Load(); total != int64(l.total) || total > size {
		return fail("total size %d, layout %d, file %d", total, l.total, size)
	}
	t := attach(f, mem, l, int(capacity), int(workerSlots))
	t.maxConn = maxConn
	t.startID = h.StartSessionID.Load()
	return t, nil
}

// File returns the memfd holding the table, to pass to child processes
// (exec.Cmd.ExtraFiles). It stays owned by the Table.
func (t *Table) File() *os.File { return t.f }

// Close unmaps the table and closes its file. It is safe to call twice; the
// second call returns the first call's result. Nothing may use the table,
// or a *Slot, *Counters or *WorkerSlot from it, after Close.
func (t *Table) Close() error {
	t.closeOnce.Do(func() {
		mapped.remove(t)
		err := unix.Munmap(t.mem)
		if err != nil {
			err = os.NewSyscallError("munmap", err)
		}
		t.mem, t.hdr, t.counters, t.workers, t.slots, t.addrs = nil, nil, nil, nil, nil, nil
		t.closeErr = errors.Join(err, t.f.Close())
	})
	return t.closeErr
}

// MaxConn returns the largest number of live sessions Alloc allows.
func (t *Table) MaxConn() int { return int(t.maxConn) }

// Capacity returns the number of slots (a power of two >= 2*MaxConn).
func (t *Table) Capacity() int { return len(t.slots) }

// Counters returns the server-wide statistics counters.
func (t *Table) Counters() *Counters { return t.counters }

// Worker returns the status entry of worker i, or nil if i is out of range.
func (t *Table) Worker(i int) *WorkerSlot {
	if i < 0 || i >= len(t.workers) {
		return nil
	}
	return &t.workers[i]
}

// WorkerSlots returns the number of worker status entries.
func (t *Table) WorkerSlots() int { return len(t.workers) }
