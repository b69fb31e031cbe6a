//go:build linux

package ipc

import (
	"testing"
	"time"
)

// benchPair sends b.N messages of size bytes from the benchmark goroutine to a reader
// goroutine, both ends configured by cfg. burst 0 means one Write per message (sent at
// once); otherwise burst messages are Enqueued and sent by one Flush. With
// cfg.NoPacking, Flush sends one datagram per message, cfg.Batch per sendmmsg; without it
// the burst shares datagrams. The Reader takes up to cfg.Batch datagrams per recvmmsg and
// sleeps in poll when the socket is empty. It reports syscalls per message at each end and
// messages per second.
func benchPair(b *testing.B, size, burst int, cfg Config) {
	a, c := newPair(b)
	w := newWriter(b, a, cfg)
	r := newReader(b, c, cfg)
	payload := make([]byte, size)
	h := Header{Type: TypeData, Fd: 1}
	deadline := time.Now().Add(5 * time.Minute)
	want := b.N
	done := make(chan error, 1)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() {
		done <- readN(r, &want, deadline, func(Header, []byte) {})
	}()
	for i := 0; i < b.N; {
		if burst == 0 {
			if err := w.Write(h, payload); err != nil {
				b.Fatal(err)
			}
			i++
		} else {
			for j := 0; j < burst && i < b.N; j++ {
				if err := w.Enqueue(h, payload); err != nil {
					b.Fatal(err)
				}
				i++
			}
		}
		if burst > 0 || w.Buffered() > 0 {
			if err := w.FlushBlocking(deadline); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	b.StopTimer()
	ws, rs := w.Counters().Load(), r.Counters().Load()
	b.ReportMetric(float64(ws.SendSyscalls)/float64(b.N), "send-syscalls/msg")
	b.ReportMetric(float64(rs.RecvSyscalls)/float64(b.N), "recv-syscalls/msg")
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
}

// BenchmarkPair64 compares 64-byte messages sent one at a time (Batch 1 at both ends, as a
// plain sendmsg/recvmsg pipe would) with bursts flushed by sendmmsg and read by recvmmsg,
// and with bursts packed into shared datagrams.
func BenchmarkPair64(b *testing.B) {
	b.Run("single", func(b *testing.B) { benchPair(b, 64, 0, Config{Batch: 1}) })
	b.Run("sendmmsg-8", func(b *testing.B) { benchPair(b, 64, 8, Config{Batch: 8, NoPacking: true}) })
	b.Run("sendmmsg-32", func(b *testing.B) { benchPair(b, 64, 32, Config{Batch: 32, NoPacking: true}) })
	b.Run("sendmmsg-64", func(b *testing.B) { benchPair(b, 64, 64, Config{Batch: 64, NoPacking: true}) })
	b.Run("packed-8", func(b *testing.B) { benchPair(b, 64, 8, Config{Batch: 8}) })
	b.Run("packed-64", func(b *testing.B) { benchPair(b, 64, 64, Config{Batch: 64}) })
}

// BenchmarkPair1MiB sends 1 MiB messages (17 datagrams each) with Write.
func BenchmarkPair1MiB(b *testing.B) {
	b.Run("batch-1", func(b *testing.B) { benchPair(b, 1<<20, 0, Config{Batch: 1}) })
	b.Run("batch-32", func(b *testing.B) { benchPair(b, 1<<20, 0, Config{Batch: 32}) })
}

// BenchmarkWrite64 measures Write's direct path alone, the reader draining in between
// outside the timer.
func BenchmarkWrite64(b *testing.B) {
	a, c := newPair(b)
	w := newWriter(b, a, Config{})
	r := newReader(b, c, Config{})
	payload := make([]byte, 64)
	h := Header{Type: TypeData}
	fn := func(Header, []byte) {}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := w.Write(h, payload); err != nil {
			b.Fatal(err)
		}
		if i%256 == 255 {
			b.StopTimer()
			for n, _ := r.ReadBatch(fn); n > 0; n, _ = r.ReadBatch(fn) {
			}
			b.StartTimer()
		}
	}
}

func BenchmarkHeaderEncodeDecode(b *testing.B) {
	h := Header{Type: TypeSend, SrcWorker: 3, Fd: 99, Len: 0}
	var buf [HeaderSize]byte
	b.ReportAllocs()
	for b.Loop() {
		h.Encode(buf[:])
		if _, err := DecodeHeader(buf[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHeld4KiB writes the 4 KiB replies of a batch held (a ModeProcess worker's replies
// to one read of its pipe: 16 of them, packed into datagrams) and releases them, the reader
// draining outside the timer; "journal" mirrors the queue in a journal as such a worker
// does (it queues in the journal itself), "slabs" has none.
func BenchmarkHeld4KiB(b *testing.B) {
	for _, journal := range []bool{false, true} {
		name := "slabs"
		if journal {
			name = "journal"
		}
		b.Run(name, func(b *testing.B) {
			mem := newSharedArea(b, Config{Batch: 16}) // unmapped after the Writer's cleanup
			a, c := newPair(b)
			w := newWriter(b, a, Config{})
			if journal {
				if _, err := w.AttachJournal(mem); err != nil {
					b.Fatal(err)
				}
			}
			r := newReader(b, c, Config{})
			payload := pattern(1, 4<<10)
			h := Header{Type: TypeSend}
			fn := func(Header, []byte) {}
			const burst = 16
			b.SetBytes(burst * int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				w.Hold()
				for range burst {
					if err := w.Write(h, payload); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Release(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				for n, _ := r.ReadBatch(fn); n > 0; n, _ = r.ReadBatch(fn) {
				}
				b.StartTimer()
			}
		})
	}
}
