package swoole_test

// enable_delay_receive and Confirm (issue 3): a new connection is not read until Confirm;
// data sent before arrives after it.

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole"
)

// i3Unread returns how many bytes wait unread in the server-side socket of session fd (the
// server runs in this process, so its descriptor is ours to ask).
func i3Unread(t testing.TB, s *swoole.Server, fd int64) int {
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

// TestIssue3DelayReceive: with enable_delay_receive, OnConnect runs but the data the client
// sends at once stays unread in the kernel (no OnReceive) until Confirm; then it arrives,
// whole. A second Confirm is fine; Confirm of an unknown session is 1005. A held connection
// can be closed without ever being confirmed, and other connections are served meanwhile.
func TestIssue3DelayReceive(t *testing.T) {
	s := i3New(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{EnableDelayReceive: true})
	rec := i3EchoServer(s)
	i3Start(t, s)
	if !s.Setting().EnableDelayReceive {
		t.Fatal("Setting() does not show enable_delay_receive")
	}
	p := s.Ports()[0]

	c := i3Dial(t, p)
	fd := i3FDOf(t, s, c)
	i3Write(t, c, []byte("sent before confirm"))
	i3Eventually(t, "the data to wait in the server's socket", func() bool { return i3Unread(t, s, fd) == 19 })
	// A second client is confirmed and served while the first one waits.
	other := i3Dial(t, p)
	otherFD := i3FDOf(t, s, other)
	if err := s.Confirm(otherFD); err != nil {
		t.Fatal(err)
	}
	i3Write(t, other, []byte("hi"))
	if got := i3ReadFull(t, other, 2); string(got) != "hi" {
		t.Fatalf("the confirmed connection got %q", got)
	}
	if n := rec.count(fd); n != 0 || i3Unread(t, s, fd) != 19 {
		t.Fatalf("the held connection was read before Confirm: %d deliveries", n)
	}
	if !s.Exist(fd) {
		t.Fatal("the held connection does not exist")
	}

	if err := s.Confirm(fd); err != nil {
		t.Fatalf("Confirm: %v", err)
	}
	if got := i3ReadFull(t, c, 19); string(got) != "sent before confirm" {
		t.Fatalf("echo after Confirm: %q", got)
	}
	if got := rec.got(fd); len(got) != 1 || string(got[0]) != "sent before confirm" {
		t.Errorf("deliveries after Confirm: %q", got)
	}
	if err := s.Confirm(fd); err != nil {
		t.Errorf("a second Confirm: %v", err)
	}
	i3Write(t, c, []byte("more"))
	i3ReadFull(t, c, 4)
	i3WantCode(t, s, "Confirm(unknown)", s.Confirm(fd+100), swoole.ErrSessionNotExist)
	i3WantCode(t, s, "Confirm(0)", s.Confirm(0), swoole.ErrRefused)

	// Closed while held: OnClose once, the client sees the close, nothing was read.
	held := i3Dial(t, p)
	heldFD := i3FDOf(t, s, held)
	i3Write(t, held, []byte("never read"))
	i3Eventually(t, "the data to wait", func() bool { return i3Unread(t, s, heldFD) == 10 })
	if err := s.Close(heldFD, false); err != nil {
		t.Fatal(err)
	}
	if id := rec.waitClosed(t, heldFD); id != -1 {
		t.Errorf("OnClose reactorID %d after Close, want -1", id)
	}
	_ = held.SetReadDeadline(time.Now().Add(i3Timeout))
	if n, err := held.Read(make([]byte, 16)); err == nil {
		t.Errorf("the closed client read %d bytes", n)
	}
	if n := rec.count(heldFD); n != 0 {
		t.Errorf("the connection closed while held delivered %d frames", n)
	}
	i3WantCode(t, s, "Confirm(closed)", s.Confirm(heldFD), swoole.ErrSessionNotExist)
}

// TestIssue3ConfirmWithoutDelay: on a server without enable_delay_receive, Confirm of a live
// connection changes nothing and is not an error; before Start it is refused.
func TestIssue3ConfirmWithoutDelay(t *testing.T) {
	s := i3New(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{})
	i3EchoServer(s)
	i3WantCode(t, s, "Confirm before Start", s.Confirm(1), swoole.ErrRefused)
	i3Start(t, s)
	c := i3Dial(t, s.Ports()[0])
	fd := i3FDOf(t, s, c)
	if err := s.Confirm(fd); err != nil {
		t.Fatal(err)
	}
	i3Write(t, c, []byte("x"))
	i3ReadFull(t, c, 1)
}
