//go:build linux

package reactor

import (
	"time"

	"golang.org/x/sys/unix"
)

// Nested runs: a handler that must wait for something only the loop can deliver (a server's
// TaskWait, whose result arrives on an IPC socket this loop reads) runs the loop again from
// inside its own call, until what it waits for has come:
//
//	Run ─► connEvent ─► Handler.Data(c) ─► user callback ─► RunUntil(done, deadline)
//	                                                          │ other connections, timers,
//	                                                          │ posted tasks, IPC sockets
//	                                                          ▼ (c itself is held: not read)
//	                                                        done() ─► back in the callback
//
// Each depth has its own epoll event slice and read buffer, so the data the outer call was
// given stays intact. The connections whose Data (or Opened) call is on the stack are held:
// their read interest is off until the nested run returns, so a connection's callbacks never
// overlap and its framing state is never re-entered. Timers do not fire in a run nested
// inside a timer callback (the heap's Run is not re-entrant); the deadline still ends it.

// nestBufs are the buffers of one nesting depth.
type nestBufs struct {
	events []unix.EpollEvent
	buf    []byte
	tbuf   []byte // TLS plaintext (allocated on first use)
}

// Depth returns how many nested runs (RunUntil, RunFDsUntil) are in progress. Loop goroutine
// only.
func (l *Loop) Depth() int { return l.depth }

// Stopped reports whether Stop was called (Run returns after its current batch).
func (l *Loop) Stopped() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stopped
}

// RunUntil runs the loop from inside a handler call, serving every event as Run does
// (except reads of the connections whose callback is in progress), until done returns true,
// the loop clock (Now) reaches deadline, or the loop is stopped. It returns done's last
// answer. Loop goroutine only.
func (l *Loop) RunUntil(done func() bool, deadline int64) bool {
	restore := l.enterNested()
	defer restore()
	for {
		if done() {
			return true
		}
		now := l.Now()
		if now >= deadline || l.Stopped() {
			return false
		}
		timeout := msUntil(now, deadline)
		l.mu.Lock()
		pending := len(l.tasks) > 0
		l.mu.Unlock()
		if pending {
			timeout = 0
		} else if l.timers != nil && !l.inTimers {
			if t := l.timers.Timeout(now); t >= 0 && t < timeout {
				timeout = t
			}
		}
		if len(l.paused) > 0 {
			if t := l.resumeAccept(timeout); t >= 0 && t < timeout {
				timeout = t
			}
		}
		if l.wakeCh != nil {
			l.waitChan(timeout)
		} else {
			n, err := unix.EpollWait(l.epfd, l.events, timeout)
			if err != nil && err != unix.EINTR {
				return done()
			}
			l.dispatch(l.events[:max(n, 0)])
		}
		l.runTimers()
		l.runTasks()
	}
}

// RunFDsUntil waits, from inside a handler call, for the descriptors fds (watched with AddFD)
// only, reporting their readiness to their FDHandlers, until done returns true, the loop
// clock reaches deadline, or the loop is stopped. Nothing else runs meanwhile: no
// connection, timer or posted task. It returns done's last answer. Loop goroutine only.
func (l *Loop) RunFDsUntil(fds []int, done func() bool, deadline int64) bool {
	restore := l.enterNested()
	defer restore()
	pfds := make([]unix.PollFd, 0, len(fds))
	for {
		if done() {
			return true
		}
		now := l.Now()
		if now >= deadline || l.Stopped() {
			return false
		}
		pfds = pfds[:0]
		for _, fd := range fds {
			if e := l.other(fd, kindFD); e != nil {
				ev := int16(0)
				if e.fev&Readable != 0 {
					ev |= unix.POLLIN
				}
				if e.fev&Writable != 0 {
					ev |= unix.POLLOUT
				}
				pfds = append(pfds, unix.PollFd{Fd: int32(fd), Events: ev})
			}
		}
		n, err := unix.Poll(pfds, msUntil(now, deadline))
		if err != nil && err != unix.EINTR {
			return done()
		}
		if n <= 0 {
			continue
		}
		for _, p := range pfds {
			if p.Revents == 0 {
				continue
			}
			fd := int(p.Fd)
			e := l.other(fd, kindFD)
			if e == nil {
				continue
			}
			var ev uint32
			if p.Revents&unix.POLLOUT != 0 {
				ev |= unix.EPOLLOUT
			}
			if p.Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0 {
				ev |= unix.EPOLLIN
			}
			l.fdEvent(fd, e.fh, ev)
		}
	}
}

// enterNested switches to the next depth's buffers and holds the connections whose callback
// is in progress; the function it returns undoes both.
func (l *Loop) enterNested() func() {
	l.depth++
	if len(l.nest) < l.depth {
		l.nest = append(l.nest, nestBufs{
			events: make([]unix.EpollEvent, len(l.events)),
			buf:    make([]byte, len(l.buf)),
		})
	}
	nb := l.nest[l.depth-1]
	events, buf, tbuf := l.events, l.buf, l.tbuf
	l.events, l.buf, l.tbuf = nb.events, nb.buf, nb.tbuf
	held := append([]*Conn(nil), l.active...)
	for _, c := range held {
		c.hold(1)
	}
	return func() {
		for _, c := range held {
			c.hold(-1)
		}
		l.events, l.buf, l.tbuf = events, buf, tbuf
		l.depth--
	}
}

// hold changes the number of nested runs waiting inside c's callback.
func (c *Conn) hold(d int) {
	c.mu.Lock()
	c.held = uint8(int(c.held) + d)
	c.updateEventsLocked()
	c.mu.Unlock()
}

// msUntil is the epoll/poll timeout in milliseconds from now to deadline, rounded up.
func msUntil(now, deadline int64) int {
	d := deadline - now
	if d <= 0 {
		return 0
	}
	ms := (d + int64(time.Millisecond) - 1) / int64(time.Millisecond)
	if ms > 1<<30 {
		ms = 1 << 30
	}
	return int(ms)
}
