package swoole

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/ipc"
	"github.com/goswoole/swoole/internal/supervisor"
)

// Event areas. A ModeProcess worker receives the master's events in batches (one recvmmsg,
// many events). So that a worker killed in the middle of a batch loses at most the event in
// hand, as in Swoole, and never the ones it received with it, each event worker receives its
// batches into memory the master made (a memfd per worker id, file ipc.area) and records
// there the event it is handling (ipc.Config.Area). Its replacement maps the same memory
// and, before it reads the pipe, delivers what the dead process left (ipc.Reader.Resume):
// the events after the one in hand, and with redeliver_event_in_hand that one too.
//
// The replies of a batch are held and sent together (process_worker.go): the same memory
// holds, after the receive area, a journal per reactor pipe mirroring what the worker has
// queued for that reactor and not sent yet (ipc.Writer.AttachJournal), which the
// replacement sends first. So the replies made before the event in hand are not lost with
// the worker either.

const (
	fileArea = "ipc.area"
	// journalSize is the journal of one reactor pipe: past it, replies queued at once are
	// not mirrored (virtual memory: the journal starts over each time its queue empties,
	// so only its first pages are used in practice).
	journalSize = 1 << 20
)

// eventAreaSize is the size of an event area: the receive area, then a journal per reactor.
func (s *Server) eventAreaSize() (recv, total int, err error) {
	recv, err = ipc.AreaSize(s.ipcConfig())
	return recv, recv + s.eff.ReactorNum*journalSize, err
}

// taskAreaSize is the size of a task worker's area: a receive area for its own pipe and one
// for the shared queue (task_ipc_mode 3), each for one datagram at a time. A task worker
// killed between receiving a task and recording it as held (task_inhand.go) would lose it
// without a word; its replacement delivers it instead.
func (s *Server) taskAreaSize() (one, total int, err error) {
	one, err = ipc.AreaSize(s.taskReaderConfig())
	return one, 2 * one, err
}

// buildAreas makes the receive areas, in the manager (the master of ModeProcess): an event
// area per event worker in ModeProcess, an area per task worker in every mode. mp.areas is
// indexed by global id; nil for a process without one.
func (s *Server) buildAreas() error {
	mp := s.mp
	mp.areas = make([]*os.File, s.eff.WorkerNum+s.eff.TaskWorkerNum)
	if mp.master != nil {
		_, size, err := s.eventAreaSize()
		if err != nil {
			return wrapErrno("", err, "cannot size the workers' receive areas")
		}
		for i := range s.eff.WorkerNum {
			if mp.areas[i], err = newAreaFile(size); err != nil {
				return err
			}
		}
	}
	if s.eff.TaskWorkerNum > 0 {
		_, size, err := s.taskAreaSize()
		if err != nil {
			return wrapErrno("", err, "cannot size the task workers' receive areas")
		}
		for i := range s.eff.TaskWorkerNum {
			if mp.areas[s.eff.WorkerNum+i], err = newAreaFile(size); err != nil {
				return err
			}
		}
	}
	return nil
}

// newAreaFile makes a sealed memfd of size bytes.
func newAreaFile(size int) (*os.File, error) {
	fd, err := unix.MemfdCreate("goswoole-area", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, wrapErrno("", os.NewSyscallError("memfd_create", err), "cannot create the workers' receive areas")
	}
	f := os.NewFile(uintptr(fd), "goswoole-area")
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		f.Close()
		return nil, wrapErrno("", os.NewSyscallError("ftruncate", err), "cannot size the workers' receive areas")
	}
	// Nobody can shrink it under a worker's mapping (SIGBUS).
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		f.Close()
		return nil, wrapErrno("", os.NewSyscallError("fcntl(F_ADD_SEALS)", err), "cannot seal the workers' receive areas")
	}
	return f, nil
}

// mapArea maps the area a child inherited, of size bytes (kept mapped for the process's
// life: its Readers receive there).
func mapArea(what string, size int) ([]byte, error) {
	f, ok := supervisor.Inherited(fileArea)
	if !ok {
		return nil, newError(ErrOperationNotSupport, "%s: the manager passed no receive area", what)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() != int64(size) {
		return nil, newError(ErrOperationNotSupport, "%s: the receive area is not %d bytes: set the same settings in every process", what, size)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, wrapErrno("", os.NewSyscallError("mmap", err), "%s: cannot map the receive area", what)
	}
	return mem, nil
}

// adoptEventArea maps the event area a ModeProcess worker inherited.
func (s *Server) adoptEventArea(what string, cfg ipc.Config) (ipc.Config, error) {
	recv, size, err := s.eventAreaSize()
	if err != nil {
		return cfg, wrapErrno("", err, "%s: cannot size the receive area", what)
	}
	mem, err := mapArea(what, size)
	if err != nil {
		return cfg, err
	}
	cfg.Area = mem[:recv:recv]
	for off := recv; off+journalSize <= size; off += journalSize {
		s.mp.journals = append(s.mp.journals, mem[off:off+journalSize:off+journalSize])
	}
	return cfg, nil
}

// resumeEvents delivers, when this worker takes its pipe, the events its predecessor
// received and did not handle (it died). Loop goroutine, before the pipe is read.
func (w *worker) resumeEvents() {
	s := w.s
	mp := s.mp
	if mp.pin == nil || !mp.pin.area {
		return
	}
	// The replies the predecessor queued and did not send go first, in order; from now on
	// this process's are mirrored in their place.
	for r, wr := range mp.toReactor {
		if r >= len(mp.journals) {
			break
		}
		n, err := wr.AttachJournal(mp.journals[r])
		if err != nil {
			s.log.Warn("swoole: cannot use the reply journal of a reactor pipe", "worker", w.id, "reactor", r, "err", err)
			continue
		}
		if n > 0 {
			s.log.Info("swoole: replies of the worker process before this one sent", "worker", w.id, "reactor", r, "datagrams", n)
		}
	}
	ext := &mp.ext
	ext.inRead++
	s.beginReplyBatch()
	h, lost := mp.reader.Resume(mp.pin.fn, func(ipc.Header) bool { return s.eff.RedeliverEventInHand })
	s.endReplyBatch()
	ext.inRead--
	if lost {
		s.table.Counters().LostMessageCount.Add(1)
		s.log.Warn("swoole: an event was lost: the worker process before this one died handling it (set redeliver_event_in_hand to have it again)",
			"worker", w.id, "type", h.Type.String(), "fd", h.Fd, "code", ErrServerWorkerTerminated)
	}
}
