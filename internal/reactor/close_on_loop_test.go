//go:build linux

package reactor

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// closer accepts every connection and closes it at its first bytes, from Data, with
// CloseOnLoop (or Close when wake is set), counting the Closed calls.
type closer struct {
	nopHandler
	wake   bool
	closed atomic.Int32
	all    chan struct{} // closed at the want-th Closed call
	want   int32
}

func (h *closer) Accept(_ *Listener, fd int, _ unix.Sockaddr) *Conn {
	return NewConn(fd, nil, ConnOptions{})
}

func (h *closer) Data(c *Conn, _ []byte) {
	if h.wake {
		c.Close(true)
	} else {
		c.CloseOnLoop(true)
	}
}

func (h *closer) Closed(*Conn, CloseReason, unix.Errno) {
	if h.closed.Add(1) == h.want {
		close(h.all)
	}
}

// TestCloseOnLoop: a connection closed from its own Data handler with CloseOnLoop closes
// within the same pass of the loop, and the loop does not wake itself to do it (Close from
// the handler writes the wake-up eventfd, which the next epoll_wait then reports).
func TestCloseOnLoop(t *testing.T) {
	for _, wake := range []bool{false, true} {
		const conns = 20
		h := &closer{wake: wake, all: make(chan struct{}), want: conns}
		sl := serveLoop(t, h)
		l, ln := sl.l, sl.ln
		for i := range conns {
			c, err := net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte("bad frame")); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if n, err := c.Read(make([]byte, 16)); err == nil || (err != io.EOF && !isReset(err)) {
				t.Fatalf("wake=%v, connection %d: read %d bytes, %v; want the server's close", wake, i, n, err)
			}
			c.Close()
		}
		// Every close ran on the loop; with CloseOnLoop none needed a wake-up.
		select {
		case <-h.all:
		case <-time.After(10 * time.Second):
			t.Errorf("wake=%v: %d Closed calls after 10s, want %d", wake, h.closed.Load(), conns)
		}
		l.mu.Lock()
		woke := l.wakeWrites
		l.mu.Unlock()
		sl.stop(t)
		if got := h.closed.Load(); got != conns {
			t.Errorf("wake=%v: %d Closed calls, want %d", wake, got, conns)
		}
		if !wake && woke != 0 {
			t.Errorf("CloseOnLoop woke the loop %d times", woke)
		}
		if wake && woke == 0 {
			t.Errorf("Close from the handler never woke the loop: the check cannot tell CloseOnLoop from it")
		}
	}
}

// servingLoop is a loop with handler h running on its own goroutine, accepting on a TCP
// listener of 127.0.0.1; stop ends it and closes both.
type servingLoop struct {
	l    *Loop
	ln   net.Listener
	done chan error
}

func serveLoop(t *testing.T, h Handler) *servingLoop {
	t.Helper()
	l, err := New(h, Config{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lfd := listenerFD(t, ln)
	if err := unix.SetNonblock(lfd, true); err != nil {
		t.Fatal(err)
	}
	if err := l.AddListener(&Listener{FD: lfd}); err != nil {
		t.Fatal(err)
	}
	sl := &servingLoop{l: l, ln: ln, done: make(chan error, 1)}
	go func() { sl.done <- l.Run() }()
	return sl
}

func (sl *servingLoop) stop(t *testing.T) {
	t.Helper()
	sl.l.Post(Task{Op: opFn, Fn: sl.l.Stop})
	if err := <-sl.done; err != nil {
		t.Fatal(err)
	}
	sl.l.Close()
	sl.ln.Close()
}

func isReset(err error) bool { return errors.Is(err, unix.ECONNRESET) }
