// Package timer is the timer heap of one event loop: Swoole's Timer::after / Timer::tick
// (and Server::after / Server::tick) for a worker.
//
// A Heap is owned by a single goroutine (the event loop) and is not safe for concurrent
// use; other goroutines must hand work to the loop instead of calling it. Times are int64
// monotonic nanoseconds supplied by the caller, so the loop (and tests) control the clock.
// The loop sleeps in epoll_wait for Timeout(now) milliseconds, then calls Run(now).
//
// Add, Cancel and Run do not allocate in the steady state: entries are recycled.
package timer

import (
	"math"
	"slices"
	"time"
)

// entry is one timer. index is its position in the heap, or -1 while it is out of it
// (running, deferred, or recycled).
type entry struct {
	id        int
	deadline  int64
	interval  int64
	fn        func(id int)
	index     int
	tag       uint8
	cancelled bool
}

// Heap is a min-heap of timers ordered by deadline, ties broken by id. The zero Heap is
// ready to use. It is not safe for concurrent use: one event loop goroutine owns it.
type Heap struct {
	h        []*entry
	byID     map[int]*entry
	free     []*entry
	deferred []*entry // timers added during Run that came due in it
	current  *entry   // the timer whose callback is running
	lastID   int
	running  bool
}

// Add schedules fn to run at now+delay and returns the timer's id. With interval > 0 the
// timer repeats every interval after that (a tick); interval <= 0 makes a one-shot timer.
// A negative delay counts as 0. Ids start at 1, increase, and are never reused.
// fn receives the timer's id. A timer added by a callback during Run does not run in that
// Run, even when it is already due; it runs in the next one.
func (h *Heap) Add(now int64, delay time.Duration, interval time.Duration, fn func(id int)) int {
	return h.AddTagged(now, delay, interval, fn, 0)
}

// AddTagged is Add for a timer that carries tag, a number its owner chooses to tell its
// timers from others sharing the heap (a server's user timers from its internal ones).
// CancelTagged cancels only timers with the given tag; Cancel cancels any.
func (h *Heap) AddTagged(now int64, delay time.Duration, interval time.Duration, fn func(id int), tag uint8) int {
	if h.byID == nil {
		h.byID = make(map[int]*entry)
	}
	h.lastID++
	var e *entry
	if n := len(h.free); n > 0 {
		e = h.free[n-1]
		h.free[n-1] = nil
		h.free = h.free[:n-1]
	} else {
		e = new(entry)
	}
	*e = entry{id: h.lastID, deadline: addSat(now, int64(max(delay, 0))), interval: int64(max(interval, 0)), fn: fn, index: -1, tag: tag}
	h.byID[e.id] = e
	h.push(e)
	return e.id
}

// Cancel stops timer id. It returns false when id is unknown, was already cancelled, or is
// a one-shot timer that has already fired (or is firing: a one-shot timer cannot cancel
// itself from its callback). A tick cancelled from its own callback is not rescheduled.
func (h *Heap) Cancel(id int) bool {
	e, ok := h.byID[id]
	if !ok {
		return false
	}
	return h.cancel(e)
}

// CancelTagged is Cancel for a timer added with AddTagged(..., tag): a timer with another tag
// is left alone and CancelTagged returns false, as for an unknown id.
func (h *Heap) CancelTagged(id int, tag uint8) bool {
	e, ok := h.byID[id]
	if !ok || e.tag != tag {
		return false
	}
	return h.cancel(e)
}

func (h *Heap) cancel(e *entry) bool {
	id := e.id
	delete(h.byID, id)
	e.cancelled = true
	if e.index >= 0 {
		h.remove(e.index)
		h.recycle(e)
	}
	// Otherwise the entry is running or deferred; Run recycles it.
	return true
}

// Exists reports whether timer id is scheduled: added, not cancelled, and not a one-shot
// timer that has fired. A tick exists during its own callback; a one-shot timer does not.
func (h *Heap) Exists(id int) bool {
	_, ok := h.byID[id]
	return ok
}

// Len returns the number of scheduled timers (those for which Exists is true).
func (h *Heap) Len() int {
	return len(h.byID)
}

// Info describes a scheduled timer (List).
type Info struct {
	ID       int
	Deadline int64         // when it runs next, in the caller's clock
	Interval time.Duration // 0 for a one-shot timer
}

// List returns the scheduled timers that carry tag, by id.
func (h *Heap) List(tag uint8) []Info {
	var out []Info
	for _, e := range h.byID {
		if e.tag == tag && !e.cancelled {
			out = append(out, Info{ID: e.id, Deadline: e.deadline, Interval: time.Duration(e.interval)})
		}
	}
	slices.SortFunc(out, func(a, b Info) int { return a.ID - b.ID })
	return out
}

// Next returns the earliest deadline, and false if no timer is scheduled.
func (h *Heap) Next() (deadline int64, ok bool) {
	if len(h.h) > 0 {
		return h.h[0].deadline, true
	}
	// Deferred timers exist only during Run.
	for _, e := range h.deferred {
		if !e.cancelled && (!ok || e.deadline < deadline) {
			deadline, ok = e.deadline, true
		}
	}
	return deadline, ok
}

// Timeout returns how long an epoll_wait may sleep at time now before the next deadline,
// in milliseconds: -1 when no timer is scheduled, 0 when one is due, otherwise the time
// left rounded up, so a timer never fires early. It is capped at math.MaxInt32.
func (h *Heap) Timeout(now int64) int {
	d, ok := h.Next()
	if !ok {
		return -1
	}
	if d <= now {
		return 0
	}
	left := uint64(d - now) // d > now, so this does not overflow as unsigned
	ms := (left + uint64(time.Millisecond) - 1) / uint64(time.Millisecond)
	if ms > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(ms)
}

// Run runs every timer whose deadline is at or before now, in deadline order (ties by id),
// and returns how many callbacks ran. Callbacks may call Add, Cancel, Exists and Clear but
// not Run (a nested Run returns 0). A tick is rescheduled after its callback at
// deadline+interval; if that is not after now (the loop fell behind), the missed periods
// are skipped: the next deadline is the first deadline+k*interval after now. A tick thus
// keeps its phase and runs at most once per Run, and a late loop does not cause a burst.
// If a callback panics, the panic propagates; that timer is dropped and the rest stay
// scheduled.
func (h *Heap) Run(now int64) int {
	if h.running {
		return 0
	}
	h.running = true
	defer h.endRun()
	limit := h.lastID // timers with a larger id were added during this Run
	ran := 0
	for len(h.h) > 0 && h.h[0].deadline <= now {
		e := h.h[0]
		h.remove(0)
		if e.id > limit {
			h.deferred = append(h.deferred, e)
			continue
		}
		if e.interval == 0 {
			delete(h.byID, e.id) // fired: Cancel and Exists now report false
		}
		ran++
		h.current = e
		e.fn(e.id)
		h.current = nil
		if e.interval == 0 || e.cancelled {
			h.recycle(e)
			continue
		}
		next := addSat(e.deadline, e.interval)
		if next <= now {
			skip := (now-e.deadline)/e.interval + 1
			next = addSat(e.deadline, mulSat(skip, e.interval))
		}
		e.deadline = next
		if next <= now { // only when the clock saturates at math.MaxInt64
			h.deferred = append(h.deferred, e)
		} else {
			h.push(e)
		}
	}
	return ran
}

// endRun puts the deferred timers back into the heap. If a callback panicked, its timer
// is dropped (a tick is not rescheduled) and the heap stays usable.
func (h *Heap) endRun() {
	h.running = false
	if e := h.current; e != nil {
		h.current = nil
		if !e.cancelled && h.byID[e.id] == e {
			delete(h.byID, e.id)
		}
		h.recycle(e)
	}
	for i, e := range h.deferred {
		h.deferred[i] = nil
		if e.cancelled {
			h.recycle(e)
		} else {
			h.push(e)
		}
	}
	h.deferred = h.deferred[:0]
}

// Clear cancels every timer. Ids are not reused afterwards.
func (h *Heap) Clear() {
	for id, e := range h.byID {
		e.cancelled = true
		delete(h.byID, id)
	}
	for i, e := range h.h {
		h.h[i] = nil
		h.recycle(e)
	}
	h.h = h.h[:0]
	// Deferred and running entries are marked cancelled; Run recycles them.
}

func (h *Heap) recycle(e *entry) {
	*e = entry{index: -1}
	h.free = append(h.free, e)
}

func less(a, b *entry) bool {
	return a.deadline < b.deadline || (a.deadline == b.deadline && a.id < b.id)
}

func (h *Heap) push(e *entry) {
	e.index = len(h.h)
	h.h = append(h.h, e)
	h.up(e.index)
}

// remove takes the entry at index i out of the heap.
func (h *Heap) remove(i int) {
	last := len(h.h) - 1
	e := h.h[i]
	if i != last {
		h.swap(i, last)
	}
	h.h[last] = nil
	h.h = h.h[:last]
	e.index = -1
	if i != last {
		if !h.down(i) {
			h.up(i)
		}
	}
}

func (h *Heap) swap(i, j int) {
	h.h[i], h.h[j] = h.h[j], h.h[i]
	h.h[i].index = i
	h.h[j].index = j
}

func (h *Heap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !less(h.h[j], h.h[i]) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

// down sifts the entry at i0 down and reports whether it moved.
func (h *Heap) down(i0 int) bool {
	i, n := i0, len(h.h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && less(h.h[r], h.h[l]) {
			j = r
		}
		if !less(h.h[j], h.h[i]) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}

func addSat(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func mulSat(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}
