//go:build linux

package reactor

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Handler receives a loop's events. Every method runs on the loop goroutine, one at a time.
type Handler interface {
	// Accept is called for each connection accepted on ln, with the peer address (valid only
	// during the call: the loop reuses it for the next connection). It returns
	// the Conn to register (built with NewConn), or nil to refuse it; the loop then closes fd.
	Accept(ln *Listener, fd int, peer unix.Sockaddr) *Conn
	// Opened is called once c is registered with the loop.
	Opened(c *Conn)
	// Data is called with bytes read from c. data is the loop's read buffer: it is valid only
	// until Data returns.
	Data(c *Conn, data []byte)
	// Closed is called exactly once per connection, when it closes for any reason. The
	// descriptor is still open during the call; it is closed (after queued output is flushed,
	// for a graceful server close) once Closed returns.
	Closed(c *Conn, reason CloseReason, errno unix.Errno)
	// BufferFull is called when c's queued output reaches its high watermark.
	BufferFull(c *Conn)
	// BufferEmpty is called when c's queued output falls back to its low watermark.
	BufferEmpty(c *Conn)
	// Packet is called for each datagram received on a datagram listener, with its sender.
	// data is the loop's read buffer: it is valid only until Packet returns.
	Packet(ln *Listener, data []byte, from unix.Sockaddr)
	// PacketTooLarge is called for a datagram larger than the read buffer, which is dropped.
	PacketTooLarge(ln *Listener, size, limit int)
}

// RoundHandler is implemented by a Handler that wants to know when the loop starts and ends
// handling the events of one epoll_wait (a round): to send what the events of a round
// produced together, e.g. one sendmmsg per round instead of one sendmsg per event. Both are
// called on the loop goroutine, only for rounds with events, and not for the events a
// nested run (RunUntil) handles.
type RoundHandler interface {
	RoundStart()
	RoundEnd()
}

// OverflowHandler is implemented by a Handler that wants to know when a connection's queued
// output reaches its MaxQueued limit (over) and when it falls back below it (not over): a
// server tells other processes, which then refuse Sends to that connection. Overflow is
// called from whichever goroutine queued or wrote the output, with the connection's lock
// held: it must only record the state (an atomic store), never call back into the Conn.
type OverflowHandler interface {
	Overflow(c *Conn, over bool)
}

// FinishHandler is implemented by a Handler that keeps a connection's session past Closed:
// Finished is called on the loop goroutine once per connection whose Closed ran, when its
// descriptor is closed. That is right after Closed, except for a graceful server close with
// output queued, where the descriptor stays open until the output is written (or the
// connection is reset, or fails).
type FinishHandler interface {
	Finished(c *Conn)
}

// Timers is the loop's view of a timer heap: how long epoll may sleep and a call to run what
// is due. Times are monotonic nanoseconds.
type Timers interface {
	Timeout(now int64) int
	Run(now int64) int
}

// CloseReason says why a connection closed.
type CloseReason uint8

// The close reasons.
const (
	ClosePeer     CloseReason = iota + 1 // the peer closed (read returned 0)
	CloseError                           // a read or write failed; errno says why
	CloseServer                          // Conn.Close was called
	CloseShutdown                        // the loop is stopping
)

// Task is work posted to the loop from another goroutine.
type Task struct {
	Fn    func()      // run on the loop, when set
	Conn  *Conn       // the connection a built-in operation applies to
	Op    uint8       // opClose, opFull, opEmpty, opFullEmpty
	Errno unix.Errno  // for opClose with CloseError
	Why   CloseReason // for opClose
}

const (
	opFn uint8 = iota
	opClose
	opFull
	opEmpty
	opFullEmpty // BufferFull then BufferEmpty (the queue drained before the owed Full ran)
)

const (
	kindNone uint8 = iota
	kindListener
	kindWake
	kindFD
)

// fdEntry is a descriptor the loop watches that is not a connection: a listener, the wake
// eventfd or an FDHandler's descriptor. There are few of them, so they live in a map;
// connections, one per descriptor and possibly hundreds of thousands, are in Loop.conns, so
// that each costs the loop one pointer (an entry of this struct per descriptor used to cost
// 48 bytes per connection, more than a third of an idle connection's Go heap).
type fdEntry struct {
	kind uint8
	ln   *Listener
	fh   FDHandler // kindFD
	fev  uint32    // kindFD: the interest registered with epoll
}

// Listener is a listening socket served by a loop.
type Listener struct {
	FD    int
	Owner any  // the user's object for this listener (the server's *Port)
	Dgram bool // a datagram socket: Packet for each datagram instead of accepts
	// Exclusive registers the listener with EPOLLEXCLUSIVE: when several processes' loops
	// watch one shared listening socket, a new connection wakes one of them, not all.
	Exclusive bool

	pausedUntil int64 // accept paused after EMFILE, until this monotonic time
}

// Config sets a loop's buffers.
type Config struct {
	ReadBufferSize int          // bytes read per readiness report; default 64 KiB
	MaxEvents      int          // epoll events per wait; default 1024
	Rounds         RoundHandler // told when each round of events starts and ends; optional
	// NoPoll makes a loop without descriptors: no epoll, no eventfd, no listener, no
	// connection, no AddFD; only posted tasks and timers, and a wake-up that is a channel
	// send (a goroutine switch, no system call, when the loop sleeps). For the loops that
	// only run callbacks handed to them (a ModeThread worker's).
	NoPoll bool
}

// Loop is one event loop. Create it with New, add listeners, then call Run on the goroutine
// that is to run every Handler call.
type Loop struct {
	h      Handler
	oh     OverflowHandler // h, when it is one
	fh     FinishHandler   // h, when it is one
	rounds RoundHandler    // Config.Rounds, or nil
	epfd   int
	wakefd int
	events []unix.EpollEvent
	buf    []byte
	tbuf   []byte // plaintext of TLS connections (allocated with the first)
	iov    []unix.Iovec
	ab     *acceptBuf       // accept4's scratch space
	conns  []*Conn          // connections by descriptor (nil: none)
	others map[int]*fdEntry // every other watched descriptor
	timers Timers
	epoch  time.Time
	nconns int
	yield  int64 // Now at wait's last look at GOMAXPROCS
	procs  int   // GOMAXPROCS then

	wakeCh    chan struct{} // a NoPoll loop's wake-up (Config.NoPoll)
	waitTimer *time.Timer   // a NoPoll loop's wait for its next timer

	mu          sync.Mutex
	tasks       []Task
	spare       []Task
	wakePending atomic.Bool
	wakeWrites  uint64 // writes to the wake-up eventfd (under mu)
	goid        atomic.Int64
	stopped     bool
	closed      atomic.Bool
	paused      []*Listener

	// Nested runs (nested_linux.go): the connections whose Data or Opened call is in
	// progress (held while a nested run waits), the buffers of each nesting depth, and
	// whether the timers are running (their Run is not re-entrant).
	active   []*Conn
	nest     []nestBufs
	depth    int
	inTimers bool
}

// New creates a loop that reports to h.
func New(h Handler, cfg Config) (*Loop, error) {
	if cfg.ReadBufferSize <= 0 {
		cfg.ReadBufferSize = 64 << 10
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = 1024
	}
	if cfg.NoPoll {
		return &Loop{h: h, rounds: cfg.Rounds, epfd: -1, wakefd: -1, wakeCh: make(chan struct{}, 1), conns: make([]*Conn, 0), others: make(map[int]*fdEntry), epoch: time.Now()}, nil
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	l := &Loop{
		h: h, rounds: cfg.Rounds, epfd: epfd, wakefd: wfd,
		events: make([]unix.EpollEvent, cfg.MaxEvents),
		buf:    make([]byte, cfg.ReadBufferSize),
		iov:    make([]unix.Iovec, 64),
		ab:     new(acceptBuf),
		conns:  make([]*Conn, 256),
		others: make(map[int]*fdEntry),
		epoch:  time.Now(),
	}
	if err := l.ctl(unix.EPOLL_CTL_ADD, wfd, unix.EPOLLIN); err != nil {
		l.Close()
		return nil, err
	}
	l.setOther(wfd, &fdEntry{kind: kindWake})
	l.oh, _ = h.(OverflowHandler)
	l.fh, _ = h.(FinishHandler)
	return l, nil
}

// SetTimers installs the timer heap whose next deadline bounds each epoll wait. Call it
// before Run.
func (l *Loop) SetTimers(t Timers) { l.timers = t }

// Now returns the loop's monotonic clock in nanoseconds (the clock Timers see).
func (l *Loop) Now() int64 { return int64(time.Since(l.epoch)) }

// OnLoop reports whether the caller is the goroutine running l. It is slow (about 1 µs):
// use it only on rare paths.
func (l *Loop) OnLoop() bool {
	id := l.goid.Load()
	return id != 0 && id == goroutineID()
}

func (l *Loop) ctl(op, fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(l.epfd, op, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// setConn records c as the connection on descriptor fd (replacing whatever was there).
func (l *Loop) setConn(fd int, c *Conn) {
	for fd >= len(l.conns) {
		n := make([]*Conn, 2*len(l.conns))
		copy(n, l.conns)
		l.conns = n
	}
	l.conns[fd] = c
	if len(l.others) > 1 { // more than the wake eventfd: a stale entry is possible
		delete(l.others, fd)
	}
}

// setOther records e as the entry of descriptor fd (replacing whatever was there).
func (l *Loop) setOther(fd int, e *fdEntry) {
	if fd < len(l.conns) {
		l.conns[fd] = nil
	}
	l.others[fd] = e
}

// other returns the entry of descriptor fd if it is a kind k one, else nil.
func (l *Loop) other(fd int, k uint8) *fdEntry {
	if e := l.others[fd]; e != nil && e.kind == k {
		return e
	}
	return nil
}

// AddListener starts accepting on ln (a listening, non-blocking socket). Call it on the loop
// goroutine or before Run.
func (l *Loop) AddListener(ln *Listener) error {
	if err := l.ctl(unix.EPOLL_CTL_ADD, ln.FD, ln.interest()); err != nil {
		return err
	}
	l.setOther(ln.FD, &fdEntry{kind: kindListener, ln: ln})
	return nil
}

// interest is the epoll interest a listener is registered with.
func (ln *Listener) interest() uint32 {
	if ln.Exclusive {
		return unix.EPOLLIN | unix.EPOLLEXCLUSIVE
	}
	return unix.EPOLLIN
}

// RemoveListener stops accepting on ln. It does not close ln.FD.
func (l *Loop) RemoveListener(ln *Listener) {
	if e := l.other(ln.FD, kindListener); e != nil && e.ln == ln {
		_ = l.ctl(unix.EPOLL_CTL_DEL, ln.FD, 0)
		delete(l.others, ln.FD)
	}
}

// Listeners returns the listeners the loop watches (those paused after EMFILE included), in
// no particular order. Loop goroutine only.
func (l *Loop) Listeners() []*Listener {
	var lns []*Listener
	for _, e := range l.others {
		if e.kind == kindListener {
			lns = append(lns, e.ln)
		}
	}
	return lns
}

// ConnCount returns the number of connections registered with the loop, including those
// still flushing their output after Closed. Loop goroutine only.
func (l *Loop) ConnCount() int { return l.nconns }

// Post queues t to run on the loop and wakes it. Safe from any goroutine. After the loop has
// stopped, Post returns false and drops t.
func (l *Loop) Post(t Task) bool { return l.post(t, true) }

// post is Post; without wake it only queues t, for the loop goroutine, which runs what was
// queued before it waits again (Run and RunUntil look at the queue first): a wake-up from
// the loop to itself is two system calls and a pass through epoll for nothing.
func (l *Loop) post(t Task, wake bool) bool {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return false
	}
	l.tasks = append(l.tasks, t)
	// Wake under the lock: Close marks the loop stopped under it before closing the eventfd,
	// so a wake never writes to a closed (or reused) descriptor.
	if wake {
		l.wake()
	}
	l.mu.Unlock()
	return true
}

func (l *Loop) wake() {
	if l.wakeCh != nil {
		if l.wakePending.CompareAndSwap(false, true) {
			select {
			case l.wakeCh <- struct{}{}:
			default:
			}
		}
		return
	}
	if l.wakePending.CompareAndSwap(false, true) {
		l.wakeWrites++
		var one = [8]byte{1}
		for {
			_, err := unix.Write(l.wakefd, one[:])
			if err != unix.EINTR {
				return
			}
		}
	}
}

func (l *Loop) runTasks() {
	l.mu.Lock()
	tasks := l.tasks
	// The spare slice is handed out once: a nested run (RunUntil from inside a task) then
	// queues into a fresh slice instead of the one this call is iterating.
	l.tasks = l.spare[:0]
	l.spare = nil
	l.mu.Unlock()
	for i := range tasks {
		t := &tasks[i]
		switch t.Op {
		case opFn:
			t.Fn()
		case opClose:
			l.closeConn(t.Conn, t.Why, t.Errno)
		case opFull:
			l.deliverFull(t.Conn)
		case opEmpty, opFullEmpty:
			if !t.Conn.notified {
				if t.Op == opFullEmpty {
					l.h.BufferFull(t.Conn)
				}
				l.h.BufferEmpty(t.Conn)
			}
		}
		tasks[i] = Task{}
	}
	l.mu.Lock()
	if l.spare == nil {
		l.spare = tasks[:0]
	}
	l.mu.Unlock()
}

// Stop makes Run return after the current batch. Loop goroutine only (post it as a Task from
// elsewhere). Connections still registered are closed with CloseShutdown.
func (l *Loop) Stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}

// BindGoroutine records the calling goroutine as the loop's before Run starts, for the
// callbacks a server runs on it first (OnStart, OnWorkerStart): OnLoop is true from then on.
func (l *Loop) BindGoroutine() { l.goid.Store(goroutineID()) }

// Run runs the loop until Stop. Every Handler call happens on the calling goroutine.
func (l *Loop) Run() error {
	l.goid.Store(goroutineID())
	defer l.goid.Store(0)
	for {
		l.mu.Lock()
		stopped := l.stopped
		pending := len(l.tasks) > 0
		l.mu.Unlock()
		if stopped {
			break
		}
		timeout := -1
		if pending {
			timeout = 0
		} else if l.timers != nil {
			timeout = l.timers.Timeout(l.Now())
		}
		if len(l.paused) > 0 {
			timeout = l.resumeAccept(timeout)
		}
		if l.wakeCh != nil {
			l.waitChan(timeout)
			l.runTimers()
			l.runTasks()
			continue
		}
		n, err := l.wait(timeout)
		if err != nil && err != unix.EINTR {
			return os.NewSyscallError("epoll_wait", err)
		}
		if l.rounds != nil && n > 0 {
			l.rounds.RoundStart()
			l.dispatch(l.events[:n])
			l.rounds.RoundEnd()
		} else {
			l.dispatch(l.events[:max(n, 0)])
		}
		l.runTimers()
		l.runTasks()
	}
	// Tasks posted before the stop still run (closes, callbacks), then everything closes.
	l.runTasks()
	l.CloseAll(CloseShutdown)
	return nil
}

// yieldEvery is how often a loop that blocks in epoll_wait with GOMAXPROCS above 1 passes
// through the scheduler: well under the runtime's 10 ms, after which sysmon takes the P of a
// goroutine that has not been rescheduled even while it sits in a system call.
const yieldEvery = int64(4 * time.Millisecond)

// wait is one epoll_wait of Run, timeout in milliseconds (-1: none). The loop blocks in the
// system call itself, not in the runtime's netpoller, and what that costs depends on whether
// the runtime has a P to spare while it blocks:
//
//   - GOMAXPROCS 1: sysmon takes the only P from a system call that lasts a tick or more and
//     starts a thread to look for other work. So the loop polls first without blocking and
//     yields once before a blocking wait (measured at one connection: about 8,000 sysmon
//     wake-ups a second and 1.7 context switches per echo without this, about 100 and 1.0
//     with it; BENCHMARKS.md, notes).
//   - GOMAXPROCS 2 or more: sysmon leaves a P in a short system call alone while another P is
//     idle, and a yield would wake an idle thread for nothing (one futex wake and sleep per
//     wait). So the loop blocks at once and yields only every yieldEvery.
//
// A server raises GOMAXPROCS to its loops plus one when it starts (procs.go in the root
// package): in a ModeProcess echo pinned to one CPU at 10,000 paced messages a second, that
// takes the tree's context switches from 3–4.5 to about 2.4 per message.
func (l *Loop) wait(timeout int) (int, error) {
	if now := l.Now(); now-l.yield >= yieldEvery || l.procs == 0 {
		l.yield = now
		l.procs = runtime.GOMAXPROCS(0) // it takes the scheduler's lock: read it as rarely
		if l.procs > 1 {
			runtime.Gosched()
		}
	}
	if l.procs > 1 {
		return unix.EpollWait(l.epfd, l.events, timeout)
	}
	n, err := unix.EpollWait(l.epfd, l.events, 0)
	if n == 0 && err == nil && timeout != 0 {
		runtime.Gosched()
		n, err = unix.EpollWait(l.epfd, l.events, timeout)
	}
	return n, err
}

// dispatch reports a batch of epoll events to their handlers.
func (l *Loop) dispatch(events []unix.EpollEvent) {
	// Two passes: first every descriptor that is not a connection (pipes from other
	// processes, listeners, the wake-up), then the connections. So within one round a
	// request another process sent before a client's next bytes arrived (Pause, Close) is
	// applied before those bytes are read, whatever order epoll reports them in.
	conns := 0
	for i := range events {
		ev := &events[i]
		fd := int(ev.Fd)
		if uint(fd) < uint(len(l.conns)) && l.conns[fd] != nil {
			conns++
			continue
		}
		e := l.others[fd]
		if e == nil {
			continue
		}
		switch e.kind {
		case kindListener:
			if e.ln.Dgram {
				l.recvPackets(e.ln)
			} else {
				l.accept(e.ln)
			}
		case kindFD:
			l.fdEvent(fd, e.fh, ev.Events)
		case kindWake:
			var b [8]byte
			_, _ = unix.Read(l.wakefd, b[:])
			l.wakePending.Store(false)
		}
	}
	if conns == 0 {
		return
	}
	for i := range events {
		ev := &events[i]
		fd := int(ev.Fd)
		if uint(fd) < uint(len(l.conns)) {
			if c := l.conns[fd]; c != nil && c.FD == fd {
				l.connEvent(c, ev.Events)
			}
		}
	}
}

// runTimers runs the timers that are due, unless a nested run was entered from one of them.
func (l *Loop) runTimers() {
	if l.timers == nil || l.inTimers {
		return
	}
	l.inTimers = true
	l.timers.Run(l.Now())
	l.inTimers = false
}

// CloseAll closes every connection of the loop: Closed for those not yet closed, then the
// descriptors, dropping whatever output is still queued. Loop goroutine only.
func (l *Loop) CloseAll(reason CloseReason) {
	for fd := range l.conns {
		if c := l.conns[fd]; c != nil {
			l.flush(c)
			if l.conns[fd] == c {
				l.closeConn(c, reason, 0)
				l.finalClose(c)
			}
		}
	}
}

// Close releases the loop's epoll and eventfd descriptors. Call it after Run returned.
func (l *Loop) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return nil
	}
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	if l.wakeCh != nil {
		if l.waitTimer != nil {
			l.waitTimer.Stop()
		}
		return nil
	}
	err1 := unix.Close(l.epfd)
	err2 := unix.Close(l.wakefd)
	return errors.Join(err1, err2)
}

func (l *Loop) accept(ln *Listener) {
	accepted := 0
	if ln.Exclusive {
		defer func() {
			if accepted > 0 {
				l.requeue(ln)
			}
		}()
	}
	for i := range 64 {
		if i > 0 {
			if e := l.other(ln.FD, kindListener); e == nil || e.ln != ln {
				return // removed by a callback (whose descriptor may be closed, its number reused)
			}
		}
		nfd, sa, err := l.accept4(ln.FD, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			switch err {
			case unix.EAGAIN:
				return
			case unix.EINTR, unix.ECONNABORTED:
				continue
			case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
				// Out of descriptors: stop accepting for a moment instead of spinning on a
				// listener that stays readable.
				_ = l.ctl(unix.EPOLL_CTL_DEL, ln.FD, 0)
				ln.pausedUntil = l.Now() + int64(100*time.Millisecond)
				l.paused = append(l.paused, ln)
				accepted = 0 // no requeue: resumeAccept registers it again
				return
			default:
				return
			}
		}
		c := l.h.Accept(ln, nfd, sa)
		if c == nil {
			unix.Close(nfd)
			continue
		}
		// Another goroutine may reach c (through the server's table) as soon as Accept
		// returned: set what it reads under c.mu.
		c.mu.Lock()
		c.loop = l
		c.events = c.wantEvents()
		err = l.ctl(unix.EPOLL_CTL_ADD, nfd, c.events)
		if err != nil {
			c.closed = true
		}
		c.mu.Unlock()
		if err != nil {
			unix.Close(nfd)
			l.h.Closed(c, CloseError, unix.EBADF)
			if l.fh != nil {
				l.fh.Finished(c)
			}
			continue
		}
		l.setConn(nfd, c)
		l.nconns++
		accepted++
		if c.tls != nil {
			l.startHandshake(c) // Opened runs when it succeeds
			continue
		}
		l.active = append(l.active, c)
		l.h.Opened(c)
		l.active = l.active[:len(l.active)-1]
	}
}

// requeue registers a shared EPOLLEXCLUSIVE listener again after this loop accepted from
// it. The kernel wakes the first idle loop in the listener's wait queue, in registration
// order, so an idle first worker would take every connection; registering again moves this
// loop to the back of the queue, and connections go round the idle workers.
func (l *Loop) requeue(ln *Listener) {
	if e := l.other(ln.FD, kindListener); e == nil || e.ln != ln {
		return // removed (or paused) by a callback
	}
	if l.ctl(unix.EPOLL_CTL_DEL, ln.FD, 0) == nil {
		_ = l.ctl(unix.EPOLL_CTL_ADD, ln.FD, ln.interest())
	}
}

// recvPackets reads the datagrams waiting on ln (a bounded number per wake-up, for fairness).
func (l *Loop) recvPackets(ln *Listener) {
	for range 64 {
		// MSG_TRUNC makes recvfrom report a datagram's real size, so one larger than the
		// read buffer is dropped and reported instead of delivered cut short.
		n, from, err := unix.Recvfrom(ln.FD, l.buf, unix.MSG_DONTWAIT|unix.MSG_TRUNC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		if n > len(l.buf) {
			l.h.PacketTooLarge(ln, n, len(l.buf))
			continue
		}
		l.h.Packet(ln, l.buf[:n], from)
		if e := l.other(ln.FD, kindListener); e == nil || e.ln != ln {
			return // removed by the callback: the datagrams left are not this loop's
		}
	}
}

// resumeAccept re-arms listeners paused after EMFILE whose pause is over and returns the
// epoll timeout shortened to the next resume.
func (l *Loop) resumeAccept(timeout int) int {
	now := l.Now()
	keep := l.paused[:0]
	for _, ln := range l.paused {
		if now >= ln.pausedUntil {
			if e := l.other(ln.FD, kindListener); e != nil && e.ln == ln {
				_ = l.ctl(unix.EPOLL_CTL_ADD, ln.FD, ln.interest())
			}
			continue
		}
		keep = append(keep, ln)
		ms := int((ln.pausedUntil-now)/int64(time.Millisecond)) + 1
		if timeout < 0 || ms < timeout {
			timeout = ms
		}
	}
	l.paused = keep
	return timeout
}

func (l *Loop) connEvent(c *Conn, ev uint32) {
	if ev&unix.EPOLLOUT != 0 {
		l.flush(c)
		if c.closed {
			return
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return
	}
	if c.notified {
		// Closed already ran; the descriptor only drains its output. A hang-up ends that.
		if ev&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			l.finalClose(c)
		}
		return
	}
	c.mu.Lock()
	reading := c.wantEvents()&unix.EPOLLIN != 0
	c.mu.Unlock()
	if ev&unix.EPOLLIN == 0 && !reading {
		// Paused or waiting for Confirm: an error or hang-up still ends the connection.
		l.closeConn(c, CloseError, sockErrno(c.FD))
		l.finalClose(c)
		return
	}
	if !reading && ev&(unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		// Paused (or held, or waiting for Confirm) after the wait reported the data, by an
		// earlier event of the same round (a Pause from another process): it stays in the
		// kernel until Resume.
		return
	}
	if c.tls != nil {
		l.tlsEvent(c)
		return
	}
	for {
		n, err := unix.Read(c.FD, l.buf)
		if err == unix.EINTR {
			continue
		}
		switch {
		case n > 0:
			l.active = append(l.active, c)
			l.h.Data(c, l.buf[:n])
			l.active = l.active[:len(l.active)-1]
		case n == 0 && err == nil:
			l.closeConn(c, ClosePeer, 0)
			l.finalClose(c)
		case err == unix.EAGAIN:
		default:
			errno, _ := err.(unix.Errno)
			l.closeConn(c, CloseError, errno)
			l.finalClose(c)
		}
		return
	}
}

func sockErrno(fd int) unix.Errno {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return 0
	}
	return unix.Errno(v)
}

// closeConn runs Closed once for c. The descriptor stays open: a graceful server close keeps
// it until its queued output is flushed; other closes call finalClose right after.
func (l *Loop) closeConn(c *Conn, why CloseReason, errno unix.Errno) {
	if c.closed {
		return
	}
	if t := c.tls; t != nil && !c.notified {
		c.mu.Lock()
		hs := !t.established
		c.mu.Unlock()
		if hs {
			// Closed while handshaking: the session never opened.
			l.abortTLS(c, closeError(why, errno))
			return
		}
	}
	if c.notified {
		// Closed ran already: a Reset while the output drains (or while Closed ran) closes
		// the descriptor now.
		c.mu.Lock()
		reset := c.reset
		c.mu.Unlock()
		if reset && why == CloseServer {
			l.finalClose(c)
		}
		return
	}
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.notified = true
	l.h.Closed(c, why, errno)
	if why != CloseServer {
		return
	}
	c.mu.Lock()
	c.closeNotifyLocked()
	if c.reset || c.queued == 0 {
		c.mu.Unlock()
		l.finalClose(c)
		return
	}
	c.draining = true
	c.updateEventsLocked()
	c.mu.Unlock()
}

// finalClose unregisters and closes c's descriptor and drops its queued output.
func (l *Loop) finalClose(c *Conn) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.reset {
		_ = unix.SetsockoptLinger(c.FD, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.FD, nil)
	if c.FD < len(l.conns) && l.conns[c.FD] == c {
		l.conns[c.FD] = nil
		l.nconns--
	}
	unix.Close(c.FD)
	c.dropQueueLocked()
	c.mu.Unlock()
	if l.fh != nil && c.notified && (c.tls == nil || !c.tls.aborted) {
		l.fh.Finished(c)
	}
}

// flush writes c's queued output until it is empty or the socket is full.
func (l *Loop) flush(c *Conn) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	errno := c.writeQueuedLocked(l.iov)
	if errno != 0 {
		c.mu.Unlock()
		if !c.notified {
			l.closeConn(c, CloseError, errno)
		}
		l.finalClose(c)
		return
	}
	c.ownLoansLocked() // what the socket did not take (a failed write drops it all, above)
	c.drainedLocked()
	empty := c.full && c.queued <= int(c.low)
	owedFull := false
	if empty {
		c.full = false
		// A Send from another goroutine may have crossed the high watermark and posted
		// BufferFull, still waiting in the task queue: it is delivered first, so that the
		// handler sees the crossings in the order they happened. (A Send that crosses again
		// after this point owes a new BufferFull, delivered after this BufferEmpty.)
		owedFull, c.owedFull = c.owedFull, false
	}
	if c.queued == 0 && c.draining {
		c.mu.Unlock()
		l.finalClose(c)
		return
	}
	c.updateEventsLocked()
	c.mu.Unlock()
	if empty && !c.notified {
		if owedFull {
			l.h.BufferFull(c)
		}
		l.h.BufferEmpty(c)
	}
}

// deliverFull runs BufferFull for c if one is owed (raised by a Send that crossed the high
// watermark or was refused for overflow, and not yet delivered). Loop goroutine only.
func (l *Loop) deliverFull(c *Conn) {
	c.mu.Lock()
	owed := c.owedFull
	c.owedFull = false
	c.mu.Unlock()
	if owed && !c.notified {
		l.h.BufferFull(c)
	}
}

// waitChan is a NoPoll loop's wait: until a wake-up, or timeout milliseconds (-1: no limit;
// 0: none).
func (l *Loop) waitChan(timeout int) {
	if timeout == 0 {
		return
	}
	if timeout < 0 {
		<-l.wakeCh
		l.wakePending.Store(false)
		return
	}
	if l.waitTimer == nil {
		l.waitTimer = time.NewTimer(time.Duration(timeout) * time.Millisecond)
	} else {
		l.waitTimer.Reset(time.Duration(timeout) * time.Millisecond)
	}
	select {
	case <-l.wakeCh:
		l.wakePending.Store(false)
		l.waitTimer.Stop()
	case <-l.waitTimer.C:
	}
}
