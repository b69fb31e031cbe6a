package swoole

import (
	"net"
	"runtime/debug"
	"time"

	"golang.org/x/sys/unix"
)

// User processes in ModeThread: each AddProcess function runs on a goroutine of its own,
// again whenever it returns (or panics), as the manager restarts a user process. Its loop
// (thread.go: a threadLoop with proc >= 0) runs its timers and OnPipeMessage, one message at
// a time. The function's Process gives the process's end of the ExportSocket pair; the
// Process the program holds (the one given to AddProcess) gives the workers' end, as in the
// other modes. At shutdown the process's end is closed, so that a function blocked reading
// it returns; Start waits up to max_wait_time for the functions to return.

// runProcess runs user process tl's function until the server shuts down.
func (th *threads) runProcess(tl *threadLoop) {
	defer th.procsDone.Done()
	s := th.s
	p := s.procs[tl.proc]
	for {
		own, err := p.ownEnd()
		if err != nil {
			s.log.Error("swoole: user process: cannot open its end of the socket pair", "process", tl.proc, "err", err)
			return
		}
		th.runProcessOnce(tl, &Process{fn: p.fn, index: p.index, conn: own})
		if s.state.Load() != stateRunning {
			return
		}
		s.log.Info("swoole: the user process's function returned: it starts again", "process", tl.proc, "id", tl.id)
		select {
		case <-th.stop:
			return
		case <-time.After(100 * time.Millisecond): // a function that returns at once does not spin
		}
	}
}

func (th *threads) runProcessOnce(tl *threadLoop, pc *Process) {
	defer func() {
		if r := recover(); r != nil {
			th.s.log.Error("swoole: a user process's function panicked: it starts again", "process", tl.proc, "panic", r, "stack", string(debug.Stack()), "code", ErrServerWorkerTerminated)
		}
	}()
	th.mu.Lock()
	if th.procConns == nil {
		th.procConns = map[net.Conn]struct{}{}
	}
	th.procConns[pc.conn] = struct{}{}
	th.mu.Unlock()
	defer func() {
		th.mu.Lock()
		delete(th.procConns, pc.conn)
		th.mu.Unlock()
		pc.conn.Close()
	}()
	pc.fn(pc)
}

// stopProcesses closes the user processes' ends and waits up to max_wait_time for their
// functions to return.
func (th *threads) stopProcesses() {
	th.mu.Lock()
	for c := range th.procConns {
		_ = c.Close()
	}
	th.mu.Unlock()
	done := make(chan struct{})
	go func() {
		th.procsDone.Wait()
		close(done)
	}()
	tm := time.NewTimer(th.s.eff.MaxWaitTime)
	defer tm.Stop()
	select {
	case <-done:
	case <-tm.C:
		th.s.log.Warn("swoole: a user process's function did not return within max_wait_time after shutdown: it is left running", "code", ErrServerWorkerExitTimeout)
	}
}

// ownEnd opens a new descriptor of the user process's own end of its socket pair.
func (p *Process) ownEnd() (net.Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ends[1] == nil {
		return nil, newError(ErrOperationNotSupport, "the socket pair of user process %d is closed", p.index)
	}
	fd, err := unix.FcntlInt(p.ends[1].Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, err
	}
	return fdConn(fd, "goswoole-process")
}
