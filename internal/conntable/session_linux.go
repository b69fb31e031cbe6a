//go:build linux

package conntable

import (
	"runtime"
	"time"
)

// Alloc reserves a slot for a new session and returns its id. It fails
// (ok=false) when Len() >= MaxConn(). The live-session count (Len) is
// incremented here, not in Publish, so concurrent Allocs from any number of
// processes never exceed MaxConn.
//
// Each attempt takes the next id from Counters.SessionRound and tries to move
// the slot at id&(Capacity-1) from StateFree to StateReserved; if that slot is
// still held by another (long-lived) session, the id is skipped and the next
// one is tried, so ids never repeat. Because Capacity >= 2*MaxConn, at least
// half the slots are free and an attempt rarely fails; after Capacity failed
// attempts Alloc gives up.
//
// The returned slot is Reserved with Session set and every other field zero:
// the caller becomes its owner, fills the fields and calls Publish (or
// Release to give it back).
func (t *Table) Alloc() (id int64, s *Slot, ok bool) {
	if t.hdr.Len.Add(1) > t.maxConn {
		t.hdr.Len.Add(-1)
		return 0, nil, false
	}
	for range len(t.slots) {
		id = t.counters.SessionRound.Add(1)
		s = &t.slots[id&t.mask]
		if s.State.CompareAndSwap(StateFree, StateReserved) {
			s.Session.Store(id)
			return id, s, true
		}
	}
	t.hdr.Len.Add(-1)
	return 0, nil, false
}

// Publish makes a Reserved slot visible to readers (StateReserved ->
// StateOpen). Only the owner calls it, after filling the fields. A slot in
// any other state is left unchanged.
func (t *Table) Publish(s *Slot) {
	s.State.CompareAndSwap(StateReserved, StateOpen)
}

// Get returns the slot of session id if the session is live (StateOpen or
// StateClosing), else nil; id <= 0 gives nil. It is safe against a
// concurrent Release and reuse of the slot (Session is loaded before and
// after State), but the session may close right after Get returns: callers
// that read fields re-check s.Session.Load() == id afterwards.
func (t *Table) Get(id int64) *Slot {
	if id <= 0 {
		return nil
	}
	s := &t.slots[id&t.mask]
	if s.Session.Load() != id {
		return nil
	}
	if st := s.State.Load(); st != StateOpen && st != StateClosing {
		return nil
	}
	if s.Session.Load() != id {
		return nil
	}
	return s
}

// Lookup is Get restricted to StateOpen: it returns nil for a session that
// is closing.
func (t *Table) Lookup(id int64) *Slot {
	if id <= 0 {
		return nil
	}
	s := &t.slots[id&t.mask]
	if s.Session.Load() != id || s.State.Load() != StateOpen || s.Session.Load() != id {
		return nil
	}
	return s
}

// MarkClosing moves s from StateOpen to StateClosing if it still holds
// session id, and reports whether this call did so: it returns true exactly
// once per session, whoever calls it from whichever process, so the winner
// is the one that closes the connection. Release waits for MarkClosing calls
// in flight on the slot, so a late call can never close a newer session
// that reused the slot.
func (t *Table) MarkClosing(s *Slot, id int64) bool {
	if s == nil || id <= 0 || s.Session.Load() != id {
		return false // fast path: no pin, so stale callers never delay Release
	}
	// Pin, then re-check: Release stores Session=0 and then waits for pins,
	// so either it sees this pin or this load sees its store (both seq-cst).
	s.pins.Add(1)
	ok := s.Session.Load() == id && s.State.CompareAndSwap(StateOpen, StateClosing)
	s.pins.Add(-1)
	return ok
}

// pinWait bounds how long Release waits for MarkClosing calls in flight on
// its slot. A pin is held for a few instructions, so a long wait means the
// pinning goroutine was descheduled inside MarkClosing (rare, and over in
// milliseconds) or its process died there; after pinWait Release assumes
// the latter and goes on.
const pinWait = time.Second

// Release frees the slot: Session becomes 0 (readers stop seeing the
// session at once), every field is zeroed, then State becomes StateFree and
// Len() drops by one. Only the owner calls it, once per session, from
// Reserved, Open or Closing; releasing a free slot does nothing. Between
// clearing Session and zeroing the fields it waits (normally not at all) for
// MarkClosing calls that are inside their check-and-swap on this slot.
func (t *Table) Release(s *Slot) {
	if s == nil || s.State.Load() == StateFree {
		return
	}
	s.Session.Store(0)
	if s.pins.Load() != 0 {
		waitPins(s)
	}
	s.clear()
	s.State.Store(StateFree)
	t.hdr.Len.Add(-1)
}

func waitPins(s *Slot) {
	var deadline time.Time
	for i := 0; s.pins.Load() > 0; i++ {
		if i < 64 {
			runtime.Gosched()
			continue
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(pinWait)
		} else if time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// Len returns the number of live sessions: slots Reserved, Open or Closing.
// It is the count Alloc checks against MaxConn; the server's own
// Counters.ConnectionNum is separate.
func (t *Table) Len() int { return int(t.hdr.Len.Load()) }

// List appends to dst the ids of Open sessions greater than after, in
// ascending order, at most limit of them (none when limit <= 0), and returns
// the extended slice. It allocates only when dst must grow: pass a dst with
// enough capacity to make it allocation free. The result is a snapshot.
//
// When the ids after..Counters.SessionRound number at most Capacity, List
// walks them in order and checks each one's slot; otherwise it scans every
// slot, keeping the smallest limit ids in a bounded heap held in dst's tail.
func (t *Table) List(after int64, limit int, dst []int64) []int64 {
	return t.list(after, limit, false, 0, dst)
}

// ListWorker is List restricted to sessions whose Worker field is worker.
func (t *Table) ListWorker(after int64, limit int, worker int32, dst []int64) []int64 {
	return t.list(after, limit, true, worker, dst)
}

// openMatch reports whether s holds Open session id (and, with filter, is
// owned by worker).
func openMatch(s *Slot, id int64, filter bool, worker int32) bool {
	return s.Session.Load() == id && s.State.Load() == StateOpen &&
		(!filter || s.Worker.Load() == worker) && s.Session.Load() == id
}

func (t *Table) list(after int64, limit int, filter bool, worker int32, dst []int64) []int64 {
	if limit <= 0 {
		return dst
	}
	if after < t.startID {
		after = t.startID
	}
	round := t.counters.SessionRound.Load()
	if round <= after {
		return dst
	}
	if round-after <= int64(len(t.slots)) {
		n := 0
		for id := after + 1; id <= round; id++ {
			if openMatch(&t.slots[id&t.mask], id, filter, worker) {
				dst = append(dst, id)
				if n++; n == limit {
					break
				}
			}
		}
		return dst
	}

	base := len(dst)
	for i := range t.slots {
		s := &t.slots[i]
		id := s.Session.Load()
		if id <= after || !openMatch(s, id, filter, worker) {
			continue
		}
		if h := dst[base:]; len(h) < limit {
			dst = append(dst, id)
			siftUp(dst[base:], len(h))
		} else if id < h[0] {
			h[0] = id
			siftDown(h, 0, len(h))
		}
	}
	// Heap sort the max-heap in place: ascending order.
	h := dst[base:]
	for end := len(h) - 1; end > 0; end-- {
		h[0], h[end] = h[end], h[0]
		siftDown(h, 0, end)
	}
	return dst
}

// siftUp restores the max-heap property of h after h[i] was added.
func siftUp(h []int64, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h[p] >= h[i] {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

// siftDown restores the max-heap property of h[:n] below i.
func siftDown(h []int64, i, n int) {
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if c+1 < n && h[c+1] > h[c] {
			c++
		}
		if h[i] >= h[c] {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}
