package swoole

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/conntable"
	"github.com/goswoole/swoole/internal/framing"
	"github.com/goswoole/swoole/internal/ipc"
	"github.com/goswoole/swoole/internal/reactor"
	"github.com/goswoole/swoole/internal/sys"
	"github.com/goswoole/swoole/internal/timer"
)

// worker is one event loop that accepts, reads and runs callbacks (a ModeBase worker).
type worker struct {
	s      *Server
	ev     connEvents // where its connections' events go: the callbacks, or (a master reactor) the workers
	id     int
	loop   *reactor.Loop
	slot   *conntable.WorkerSlot
	timers timer.Heap  // this worker's timers (loop goroutine only)
	pid    int32       // this process's pid, stored in the slots of the connections it owns
	in     *ipc.Reader // the pipe whose messages it handles (descriptors: TakeFD)

	maxRequests int64 // max_request (with its grace) in a worker process; 0 = no limit
	requests    int64 // requests handled by this process (loop goroutine only)

	// A reactor of a ModeProcess master (master.go): ms is nil in every other loop.
	ms            *masterState
	masterLns     []*reactor.Listener
	pktBuf        []byte          // scratch for a datagram event
	throttled     []*conn         // connections not read because of max_queued_bytes or pipeQueueBound
	throttleTimer int             // the timer that looks at throttled while it is not empty (0: none)
	pipeState     []int8          // unthrottle's scratch, by worker
	pipeBatch     *ipc.Reader     // the reactor's pipe while a batch of it is read: Sends to a connection are corked, and replies lying in the batch are loaned, not copied
	corked        []*conn         // connections corked during this pipe batch
	bursting      bool            // delivering several frames of one read: events to workers are held
	held          []int           // workers whose pipe is held during this burst
	heldMark      []bool          // by worker id: in held
	thrOut        [][]threadEvent // a ModeThread reactor: the events held for each loop during a round (thread.go)
	thrEnd        uint8           // a ModeThread worker loop: why its generation ends (tevReplace, tevExit, tevHandedOff; 0 while it runs)
	thrDrain      drainState      // a ModeThread worker loop: its running drain (thread.go)
	thrAfter      *sync.WaitGroup // a ModeThread worker loop draining beside its successor: the reload that waits for its end
	thrTasks      int             // a ModeThread task-worker loop with task_enable_coroutine: OnTask goroutines running (loop only)
}

// conn is a connection held by this process.
type conn struct {
	id       int64
	slot     *conntable.Slot
	port     *Port
	w        *worker
	rc       *reactor.Conn
	in       []byte          // pending input: an incomplete frame (loop only)
	dec      framing.Decoder // the port's framing state for this connection (loop only)
	openedAt int64           // Unix nanoseconds when it was accepted
	flags    atomic.Uint32   // connAppClose, connInClose
	frameAt  frameClock      // when the pending incomplete frame began (0: none; loop only; frame_timeout)

	mc *masterConn // a ModeProcess master's state of the connection (master.go), else nil
}

// connMem is a connection's memory in a loop that runs the callbacks: the server's state and
// the reactor's in one allocation (208 bytes, a size class of its own: nothing is lost to
// it), so that the two, which every event touches, share neighbouring cache lines.
type connMem struct {
	c  conn
	rc reactor.Conn
}

// masterConnMem is connMem for a loop that passes the events on (a ModeProcess master's or a
// ModeThread reactor): with the masterConn between them (224 bytes, also a size class).
type masterConnMem struct {
	c  conn
	mc masterConn
	rc reactor.Conn
}

// Flags of a conn (conn.flags).
const (
	connAppClose uint32 = 1 << iota // closed by Close (OnClose gets reactorID -1)
	connInClose                     // OnClose is running
)

// appClosed reports whether the application closed c (Close).
func (c *conn) appClosed() bool { return c.flags.Load()&connAppClose != 0 }

// markAppClose records that the application closes c.
func (c *conn) markAppClose() { c.flags.Or(connAppClose) }

// inCloseCallback reports whether c's OnClose is running.
func (c *conn) inCloseCallback() bool { return c.flags.Load()&connInClose != 0 }

// setInClose marks c's OnClose as running, or done.
func (c *conn) setInClose(on bool) {
	if on {
		c.flags.Or(connInClose)
	} else {
		c.flags.And(^connInClose)
	}
}

// masterConn is what a ModeProcess master keeps per connection beyond conn (loop goroutine
// only). It is apart so that the other modes' connections stay in a smaller size class.
type masterConn struct {
	ipKey        uint32 // dispatch.IPKey of the peer
	closeTo      int16  // the worker OnClose was passed to
	closePending bool   // the session waits for that worker's acknowledgement
	finished     bool   // the descriptor is closed (queued output written): Finished ran
	gone         bool   // the socket is closed: requests from workers are dropped
	throttled    bool   // not read: more than max_queued_bytes dispatched and not handled, or see waitPipe
	waitPipe     int16  // 1 + the worker whose pipe queue passed pipeQueueBound when c dispatched to it (0: none)
	batchCorked  bool   // corked until the end of the reactor's pipe batch
}

// Accept registers a new connection in the table.
func (w *worker) Accept(ln *reactor.Listener, fd int, peer unix.Sockaddr) *reactor.Conn {
	s := w.s
	p := ln.Owner.(*Port)
	ctr := s.table.Counters()
	id, slot, ok := int64(0), (*conntable.Slot)(nil), false
	if int(ctr.ConnectionNum.Load()) < s.eff.MaxConnection {
		id, slot, ok = s.table.Alloc()
	}
	if !ok {
		ctr.AbortCount.Add(1)
		if ok, left := s.logLimits[logRefused].allow(); ok {
			s.log.Warn("swoole: connection refused: max_connection reached", "code", ErrServerTooManySocket, "max_connection", s.eff.MaxConnection, "port", p.port, "suppressed", left)
		}
		return nil
	}
	now := time.Now()
	slot.OwnerPID.Store(w.pid)
	slot.Worker.Store(w.ev.owner(w))
	slot.FD.Store(int32(fd))
	slot.ReactorID.Store(int32(w.id))
	slot.ServerFD.Store(int32(p.fd))
	slot.ServerPort.Store(int32(p.port))
	slot.SocketType.Store(int32(p.sock))
	slot.PortIndex.Store(int32(p.index))
	fam, ip, port, path := sys.PeerAddr(peer)
	slot.SetRemoteAddr(fam, ip, port, path)
	slot.RemotePort.Store(int32(port))
	slot.ConnectTime.Store(now.Unix())
	if p.sock.base() != SockUnixStream {
		if p.eff.OpenTCPNoDelay && !p.acceptedNoDelay {
			_ = sys.SetNoDelay(fd)
		}
		if p.eff.OpenTCPKeepalive {
			_ = sys.SetKeepAlive(fd, p.eff.TCPKeepIdle, p.eff.TCPKeepInterval, p.eff.TCPKeepCount)
		}
		if p.eff.TCPUserTimeout > 0 {
			_ = sys.SetInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, p.eff.TCPUserTimeout)
		}
	}
	if p.eff.KernelSocketRecvBufferSize > 0 {
		_ = sys.SetInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, p.eff.KernelSocketRecvBufferSize)
	}
	if p.eff.KernelSocketSendBufferSize > 0 {
		_ = sys.SetInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, p.eff.KernelSocketSendBufferSize)
	}
	c := w.ev.newConn(ip)
	c.id, c.slot, c.port, c.w, c.openedAt = id, slot, p, w, now.UnixNano()
	c.dec = framing.NewDecoder(p.frame)
	c.rc.Init(fd, c, reactor.ConnOptions{
		MaxQueued: p.eff.SocketBufferSize,
		High:      p.eff.BufferHighWatermark,
		Low:       p.eff.BufferLowWatermark,
		Delayed:   s.eff.EnableDelayReceive,
		TLS:       p.tls.Load(),
		// A handshake that stalls is cut off after heartbeat_idle_time when that is shorter.
		HandshakeTimeout: min(reactor.DefaultHandshakeTimeout, max(p.eff.HeartbeatIdleTime, 0)),
	})
	if s.eff.EnableDelayReceive {
		slot.SetFlag(conntable.FlagDelayRecv)
	}
	s.conns[id&s.mask].Store(c)
	return c.rc
}

// Opened publishes the connection and runs OnConnect.
func (w *worker) Opened(rc *reactor.Conn) {
	c := rc.Owner.(*conn)
	s := w.s
	s.table.Publish(c.slot)
	ctr := s.table.Counters()
	ctr.ConnectionNum.Add(1)
	ctr.AcceptCount.Add(1)
	fd := int64(rc.FD)
	if m := ctr.MaxFD.Load(); fd > m {
		ctr.MaxFD.CompareAndSwap(m, fd)
	}
	if m := ctr.MinFD.Load(); m == 0 || fd < m {
		ctr.MinFD.CompareAndSwap(m, fd)
	}
	w.ev.opened(w, c)
}

// Closed runs OnClose and releases the session.
func (w *worker) Closed(rc *reactor.Conn, reason reactor.CloseReason, errno unix.Errno) {
	c := rc.Owner.(*conn)
	s := w.s
	s.table.MarkClosing(c.slot, c.id)
	c.slot.CloseErrno.Store(int32(errno))
	reactorID := w.id
	if c.appClosed() {
		reactorID = -1
	}
	w.ev.closed(w, c, reactorID)
}

// Finished runs once the connection's descriptor is closed: right after Closed, or, for a
// Close with output queued, once that output is written (or the connection is reset). Until
// then the session stays, closing: connection_num counts it, a second Close is 1004 and
// Close(fd, true) drops the rest (Swoole's close_queued). In a ModeProcess master the session
// also waits for the worker's acknowledgement of OnClose (closeAcked).
func (w *worker) Finished(rc *reactor.Conn) {
	c := rc.Owner.(*conn)
	s := w.s
	ctr := s.table.Counters()
	ctr.ConnectionNum.Add(-1)
	ctr.CloseCount.Add(1)
	if c.mc != nil {
		c.mc.finished = true
		if c.mc.closePending {
			return
		}
	}
	s.conns[c.id&s.mask].CompareAndSwap(c, nil)
	s.table.Release(c.slot)
}

// Overflow keeps the connection's FlagOverflow in the shared table in step with its output
// queue (at or above socket_buffer_size, or below again), so that other processes refuse
// Sends to it (sendRemote). Called with the Conn's lock held, from any goroutine.
func (w *worker) Overflow(rc *reactor.Conn, over bool) {
	c := rc.Owner.(*conn)
	if over {
		c.slot.SetFlag(conntable.FlagOverflow)
	} else {
		c.slot.ClearFlag(conntable.FlagOverflow)
	}
}

// BufferFull runs OnBufferFull; a ModeProcess master passes it to a worker.
func (w *worker) BufferFull(rc *reactor.Conn) { w.ev.buffer(w, rc.Owner.(*conn), true) }

// BufferEmpty runs OnBufferEmpty; a ModeProcess master passes it to a worker.
func (w *worker) BufferEmpty(rc *reactor.Conn) { w.ev.buffer(w, rc.Owner.(*conn), false) }
