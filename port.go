package swoole

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/goswoole/swoole/internal/framing"
	"github.com/goswoole/swoole/internal/reactor"
	"github.com/goswoole/swoole/internal/sys"
	"golang.org/x/sys/unix"
)

// Port is one listening socket of a server (Swoole's Server\Port). It inherits the server's
// settings and callbacks until it sets its own with Set, SetOptions or On.
type Port struct {
	s     *Server
	index int
	host  string
	port  int
	sock  SockType
	fd    int

	mu     sync.Mutex
	given  Settings // what the port's own Set/SetOptions gave
	hasSet bool
	cb     portCallbacks

	eff   Settings        // resolved at Start: the server's settings with the port's on top
	frame *framing.Config // resolved at Start: how stream input splits into messages
	ecb   portCallbacks   // resolved at Start: the port's handlers, else the server's
	ln    *reactor.Listener
	file  *os.File // GetSocket's duplicate, closed at shutdown

	// tls is a SockSSL port's TLS configuration (tls.go), resolved at Start and replaced
	// when a reload re-reads the certificate files (reloadTLS); accepts load it.
	tls atomic.Pointer[tls.Config]

	adopted   bool // not this process's to unlink (a unix path): a worker process's copy of the manager's socket, or one handed over to a new process (Upgrade)
	inherited bool // passed by the process this one replaces (daemonize's starter, Upgrade's old process): with SO_REUSEPORT on it already, it is not bound again
	ownFD     bool // a worker process's own SO_REUSEPORT socket, closed when the worker stops

	// acceptedNoDelay: the listening socket's TCP_NODELAY matches open_tcp_nodelay, and
	// accepted sockets inherit it, so Accept need not set it on each one (noteListener).
	acceptedNoDelay bool
}

// noteListener records what accepted sockets inherit from the listening socket, read from
// the socket itself (set by listen here, or by the process that handed it over). Call it
// before the port's listener is watched.
func (p *Port) noteListener() {
	p.acceptedNoDelay = false
	if b := p.sock.base(); b != SockTCP && b != SockTCP6 {
		return
	}
	on, err := unix.GetsockoptInt(p.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY)
	p.acceptedNoDelay = err == nil && (on != 0) == p.eff.OpenTCPNoDelay
}

func (s *Server) bindPort(host string, port int, sock SockType) (*Port, error) {
	spec := sys.ListenSpec{Host: host, Port: port, Stream: sock.isStream()}
	switch sock.base() {
	case SockTCP, SockUDP:
		spec.Family = sys.FamilyInet4
	case SockTCP6, SockUDP6:
		spec.Family = sys.FamilyInet6
	case SockUnixStream, SockUnixDgram:
		spec.Family = sys.FamilyUnix
		spec.Port = 0
	default:
		return nil, newError(ErrBadSocketType, "unknown socket type %d: use SockTCP, SockTCP6, SockUDP, SockUDP6, SockUnixStream or SockUnixDgram", int(sock))
	}
	if sock&SockSSL != 0 && !spec.Stream {
		return nil, newError(ErrBadSocketType, "SockSSL needs a stream socket (SockTCP, SockTCP6 or SockUnixStream), not %v", sock.base())
	}
	if spec.Family != sys.FamilyUnix && (port < 0 || port > 65535) {
		return nil, newError(ErrBadPort, "port %d is out of range: use 0 (any free port) to 65535", port)
	}
	if p, ok, err := s.adoptPort(len(s.ports), host, sock, spec.Port); ok {
		return p, err // a worker process: the manager bound it
	}
	fd, got, err := sys.Bind(spec)
	if err != nil {
		if errors.Is(err, sys.ErrResolve) {
			return nil, &Error{Code: ErrBadHostAddr, Msg: "swoole: cannot listen on " + quote(host) + ": give an IP address of the socket's family or a resolvable name", Err: err}
		}
		var errno syscall.Errno
		if errors.As(err, &errno) && errno == syscall.EADDRINUSE {
			return nil, wrapErrno("", err, "cannot bind %s port %d: address already in use (another server listens there; pick another port or 0)", host, port)
		}
		return nil, wrapErrno("", err, "cannot bind %s port %d", host, port)
	}
	if spec.Stream {
		// Listen at once, so the port is held from NewServer/AddListener on (another socket
		// cannot take it before Start); Start listens again with the configured backlog.
		if err := sys.Listen(fd, defaultBacklog); err != nil {
			syscall.Close(fd)
			return nil, wrapErrno("", err, "cannot listen on %s port %d", host, got)
		}
	}
	return &Port{s: s, host: host, port: got, sock: sock, fd: fd}, nil
}

func quote(s string) string { return "\"" + s + "\"" }

// addr names the port in messages: host:port, or the path of a unix socket.
func (p *Port) addr() string {
	if b := p.sock.base(); b == SockUnixStream || b == SockUnixDgram {
		return p.host
	}
	return net.JoinHostPort(p.host, strconv.Itoa(p.port))
}

// Port returns the port number the socket is bound to (the one the kernel picked for port 0;
// 0 for unix sockets).
func (p *Port) Port() int { return p.port }

// Host returns the address or path given when the port was bound.
func (p *Port) Host() string { return p.host }

// Type returns the port's socket type.
func (p *Port) Type() SockType { return p.sock }

// GetSocket returns the listening socket as an *os.File, usable with setsockopt through
// File.SyscallConn. The file is a duplicate of the descriptor: closing it does not close the
// port. The server closes it at shutdown.
func (p *Port) GetSocket() (*os.File, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.file != nil {
		return p.file, nil
	}
	if p.fd < 0 {
		return nil, p.s.fail(newError(ErrOperationNotSupport, "GetSocket: this process does not hold port %d's listening socket: only the processes that accept on a stream port hold it (ModeBase's workers, a ModeProcess master, a single process); call GetSocket there", p.port))
	}
	nfd, err := syscall.Dup(p.fd)
	if err != nil {
		return nil, p.s.fail(wrapErrno("dup", err, "cannot duplicate the listening socket"))
	}
	syscall.CloseOnExec(nfd)
	p.file = os.NewFile(uintptr(nfd), "goswoole-listener")
	return p.file, nil
}

// GetSocket returns the first port's listening socket (see Port.GetSocket).
func (s *Server) GetSocket() (*os.File, error) { return s.ports[0].GetSocket() }

// Set gives the port settings of its own (Swoole's Port::set): protocol, heartbeat idle time,
// socket and buffer options. A server-only setting (worker_num, dispatch_mode, ...) is an error.
// Only before Start.
func (p *Port) Set(settings Settings) error {
	if p.s.state.Load() != stateNew {
		return p.s.fail(newError(ErrRefused, "Port.Set after Start: settings are fixed once the server runs"))
	}
	if err := portSettingsOnly(settings); err != nil {
		return p.s.fail(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	next := p.given.merge(settings)
	if err := next.withDefaults().validate(); err != nil {
		return p.s.fail(err)
	}
	p.given, p.hasSet = next, true
	return nil
}

// SetOptions is Set with Swoole's key names; only port keys are accepted.
func (p *Port) SetOptions(opts map[string]any) error {
	if p.s.state.Load() != stateNew {
		return p.s.fail(newError(ErrRefused, "Port.SetOptions after Start: settings are fixed once the server runs"))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	next := p.given
	if err := applyOptions(&next, opts, true); err != nil {
		return p.s.fail(err)
	}
	if err := next.withDefaults().validate(); err != nil {
		return p.s.fail(err)
	}
	p.given, p.hasSet = next, true
	return nil
}

// On registers a handler for this port only: Connect, Receive, Close, Packet, BufferFull or
// BufferEmpty. Other names are an error. Only before Start.
func (p *Port) On(name string, cb any) error {
	n, err := eventName(name)
	if err != nil {
		return p.s.fail(err)
	}
	if p.s.state.Load() != stateNew {
		return p.s.fail(newError(ErrRefused, "Port.On(%q) after Start: register callbacks before calling Start", name))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	handled, err := p.cb.set(n, cb)
	if !handled {
		return p.s.fail(newError(ErrInvalidParams, "%q is a server event: register it on the Server; a Port takes Connect, Receive, Close, Packet, BufferFull and BufferEmpty", name))
	}
	return p.s.fail(err)
}

func (p *Port) setCB(name string, cb any) {
	if p.s.state.Load() != stateNew {
		p.s.log.Warn("swoole: a port callback registered after Start is ignored", "event", name)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = p.cb.set(name, cb)
}

// OnConnect registers this port's Connect handler.
func (p *Port) OnConnect(cb func(s *Server, fd int64, reactorID int)) { p.setCB("connect", cb) }

// OnReceive registers this port's Receive handler (data valid only during the call).
func (p *Port) OnReceive(cb func(s *Server, fd int64, reactorID int, data []byte)) {
	p.setCB("receive", cb)
}

// OnClose registers this port's Close handler.
func (p *Port) OnClose(cb func(s *Server, fd int64, reactorID int)) { p.setCB("close", cb) }

// OnPacket registers this port's Packet handler.
func (p *Port) OnPacket(cb func(s *Server, data []byte, client ClientAddr)) { p.setCB("packet", cb) }

// resolve computes the port's settings and callbacks at Start.
func (p *Port) resolve(server Settings, cb portCallbacks) {
	p.eff = server
	if p.hasSet {
		// As Swoole's: a port that never called set takes the server's settings whole; one
		// that did has only its own port settings (the protocol among them: a length-framed
		// server with a port set to open_eof_split frames that port by EOF alone), with the
		// defaults for the rest.
		p.eff = withoutPortSettings(server).merge(p.given).withDefaults()
	}
	p.ecb = p.cb.inherit(cb)
}
