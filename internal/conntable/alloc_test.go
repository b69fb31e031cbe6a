//go:build linux

package conntable

import "testing"

func TestZeroAllocs(t *testing.T) {
	tb := newTable(t, 100, 0, 0)
	id, _ := openSession(t, tb, 0)
	for range 10 {
		openSession(t, tb, 1)
	}
	dst := make([]int64, 0, 64)
	tests := []struct {
		name string
		fn   func()
	}{
		{"Get", func() { _ = tb.Get(id) }},
		{"Get miss", func() { _ = tb.Get(id + 5000) }},
		{"Lookup", func() { _ = tb.Lookup(id) }},
		{"Alloc+Publish+Release", func() {
			_, s, ok := tb.Alloc()
			if !ok {
				panic("Alloc failed")
			}
			tb.Publish(s)
			tb.Release(s)
		}},
		{"MarkClosing", func() { _ = tb.MarkClosing(tb.Get(id), id+1) }},
		{"List", func() { dst = tb.List(0, 50, dst[:0]) }},
		{"ListWorker", func() { dst = tb.ListWorker(0, 50, 1, dst[:0]) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tc.fn); n != 0 {
				t.Errorf("%s: %v allocations", tc.name, n)
			}
		})
	}
	// Churn ids past Capacity: List then takes the heap strategy.
	for range tb.Capacity() {
		_, s, _ := tb.Alloc()
		tb.Release(s)
	}
	if round := tb.Counters().SessionRound.Load(); round <= int64(tb.Capacity()) {
		t.Fatalf("round %d: heap strategy not exercised", round)
	}
	t.Run("List heap", func(t *testing.T) {
		if n := testing.AllocsPerRun(20, func() { dst = tb.List(0, 50, dst[:0]) }); n != 0 {
			t.Errorf("%v allocations", n)
		}
		if len(dst) != 11 || dst[0] != id {
			t.Errorf("List = %v", dst)
		}
	})
}

func BenchmarkAllocRelease(b *testing.B) {
	tb := newTable(b, 1024, 0, 0)
	b.ReportAllocs()
	for b.Loop() {
		_, s, ok := tb.Alloc()
		if !ok {
			b.Fatal("Alloc failed")
		}
		tb.Publish(s)
		tb.Release(s)
	}
}

func BenchmarkGet(b *testing.B) {
	tb := newTable(b, 1024, 0, 0)
	id, _ := openSession(b, tb, 0)
	b.ReportAllocs()
	for b.Loop() {
		if tb.Get(id) == nil {
			b.Fatal("Get missed")
		}
	}
}

func BenchmarkList(b *testing.B) {
	tb := newTable(b, 1024, 0, 0)
	for range 1000 {
		openSession(b, tb, 0)
	}
	dst := make([]int64, 0, 100)
	b.ReportAllocs()
	for b.Loop() {
		dst = tb.List(0, 100, dst[:0])
	}
}
