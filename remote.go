package swoole

import (
	"encoding/binary"
	"errors"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/conntable"
	"github.com/goswoole/swoole/internal/ipc"
)

// Calls that reach another process of a multi-process ModeBase server: a connection owned by
// another worker (its slot in the shared table says which), another worker (SendMessage,
// Stop), or the manager (Reload, Shutdown, Stop from a worker).

// multi returns s.mp once Start has got past preparing (Start writes it while preparing).
func (s *Server) multi() *multi {
	if st := s.state.Load(); st == stateNew || st == stateStarting {
		return nil
	}
	return s.mp
}

// forward writes a request to worker owner's pipe. A worker's Writer never blocks (what the
// pipe does not take is queued and flushed by the loop); the manager, which has no loop,
// waits up to max_wait_time for room.
func (s *Server) forward(call string, owner int, h ipc.Header, payload []byte) error {
	return s.forwardFD(call, owner, h, payload, -1)
}

// forwardFD is forward with a descriptor passed along with the request (SCM_RIGHTS; -1:
// none). The descriptor is the pipe's from the call on, whatever the result: closed once
// sent, or on error.
func (s *Server) forwardFD(call string, owner int, h ipc.Header, payload []byte, fd int) error {
	mp := s.mp
	var wr *ipc.Writer
	if mp != nil {
		wr = s.pipeTo(owner) // ModeProcess: the master's reactor that holds the session
	}
	if wr == nil && fd >= 0 {
		unix.Close(fd)
	}
	if mp == nil {
		return s.fail(newError(ErrSessionNotExist, "%s: session %d belongs to no process of this server", call, h.Fd))
	}
	if wr == nil {
		return s.fail(newError(ErrSessionNotExist, "%s: session %d belongs to worker %d, which this server does not have", call, h.Fd, owner))
	}
	h.SrcWorker = mp.src
	var err error
	if s.run.asyncPipes() {
		// A control request (Close, Pause, Resume, Confirm, SendFile) to a ModeProcess
		// reactor leaves now, after what the batch sent before it, and not with the batch's
		// replies: a reply sent after Pause returned must not reach the client before the
		// pause reaches the reactor.
		urgent := h.Type != ipc.TypeSend && reactorOf(owner) >= 0 && s.cur.loop.OnLoop() && mp.replyHolds > 0 // replyHolds: loop goroutine only
		if urgent {
			s.flushReplies()
		}
		if fd >= 0 {
			err = wr.WriteFD(h, payload, fd)
		} else {
			err = wr.Write(h, payload)
		}
		if urgent && err == nil {
			_, _ = wr.Flush()
		}
	} else if fd >= 0 {
		err = wr.WriteFDBlocking(h, payload, fd, time.Now().Add(s.eff.MaxWaitTime))
	} else {
		err = wr.WriteBlocking(h, payload, time.Now().Add(s.eff.MaxWaitTime))
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ipc.ErrTooLarge):
		return s.fail(newError(ErrDataLengthTooLarge, "%s: %d bytes for worker %d: one message to another worker carries at most %d bytes; split the data", call, len(payload), owner, ipc.DefaultMaxMessage))
	case errors.Is(err, ipc.ErrQueueFull), errors.Is(err, ipc.ErrTimeout):
		return s.fail(newError(ErrOutputBufferOverflow, "%s: the pipe to worker %d is full (it does not keep up): try again later", call, owner))
	}
	return s.fail(wrapErrno("", err, "%s: cannot write to worker %d", call, owner))
}

// sendRemote is Send (data checked) for a connection of another process (the ModeProcess master's, or
// another ModeBase worker's): the checks are made here, the bytes are written by the owner,
// which queues whatever arrives (this call has returned nil by then: nothing it accepted is
// dropped). A connection whose queue the owner marked as over socket_buffer_size
// (FlagOverflow, set when the queue reaches it, cleared when it drains below) refuses the Send
// with 1008, as Swoole's worker does.
func (s *Server) sendRemote(r connRoute, fd int64, data []byte) error {
	if r.slot.HasFlag(conntable.FlagOverflow) {
		if !s.eff.SendYield {
			return s.fail(newError(ErrOutputBufferOverflow, "Send: session %d has output queued at or above socket_buffer_size (the peer does not read fast enough): wait for OnBufferEmpty, or raise socket_buffer_size", fd))
		}
		if err := s.waitRoom(r, fd); err != nil {
			return err
		}
	}
	return s.forward("Send", r.owner, ipc.Header{Type: ipc.TypeSend, Fd: fd}, data)
}

// waitRoom is send_yield for a connection another process holds: it waits until the owner
// has written the connection's queue back under socket_buffer_size (FlagOverflow cleared),
// up to send_timeout (0: as long as the connection lives). Meanwhile what this process
// queued for the owner goes out (its loop, if the caller is the loop, is not running).
func (s *Server) waitRoom(r connRoute, fd int64) error {
	if w := s.cur; w != nil && w.loop.OnLoop() {
		s.flushReplies() // replies made before this wait do not wait with it
	}
	var deadline time.Time
	if s.eff.SendTimeout > 0 {
		deadline = time.Now().Add(s.eff.SendTimeout)
	}
	wr := s.pipeTo(r.owner)
	pause := 50 * time.Microsecond
	for r.slot.HasFlag(conntable.FlagOverflow) {
		if r.slot.Session.Load() != fd || r.closing() {
			return s.fail(newError(ErrSessionNotExist, "Send: session %d closed while send_yield waited for room in its output queue", fd))
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return s.fail(&Error{Code: int(syscall.ETIMEDOUT), Msg: "swoole: Send: send_yield waited send_timeout for room in the output queue of session " + fmtInt(fd), Err: syscall.ETIMEDOUT})
		}
		if wr != nil && wr.Buffered() > 0 {
			_, _ = wr.Flush()
		}
		time.Sleep(pause)
		pause = min(2*pause, 2*time.Millisecond)
	}
	return nil
}

// pipeTo returns the pipe that reaches owner (a worker id, or a master reactor), or nil.
func (s *Server) pipeTo(owner int) *ipc.Writer {
	mp := s.mp
	if r := reactorOf(owner); r >= 0 && r < len(mp.toReactor) {
		return mp.toReactor[r]
	} else if owner >= 0 && owner < len(mp.toWorker) {
		return mp.toWorker[owner]
	}
	return nil
}

// sendFileRemote asks the owner of session fd to send the file ffd (opened and checked by
// the caller, with the caller's rights): the descriptor travels with the request
// (SCM_RIGHTS), the name only for the owner's log. ffd is the pipe's from the call on.
func (s *Server) sendFileRemote(owner int, fd int64, ffd int, filename string, offset, length int64) error {
	payload := make([]byte, 16, 16+len(filename))
	binary.LittleEndian.PutUint64(payload, uint64(offset))
	binary.LittleEndian.PutUint64(payload[8:], uint64(length))
	payload = append(payload, filename...)
	return s.forwardFD("SendFile", owner, ipc.Header{Type: ipc.TypeSendFile, Fd: fd}, payload, ffd)
}

// sendFileFor carries out a SendFile another process asked for, on the owner's loop, with
// the descriptor that came with the request (ffd; -1 when none came). The owner never opens
// a file by name for another process: it may hold rights the asker has not (a ModeProcess
// master runs as root while its workers drop to user), and the name may lead elsewhere by
// now (a symbolic link swapped). A request without a descriptor, or whose descriptor is not
// a readable regular file, is refused: nothing is sent.
func (w *worker) sendFileFor(c *conn, payload []byte, ffd int) {
	s := w.s
	refuse := func(why string) {
		if ffd >= 0 {
			unix.Close(ffd)
		}
		if ok, left := s.logLimits[logRefusedMsg].allow(); ok {
			s.log.Warn("swoole: a SendFile request from another process was refused: "+why, "fd", c.id, "suppressed", left)
		}
	}
	if ffd < 0 {
		refuse("it came without the file's descriptor")
		return
	}
	if len(payload) < 16 {
		refuse("malformed request")
		return
	}
	offset := int64(binary.LittleEndian.Uint64(payload))
	length := int64(binary.LittleEndian.Uint64(payload[8:]))
	var st unix.Stat_t
	if err := unix.Fstat(ffd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		refuse("not a regular file")
		return
	}
	if fl, err := unix.FcntlInt(uintptr(ffd), unix.F_GETFL, 0); err != nil || fl&unix.O_ACCMODE == unix.O_WRONLY {
		refuse("the file is not open for reading")
		return
	}
	if offset < 0 || length <= 0 {
		refuse("bad offset or length")
		return
	}
	if err := c.rc.SendFile(ffd, offset, length); err != nil { // owns ffd
		s.log.Warn("swoole: SendFile from another worker failed", "fd", c.id, "file", string(payload[16:]), "err", err)
		return
	}
	s.countSend(c, length)
}

// fromManager reports whether a message came from the process it names: one that claims to
// come from the manager (SrcWorker managerSrcID; the ModeProcess master does the manager's
// work), or that only the manager sends (managerOnly: a client's events for a ModeProcess
// worker), from the manager's process; one that names a worker, task worker or user process,
// from the process the manager started under that id or the one it replaced (the pid map,
// pidmap.go; the manager may send in any id's name). The header's SrcWorker is whatever its writer put there, and every child can
// write to every pipe; the pid r tells is the kernel's (ipc.NewPair sets SO_PASSCRED), which
// a process cannot choose without CAP_SYS_ADMIN. The caller drops a message that fails; it
// is logged here, rate-limited.
func (s *Server) fromManager(r *ipc.Reader, h ipc.Header, managerOnly bool) bool {
	if r == nil {
		return true
	}
	pid := int(r.SenderPID())
	if pid == 0 || pid == s.run.managerPID() { // 0: a socket that does not tell
		return true
	}
	if !managerOnly && h.SrcWorker != managerSrcID {
		// A worker's id: the sender must be the process the manager started under it (or
		// the one that process replaced), as the pid map says (pidmap.go).
		var pm *pidMap
		if s.mp != nil {
			pm = s.mp.pids
		}
		if pm == nil || pm.holds(int(h.SrcWorker), int32(pid)) {
			return true
		}
		if ok, left := s.logLimits[logForgedSrc].allow(); ok {
			s.log.Warn("swoole: a message came from another process than the worker it names: dropped", "type", h.Type.String(), "claims", h.SrcWorker, "sender_pid", pid, "suppressed", left)
		}
		return false
	}
	if ok, left := s.logLimits[logForgedSrc].allow(); ok {
		s.log.Warn("swoole: a message that only the manager sends came from another process: dropped", "type", h.Type.String(), "claims", h.SrcWorker, "sender_pid", pid, "manager_pid", s.run.managerPID(), "suppressed", left)
	}
	return false
}

// sendMessageMulti delivers SendMessage's payload to worker dst's OnPipeMessage.
func (s *Server) sendMessageMulti(payload []byte, dst int) error {
	s.flushBeforeHandoff()
	return s.forward("SendMessage", dst, ipc.Header{Type: ipc.TypePipeMessage}, payload)
}

// signalManager sends sig to the manager (Reload, Shutdown from a worker).
func (s *Server) signalManager(call string, sig syscall.Signal) error {
	pid := s.run.managerPID()
	if err := syscall.Kill(pid, sig); err != nil {
		return s.fail(wrapErrno("kill", err, "%s: cannot signal the manager (pid %d)", call, pid))
	}
	return nil
}

// notInManager is the error of a call that needs a worker's event loop, made in the manager.
func (s *Server) notInManager(call string) error {
	return s.fail(newError(ErrOperationNotSupport, "%s: the manager and user processes have no event loop: call it in a worker (OnWorkerStart, a callback)", call))
}
