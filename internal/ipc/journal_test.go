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
