package swoole_test

// Datagram limits: the largest UDP datagram both ways, SendToSocket's server socket check,
// and SendToSocket to a peer that does not read (Swoole's big_udp_packet.phpt,
// sendto_invalid_server_socket.phpt, sendto_timeout.phpt).

import (
	"bytes"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// TestUDPLargestDatagram: a UDP datagram of 65507 bytes (the IPv4 maximum) reaches OnPacket
// whole, and a reply of the same size sent with SendTo reaches the client whole.
func TestUDPLargestDatagram(t *testing.T) {
	const n = 65507
	s := ftNew(t, "127.0.0.1", swoole.SockUDP, swoole.Settings{})
	got := make(chan int, 1)
	s.OnPacket(func(s *swoole.Server, data []byte, client swoole.ClientAddr) {
		got <- len(data)
		if err := s.SendTo(client.Address, client.Port, bytes.Repeat([]byte{'B'}, len(data)), client.ServerSocket); err != nil {
			t.Errorf("SendTo of %d bytes: %v", len(data), err)
		}
	})
	ftStart(t, s)
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.Ports()[0].Port()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(bytes.Repeat([]byte{'A'}, n)); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != n {
			t.Fatalf("OnPacket got %d bytes, want %d", m, n)
		}
	case <-time.After(ftTimeout):
		t.Fatal("no OnPacket for the largest datagram")
	}
	reply, _ := ftReadDgram(t, c)
	if len(reply) != n || reply != string(bytes.Repeat([]byte{'B'}, n)) {
		t.Fatalf("reply of %d bytes, want %d of 'B'", len(reply), n)
	}
}

// TestSendToSocketChecks: on a unix datagram server, SendToSocket with a server socket that
// is not one of the server's is 505 and sends nothing; with the one OnPacket reported it
// reaches the peer.
func TestSendToSocketChecks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "server.sock")
	s := ftNew(t, path, swoole.SockUnixDgram, swoole.Settings{})
	codes := make(chan int, 1)
	s.OnPacket(func(s *swoole.Server, data []byte, client swoole.ClientAddr) {
		codes <- ftCode(s.SendToSocket(client.Address, []byte("bad"), 1<<30))
		if err := s.SendToSocket(client.Address, []byte("unix-ok"), client.ServerSocket); err != nil {
			t.Errorf("SendToSocket with the port's socket: %v", err)
		}
	})
	ftStart(t, s)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "client.sock"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteTo([]byte("ping"), &net.UnixAddr{Name: path, Net: "unixgram"}); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-codes:
		if code != swoole.ErrInvalidParams {
			t.Errorf("SendToSocket with an unknown server socket: code %d, want %d", code, swoole.ErrInvalidParams)
		}
	case <-time.After(ftTimeout):
		t.Fatal("no OnPacket")
	}
	if got, _ := ftReadDgram(t, c); got != "unix-ok" {
		t.Fatalf("the peer got %q first, want only unix-ok (the bad send must send nothing)", got)
	}
}

// TestSendToSocketPeerNotReading: SendToSocket never blocks: to a unix datagram peer that
// does not read, sends succeed until its queue is full and then fail at once with an error
// carrying a code; the datagrams that were accepted arrive whole once the peer reads.
func TestSendToSocketPeerNotReading(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "server.sock")
	s := ftNew(t, path, swoole.SockUnixDgram, swoole.Settings{})
	s.OnPacket(func(*swoole.Server, []byte, swoole.ClientAddr) {})
	ftStart(t, s)
	peerPath := filepath.Join(dir, "client.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: peerPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte{'B'}, 8192)
	sent := 0
	var last error
	start := time.Now()
	for i := 0; i < 100000; i++ {
		t0 := time.Now()
		last = s.SendToSocket(peerPath, msg, -1)
		if d := time.Since(t0); d > 2*time.Second {
			t.Fatalf("SendToSocket %d blocked for %v", i, d)
		}
		if last != nil {
			break
		}
		sent++
	}
	if last == nil {
		t.Fatalf("%d datagrams of %d bytes to a peer that never reads all succeeded", sent, len(msg))
	}
	if ftCode(last) == 0 {
		t.Errorf("the failed SendToSocket returned %T %v, not a *swoole.Error", last, last)
	}
	if sent == 0 {
		t.Fatalf("the first SendToSocket failed: %v", last)
	}
	t.Logf("%d datagrams accepted in %v, then: %v", sent, time.Since(start), last)
	for i := range sent {
		got, _ := ftReadDgram(t, c)
		if got != string(msg) {
			t.Fatalf("datagram %d: %d bytes, want %d", i, len(got), len(msg))
		}
	}
}
