package swoole_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// TestNewServerSockTypes serves one echo over each stream socket type NewServer takes and
// checks what the server reports about the port and the connection.
func TestNewServerSockTypes(t *testing.T) {
	tests := []struct {
		name     string
		host     string
		sock     swoole.SockType
		remoteIP string // what GetClientInfo reports for the client
	}{
		{name: "tcp", host: "127.0.0.1", sock: swoole.SockTCP, remoteIP: "127.0.0.1"},
		{name: "tcp6", host: "::1", sock: swoole.SockTCP6, remoteIP: "::1"},
		{name: "unix", sock: swoole.SockUnixStream, remoteIP: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host := tc.host
			if tc.sock == swoole.SockUnixStream {
				host = filepath.Join(t.TempDir(), "s.sock")
			}
			s, err := swoole.NewServer(host, 0, swoole.ModeBase, tc.sock)
			if err != nil {
				t.Fatalf("NewServer(%q, 0, ModeBase, %v): %v", host, tc.sock, err)
			}
			p := s.Ports()[0]
			if p.Type() != tc.sock || p.Host() != host {
				t.Errorf("port: type %v host %q, want %v %q", p.Type(), p.Host(), tc.sock, host)
			}
			if tc.sock == swoole.SockUnixStream {
				if p.Port() != 0 {
					t.Errorf("unix port: Port() = %d, want 0", p.Port())
				}
			} else if p.Port() <= 0 || p.Port() > 65535 {
				t.Errorf("Port() = %d right after NewServer with port 0, want the port the kernel picked", p.Port())
			}
			setOpts(t, s, nil)
			fds := make(chan int64, 1)
			s.OnConnect(func(_ *swoole.Server, fd int64, _ int) { fds <- fd })
			s.OnReceive(echo(t))
			r := start(t, s)
			c := r.dial(t)
			roundTrip(t, c, "hello "+tc.name)
			fd := <-fds
			info, err := s.GetClientInfo(fd, -1, false)
			if err != nil {
				t.Fatalf("GetClientInfo(%d): %v", fd, err)
			}
			if info.SocketType != int(tc.sock) || info.RemoteIP != tc.remoteIP || info.ServerPort != p.Port() {
				t.Errorf("GetClientInfo: socket_type %d remote_ip %q server_port %d, want %d %q %d",
					info.SocketType, info.RemoteIP, info.ServerPort, int(tc.sock), tc.remoteIP, p.Port())
			}
			if tc.sock != swoole.SockUnixStream {
				_, port, _ := net.SplitHostPort(c.LocalAddr().String())
				if strconv.Itoa(info.RemotePort) != port {
					t.Errorf("remote_port %d, want the client's port %s", info.RemotePort, port)
				}
			} else if info.RemotePort != 0 {
				t.Errorf("unix remote_port %d, want 0", info.RemotePort)
			}
			if err := s.Shutdown(); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if err := r.wait(startTimeout); err != nil {
				t.Fatalf("Start: %v", err)
			}
			if tc.sock == swoole.SockUnixStream {
				if _, err := os.Lstat(host); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the socket file %s is still there after shutdown (Lstat: %v)", host, err)
				}
			}
		})
	}
}

// TestNewServerErrors checks that NewServer fails at once, with the errno or Swoole's code.
func TestNewServerErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name  string
		host  string
		port  int
		mode  swoole.Mode
		sock  swoole.SockType
		code  int
		errno syscall.Errno // when the error must wrap an errno
	}{
		{name: "port in use", host: "127.0.0.1", port: busyPort, mode: swoole.ModeBase, sock: swoole.SockTCP, code: int(syscall.EADDRINUSE), errno: syscall.EADDRINUSE},
		{name: "address not local", host: "192.0.2.1", port: 0, mode: swoole.ModeBase, sock: swoole.SockTCP, code: int(syscall.EADDRNOTAVAIL), errno: syscall.EADDRNOTAVAIL},
		{name: "unix path in a missing directory", host: "/nonexistent-goswoole-dir/s.sock", mode: swoole.ModeBase, sock: swoole.SockUnixStream, code: int(syscall.ENOENT), errno: syscall.ENOENT},
		{name: "host does not resolve", host: "no-such-host.invalid", port: 0, mode: swoole.ModeBase, sock: swoole.SockTCP, code: swoole.ErrBadHostAddr},
		{name: "ipv6 address on a tcp4 socket", host: "::1", port: 0, mode: swoole.ModeBase, sock: swoole.SockTCP, code: swoole.ErrBadHostAddr},
		{name: "port above 65535", host: "127.0.0.1", port: 70000, mode: swoole.ModeBase, sock: swoole.SockTCP, code: swoole.ErrBadPort},
		{name: "negative port", host: "127.0.0.1", port: -1, mode: swoole.ModeBase, sock: swoole.SockTCP, code: swoole.ErrBadPort},
		{name: "unknown socket type", host: "127.0.0.1", port: 0, mode: swoole.ModeBase, sock: swoole.SockType(99), code: swoole.ErrBadSocketType},
		{name: "unknown mode", host: "127.0.0.1", port: 0, mode: swoole.Mode(9), sock: swoole.SockTCP, code: swoole.ErrInvalidParams},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := swoole.NewServer(tc.host, tc.port, tc.mode, tc.sock)
			if s != nil {
				t.Errorf("NewServer returned a server with the error %v", err)
			}
			wantCode(t, nil, "NewServer", err, tc.code)
			if tc.errno != 0 && !isErrno(err, tc.errno) {
				t.Errorf("errors.Is(err, %v) is false: %v", tc.errno, err)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "swoole: ") {
				t.Errorf("message %q lacks the \"swoole: \" prefix", err)
			}
		})
	}
}

// TestNewServerHoldsPort checks that NewServer's bind takes the port at once, as Swoole's
// constructor does: nobody else can listen there before Start, and a second server on the
// same port fails with EADDRINUSE at NewServer, not later at Start.
func TestNewServerHoldsPort(t *testing.T) {
	s := newEcho(t, nil)
	port := s.Ports()[0].Port()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	t.Run("net.Listen", func(t *testing.T) {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			t.Errorf("net.Listen(%s) succeeded on the port NewServer bound: the port is not held until Start", addr)
		}
	})
	t.Run("second NewServer", func(t *testing.T) {
		s2, err := swoole.NewServer("127.0.0.1", port, swoole.ModeBase, swoole.SockTCP)
		if err == nil {
			// Its socket stays bound until the process ends: there is no way to release a
			// server that never started.
			t.Errorf("a second NewServer on port %d succeeded; want EADDRINUSE at once (Swoole's constructor fails here)", port)
			_ = s2.Shutdown() // releases its socket
			return
		}
		wantCode(t, nil, "second NewServer", err, int(syscall.EADDRINUSE))
	})
	start(t, s) // the first server still starts and serves
}

// TestStartShutdownEventOrder checks the order of every event of a single-process server's
// life, and the reactor ids: one connection closed by its peer, one still open at shutdown.
func TestStartShutdownEventOrder(t *testing.T) {
	var rec recorder
	s := newServer(t, nil)
	s.OnStart(func(s *swoole.Server) { rec.add("start") })
	s.OnWorkerStart(func(s *swoole.Server, id int) { rec.add("workerstart:%d", id) })
	s.OnConnect(func(s *swoole.Server, fd int64, rid int) { rec.add("connect:%d:%d", fd, rid) })
	s.OnReceive(func(s *swoole.Server, fd int64, rid int, data []byte) {
		rec.add("receive:%d:%d:%s", fd, rid, data)
		if err := s.Send(fd, data); err != nil {
			t.Errorf("Send: %v", err)
		}
	})
	s.OnClose(func(s *swoole.Server, fd int64, rid int) { rec.add("close:%d", fd) })
	s.OnBeforeShutdown(func(s *swoole.Server) { rec.add("beforeshutdown") })
	s.OnWorkerStop(func(s *swoole.Server, id int) { rec.add("workerstop:%d", id) })
	s.OnShutdown(func(s *swoole.Server) { rec.add("shutdown") })
	r := start(t, s)

	c1 := r.dial(t)
	roundTrip(t, c1, "x")
	c1.Close()
	waitFor(t, ioTimeout, "close:1", func() bool { return rec.count("close:1") == 1 })
	c2 := r.dial(t)
	waitFor(t, ioTimeout, "connect:2", func() bool { return rec.count("connect:2:0") == 1 })
	select {
	case <-r.done:
		t.Fatalf("Start returned (%v) while the server was serving", r.err)
	default: // Start blocks until shutdown
	}

	if err := s.Shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := r.wait(startTimeout); err != nil {
		t.Fatalf("Start returned %v, want nil", err)
	}
	if _, err := readUntilClosed(t, c2); err != nil {
		t.Errorf("the open connection ended with %v at shutdown, want EOF", err)
	}
	want := []string{"start", "workerstart:0", "connect:1:0", "receive:1:0:x", "close:1",
		"connect:2:0", "beforeshutdown", "close:2", "workerstop:0", "shutdown"}
	if got := rec.list(); !slices.Equal(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}
}

// TestStartTwice: a second Start is 9008, while running and after shutdown.
func TestStartTwice(t *testing.T) {
	s := newEcho(t, nil)
	r := start(t, s)
	wantCode(t, s, "Start while running", s.Start(), swoole.ErrServerOnlyStartOne)
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := r.wait(startTimeout); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s, "Start after shutdown", s.Start(), swoole.ErrServerOnlyStartOne)
}

// TestStartWithoutReceive: a stream port with no Receive handler is refused at Start (9015),
// which returns at once, and the server is then not running.
func TestStartWithoutReceive(t *testing.T) {
	s := newServer(t, nil)
	done := make(chan error, 1)
	go func() { done <- s.Start() }()
	select {
	case err := <-done:
		wantCode(t, s, "Start without OnReceive", err, swoole.ErrServerInvalidCallback)
	case <-time.After(startTimeout):
		_ = s.Shutdown()
		t.Fatal("Start without a Receive handler blocked")
	}
	wantCode(t, s, "Shutdown of a server that failed to start", s.Shutdown(), swoole.ErrRefused)
}

// TestShutdown covers Shutdown's states: before Start, twice, from a callback, after.
func TestShutdown(t *testing.T) {
	t.Run("before start", func(t *testing.T) {
		s := newEcho(t, nil)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Ports()[0].Port()))
		wantCode(t, s, "Shutdown before Start", s.Shutdown(), swoole.ErrRefused)
		// The ports are released: another socket can listen there.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("listen on %s after Shutdown before Start: %v (the port was not released)", addr, err)
		} else {
			ln.Close()
		}
		done := make(chan error, 1)
		go func() { done <- s.Start() }()
		select {
		case err := <-done:
			wantCode(t, s, "Start after Shutdown", err, swoole.ErrRefused) // not a second Start: refused in this state
		case <-time.After(startTimeout):
			t.Fatal("Start after Shutdown blocked")
		}
	})
	t.Run("twice and after", func(t *testing.T) {
		s := newEcho(t, nil)
		block := make(chan struct{})
		s.OnBeforeShutdown(func(*swoole.Server) { <-block })
		r := start(t, s)
		if err := s.Shutdown(); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if err := s.Shutdown(); err != nil {
			t.Errorf("Shutdown while shutting down: %v, want nil", err)
		}
		close(block)
		if err := r.wait(startTimeout); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s, "Shutdown after shutdown", s.Shutdown(), swoole.ErrRefused)
	})
	t.Run("from a callback", func(t *testing.T) {
		s := newServer(t, nil)
		s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
			if string(data) == "quit" {
				if err := s.Shutdown(); err != nil {
					t.Errorf("Shutdown in OnReceive: %v", err)
				}
			}
		})
		r := start(t, s)
		c := r.dial(t)
		if _, err := c.Write([]byte("quit")); err != nil {
			t.Fatal(err)
		}
		if err := r.wait(startTimeout); err != nil {
			t.Fatalf("Start: %v", err)
		}
		readUntilClosed(t, c)
	})
	t.Run("from OnWorkerStart", func(t *testing.T) {
		s := newEcho(t, nil)
		var rec recorder
		s.OnWorkerStart(func(s *swoole.Server, _ int) {
			rec.add("workerstart")
			if err := s.Shutdown(); err != nil {
				t.Errorf("Shutdown in OnWorkerStart: %v", err)
			}
		})
		s.OnWorkerStop(func(*swoole.Server, int) { rec.add("workerstop") })
		s.OnShutdown(func(*swoole.Server) { rec.add("shutdown") })
		done := make(chan error, 1)
		go func() { done <- s.Start() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
		case <-time.After(startTimeout):
			t.Fatal("Start did not return after Shutdown in OnWorkerStart")
		}
		if got, want := rec.list(), []string{"workerstart", "workerstop", "shutdown"}; !slices.Equal(got, want) {
			t.Errorf("events %q, want %q", got, want)
		}
	})
}

// TestSetAndSetting covers Set, SetOptions and Setting before and after Start.
func TestSetAndSetting(t *testing.T) {
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeBase, swoole.SockTCP)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(swoole.Settings{LogLevel: swoole.LogLevelNone, MaxConnection: 321, BufferOutputSize: 1 << 20}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if err := s.SetOptions(map[string]any{"socket_buffer_size": "1M", "open_tcp_nodelay": true, "start_session_id": 10}); err != nil {
		t.Fatalf("SetOptions: %v", err)
	}
	// Set merges: the fields given earlier stay.
	if err := s.Set(swoole.Settings{Backlog: 64}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	check := func(when string, st swoole.Settings) {
		t.Helper()
		if st.MaxConnection != 321 || st.BufferOutputSize != 1<<20 || st.SocketBufferSize != 1<<20 ||
			!st.OpenTCPNoDelay || st.StartSessionID != 10 || st.Backlog != 64 || st.LogLevel != swoole.LogLevelNone {
			t.Errorf("%s: Setting() = max_connection %d buffer_output_size %d socket_buffer_size %d nodelay %v start_session_id %d backlog %d log_level %v",
				when, st.MaxConnection, st.BufferOutputSize, st.SocketBufferSize, st.OpenTCPNoDelay, st.StartSessionID, st.Backlog, st.LogLevel)
		}
		if st.PackageMaxLength != 2<<20 || st.BufferInputSize != 2<<20 {
			t.Errorf("%s: defaults not filled in: package_max_length %d buffer_input_size %d", when, st.PackageMaxLength, st.BufferInputSize)
		}
	}
	check("before Start", s.Setting())

	bad := []struct {
		name string
		opts map[string]any
		code int
	}{
		{name: "unknown key", opts: map[string]any{"no_such_option": 1}, code: swoole.ErrInvalidParams},
		{name: "misspelt key", opts: map[string]any{"max_conection": 10}, code: swoole.ErrInvalidParams},
		{name: "string for int", opts: map[string]any{"worker_num": "four"}, code: swoole.ErrInvalidParams},
		{name: "int for bool", opts: map[string]any{"open_tcp_nodelay": 1}, code: swoole.ErrInvalidParams},
		{name: "bool for string", opts: map[string]any{"package_eof": true}, code: swoole.ErrInvalidParams},
		{name: "negative size", opts: map[string]any{"socket_buffer_size": -1}, code: swoole.ErrInvalidParams},
		{name: "bad size string", opts: map[string]any{"socket_buffer_size": "lots"}, code: swoole.ErrInvalidParams},
		{name: "log level out of range", opts: map[string]any{"log_level": 9}, code: swoole.ErrInvalidParams},
		{name: "PHP-only key", opts: map[string]any{"hook_flags": 1}, code: swoole.ErrOperationNotSupport},
		{name: "good and bad together", opts: map[string]any{"backlog": 7, "nope": 1}, code: swoole.ErrInvalidParams},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := s.SetOptions(tc.opts)
			wantCode(t, s, "SetOptions", err, tc.code)
			for k := range tc.opts {
				if k != "backlog" && err != nil && !strings.Contains(err.Error(), k) {
					t.Errorf("the error %q does not name the key %q", err, k)
				}
			}
		})
	}
	t.Run("Set with a bad value", func(t *testing.T) {
		wantCode(t, s, "Set", s.Set(swoole.Settings{DispatchMode: 6}), swoole.ErrInvalidParams)
		wantCode(t, s, "Set", s.Set(swoole.Settings{BufferHighWatermark: 10, BufferLowWatermark: 20}), swoole.ErrInvalidParams)
	})
	check("after refused calls (nothing changed)", s.Setting())

	s.OnReceive(echo(t))
	start(t, s)
	st := s.Setting()
	check("after Start", st)
	if st.WorkerNum != 1 {
		t.Errorf("after Start: worker_num %d, want 1 (a single-process server)", st.WorkerNum)
	}
}

// allEvents maps each event name to a handler of the right type.
func allEvents() map[string]any {
	return map[string]any{
		"Start":          func(*swoole.Server) {},
		"BeforeShutdown": func(*swoole.Server) {},
		"Shutdown":       func(*swoole.Server) {},
		"ManagerStart":   func(*swoole.Server) {},
		"ManagerStop":    func(*swoole.Server) {},
		"BeforeReload":   func(*swoole.Server) {},
		"AfterReload":    func(*swoole.Server) {},
		"WorkerStart":    func(*swoole.Server, int) {},
		"WorkerStop":     func(*swoole.Server, int) {},
		"WorkerExit":     func(*swoole.Server, int) {},
		"WorkerError":    func(*swoole.Server, int, int, int, int) {},
		"Connect":        func(*swoole.Server, int64, int) {},
		"Receive":        func(*swoole.Server, int64, int, []byte) {},
		"Close":          func(*swoole.Server, int64, int) {},
		"Packet":         func(*swoole.Server, []byte, swoole.ClientAddr) {},
		"Task":           func(*swoole.Server, int, int, []byte) any { return nil },
		"Finish":         func(*swoole.Server, int, []byte) {},
		"PipeMessage":    func(*swoole.Server, int, []byte) {},
		"BufferFull":     func(*swoole.Server, int64) {},
		"BufferEmpty":    func(*swoole.Server, int64) {},
	}
}

func samefunc(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	return va.Type() == vb.Type() && va.Pointer() == vb.Pointer()
}

// TestOnAndGetCallback registers every event through On and reads it back.
func TestOnAndGetCallback(t *testing.T) {
	s := newServer(t, nil)
	for name, cb := range allEvents() {
		t.Run(name, func(t *testing.T) {
			if got := s.GetCallback(name); got != nil {
				t.Errorf("GetCallback(%q) before On = %T, want untyped nil", name, got)
			}
			if err := s.On(strings.ToLower(name), cb); err != nil {
				t.Fatalf("On(%q): %v", strings.ToLower(name), err)
			}
			for _, n := range []string{name, strings.ToLower(name), strings.ToUpper(name)} {
				if got := s.GetCallback(n); !samefunc(got, cb) {
					t.Errorf("GetCallback(%q) = %T, want the function given to On", n, got)
				}
			}
			wrong := func(*swoole.Server, string) {}
			wantCode(t, s, "On with a wrong signature", s.On(name, wrong), swoole.ErrInvalidParams)
			if got := s.GetCallback(name); !samefunc(got, cb) {
				t.Errorf("a refused On replaced the handler")
			}
			if err := s.On(name, nil); err != nil {
				t.Errorf("On(%q, nil): %v", name, err)
			}
			if got := s.GetCallback(name); got != nil {
				t.Errorf("GetCallback after On(nil) = %T, want untyped nil", got)
			}
		})
	}
	t.Run("replace", func(t *testing.T) {
		a := func(*swoole.Server, int64, int, []byte) {}
		b := func(*swoole.Server, int64, int, []byte) {}
		if err := s.On("receive", a); err != nil {
			t.Fatal(err)
		}
		if err := s.On("Receive", b); err != nil {
			t.Fatal(err)
		}
		if !samefunc(s.GetCallback("receive"), b) {
			t.Error("the second On did not replace the first")
		}
	})
	t.Run("typed", func(t *testing.T) {
		var called bool
		s.OnReceive(func(*swoole.Server, int64, int, []byte) { called = true })
		f, ok := s.GetCallback("Receive").(func(*swoole.Server, int64, int, []byte))
		if !ok {
			t.Fatalf("GetCallback(\"Receive\") is %T", s.GetCallback("Receive"))
		}
		f(nil, 0, 0, nil)
		if !called {
			t.Error("GetCallback did not return the function given to OnReceive")
		}
		s.OnConnect(func(*swoole.Server, int64, int) {})
		if _, ok := s.GetCallback("connect").(func(*swoole.Server, int64, int)); !ok {
			t.Errorf("GetCallback(\"connect\") is %T after OnConnect", s.GetCallback("connect"))
		}
		s.OnBufferFull(func(*swoole.Server, int64) {})
		if _, ok := s.GetCallback("BufferFull").(func(*swoole.Server, int64)); !ok {
			t.Errorf("GetCallback(\"BufferFull\") is %T after OnBufferFull", s.GetCallback("BufferFull"))
		}
	})
	for _, name := range []string{"onReceive", "OnConnect", "nosuchevent", "", "receive "} {
		t.Run("bad name "+strconv.Quote(name), func(t *testing.T) {
			wantCode(t, s, "On", s.On(name, func(*swoole.Server) {}), swoole.ErrUnknownEvent)
			if got := s.GetCallback(name); got != nil {
				t.Errorf("GetCallback(%q) = %T, want nil", name, got)
			}
		})
	}
}

// TestConfigAfterStart: configuration calls on a running server are refused with 503 and
// change nothing; typed On* calls are ignored.
func TestConfigAfterStart(t *testing.T) {
	s := newEcho(t, nil)
	p, err := s.AddListener("127.0.0.1", 0, swoole.SockTCP)
	if err != nil {
		t.Fatal(err)
	}
	before := s.GetCallback("receive")
	r := start(t, s)

	calls := []struct {
		name string
		err  error
	}{
		{"Set", s.Set(swoole.Settings{Backlog: 9})},
		{"SetOptions", s.SetOptions(map[string]any{"backlog": 9})},
		{"On", s.On("receive", func(*swoole.Server, int64, int, []byte) {})},
		{"AddListener", func() error { _, err := s.AddListener("127.0.0.1", 0, swoole.SockTCP); return err }()},
		{"Port.Set", p.Set(swoole.Settings{Backlog: 9})},
		{"Port.SetOptions", p.SetOptions(map[string]any{"backlog": 9})},
		{"Port.On", p.On("receive", func(*swoole.Server, int64, int, []byte) {})},
	}
	for _, c := range calls {
		if code(c.err) != swoole.ErrRefused {
			t.Errorf("%s after Start: %v, want code %d", c.name, c.err, swoole.ErrRefused)
		}
	}
	s.OnReceive(func(*swoole.Server, int64, int, []byte) { t.Error("an OnReceive registered after Start was used") })
	if !samefunc(s.GetCallback("receive"), before) {
		t.Error("a callback registered after Start replaced the running one")
	}
	if got := s.Setting().Backlog; got == 9 {
		t.Error("Set after Start changed the settings")
	}
	if n := len(s.Ports()); n != 2 {
		t.Errorf("%d ports after a refused AddListener, want 2", n)
	}
	roundTrip(t, r.dial(t), "still echoing")
}

// TestCallsOutsideRunning: every connection call before Start and after shutdown is an error
// with code 503 (or false / empty / zero for the calls that return no error).
func TestCallsOutsideRunning(t *testing.T) {
	check := func(t *testing.T, s *swoole.Server, when string) {
		calls := []struct {
			name string
			err  error
		}{
			{"Send", s.Send(1, []byte("x"))},
			{"Close", s.Close(1, false)},
			{"Pause", s.Pause(1)},
			{"Resume", s.Resume(1)},
			{"GetClientInfo", func() error { _, err := s.GetClientInfo(1, -1, false); return err }()},
			{"GetClientList", func() error { _, err := s.GetClientList(0, 10); return err }()},
			{"Bind", s.Bind(1, 7)},
			{"Shutdown", s.Shutdown()},
		}
		for _, c := range calls {
			t.Run(c.name, func(t *testing.T) {
				if code(c.err) != swoole.ErrRefused {
					t.Errorf("%s %s: %v, want code %d", c.name, when, c.err, swoole.ErrRefused)
				}
			})
		}
		if s.Exist(1) {
			t.Errorf("Exist(1) %s = true", when)
		}
		for id := range s.Connections() {
			t.Errorf("Connections() %s yielded %d", when, id)
		}
	}
	t.Run("before start", func(t *testing.T) {
		s := newEcho(t, nil)
		if got := s.GetLastError(); got != 0 {
			t.Errorf("GetLastError() of a new server = %d, want 0", got)
		}
		check(t, s, "before Start")
		if got := s.GetLastError(); got != swoole.ErrRefused {
			t.Errorf("GetLastError() = %d after refused calls, want %d", got, swoole.ErrRefused)
		}
		if st := s.Stats(); st != (swoole.Stats{}) {
			t.Errorf("Stats() before Start = %+v, want zero", st)
		}
		if id := s.GetWorkerID(); id != -1 {
			t.Errorf("GetWorkerID() before Start = %d, want -1", id)
		}
	})
	t.Run("after shutdown", func(t *testing.T) {
		s := newEcho(t, nil)
		r := start(t, s)
		c := r.dial(t)
		roundTrip(t, c, "x")
		fd := fdOf(t, s, c)
		if err := s.Shutdown(); err != nil {
			t.Fatal(err)
		}
		if err := r.wait(startTimeout); err != nil {
			t.Fatal(err)
		}
		check(t, s, "after shutdown")
		if err := s.Send(fd, []byte("x")); code(err) != swoole.ErrRefused {
			t.Errorf("Send to a connection closed by shutdown: %v, want %d", err, swoole.ErrRefused)
		}
		noPanic(t, "Stats after shutdown", func() { _ = s.Stats() })
		noPanic(t, "GetWorkerPID after shutdown", func() { _ = s.GetWorkerPID(0) })
	})
}

// TestReadsWhileStarting calls the read-only methods from another goroutine while Start
// prepares the server and after it returned: they must neither race with Start (run under
// -race) nor panic, and answer "nothing" outside the running server.
func TestReadsWhileStarting(t *testing.T) {
	onlyOneLoop(t, "the handle NewServer returns is the master's in ModeThread: GetWorkerID is -1 there (TestThreadHandles)")
	s := newEcho(t, nil)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			noPanic(t, "reads while starting", func() {
				_ = s.Stats()
				_ = s.GetWorkerID()
				_ = s.GetWorkerPID(0)
				_ = s.Exist(1)
				_, _ = s.GetClientInfo(1, -1, true)
				for range s.Connections() {
				}
			})
		}
	}()
	r := start(t, s)
	close(stop)
	<-done
	if got := s.GetWorkerID(); got != 0 {
		t.Errorf("GetWorkerID() while running = %d, want 0", got)
	}
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := r.wait(startTimeout); err != nil {
		t.Fatal(err)
	}
	noPanic(t, "reads after shutdown", func() {
		if st := s.Stats(); st != (swoole.Stats{}) {
			t.Errorf("Stats() after shutdown = %+v, want zero", st)
		}
		if got := s.GetWorkerID(); got != -1 {
			t.Errorf("GetWorkerID() after shutdown = %d, want -1", got)
		}
		if got := s.GetWorkerPID(0); got != -1 {
			t.Errorf("GetWorkerPID(0) after shutdown = %d, want -1", got)
		}
	})
}

// TestBeforeShutdownStillServes: OnBeforeShutdown runs while the event loop still works
// (semantics.md (b)): it can list the connections and send them a last message, which
// arrives before EOF; OnClose during shutdown can still read GetClientInfo.
func TestBeforeShutdownStillServes(t *testing.T) {
	var rec recorder
	s := newEcho(t, nil)
	s.OnBeforeShutdown(func(s *swoole.Server) {
		n := 0
		for id := range s.Connections() {
			n++
			if err := s.Send(id, []byte("bye")); err != nil {
				rec.add("Send(%d) in OnBeforeShutdown: %v", id, err)
			}
		}
		if n != 2 {
			rec.add("Connections() in OnBeforeShutdown yielded %d ids, want 2", n)
		}
		if _, err := s.GetClientList(0, 10); err != nil {
			rec.add("GetClientList in OnBeforeShutdown: %v", err)
		}
	})
	s.OnClose(func(s *swoole.Server, fd int64, _ int) {
		if _, err := s.GetClientInfo(fd, -1, false); err != nil {
			rec.add("GetClientInfo(%d) in OnClose at shutdown: %v", fd, err)
		}
	})
	r := start(t, s)
	c1, c2 := r.dial(t), r.dial(t)
	roundTrip(t, c1, "one")
	roundTrip(t, c2, "two")
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for i, c := range []net.Conn{c1, c2} {
		got, err := readUntilClosed(t, c)
		if string(got) != "bye" || err != nil {
			t.Errorf("client %d got %q then %v at shutdown, want \"bye\" then EOF", i+1, got, err)
		}
	}
	if err := r.wait(startTimeout); err != nil {
		t.Fatal(err)
	}
	for _, e := range rec.list() {
		t.Error(e)
	}
}

// TestTableOutlivesReaders: a goroutine that read the connection table while the server ran
// must not race with the server's teardown when the shutdown comes from elsewhere (here a
// callback). Start unmaps the table when it returns; nothing orders that after the reads
// of other goroutines, so under -race this reports the data race, and a reader caught in
// the middle of a read at that moment would fault. (Only start's readiness probe reads,
// long before the shutdown, so that a run without -race cannot crash.)
func TestTableOutlivesReaders(t *testing.T) {
	s := newServer(t, nil)
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		if string(data) == "quit" {
			_ = s.Shutdown()
			return
		}
		_ = s.Send(fd, data)
	})
	r := start(t, s)
	// The reader is this goroutine: start's readiness probe read the table (GetClientList).
	c := r.dial(t)
	if _, err := c.Write([]byte("quit")); err != nil {
		t.Fatal(err)
	}
	if err := r.wait(startTimeout); err != nil {
		t.Fatal(err)
	}
}

// TestTwoServers: two servers run side by side in one process, each with its own ports,
// callbacks, session ids and counters.
func TestTwoServers(t *testing.T) {
	a := newServer(t, map[string]any{"start_session_id": 100})
	a.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) { _ = s.Send(fd, append([]byte("A"), data...)) })
	b := newServer(t, map[string]any{"start_session_id": 200})
	b.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) { _ = s.Send(fd, append([]byte("B"), data...)) })
	ra, rb := start(t, a), start(t, b)
	for i := range 3 {
		ca, cb := ra.dial(t), rb.dial(t)
		for _, x := range []struct {
			c      net.Conn
			s      *swoole.Server
			prefix string
			id     int64
		}{{ca, a, "A", 101 + int64(i)}, {cb, b, "B", 201 + int64(i)}} {
			if _, err := x.c.Write([]byte("?")); err != nil {
				t.Fatal(err)
			}
			if got := readFull(t, x.c, 2); string(got) != x.prefix+"?" {
				t.Errorf("server %s answered %q", x.prefix, got)
			}
			if fd := fdOf(t, x.s, x.c); fd != x.id {
				t.Errorf("server %s: session id %d, want %d", x.prefix, fd, x.id)
			}
		}
	}
	if na, nb := a.Stats().AcceptCount, b.Stats().AcceptCount; na != 3 || nb != 3 {
		t.Errorf("accept_count %d and %d, want 3 each", na, nb)
	}
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := ra.wait(startTimeout); err != nil {
		t.Fatal(err)
	}
	roundTripPrefix := rb.dial(t)
	if _, err := roundTripPrefix.Write([]byte("!")); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, roundTripPrefix, 2); string(got) != "B!" {
		t.Errorf("server B after A's shutdown answered %q", got)
	}
}

// TestWorkerStatusWhileStarting: as soon as the server answers calls, worker 0's status is
// WorkerBusy (running OnStart/OnWorkerStart) or WorkerIdle, never something else.
func TestWorkerStatusWhileStarting(t *testing.T) {
	s := newEcho(t, nil)
	s.OnWorkerStart(func(*swoole.Server, int) {})
	var bad atomic.Int64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if st, err := s.GetWorkerStatus(0); err == nil && st != swoole.WorkerBusy && st != swoole.WorkerIdle {
				bad.Store(int64(st) + 1)
			}
		}
	}()
	start(t, s)
	waitFor(t, ioTimeout, "the worker to be idle", func() bool {
		st, _ := s.GetWorkerStatus(0)
		return st == swoole.WorkerIdle
	})
	close(stop)
	<-done
	if st := bad.Load(); st != 0 {
		t.Errorf("GetWorkerStatus(0) answered %d (neither WorkerBusy nor WorkerIdle) while the server ran", st-1)
	}
}
