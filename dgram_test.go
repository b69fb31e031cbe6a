package swoole_test

// Datagram ports: OnPacket with the client's address on SockUDP, SockUDP6 and
// SockUnixDgram; replies with SendTo and SendToSocket; SendTo's checks (711, 723, ...);
// GetSocket and Port.GetSocket used with setsockopt to join a multicast group.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole"
)

// ftPacket is one OnPacket call.
type ftPacket struct {
	data   string
	client swoole.ClientAddr
}

// ftPacketEcho registers an OnPacket on s (or on p when not nil) that reports each datagram
// on the returned channel and answers it to its sender: SendTo for IP ports, SendToSocket
// for unix ones, from the port that received it. Reply errors go to the second channel.
func ftPacketEcho(s *swoole.Server, p *swoole.Port) (<-chan ftPacket, <-chan error) {
	got := make(chan ftPacket, 16)
	errs := make(chan error, 16)
	cb := func(s *swoole.Server, data []byte, client swoole.ClientAddr) {
		got <- ftPacket{string(data), client}
		var err error
		if client.Port == 0 {
			err = s.SendToSocket(client.Address, append([]byte("re:"), data...), client.ServerSocket)
		} else {
			err = s.SendTo(client.Address, client.Port, append([]byte("re:"), data...), client.ServerSocket)
		}
		if err != nil {
			errs <- err
		}
	}
	if p != nil {
		p.OnPacket(cb)
	} else {
		s.OnPacket(cb)
	}
	return got, errs
}

func ftRecvPacket(t testing.TB, ch <-chan ftPacket) ftPacket {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(ftTimeout):
		t.Fatalf("no OnPacket within %v", ftTimeout)
	}
	return ftPacket{}
}

// ftReadDgram reads one datagram within ftTimeout.
func ftReadDgram(t testing.TB, c net.PacketConn) (string, net.Addr) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(ftTimeout)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 65536)
	n, from, err := c.ReadFrom(b)
	if err != nil {
		t.Fatalf("read a datagram: %v", err)
	}
	return string(b[:n]), from
}

// TestPacketEcho: a datagram reaches OnPacket whole, with the client's address and port
// and the receiving socket and port; the reply goes back to that client, on UDP, UDP6 and
// unix datagram sockets.
func TestPacketEcho(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		host string
		sock swoole.SockType
	}{
		{"udp", "127.0.0.1", swoole.SockUDP},
		{"udp6", "::1", swoole.SockUDP6},
		{"udp6 dual stack, IPv4 client", "::", swoole.SockUDP6},
		{"unixgram", filepath.Join(dir, "server.sock"), swoole.SockUnixDgram},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ftNew(t, tc.host, tc.sock, swoole.Settings{})
			got, errs := ftPacketEcho(s, nil)
			ftStart(t, s)
			p := s.Ports()[0]
			var c net.PacketConn
			var to net.Addr
			var err error
			switch tc.sock {
			case swoole.SockUnixDgram:
				c, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "client.sock"), Net: "unixgram"})
				to = &net.UnixAddr{Name: tc.host, Net: "unixgram"}
			case swoole.SockUDP6:
				if tc.host == "::" {
					// A "::" port also takes IPv4: the client's address shows as IPv4 and the
					// reply from the UDP6 socket reaches it.
					c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
					to = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p.Port()}
					break
				}
				fallthrough
			default:
				c, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(tc.host)})
				to = &net.UDPAddr{IP: net.ParseIP(tc.host), Port: p.Port()}
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for i, msg := range []string{"ping", "x\ny\r\n\r\n", string(make([]byte, 60000))} {
				if _, err := c.WriteTo([]byte(msg), to); err != nil {
					t.Fatal(err)
				}
				pk := ftRecvPacket(t, got)
				if pk.data != msg {
					t.Fatalf("datagram %d: OnPacket got %d bytes, want %d", i, len(pk.data), len(msg))
				}
				want := swoole.ClientAddr{ServerSocket: pk.client.ServerSocket, ServerPort: p.Port()}
				switch a := c.LocalAddr().(type) {
				case *net.UDPAddr:
					want.Address, want.Port = a.IP.String(), a.Port
				case *net.UnixAddr:
					want.Address = a.Name
				}
				if pk.client != want || pk.client.ServerSocket <= 0 {
					t.Errorf("datagram %d: ClientAddr %+v, want %+v with a ServerSocket > 0", i, pk.client, want)
				}
				reply, from := ftReadDgram(t, c)
				if reply != "re:"+msg {
					t.Fatalf("datagram %d: reply of %d bytes, want %d", i, len(reply), 3+len(msg))
				}
				if from.String() != to.String() {
					t.Errorf("the reply came from %v, want the server's port %v", from, to)
				}
			}
			select {
			case err := <-errs:
				t.Fatalf("reply: %v", err)
			default:
			}
			if st := s.Stats(); st.RequestCount != 3 || st.ConnectionNum != 0 {
				t.Errorf("Stats: RequestCount %d (want 3), ConnectionNum %d (want 0: datagrams are not connections)", st.RequestCount, st.ConnectionNum)
			}
		})
	}
}

// TestUnnamedUnixPeer: a unix datagram client without a name of its own cannot be
// answered: OnPacket sees an empty Address and SendToSocket("") is a clear error.
func TestUnnamedUnixPeer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	s := ftNew(t, path, swoole.SockUnixDgram, swoole.Settings{})
	got, errs := ftPacketEcho(s, nil)
	ftStart(t, s)
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("anon")); err != nil {
		t.Fatal(err)
	}
	if pk := ftRecvPacket(t, got); pk.data != "anon" || pk.client.Address != "" {
		t.Fatalf("got %+v", pk)
	}
	select {
	case err := <-errs:
		ftWantCode(t, nil, "SendToSocket to an unnamed peer", err, swoole.ErrInvalidParams)
	case <-time.After(ftTimeout):
		t.Fatal("SendToSocket to an unnamed peer did not fail")
	}
}

// TestSendToChecks: SendTo resolves names as Swoole does ("localhost" works) and
// checks its arguments: 711 for a name that does not resolve, 723 for a port outside
// 1–65535, 550 for no data, 503 without a listener of the address's family or before Start
// and after shutdown, 505 for a server socket that is not a datagram port.
func TestSendToChecks(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockUDP, swoole.Settings{})
	ftPacketEcho(s, nil)
	tcp, err := s.AddListener("127.0.0.1", 0, swoole.SockTCP)
	if err != nil {
		t.Fatal(err)
	}
	tcp.OnReceive(func(*swoole.Server, int64, int, []byte) {})
	ftWantCode(t, s, "SendTo before Start", s.SendTo("127.0.0.1", 9, []byte("x"), -1), swoole.ErrRefused)
	done := ftStartWait(t, s)

	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	port := peer.LocalAddr().(*net.UDPAddr).Port
	if err := s.SendTo("localhost", port, []byte("via localhost"), -1); err != nil {
		t.Fatalf("SendTo(localhost): %v", err)
	}
	if got, from := ftReadDgram(t, peer); got != "via localhost" || from.(*net.UDPAddr).Port != s.Ports()[0].Port() {
		t.Fatalf("got %q from %v", got, from)
	}
	if err := s.SendTo("127.0.0.1", port, []byte("by address"), -1); err != nil {
		t.Fatal(err)
	}
	if got, _ := ftReadDgram(t, peer); got != "by address" {
		t.Fatalf("got %q", got)
	}

	ftWantCode(t, s, "SendTo(unresolvable)", s.SendTo("no.such.host.invalid", port, []byte("x"), -1), swoole.ErrDNSLookup)
	for _, bad := range []int{0, -1, 65536, 70000} {
		ftWantCode(t, s, fmt.Sprintf("SendTo(port %d)", bad), s.SendTo("127.0.0.1", bad, []byte("x"), -1), swoole.ErrBadPort)
	}
	ftWantCode(t, s, "SendTo(no data)", s.SendTo("127.0.0.1", port, nil, -1), swoole.ErrNoPayload)
	ftWantCode(t, s, "SendTo(::1) without a UDP6 port", s.SendTo("::1", port, []byte("x"), -1), swoole.ErrRefused)
	ftWantCode(t, s, "SendTo(unknown server socket)", s.SendTo("127.0.0.1", port, []byte("x"), 1<<20), swoole.ErrInvalidParams)
	c := ftDial(t, tcp)
	info, err := s.GetClientInfo(ftFDOf(t, s, c), -1, false)
	if err != nil {
		t.Fatal(err)
	}
	ftWantCode(t, s, "SendTo(from a TCP listener)", s.SendTo("127.0.0.1", port, []byte("x"), info.ServerFD), swoole.ErrInvalidParams)
	ftWantCode(t, s, "SendToSocket without a unix dgram port", s.SendToSocket("/tmp/x.sock", []byte("x"), -1), swoole.ErrRefused)

	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ftWantCode(t, s, "SendTo after shutdown", s.SendTo("127.0.0.1", port, []byte("x"), -1), swoole.ErrRefused)
}

// ftJoinGroup joins group on the loopback interface through f (a GetSocket file). The loopback
// interface may lack the MULTICAST flag (it does on the machine these tests were written on):
// joining by interface index works there all the same.
func ftJoinGroup(t testing.TB, sc syscall.RawConn, group [4]byte) {
	t.Helper()
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no loopback interface named lo: %v", err)
	}
	var serr error
	if err := sc.Control(func(fd uintptr) {
		serr = unix.SetsockoptIPMreqn(int(fd), unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP,
			&unix.IPMreqn{Multiaddr: group, Ifindex: int32(lo.Index)})
	}); err != nil {
		t.Fatalf("RawConn.Control: %v", err)
	}
	if serr != nil {
		var errno syscall.Errno
		errors.As(serr, &errno)
		t.Skipf("IP_ADD_MEMBERSHIP on lo (index %d) is refused here: errno %d (%v)", lo.Index, int(errno), serr)
	}
}

// ftSendMulticast sends data to group:port out of the loopback interface, looped back.
func ftSendMulticast(t testing.TB, group [4]byte, port int, data string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInet4Addr(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, [4]byte{127, 0, 0, 1}); err != nil {
		t.Fatalf("IP_MULTICAST_IF 127.0.0.1: %v", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 1); err != nil {
		t.Fatalf("IP_MULTICAST_LOOP: %v", err)
	}
	if err := unix.Sendto(fd, []byte(data), 0, &unix.SockaddrInet4{Port: port, Addr: group}); err != nil {
		t.Fatalf("sendto %v:%d: %v", group, port, err)
	}
}

// TestMulticastGetSocket: GetSocket (the primary port) and Port.GetSocket (an added
// port) return files usable with setsockopt: each UDP port joins its own multicast group on
// the loopback interface and receives a datagram sent to that group, in its OnPacket.
func TestMulticastGetSocket(t *testing.T) {
	s := ftNew(t, "0.0.0.0", swoole.SockUDP, swoole.Settings{})
	got, _ := ftPacketEcho(s, nil)
	p2, err := s.AddListener("0.0.0.0", 0, swoole.SockUDP)
	if err != nil {
		t.Fatal(err)
	}
	got2 := make(chan ftPacket, 4)
	p2.OnPacket(func(s *swoole.Server, data []byte, client swoole.ClientAddr) { got2 <- ftPacket{string(data), client} })
	ftStart(t, s)

	g1 := [4]byte{239, 255, byte(rand.IntN(256)), byte(1 + rand.IntN(254))}
	g2 := g1
	g2[3] ^= 0x80
	f1, err := s.GetSocket()
	if err != nil {
		t.Fatalf("GetSocket: %v", err)
	}
	if again, err := s.GetSocket(); err != nil || again != f1 {
		t.Errorf("a second GetSocket gave %v, %v: want the same file", again, err)
	}
	sc1, err := f1.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	ftJoinGroup(t, sc1, g1)
	f2, err := p2.GetSocket()
	if err != nil {
		t.Fatalf("Port.GetSocket: %v", err)
	}
	sc2, err := f2.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	ftJoinGroup(t, sc2, g2)

	ftSendMulticast(t, g1, s.Ports()[0].Port(), "to group 1")
	pk := ftRecvPacket(t, got)
	if pk.data != "to group 1" || pk.client.Address != "127.0.0.1" || pk.client.ServerPort != s.Ports()[0].Port() {
		t.Errorf("primary port got %+v", pk)
	}
	ftSendMulticast(t, g2, p2.Port(), "to group 2")
	pk = ftRecvPacket(t, got2)
	if pk.data != "to group 2" || pk.client.ServerPort != p2.Port() {
		t.Errorf("added port got %+v", pk)
	}

	// The file is a duplicate: setsockopt through it changes the port's socket, and the port
	// keeps its own descriptor (ServerSocket) apart from the file's.
	if int(f1.Fd()) == pk.client.ServerSocket {
		t.Errorf("GetSocket returned the port's own descriptor %d, want a duplicate", f1.Fd())
	}
}

// TestGetSocketStream: GetSocket works on a TCP listener too (SO_TYPE is SOCK_STREAM,
// SO_ACCEPTCONN once started).
func TestGetSocketStream(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{})
	ftEchoServer(s)
	ftStart(t, s)
	f, err := s.GetSocket()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var typ, acc int
	var e1, e2 error
	if err := sc.Control(func(fd uintptr) {
		typ, e1 = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
		acc, e2 = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	}); err != nil {
		t.Fatal(err)
	}
	if e1 != nil || e2 != nil || typ != unix.SOCK_STREAM || acc != 1 {
		t.Errorf("SO_TYPE %d (%v), SO_ACCEPTCONN %d (%v): want a listening stream socket", typ, e1, acc, e2)
	}
}

// TestDgramPortNeedsOnPacket: a datagram port without an OnPacket handler (its own or the
// server's) cannot start: Start fails with 9015 and names the port.
func TestDgramPortNeedsOnPacket(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{})
	ftEchoServer(s)
	if _, err := s.AddListener("127.0.0.1", 0, swoole.SockUDP); err != nil {
		t.Fatal(err)
	}
	err := s.Start()
	ftWantCode(t, s, "Start with a UDP port and no OnPacket", err, swoole.ErrServerInvalidCallback)
	if err != nil && !strings.Contains(err.Error(), "Packet") {
		t.Errorf("%v does not say which handler is missing", err)
	}
}

// TestLongUnixDatagram: a unix datagram longer than the loop's 64 KiB read buffer is
// dropped (and logged), never delivered cut short; the next datagram arrives as usual.
func TestLongUnixDatagram(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	s := ftNew(t, path, swoole.SockUnixDgram, swoole.Settings{})
	got, _ := ftPacketEcho(s, nil)
	ftStart(t, s)
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(make([]byte, 100000)); err != nil {
		t.Skipf("the kernel refuses a 100000-byte unix datagram here: %v", err)
	}
	if _, err := c.Write([]byte("small")); err != nil {
		t.Fatal(err)
	}
	if pk := ftRecvPacket(t, got); string(pk.data) != "small" {
		t.Errorf("OnPacket got %d bytes first; want the 100000-byte datagram dropped and then \"small\"", len(pk.data))
	}
}
