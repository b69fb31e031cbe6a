//go:build linux

package conntable

import (
	"slices"
	"testing"
)

// TestReleaseOwnedBy: the slots of a dead owner (open, closing or only reserved) are freed;
// other owners' slots and the live count of theirs stay.
func TestReleaseOwnedBy(t *testing.T) {
	tb := newTable(t, 64, 2, 0)
	own := func(pid int32, state func(s *Slot, id int64)) int64 {
		id, s, ok := tb.Alloc()
		if !ok {
			t.Fatal("Alloc failed")
		}
		s.OwnerPID.Store(pid)
		state(s, id)
		return id
	}
	open := func(s *Slot, _ int64) { tb.Publish(s) }
	closing := func(s *Slot, id int64) { tb.Publish(s); tb.MarkClosing(s, id) }
	reserved := func(*Slot, int64) {}

	dead := []int64{own(100, open), own(100, closing), own(100, reserved), own(100, open)}
	alive := []int64{own(200, open), own(200, open)}
	if tb.Len() != 6 {
		t.Fatalf("Len %d, want 6", tb.Len())
	}
	if live, res := tb.ReleaseOwnedBy(100); live != 3 || res != 1 {
		t.Fatalf("ReleaseOwnedBy(100) = %d live, %d reserved; want 3, 1", live, res)
	}
	if tb.Len() != 2 {
		t.Fatalf("Len %d after the release, want 2", tb.Len())
	}
	for _, id := range dead {
		if tb.Get(id) != nil {
			t.Errorf("session %d of the dead owner is still there", id)
		}
	}
	if got := tb.List(0, 10, nil); !slices.Equal(got, alive) {
		t.Fatalf("List = %v, want the other owner's %v", got, alive)
	}
	if live, res := tb.ReleaseOwnedBy(100); live != 0 || res != 0 {
		t.Fatalf("a second ReleaseOwnedBy released %d, %d", live, res)
	}
	if live, _ := tb.ReleaseOwnedBy(0); live != 0 {
		t.Fatalf("ReleaseOwnedBy(0) released %d slots", live)
	}
	// A released slot comes back clean: OwnerPID is cleared with the rest.
	_, s, _ := tb.Alloc()
	if s.OwnerPID.Load() != 0 {
		t.Fatalf("a new slot has OwnerPID %d", s.OwnerPID.Load())
	}
}
