//go:build linux

package ipc

import (
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SocketBufferSize is the send and receive buffer size NewPair asks for (best effort: it
// tries SO_SNDBUFFORCE, which needs CAP_NET_ADMIN, then SO_SNDBUF, which the kernel caps at
// net.core.wmem_max). On a connected AF_UNIX datagram pair the sender's SO_SNDBUF is what
// bounds the bytes in flight.
const SocketBufferSize = 4 << 20

// ioFlags go with every send and receive: MSG_DONTWAIT makes each call non-blocking whatever
// the descriptor's O_NONBLOCK flag says. That flag belongs to the open file description,
// which parent and child share, and os/exec or os.File.Fd may change it behind our back.
const (
	sendFlags = unix.MSG_DONTWAIT | unix.MSG_NOSIGNAL
	recvFlags = unix.MSG_DONTWAIT | unix.MSG_CMSG_CLOEXEC // received descriptors never leak into a child
)

// NewPair creates a connected AF_UNIX SOCK_DGRAM socket pair for one worker: the master keeps
// a and passes b to the child (exec.Cmd.ExtraFiles), keeping b too if it is to hand it to a
// restarted child. Both ends are close-on-exec (ExtraFiles clears that in the child) and
// non-blocking, and have SocketBufferSize buffers where the system allows. Both ends have
// SO_PASSCRED, so that every datagram carries its sender's pid, set by the kernel (see
// [Reader.SenderPID]); it is set before any process may write, so no datagram lacks it.
//
// The files are not registered with Go's network poller (os.File would otherwise do so for a
// non-blocking descriptor, and wake the runtime for every datagram): drive them with Writer
// and Reader, and their descriptors with your own epoll loop.
func NewPair() (a, b *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	for _, fd := range fds {
		tuneBuffers(fd)
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
			unix.Close(fds[0])
			unix.Close(fds[1])
			return nil, nil, os.NewSyscallError("setsockopt", err)
		}
	}
	// Wrap while still blocking, so that os.NewFile does not register them with the
	// netpoller; then make them non-blocking.
	a = os.NewFile(uintptr(fds[0]), "ipc-pair-a")
	b = os.NewFile(uintptr(fds[1]), "ipc-pair-b")
	for _, fd := range fds {
		if err := unix.SetNonblock(fd, true); err != nil {
			a.Close()
			b.Close()
			return nil, nil, os.NewSyscallError("fcntl", err)
		}
	}
	return a, b, nil
}

// tuneBuffers raises the socket's buffers, best effort.
func tuneBuffers(fd int) {
	for _, o := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[0], SocketBufferSize) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[1], SocketBufferSize)
		}
	}
}

// Inherit adopts an inherited end of a pair in a child process (fd is 3 for the first of
// exec.Cmd.ExtraFiles). It checks that fd is an AF_UNIX datagram socket, marks it
// close-on-exec and non-blocking, and wraps it in an *os.File that is not registered with
// Go's network poller (use this rather than os.NewFile, which would register it).
func Inherit(fd uintptr, name string) (*os.File, error) {
	if err := checkSocket(int(fd)); err != nil {
		return nil, err
	}
	// os.NewFile registers a non-blocking descriptor with the netpoller: clear the flag
	// around the call. Nobody depends on it (every call passes MSG_DONTWAIT).
	if err := unix.SetNonblock(int(fd), false); err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(fd, name)
	unix.CloseOnExec(int(fd))
	if err := unix.SetNonblock(int(fd), true); err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	return f, nil
}

// checkSocket returns ErrBadSocket unless fd is an AF_UNIX datagram socket.
func checkSocket(fd int) error {
	dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return fmt.Errorf("%w: fd %d: %w", ErrBadSocket, fd, os.NewSyscallError("getsockopt", err))
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return fmt.Errorf("%w: fd %d: %w", ErrBadSocket, fd, os.NewSyscallError("getsockopt", err))
	}
	if dom != unix.AF_UNIX || typ != unix.SOCK_DGRAM {
		return fmt.Errorf("%w: fd %d has domain %d, type %d", ErrBadSocket, fd, dom, typ)
	}
	return nil
}

// fileFD returns f's descriptor. Fd does not change the descriptor's mode for files made by
// NewPair or Inherit (they are not in the netpoller); for others it may make the description
// blocking, which does not matter here (MSG_DONTWAIT).
func fileFD(f *os.File) (int, error) {
	if f == nil {
		return -1, fmt.Errorf("%w: nil file", ErrBadSocket)
	}
	fd := int(f.Fd())
	if err := checkSocket(fd); err != nil {
		return -1, err
	}
	return fd, nil
}

// sendmsg sends one message. It returns the errno (0 on success).
func sendmsg(fd int, msg *unix.Msghdr) unix.Errno {
	for {
		_, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(msg)), sendFlags)
		if e != unix.EINTR {
			return e
		}
	}
}

// sendmmsg sends up to len(msgs) messages and returns how many went; x/sys/unix v0.50.0 has
// the Mmsghdr type but no wrapper.
func sendmmsg(fd int, msgs []unix.Mmsghdr) (int, unix.Errno) {
	for {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), sendFlags, 0, 0)
		if e != unix.EINTR {
			if e != 0 {
				return 0, e
			}
			return int(r), 0
		}
	}
}

// recvmmsg receives up to len(msgs) datagrams without waiting.
func recvmmsg(fd int, msgs []unix.Mmsghdr) (int, unix.Errno) {
	for {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), recvFlags, 0, 0)
		if e != unix.EINTR {
			if e != 0 {
				return 0, e
			}
			return int(r), 0
		}
	}
}

// waitFD polls fd for events until deadline (zero: no deadline). It returns ErrTimeout
// when the deadline passes first; POLLERR or POLLHUP count as ready (the next call reports
// the error).
func waitFD(fd int, events int16, deadline time.Time) error {
	pfd := [1]unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		ms := -1
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return ErrTimeout
			}
			ms = int((d + time.Millisecond - 1) / time.Millisecond)
		}
		n, err := unix.Poll(pfd[:], ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("poll", err)
		}
		if n > 0 {
			return nil
		}
	}
}
