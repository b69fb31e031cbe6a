//go:build linux

package ipc

import (
	"testing"

	"golang.org/x/sys/unix"
)

// newSharedArea maps an Area for cfg as a server does (MAP_SHARED), unmapped at the end.
func newSharedArea(t testing.TB, cfg Config) []byte {
	t.Helper()
	size, err := AreaSize(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Munmap(mem) })
	return mem
}

// dies is what a reader's callback panics with to stand for its process being killed.
type dies struct{}

// readUntilDeath has a Reader on area take one batch and "die" (panic out of ReadBatch) in
// the callback of message dieAt, as a worker killed in that callback would.
func readUntilDeath(t *testing.T, f Config, r *Reader, dieAt int64) (seen []int64) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(dies); !ok {
				panic(p)
			}
		}
	}()
	_, err := r.ReadBatch(func(h Header, p []byte) {
		seen = append(seen, h.Fd)
		if h.Fd == dieAt {
			panic(dies{})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Fatalf("the batch was delivered whole (%v); message %d never came", seen, dieAt)
	return nil
}

// TestAreaResume: a reader killed in the callback of one message of a batch loses that
// message only; the next Reader on the same Area delivers the rest of the batch first,
// in order (packed records, a datagram of their own, a chunked message), then what is
// still in the socket. With redeliver, the message in hand is delivered again too.
func TestAreaResume(t *testing.T) {
	for _, redeliver := range []bool{false, true} {
		name := "at most once"
		if redeliver {
			name = "at least once"
		}
		t.Run(name, func(t *testing.T) {
			cfg := Config{Batch: 8}
			area := newSharedArea(t, cfg)
			a, b := newPair(t)
			w := newWriter(t, a, Config{})
			sizes := map[int64]int{}
			send := func(fd int64, n int) {
				sizes[fd] = n
				if err := w.Enqueue(Header{Type: TypeData, Fd: fd}, pattern(int(fd), n)); err != nil {
					t.Fatal(err)
				}
			}
			// Packed: 1..6 in one datagram; 7 large (3 datagrams); 8, 9 packed again.
			for fd := int64(1); fd <= 6; fd++ {
				send(fd, 100)
			}
			send(7, 150<<10)
			send(8, 10)
			send(9, 10)
			if done, err := w.Flush(); !done || err != nil {
				t.Fatal(done, err)
			}
			cfg.Area = area
			first := newReader(t, b, cfg)
			seen := readUntilDeath(t, cfg, first, 3)
			if len(seen) != 3 {
				t.Fatalf("first reader saw %v", seen)
			}
			// Sent after the death: must come after what the dead reader left.
			send(10, 20)
			if done, err := w.Flush(); !done || err != nil {
				t.Fatal(done, err)
			}

			second := newReader(t, b, cfg)
			var got []delivered
			h, lost := second.Resume(collector(&got), func(Header) bool { return redeliver })
			want := []int64{4, 5, 6, 7, 8, 9}
			if redeliver {
				want = append([]int64{3}, want...)
				if lost {
					t.Fatalf("Resume with redeliver reports message %d lost", h.Fd)
				}
			} else if !lost || h.Fd != 3 || h.Type != TypeData {
				t.Fatalf("Resume lost %v %+v; want message 3", lost, h)
			}
			if len(got) != len(want) {
				t.Fatalf("Resume delivered %d messages; want %v", len(got), want)
			}
			for i, d := range got {
				if d.h.Fd != want[i] {
					t.Fatalf("Resume message %d is %d; want %d", i, d.h.Fd, want[i])
				}
				if err := checkPattern(d.payload, int(d.h.Fd), sizes[d.h.Fd]); err != nil {
					t.Fatalf("message %d: %v", d.h.Fd, err)
				}
			}
			// Nothing left to resume: a second Resume does nothing, and the socket goes on.
			if _, lost := second.Resume(func(h Header, _ []byte) { t.Fatalf("resumed again: %d", h.Fd) }, nil); lost {
				t.Fatal("second Resume lost a message")
			}
			got = got[:0]
			if n, err := second.ReadBatch(collector(&got)); n != 1 || err != nil || len(got) != 1 || got[0].h.Fd != 10 {
				t.Fatalf("ReadBatch after Resume = %d, %v, %+v", n, err, got)
			}
			// A batch delivered whole leaves nothing behind.
			send(11, 5)
			if done, err := w.Flush(); !done || err != nil {
				t.Fatal(done, err)
			}
			if n, err := second.ReadBatch(func(Header, []byte) {}); n != 1 || err != nil {
				t.Fatal(n, err)
			}
			third := newReader(t, b, cfg)
			if _, lost := third.Resume(func(h Header, _ []byte) { t.Fatalf("resumed a delivered message %d", h.Fd) }, nil); lost {
				t.Fatal("Resume after a whole batch lost a message")
			}
		})
	}
}

// TestAreaRefused: an Area too small, or laid out for another configuration, is refused.
func TestAreaRefused(t *testing.T) {
	a, b := newPair(t)
	_ = a
	area := newSharedArea(t, Config{Batch: 4})
	if _, err := NewReader(b, Config{Batch: 8, Area: area}); err == nil {
		t.Fatal("an Area too small was accepted")
	}
	r := newReader(t, b, Config{Batch: 4, Area: area})
	_ = r
	if _, err := NewReader(b, Config{Batch: 2, Area: area}); err == nil {
		t.Fatal("an Area laid out for Batch 4 was accepted for Batch 2")
	}
}

// TestAreaResumeKilledInRecv: a reader killed while in recvmmsg (a fatal signal takes effect
// when the call returns, after the datagrams left the socket) loses nothing: the kernel
// recorded them in the Area, and the next Reader delivers them all, in order.
func TestAreaResumeKilledInRecv(t *testing.T) {
	cfg := Config{Batch: 8}
	area := newSharedArea(t, cfg)
	a, b := newPair(t)
	w := newWriter(t, a, Config{NoPacking: true})
	for fd := int64(1); fd <= 5; fd++ {
		if err := w.Write(Header{Type: TypeData, Fd: fd}, pattern(int(fd), 100*int(fd))); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Area = area
	dead := newReader(t, b, cfg)
	// What ReadBatch does up to the system call, and the call; then the process is gone.
	rs := dead.sets[0]
	for i := range rs.msgs {
		rs.msgs[i].Hdr.SetControllen(ctlSize)
	}
	rs.area.receiving(len(rs.msgs))
	if n, errno := recvmmsg(dead.fd, rs.msgs); n != 5 || errno != 0 {
		t.Fatalf("recvmmsg = %d, %v", n, errno)
	}
	heir := newReader(t, b, cfg)
	var got []delivered
	if _, lost := heir.Resume(collector(&got), nil); lost {
		t.Fatal("Resume lost a message: none was in hand")
	}
	if len(got) != 5 {
		t.Fatalf("Resume delivered %d messages; want 5", len(got))
	}
	for i, d := range got {
		if d.h.Fd != int64(i+1) || checkPattern(d.payload, i+1, 100*(i+1)) != nil {
			t.Fatalf("message %d: fd %d, %d bytes", i, d.h.Fd, len(d.payload))
		}
	}
	if n, err := heir.ReadBatch(func(Header, []byte) { t.Fatal("a message was delivered twice") }); n != 0 || err != nil {
		t.Fatalf("ReadBatch after Resume = %d, %v", n, err)
	}
}
