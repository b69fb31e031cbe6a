//go:build linux

package reactor

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// nopHandler is a Handler with no connections.
type nopHandler struct{}

func (nopHandler) Accept(*Listener, int, unix.Sockaddr) *Conn { return nil }
func (nopHandler) Opened(*Conn)                               {}
func (nopHandler) Data(*Conn, []byte)                         {}
func (nopHandler) Closed(*Conn, CloseReason, unix.Errno)      {}
func (nopHandler) BufferFull(*Conn)                           {}
func (nopHandler) BufferEmpty(*Conn)                          {}
func (nopHandler) Packet(*Listener, []byte, unix.Sockaddr)    {}
func (nopHandler) PacketTooLarge(*Listener, int, int)         {}

// readFD reads a pipe when it is readable and counts what it read.
type readFD struct {
	fd int
	n  int
}

func (r *readFD) Readable() {
	var b [64]byte
	if n, err := unix.Read(r.fd, b[:]); err == nil {
		r.n += n
	}
}
func (r *readFD) Writable() {}

// TestRunUntil: a task running on the loop waits, nested, for a descriptor to be read; the
// loop keeps running posted tasks meanwhile; the deadline ends a wait that never completes;
// RunFDsUntil serves only the descriptors given.
func TestRunUntil(t *testing.T) {
	l, err := New(nopHandler{}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	r := &readFD{fd: p[0]}
	if err := l.AddFD(p[0], r, Readable); err != nil {
		t.Fatal(err)
	}
	results := make(chan string, 8)
	l.Post(Task{Fn: func() {
		other := false
		go func() {
			l.Post(Task{Fn: func() { other = true }})
			time.Sleep(20 * time.Millisecond)
			_, _ = unix.Write(p[1], []byte("x"))
		}()
		ok := l.RunUntil(func() bool { return r.n > 0 }, l.Now()+int64(10*time.Second))
		if !ok || !other || l.Depth() != 0 {
			results <- "RunUntil: done false, or a posted task did not run meanwhile"
		}
		// Nothing comes: the deadline ends the wait.
		start := time.Now()
		if l.RunUntil(func() bool { return r.n > 1 }, l.Now()+int64(30*time.Millisecond)) {
			results <- "RunUntil: done without data"
		}
		if d := time.Since(start); d < 25*time.Millisecond || d > 5*time.Second {
			results <- "RunUntil: deadline not kept"
		}
		// Only the descriptor: a posted task waits until the loop is back.
		posted := false
		l.Post(Task{Fn: func() { posted = true }})
		go func() {
			time.Sleep(20 * time.Millisecond)
			_, _ = unix.Write(p[1], []byte("y"))
		}()
		if !l.RunFDsUntil([]int{p[0]}, func() bool { return r.n > 1 }, l.Now()+int64(10*time.Second)) || posted {
			results <- "RunFDsUntil: not done, or ran a posted task"
		}
		results <- "ok"
		l.Stop()
	}})
	if err := l.Run(); err != nil {
		t.Fatal(err)
	}
	for msg := range len(results) {
		_ = msg
		if m := <-results; m != "ok" {
			t.Error(m)
		}
	}
}
