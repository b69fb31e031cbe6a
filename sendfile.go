package swoole

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/reactor"
)

// SendFile sends length bytes of the file filename, from offset, to the connection fd with
// sendfile(2), after any output already queued for it (so it interleaves correctly with Send).
// length 0 sends to the end of the file. A missing file, an offset past the end or a length
// past the end is an error (ErrSystemCallFail 502, as Swoole reports them); a file that is not
// a regular file is ErrServerNotRegularFile (9013). Safe from any goroutine.
func (s *Server) SendFile(fd int64, filename string, offset, length int64) error {
	r, err := s.route("SendFile", fd)
	if err != nil {
		return err
	}
	c, remote, owner := r.c, !r.local(), r.owner
	if offset < 0 || length < 0 {
		return s.fail(newError(ErrInvalidParams, "SendFile: offset %d and length %d must not be negative", offset, length))
	}
	ffd, err := unix.Open(filename, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return s.fail(syscallFail("open", err, "SendFile: cannot open %q: check that the file exists and is readable", filename))
	}
	var st unix.Stat_t
	if err := unix.Fstat(ffd, &st); err != nil {
		unix.Close(ffd)
		return s.fail(syscallFail("fstat", err, "SendFile: cannot stat %q", filename))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(ffd)
		return s.fail(newError(ErrServerNotRegularFile, "SendFile: %q is not a regular file", filename))
	}
	size := st.Size
	if offset >= size {
		unix.Close(ffd)
		return s.fail(newError(ErrSystemCallFail, "SendFile: offset %d is at or past the end of %q (%d bytes)", offset, filename, size))
	}
	if length == 0 {
		length = size - offset
	}
	if offset+length > size {
		unix.Close(ffd)
		return s.fail(newError(ErrSystemCallFail, "SendFile: offset %d + length %d is past the end of %q (%d bytes)", offset, length, filename, size))
	}
	if remote {
		// The owner gets this descriptor, opened and checked here, with this process's
		// rights: it never opens the name itself (route.go, remote.go sendFileFor).
		return s.sendFileRemote(owner, fd, ffd, filename, offset, length)
	}
	if err := c.rc.SendFile(ffd, offset, length); err != nil {
		return s.sendError(c, fd, int(length), err)
	}
	s.countSend(c, length)
	return nil
}

// syscallFail is wrapErrno with Swoole's code for a failed system call, 502, as Swoole
// reports a file SendFile cannot open; the errno stays reachable through errors.Is
// (errors.Is(err, fs.ErrNotExist) for a missing file).
func syscallFail(op string, err error, format string, args ...any) *Error {
	e := wrapErrno(op, err, format, args...)
	e.Code = ErrSystemCallFail
	return e
}

// sendError turns a reactor send error into the server's.
func (s *Server) sendError(c *conn, fd int64, n int, err error) error {
	if e, ok := err.(*Error); ok {
		return e
	}
	if err == reactor.ErrOverflow {
		return s.fail(newError(ErrOutputBufferOverflow, "session %d has %d bytes queued; %d more would pass socket_buffer_size (%d): wait for OnBufferEmpty, or raise socket_buffer_size", fd, c.rc.Queued(), n, c.port.eff.SocketBufferSize))
	}
	return s.fail(newError(ErrSessionNotExist, "session %d is closed", fd))
}

func (s *Server) countSend(c *conn, n int64) {
	ctr := s.table.Counters()
	ctr.TotalSendBytes.Add(n)
	ctr.ResponseCount.Add(1)
	c.w.slot.ResponseCount.Add(1)
	c.slot.LastSend.Store(nanotime())
}

// SendWait sends data to the connection fd and blocks until it is written to the socket or the
// connection is gone (ModeBase only, as in Swoole). It blocks the calling goroutine — when
// that is a callback, the worker's event loop waits with it.
func (s *Server) SendWait(fd int64, data []byte) error {
	if s.mode != ModeBase {
		return s.fail(newError(ErrRefused, "SendWait works in ModeBase only: use Send"))
	}
	r, err := s.route("SendWait", fd)
	if err != nil {
		return err
	}
	if !r.local() {
		return s.fail(newError(ErrOperationNotSupport, "SendWait: session %d belongs to worker %d, another process: SendWait waits only for this worker's own connections; use Send", fd, r.owner))
	}
	if err := s.Send(fd, data); err != nil {
		return err
	}
	if err := r.c.rc.FlushWait(time.Time{}); err != nil {
		return s.fail(newError(ErrSessionClosedByClient, "SendWait: session %d closed before its data was written", fd))
	}
	return nil
}
