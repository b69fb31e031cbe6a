//go:build linux

package ipc

import (
	"bytes"
	"testing"
)

// TestReadBatchNested: a ReadBatch called from inside fn (a callback that waits on the same
// socket) delivers first what the outer call received and had not delivered, in order, then
// reads on; chunked messages split across the outer and the inner reads arrive whole, and the
// outer fn's payload is untouched by the inner reads.
func TestReadBatchNested(t *testing.T) {
	a, b, err := NewPair()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	cfg := Config{MaxPayload: 1024, Batch: 4}
	w, err := NewWriter(a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	const msgs = 12
	for i := range msgs {
		size := 100 + i*900 // 100 B .. ~10 KiB: 1 to 11 datagrams
		if err := w.Write(Header{Type: TypeData, Fd: int64(i)}, pattern(i, size)); err != nil {
			t.Fatal(err)
		}
	}
	var order []int64
	var fn func(h Header, p []byte)
	fn = func(h Header, p []byte) {
		if err := checkPattern(p, int(h.Fd), 100+int(h.Fd)*900); err != nil {
			t.Errorf("message %d: %v", h.Fd, err)
		}
		order = append(order, h.Fd)
		if h.Fd%3 == 0 { // wait inside: read on until one more message came
			keep := bytes.Clone(p)
			for want, tries := len(order)+1, 0; len(order) < want && len(order) < msgs && tries < 1000; tries++ {
				_, _ = w.Flush()
				if _, err := r.ReadBatch(fn); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(keep, p) {
				t.Errorf("message %d: its payload changed during the nested read", h.Fd)
			}
		}
	}
	for tries := 0; len(order) < msgs && tries < 1000; tries++ {
		_, _ = w.Flush() // what the socket did not take at once
		if _, err := r.ReadBatch(fn); err != nil {
			t.Fatal(err)
		}
	}
	if len(order) != msgs {
		t.Fatalf("%d of %d messages delivered: %v", len(order), msgs, order)
	}
	for i, id := range order {
		if id != int64(i) {
			t.Fatalf("delivered out of order: %v", order)
		}
	}
	if d := r.Counters().Dropped.Load(); d != 0 {
		t.Fatalf("%d dropped", d)
	}
	if r.Pending() != 0 {
		t.Fatalf("Pending %d after the reads", r.Pending())
	}
}
