package swoole_test

import (
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"github.com/goswoole/swoole"
)

// TestAddListener serves four ports from one server: the primary one and a unix one use the
// server's callbacks, two added TCP ports have their own (one typed, one through On).
func TestAddListener(t *testing.T) {
	var rec recorder
	s := newServer(t, nil)
	s.OnConnect(func(_ *swoole.Server, fd int64, _ int) { rec.add("server connect") })
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		if err := s.Send(fd, append([]byte("S:"), data...)); err != nil {
			t.Errorf("Send: %v", err)
		}
	})
	s.OnClose(func(_ *swoole.Server, fd int64, _ int) { rec.add("server close") })

	pb, err := s.AddListener("127.0.0.1", 0, swoole.SockTCP)
	if err != nil {
		t.Fatalf("AddListener tcp: %v", err)
	}
	pb.OnConnect(func(_ *swoole.Server, fd int64, _ int) { rec.add("b connect") })
	pb.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		if err := s.Send(fd, append([]byte("B:"), data...)); err != nil {
			t.Errorf("Send: %v", err)
		}
	})
	pb.OnClose(func(_ *swoole.Server, fd int64, _ int) { rec.add("b close") })

	path := filepath.Join(t.TempDir(), "u.sock")
	pu, err := s.AddListener(path, 0, swoole.SockUnixStream)
	if err != nil {
		t.Fatalf("AddListener unix: %v", err)
	}

	p6, err := s.AddListener("::1", 0, swoole.SockTCP6)
	if err != nil {
		t.Fatalf("AddListener tcp6: %v", err)
	}
	if err := p6.On("Receive", func(s *swoole.Server, fd int64, _ int, data []byte) {
		if err := s.Send(fd, append([]byte("6:"), data...)); err != nil {
			t.Errorf("Send: %v", err)
		}
	}); err != nil {
		t.Fatalf("Port.On(Receive): %v", err)
	}
	if err := p6.On("close", func(_ *swoole.Server, fd int64, _ int) { rec.add("6 close") }); err != nil {
		t.Fatalf("Port.On(close): %v", err)
	}

	ports := s.Ports()
	if len(ports) != 4 || ports[1] != pb || ports[2] != pu || ports[3] != p6 {
		t.Fatalf("Ports() = %v, want the primary port then the three added in order", ports)
	}
	seen := map[int]bool{}
	for _, p := range []*swoole.Port{ports[0], pb, p6} {
		if p.Port() <= 0 || seen[p.Port()] {
			t.Errorf("port %d: want a distinct port picked by the kernel", p.Port())
		}
		seen[p.Port()] = true
	}
	if pu.Port() != 0 || pu.Host() != path || pu.Type() != swoole.SockUnixStream {
		t.Errorf("unix port: %d %q %v", pu.Port(), pu.Host(), pu.Type())
	}
	r := start(t, s)

	tests := []struct {
		name, network, addr, prefix string
		port                        *swoole.Port
		connect, close              string
	}{
		{"primary", "tcp", r.addr, "S:", ports[0], "server connect", "server close"},
		{"own callbacks", "tcp", "127.0.0.1:" + strconv.Itoa(pb.Port()), "B:", pb, "b connect", "b close"},
		{"unix, inherited callbacks", "unix", path, "S:", pu, "server connect", "server close"},
		{"tcp6, On and inherited connect", "tcp", net.JoinHostPort("::1", strconv.Itoa(p6.Port())), "6:", p6, "server connect", "6 close"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := rec.list()
			c := dialAddr(t, tc.network, tc.addr)
			if _, err := c.Write([]byte("hi")); err != nil {
				t.Fatal(err)
			}
			if got := readFull(t, c, len(tc.prefix)+2); string(got) != tc.prefix+"hi" {
				t.Errorf("got %q, want %q", got, tc.prefix+"hi")
			}
			var infos []*swoole.ClientInfo
			for id := range s.Connections() {
				if info, err := s.GetClientInfo(id, -1, false); err == nil {
					infos = append(infos, info)
				}
			}
			if len(infos) != 1 || infos[0].ServerPort != tc.port.Port() || infos[0].SocketType != int(tc.port.Type()) {
				t.Errorf("GetClientInfo of the one connection: %+v, want server_port %d socket_type %d", infos, tc.port.Port(), tc.port.Type())
			}
			c.Close()
			waitFor(t, ioTimeout, tc.close, func() bool { return len(rec.list()) == len(before)+2 })
			if got, want := rec.list()[len(before):], []string{tc.connect, tc.close}; !slices.Equal(got, want) {
				t.Errorf("events %q, want %q", got, want)
			}
		})
	}
}

// TestPortErrors covers the refusals of AddListener and of a Port's Set, SetOptions and On.
func TestPortErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	s := newEcho(t, nil)

	t.Run("AddListener", func(t *testing.T) {
		tests := []struct {
			name  string
			host  string
			port  int
			sock  swoole.SockType
			code  int
			errno syscall.Errno
		}{
			{"port in use", "127.0.0.1", busy.Addr().(*net.TCPAddr).Port, swoole.SockTCP, int(syscall.EADDRINUSE), syscall.EADDRINUSE},
			{"the server's own port", "127.0.0.1", s.Ports()[0].Port(), swoole.SockTCP, int(syscall.EADDRINUSE), syscall.EADDRINUSE},
			{"address not local", "192.0.2.1", 0, swoole.SockTCP, int(syscall.EADDRNOTAVAIL), syscall.EADDRNOTAVAIL},
			{"host does not resolve", "no-such-host.invalid", 0, swoole.SockTCP, swoole.ErrBadHostAddr, 0},
			{"bad port", "127.0.0.1", 65536, swoole.SockTCP, swoole.ErrBadPort, 0},
			{"bad socket type", "127.0.0.1", 0, swoole.SockType(42), swoole.ErrBadSocketType, 0},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				p, err := s.AddListener(tc.host, tc.port, tc.sock)
				if p != nil {
					t.Errorf("AddListener returned a port with the error %v", err)
				}
				wantCode(t, s, "AddListener", err, tc.code)
				if tc.errno != 0 && !isErrno(err, tc.errno) {
					t.Errorf("errors.Is(err, %v) is false: %v", tc.errno, err)
				}
			})
		}
		if n := len(s.Ports()); n != 1 {
			t.Errorf("%d ports after refused AddListener calls, want 1", n)
		}
	})

	p, err := s.AddListener("127.0.0.1", 0, swoole.SockTCP)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("Port.Set", func(t *testing.T) {
		wantCode(t, s, "Port.Set(WorkerNum)", p.Set(swoole.Settings{WorkerNum: 2}), swoole.ErrInvalidParams)
		wantCode(t, s, "Port.Set(MaxConnection)", p.Set(swoole.Settings{MaxConnection: 10}), swoole.ErrInvalidParams)
		wantCode(t, s, "Port.Set(bad watermarks)", p.Set(swoole.Settings{BufferHighWatermark: 1, BufferLowWatermark: 2}), swoole.ErrInvalidParams)
		if err := p.Set(swoole.Settings{Backlog: 16, OpenTCPNoDelay: true}); err != nil {
			t.Errorf("Port.Set with port settings: %v", err)
		}
	})
	t.Run("Port.SetOptions", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			opts map[string]any
		}{
			{"server key", map[string]any{"worker_num": 2}},
			{"unknown key", map[string]any{"no_such_key": 1}},
			{"wrong type", map[string]any{"backlog": "many"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, s, "Port.SetOptions", p.SetOptions(tc.opts), swoole.ErrInvalidParams)
			})
		}
		if err := p.SetOptions(map[string]any{"backlog": 32, "socket_buffer_size": "1M"}); err != nil {
			t.Errorf("Port.SetOptions with port keys: %v", err)
		}
	})
	t.Run("Port.On", func(t *testing.T) {
		wantCode(t, s, "Port.On(start)", p.On("start", func(*swoole.Server) {}), swoole.ErrInvalidParams)
		wantCode(t, s, "Port.On(workerstart)", p.On("WorkerStart", func(*swoole.Server, int) {}), swoole.ErrInvalidParams)
		wantCode(t, s, "Port.On(unknown)", p.On("nosuch", func(*swoole.Server) {}), swoole.ErrUnknownEvent)
		wantCode(t, s, "Port.On(onReceive)", p.On("onReceive", func(*swoole.Server, int64, int, []byte) {}), swoole.ErrUnknownEvent)
		wantCode(t, s, "Port.On(wrong signature)", p.On("receive", func(*swoole.Server, int64) {}), swoole.ErrInvalidParams)
		for _, name := range []string{"connect", "receive", "close", "bufferfull", "bufferempty", "Packet"} {
			cb := allEvents()[map[string]string{"connect": "Connect", "receive": "Receive", "close": "Close",
				"bufferfull": "BufferFull", "bufferempty": "BufferEmpty", "Packet": "Packet"}[name]]
			if err := p.On(name, cb); err != nil {
				t.Errorf("Port.On(%q): %v", name, err)
			}
		}
	})
	start(t, s)
}
