//go:build linux

package reactor

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The fuzz target drives the code between the socket and crypto/tls (the adapter's Read,
// driveTLS) with a real client's records cut at arbitrary points, the way short reads cut
// them, and with a corrupted byte: the plaintext must come out whole and in order, or, after a
// corruption, as a prefix of the original followed by the connection's failure (never a
// panic, never bytes that were not sent).

var fuzzTLS struct {
	once   sync.Once
	server *tls.Config
	client *tls.Config
}

func fuzzConfigs(t testing.TB) (*tls.Config, *tls.Config) {
	fuzzTLS.once.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fuzz"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			DNSNames: []string{"fuzz"}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			IsCA: true, BasicConstraintsValid: true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		cert, _ := x509.ParseCertificate(der)
		pool := x509.NewCertPool()
		pool.AddCert(cert)
		fuzzTLS.server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
		fuzzTLS.client = &tls.Config{RootCAs: pool, ServerName: "fuzz"}
	})
	return fuzzTLS.server, fuzzTLS.client
}

// fuzzHandler collects what the loop delivers.
type fuzzHandler struct {
	data   []byte
	closed CloseReason
}

func (h *fuzzHandler) Accept(*Listener, int, unix.Sockaddr) *Conn    { return nil }
func (h *fuzzHandler) Opened(*Conn)                                  {}
func (h *fuzzHandler) Data(_ *Conn, p []byte)                        { h.data = append(h.data, p...) }
func (h *fuzzHandler) Closed(_ *Conn, why CloseReason, _ unix.Errno) { h.closed = why }
func (h *fuzzHandler) BufferFull(*Conn)                              {}
func (h *fuzzHandler) BufferEmpty(*Conn)                             {}
func (h *fuzzHandler) Packet(*Listener, []byte, unix.Sockaddr)       {}
func (h *fuzzHandler) PacketTooLarge(*Listener, int, int)            {}
func (h *fuzzHandler) HandshakeFailed(*Conn, error)                  {}
func (c *fuzzClientConn) LocalAddr() net.Addr                        { return tlsAddr{} }
func (c *fuzzClientConn) RemoteAddr() net.Addr                       { return tlsAddr{} }
func (c *fuzzClientConn) SetDeadline(time.Time) error                { return nil }
func (c *fuzzClientConn) SetReadDeadline(time.Time) error            { return nil }
func (c *fuzzClientConn) SetWriteDeadline(time.Time) error           { return nil }
func (c *fuzzClientConn) Close() error                               { return nil }
func (c *fuzzClientConn) Read(p []byte) (int, error)                 { return unix.Read(c.fd, p) }
func (c *fuzzClientConn) setCapture(v bool)                          { c.mu.Lock(); c.capturing = v; c.mu.Unlock() }
func (c *fuzzClientConn) captured() []byte                           { c.mu.Lock(); defer c.mu.Unlock(); return c.out }

// fuzzClientConn is the client's transport: it reads what the server wrote to the socket, and
// its writes go to the server's handshake (fed as the loop would) or, after the handshake, are
// kept to be fed to driveTLS in pieces.
type fuzzClientConn struct {
	fd        int
	hs        *handshake
	mu        sync.Mutex
	capturing bool
	out       []byte
}

func (c *fuzzClientConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.capturing {
		c.out = append(c.out, p...)
		return len(p), nil
	}
	c.hs.feed(p)
	return len(p), nil
}

// fuzzEstablished returns a loop and a TLS connection whose handshake with client is done, and
// the client's transport.
func fuzzEstablished(t testing.TB) (*Loop, *Conn, *fuzzHandler, *tls.Conn, *fuzzClientConn) {
	srvCfg, cliCfg := fuzzConfigs(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := &fuzzHandler{}
	l, err := New(h, Config{ReadBufferSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	c := NewConn(fds[0], nil, ConnOptions{TLS: srvCfg})
	c.loop = l
	l.setConn(fds[0], c)
	l.nconns++
	tr := &fuzzClientConn{fd: fds[1], hs: c.tls.hs}
	client := tls.Client(tr, cliCfg)
	errc := make(chan error, 1)
	go func() { errc <- c.tls.tc.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	tr.setCapture(true)
	hs := c.tls.hs
	hs.mu.Lock()
	rest := hs.pending
	hs.mu.Unlock()
	c.mu.Lock()
	c.tls.established, c.tls.hs, c.tls.in = true, nil, rest
	c.mu.Unlock()
	t.Cleanup(func() {
		l.finalClose(c)
		unix.Close(fds[1])
		l.Close()
	})
	return l, c, h, client, tr
}

func FuzzTLSFeed(f *testing.F) {
	f.Add([]byte("hello"), []byte{1, 2, 3}, uint32(0))
	f.Add(bytes.Repeat([]byte("x"), 40000), []byte{5, 0, 255, 7}, uint32(0))
	f.Add([]byte("corrupt me"), []byte{}, uint32(12))
	f.Fuzz(fuzzTLSFeed)
}

func fuzzTLSFeed(t *testing.T, payload, splits []byte, flip uint32) {
	{
		if len(payload) > 1<<17 {
			payload = payload[:1<<17]
		}
		l, c, h, client, tr := fuzzEstablished(t)
		if len(payload) > 0 {
			if _, err := client.Write(payload); err != nil {
				t.Fatal(err)
			}
		}
		ct := append([]byte(nil), tr.captured()...)
		corrupt := flip != 0 && len(ct) > 0
		if corrupt {
			ct[int(flip-1)%len(ct)] ^= 0x5a
		}
		// Feed the records cut at the fuzzer's points (0 = one byte), each piece as one read.
		i := 0
		for len(ct) > 0 && !c.notified {
			n := len(ct)
			if i < len(splits) {
				n = min(int(splits[i])*37+1, len(ct))
			}
			i++
			k := copy(l.buf, ct[:n])
			ct = ct[k:]
			c.tls.in = l.buf[:k]
			l.driveTLS(c)
		}
		switch {
		case !corrupt:
			if !bytes.Equal(h.data, payload) {
				t.Fatalf("delivered %d bytes, want the %d sent", len(h.data), len(payload))
			}
			if c.notified {
				t.Fatalf("an intact stream closed the connection (%v)", h.closed)
			}
		default:
			if !bytes.HasPrefix(payload, h.data) {
				t.Fatalf("after a corrupted byte, delivered bytes that were not sent")
			}
		}
	}
}
