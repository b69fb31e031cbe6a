//go:build linux

package reactor

import "golang.org/x/sys/unix"

// FDHandler is told about readiness of a descriptor the loop watches for its caller (an IPC
// socket of the server's processes, a pipe): anything that is neither a listener nor a
// connection. Its methods run on the loop goroutine, one at a time, between other events.
// The loop reads and writes nothing itself: the handler does its own I/O.
type FDHandler interface {
	// Readable is called while the descriptor is readable (level-triggered: it is called
	// again on the next round if data is left), or has an error or hang-up pending.
	Readable()
	// Writable is called while the descriptor is writable and Writable interest is set.
	Writable()
}

// Interest bits for AddFD and SetFDInterest.
const (
	Readable uint32 = unix.EPOLLIN
	Writable uint32 = unix.EPOLLOUT
)

// AddFD starts watching fd for the interest given (Readable, Writable, both, or none) and
// reports its readiness to h. fd stays owned by the caller: RemoveFD before closing it. Call
// it on the loop goroutine or before Run.
func (l *Loop) AddFD(fd int, h FDHandler, interest uint32) error {
	interest &= Readable | Writable
	if err := l.ctl(unix.EPOLL_CTL_ADD, fd, interest); err != nil {
		return err
	}
	l.setOther(fd, &fdEntry{kind: kindFD, fh: h, fev: interest})
	return nil
}

// SetFDInterest changes what a descriptor added with AddFD is watched for; it does nothing
// when the interest is already that, or fd is not watched. Loop goroutine only (post a Task
// from elsewhere).
func (l *Loop) SetFDInterest(fd int, interest uint32) error {
	interest &= Readable | Writable
	e := l.other(fd, kindFD)
	if e == nil || e.fev == interest {
		return nil
	}
	if err := l.ctl(unix.EPOLL_CTL_MOD, fd, interest); err != nil {
		return err
	}
	e.fev = interest
	return nil
}

// RemoveFD stops watching a descriptor added with AddFD. It does not close it. Loop
// goroutine only, or after Run returned.
func (l *Loop) RemoveFD(fd int) {
	if l.other(fd, kindFD) != nil {
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		delete(l.others, fd)
	}
}

// fdEvent reports one epoll event of a kindFD descriptor to its handler.
func (l *Loop) fdEvent(fd int, h FDHandler, ev uint32) {
	if ev&unix.EPOLLOUT != 0 {
		h.Writable()
	}
	if ev&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		// The handler may have removed fd while writing.
		if e := l.other(fd, kindFD); e != nil && e.fh == h {
			h.Readable()
		}
	}
}
