package timer

import (
	"math"
	"reflect"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const ms = int64(time.Millisecond)

// recorder collects the ids of fired timers.
type recorder struct{ ids []int }

func (r *recorder) fn(id int) { r.ids = append(r.ids, id) }

func TestOrdering(t *testing.T) {
	tests := []struct {
		name   string
		delays []time.Duration // timer i+1 gets delays[i]
		now    int64
		want   []int
	}{
		{"increasing", []time.Duration{1, 2, 3}, 10, []int{1, 2, 3}},
		{"decreasing", []time.Duration{3, 2, 1}, 10, []int{3, 2, 1}},
		{"ties by id", []time.Duration{5, 5, 1, 5, 1}, 10, []int{3, 5, 1, 2, 4}},
		{"only due", []time.Duration{5, 20, 10, 11}, 10, []int{1, 3}},
		{"none due", []time.Duration{5, 6}, 4, nil},
		{"negative delay is zero", []time.Duration{-5, 0}, 0, []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Heap
			var r recorder
			for i, d := range tt.delays {
				if id := h.Add(0, d, 0, r.fn); id != i+1 {
					t.Fatalf("Add returned id %d, want %d", id, i+1)
				}
			}
			if n := h.Run(tt.now); n != len(tt.want) {
				t.Fatalf("Run = %d, want %d", n, len(tt.want))
			}
			if !reflect.DeepEqual(r.ids, tt.want) {
				t.Fatalf("fired %v, want %v", r.ids, tt.want)
			}
			if h.Len() != len(tt.delays)-len(tt.want) {
				t.Fatalf("Len = %d, want %d", h.Len(), len(tt.delays)-len(tt.want))
			}
		})
	}
}

func TestRandomOrder(t *testing.T) {
	var h Heap
	var r recorder
	// a deterministic shuffle of deadlines with many ties
	for i := range 500 {
		h.Add(0, time.Duration((i*7919)%97), 0, r.fn)
	}
	for id := 3; id <= 500; id += 3 {
		h.Cancel(id)
	}
	h.Run(1000)
	prevD, prevID := int64(-1), 0
	for _, id := range r.ids {
		d := int64(((id - 1) * 7919) % 97)
		if id%3 == 0 {
			t.Fatalf("cancelled timer %d fired", id)
		}
		if d < prevD || (d == prevD && id < prevID) {
			t.Fatalf("timer %d (deadline %d) fired after %d (deadline %d)", id, d, prevID, prevD)
		}
		prevD, prevID = d, id
	}
	if len(r.ids) != 500-166 || h.Len() != 0 {
		t.Fatalf("%d fired, Len %d", len(r.ids), h.Len())
	}
}

func TestIDsNeverReused(t *testing.T) {
	var h Heap
	a := h.Add(0, 1, 0, func(int) {})
	h.Run(10)
	h.Clear()
	b := h.Add(0, 1, 0, func(int) {})
	h.Cancel(b)
	c := h.Add(0, 1, 0, func(int) {})
	if a != 1 || b != 2 || c != 3 {
		t.Fatalf("ids %d %d %d, want 1 2 3", a, b, c)
	}
}

func TestCancel(t *testing.T) {
	t.Run("before fire", func(t *testing.T) {
		var h Heap
		var r recorder
		a := h.Add(0, 10, 0, r.fn)
		b := h.Add(0, 10, 0, r.fn)
		if !h.Cancel(a) || h.Exists(a) || !h.Exists(b) {
			t.Fatal("Cancel(a) failed")
		}
		if h.Cancel(a) {
			t.Fatal("second Cancel returned true")
		}
		h.Run(100)
		if !reflect.DeepEqual(r.ids, []int{b}) {
			t.Fatalf("fired %v", r.ids)
		}
	})
	t.Run("after fire", func(t *testing.T) {
		var h Heap
		var r recorder
		a := h.Add(0, 10, 0, r.fn)
		h.Run(10)
		if h.Cancel(a) || h.Exists(a) {
			t.Fatal("fired one-shot timer can be cancelled")
		}
	})
	t.Run("unknown", func(t *testing.T) {
		var h Heap
		if h.Cancel(1) || h.Cancel(0) || h.Cancel(-1) || h.Exists(1) {
			t.Fatal("unknown id")
		}
	})
	t.Run("one-shot cancels itself", func(t *testing.T) {
		var h Heap
		var got, exists bool
		h.Add(0, 0, 0, func(id int) { exists = h.Exists(id); got = h.Cancel(id) })
		if h.Run(0) != 1 || got || exists {
			t.Fatalf("Cancel(self) = %v, Exists(self) = %v; want false, false", got, exists)
		}
	})
	t.Run("tick cancels itself", func(t *testing.T) {
		var h Heap
		n := 0
		var got, exists bool
		h.Add(0, 10, 10, func(id int) {
			n++
			exists = h.Exists(id)
			if n == 2 {
				got = h.Cancel(id)
			}
		})
		for now := int64(0); now <= 100; now++ {
			h.Run(now)
		}
		if n != 2 || !got || !exists || h.Len() != 0 {
			t.Fatalf("ran %d times, Cancel %v, Exists %v, Len %d", n, got, exists, h.Len())
		}
		if _, ok := h.Next(); ok {
			t.Fatal("cancelled tick still scheduled")
		}
	})
	t.Run("callback cancels a later due timer", func(t *testing.T) {
		var h Heap
		var r recorder
		var b int
		h.Add(0, 1, 0, func(id int) { r.fn(id); h.Cancel(b) })
		b = h.Add(0, 2, 0, r.fn)
		c := h.Add(0, 3, 0, r.fn)
		if n := h.Run(10); n != 2 || !reflect.DeepEqual(r.ids, []int{1, c}) {
			t.Fatalf("Run = %d, fired %v", n, r.ids)
		}
	})
	t.Run("callback cancels timer added in the same run", func(t *testing.T) {
		var h Heap
		var r recorder
		h.Add(0, 0, 0, func(int) {
			id := h.Add(0, 0, 0, r.fn)
			if !h.Cancel(id) {
				t.Error("Cancel of new timer failed")
			}
		})
		h.Add(0, 0, 0, func(int) {
			id := h.Add(0, 0, 0, r.fn) // deferred, then cancelled below
			h.Add(0, 0, 0, func(int) {})
			h.Run(0) // nested Run is refused
			if !h.Cancel(id) {
				t.Error("Cancel of deferred timer failed")
			}
		})
		h.Run(0)
		h.Run(0)
		if len(r.ids) != 0 || h.Len() != 0 {
			t.Fatalf("fired %v, Len %d", r.ids, h.Len())
		}
	})
}

func TestTick(t *testing.T) {
	t.Run("reschedules at deadline+interval", func(t *testing.T) {
		var h Heap
		var at []int64
		var now int64
		h.Add(0, 10*time.Millisecond, 10*time.Millisecond, func(int) { at = append(at, now) })
		for _, now = range []int64{5 * ms, 10 * ms, 12 * ms, 20*ms + 3, 29 * ms, 30 * ms} {
			h.Run(now)
		}
		if want := []int64{10 * ms, 20*ms + 3, 30 * ms}; !reflect.DeepEqual(at, want) {
			t.Fatalf("ran at %v, want %v", at, want)
		}
		if d, _ := h.Next(); d != 40*ms {
			t.Fatalf("next deadline %d, want %d", d, 40*ms)
		}
	})
	t.Run("skips missed periods", func(t *testing.T) {
		var h Heap
		n := 0
		h.Add(0, 10, 10, func(int) { n++ })
		if r := h.Run(95); r != 1 || n != 1 {
			t.Fatalf("late Run ran %d, want 1 (no burst)", r)
		}
		if d, _ := h.Next(); d != 100 {
			t.Fatalf("next deadline %d, want 100 (phase kept)", d)
		}
		h.Run(100) // exactly on a multiple
		if d, _ := h.Next(); d != 110 {
			t.Fatalf("next deadline %d, want 110", d)
		}
	})
	t.Run("ticks and one-shots interleave", func(t *testing.T) {
		var h Heap
		var r recorder
		tick := h.Add(0, 10, 10, r.fn)
		one := h.Add(0, 20, 0, r.fn)
		for now := int64(0); now <= 40; now += 10 {
			h.Run(now)
		}
		want := []int{tick, tick, one, tick, tick}
		if !reflect.DeepEqual(r.ids, want) {
			t.Fatalf("fired %v, want %v", r.ids, want)
		}
		if h.Len() != 1 || !h.Exists(tick) || h.Exists(one) {
			t.Fatalf("Len %d", h.Len())
		}
	})
	t.Run("saturated clock", func(t *testing.T) {
		var h Heap
		n := 0
		h.Add(math.MaxInt64-5, 10, 10, func(int) { n++ })
		if r := h.Run(math.MaxInt64); r != 1 || n != 1 {
			t.Fatalf("Run = %d", r)
		}
		if d, ok := h.Next(); !ok || d != math.MaxInt64 {
			t.Fatalf("Next = %d, %v", d, ok)
		}
	})
}

func TestAddInsideCallback(t *testing.T) {
	var h Heap
	var r recorder
	h.Add(0, 0, 0, func(id int) {
		r.fn(id)
		h.Add(0, 0, 0, r.fn) // due now, but runs on the next Run
		h.Add(0, -time.Second, 0, r.fn)
	})
	// A tick that adds a due timer every time must not loop forever.
	h.Add(0, 0, 1, func(id int) {
		r.fn(id)
		h.Add(0, 0, 0, func(int) {})
	})
	if n := h.Run(0); n != 2 || !reflect.DeepEqual(r.ids, []int{1, 2}) {
		t.Fatalf("first Run = %d, fired %v", n, r.ids)
	}
	if d, ok := h.Next(); !ok || d != 0 || h.Timeout(0) != 0 {
		t.Fatalf("Next = %d, %v, Timeout %d; want 0, true, 0", d, ok, h.Timeout(0))
	}
	r.ids = nil
	if n := h.Run(0); n != 3 || !reflect.DeepEqual(r.ids, []int{3, 4}) {
		t.Fatalf("second Run = %d, fired %v", n, r.ids)
	}
}

func TestNextDuringRun(t *testing.T) {
	var h Heap
	var next int64
	var ok bool
	h.Add(100, 0, 0, func(int) {
		h.Add(50, 0, 0, func(int) {})
		next, ok = h.Next()
	})
	h.Run(100)
	if !ok || next != 50 {
		t.Fatalf("Next during Run = %d, %v; want 50, true", next, ok)
	}
}

func TestTimeout(t *testing.T) {
	tests := []struct {
		name  string
		delay time.Duration
		now   int64
		want  int
	}{
		{"due", 5 * time.Millisecond, 5 * ms, 0},
		{"overdue", 5 * time.Millisecond, 6 * ms, 0},
		{"exact ms", 5 * time.Millisecond, 0, 5},
		{"rounds up 1ns", 1, 0, 1},
		{"rounds up", 5*time.Millisecond + 1, 0, 6},
		{"just below", 5*time.Millisecond - 1, 0, 5},
		{"far future capped", 100 * time.Hour * 24 * 365, 0, math.MaxInt32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Heap
			h.Add(0, tt.delay, 0, func(int) {})
			if got := h.Timeout(tt.now); got != tt.want {
				t.Fatalf("Timeout = %d, want %d", got, tt.want)
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		var h Heap
		if got := h.Timeout(0); got != -1 {
			t.Fatalf("Timeout = %d, want -1", got)
		}
		if _, ok := h.Next(); ok {
			t.Fatal("Next ok on empty heap")
		}
	})
	t.Run("never early", func(t *testing.T) {
		var h Heap
		fired := false
		now := int64(123456)
		h.Add(now, 2500*time.Microsecond, 0, func(int) { fired = true })
		for !fired {
			to := h.Timeout(now)
			if to < 0 {
				t.Fatal("timer lost")
			}
			now += int64(to) * ms
			if h.Run(now) == 0 && to == 0 {
				t.Fatal("due but did not run")
			}
		}
		if now < 123456+2500*int64(time.Microsecond) {
			t.Fatalf("fired early at %d", now)
		}
	})
}

func TestClear(t *testing.T) {
	var h Heap
	var r recorder
	for range 10 {
		h.Add(0, 5, 0, r.fn)
	}
	h.Add(0, 1, 1, r.fn)
	h.Clear()
	if h.Len() != 0 || h.Run(100) != 0 || len(r.ids) != 0 || h.Timeout(0) != -1 || h.Exists(1) {
		t.Fatal("Clear left timers")
	}
	t.Run("inside callback", func(t *testing.T) {
		var h Heap
		var r recorder
		tick := h.Add(0, 0, 10, func(id int) {
			r.fn(id)
			h.Add(0, 0, 0, r.fn) // deferred, then cleared
			h.Clear()
			h.Add(0, 0, 0, r.fn) // added after Clear: runs next time
		})
		h.Add(0, 0, 0, r.fn) // due in the same Run, cleared before it runs
		if n := h.Run(0); n != 1 || !reflect.DeepEqual(r.ids, []int{tick}) {
			t.Fatalf("Run = %d, fired %v", n, r.ids)
		}
		if h.Len() != 1 || h.Exists(tick) {
			t.Fatalf("Len = %d, tick exists %v", h.Len(), h.Exists(tick))
		}
		r.ids = nil
		if n := h.Run(100); n != 1 || !reflect.DeepEqual(r.ids, []int{4}) {
			t.Fatalf("second Run = %d, fired %v", n, r.ids)
		}
	})
}

func TestNoAllocs(t *testing.T) {
	var h Heap
	fn := func(int) {}
	for range 64 { // warm the free list and map
		h.Add(0, 1, 0, fn)
	}
	h.Run(10)
	now := int64(10)
	if a := testing.AllocsPerRun(1000, func() {
		for range 8 {
			h.Add(now, 1, 0, fn)
		}
		id := h.Add(now, 1, 0, fn)
		h.Cancel(id)
		now++
		h.Run(now)
	}); a != 0 {
		t.Fatalf("Add+Cancel+Run allocate %v times", a)
	}
}

func BenchmarkAddRun(b *testing.B) {
	var h Heap
	fn := func(int) {}
	var now int64
	b.ReportAllocs()
	for b.Loop() {
		h.Add(now, time.Duration(now%7), 0, fn)
		now++
		h.Run(now)
	}
}

func BenchmarkAddRun1000Pending(b *testing.B) {
	var h Heap
	fn := func(int) {}
	for i := range 1000 {
		h.Add(0, time.Hour+time.Duration(i), 0, fn)
	}
	var now int64
	b.ReportAllocs()
	for b.Loop() {
		h.Add(now, time.Duration(now%7), 0, fn)
		now++
		h.Run(now)
	}
}

// TestDeferred covers timers that came due in the Run that added them and were set aside:
// cancelling or clearing them from a later callback of the same Run.
func TestDeferred(t *testing.T) {
	for _, clear := range []bool{false, true} {
		name := map[bool]string{false: "cancel", true: "clear"}[clear]
		t.Run(name, func(t *testing.T) {
			var h Heap
			var r recorder
			var x, y int
			h.Add(0, 0, 0, func(int) {
				x = h.Add(0, 0, 0, r.fn) // deadline 0: popped and deferred before the next one
				y = h.Add(0, 0, 0, r.fn)
			})
			h.Add(0, 5, 0, func(int) {
				if clear {
					h.Clear()
				} else if !h.Cancel(x) {
					t.Error("Cancel of a deferred timer failed")
				}
			})
			if n := h.Run(10); n != 2 {
				t.Fatalf("Run = %d, want 2", n)
			}
			h.Run(10)
			want := []int{y}
			if clear {
				want = nil
			}
			if !reflect.DeepEqual(r.ids, want) || h.Len() != 0 {
				t.Fatalf("fired %v, want %v, Len %d", r.ids, want, h.Len())
			}
		})
	}
}

func TestPanickingCallback(t *testing.T) {
	var h Heap
	var r recorder
	tick := h.Add(0, 0, 10, func(int) { panic("boom") })
	later := h.Add(0, 1, 0, r.fn)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		h.Run(5)
	}()
	if h.Exists(tick) || !h.Exists(later) || h.Len() != 1 {
		t.Fatalf("after panic: tick exists %v, later exists %v, Len %d", h.Exists(tick), h.Exists(later), h.Len())
	}
	if n := h.Run(5); n != 1 || !reflect.DeepEqual(r.ids, []int{later}) {
		t.Fatalf("Run after panic = %d, fired %v", n, r.ids)
	}
}

// TestCancelTagged: CancelTagged cancels only timers of its tag; a recycled entry does not
// keep its old tag.
func TestCancelTagged(t *testing.T) {
	var h Heap
	var r recorder
	internal := h.Add(0, 10, 10, r.fn)
	user := h.AddTagged(0, 10, 0, r.fn, 1)
	if h.CancelTagged(internal, 1) || !h.Exists(internal) {
		t.Fatal("CancelTagged cancelled a timer of another tag")
	}
	if h.CancelTagged(user, 2) || !h.CancelTagged(user, 1) || h.Exists(user) {
		t.Fatal("CancelTagged of the right tag failed")
	}
	if h.CancelTagged(user, 1) {
		t.Fatal("second CancelTagged returned true")
	}
	again := h.Add(0, 10, 0, r.fn) // reuses the recycled entry
	if h.CancelTagged(again, 1) {
		t.Fatal("a recycled entry kept its old tag")
	}
	h.Run(10)
	if !reflect.DeepEqual(r.ids, []int{internal, again}) {
		t.Fatalf("fired %v", r.ids)
	}
	if !h.Cancel(internal) {
		t.Fatal("Cancel ignores tags")
	}
}
