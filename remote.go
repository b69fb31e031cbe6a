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
	mp := s.mp
	if mp == nil {
		return s.fail(newError(ErrSessionNotExist, "%s: session %d belongs to no process of this server", call, h.Fd))
	}
	wr := s.pipeTo(owner) // ModeProcess: the master's reactor that holds the session
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
		err = wr.Write(h, payload)
		if urgent && err == nil {
			_, _ = wr.Flush()
		}
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

// sendFileRemote asks the owner of session fd to send the file (checked by the caller).
func (s *Server) sendFileRemote(owner int, fd int64, filename string, offset, length int64) error {
	payload := make([]byte, 16, 16+len(filename))
	binary.LittleEndian.PutUint64(payload, uint64(offset))
	binary.LittleEndian.PutUint64(payload[8:], uint64(length))
	payload = append(payload, filename...)
	return s.forward("SendFile", owner, ipc.Header{Type: ipc.TypeSendFile, Fd: fd}, payload)
}

// sendFileFor carries out a SendFile another process asked for, on the owner's loop.
func (w *worker) sendFileFor(c *conn, payload []byte) {
	s := w.s
	if len(payload) < 16 {
		return
	}
	offset := int64(binary.LittleEndian.Uint64(payload))
	length := int64(binary.LittleEndian.Uint64(payload[8:]))
	name := string(payload[16:])
	ffd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		s.log.Warn("swoole: SendFile from another worker: cannot open the file", "fd", c.id, "file", name, "err", err)
		return
	}
	if err := c.rc.SendFile(ffd, offset, length); err != nil {
		s.log.Warn("swoole: SendFile from another worker failed", "fd", c.id, "file", name, "err", err)
		return
	}
	s.countSend(c, length)
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
