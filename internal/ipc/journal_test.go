//go:build linux

package ipc

import (
	"testing"
	"time"
)

// TestJournalResend: a Writer dies with messages queued (held in a batch, and refused by a
// full socket); a Writer attached to the same journal sends exactly the ones not sent yet,
// first, so the reader gets every message once, whole and in order.
func TestJournalResend(t *testing.T) {
	for _, tc := range []struct {
		name string
		fill bool // fill the socket first, so that part of the queue is sent, part not
	}{{"held", false}, {"socket full", true}} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newSharedArea(t, Config{Batch: 16}) // any shared mapping will do (1 MiB)
			a, b := newPair(t)
			dead := newWriter(t, a, Config{})
			if _, err := dead.AttachJournal(mem); err != nil {
				t.Fatal(err)
			}
			sizes := []int{}
			next := int64(0)
			write := func(n int) {
				if err := dead.Write(Header{Type: TypeData, Fd: next}, pattern(int(next), n)); err != nil {
					t.Fatal(err)
				}
				sizes = append(sizes, n)
				next++
			}
			if tc.fill {
				for dead.Buffered() == 0 {
					write(60 << 10)
				}
			}
			dead.Hold()
			for range 5 {
				write(100) // packed into one datagram
			}
			write(150 << 10) // chunked: 3 datagrams
			write(7)
			// The process dies here: nothing of dead runs again.
			r := newReader(t, b, Config{})
			var got []delivered
			drain := func() {
				for {
					n, err := r.ReadBatch(collector(&got))
					if err != nil {
						t.Fatal(err)
					}
					if n == 0 {
						return
					}
				}
			}
			drain()
			heir := newWriter(t, a, Config{})
			n, err := heir.AttachJournal(mem)
			if err != nil || n == 0 {
				t.Fatalf("AttachJournal = %d, %v; want the datagrams left", n, err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for int64(len(got)) < next {
				if _, err := heir.Flush(); err != nil {
					t.Fatal(err)
				}
				drain()
				if time.Now().After(deadline) {
					t.Fatalf("got %d of %d messages", len(got), next)
				}
			}
			if int64(len(got)) != next {
				t.Fatalf("got %d messages; want %d", len(got), next)
			}
			for i, d := range got {
				if d.h.Fd != int64(i) {
					t.Fatalf("message %d arrived as %d", i, d.h.Fd)
				}
				if err := checkPattern(d.payload, i, sizes[i]); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			// All sent: the journal is empty for the next one.
			third := newWriter(t, a, Config{})
			if n, err := third.AttachJournal(mem); n != 0 || err != nil {
				t.Fatalf("AttachJournal after everything was sent = %d, %v", n, err)
			}
		})
	}
}

// TestJournalQueuesInPlace: a Writer with a journal queues its datagrams in the journal
// itself and sends them from there (no slab, no second copy) while they fit, and past the
// journal's room in slabs as before; the reader gets every message whole and in order, also
// when the journal's records and the slabs take turns over several batches.
func TestJournalQueuesInPlace(t *testing.T) {
	for _, tc := range []struct {
		name    string
		journal int // bytes of the journal
		inSlabs bool
	}{{"fits", 1 << 20, false}, {"overflows", 32 << 10, true}} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newSharedArea(t, Config{Batch: 16})[:tc.journal]
			a, b := newPair(t)
			w := newWriter(t, a, Config{})
			if _, err := w.AttachJournal(mem); err != nil {
				t.Fatal(err)
			}
			if _, err := w.AttachJournal(mem); err == nil {
				t.Fatal("a second AttachJournal succeeded; want an error")
			}
			r := newReader(t, b, Config{})
			var got []delivered
			var sizes []int
			next := 0
			for batch := range 3 {
				w.Hold()
				for i := range 20 {
					n := []int{100, 4 << 10, 1, 70 << 10}[(i+batch)%4] // packed, packed, packed, chunked
					if err := w.Write(Header{Type: TypeData, Fd: int64(next)}, pattern(next, n)); err != nil {
						t.Fatal(err)
					}
					sizes = append(sizes, n)
					next++
				}
				w.mu.Lock()
				inj, slab := 0, 0
				for _, q := range w.q[w.qhead:] {
					if q.inj {
						inj++
					} else {
						slab++
					}
				}
				slabs := len(w.slabs)
				w.mu.Unlock()
				if inj == 0 || (slab > 0) != tc.inSlabs || (slabs > 0) != tc.inSlabs {
					t.Fatalf("batch %d: %d datagrams in the journal, %d in %d slabs; want some in the journal, slabs only when it overflows (%v)", batch, inj, slab, slabs, tc.inSlabs)
				}
				if err := w.Release(); err != nil {
					t.Fatal(err)
				}
				deadline := time.Now().Add(10 * time.Second)
				for len(got) < next {
					if _, err := w.Flush(); err != nil {
						t.Fatal(err)
					}
					if _, err := r.ReadBatch(collector(&got)); err != nil {
						t.Fatal(err)
					}
					if time.Now().After(deadline) {
						t.Fatalf("batch %d: got %d of %d messages", batch, len(got), next)
					}
				}
			}
			for i, d := range got {
				if d.h.Fd != int64(i) {
					t.Fatalf("message %d arrived as %d", i, d.h.Fd)
				}
				if err := checkPattern(d.payload, i, sizes[i]); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
		})
	}
}
