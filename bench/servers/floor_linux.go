//go:build linux

package servers

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// ---- floor: the least an epoll server can do per message ----

// floorServer is not a server anyone should run: it is the measuring stick for "an event loop
// that makes one read and one write per ready connection". One goroutine (not locked to its
// thread, as gnet's loops by default), one level-triggered epoll, accept4, and for every readable connection one read
// into one shared buffer and one write of what was read. No callbacks, no connection table,
// no counters, no output queue (a write the socket does not take whole is finished by
// spinning on it), no timers. It polls the way gnet's loop and goswoole's do: epoll_wait
// with timeout 0 first, runtime.Gosched, then a blocking epoll_wait.
//
// Whatever a real server (goswoole, gnet) spends per message above this one's figure is its
// own overhead; what this one spends is the kernel's TCP work, the system calls and the Go
// runtime's scheduling, which no server built the same way can avoid.
type floorServer struct {
	rawLoop
	epfd int
}

// StartFloor starts the floor echo server on addr (host:port; port 0 picks one).
func StartFloor(addr string) (Server, error) {
	s := &floorServer{epfd: -1}
	if err := s.listen4(addr, unix.SOCK_NONBLOCK, unix.EFD_NONBLOCK); err != nil {
		s.closeFDs()
		return nil, fmt.Errorf("floor: %w", err)
	}
	var err error
	if s.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		s.closeFDs()
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	for _, fd := range []int{s.lfd, s.wakefd} {
		if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			s.closeFDs()
			unix.Close(s.epfd)
			return nil, os.NewSyscallError("epoll_ctl", err)
		}
	}
	go s.run()
	return s, nil
}

func (s *floorServer) run() {
	defer close(s.done)
	events := make([]unix.EpollEvent, 256)
	buf := make([]byte, 64<<10)
	open := map[int]struct{}{}
	defer func() {
		for fd := range open {
			unix.Close(fd)
		}
	}()
	for {
		n, err := unix.EpollWait(s.epfd, events, 0)
		if n == 0 && err == nil {
			runtime.Gosched()
			n, err = unix.EpollWait(s.epfd, events, -1)
		}
		if err != nil && err != unix.EINTR {
			return
		}
		for i := range max(n, 0) {
			fd := int(events[i].Fd)
			switch fd {
			case s.wakefd:
				return
			case s.lfd:
				for {
					nfd, _, err := unix.Accept4(s.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
					if err != nil {
						break
					}
					_ = unix.SetsockoptInt(nfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
					if unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, nfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(nfd)}) != nil {
						unix.Close(nfd)
						continue
					}
					open[nfd] = struct{}{}
				}
			default:
				r, err := unix.Read(fd, buf)
				if r <= 0 {
					if err == unix.EAGAIN || err == unix.EINTR {
						continue
					}
					unix.Close(fd) // EOF or error; closing removes it from the epoll set
					delete(open, fd)
					continue
				}
				for w := 0; w < r; {
					k, err := unix.Write(fd, buf[w:r])
					if k > 0 {
						w += k
					}
					if err != nil && err != unix.EAGAIN && err != unix.EINTR {
						break
					}
				}
			}
		}
	}
}

// Close stops the loop, closes every connection and the listener, and waits.
func (s *floorServer) Close() error {
	s.stop()
	unix.Close(s.epfd)
	return nil
}
