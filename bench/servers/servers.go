// Package servers holds the echo servers the benchmarks compare, each startable in-process on
// any address (port 0 included) and stoppable: goswoole's, one on Go's standard net package
// with a goroutine per connection, and gnet v2's (one event loop, or multicore).
package servers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/goswoole/swoole"
)

// Server is a running echo server.
type Server interface {
	// Addr is the address it listens on, host:port with the real port.
	Addr() string
	// Close stops it and waits until it has stopped.
	Close() error
}

// Names lists the servers Start knows, in the order reports show them.
var Names = []string{"netstd", "goswoole", "gnet", "floor", "uring"}

// Options are the settings a server may take; each server uses those that apply to it.
type Options struct {
	Multicore bool // gnet: an event loop per CPU (runtime.NumCPU); off: one loop
	MaxConn   int  // goswoole: max_connection (0: the library's default)
	// Workers is goswoole's worker_num: above 1, ModeBase with a manager and that many worker
	// processes (the program started again: only from a command, see cmd/swooleecho); in
	// ModeThread, that many worker loops in this process.
	Workers int
	// Process runs goswoole in ModeProcess: a master process whose reactor loops hold the
	// connections and Workers worker processes running the callbacks (only from a command).
	Process bool
	// Thread runs goswoole in ModeThread: one process, Reactors reactor loops holding the
	// connections and Workers worker loops (goroutines) running the callbacks, each event
	// passed through an in-memory queue (in-process too).
	Thread bool
	// Reactors is goswoole's reactor_num (ModeProcess, ModeThread; 0: the library's default,
	// the usable CPUs capped at worker_num).
	Reactors int
	// Length frames the input with a 4-byte big-endian length header (open_length_check,
	// package_max_length 2 MiB): the server of the header-attack cell (goswoole only).
	Length bool
	// Idle closes connections idle (no complete frame) this many seconds (heartbeat_idle_time,
	// checked every second; goswoole only; 0: never).
	Idle int
	// FrameTimeout is goswoole's frame_timeout in seconds: a connection that leaves a frame
	// unfinished this long is closed (slowloris; 0: the library's default, 60 s).
	FrameTimeout int
	// TLSCert and TLSKey, both set, serve TLS with this PEM certificate and key: goswoole on
	// a SockTCP|SockSSL port (ssl_cert_file, ssl_key_file), netstd through crypto/tls's
	// listener (still a goroutine per connection). The other servers refuse them.
	TLSCert, TLSKey string
}

// Start starts the named server ("netstd", "goswoole" or "gnet") on addr (host:port) with
// the default Options.
func Start(name, addr string) (Server, error) { return StartWith(name, addr, Options{}) }

// lengthFraming and idleSeconds are Options.Length and Options.Idle for the goswoole server
// StartWith starts.
var (
	lengthFraming   bool
	idleSeconds     int
	frameTimeout    int
	tlsCert, tlsKey string
	reactorNum      int
)

// StartWith starts the named server on addr with o.
func StartWith(name, addr string, o Options) (Server, error) {
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, errors.New("TLS needs both a certificate and a key file")
	}
	if o.TLSCert != "" && name != "netstd" && name != "goswoole" {
		return nil, fmt.Errorf("%s: TLS is served by netstd and goswoole only", name)
	}
	switch name {
	case "netstd":
		if o.TLSCert != "" {
			return StartNetStdTLS(addr, o.TLSCert, o.TLSKey)
		}
		return StartNetStd(addr)
	case "goswoole":
		mode := swoole.ModeBase
		switch {
		case o.Process && o.Thread:
			return nil, errors.New("goswoole: Process and Thread are two modes: pick one")
		case o.Process:
			mode = swoole.ModeProcess
		case o.Thread:
			mode = swoole.ModeThread
		}
		lengthFraming, idleSeconds, reactorNum, frameTimeout = o.Length, o.Idle, o.Reactors, o.FrameTimeout
		tlsCert, tlsKey = o.TLSCert, o.TLSKey
		return StartSwooleWith(addr, o.MaxConn, o.Workers, mode)
	case "gnet":
		return StartGnetWith(addr, o.Multicore)
	case "floor":
		return StartFloor(addr)
	case "uring":
		return StartUring(addr)
	case "procfloor":
		// Not in Names: it starts its worker by running this program again, so only from a
		// command whose main calls ProcFloorWorker first (cmd/procfloorecho).
		return StartProcFloor(addr, ProcFloorTransport, o.Workers)
	}
	return nil, fmt.Errorf("unknown server %q: use netstd, goswoole, gnet, floor or uring", name)
}

// ---- netstd: Go's net package, a goroutine per connection ----

type netStd struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// StartNetStd starts an echo server on the standard library: a goroutine per connection
// reading into a 64 KiB buffer and writing back what it read.
func StartNetStd(addr string) (Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &netStd{ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Go(s.accept)
	return s, nil
}

// StartNetStdTLS is StartNetStd serving TLS: crypto/tls's listener around the net listener,
// with the PEM certificate and key from certFile and keyFile; each connection's goroutine
// does its handshake (on its first Read) and then echoes.
func StartNetStdTLS(addr, certFile, keyFile string) (Server, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &netStd{ln: tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}), conns: map[net.Conn]struct{}{}}
	s.wg.Go(s.accept)
	return s, nil
}

func (s *netStd) Addr() string { return s.ln.Addr().String() }

func (s *netStd) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		s.mu.Lock()
		if s.conns == nil { // closing
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			echo(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		})
	}
}

// echo copies c's input back to it until EOF or an error (io.Copy's loop, 64 KiB buffer).
func echo(c net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (s *netStd) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.conns = nil
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// ---- goswoole: ModeBase, worker_num 1 (or N worker processes), ModeProcess or ModeThread ----

type swooleServer struct {
	s    *swoole.Server
	addr string
	done chan error
}

// StartSwoole starts goswoole's echo server: ModeBase, one worker, open_tcp_nodelay on,
// OnReceive sends the data back. It returns once the server accepts connections.
func StartSwoole(addr string) (Server, error) { return StartSwooleWith(addr, 0, 1, swoole.ModeBase) }

// StartSwooleWith is StartSwoole with max_connection set to maxConn (0: the default),
// worker_num to workers and the given mode (ModeBase, ModeProcess or ModeThread; reactor_num
// from Options.Reactors, given to StartWith). ModeThread runs in this process: it returns once
// a worker loop runs (OnWorkerStart). With worker processes
// (ModeBase with workers > 1, or ModeProcess) the calling process becomes the manager (in
// ModeProcess, the master, which also holds every connection in its reactor loops) and the
// workers are this program started again with the same arguments (docs/process-model.md):
// StartSwooleWith returns in the manager or master once every worker runs (OnManagerStart;
// in ModeProcess OnStart runs in the master too, but before the workers are up), and in a
// worker once its loop runs (OnWorkerStart); a worker exits when it is stopped.
func StartSwooleWith(addr string, maxConn, workers int, mode swoole.Mode) (Server, error) {
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	sock := swoole.SockTCP
	if tlsCert != "" {
		sock |= swoole.SockSSL
	}
	s, err := swoole.NewServer(host, port, mode, sock)
	if err != nil {
		return nil, err
	}
	if tlsCert != "" {
		if err := s.Set(swoole.Settings{SSLCertFile: tlsCert, SSLKeyFile: tlsKey}); err != nil {
			return nil, err
		}
	}
	// TCP_NODELAY as the peers have it (Go's net and gnet turn it on by default; Swoole's
	// open_tcp_nodelay defaults to false, and Nagle's algorithm then holds back the tail of a
	// large or pipelined echo until the client's delayed ACK, up to 40 ms).
	if err := s.Set(swoole.Settings{WorkerNum: max(workers, 1), ReactorNum: reactorNum, OpenTCPNoDelay: true, MaxConnection: maxConn, LogLevel: swoole.LogLevelWarning}); err != nil {
		return nil, err
	}
	if frameTimeout > 0 {
		if err := s.SetOptions(map[string]any{"frame_timeout": frameTimeout}); err != nil {
			return nil, err
		}
	}
	if idleSeconds > 0 {
		if err := s.SetOptions(map[string]any{"heartbeat_check_interval": 1, "heartbeat_idle_time": idleSeconds}); err != nil {
			return nil, err
		}
	}
	if lengthFraming {
		if err := s.SetOptions(map[string]any{"open_length_check": true, "package_length_type": "N", "package_length_offset": 0,
			"package_body_offset": 4, "package_max_length": 2 << 20}); err != nil {
			return nil, err
		}
	}
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		_ = s.Send(fd, data)
	})
	started := make(chan struct{})
	var once sync.Once
	up := func() { once.Do(func() { close(started) }) }
	if mode == swoole.ModeThread {
		s.OnWorkerStart(func(*swoole.Server, int) { up() })
	} else if workers > 1 || mode == swoole.ModeProcess {
		s.OnManagerStart(func(*swoole.Server) { up() })
		s.OnWorkerStart(func(*swoole.Server, int) { up() })
	} else {
		s.OnStart(func(*swoole.Server) { up() })
	}
	sv := &swooleServer{s: s, addr: net.JoinHostPort(host, strconv.Itoa(s.Ports()[0].Port())), done: make(chan error, 1)}
	go func() { sv.done <- s.Start() }()
	select {
	case <-started:
		return sv, nil
	case err := <-sv.done:
		if err == nil {
			err = errors.New("goswoole: Start returned before the server started")
		}
		return nil, err
	case <-time.After(10 * time.Second):
		_ = s.Shutdown()
		return nil, errors.New("goswoole: server did not start within 10s")
	}
}

func (s *swooleServer) Addr() string { return s.addr }

func (s *swooleServer) Close() error {
	// The library stops on SIGTERM by itself, so the server may be stopping or stopped
	// already: Shutdown's refusal then says nothing Start will not.
	_ = s.s.Shutdown()
	select {
	case err := <-s.done:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("goswoole: Start did not return within 10s of Shutdown")
	}
}

// ---- gnet v2: one event loop, or one per CPU ----

type gnetServer struct {
	gnet.BuiltinEventEngine
	eng    gnet.Engine
	addr   string
	booted chan error
	done   chan error
}

// StartGnet starts gnet v2's echo server with a single event loop (multicore off), the fair
// match for a one-worker goswoole server.
func StartGnet(addr string) (Server, error) { return StartGnetWith(addr, false) }

// StartGnetWith starts gnet v2's echo server, with an event loop per CPU the process may run
// on if multicore (gnet takes runtime.NumCPU, which follows the affinity mask: one loop when
// the process is pinned to one core).
func StartGnetWith(addr string, multicore bool) (Server, error) {
	s := &gnetServer{booted: make(chan error, 1), done: make(chan error, 1)}
	go func() {
		s.done <- gnet.Run(s, "tcp://"+addr,
			gnet.WithMulticore(multicore),
			gnet.WithLogger(gnetLogger{}),
		)
	}()
	select {
	case err := <-s.booted:
		if err != nil {
			_ = s.Close()
			return nil, err
		}
		return s, nil
	case err := <-s.done:
		if err == nil {
			err = errors.New("gnet: Run returned before the server booted")
		}
		return nil, err
	case <-time.After(10 * time.Second):
		return nil, errors.New("gnet: server did not boot within 10s")
	}
}

// OnBoot learns the real port from the listener.
func (s *gnetServer) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	fd, err := eng.Dup()
	if err != nil {
		s.booted <- err
		return gnet.None
	}
	defer syscall.Close(fd)
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		s.booted <- os.NewSyscallError("getsockname", err)
		return gnet.None
	}
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		s.addr = net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	case *syscall.SockaddrInet6:
		s.addr = net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	default:
		s.booted <- fmt.Errorf("gnet: unexpected listener address %T", sa)
		return gnet.None
	}
	s.booted <- nil
	return gnet.None
}

// OnTraffic echoes whatever arrived.
func (s *gnetServer) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Next(-1)
	_, _ = c.Write(buf)
	return gnet.None
}

func (s *gnetServer) Addr() string { return s.addr }

func (s *gnetServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.eng.Stop(ctx); err != nil {
		return err
	}
	select {
	case err := <-s.done:
		return err
	case <-ctx.Done():
		return errors.New("gnet: Run did not return within 10s of Stop")
	}
}

// gnetLogger sends gnet's warnings and errors to slog (stderr); gnet's default logger writes
// its INFO lines to stdout, where the commands print their address.
type gnetLogger struct{}

func (gnetLogger) Debugf(string, ...any) {}
func (gnetLogger) Infof(string, ...any)  {}
func (gnetLogger) Warnf(format string, args ...any) {
	slog.Warn("gnet: " + fmt.Sprintf(format, args...))
}
func (gnetLogger) Errorf(format string, args ...any) {
	slog.Error("gnet: " + fmt.Sprintf(format, args...))
}
func (gnetLogger) Fatalf(format string, args ...any) {
	slog.Error("gnet: " + fmt.Sprintf(format, args...))
	os.Exit(1)
}

func splitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("bad port in %q: %w", addr, err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}
