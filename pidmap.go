package swoole

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The pid map: which process holds each global id (worker, task worker, user process), as
// the manager started them, in memory the children can read and cannot write. A message
// between the server's processes names its sender in its header (SrcWorker), which is
// whatever the sender wrote; the kernel also tells the reader the sender's pid
// (SO_PASSCRED). A reader takes a message that claims worker id j only from the process the
// manager started as j, or from the one it replaced (a reload lets the old process finish
// while the new one runs), or from the manager itself (fromManager in remote.go).
//
// The manager makes a memfd, maps it for writing, then seals it with F_SEAL_FUTURE_WRITE: a
// child that inherits it can map it only read-only, so a compromised child cannot record
// itself under another worker's id (the connection table, which every child writes, could
// not serve for this). A child waits at boot until the manager has recorded its own pid.

// pidEntry is one global id's processes: the current one and the one it replaced.
type pidEntry struct {
	cur, prev atomic.Int32
}

// pidMap is the mapped pid map.
type pidMap struct {
	mem     []byte
	entries []pidEntry
	file    *os.File // the manager's: what the children inherit
}

const filePidMap = "pidmap"

// pidMapWait bounds a child's wait for its own record at boot.
const pidMapWait = 10 * time.Second

// newPidMap creates the pid map for slots global ids (in the manager).
func newPidMap(slots int) (*pidMap, error) {
	size := max(slots, 1) * int(unsafe.Sizeof(pidEntry{}))
	fd, err := unix.MemfdCreate("goswoole-pids", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	f := os.NewFile(uintptr(fd), "goswoole-pids")
	if err := f.Truncate(int64(size)); err != nil {
		f.Close()
		return nil, err
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, os.NewSyscallError("mmap", err)
	}
	// From now on nobody can map it for writing, nor write it, nor change its size: only
	// this mapping writes.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_FUTURE_WRITE|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		unix.Munmap(mem)
		f.Close()
		return nil, os.NewSyscallError("fcntl(F_ADD_SEALS)", err)
	}
	return &pidMap{mem: mem, entries: unsafe.Slice((*pidEntry)(unsafe.Pointer(&mem[0])), max(slots, 1)), file: f}, nil
}

// adoptPidMap maps the manager's pid map read-only (in a child).
func adoptPidMap(f *os.File) (*pidMap, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	n := int(st.Size()) / int(unsafe.Sizeof(pidEntry{}))
	if n < 1 {
		return nil, fmt.Errorf("the pid map holds %d bytes", st.Size())
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, n*int(unsafe.Sizeof(pidEntry{})), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	f.Close()
	return &pidMap{mem: mem, entries: unsafe.Slice((*pidEntry)(unsafe.Pointer(&mem[0])), n)}, nil
}

// record notes that pid now holds global id slot (in the manager, as it starts a child).
func (m *pidMap) record(slot, pid int) {
	if slot < 0 || slot >= len(m.entries) {
		return
	}
	e := &m.entries[slot]
	if cur := e.cur.Load(); cur != int32(pid) {
		e.prev.Store(cur)
		e.cur.Store(int32(pid))
	}
}

// holds reports whether pid is (or was, just before) the process of global id slot.
func (m *pidMap) holds(slot int, pid int32) bool {
	if slot < 0 || slot >= len(m.entries) || pid <= 0 {
		return false
	}
	e := &m.entries[slot]
	return e.cur.Load() == pid || e.prev.Load() == pid
}

// awaitSelf waits until the manager has recorded this process under slot, up to limit:
// until then the others would drop its messages.
func (m *pidMap) awaitSelf(slot int, limit time.Duration) bool {
	pid := int32(os.Getpid())
	deadline := time.Now().Add(limit)
	for pause := 50 * time.Microsecond; !m.holds(slot, pid); pause = min(2*pause, 5*time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
	}
	return true
}
