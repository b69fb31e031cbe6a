//go:build linux

package ipc

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newPair returns both ends of a pair, closed when the test ends.
func newPair(t testing.TB) (a, b *os.File) {
	t.Helper()
	a, b, err := NewPair()
	if err != nil {
		t.Fatalf("NewPair: %v", err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func newWriter(t testing.TB, f *os.File, cfg Config) *Writer {
	t.Helper()
	w, err := NewWriter(f, cfg)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	t.Cleanup(func() { w.Discard() })
	return w
}

func newReader(t testing.TB, f *os.File, cfg Config) *Reader {
	t.Helper()
	r, err := NewReader(f, cfg)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	t.Cleanup(r.Release)
	return r
}

// readN calls ReadBatch until fn has seen want messages or the deadline passes.
func readN(r *Reader, want *int, deadline time.Time, fn func(Header, []byte)) error {
	got := 0
	count := func(h Header, p []byte) {
		got++
		fn(h, p)
	}
	for got < *want {
		n, err := r.ReadBatch(count)
		if err != nil {
			return err
		}
		if n == 0 {
			if err := r.WaitReadable(deadline); err != nil {
				return fmt.Errorf("after %d of %d messages: %w", got, *want, err)
			}
		}
	}
	return nil
}

func TestNewPair(t *testing.T) {
	a, b := newPair(t)
	for _, f := range []*os.File{a, b} {
		fd := int(f.Fd())
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil || fl&unix.O_NONBLOCK == 0 {
			t.Errorf("fd %d: flags %#x, %v: want O_NONBLOCK", fd, fl, err)
		}
		fdfl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || fdfl&unix.FD_CLOEXEC == 0 {
			t.Errorf("fd %d: not close-on-exec", fd)
		}
		if err := checkSocket(fd); err != nil {
			t.Error(err)
		}
		sz, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
		t.Logf("fd %d SO_SNDBUF %d", fd, sz)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := NewWriter(w, Config{}); !errors.Is(err, ErrBadSocket) {
		t.Errorf("NewWriter on a pipe: %v", err)
	}
	if _, err := NewReader(r, Config{}); !errors.Is(err, ErrBadSocket) {
		t.Errorf("NewReader on a pipe: %v", err)
	}
	if _, err := Inherit(r.Fd(), "pipe"); !errors.Is(err, ErrBadSocket) {
		t.Errorf("Inherit on a pipe: %v", err)
	}
	if _, err := NewWriter(a, Config{Batch: -1}); err == nil {
		t.Error("NewWriter accepted Batch -1")
	}
}

// TestRoundTrip sends messages of many sizes, from one writer goroutine to one reader
// goroutine, and checks them byte for byte and in order.
func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int
		count int
		cfg   Config
	}{
		{name: "small", sizes: []int{0, 1, 64, 1000}, count: 2000},
		{name: "edges", sizes: []int{DefaultMaxPayload - 1, DefaultMaxPayload, DefaultMaxPayload + 1, 2*DefaultMaxPayload - prefixSize, 2*DefaultMaxPayload - prefixSize + 1}, count: 50},
		{name: "1MiB", sizes: []int{1 << 20}, count: 20},
		{name: "10MiB", sizes: []int{10 << 20}, count: 3},
		{name: "mixed tiny batches", sizes: []int{3, 70_000, 5, 300_000}, count: 200, cfg: Config{Batch: 2, MaxPayload: 4000}},
		{name: "single datagram batches", sizes: []int{10, 20_000}, count: 200, cfg: Config{Batch: 1, MaxPayload: 1000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newPair(t)
			w := newWriter(t, a, tc.cfg)
			r := newReader(t, b, tc.cfg)
			deadline := time.Now().Add(30 * time.Second)
			size := func(i int) int { return tc.sizes[i%len(tc.sizes)] }
			werr := make(chan error, 1)
			go func() {
				for i := range tc.count {
					h := Header{Type: TypeData, SrcWorker: 1, Fd: int64(i), ReactorID: int16(i % 3)}
					if err := w.WriteBlocking(h, pattern(i, size(i)), deadline); err != nil {
						werr <- fmt.Errorf("message %d: %w", i, err)
						return
					}
				}
				werr <- nil
			}()
			next := 0
			var bad error
			err := readN(r, &tc.count, deadline, func(h Header, p []byte) {
				if bad != nil {
					return
				}
				if h.Fd != int64(next) || h.Type != TypeData || h.ReactorID != int16(next%3) || h.Flags != FlagChunkMask || int(h.Len) != len(p) {
					bad = fmt.Errorf("message %d: header %+v", next, h)
				} else if err := checkPattern(p, next, size(next)); err != nil {
					bad = fmt.Errorf("message %d: %w", next, err)
				}
				next++
			})
			if e := <-werr; e != nil {
				t.Fatal(e)
			}
			if err != nil {
				t.Fatal(err)
			}
			if bad != nil {
				t.Fatal(bad)
			}
			ws, rs := w.Counters().Load(), r.Counters().Load()
			if ws.MsgsSent != uint64(tc.count) || rs.MsgsRecv != uint64(tc.count) || ws.DgramsSent != rs.DgramsRecv || rs.Dropped != 0 {
				t.Fatalf("writer %+v\nreader %+v", ws, rs)
			}
			t.Logf("writer %+v", ws)
			t.Logf("reader %+v", rs)
		})
	}
}

// TestConcurrentWriters: several goroutines share one Writer; each one's messages arrive in
// its order.
func TestConcurrentWriters(t *testing.T) {
	const goroutines, each = 4, 3000
	a, b := newPair(t)
	w := newWriter(t, a, Config{MaxPayload: 2000})
	r := newReader(t, b, Config{MaxPayload: 2000})
	deadline := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				n := (i * 37) % 5000 // some chunked
				if err := w.WriteBlocking(Header{Type: TypeSend, Fd: int64(g), Aux: uint16(i)}, pattern(g*each+i, n), deadline); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	nextOf := make([]int, goroutines)
	var bad error
	total := goroutines * each
	err := readN(r, &total, deadline, func(h Header, p []byte) {
		g := int(h.Fd)
		i := nextOf[g]
		if bad == nil && int(h.Aux) != i%65536 {
			bad = fmt.Errorf("goroutine %d: message %d arrived as %d", g, h.Aux, i)
		}
		if bad == nil {
			if err := checkPattern(p, g*each+i, (i*37)%5000); err != nil {
				bad = fmt.Errorf("goroutine %d message %d: %w", g, i, err)
			}
		}
		nextOf[g]++
	})
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if err != nil || bad != nil {
		t.Fatal(err, bad)
	}
}

// TestBackpressure: the reader is paused, the writer fills the socket, Write queues, Flush
// reports not done, the queue stays within MaxBuffered; then the reader drains and Flush
// completes.
func TestBackpressure(t *testing.T) {
	a, b := newPair(t)
	queued := 0
	cfg := Config{MaxMessage: 64 << 10, MaxBuffered: 1 << 20}
	cfg.OnQueue = func() { queued++ }
	w := newWriter(t, a, cfg)
	r := newReader(t, b, Config{MaxMessage: 64 << 10})
	const size = 1000
	sent := 0
	for w.Buffered() == 0 {
		if err := w.Write(Header{Type: TypeData, Fd: int64(sent)}, pattern(sent, size)); err != nil {
			t.Fatalf("Write %d: %v", sent, err)
		}
		sent++
		if sent > 1_000_000 {
			t.Fatal("socket never filled")
		}
	}
	t.Logf("socket took %d messages of %d bytes before Write queued", sent-1, size)
	if queued != 1 {
		t.Fatalf("OnQueue called %d times, want 1", queued)
	}
	if done, err := w.Flush(); done || err != nil {
		t.Fatalf("Flush on a full socket = %v, %v", done, err)
	}
	// Fill the queue up to its bound.
	var full error
	for full == nil {
		full = w.Write(Header{Type: TypeData, Fd: int64(sent)}, pattern(sent, size))
		if full == nil {
			sent++
		}
		if w.Buffered() > cfg.MaxBuffered {
			t.Fatalf("Buffered %d above MaxBuffered %d", w.Buffered(), cfg.MaxBuffered)
		}
	}
	if !errors.Is(full, ErrQueueFull) {
		t.Fatalf("Write on a full queue: %v", full)
	}
	if err := w.Enqueue(Header{Type: TypeData}, make([]byte, size)); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Enqueue on a full queue: %v", err)
	}
	if err := w.Write(Header{Type: TypeData}, make([]byte, cfg.MaxMessage+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Write too large: %v", err)
	}
	t.Logf("queue holds %d bytes at ErrQueueFull", w.Buffered())

	deadline := time.Now().Add(20 * time.Second)
	done := make(chan error, 1)
	next := 0
	go func() {
		done <- readN(r, &sent, deadline, func(h Header, p []byte) {
			if h.Fd != int64(next) || checkPattern(p, next, size) != nil {
				t.Errorf("message %d arrived as %d", next, h.Fd)
			}
			next++
		})
	}()
	if err := w.FlushBlocking(deadline); err != nil {
		t.Fatalf("FlushBlocking: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w.Buffered() != 0 || next != sent {
		t.Fatalf("Buffered %d, read %d of %d", w.Buffered(), next, sent)
	}
	// The queue is empty: the next Write goes directly again, and OnQueue fires again on the
	// next queueing.
	before := w.Counters().MsgsQueued.Load()
	if err := w.Write(Header{Type: TypeData}, nil); err != nil || w.Counters().MsgsQueued.Load() != before {
		t.Fatalf("Write after drain queued (%v)", err)
	}
}

func TestFlushBlockingTimeout(t *testing.T) {
	a, _ := newPair(t)
	w := newWriter(t, a, Config{})
	for w.Buffered() == 0 {
		if err := w.Write(Header{Type: TypeData}, make([]byte, 4000)); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	err := w.WriteBlocking(Header{Type: TypeData}, []byte("x"), time.Now().Add(50*time.Millisecond))
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WriteBlocking on a stuck socket: %v", err)
	}
	if el := time.Since(start); el < 40*time.Millisecond || el > 5*time.Second {
		t.Fatalf("timed out after %v", el)
	}
	if n := w.Discard(); n < 1 || w.Buffered() != 0 {
		t.Fatalf("Discard dropped %d, Buffered %d", n, w.Buffered())
	}
	r := newReader(t, a, Config{})
	if err := r.WaitReadable(time.Now().Add(10 * time.Millisecond)); !errors.Is(err, ErrTimeout) {
		t.Fatalf("WaitReadable on an empty socket: %v", err)
	}
	if n, err := r.ReadBatch(func(Header, []byte) { t.Error("called") }); n != 0 || err != nil {
		t.Fatalf("ReadBatch on an empty socket = %d, %v", n, err)
	}
}

// TestReaderDropsGarbage writes raw datagrams that are not valid messages through a real
// socket, then a valid one.
func TestReaderDropsGarbage(t *testing.T) {
	a, b := newPair(t)
	var drops []error
	r := newReader(t, b, Config{MaxPayload: 1000, OnDrop: func(_ Header, err error) { drops = append(drops, err) }})
	raw := func(p []byte) {
		if _, err := unix.Write(int(a.Fd()), p); err != nil {
			t.Fatal(err)
		}
	}
	raw([]byte("short"))
	raw((&Header{Type: TypeData, Flags: FlagChunkMask, Len: 7}).AppendEncode(nil)) // Len mismatch
	raw(append((&Header{Type: TypeData, Flags: FlagChunkMask, Len: 2000}).AppendEncode(nil), make([]byte, 2000)...))
	raw(append((&Header{Type: TypeData, Flags: FlagChunkEnd, Len: 1}).AppendEncode(nil), 'x'))
	raw(append((&Header{Type: TypeData, Flags: FlagChunkMask, Fd: 5, Len: 2}).AppendEncode(nil), 'o', 'k'))
	var got []delivered
	n, err := r.ReadBatch(collector(&got))
	if n != 5 || err != nil {
		t.Fatalf("ReadBatch = %d, %v", n, err)
	}
	if len(got) != 1 || got[0].h.Fd != 5 || string(got[0].payload) != "ok" {
		t.Fatalf("delivered %+v", got)
	}
	want := []error{ErrMalformed, ErrMalformed, ErrTruncated, ErrMalformed}
	if len(drops) != len(want) {
		t.Fatalf("drops %v", drops)
	}
	for i := range want {
		if !errors.Is(drops[i], want[i]) {
			t.Errorf("drop %d: %v, want %v", i, drops[i], want[i])
		}
	}
	if s := r.Counters().Load(); s.Dropped != 4 || s.MsgsRecv != 1 || s.DgramsRecv != 5 || s.RecvSyscalls != 1 {
		t.Fatalf("counters %+v", s)
	}
}

// TestEnqueueFlushBatches checks that a burst of enqueued messages goes out in
// ceil(n/Batch) sendmmsg calls and comes in with ceil(n/Batch) recvmmsg calls without
// packing, and in one datagram with packing.
func TestEnqueueFlushBatches(t *testing.T) {
	const n = 100
	tests := []struct {
		name      string
		cfg       Config
		syscalls  uint64
		datagrams uint64
	}{
		{name: "sendmmsg", cfg: Config{Batch: 16, NoPacking: true}, syscalls: (n + 15) / 16, datagrams: n},
		{name: "packed", cfg: Config{Batch: 16}, syscalls: 1, datagrams: 1},
		{name: "packed, small datagrams", cfg: Config{Batch: 4, MaxPayload: 1000}, syscalls: 3, datagrams: 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newPair(t)
			w := newWriter(t, a, tc.cfg)
			r := newReader(t, b, tc.cfg)
			for i := range n {
				if err := w.Enqueue(Header{Type: TypePipeMessage, Fd: int64(i)}, pattern(i, 64)); err != nil {
					t.Fatal(err)
				}
			}
			if want := n * (HeaderSize + 64); w.Buffered() != want {
				t.Fatalf("Buffered %d, want %d", w.Buffered(), want)
			}
			if done, err := w.Flush(); !done || err != nil {
				t.Fatalf("Flush = %v, %v", done, err)
			}
			next := 0
			for next < n {
				k, err := r.ReadBatch(func(h Header, p []byte) {
					if h.Fd != int64(next) || checkPattern(p, next, 64) != nil {
						t.Fatalf("message %d arrived as %d", next, h.Fd)
					}
					next++
				})
				if err != nil || k == 0 {
					t.Fatalf("ReadBatch = %d, %v after %d", k, err, next)
				}
			}
			ws, rs := w.Counters().Load(), r.Counters().Load()
			if ws.SendSyscalls != tc.syscalls || rs.RecvSyscalls != tc.syscalls || ws.DgramsSent != tc.datagrams ||
				rs.DgramsRecv != tc.datagrams || ws.MsgsSent != n || ws.MsgsQueued != n || rs.MsgsRecv != n {
				t.Fatalf("writer %+v\nreader %+v\nwant %d syscalls and %d datagrams each", ws, rs, tc.syscalls, tc.datagrams)
			}
		})
	}
}

// TestReaderRestart: a worker dies after reading the first chunks of a message; its
// successor, on the same socket, drops the rest of that message and reads the next one whole.
func TestReaderRestart(t *testing.T) {
	a, b := newPair(t)
	w := newWriter(t, a, Config{})
	if err := w.Write(Header{Type: TypeData, Fd: 1}, pattern(1, 200<<10)); err != nil { // 4 datagrams
		t.Fatal(err)
	}
	if err := w.Write(Header{Type: TypeData, Fd: 2}, pattern(2, 100)); err != nil {
		t.Fatal(err)
	}
	first, err := NewReader(b, Config{Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := first.ReadBatch(func(h Header, _ []byte) { t.Errorf("first reader got %d", h.Fd) }); n != 2 || err != nil {
		t.Fatalf("first ReadBatch = %d, %v", n, err)
	}
	first.Release() // the worker is gone

	var drops []error
	second := newReader(t, b, Config{OnDrop: func(_ Header, err error) { drops = append(drops, err) }})
	var got []delivered
	if n, err := second.ReadBatch(collector(&got)); n != 3 || err != nil {
		t.Fatalf("second ReadBatch = %d, %v", n, err)
	}
	if len(got) != 1 || got[0].h.Fd != 2 || checkPattern(got[0].payload, 2, 100) != nil {
		t.Fatalf("second reader got %+v", got)
	}
	if len(drops) != 2 || !errors.Is(drops[0], ErrMalformed) || !errors.Is(drops[1], ErrMalformed) {
		t.Fatalf("drops %v", drops)
	}
}

// TestHoldRelease: while held, small messages queue (packed) and OnQueue stays quiet; the
// last Release sends them in one syscall; a large message still goes at once when nothing
// is queued, and after something is queued it waits its turn (order is kept).
func TestHoldRelease(t *testing.T) {
	a, b := newPair(t)
	queued := 0
	w := newWriter(t, a, Config{OnQueue: func() { queued++ }})
	r := newReader(t, b, Config{})
	w.Hold()
	w.Hold() // nested
	for i := range 10 {
		if err := w.Write(Header{Type: TypePipeMessage, Fd: int64(i)}, pattern(i, 64)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Write(Header{Type: TypePipeMessage, Fd: 10}, pattern(10, HoldMax+1)); err != nil {
		t.Fatal(err) // large, but behind queued messages: queued too
	}
	if w.Counters().Load().SendSyscalls != 0 || queued != 0 {
		t.Fatalf("held Writer sent %d syscalls, OnQueue %d times", w.Counters().Load().SendSyscalls, queued)
	}
	if err := w.Release(); err != nil || w.Buffered() == 0 {
		t.Fatalf("inner Release: %v, buffered %d (must still hold)", err, w.Buffered())
	}
	if err := w.Release(); err != nil || w.Buffered() != 0 {
		t.Fatalf("last Release: %v, buffered %d", err, w.Buffered())
	}
	if n := w.Counters().Load().SendSyscalls; n != 1 {
		t.Fatalf("Release sent in %d syscalls, want 1", n)
	}
	// Held with nothing queued, a large message goes at once.
	w.Hold()
	if err := w.Write(Header{Type: TypePipeMessage, Fd: 11}, pattern(11, HoldMax+1)); err != nil || w.Buffered() != 0 {
		t.Fatalf("large message while held and empty: %v, buffered %d", err, w.Buffered())
	}
	_ = w.Release()
	next, want := 0, 12
	if err := readN(r, &want, time.Now().Add(5*time.Second), func(h Header, p []byte) {
		size := 64
		if h.Fd >= 10 {
			size = HoldMax + 1
		}
		if h.Fd != int64(next) || checkPattern(p, next, size) != nil {
			t.Fatalf("message %d arrived as %d (%d bytes)", next, h.Fd, len(p))
		}
		next++
	}); err != nil || next != 12 {
		t.Fatalf("read %d of 12: %v", next, err)
	}
}
