package swoole_test

import (
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	swoole "github.com/goswoole/swoole"
)

// TestEchoPathAllocs locks in an allocation-free hot path: a full echo round trip (client
// write, epoll wake-up, read into the loop buffer, OnReceive, Send, client read) allocates
// nothing in the server. AllocsPerRun counts every goroutine's mallocs, so the client's
// net.Conn calls are included: they do not allocate either.
func TestEchoPathAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeBase, swoole.SockTCP)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(swoole.Settings{LogLevel: swoole.LogLevelNone, OpenTCPNoDelay: true}); err != nil {
		t.Fatal(err)
	}
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) { _ = s.Send(fd, data) })
	done := make(chan error, 1)
	go func() { done <- s.Start() }()
	defer func() {
		s.Shutdown()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Start did not return after Shutdown")
		}
	}()
	var c net.Conn
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.Ports()[0].Port()))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	roundTrip := func() {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		roundTrip() // warm up pools and the connection
	}
	if a := testing.AllocsPerRun(500, roundTrip); a > 0.05 {
		t.Fatalf("an echo round trip allocates %.2f times", a)
	}
}
