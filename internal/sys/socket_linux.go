//go:build linux

package sys

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// Family of a listening socket.
const (
	FamilyInet4 = unix.AF_INET
	FamilyInet6 = unix.AF_INET6
	FamilyUnix  = unix.AF_UNIX
)

// ListenSpec describes a socket to bind.
type ListenSpec struct {
	Family    int    // FamilyInet4, FamilyInet6 or FamilyUnix
	Stream    bool   // SOCK_STREAM, else SOCK_DGRAM
	Host      string // IP address or host name; the path for unix sockets
	Port      int    // 0 picks a free port
	ReusePort bool   // SO_REUSEPORT before bind
}

// ErrResolve is wrapped by Bind when the host does not resolve to an address of the family.
var ErrResolve = errors.New("host does not resolve")

// ResolveIP turns host into an address of the family: literal addresses as they are, names
// through the system resolver. "" means the wildcard address.
func ResolveIP(family int, host string) (netip.Addr, error) {
	if host == "" {
		if family == FamilyInet6 {
			return netip.IPv6Unspecified(), nil
		}
		return netip.IPv4Unspecified(), nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if family == FamilyInet4 && a.Is4In6() {
			a = a.Unmap()
		}
		if (family == FamilyInet4) != a.Is4() {
			return netip.Addr{}, fmt.Errorf("%w: %q is not an IPv%d address", ErrResolve, host, map[bool]int{true: 4, false: 6}[family == FamilyInet4])
		}
		return a, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(context.Background(), map[bool]string{true: "ip4", false: "ip6"}[family == FamilyInet4], host)
	if err != nil || len(ips) == 0 {
		return netip.Addr{}, fmt.Errorf("%w: %q: %v", ErrResolve, host, err)
	}
	a := ips[0]
	if family == FamilyInet4 {
		a = a.Unmap()
	}
	return a, nil
}

// Sockaddr builds the unix.Sockaddr for an address and port.
func Sockaddr(a netip.Addr, port int) unix.Sockaddr {
	if a.Is4() {
		return &unix.SockaddrInet4{Port: port, Addr: a.As4()}
	}
	return &unix.SockaddrInet6{Port: port, Addr: a.As16()}
}

// Bind creates a non-blocking, close-on-exec socket bound to the spec's address (not yet
// listening) and returns it with the port it got.
func Bind(spec ListenSpec) (fd int, port int, err error) {
	var sa unix.Sockaddr
	switch spec.Family {
	case FamilyUnix:
		if spec.Host == "" {
			return -1, 0, fmt.Errorf("%w: a unix socket needs a path", ErrResolve)
		}
		if fi, err := os.Lstat(spec.Host); err == nil && fi.Mode()&os.ModeSocket != 0 && spec.Stream {
			// A socket file left by an earlier run: take its place, as Swoole does.
			if !alive(spec.Host) {
				os.Remove(spec.Host)
			}
		}
		sa = &unix.SockaddrUnix{Name: spec.Host}
	default:
		a, err := ResolveIP(spec.Family, spec.Host)
		if err != nil {
			return -1, 0, err
		}
		sa = Sockaddr(a, spec.Port)
	}
	typ := unix.SOCK_DGRAM
	if spec.Stream {
		typ = unix.SOCK_STREAM
	}
	fd, err = unix.Socket(spec.Family, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, os.NewSyscallError("socket", err)
	}
	fail := func(op string, e error) (int, int, error) {
		unix.Close(fd)
		return -1, 0, os.NewSyscallError(op, e)
	}
	if spec.Family != FamilyUnix {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fail("setsockopt", err)
		}
		if spec.Family == FamilyInet6 {
			// "::" also takes IPv4, as on Linux by default and in Swoole.
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
		}
	}
	if spec.ReusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fail("setsockopt", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	port = spec.Port
	if spec.Family != FamilyUnix {
		got, err := unix.Getsockname(fd)
		if err != nil {
			return fail("getsockname", err)
		}
		switch g := got.(type) {
		case *unix.SockaddrInet4:
			port = g.Port
		case *unix.SockaddrInet6:
			port = g.Port
		}
	}
	return fd, port, nil
}

// alive reports whether something accepts connections on the unix socket path.
func alive(path string) bool {
	c, err := net.Dial("unix", path)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Listen starts listening on a bound stream socket.
func Listen(fd, backlog int) error {
	return os.NewSyscallError("listen", unix.Listen(fd, backlog))
}

// SetNoDelay sets TCP_NODELAY.
func SetNoDelay(fd int) error {
	return os.NewSyscallError("setsockopt", unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1))
}

// SetKeepAlive turns on TCP keepalive with the given idle, interval (seconds) and count.
func SetKeepAlive(fd, idle, interval, count int) error {
	errs := []error{
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1),
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, idle),
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, interval),
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, count),
	}
	return os.NewSyscallError("setsockopt", errors.Join(errs...))
}

// SetInt sets an integer socket option.
func SetInt(fd, level, opt, v int) error {
	return os.NewSyscallError("setsockopt", unix.SetsockoptInt(fd, level, opt, v))
}

// PeerAddr splits a peer address into family, IP bytes (4 or 16), port and unix path.
func PeerAddr(sa unix.Sockaddr) (family int, ip []byte, port int, path string) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return FamilyInet4, a.Addr[:], a.Port, ""
	case *unix.SockaddrInet6:
		return FamilyInet6, a.Addr[:], a.Port, ""
	case *unix.SockaddrUnix:
		if a.Name == "@" { // how x/sys shows an unnamed peer
			return FamilyUnix, nil, 0, ""
		}
		return FamilyUnix, nil, 0, a.Name
	}
	return 0, nil, 0, ""
}
