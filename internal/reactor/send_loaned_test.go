//go:build linux

package reactor

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// accepter hands each accepted connection to the test.
type accepter struct {
	nopHandler
	conns chan *Conn
}

func (h *accepter) Accept(_ *Listener, fd int, _ unix.Sockaddr) *Conn {
	// A small send buffer, so that a loaned message does not fit in the socket at once.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	c := NewConn(fd, nil, ConnOptions{})
	h.conns <- c
	return c
}

// onLoop runs fn on l's goroutine and waits for it.
func onLoop(t *testing.T, l *Loop, fn func()) {
	t.Helper()
	done := make(chan struct{})
	l.Post(Task{Fn: func() { fn(); close(done) }})
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the loop did not run the task")
	}
}

// TestSendLoaned: bytes sent with SendLoaned on a corked connection reach the peer intact
// although the lender overwrites them right after Uncork (or Unloan) while some of them still
// wait in the queue: the flush takes a copy of what the socket did not take. Bytes queued
// before and after the loan keep their order.
func TestSendLoaned(t *testing.T) {
	for _, unloan := range []bool{false, true} {
		h := &accepter{conns: make(chan *Conn, 1)}
		sl := serveLoop(t, h)
		l := sl.l
		peer, err := net.DialTimeout("tcp4", sl.ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c := <-h.conns

		head := bytes.Repeat([]byte("h"), 100)
		loan := make([]byte, 1<<20)
		for i := range loan {
			loan[i] = byte(i * 7)
		}
		want := append(append(append([]byte{}, head...), loan...), "tail"...)
		onLoop(t, l, func() {
			c.Cork()
			if err := c.SendOver(head); err != nil {
				t.Error(err)
			}
			if err := c.SendLoaned(loan); err != nil {
				t.Error(err)
			}
			if unloan {
				c.Unloan()
				c.Uncork()
			} else {
				c.Uncork()
			}
			if c.Queued() == 0 {
				t.Error("the socket took the whole loan at once: the test proves nothing")
			}
			clear(loan) // the lender reuses its memory
			if err := c.SendOver([]byte("tail")); err != nil {
				t.Error(err)
			}
		})
		_ = peer.SetReadDeadline(time.Now().Add(30 * time.Second))
		got := make([]byte, len(want))
		if _, err := io.ReadFull(peer, got); err != nil {
			t.Fatalf("unloan=%v: reading: %v", unloan, err)
		}
		if !bytes.Equal(got, want) {
			i := 0
			for i < len(got) && got[i] == want[i] {
				i++
			}
			t.Fatalf("unloan=%v: the bytes differ from offset %d", unloan, i)
		}
		peer.Close()
		sl.stop(t)
	}
}
