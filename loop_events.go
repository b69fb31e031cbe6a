package swoole

import (
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/dispatch"
)

// connEvents is where the connection events of a loop go, chosen once when the loop is made
// (the seam of reactor.Handler): a worker loop (one process, a ModeBase worker) runs the
// callbacks (callbackEvents); a ModeProcess master's reactor passes them to the workers
// (masterEvents) and runs no user code but DispatchFunc. The connection machinery around
// them (accepting, the table, framing, output queues, closing) is the same for both.
type connEvents interface {
	// owner is the Slot.Worker value of the loop's connections: whom other processes ask.
	owner(w *worker) int32
	// newConn allocates a connection with its reactor.Conn (c.rc, not yet set up) and the
	// loop's own state of it; ip is the peer's address.
	newConn(ip []byte) *conn
	opened(w *worker, c *conn)
	// closed: c's socket is closed (the session is closing); reactorID is OnClose's.
	closed(w *worker, c *conn, reactorID int)
	// frame is one frame of c (or what one read brought, without framing).
	frame(w *worker, c *conn, data []byte, now int64)
	// pending: n bytes of an incomplete frame of c wait in the loop.
	pending(c *conn, n int)
	packet(w *worker, p *Port, data []byte, from unix.Sockaddr)
	// buffer: c's output queue crossed buffer_high_watermark (full) or fell back under
	// buffer_low_watermark.
	buffer(w *worker, c *conn, full bool)
}

// callbackEvents: the loop runs the callbacks.
type callbackEvents struct{}

func (callbackEvents) owner(w *worker) int32 { return int32(w.id) }

func (callbackEvents) newConn([]byte) *conn {
	m := new(connMem)
	m.c.rc = &m.rc
	return &m.c
}

func (callbackEvents) opened(w *worker, c *conn) {
	if cb := c.port.ecb.connect; cb != nil {
		w.slot.Status.Store(WorkerBusy)
		cb(w.s, c.id, w.id)
		w.slot.Status.Store(WorkerIdle)
	}
}

func (callbackEvents) closed(w *worker, c *conn, reactorID int) {
	if cb := c.port.ecb.close; cb != nil {
		c.setInClose(true)
		w.slot.Status.Store(WorkerBusy)
		cb(w.s, c.id, reactorID)
		w.slot.Status.Store(WorkerIdle)
		c.setInClose(false)
	}
	w.dropInput(c)
}

func (callbackEvents) frame(w *worker, c *conn, data []byte, now int64) {
	s := w.s
	if w.maxRequests > 0 && w.leaving() {
		return // max_request was reached in this read: the connection closes with the worker
	}
	c.slot.LastDispatch.Store(now)
	s.table.Counters().RequestCount.Add(1)
	w.slot.RequestCount.Add(1)
	w.slot.Status.Store(WorkerBusy)
	c.port.ecb.receive(s, c.id, w.id, data)
	w.slot.Status.Store(WorkerIdle)
	if w.maxRequests > 0 {
		w.countRequest()
	}
}

// pending: recv_queued_bytes is the input waiting for the rest of its frame.
func (callbackEvents) pending(c *conn, n int) { c.slot.RecvQueued.Store(int64(n)) }

func (callbackEvents) packet(w *worker, p *Port, data []byte, from unix.Sockaddr) {
	w.packetCallback(p, data, from)
}

func (callbackEvents) buffer(w *worker, c *conn, full bool) {
	cb := c.port.ecb.bufferEmpty
	if full {
		cb = c.port.ecb.bufferFull
	}
	if cb != nil {
		cb(w.s, c.id)
	}
}

// masterEvents: a ModeProcess master's reactor passes the events to the workers (master.go).
type masterEvents struct{}

func (masterEvents) owner(w *worker) int32 { return ownerReactor(w.id) }

func (masterEvents) newConn(ip []byte) *conn {
	m := new(masterConnMem)
	m.c.rc, m.c.mc = &m.rc, &m.mc
	if a, ok := netip.AddrFromSlice(ip); ok {
		m.mc.ipKey = dispatch.IPKey(a)
	}
	return &m.c
}

func (masterEvents) opened(w *worker, c *conn) { w.masterOpened(c) }

func (masterEvents) closed(w *worker, c *conn, _ int) {
	w.dropInput(c)
	c.mc.closePending = w.masterClosed(c)
}

func (masterEvents) frame(w *worker, c *conn, data []byte, now int64) { w.masterDeliver(c, data, now) }

// pending: in a master, recv_queued_bytes counts what the workers have not handled yet.
func (masterEvents) pending(*conn, int) {}

func (masterEvents) packet(w *worker, p *Port, data []byte, from unix.Sockaddr) {
	w.masterPacket(p, data, from)
}

func (masterEvents) buffer(w *worker, c *conn, full bool) { w.masterBufferEvent(c, full) }
