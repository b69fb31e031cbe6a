package swoole

// The worker side of ModeProcess: a worker process reads the events the master's reactors
// send it (procEvent), holds the replies of one batch of events and sends them together
// (beginReplyBatch ... endReplyBatch), and reaches the connections through the reactors'
// pipes (adoptReactorPipes; route.go forwards there). The master's side is master.go.

import (
	"encoding/binary"
	"net/netip"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/conntable"
	"github.com/goswoole/swoole/internal/dispatch"
	"github.com/goswoole/swoole/internal/ipc"
	"github.com/goswoole/swoole/internal/supervisor"
)

// beginReplyBatch starts a batch (before a read of the worker's pipe).
func (s *Server) beginReplyBatch() {
	if len(s.mp.toReactor) > 0 {
		s.mp.batchEvents = 0
	}
}

// dispatchesToIdle reports whether the master picks workers by their idle status
// (dispatch_mode 3 and 7, without a dispatch_func).
func (s *Server) dispatchesToIdle() bool {
	m := s.eff.DispatchMode
	return s.eff.DispatchFunc == nil && (m == dispatch.Idle || m == dispatch.Stream)
}

// replyEvent counts an event of the batch and holds the replies the batch's callbacks make,
// except when the batch has this one event (outside dispatch_mode 3 and 7).
func (s *Server) replyEvent() {
	mp := s.mp
	if len(mp.toReactor) == 0 {
		return
	}
	mp.batchEvents++
	if mp.replyHolds > 0 {
		return
	}
	if mp.batchEvents == 1 && mp.reader != nil && mp.reader.Pending() == 0 && !s.dispatchesToIdle() {
		// The batch's only event: its replies go at once, with no hold and no flush timer
		// (arming one wakes another thread of the runtime per batch). Not where the master
		// picks idle workers: there a reply must not reach its client before the worker has
		// marked itself idle again, or the client's next request finds it busy.
		return
	}
	mp.replyHolds++
	for _, wr := range mp.toReactor {
		wr.Hold()
	}
	// One timer for the worker's life, re-armed per batch: a timer (and a closure) made per
	// batch was garbage the worker's heap grew on (+100 B per connection of idle RSS at
	// 19,000 connections, measured) and an allocation per message at low load.
	mp.tickGen.Store(mp.batchGen.Load())
	if mp.flushTimer == nil {
		// Made stopped and then armed, so that setting the field happens before any run of
		// flushTick (which reads it).
		t := time.AfterFunc(time.Hour, mp.flushTick)
		t.Stop()
		mp.flushTimer = t
	}
	mp.flushTimer.Reset(replyFlushEvery)
}

// flushTick runs on the flush timer's goroutine while a batch holds replies: it sends them
// and re-arms itself, until the batch it was armed for has ended.
func (mp *multi) flushTick() {
	if mp.batchGen.Load() != mp.tickGen.Load() {
		return // the batch ended (endReplyBatch stopped the timer, or is about to)
	}
	for _, wr := range mp.toReactor {
		_, _ = wr.Flush()
	}
	mp.flushTimer.Reset(replyFlushEvery)
}

// endReplyBatch ends a batch: what was held is sent.
func (s *Server) endReplyBatch() {
	mp := s.mp
	if mp.replyHolds == 0 {
		return
	}
	mp.replyHolds = 0
	mp.batchGen.Add(1)
	mp.flushTimer.Stop() // usually before it fires: no wake-up per batch
	for _, wr := range mp.toReactor {
		_ = wr.Release()
	}
}

// flushBeforeHandoff sends the replies a ModeProcess worker holds before a message that lets
// another process act (a task, a pipe message): what the worker sent first reaches the
// master first, so a task worker's Close cannot overtake the reply sent before the Task.
func (s *Server) flushBeforeHandoff() {
	// Only a ModeProcess worker holds replies; OnLoop costs a goroutine-id lookup.
	if s.run.role() != roleProcessWorker {
		return
	}
	if w := s.cur; w != nil && w.loop.OnLoop() {
		s.flushReplies()
	}
}

// flushReplies sends what a batch held so far, before a callback waits (TaskWait,
// Command) or hands work to another process: replies already made must not wait with it.
// Loop goroutine only.
func (s *Server) flushReplies() {
	mp := s.mp
	if mp == nil || mp.replyHolds == 0 {
		return
	}
	for _, wr := range mp.toReactor {
		_, _ = wr.Flush()
	}
}

// procEvent runs, in a worker of a ModeProcess server, an event the master passed. It
// reports whether h was such an event.
func (w *worker) procEvent(h ipc.Header, payload []byte) bool {
	s := w.s
	switch h.Type {
	case ipc.TypeData, ipc.TypeConnect, ipc.TypeClose, msgPacket, msgFull, msgEmpty:
	default:
		return false
	}
	if int(h.Aux) >= len(s.ports) {
		s.log.Warn("swoole: an event for an unknown port was dropped: create the same ports, in the same order, in every process", "port", h.Aux)
		return true
	}
	if !s.fromManager(w.in, h, true) { // only the master sends a client's events
		return true
	}
	p := s.ports[h.Aux]
	ctr := s.table.Counters()
	rid := int(h.ReactorID)
	s.replyEvent()
	switch h.Type {
	case ipc.TypeData:
		// Data for a session a worker closed (Close in OnConnect while the first bytes were
		// on their way) is dropped, as Swoole's Worker_discard_data does for conn->closed;
		// with discard_timeout_request, so is data for a session that is gone or closing.
		sl := s.table.Get(h.Fd)
		if (sl != nil && sl.HasFlag(conntable.FlagCloseAsked) && sl.Session.Load() == h.Fd) ||
			(s.eff.DiscardTimeoutRequest && !dispatch.KeepsOrder(s.eff.DispatchMode) && s.table.Lookup(h.Fd) == nil) {
			if sl != nil {
				sl.RecvQueued.Add(-int64(len(payload)))
			}
			s.log.Debug("swoole: data for a closed connection dropped", "fd", h.Fd, "code", ErrSessionDiscardData)
			return true
		}
		ctr.RequestCount.Add(1)
		w.slot.RequestCount.Add(1)
		w.slot.Status.Store(WorkerBusy)
		p.ecb.receive(s, h.Fd, rid, payload)
		w.slot.Status.Store(WorkerIdle)
		if sl := s.table.Get(h.Fd); sl != nil {
			sl.RecvQueued.Add(-int64(len(payload))) // handled (see masterDeliver)
		}
		if w.maxRequests > 0 {
			w.countRequest()
		}
	case ipc.TypeConnect:
		if len(payload) > 0 {
			s.mp.certs.put(s, h.Fd, string(payload)) // the TLS client's certificate (tls.go)
		}
		if cb := p.ecb.connect; cb != nil {
			w.slot.Status.Store(WorkerBusy)
			cb(s, h.Fd, rid)
			w.slot.Status.Store(WorkerIdle)
		}
	case msgFull, msgEmpty:
		cb := p.ecb.bufferEmpty
		if h.Type == msgFull {
			cb = p.ecb.bufferFull
		}
		if cb != nil {
			w.slot.Status.Store(WorkerBusy)
			cb(s, h.Fd)
			w.slot.Status.Store(WorkerIdle)
		}
	case ipc.TypeClose:
		if cb := p.ecb.close; cb != nil {
			arg := rid
			if h.Flags&flagAppClose != 0 {
				arg = -1
			}
			s.mp.inClose.Store(h.Fd)
			w.slot.Status.Store(WorkerBusy)
			cb(s, h.Fd, arg)
			w.slot.Status.Store(WorkerIdle)
			s.mp.inClose.Store(0)
		}
		s.mp.certs.drop(h.Fd)
		if rid >= 0 && rid < len(s.mp.toReactor) {
			_ = s.mp.toReactor[rid].Write(ipc.Header{Type: msgCloseAck, SrcWorker: s.mp.src, Fd: h.Fd}, nil)
		}
	case msgPacket:
		if len(payload) < 4 || len(payload) < 4+int(payload[3]) {
			return true
		}
		fam := int(payload[0])
		port := int(binary.LittleEndian.Uint16(payload[1:]))
		addr := payload[4 : 4+int(payload[3])]
		data := payload[4+int(payload[3]):]
		client := ClientAddr{ServerSocket: p.fd, ServerPort: p.port, Port: port}
		switch fam {
		case unix.AF_INET, unix.AF_INET6:
			if a, ok := netip.AddrFromSlice(addr); ok {
				client.Address = a.Unmap().String()
			}
		default:
			client.Address = string(addr)
			client.Port = 0
		}
		if cb := p.ecb.packet; cb != nil {
			ctr.RequestCount.Add(1)
			w.slot.RequestCount.Add(1)
			w.slot.Status.Store(WorkerBusy)
			cb(s, data, client)
			w.slot.Status.Store(WorkerIdle)
			if w.maxRequests > 0 {
				w.countRequest()
			}
		}
	}
	return true
}

// adoptReactorPipes adopts, in a worker of a ModeProcess server, the pipes to the master's
// reactors.
func (s *Server) adoptReactorPipes(out func(*os.File, string) (*ipc.Writer, error)) error {
	for r := 0; ; r++ {
		f, ok := supervisor.Inherited(filePrefixR + strconv.Itoa(r))
		if !ok {
			if r == 0 {
				return newError(ErrOperationNotSupport, "worker process: the master passed no reactor pipe")
			}
			return nil
		}
		wr, err := out(f, filePrefixR+strconv.Itoa(r))
		if err != nil {
			return wrapErrno("", err, "worker process: cannot adopt the pipe of reactor %d", r)
		}
		s.mp.toReactor = append(s.mp.toReactor, wr)
	}
}

// closingInWorker is Send/Close inside OnClose in a ModeProcess worker or a ModeThread
// worker loop: the reactor has closed the socket already (Swoole: 1004 for Send, 1003 for
// Close).
func (s *Server) closingInWorker(call string, fd int64) error {
	if fd == 0 || s.inCloseFD() != fd {
		return nil
	}
	if call == "Close" {
		return s.fail(newError(ErrSessionClosing, "Close: session %d is closing (this is its OnClose)", fd))
	}
	return s.fail(newError(ErrSessionClosed, "%s: session %d is closed: in ModeProcess the master has closed its socket before OnClose runs", call, fd))
}

// inCloseFD is the session whose OnClose this worker runs (0: none), where the reactor
// closed the socket before OnClose: a ModeProcess worker, a ModeThread worker loop.
func (s *Server) inCloseFD() int64 {
	if s.mp != nil && s.mp.child && s.mode == ModeProcess {
		return s.mp.inClose.Load()
	}
	if r, ok := s.run.(threadRuntime); ok && r.tl != nil {
		return r.tl.inClose.Load()
	}
	return 0
}

// heartbeatRemote is Heartbeat in a worker of a ModeProcess server: the master holds the
// connections, so the worker reads the table and asks the reactors to close the idle ones.
func (s *Server) heartbeatRemote(closeConns bool) []int64 {
	now := nanotime()
	idle := []int64{}
	page := make([]int64, 0, 100)
	var after int64
	for {
		page = s.table.List(after, 100, page[:0])
		for _, id := range page {
			sl := s.table.Lookup(id)
			if sl == nil || sl.HasFlag(conntable.FlagProtected) {
				continue
			}
			pi := int(sl.PortIndex.Load())
			if pi < 0 || pi >= len(s.ports) {
				continue
			}
			limit := s.ports[pi].eff.HeartbeatIdleTime
			last := max(sl.LastRecv.Load(), sl.ConnectTime.Load()*int64(time.Second))
			if limit <= 0 || time.Duration(now-last) < limit {
				continue
			}
			idle = append(idle, id)
			if closeConns {
				_ = s.Close(id, false)
			}
		}
		if len(page) < 100 {
			return idle
		}
		after = page[len(page)-1]
	}
}
