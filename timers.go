package swoole

import (
	"os"
	"time"

	"github.com/goswoole/swoole/internal/conntable"
	"github.com/goswoole/swoole/internal/reactor"
)

// userTimer tags the timers made by Tick and After in the worker's heap, which the server's
// own timers (the heartbeat scan) share: ClearTimer cancels only these, so an application
// cannot stop the heartbeat by clearing an id it never got.
const userTimer uint8 = 1

// onLoop runs fn on the worker's event loop: directly when the caller is the loop goroutine,
// else posted to it while the caller waits. It returns false when the loop has stopped.
func (w *worker) onLoop(fn func()) bool {
	if w.loop.OnLoop() {
		fn()
		return true
	}
	done := make(chan struct{})
	if !w.loop.Post(reactor.Task{Fn: func() { fn(); close(done) }}) {
		return false
	}
	<-done
	return true
}

// timerWorker returns the event loop that runs this process's timers: the worker's loop, a
// ModeProcess master's reactor 0, or the timer loop of a process that serves no connection
// (a ModeBase manager, a user process).
func (s *Server) timerWorker(call string) (*worker, error) {
	if err := s.running(call); err != nil {
		return nil, err
	}
	// A ModeProcess master's timers run on its reactor 0, between network events (Swoole's
	// master runs timers on its main reactor too): keep them short.
	return s.run.loop(call)
}

// startTimerLoop starts the event loop of a process that serves no connection (a ModeBase
// manager, a user process): it runs the timers and Defer callbacks made in that process, one
// at a time, on a goroutine of its own (Swoole's manager and user processes run timers too).
// It runs until stopTimerLoop or the process's end. Call it before the server is running.
func (s *Server) startTimerLoop(id int) error {
	// The status a timer callback marks busy is the loop's own: a user process's slot in the
	// table says busy for as long as its function runs, and the manager has none.
	w := &worker{s: s, id: id, slot: &conntable.WorkerSlot{}, pid: int32(os.Getpid()), ev: callbackEvents{}}
	loop, err := reactor.New(w, reactor.Config{})
	if err != nil {
		return wrapErrno("", err, "cannot create the timer loop")
	}
	w.loop = loop
	loop.SetTimers(&w.timers)
	s.timerLoop = w
	s.timerDone = make(chan struct{})
	go func() {
		defer close(s.timerDone)
		_ = loop.Run()
	}()
	return nil
}

// stopTimerLoop stops the timer loop (pending timers are dropped) and waits for it.
func (s *Server) stopTimerLoop() {
	w := s.timerLoop
	if w == nil {
		return
	}
	if w.loop.Post(reactor.Task{Fn: func() { w.timers.Clear(); w.loop.Stop() }}) {
		<-s.timerDone
	}
	w.loop.Close()
}

// Tick runs fn every ms milliseconds on this process's event loop, like any other event,
// until ClearTimer(id). It returns the timer's id. Timers belong to the worker that made them
// and end when it stops. Only while the server runs; ms must be > 0.
func (s *Server) Tick(ms int, fn func(timerID int)) (int, error) {
	return s.addTimer("Tick", ms, true, fn)
}

// After runs fn once, ms milliseconds from now, on this process's event loop. It returns the
// timer's id (ClearTimer cancels it). Only while the server runs; ms must be > 0.
func (s *Server) After(ms int, fn func()) (int, error) {
	if fn == nil {
		return -1, s.fail(newError(ErrInvalidParams, "After: the callback is nil"))
	}
	return s.addTimer("After", ms, false, func(int) { fn() })
}

func (s *Server) addTimer(call string, ms int, repeat bool, fn func(int)) (int, error) {
	w, err := s.timerWorker(call)
	if err != nil {
		return -1, err
	}
	if ms <= 0 {
		return -1, s.fail(newError(ErrInvalidParams, "%s: %d ms: the interval must be at least 1 ms", call, ms))
	}
	if fn == nil {
		return -1, s.fail(newError(ErrInvalidParams, "%s: the callback is nil", call))
	}
	d := time.Duration(ms) * time.Millisecond
	interval := time.Duration(0)
	if repeat {
		interval = d
	}
	// A timer's callback leaves the worker's status as it is (idle between events, exit
	// while it stops), as in Swoole: only events make a worker busy.
	id := -1
	if !w.onLoop(func() { id = w.timers.AddTagged(w.loop.Now(), d, interval, fn, userTimer) }) {
		return -1, s.fail(newError(ErrRefused, "%s: the server is shutting down", call))
	}
	return id, nil
}

// ClearTimer cancels the timer id of this process. It returns false when there is no such
// timer (unknown, already fired, or already cleared).
func (s *Server) ClearTimer(id int) bool {
	w, err := s.timerWorker("ClearTimer")
	if err != nil {
		return false
	}
	ok := false
	w.onLoop(func() { ok = w.timers.CancelTagged(id, userTimer) })
	return ok
}

// Defer runs fn on this process's event loop after the current callback (and the events
// already pending) are done. Only while the server runs.
func (s *Server) Defer(fn func()) error {
	w, err := s.timerWorker("Defer")
	if err != nil {
		return err
	}
	if fn == nil {
		return s.fail(newError(ErrInvalidParams, "Defer: the callback is nil"))
	}
	if !w.loop.Post(reactor.Task{Fn: fn}) { // the status stays as it is (see addTimer)
		return s.fail(newError(ErrRefused, "Defer: the server is shutting down"))
	}
	return nil
}
