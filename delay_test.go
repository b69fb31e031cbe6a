package swoole_test

// enable_delay_receive and Confirm: a new connection is not read until Confirm;
// data sent before arrives after it.

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole"
)

// ftUnread returns how many bytes wait unread in the server-side socket of session fd (the
// server runs in this process, so its descriptor is ours to ask).
func ftUnread(t testing.TB, s *swoole.Server, fd int64) int {
	t.Helper()
	info, err := s.GetClientInfo(fd, -1, false)
	if err != nil {
		t.Fatalf("GetClientInfo(%d): %v", fd, err)
	}
	n, err := unix.IoctlGetInt(info.SocketFD, unix.SIOCINQ)
	if err != nil {
		t.Fatalf("SIOCINQ on descriptor %d: %v", info.SocketFD, err)
	}
	return n
}

// TestDelayReceive: with enable_delay_receive, OnConnect runs but the data the client
// sends at once stays unread in the kernel (no OnReceive) until Confirm; then it arrives,
// whole. A second Confirm is fine; Confirm of an unknown session is 1005. A held connection
// can be closed without ever being confirmed, and other connections are served meanwhile.
func TestDelayReceive(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{EnableDelayReceive: true})
	rec := ftEchoServer(s)
	ftStart(t, s)
	if !s.Setting().EnableDelayReceive {
		t.Fatal("Setting() does not show enable_delay_receive")
	}
	p := s.Ports()[0]

	c := ftDial(t, p)
	fd := ftFDOf(t, s, c)
	ftWrite(t, c, []byte("sent before confirm"))
	ftEventually(t, "the data to wait in the server's socket", func() bool { return ftUnread(t, s, fd) == 19 })
	// A second client is confirmed and served while the first one waits.
	other := ftDial(t, p)
	otherFD := ftFDOf(t, s, other)
	if err := s.Confirm(otherFD); err != nil {
		t.Fatal(err)
	}
	ftWrite(t, other, []byte("hi"))
	if got := ftReadFull(t, other, 2); string(got) != "hi" {
		t.Fatalf("the confirmed connection got %q", got)
	}
	if n := rec.count(fd); n != 0 || ftUnread(t, s, fd) != 19 {
		t.Fatalf("the held connection was read before Confirm: %d deliveries", n)
	}
	if !s.Exist(fd) {
		t.Fatal("the held connection does not exist")
	}

	if err := s.Confirm(fd); err != nil {
		t.Fatalf("Confirm: %v", err)
	}
	if got := ftReadFull(t, c, 19); string(got) != "sent before confirm" {
		t.Fatalf("echo after Confirm: %q", got)
	}
	if got := rec.got(fd); len(got) != 1 || string(got[0]) != "sent before confirm" {
		t.Errorf("deliveries after Confirm: %q", got)
	}
	if err := s.Confirm(fd); err != nil {
		t.Errorf("a second Confirm: %v", err)
	}
	ftWrite(t, c, []byte("more"))
	ftReadFull(t, c, 4)
	ftWantCode(t, s, "Confirm(unknown)", s.Confirm(fd+100), swoole.ErrSessionNotExist)
	ftWantCode(t, s, "Confirm(0)", s.Confirm(0), swoole.ErrRefused)

	// Closed while held: OnClose once, the client sees the close, nothing was read.
	held := ftDial(t, p)
	heldFD := ftFDOf(t, s, held)
	ftWrite(t, held, []byte("never read"))
	ftEventually(t, "the data to wait", func() bool { return ftUnread(t, s, heldFD) == 10 })
	if err := s.Close(heldFD, false); err != nil {
		t.Fatal(err)
	}
	if id := rec.waitClosed(t, heldFD); id != -1 {
		t.Errorf("OnClose reactorID %d after Close, want -1", id)
	}
	_ = held.SetReadDeadline(time.Now().Add(ftTimeout))
	if n, err := held.Read(make([]byte, 16)); err == nil {
		t.Errorf("the closed client read %d bytes", n)
	}
	if n := rec.count(heldFD); n != 0 {
		t.Errorf("the connection closed while held delivered %d frames", n)
	}
	ftWantCode(t, s, "Confirm(closed)", s.Confirm(heldFD), swoole.ErrSessionNotExist)
}

// TestConfirmWithoutDelay: on a server without enable_delay_receive, Confirm of a live
// connection changes nothing and is not an error; before Start it is refused.
func TestConfirmWithoutDelay(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{})
	ftEchoServer(s)
	ftWantCode(t, s, "Confirm before Start", s.Confirm(1), swoole.ErrRefused)
	ftStart(t, s)
	c := ftDial(t, s.Ports()[0])
	fd := ftFDOf(t, s, c)
	if err := s.Confirm(fd); err != nil {
		t.Fatal(err)
	}
	ftWrite(t, c, []byte("x"))
	ftReadFull(t, c, 1)
}
