//go:build linux

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"syscall"
	"time"
)

// owner is the state of a running Manager. It belongs to the goroutine running Run: nothing
// else reads or writes it. Manager methods reach it by sending a closure on Manager.reqs;
// children's exits arrive on Manager.exits; callbacks leave through pending and evCh.
type owner struct {
	m     *Manager
	cfg   *ManagerConfig
	log   *slog.Logger
	sp    *Spawner
	slots []*slot
	procs map[*Child]*proc // every child not yet reaped

	reload        *reloadState
	reloadClaimed bool // between claimReload and startReload
	stopping      bool
	stopDeadline  time.Time

	timer   *time.Timer
	pending []func() // callbacks not yet handed to the callback goroutine
	evCh    chan func()
}

type slot struct {
	id        int
	spec      SlotSpec
	cur       *proc   // current child
	old       []*proc // replaced children still running (async reload, StopSlot wait)
	gen       int
	restarts  int
	starts    int
	fast      int       // fast unexpected exits in a row
	restartAt time.Time // set while in backoff
	state     SlotState
}

type proc struct {
	c        *Child
	slot     *slot
	expected bool      // we asked it to stop
	termSent bool      // SIGTERM sent
	killAt   time.Time // SIGKILL deadline once termSent
	killed   bool      // SIGKILL sent
	replace  bool      // start the slot's next child when this one exits, whatever the policy
}

type reloadState struct {
	rolling bool
	alive   map[*Child]bool // the snapshot's children not yet exited
	queue   []*slot         // rolling: slots still to do
	waiting *Child          // rolling: the child whose exit we wait for
}

func (o *owner) loop(ctx context.Context) {
	ctxDone, stopCh := ctx.Done(), o.m.stopCh
	for !o.stopping || len(o.procs) > 0 {
		o.armTimer()
		var evCh chan func()
		var ev func()
		if len(o.pending) > 0 {
			evCh, ev = o.evCh, o.pending[0]
		}
		select {
		case fn := <-o.m.reqs:
			fn(o)
		case c := <-o.m.exits:
			o.exited(c)
		case now := <-o.timer.C:
			o.tick(now)
		case evCh <- ev:
			o.pending[0] = nil
			o.pending = o.pending[1:]
		case <-ctxDone:
			ctxDone = nil
			o.beginShutdown()
		case <-stopCh:
			stopCh = nil
			o.beginShutdown()
		}
	}
}

func (o *owner) emit(f func()) { o.pending = append(o.pending, f) }

// armTimer sets the timer to the earliest deadline: a SIGKILL, a restart after backoff,
// the shutdown's SIGKILL.
func (o *owner) armTimer() {
	var next time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, p := range o.procs {
		if p.termSent && !p.killed {
			earlier(p.killAt)
		}
	}
	for _, s := range o.slots {
		if s.state == SlotBackoff {
			earlier(s.restartAt)
		}
	}
	if next.IsZero() {
		o.timer.Stop()
		return
	}
	o.timer.Reset(max(time.Until(next), 0))
}

func (o *owner) tick(now time.Time) {
	for _, p := range o.procs {
		if p.termSent && !p.killed && !now.Before(p.killAt) {
			o.log.Warn("child did not stop in time, killing it", "role", p.c.Role().String(), "pid", p.c.PID())
			p.killed = true
			p.c.Signal(syscall.SIGKILL)
		}
	}
	for _, s := range o.slots {
		if s.state == SlotBackoff && !now.Before(s.restartAt) && !o.stopping {
			o.restartSlot(s)
		}
	}
}

// spawn starts a child for s with the slot's current generation; it does not touch s.cur.
func (o *owner) spawn(s *slot) (*proc, error) {
	opts := s.spec.Spawn
	opts.Gen = s.gen
	exits := o.m.exits
	opts.onExit = func(c *Child) { exits <- c }
	c, err := o.sp.Spawn(s.spec.Role, s.spec.Files, opts)
	if err != nil {
		return nil, err
	}
	p := &proc{c: c, slot: s}
	o.procs[c] = p
	if s.starts > 0 {
		s.restarts++
	}
	s.starts++
	o.log.Debug("child started", "slot", s.id, "role", s.spec.Role.String(), "pid", c.PID(), "gen", s.gen)
	if f := o.cfg.OnStart; f != nil {
		id, pid := s.id, c.PID()
		o.emit(func() { f(id, pid) })
	}
	return p, nil
}

// startSlot makes a new child the slot's current one.
func (o *owner) startSlot(s *slot) error {
	p, err := o.spawn(s)
	if err != nil {
		return err
	}
	s.cur, s.state, s.restartAt = p, SlotRunning, time.Time{}
	return nil
}

// restartSlot starts the slot's next child; a failure is counted as a fast exit.
func (o *owner) restartSlot(s *slot) {
	if err := o.startSlot(s); err != nil {
		o.log.Error("restarting child failed", "slot", s.id, "role", s.spec.Role.String(), "err", err)
		s.fast++
		o.backoff(s)
	}
}

// backoff puts s in SlotBackoff for the crash-loop delay, or restarts it at once when it
// has not crashed often enough.
func (o *owner) backoff(s *slot) {
	cl := o.cfg.CrashLoop
	if s.fast < cl.Limit {
		o.restartSlot(s)
		return
	}
	delay := min(cl.MaxDelay, cl.MaxDelay/8<<min(s.fast-cl.Limit, 3))
	o.log.Warn("child keeps dying right after start, delaying its restart",
		"slot", s.id, "role", s.spec.Role.String(), "fast_exits", s.fast, "delay", delay)
	s.state, s.restartAt = SlotBackoff, time.Now().Add(delay)
}

func (o *owner) exited(c *Child) {
	p := o.procs[c]
	delete(o.procs, c)
	s := p.slot
	st := c.Wait()
	o.log.Debug("child exited", "slot", s.id, "role", c.Role().String(), "pid", c.PID(), "status", st.String(), "expected", p.expected)
	if st.Err != nil {
		o.log.Error("waiting for child failed", "slot", s.id, "pid", c.PID(), "err", st.Err)
	}
	if f := o.cfg.OnExit; f != nil {
		id, pid, code, sig, exp := s.id, c.PID(), st.Code, int(st.Signal), p.expected
		o.emit(func() { f(id, pid, code, sig, exp) })
	}

	if s.cur == p {
		s.cur = nil
		s.state = SlotEmpty
		if p.expected || time.Since(c.Started()) >= o.cfg.CrashLoop.Window {
			s.fast = 0
		} else {
			s.fast++
		}
		if !o.stopping && (p.replace || s.spec.Restart == RestartAlways) {
			if !p.expected {
				o.log.Warn("child exited unexpectedly, restarting it", "slot", s.id, "role", s.spec.Role.String(), "pid", c.PID(), "status", st.String())
			}
			o.backoff(s)
		}
	} else if i := slices.Index(s.old, p); i >= 0 {
		s.old = slices.Delete(s.old, i, i+1)
	}

	if r := o.reload; r != nil && r.alive[c] {
		delete(r.alive, c)
		if r.rolling && r.waiting == c {
			r.waiting = nil
			o.rollNext()
		}
		if len(r.alive) == 0 && r.waiting == nil {
			o.finishReload()
		}
	}
}

// terminate sends SIGTERM and arms the SIGKILL deadline.
func (o *owner) terminate(p *proc, wait time.Duration) {
	p.expected = true
	if p.termSent {
		if d := time.Now().Add(wait); d.Before(p.killAt) {
			p.killAt = d
		}
		return
	}
	p.termSent = true
	p.killAt = time.Now().Add(wait)
	if err := p.c.Signal(syscall.SIGTERM); err != nil {
		o.log.Debug("SIGTERM", "pid", p.c.PID(), "err", err)
	}
}

func (o *owner) beginShutdown() {
	if o.stopping {
		return
	}
	o.stopping = true
	if o.reload != nil {
		o.log.Info("shutdown abandons the reload in progress")
		o.reload = nil
	}
	for _, s := range o.slots {
		if s.state == SlotBackoff {
			s.state = SlotEmpty
		}
	}
	for _, p := range o.procs {
		o.terminate(p, 2*o.cfg.MaxWaitTime)
	}
	o.log.Debug("shutting down", "children", len(o.procs))
}

func (o *owner) slotByID(id int) (*slot, error) {
	if id < 0 || id >= len(o.slots) {
		return nil, fmt.Errorf("%w: %d", ErrNoSlot, id)
	}
	return o.slots[id], nil
}

func (o *owner) stopSlot(id int, wait bool) error {
	if o.stopping {
		return ErrStopped
	}
	s, err := o.slotByID(id)
	if err != nil {
		return err
	}
	p := s.cur
	if p == nil || p.termSent {
		return nil
	}
	if wait && s.spec.Restart == RestartAlways {
		np, err := o.spawn(s)
		if err != nil {
			return fmt.Errorf("supervisor: starting the replacement of slot %d: %w", id, err)
		}
		s.cur, s.old = np, append(s.old, p)
	}
	o.terminate(p, o.cfg.MaxWaitTime)
	return nil
}

func (o *owner) claimReload() error {
	switch {
	case o.stopping:
		return ErrStopped
	case o.reload != nil || o.reloadClaimed:
		return ErrReloading
	}
	o.reloadClaimed = true
	return nil
}

func (o *owner) startReload(rolling bool, kinds []Kind) error {
	o.reloadClaimed = false
	if o.stopping {
		return ErrStopped
	}
	r := &reloadState{rolling: rolling, alive: map[*Child]bool{}}
	var errs []error
	for _, s := range o.slots {
		if !slices.Contains(kinds, s.spec.Role.Kind) {
			continue
		}
		s.gen++ // a slot in backoff restarts in the new generation
		old := s.cur
		if old == nil || old.termSent {
			continue
		}
		if rolling {
			r.queue = append(r.queue, s)
			r.alive[old.c] = true
			continue
		}
		np, err := o.spawn(s)
		if err != nil {
			s.gen--
			errs = append(errs, fmt.Errorf("supervisor: reload of slot %d: %w", s.id, err))
			continue
		}
		s.cur, s.old = np, append(s.old, old)
		r.alive[old.c] = true
		o.terminate(old, o.cfg.MaxWaitTime)
	}
	o.log.Info("reload", "rolling", rolling, "kinds", fmt.Sprint(kinds), "children", len(r.alive))
	o.reload = r
	if rolling {
		o.rollNext()
	}
	if len(r.alive) == 0 && r.waiting == nil {
		o.finishReload()
	}
	return errors.Join(errs...)
}

// rollNext signals the next old child of a rolling reload; its exit (see exited) starts
// its replacement and calls rollNext again.
func (o *owner) rollNext() {
	r := o.reload
	for len(r.queue) > 0 {
		s := r.queue[0]
		r.queue = r.queue[1:]
		p := s.cur
		if p == nil || !r.alive[p.c] {
			continue // it died on its own meanwhile and was restarted in the new generation
		}
		p.replace = true
		r.waiting = p.c
		o.terminate(p, o.cfg.MaxWaitTime)
		return
	}
}

func (o *owner) finishReload() {
	o.reload = nil
	o.log.Info("reload finished")
	if f := o.cfg.AfterReload; f != nil {
		o.emit(f)
	}
}
