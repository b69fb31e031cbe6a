//go:build linux

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Errors returned by the Manager.
var (
	// ErrReloading is returned by Reload and ReloadRolling while a reload is in progress.
	// Swoole ignores such a request; so may the caller.
	ErrReloading = errors.New("supervisor: a reload is already in progress")
	// ErrStopped is returned once Shutdown has begun or Run has returned.
	ErrStopped = errors.New("supervisor: manager stopped")
	// ErrNotRunning is returned by calls made before Run.
	ErrNotRunning = errors.New("supervisor: manager not running")
	// ErrAlreadyRun is returned by a second call to Run.
	ErrAlreadyRun = errors.New("supervisor: Run called twice")
	// ErrNoSlot is returned for a slot id outside the configured slots.
	ErrNoSlot = errors.New("supervisor: no such slot")
)

// RestartPolicy says what the Manager does when a slot's child exits on its own or after
// StopSlot.
type RestartPolicy int

const (
	// RestartAlways starts a new child (workers, task workers, user processes).
	RestartAlways RestartPolicy = iota
	// RestartNever leaves the slot empty.
	RestartNever
)

// SlotSpec describes one slot: a place in the process tree that holds one child at a time
// (two, briefly, during an async reload).
type SlotSpec struct {
	Role    Role
	Files   Files // inherited by every child of the slot: a restarted child gets the same files
	Restart RestartPolicy
	Spawn   SpawnOptions // Gen is set by the Manager
}

// CrashLoop is the restart backoff for children that die right after starting.
type CrashLoop struct {
	// Window: an unexpected exit this soon after the start counts as fast (default 100 ms).
	Window time.Duration
	// Limit: after this many fast exits in a row, restarts are delayed (default 5).
	Limit int
	// MaxDelay caps the delay, which starts at MaxDelay/8 and doubles (default 1 s).
	MaxDelay time.Duration
}

// ManagerConfig configures a Manager. Only Slots is required.
type ManagerConfig struct {
	// Slots, by slot id: slot i is Slots[i]. The server lays them out in Swoole's id order
	// (workers, task workers, user processes), so a slot id is a Swoole worker id.
	Slots []SlotSpec

	// OnStart is called after a child was started in a slot.
	OnStart func(slot, pid int)
	// OnExit is called after a child of a slot was reaped. exitCode is its exit status (0
	// when a signal killed it), signal the signal that killed it (0 when it exited).
	// expected is true when the Manager had asked it to stop (reload, StopSlot, Shutdown),
	// whatever the status; the server reports unexpected exits as OnWorkerError.
	OnExit func(slot, pid, exitCode, signal int, expected bool)
	// BeforeReload runs on the goroutine that called Reload or ReloadRolling, after the
	// reload was accepted and before any child is touched.
	BeforeReload func()
	// AfterReload is called once every child in the reload's snapshot has exited.
	AfterReload func()

	// MaxWaitTime bounds how long a child asked to stop may take before SIGKILL
	// (Swoole's max_wait_time); Shutdown allows twice as long. Default 3 s.
	MaxWaitTime time.Duration
	// CrashLoop tunes the restart backoff; zero fields take the defaults.
	CrashLoop CrashLoop
	// Logger receives the Manager's logs; nil is slog.Default().
	Logger *slog.Logger
}

// SlotState is the state of a slot as Status reports it.
type SlotState int

const (
	// SlotRunning: the slot has a current child.
	SlotRunning SlotState = iota
	// SlotBackoff: the child died and its replacement waits out the crash-loop delay.
	SlotBackoff
	// SlotEmpty: no current child and none coming (RestartNever, or shutting down).
	SlotEmpty
)

// String names the state.
func (s SlotState) String() string {
	switch s {
	case SlotRunning:
		return "running"
	case SlotBackoff:
		return "backoff"
	case SlotEmpty:
		return "empty"
	}
	return fmt.Sprintf("SlotState(%d)", int(s))
}

// SlotStatus is a snapshot of one slot.
type SlotStatus struct {
	ID       int
	Role     Role
	PID      int // the current child; 0 when there is none
	Gen      int // reloads this slot went through
	Restarts int // children started after the first
	State    SlotState
	Retiring []int // pids of old children asked to stop that have not exited yet
}

// Manager starts the children of its slots, reaps them, restarts them and reloads them.
//
// All its state belongs to one goroutine, the one running Run; every method is a request
// to that goroutine with a reply, so every method is safe for concurrent use. Callbacks
// (OnStart, OnExit, AfterReload) run one at a time, in the order things happened, on a
// goroutine of their own: they may call the Manager's methods, except Shutdown, which waits
// for them (call `go m.Shutdown()` from a callback).
type Manager struct {
	cfg ManagerConfig
	log *slog.Logger

	reqs     chan func(*owner)
	exits    chan *Child
	stopCh   chan struct{}
	loopDone chan struct{} // the owner no longer takes requests
	done     chan struct{} // Run has returned

	mu       sync.Mutex // lifecycle flags only
	started  bool
	stopReq  bool
	stopOnce sync.Once
	err      error // Run's result, written before done closes
}

// NewManager returns a Manager for cfg. Nothing starts before Run.
func NewManager(cfg ManagerConfig) *Manager {
	if cfg.MaxWaitTime <= 0 {
		cfg.MaxWaitTime = 3 * time.Second
	}
	if cfg.CrashLoop.Window <= 0 {
		cfg.CrashLoop.Window = 100 * time.Millisecond
	}
	if cfg.CrashLoop.Limit <= 0 {
		cfg.CrashLoop.Limit = 5
	}
	if cfg.CrashLoop.MaxDelay <= 0 {
		cfg.CrashLoop.MaxDelay = time.Second
	}
	cfg.Slots = slices.Clone(cfg.Slots)
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Manager{
		cfg:      cfg,
		log:      log.With("component", "supervisor"),
		reqs:     make(chan func(*owner)),
		exits:    make(chan *Child, 16),
		stopCh:   make(chan struct{}),
		loopDone: make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// Done is closed when Run has returned: every child has been reaped and every callback has
// returned.
func (m *Manager) Done() <-chan struct{} { return m.done }

// Run starts a child in every slot, then supervises them until ctx is done or Shutdown is
// called, and shuts down as Shutdown describes. It returns nil after a shutdown, or the
// error that made a slot's first start fail (after stopping the others). A failed restart
// later is logged and retried with the crash-loop delay.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return ErrAlreadyRun
	}
	m.started = true
	stopNow := m.stopReq
	m.mu.Unlock()
	if stopNow {
		close(m.loopDone)
		close(m.done)
		return nil
	}

	sp, err := NewSpawner()
	if err != nil {
		m.err = err
		close(m.loopDone)
		close(m.done)
		return err
	}
	o := &owner{
		m:     m,
		cfg:   &m.cfg,
		log:   m.log,
		sp:    sp,
		procs: map[*Child]*proc{},
		evCh:  make(chan func()),
		timer: time.NewTimer(time.Hour),
	}
	o.timer.Stop()
	evDone := make(chan struct{})
	go func() {
		defer close(evDone)
		for f := range o.evCh {
			f()
		}
	}()
	for i, spec := range m.cfg.Slots {
		o.slots = append(o.slots, &slot{id: i, spec: spec, state: SlotEmpty})
	}
	var firstErr error
	if ctx.Err() != nil {
		o.beginShutdown()
	}
	for _, s := range o.slots {
		if o.stopping {
			break
		}
		if err := o.startSlot(s); err != nil {
			firstErr = err
			o.beginShutdown()
			break
		}
	}
	o.loop(ctx)

	close(m.loopDone)
	for _, f := range o.pending {
		o.evCh <- f
	}
	close(o.evCh)
	<-evDone
	o.timer.Stop()
	if err := sp.Close(); err != nil && firstErr == nil {
		m.log.Warn("closing spawner", "err", err)
	}
	m.err = firstErr
	close(m.done)
	return firstErr
}

// Shutdown stops restarting, sends SIGTERM to every child, SIGKILLs those still alive after
// 2 × MaxWaitTime, and returns once every child has been reaped and Run has returned (with
// Run's result). Called before Run, it makes Run return at once. Safe to call more than
// once and from any goroutine but a callback's own (see Manager).
func (m *Manager) Shutdown() error {
	m.mu.Lock()
	m.stopReq = true
	started := m.started
	m.mu.Unlock()
	m.stopOnce.Do(func() { close(m.stopCh) })
	if !started {
		return nil
	}
	<-m.done
	return m.err
}

// call runs fn on the owner goroutine and waits for it.
func (m *Manager) call(fn func(o *owner)) error {
	m.mu.Lock()
	started := m.started
	m.mu.Unlock()
	if !started {
		return ErrNotRunning
	}
	ran := make(chan struct{})
	select {
	case m.reqs <- func(o *owner) { fn(o); close(ran) }:
		<-ran
		return nil
	case <-m.loopDone:
		return ErrStopped
	}
}

// Reload replaces the children of every slot whose role is of one of kinds (KindWorker and
// KindTaskWorker when none are given) the asynchronous way (Swoole's reload_async): for each
// slot it starts the replacement first, then sends SIGTERM to the old child, which gets
// MaxWaitTime to finish before SIGKILL. Old and new briefly share the slot. Reload returns
// once every replacement has started; AfterReload runs when every old child has exited.
// While a reload is in progress it returns ErrReloading. A failed start leaves that slot's
// old child in place and is returned (joined) after the other slots were handled.
func (m *Manager) Reload(kinds ...Kind) error { return m.reload(false, kinds) }

// ReloadRolling replaces the children of the slots of kinds one at a time (Swoole's
// reload with reload_async off, and any task-worker-only reload): SIGTERM to one old child,
// wait for its exit (SIGKILL after MaxWaitTime), start its replacement, go on with the next.
// It returns once the first old child has been signalled; AfterReload runs after the last
// one exited. While a reload is in progress it returns ErrReloading.
func (m *Manager) ReloadRolling(kinds ...Kind) error { return m.reload(true, kinds) }

func (m *Manager) reload(rolling bool, kinds []Kind) error {
	if len(kinds) == 0 {
		kinds = []Kind{KindWorker, KindTaskWorker}
	}
	var err error
	if e := m.call(func(o *owner) { err = o.claimReload() }); e != nil {
		return e
	}
	if err != nil {
		return err
	}
	if m.cfg.BeforeReload != nil {
		m.cfg.BeforeReload()
	}
	if e := m.call(func(o *owner) { err = o.startReload(rolling, kinds) }); e != nil {
		return e
	}
	return err
}

// StopSlot asks the current child of slot id to stop: SIGTERM, then SIGKILL after
// MaxWaitTime. With wait false the slot's restart policy replaces it once it has exited;
// with wait true (Swoole's stop(id, waitEvent=true), the async way) a RestartAlways slot
// gets its replacement first and the old child drains beside it. The exit is reported as
// expected. It returns once the signal is sent; a slot with no current child is left alone.
func (m *Manager) StopSlot(id int, wait bool) error {
	var err error
	if e := m.call(func(o *owner) { err = o.stopSlot(id, wait) }); e != nil {
		return e
	}
	return err
}

// PIDs returns the pid of every slot's current child, by slot id (slots with no child are
// absent). It returns an empty map when the Manager is not running.
func (m *Manager) PIDs() map[int]int {
	pids := map[int]int{}
	m.call(func(o *owner) {
		for _, s := range o.slots {
			if s.cur != nil {
				pids[s.id] = s.cur.c.PID()
			}
		}
	})
	return pids
}

// Status returns a snapshot of every slot, by slot id; nil when the Manager is not running.
func (m *Manager) Status() []SlotStatus {
	var st []SlotStatus
	m.call(func(o *owner) {
		for _, s := range o.slots {
			ss := SlotStatus{ID: s.id, Role: s.spec.Role, Gen: s.gen, Restarts: s.restarts, State: s.state}
			if s.cur != nil {
				ss.PID = s.cur.c.PID()
			}
			for _, p := range s.old {
				ss.Retiring = append(ss.Retiring, p.c.PID())
			}
			if s.cur != nil && s.cur.termSent {
				ss.Retiring = append(ss.Retiring, s.cur.c.PID())
			}
			st = append(st, ss)
		}
	})
	return st
}
