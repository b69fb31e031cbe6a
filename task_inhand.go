package swoole

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/ipc"
	"github.com/goswoole/swoole/internal/supervisor"
)

// Tasks in hand. A task worker that dies (killed, crashed, or stopped past max_wait_time)
// takes with it the tasks it has read and not answered yet; the tasks still in its pipe are
// its replacement's. So that the worker waiting for such a task (TaskWait, TaskWaitMulti,
// TaskCo, or a TaskWithCallback) learns of it at once instead of at its timeout (or never),
// each task worker records in a shared table the tasks it holds whose sender waits for an
// answer, and the manager (the master in ModeProcess), when it reaps a task worker, sends
// the sender of each task left there a "lost" answer on the sender's result pipe (after
// whatever the task worker wrote there before it died).
//
// The table is a memfd the manager makes (file task.inhand), inHandPerWorker entries per task
// worker. An entry is free while its pid is 0; the task worker claims one (pid = its own)
// for each such task it reads, and frees it once the answer left on the result pipe (not
// merely queued in its Writer). A task worker holding more than inHandPerWorker such tasks
// at once (task_enable_coroutine) records only the first ones: the waiters of the others
// learn by their timeout.

const (
	fileInHand      = "task.inhand"
	inHandPerWorker = 1024
	// inHandEntrySize is the stride of the table: the size of the record itself, so that
	// no entry reaches into the next one or past the mapping's end.
	inHandEntrySize = int(unsafe.Sizeof(inHandEntry{}))
	// taskFlagLost (a finish message from the manager): the task worker that held the task
	// died; the payload says how.
	taskFlagLost uint16 = 1 << 4
	// inHandAnswered is the pid of an entry the manager answered (its task worker died);
	// free for a claim.
	inHandAnswered int32 = -1
)

// inHandEntry is one entry of the table (24 bytes, in shared memory).
type inHandEntry struct {
	pid   atomic.Int32  // the task worker holding the task; 0: free
	src   atomic.Int32  // the sending worker
	flags atomic.Uint32 // the task's flags (taskFlagWait, taskFlagCallback)
	_     uint32
	id    atomic.Int64 // the task id
}

// inHandTable is the table mapped in one process.
type inHandTable struct {
	mem []byte
	n   int // task workers
}

func (t *inHandTable) entry(tw, i int) *inHandEntry {
	off := (tw*inHandPerWorker + i) * inHandEntrySize
	e := t.mem[off : off+inHandEntrySize : off+inHandEntrySize] // the whole entry lies in the mapping
	return (*inHandEntry)(unsafe.Pointer(unsafe.SliceData(e)))
}

// newInHandTable makes the table in the manager, for n task workers.
func newInHandTable(n int) (*inHandTable, *os.File, error) {
	fd, err := unix.MemfdCreate("goswoole-task-inhand", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, nil, os.NewSyscallError("memfd_create", err)
	}
	f := os.NewFile(uintptr(fd), "goswoole-task-inhand")
	size := n * inHandPerWorker * inHandEntrySize
	if err := f.Truncate(int64(size)); err != nil {
		f.Close()
		return nil, nil, err
	}
	t, err := mapInHand(f, n)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return t, f, nil
}

func mapInHand(f *os.File, n int) (*inHandTable, error) {
	size := n * inHandPerWorker * inHandEntrySize
	if fi, err := f.Stat(); err != nil || fi.Size() < int64(size) {
		return nil, fmt.Errorf("the table of tasks in hand is not %d bytes", size)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	return &inHandTable{mem: mem, n: n}, nil
}

func (t *inHandTable) close() {
	if t != nil && t.mem != nil {
		_ = unix.Munmap(t.mem)
		t.mem = nil
	}
}

// inHand is a task worker's part of the table.
type inHand struct {
	t    *inHandTable
	tw   int   // task worker index
	pid  int32 // this process
	mu   sync.Mutex
	next int           // where the next claim looks first
	sent map[int][]int // by sending worker: entries whose answer is queued in the Writer
	outs []*ipc.Writer // the workers' result pipes
}

// adoptInHand maps the table in a task worker (index tw).
func (ts *taskState) adoptInHand(tw int) error {
	f, ok := supervisor.Inherited(fileInHand)
	if !ok {
		return newError(ErrOperationNotSupport, "task worker %d: the manager passed no table of tasks in hand", tw)
	}
	t, err := mapInHand(f, ts.t)
	f.Close()
	if err != nil {
		return wrapErrno("", err, "task worker %d: cannot map the table of tasks in hand", tw)
	}
	ts.inHandTab = t
	ts.runner.hand = &inHand{t: t, tw: tw, pid: int32(os.Getpid()), sent: map[int][]int{}, outs: ts.resOut}
	return nil
}

// claim records a task this task worker took; it returns the entry, or -1 when the task
// needs none (nobody waits for its answer) or the table is full.
func (h *inHand) claim(hd ipc.Header) int {
	src := int(hd.SrcWorker)
	if h == nil || src < 0 || src >= len(h.outs) || hd.Aux&(taskFlagWait|taskFlagCallback) == 0 {
		return -1
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sweep()
	for k := range inHandPerWorker {
		i := (h.next + k) % inHandPerWorker
		e := h.t.entry(h.tw, i)
		if p := e.pid.Load(); p != 0 && p != inHandAnswered {
			continue
		}
		e.src.Store(int32(src))
		e.flags.Store(uint32(hd.Aux))
		e.id.Store(hd.Fd)
		e.pid.Store(h.pid)
		h.next = i + 1
		return i
	}
	return -1
}

// answered frees entry i once the answer to its task left for worker src: at once when the
// result pipe took it, else when the Writer has sent what it queued (seen at a later claim
// or answer).
func (h *inHand) answered(i, src int) {
	if h == nil || i < 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.outs[src].Buffered() == 0 {
		h.t.entry(h.tw, i).pid.Store(0)
	} else {
		h.sent[src] = append(h.sent[src], i)
	}
	h.sweep()
}

// sweep frees the entries whose answers the Writers have sent since (h.mu held).
func (h *inHand) sweep() {
	for src, list := range h.sent {
		if h.outs[src].Buffered() > 0 {
			continue
		}
		for _, i := range list {
			h.t.entry(h.tw, i).pid.Store(0)
		}
		delete(h.sent, src)
	}
}

// buildInHand makes the table in the manager, with a Writer on each worker's result pipe
// for the "lost" answers.
func (s *Server) buildInHand() error {
	ts := s.task
	t, f, err := newInHandTable(ts.t)
	if err != nil {
		return wrapErrno("", err, "cannot create the table of tasks in hand")
	}
	ts.inHandTab, ts.inHandFile = t, f
	for _, p := range ts.resPair {
		wr, err := ipc.NewWriter(p[0], s.ipcConfig())
		if err != nil {
			return wrapErrno("", err, "cannot write to the task result pipes")
		}
		ts.lostOut = append(ts.lostOut, wr)
	}
	return nil
}

// taskWorkerExited runs in the manager when the process pid of task worker slot (a global
// id) was reaped: the sender of each task it held learns that the task is lost.
func (s *Server) taskWorkerExited(slot, pid, exitCode, sig int) {
	ts := s.task
	if ts == nil || ts.inHandTab == nil || slot < ts.w || slot >= ts.w+ts.t {
		return
	}
	how := fmt.Sprintf("exited (status %d) while it held it", exitCode)
	if sig != 0 {
		how = fmt.Sprintf("was killed by signal %d while it held it", sig)
	}
	tw := slot - ts.w
	deadline := time.Now().Add(s.eff.MaxWaitTime)
	for i := range inHandPerWorker {
		e := ts.inHandTab.entry(tw, i)
		if e.pid.Load() != int32(pid) {
			continue
		}
		src, id, flags := int(e.src.Load()), e.id.Load(), uint16(e.flags.Load())
		s.table.Counters().LostMessageCount.Add(1)
		if src >= 0 && src < len(ts.lostOut) {
			h := ipc.Header{Type: ipc.TypeFinish, SrcWorker: int16(slot), Fd: id, Aux: flags&(taskFlagWait|taskFlagCallback) | taskFlagLost}
			if err := ts.lostOut[src].WriteBlocking(h, []byte(how), deadline); err != nil {
				s.log.Warn("swoole: cannot tell a worker that its task was lost", "task", id, "worker", src, "err", err)
			}
		}
		// Kept, marked answered, until the replacement has looked (heldBefore): a task it
		// finds there was recorded, so answered, and is not to be taken again.
		e.pid.CompareAndSwap(int32(pid), inHandAnswered)
	}
}

// heldBefore reports whether a predecessor of this task worker recorded the task (the entry
// is still its, or marked answered by the manager): the manager answers it, so it must not
// run again. Before the first claim.
func (h *inHand) heldBefore(hd ipc.Header) bool {
	if h == nil {
		return false
	}
	for i := range inHandPerWorker {
		e := h.t.entry(h.tw, i)
		if p := e.pid.Load(); p != 0 && p != h.pid && e.id.Load() == hd.Fd && e.src.Load() == int32(hd.SrcWorker) {
			return true
		}
	}
	return false
}

// release frees the entries the manager marked answered (after heldBefore had its look).
func (h *inHand) release() {
	if h == nil {
		return
	}
	for i := range inHandPerWorker {
		h.t.entry(h.tw, i).pid.CompareAndSwap(inHandAnswered, 0)
	}
}
