//go:build linux

package ipc

import (
	"testing"
)

// TestAllocs locks in the allocation-free hot paths: Write's direct send, Enqueue+Flush
// with a warm slab, and ReadBatch in steady state (small and chunked messages).
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	a, b := newPair(t)
	w := newWriter(t, a, Config{})
	r := newReader(t, b, Config{})
	small := make([]byte, 64)
	chunked := make([]byte, 200<<10)
	got := 0
	fn := func(h Header, p []byte) { got++ }
	drain := func() {
		for {
			n, err := r.ReadBatch(fn)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
		}
	}
	h := Header{Type: TypeData, Fd: 1}
	tests := []struct {
		name string
		f    func()
	}{
		{name: "Write small", f: func() {
			if err := w.Write(h, small); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "Write chunked", f: func() {
			if err := w.Write(h, chunked); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "Enqueue and Flush", f: func() {
			for range 10 {
				if err := w.Enqueue(h, small); err != nil {
					t.Fatal(err)
				}
			}
			if done, err := w.Flush(); !done || err != nil {
				t.Fatal(done, err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.f()
			drain()
			if n := testing.AllocsPerRun(200, func() { tc.f(); drain() }); n != 0 {
				t.Errorf("%v allocations per call (sending and reading)", n)
			}
			// The sending side alone, draining outside the measurement.
			var total float64
			for range 50 {
				total += testing.AllocsPerRun(1, tc.f)
				drain()
			}
			if total != 0 {
				t.Errorf("sending alone: %v allocations in 50 calls", total)
			}
			if w.Buffered() != 0 {
				t.Fatalf("queue not empty: %d", w.Buffered())
			}
		})
	}
	if got == 0 {
		t.Fatal("nothing read")
	}
}
