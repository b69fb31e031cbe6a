package swoole

import (
	"context"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/reactor"
	"github.com/goswoole/swoole/internal/sys"
)

// Packet delivers a datagram to the loop's events: OnPacket, or a worker.
func (w *worker) Packet(ln *reactor.Listener, data []byte, from unix.Sockaddr) {
	w.ev.packet(w, ln.Owner.(*Port), data, from)
}

// packetCallback runs OnPacket with the datagram's sender.
func (w *worker) packetCallback(p *Port, data []byte, from unix.Sockaddr) {
	s := w.s
	client := clientAddr(p, from)
	ctr := s.table.Counters()
	ctr.TotalRecvBytes.Add(int64(len(data)))
	ctr.RequestCount.Add(1)
	w.slot.RequestCount.Add(1)
	w.slot.Status.Store(WorkerBusy)
	p.ecb.packet(s, data, client)
	w.slot.Status.Store(WorkerIdle)
	if w.maxRequests > 0 {
		w.countRequest()
	}
}

// clientAddr is what OnPacket tells of a datagram's sender, received on port p.
func clientAddr(p *Port, from unix.Sockaddr) ClientAddr {
	client := ClientAddr{ServerSocket: p.fd, ServerPort: p.port}
	switch a := from.(type) {
	case *unix.SockaddrInet4:
		client.Address, client.Port = netip.AddrFrom4(a.Addr).String(), a.Port
	case *unix.SockaddrInet6:
		client.Address, client.Port = netip.AddrFrom16(a.Addr).Unmap().String(), a.Port
	case *unix.SockaddrUnix:
		client.Address = a.Name
	}
	return client
}

// PacketTooLarge logs a datagram dropped for being larger than the read buffer.
func (w *worker) PacketTooLarge(ln *reactor.Listener, size, limit int) {
	if ok, left := w.s.logLimits[logDgramLarge].allow(); ok {
		p := ln.Owner.(*Port)
		w.s.log.Warn("swoole: datagram dropped: larger than the read buffer", "port", p.addr(), "size", size, "limit", limit, "code", ErrPackageLengthTooLarge, "suppressed", left)
	}
}

// dgramPort finds the datagram port to send from: the one whose descriptor is serverSocket
// (> 0), else the first of the wanted type.
func (s *Server) dgramPort(call string, want SockType, serverSocket int) (*Port, error) {
	for _, p := range s.ports {
		if serverSocket > 0 {
			if p.fd == serverSocket {
				if p.sock.isStream() {
					return nil, s.fail(newError(ErrInvalidParams, "%s: server socket %d is a stream listener: give a datagram port's socket (ClientAddr.ServerSocket) or -1", call, serverSocket))
				}
				return p, nil
			}
			continue
		}
		if p.sock.base() == want {
			return p, nil
		}
	}
	if serverSocket > 0 {
		return nil, s.fail(newError(ErrInvalidParams, "%s: no listener has socket %d: give ClientAddr.ServerSocket or -1", call, serverSocket))
	}
	return nil, s.fail(newError(ErrRefused, "%s: the server has no %v listener: add one with AddListener(host, port, %s)", call, want, map[SockType]string{SockUDP: "SockUDP", SockUDP6: "SockUDP6", SockUnixDgram: "SockUnixDgram"}[want]))
}

// SendTo sends a datagram to ip:port from a UDP port: serverSocket picks the listener by its
// descriptor (ClientAddr.ServerSocket), -1 the first UDP listener of the address's family
// (UDP for IPv4, UDP6 for IPv6). ip may be a host name ("localhost"); a name that does not
// resolve is ErrDNSLookup (711), a port outside 1–65535 ErrBadPort (723).
func (s *Server) SendTo(ip string, port int, data []byte, serverSocket int) error {
	if err := s.running("SendTo"); err != nil {
		return err
	}
	if port < 1 || port > 65535 {
		return s.fail(newError(ErrBadPort, "SendTo: port %d is out of range: use 1 to 65535", port))
	}
	if len(data) == 0 {
		return s.fail(newError(ErrNoPayload, "SendTo: data is empty: nothing to send"))
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		ips, lerr := net.DefaultResolver.LookupNetIP(context.Background(), "ip", ip)
		if lerr != nil || len(ips) == 0 {
			return s.fail(&Error{Code: ErrDNSLookup, Msg: "swoole: SendTo: host " + quote(ip) + " does not resolve: give an IP address or a resolvable name", Err: lerr})
		}
		addr = ips[0]
		for _, a := range ips {
			if a.Unmap().Is4() {
				addr = a // prefer IPv4, as Swoole's resolver does
				break
			}
		}
	}
	addr = addr.Unmap()
	want := SockUDP
	if addr.Is6() {
		want = SockUDP6
	}
	p, err := s.dgramPort("SendTo", want, serverSocket)
	if err != nil {
		return err
	}
	to := sys.Sockaddr(addr, port)
	if p.sock.base() == SockUDP6 && addr.Is4() {
		to = &unix.SockaddrInet6{Port: port, Addr: netip.AddrFrom16(addr.As16()).As16()}
	}
	return s.sendDgram("SendTo", p, data, to)
}

// SendToSocket sends a datagram to the unix datagram socket at path (the Address of a
// ClientAddr from OnPacket) from a SockUnixDgram port; serverSocket picks the port as in
// SendTo.
func (s *Server) SendToSocket(path string, data []byte, serverSocket int) error {
	if err := s.running("SendToSocket"); err != nil {
		return err
	}
	if path == "" {
		return s.fail(newError(ErrInvalidParams, "SendToSocket: the peer path is empty: an unnamed unix socket cannot be answered"))
	}
	if len(data) == 0 {
		return s.fail(newError(ErrNoPayload, "SendToSocket: data is empty: nothing to send"))
	}
	p, err := s.dgramPort("SendToSocket", SockUnixDgram, serverSocket)
	if err != nil {
		return err
	}
	return s.sendDgram("SendToSocket", p, data, &unix.SockaddrUnix{Name: path})
}

func (s *Server) sendDgram(call string, p *Port, data []byte, to unix.Sockaddr) error {
	for {
		err := unix.Sendto(p.fd, data, unix.MSG_DONTWAIT, to)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return s.fail(wrapErrno("sendto", err, "%s: cannot send %d bytes from port %s", call, len(data), p.addr()))
		}
		ctr := s.table.Counters()
		ctr.TotalSendBytes.Add(int64(len(data)))
		ctr.ResponseCount.Add(1)
		return nil
	}
}
