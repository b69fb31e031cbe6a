//go:build linux

package reactor

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// acceptBuf is a loop's scratch space for accept4: the raw peer address and the Sockaddr
// values handed to Handler.Accept. unix.Accept4 allocates a RawSockaddrAny on every call
// (EAGAIN included) and a Sockaddr per connection, about 200 bytes of garbage per accepted
// connection; reusing these keeps accepting allocation free for TCP peers, which lowers the
// heap (and so the resident memory) a server grows to while it takes many connections.
type acceptBuf struct {
	rsa unix.RawSockaddrAny
	in4 unix.SockaddrInet4
	in6 unix.SockaddrInet6
}

// accept4 is unix.Accept4 without its allocations: the Sockaddr it returns for an IPv4 or
// IPv6 peer is the loop's own and is valid only until the next call (Handler.Accept's peer
// is valid only during the call). A unix-socket peer gets a new SockaddrUnix, named as
// unix.Accept4 names it ("@" and the rest for an abstract or unnamed peer).
func (l *Loop) accept4(fd, flags int) (int, unix.Sockaddr, error) {
	b := l.ab
	b.rsa = unix.RawSockaddrAny{} // an unnamed unix peer reports no path bytes
	alen := uint32(unix.SizeofSockaddrAny)
	r, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&b.rsa)),
		uintptr(unsafe.Pointer(&alen)), uintptr(flags), 0, 0)
	if e != 0 {
		return -1, nil, e
	}
	nfd := int(r)
	switch b.rsa.Addr.Family {
	case unix.AF_INET:
		pp := (*unix.RawSockaddrInet4)(unsafe.Pointer(&b.rsa))
		p := (*[2]byte)(unsafe.Pointer(&pp.Port))
		b.in4 = unix.SockaddrInet4{Port: int(p[0])<<8 | int(p[1]), Addr: pp.Addr}
		return nfd, &b.in4, nil
	case unix.AF_INET6:
		pp := (*unix.RawSockaddrInet6)(unsafe.Pointer(&b.rsa))
		p := (*[2]byte)(unsafe.Pointer(&pp.Port))
		b.in6 = unix.SockaddrInet6{Port: int(p[0])<<8 | int(p[1]), ZoneId: pp.Scope_id, Addr: pp.Addr}
		return nfd, &b.in6, nil
	case unix.AF_UNIX:
		pp := (*unix.RawSockaddrUnix)(unsafe.Pointer(&b.rsa))
		if pp.Path[0] == 0 {
			pp.Path[0] = '@' // abstract (or unnamed) peer, shown as unix.Accept4 shows it
		}
		n := 0
		for n < len(pp.Path) && pp.Path[n] != 0 {
			n++
		}
		return nfd, &unix.SockaddrUnix{Name: string(unsafe.Slice((*byte)(unsafe.Pointer(&pp.Path[0])), n))}, nil
	}
	unix.Close(nfd)
	return -1, nil, unix.EAFNOSUPPORT
}
