//go:build linux

package servers

import (
	"errors"
	"net"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// rawLoop is what the floor and uring servers share: a listening IPv4 socket made with system
// calls, an eventfd that tells the loop to stop, and the address. The loop closes done when it
// has returned.
type rawLoop struct {
	lfd, wakefd int
	addr        string
	mu          sync.Mutex
	stopped     bool
	done        chan struct{}
}

// listen4 opens the listening socket on addr (host:port, IPv4; port 0 picks one) with the
// socket type flags given (SOCK_NONBLOCK or not), and the wake-up eventfd (efdFlags).
func (l *rawLoop) listen4(addr string, sockFlags, efdFlags int) error {
	l.lfd, l.wakefd, l.done = -1, -1, make(chan struct{})
	host, port, err := splitAddr(addr)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host).To4()
	if ip == nil {
		return errors.New("IPv4 addresses only")
	}
	if l.lfd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|sockFlags, 0); err != nil {
		return os.NewSyscallError("socket", err)
	}
	_ = unix.SetsockoptInt(l.lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	sa := &unix.SockaddrInet4{Port: port}
	copy(sa.Addr[:], ip)
	if err := unix.Bind(l.lfd, sa); err != nil {
		return os.NewSyscallError("bind", err)
	}
	if err := unix.Listen(l.lfd, 4096); err != nil {
		return os.NewSyscallError("listen", err)
	}
	got, err := unix.Getsockname(l.lfd)
	if err != nil {
		return os.NewSyscallError("getsockname", err)
	}
	l.addr = net.JoinHostPort(host, strconv.Itoa(got.(*unix.SockaddrInet4).Port))
	if l.wakefd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|efdFlags); err != nil {
		return os.NewSyscallError("eventfd", err)
	}
	return nil
}

func (l *rawLoop) Addr() string { return l.addr }

// closeFDs closes the listener and the eventfd (those opened so far).
func (l *rawLoop) closeFDs() {
	for _, fd := range []int{l.lfd, l.wakefd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// stop wakes the loop, waits until it has returned, and closes the descriptors.
func (l *rawLoop) stop() {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.stopped = true
	l.mu.Unlock()
	one := [8]byte{1}
	_, _ = unix.Write(l.wakefd, one[:])
	<-l.done
	l.closeFDs()
}
