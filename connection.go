package swoole

import (
	"iter"
	"os"
	"syscall"
	"time"

	"github.com/goswoole/swoole/internal/conntable"
	"github.com/goswoole/swoole/internal/ipc"
	"github.com/goswoole/swoole/internal/reactor"
)

// yieldSend is send_yield: wait for the connection's queue to drain (up to send_timeout),
// then send. The wait writes the queue itself, so it works from the loop goroutine too.
func (s *Server) yieldSend(c *conn, data []byte) error {
	var deadline time.Time
	if s.eff.SendTimeout > 0 {
		deadline = time.Now().Add(s.eff.SendTimeout)
	}
	for {
		if err := c.rc.FlushWait(deadline); err != nil {
			if err == reactor.ErrTimeout {
				return s.fail(&Error{Code: int(syscall.ETIMEDOUT), Msg: "swoole: Send: send_yield waited send_timeout for room in the output queue of session " + fmtInt(c.id), Err: syscall.ETIMEDOUT})
			}
			return err
		}
		if err := c.rc.Send(data); err != reactor.ErrOverflow {
			return err
		}
	}
}

// closingConn returns the connection fd of this process while its OnClose runs and the
// caller is that OnClose (the connection's loop goroutine), else nil. Another goroutine
// calling while OnClose runs is not inside it: the session is closed for it.
func (s *Server) closingConn(fd int64) *conn {
	if fd <= 0 || s.table == nil || s.table.Get(fd) == nil {
		return nil
	}
	if c := s.conns[fd&s.mask].Load(); c != nil && c.id == fd && c.inCloseCallback() && c.w.loop.OnLoop() {
		return c
	}
	return nil
}

// Send queues data for the connection fd and returns at once; data may be reused as soon as
// Send returns. One Send is atomic: its bytes are never interleaved with another Send's.
// Errors: ErrNoPayload for empty data, ErrDataLengthTooLarge (1202) when data is larger than
// buffer_output_size, ErrSessionNotExist (1005) for an unknown or closed fd,
// ErrOutputBufferOverflow (1008) when the connection already has output queued and data would
// take it past socket_buffer_size (OnBufferFull has fired by then). For a connection another
// process holds (every connection in a ModeProcess worker, another worker's in ModeBase) the
// owner queues whatever a Send accepted, even past socket_buffer_size: nothing that returned
// nil is dropped; the owner then marks the connection full, and Sends fail with 1008 until its
// queue drains below socket_buffer_size. Safe from any goroutine.
func (s *Server) Send(fd int64, data []byte) error {
	r, err := s.route("Send", fd)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return s.fail(newError(ErrNoPayload, "Send: data is empty: nothing to send"))
	}
	if len(data) > s.eff.BufferOutputSize {
		return s.fail(newError(ErrDataLengthTooLarge, "Send: %d bytes is larger than buffer_output_size (%d): split the data or raise buffer_output_size", len(data), s.eff.BufferOutputSize))
	}
	if !r.local() {
		return s.sendRemote(r, fd, data)
	}
	c := r.c
	if c.inCloseCallback() {
		err = c.rc.SendClosing(data)
	} else {
		err = c.rc.Send(data)
		if err == reactor.ErrOverflow && s.eff.SendYield {
			err = s.yieldSend(c, data)
		}
	}
	if err != nil {
		return s.sendError(c, fd, len(data), err)
	}
	s.countSend(c, int64(len(data)))
	return nil
}

// Close closes the connection fd. With reset the peer gets a RST and queued output is dropped;
// without, queued output is flushed first. OnClose runs exactly once, on the connection's
// worker, after the current callback returns, with reactorID -1. Closing a session that is
// unknown or already closed is ErrSessionNotExist (1005); Close inside its own OnClose is
// ErrSessionClosing (1003).
//
// A session closed with output queued stays (closing: Exist is false, Stats counts it) until
// that output is written, then its connection closes, as in Swoole. Meanwhile a second
// Close(fd, false) is ErrSessionClosed (1004), and Close(fd, true) drops the rest and resets
// the connection at once.
func (s *Server) Close(fd int64, reset bool) error {
	r, err := s.routeClosing("Close", fd)
	if err != nil {
		return err
	}
	if !r.local() {
		closing := r.closing()
		if closing && !reset {
			return s.fail(errClosing(fd))
		}
		aux := uint16(0)
		if reset {
			aux = 1
		}
		err := s.forward("Close", r.owner, ipc.Header{Type: ipc.TypeCloseReq, Fd: fd, Aux: aux}, nil)
		if err == nil && !closing && r.slot.Session.Load() == fd {
			r.slot.SetFlag(conntable.FlagCloseAsked) // what still comes for the session is dropped
		}
		return err
	}
	c := r.c
	if c.inCloseCallback() {
		return s.fail(newError(ErrSessionClosing, "Close: session %d is already closing (Close inside OnClose)", fd))
	}
	if s.table.MarkClosing(c.slot, fd) {
		c.markAppClose()
		c.rc.Close(reset)
		return nil
	}
	// Closing already: its queued output drains (or it is being closed).
	if !reset {
		return s.fail(errClosing(fd))
	}
	c.rc.Reset() // false: the descriptor is closed already, which is what was asked
	return nil
}

// errClosing is Close's error for a session that is closing already (its queued output
// drains before the connection closes).
func errClosing(fd int64) *Error {
	return newError(ErrSessionClosed, "Close: session %d is closed: its queued output is being written, then the connection closes; Close(fd, true) drops the rest and resets it now", fd)
}

// Exist reports whether the connection fd is open. It reads the shared connection table (no
// I/O). It is false once Close was called, including inside OnClose.
func (s *Server) Exist(fd int64) bool {
	if st := s.state.Load(); (st != stateRunning && st != stateStopping) || fd <= 0 {
		return false
	}
	return s.table.Lookup(fd) != nil
}

// Pause stops reading from the connection fd: its data waits in the kernel (and the peer is
// slowed by TCP flow control) until Resume. Pausing twice is fine.
func (s *Server) Pause(fd int64) error {
	r, err := s.route("Pause", fd)
	if err != nil {
		return err
	}
	r.slot.SetFlag(conntable.FlagPaused)
	if !r.local() {
		return s.forward("Pause", r.owner, ipc.Header{Type: ipc.TypePause, Fd: fd}, nil)
	}
	r.c.rc.Pause()
	return nil
}

// Resume starts reading from a paused connection again. Resuming twice is fine.
func (s *Server) Resume(fd int64) error {
	r, err := s.route("Resume", fd)
	if err != nil {
		return err
	}
	r.slot.ClearFlag(conntable.FlagPaused)
	if !r.local() {
		return s.forward("Resume", r.owner, ipc.Header{Type: ipc.TypeResume, Fd: fd}, nil)
	}
	r.c.rc.Resume()
	return nil
}

// Confirm starts reading from a connection held back by enable_delay_receive. Confirming a
// connection twice, or one that was never held back, is fine.
func (s *Server) Confirm(fd int64) error {
	r, err := s.route("Confirm", fd)
	if err != nil {
		return err
	}
	if !r.local() {
		return s.forward("Confirm", r.owner, ipc.Header{Type: msgConfirm, Fd: fd}, nil)
	}
	r.c.slot.SetFlag(conntable.FlagConfirmed)
	r.c.rc.Confirm()
	return nil
}

// Protect exempts the connection fd from the heartbeat check (on true) or subjects it again.
func (s *Server) Protect(fd int64, on bool) error {
	sl, err := s.slotOf("Protect", fd)
	if err != nil {
		return err
	}
	if on {
		sl.SetFlag(conntable.FlagProtected)
	} else {
		sl.ClearFlag(conntable.FlagProtected)
	}
	return nil
}

// slotOf returns the shared slot of session fd, whichever process owns it: what only touches
// the table (Protect, Bind) works the same from every process.
func (s *Server) slotOf(call string, fd int64) (*conntable.Slot, error) {
	r, err := s.route(call, fd)
	if err != nil {
		return nil, err
	}
	return r.slot, nil
}

// Bind attaches a uid to the connection fd: it shows in GetClientInfo and steers dispatch_mode
// 5. A connection is bound once; a second Bind is an error.
func (s *Server) Bind(fd int64, uid uint32) error {
	sl, err := s.slotOf("Bind", fd)
	if err != nil {
		return err
	}
	if !sl.SetUIDOnce(uid) {
		return s.fail(newError(ErrRefused, "Bind: session %d is already bound to uid %d: a connection is bound once", fd, sl.UID.Load()))
	}
	return nil
}

// GetClientInfo returns what the server knows of the connection fd, from the shared table (no
// I/O). reactorID is accepted for compatibility and ignored. It works inside OnClose; for a
// closed or unknown fd it is ErrSessionNotExist, with or without ignoreError (ignoreError only
// keeps the error out of GetLastError).
func (s *Server) GetClientInfo(fd int64, reactorID int, ignoreError bool) (*ClientInfo, error) {
	if err := s.running("GetClientInfo"); err != nil {
		return nil, err
	}
	sl := s.table.Get(fd)
	if sl == nil || fd <= 0 {
		err := newError(ErrSessionNotExist, "GetClientInfo: session %d does not exist (never opened, or already closed)", fd)
		if ignoreError {
			return nil, err
		}
		return nil, s.fail(err)
	}
	info := &ClientInfo{
		ServerPort:       int(sl.ServerPort.Load()),
		ServerFD:         int(sl.ServerFD.Load()),
		SocketFD:         int(sl.FD.Load()),
		SocketType:       int(sl.SocketType.Load()),
		RemotePort:       int(sl.RemotePort.Load()),
		RemoteIP:         sl.RemoteIP(),
		ReactorID:        int(sl.ReactorID.Load()),
		ConnectTime:      sl.ConnectTime.Load(),
		LastRecvTime:     unixFloat(sl.LastRecv.Load()),
		LastSendTime:     unixFloat(sl.LastSend.Load()),
		LastDispatchTime: unixFloat(sl.LastDispatch.Load()),
		CloseErrno:       int(sl.CloseErrno.Load()),
		RecvQueuedBytes:  int(sl.RecvQueued.Load()),
		SendQueuedBytes:  int(sl.SendQueued.Load()),
	}
	info.LastTime = info.ConnectTime
	if r := sl.LastRecv.Load(); r > 0 {
		info.LastTime = r / 1e9
	}
	if sl.HasFlag(conntable.FlagBound) {
		info.UID = sl.UID.Load()
	}
	if c := s.conns[fd&s.mask].Load(); c != nil && c.id == fd {
		info.SendQueuedBytes = c.rc.Queued()
		if c.rc.IsTLS() {
			info.SSLClientCert = certPEM(c.rc) // tls.go
		}
	} else if mp := s.mp; mp != nil && s.mode == ModeProcess {
		info.SSLClientCert = mp.certs.get(fd) // passed with the connect event (tls.go)
	}
	if sl.Session.Load() != fd {
		return nil, s.fail(newError(ErrSessionNotExist, "GetClientInfo: session %d closed while being read", fd))
	}
	return info, nil
}

// ConnectionInfo is GetClientInfo (Swoole's alias).
func (s *Server) ConnectionInfo(fd int64, reactorID int, ignoreError bool) (*ClientInfo, error) {
	return s.GetClientInfo(fd, reactorID, ignoreError)
}

// GetClientList returns up to pageSize session ids greater than startFd (0 = from the first;
// a closed startFd is fine), ascending. Past the last connection it returns an empty slice and
// nil. pageSize must be 1–100.
func (s *Server) GetClientList(startFd int64, pageSize int) ([]int64, error) {
	if err := s.running("GetClientList"); err != nil {
		return nil, err
	}
	if pageSize < 1 || pageSize > 100 {
		return nil, s.fail(newError(ErrRefused, "GetClientList: page size %d is out of range: use 1 to 100 and page with the last id", pageSize))
	}
	if startFd < 0 {
		startFd = 0
	}
	return s.table.List(startFd, pageSize, make([]int64, 0, pageSize)), nil
}

// ConnectionList is GetClientList (Swoole's alias).
func (s *Server) ConnectionList(startFd int64, pageSize int) ([]int64, error) {
	return s.GetClientList(startFd, pageSize)
}

// Connections iterates over the open connections' session ids, ascending, reading the shared
// table a page at a time. Connections opened or closed during the iteration may or may not be
// seen. Empty before Start and after shutdown.
func (s *Server) Connections() iter.Seq[int64] {
	return func(yield func(int64) bool) {
		if st := s.state.Load(); st != stateRunning && st != stateStopping {
			return
		}
		page := make([]int64, 0, 100)
		var after int64
		for {
			page = s.table.List(after, 100, page[:0])
			for _, id := range page {
				if !yield(id) {
					return
				}
			}
			if len(page) < 100 {
				return
			}
			after = page[len(page)-1]
		}
	}
}

// Stats returns the server's counters (see Stats for what each field means in each mode).
// Before Start, and once Start has returned, it returns the zero Stats.
func (s *Server) Stats() Stats {
	if !s.tableLive() {
		return Stats{}
	}
	ctr := s.table.Counters()
	st := Stats{
		StartTime:        ctr.StartTime.Load(),
		ConnectionNum:    int(ctr.ConnectionNum.Load()),
		AbortCount:       ctr.AbortCount.Load(),
		AcceptCount:      ctr.AcceptCount.Load(),
		CloseCount:       ctr.CloseCount.Load(),
		WorkerNum:        s.eff.WorkerNum,
		TaskWorkerNum:    s.eff.TaskWorkerNum,
		DispatchCount:    ctr.DispatchCount.Load(),
		LostMessageCount: ctr.LostMessageCount.Load(),
		RequestCount:     ctr.RequestCount.Load(),
		ResponseCount:    ctr.ResponseCount.Load(),
		TotalRecvBytes:   ctr.TotalRecvBytes.Load(),
		TotalSendBytes:   ctr.TotalSendBytes.Load(),
		SessionRound:     ctr.SessionRound.Load(),
		MinFD:            int(ctr.MinFD.Load()),
		MaxFD:            int(ctr.MaxFD.Load()),
		PipePacketMsgID:  ctr.PipePacketMsgID.Load(),
	}
	for i := 0; i < s.eff.WorkerNum; i++ {
		if ws := s.table.Worker(i); ws != nil && ws.Status.Load() == WorkerIdle {
			st.IdleWorkerNum++
		}
	}
	s.taskStats(&st) // task.go
	if w := s.cur; w != nil {
		st.WorkerRequestCount = w.slot.RequestCount.Load()
		st.WorkerResponseCount = w.slot.ResponseCount.Load()
		st.WorkerDispatchCount = w.slot.DispatchCount.Load()
	}
	return st
}

// GetWorkerID returns this worker's id (0 … worker_num−1), or -1 outside a worker (before
// Start and after shutdown).
func (s *Server) GetWorkerID() int {
	if !s.tableLive() {
		return -1
	}
	return s.run.workerID()
}

// tableLive reports whether the connection table and the worker built by Start may be read:
// from the moment the server runs until it has stopped. While Start is still preparing they
// are being written (reading them would race), and once Start has returned the table is
// unmapped (reading it would fault).
func (s *Server) tableLive() bool {
	st := s.state.Load()
	return st == stateRunning || st == stateStopping
}

// WorkerID is GetWorkerID (Swoole's worker_id property).
func (s *Server) WorkerID() int { return s.GetWorkerID() }

// GetWorkerPID returns the OS pid of the worker workerID (-1 = this process), or -1 when there
// is no such worker.
func (s *Server) GetWorkerPID(workerID int) int {
	if workerID == -1 {
		return os.Getpid()
	}
	if !s.tableLive() {
		return -1
	}
	if ws := s.table.Worker(workerID); ws != nil && workerID < s.procTotal() { // user processes too
		if pid := ws.PID.Load(); pid > 0 {
			return int(pid)
		}
	}
	return -1
}

// WorkerPID returns this process's pid (Swoole's worker_pid property).
func (s *Server) WorkerPID() int { return os.Getpid() }

// GetWorkerStatus returns WorkerBusy, WorkerIdle or WorkerExit for the worker workerID (-1 =
// this worker). A worker asking about itself sees WorkerBusy inside an event's callback
// (OnReceive, OnPacket, OnTask, ...), WorkerIdle in OnWorkerStart and in timer callbacks,
// and WorkerExit once it is stopping (OnWorkerExit, and its timers meanwhile), even while
// its replacement already holds the same id (which GetWorkerStatus(id) answers for).
func (s *Server) GetWorkerStatus(workerID int) (int, error) {
	if err := s.running("GetWorkerStatus"); err != nil {
		return 0, err
	}
	if workerID == -1 {
		if workerID = s.run.selfID(); workerID < 0 {
			return 0, s.fail(newError(ErrInvalidParams, "GetWorkerStatus(-1): the %s is not a worker: give a worker id", s.run.role()))
		}
		if mp := s.mp; mp != nil && mp.leaving.Load() {
			return WorkerExit, nil // this worker is stopping: it takes no more events
		}
	}
	if workerID < 0 || workerID >= s.procTotal() { // user processes too
		return 0, s.fail(newError(ErrInvalidParams, "GetWorkerStatus: no worker %d: ids are 0 to %d", workerID, s.procTotal()-1))
	}
	return int(s.table.Worker(workerID).Status.Load()), nil
}

// GetMasterPID returns the master's pid. A single-process ModeBase server is its own master
// (Swoole reports worker 0's pid there).
//
// In a ModeBase server of several processes there is no master: as in Swoole, it is worker
// 0's pid (0 while worker 0 is being replaced).
func (s *Server) GetMasterPID() int {
	if s.rt() == nil {
		return 0
	}
	return s.run.masterPID()
}

// MasterPID is GetMasterPID (Swoole's master_pid property).
func (s *Server) MasterPID() int { return s.GetMasterPID() }

// GetManagerPID returns the manager's pid, or 0 when the server has no manager (a
// single-process ModeBase server, or before Start). In a ModeBase server of several
// processes the manager is the process that called Start.
func (s *Server) GetManagerPID() int {
	if s.rt() == nil {
		return 0
	}
	return s.run.managerPID()
}

// ManagerPID is GetManagerPID (Swoole's manager_pid property).
func (s *Server) ManagerPID() int { return s.GetManagerPID() }

// IsTaskWorker reports whether this process is a task worker.
func (s *Server) IsTaskWorker() bool { return s.isTaskWorker() }
