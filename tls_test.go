package swoole_test

// TLS (SockSSL) on stream ports, in ModeBase with one process: real sockets, Go crypto/tls
// clients (and openssl s_client when it is installed), certificates made in each test.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// tlsFiles are PEM files of a test PKI: an ECDSA P-256 CA, a server certificate (127.0.0.1,
// ::1, localhost, default.test), a second server certificate (sni.test), a client certificate
// signed by the CA and a self-signed client certificate.
type tlsFiles struct {
	dir                     string
	ca                      string
	cert, key               string
	sniCert, sniKey         string
	clientCert, clientKey   string
	selfCert, selfKey       string
	caPool                  *x509.CertPool
	client, self            tls.Certificate
	clientPEM               string
	serverCN, sniCN, selfCN string
	caCert                  *x509.Certificate // the CA and its key, to sign more certificates
	caKey                   *ecdsa.PrivateKey
}

var serial atomic.Int64

func tlsMakeCert(t testing.TB, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(serial.Add(1))
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func newTLSFiles(t testing.TB) *tlsFiles {
	t.Helper()
	dir := t.TempDir()
	f := &tlsFiles{dir: dir, serverCN: "default.test", sniCN: "sni.test", selfCN: "self-signed client"}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca, caKey, caPEM, _ := tlsMakeCert(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "goswoole test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	f.ca = write("ca.pem", caPEM)
	f.caCert, f.caKey = ca, caKey
	f.caPool = x509.NewCertPool()
	f.caPool.AddCert(ca)
	server := func(cn string, dns ...string) ([]byte, []byte) {
		_, _, c, k := tlsMakeCert(t, &x509.Certificate{
			Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
			KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}, ca, caKey)
		return c, k
	}
	c, k := server(f.serverCN, "localhost", f.serverCN)
	f.cert, f.key = write("server.pem", c), write("server.key", k)
	c, k = server(f.sniCN, f.sniCN)
	f.sniCert, f.sniKey = write("sni.pem", c), write("sni.key", k)
	_, _, c, k = tlsMakeCert(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "test client"}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, caKey)
	f.clientCert, f.clientKey = write("client.pem", c), write("client.key", k)
	f.clientPEM = string(c)
	var err error
	if f.client, err = tls.X509KeyPair(c, k); err != nil {
		t.Fatal(err)
	}
	_, _, c, k = tlsMakeCert(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: f.selfCN}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, BasicConstraintsValid: true,
	}, nil, nil)
	f.selfCert, f.selfKey = write("self.pem", c), write("self.key", k)
	if f.self, err = tls.X509KeyPair(c, k); err != nil {
		t.Fatal(err)
	}
	return f
}

// opts are the server settings that turn TLS on with f's server certificate.
func (f *tlsFiles) opts() map[string]any {
	return map[string]any{"ssl_cert_file": f.cert, "ssl_key_file": f.key}
}

// clientConfig trusts f's CA.
// An empty serverName verifies the address 127.0.0.1 (and sends no SNI).
func (f *tlsFiles) clientConfig(serverName string) *tls.Config {
	if serverName == "" {
		serverName = "127.0.0.1"
	}
	return &tls.Config{RootCAs: f.caPool, ServerName: serverName}
}

// tlsServer makes a ModeBase server on a SockSSL socket of base type sock, with quiet(), f's
// certificate, then opts.
func tlsServer(t testing.TB, f *tlsFiles, host string, sock swoole.SockType, opts map[string]any) *swoole.Server {
	t.Helper()
	s, err := swoole.NewServer(host, 0, swoole.ModeBase, sock|swoole.SockSSL)
	if err != nil {
		t.Fatalf("NewServer(%s, %v|SockSSL): %v", host, sock, err)
	}
	t.Cleanup(func() { _ = s.Shutdown() })
	all := f.opts()
	for k, v := range opts {
		all[k] = v
	}
	setOpts(t, s, all)
	return s
}

// tlsDial connects to addr over TLS and completes the handshake.
func tlsDial(t testing.TB, network, addr string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	c, err := tlsTryDial(network, addr, cfg)
	if err != nil {
		t.Fatalf("TLS dial %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func tlsTryDial(network, addr string, cfg *tls.Config) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: ioTimeout}
	raw, err := d.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, cfg)
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	if err := c.Handshake(); err != nil {
		raw.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// tlsEcho sends msg and reads the same number of bytes back, comparing them.
func tlsEcho(t testing.TB, c net.Conn, msg []byte) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	defer c.SetDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() { _, err := c.Write(msg); errc <- err }()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("echo of %d bytes: read: %v", len(msg), err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("echo of %d bytes: write: %v", len(msg), err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo of %d bytes came back different", len(msg))
	}
}

func tlsPattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7+i/251)
	}
	return b
}

// tlsEchoSizes are the message sizes of the echo tests: around TLS's 16 KiB record and the
// loop's 64 KiB read.
var tlsEchoSizes = []int{1, 100, 1400, 16383, 16384, 16385, 65535, 65536, 100000, 256 << 10}

// TestTLSEchoMixedSizes: a SockTCP|SockSSL server echoes messages of 1 B to 256 KiB byte for
// byte to a Go crypto/tls client, OnConnect runs after the handshake (once), OnReceive gets
// plaintext, and OnClose runs once when the client leaves.
func TestTLSEchoMixedSizes(t *testing.T) {
	f := newTLSFiles(t)
	s := tlsServer(t, f, "127.0.0.1", swoole.SockTCP, nil)
	var connects, closes atomic.Int32
	var plain atomic.Bool
	plain.Store(true)
	s.OnConnect(func(*swoole.Server, int64, int) { connects.Add(1) })
	s.OnClose(func(*swoole.Server, int64, int) { closes.Add(1) })
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		if len(data) > 0 && data[0] == 0x17 && len(data) > 5 && data[1] == 3 {
			plain.Store(false) // looks like a TLS application-data record
		}
		if err := s.Send(fd, data); err != nil {
			t.Errorf("Send: %v", err)
		}
	})
	r := start(t, s)
	c := tlsDial(t, "tcp", r.addr, f.clientConfig(""))
	waitFor(t, ioTimeout, "OnConnect", func() bool { return connects.Load() == 1 })
	for i, n := range tlsEchoSizes {
		tlsEcho(t, c, tlsPattern(n, byte(i)))
	}
	if !plain.Load() {
		t.Errorf("OnReceive got what looks like TLS records, not plaintext")
	}
	c.Close()
	waitFor(t, ioTimeout, "OnClose", func() bool { return closes.Load() == 1 })
	if connects.Load() != 1 {
		t.Errorf("OnConnect ran %d times, want 1", connects.Load())
	}
}

// TestTLSPortsBesidePlain: a plain TCP server with TLS listeners added for TCP, TCP6 (when the
// host has IPv6) and a unix stream socket: each TLS port echoes to a crypto/tls client, the
// plain port echoes plain bytes, and a plain port inherits the server's ssl_* and ignores them.
func TestTLSPortsBesidePlain(t *testing.T) {
	f := newTLSFiles(t)
	s := newServer(t, f.opts())
	s.OnReceive(echo(t))
	tcp, err := s.AddListener("127.0.0.1", 0, swoole.SockTCP|swoole.SockSSL)
	if err != nil {
		t.Fatalf("AddListener(TCP|SSL): %v", err)
	}
	path := filepath.Join(t.TempDir(), "tls.sock")
	unixPort, err := s.AddListener(path, 0, swoole.SockUnixStream|swoole.SockSSL)
	if err != nil {
		t.Fatalf("AddListener(UnixStream|SSL): %v", err)
	}
	var tcp6 *swoole.Port
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		ln.Close()
		if tcp6, err = s.AddListener("::1", 0, swoole.SockTCP6|swoole.SockSSL); err != nil {
			t.Fatalf("AddListener(TCP6|SSL): %v", err)
		}
	} else {
		t.Logf("no IPv6 on this host: SockTCP6|SockSSL not tried (%v)", err)
	}
	r := start(t, s)

	pc := r.dial(t)
	roundTrip(t, pc, "plain hello")

	c := tlsDial(t, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port())), f.clientConfig(""))
	tlsEcho(t, c, []byte("tcp tls"))
	tlsEcho(t, c, tlsPattern(70000, 3))
	u := tlsDial(t, "unix", path, f.clientConfig("localhost"))
	tlsEcho(t, u, []byte("unix tls"))
	tlsEcho(t, u, tlsPattern(70000, 4))
	_ = unixPort
	if tcp6 != nil {
		c6 := tlsDial(t, "tcp", net.JoinHostPort("::1", strconv.Itoa(tcp6.Port())), f.clientConfig("::1"))
		tlsEcho(t, c6, []byte("tcp6 tls"))
	}
	roundTrip(t, pc, "plain again")
}

// TestTLSClientCertificate: with ssl_verify_peer and ssl_client_cert_file, a client with a
// certificate of the CA connects and GetClientInfo's SSLClientCert is that certificate's PEM;
// a client without one, or with a self-signed one, is refused (no OnConnect, no OnReceive)
// while the good one goes on; with ssl_allow_self_signed the self-signed one gets in.
func TestTLSClientCertificate(t *testing.T) {
	f := newTLSFiles(t)
	for _, allowSelf := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow_self_signed=%v", allowSelf), func(t *testing.T) {
			s := tlsServer(t, f, "127.0.0.1", swoole.SockTCP, map[string]any{
				"ssl_verify_peer": true, "ssl_client_cert_file": f.ca, "ssl_allow_self_signed": allowSelf,
			})
			var connects, receives atomic.Int32
			var mu sync.Mutex
			certs := map[int64]string{}
			s.OnConnect(func(s *swoole.Server, fd int64, _ int) {
				connects.Add(1)
				info, err := s.GetClientInfo(fd, -1, false)
				if err != nil {
					t.Errorf("GetClientInfo in OnConnect: %v", err)
					return
				}
				mu.Lock()
				certs[fd] = info.SSLClientCert
				mu.Unlock()
			})
			s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
				receives.Add(1)
				_ = s.Send(fd, data)
			})
			r := start(t, s)

			cfg := f.clientConfig("")
			cfg.Certificates = []tls.Certificate{f.client}
			good := tlsDial(t, "tcp", r.addr, cfg)
			tlsEcho(t, good, []byte("with a certificate"))
			mu.Lock()
			var got string
			for _, v := range certs {
				got = v
			}
			mu.Unlock()
			if got != f.clientPEM {
				t.Errorf("SSLClientCert = %q, want the client's PEM %q", got, f.clientPEM)
			}

			// No certificate: the handshake fails (TLS 1.3 reports it on the first read).
			if c, err := tlsTryDial("tcp", r.addr, f.clientConfig("")); err == nil {
				_ = c.SetDeadline(time.Now().Add(ioTimeout))
				_, _ = c.Write([]byte("x"))
				if _, err := c.Read(make([]byte, 1)); err == nil {
					t.Errorf("a client without a certificate was served")
				}
				c.Close()
			}
			selfCfg := f.clientConfig("")
			selfCfg.Certificates = []tls.Certificate{f.self}
			sc, err := tlsTryDial("tcp", r.addr, selfCfg)
			if err == nil {
				_ = sc.SetDeadline(time.Now().Add(ioTimeout))
				_, _ = sc.Write([]byte("self"))
				buf := make([]byte, 4)
				_, err = io.ReadFull(sc, buf)
				sc.Close()
			}
			if allowSelf && err != nil {
				t.Errorf("self-signed client with ssl_allow_self_signed: %v", err)
			}
			if !allowSelf && err == nil {
				t.Errorf("self-signed client served without ssl_allow_self_signed")
			}
			tlsEcho(t, good, []byte("still there"))
			want := int32(1)
			if allowSelf {
				want = 2
			}
			if n := connects.Load(); n != want {
				t.Errorf("OnConnect ran %d times, want %d (refused clients must not connect)", n, want)
			}
			if n := receives.Load(); n != want+1 {
				t.Errorf("OnReceive ran %d times, want %d (refused clients must not reach it)", n, want+1)
			}
		})
	}
}

// TestTLSSNI: with ssl_sni_certs (through SetOptions), a client asking for sni.test gets the
// sni.test certificate and one asking for another name (or none) gets ssl_cert_file's.
func TestTLSSNI(t *testing.T) {
	f := newTLSFiles(t)
	s := tlsServer(t, f, "127.0.0.1", swoole.SockTCP, map[string]any{
		"ssl_sni_certs": map[string]any{
			f.sniCN: map[string]any{"ssl_cert_file": f.sniCert, "ssl_key_file": f.sniKey},
		},
	})
	s.OnReceive(echo(t))
	r := start(t, s)
	for _, tc := range []struct{ name, wantCN string }{
		{f.sniCN, f.sniCN}, {f.serverCN, f.serverCN}, {"", f.serverCN},
	} {
		c := tlsDial(t, "tcp", r.addr, f.clientConfig(tc.name))
		if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != tc.wantCN {
			t.Errorf("server name %q: got the certificate of %q, want %q", tc.name, cn, tc.wantCN)
		}
		tlsEcho(t, c, []byte("sni "+tc.name))
	}
	if got := s.Setting().SSLSNICerts[f.sniCN].CertFile; got != f.sniCert {
		t.Errorf("Setting().SSLSNICerts[%q].CertFile = %q, want %q", f.sniCN, got, f.sniCert)
	}
}

// TestTLSPlaintextAndStalledHandshake: a client that writes plain bytes to the TLS port is
// closed without OnConnect or OnReceive, and one that never finishes its handshake is closed
// after the handshake timeout (heartbeat_idle_time when shorter), while a healthy TLS client
// keeps working throughout.
func TestTLSPlaintextAndStalledHandshake(t *testing.T) {
	f := newTLSFiles(t)
	s := tlsServer(t, f, "127.0.0.1", swoole.SockTCP, map[string]any{"heartbeat_idle_time": 1})
	var connects, receives atomic.Int32
	s.OnConnect(func(*swoole.Server, int64, int) { connects.Add(1) })
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		receives.Add(1)
		_ = s.Send(fd, data)
	})
	r := start(t, s)
	healthy := tlsDial(t, "tcp", r.addr, f.clientConfig(""))
	tlsEcho(t, healthy, []byte("before"))

	plain := r.dial(t)
	if _, err := plain.Write([]byte("GET / HTTP/1.0\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := readUntilClosed(t, plain); err != nil && !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("plain client: %v", err)
	}
	tlsEcho(t, healthy, []byte("after plain"))

	// A stalled handshake: half a ClientHello, then nothing.
	stalled := r.dial(t)
	if _, err := stalled.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}); err != nil {
		t.Fatal(err)
	}
	other := tlsDial(t, "tcp", r.addr, f.clientConfig("")) // handshakes beside it
	tlsEcho(t, other, []byte("beside a stalled handshake"))
	tlsEcho(t, healthy, []byte("still"))
	// The stalled handshake is closed after the idle time; healthy and other talk meanwhile,
	// so that they stay within it themselves however slow the machine is.
	pings := 0
	for deadline := time.Now().Add(ioTimeout); ; {
		_ = stalled.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var b [1]byte
		_, err := stalled.Read(b[:])
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			if time.Now().After(deadline) {
				t.Fatalf("the stalled handshake stayed open for %v", ioTimeout)
			}
			tlsEcho(t, healthy, []byte("ping"))
			tlsEcho(t, other, []byte("ping"))
			pings++
			continue
		}
		if err == nil || (!errors.Is(err, io.EOF) && !isReset(err)) {
			t.Fatalf("stalled client: read %v; want it closed", err)
		}
		break
	}
	// healthy and other keep working.
	tlsEcho(t, healthy, []byte("after stalled"))
	tlsEcho(t, other, []byte("after stalled too"))
	if n := connects.Load(); n != 2 {
		t.Errorf("OnConnect ran %d times, want 2 (only the TLS clients)", n)
	}
	if n, want := receives.Load(), int32(6+2*pings); n != want {
		t.Errorf("OnReceive ran %d times, want %d (only for the TLS clients' messages)", n, want)
	}
	if st := s.Stats(); st.ConnectionNum != 2 {
		t.Errorf("connection_num = %d, want 2", st.ConnectionNum)
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "reset by peer") || strings.Contains(err.Error(), "broken pipe"))
}

// TestTLSBadSettings: a missing, unreadable or mismatched certificate or key, a missing
// ssl_key_file, SSLv3 in ssl_protocols and an unknown cipher are *swoole.Error values with a
// code and a message naming the option or the file; Start returns at once.
func TestTLSBadSettings(t *testing.T) {
	f := newTLSFiles(t)
	startErr := func(t *testing.T, opts map[string]any) error {
		t.Helper()
		s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeBase, swoole.SockTCP|swoole.SockSSL)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Shutdown()
		all := quiet()
		for k, v := range opts {
			all[k] = v
		}
		if err := s.SetOptions(all); err != nil {
			return err
		}
		s.OnReceive(func(*swoole.Server, int64, int, []byte) {})
		done := make(chan error, 1)
		go func() { done <- s.Start() }()
		select {
		case err := <-done:
			return err
		case <-time.After(startTimeout):
			t.Fatalf("Start did not return with bad TLS settings %v", opts)
			return nil
		}
	}
	missing := filepath.Join(f.dir, "nope.pem")
	for _, tc := range []struct {
		name  string
		opts  map[string]any
		code  int
		words []string
	}{
		{"no cert at all", map[string]any{}, swoole.ErrInvalidParams, []string{"ssl_cert_file", "ssl_key_file"}},
		{"cert without key", map[string]any{"ssl_cert_file": f.cert}, swoole.ErrInvalidParams, []string{"ssl_key_file"}},
		{"missing cert file", map[string]any{"ssl_cert_file": missing, "ssl_key_file": f.key}, swoole.ErrFileNotExist, []string{"ssl_cert_file", missing}},
		{"missing key file", map[string]any{"ssl_cert_file": f.cert, "ssl_key_file": missing}, swoole.ErrFileNotExist, []string{"ssl_key_file", missing}},
		{"mismatched key", map[string]any{"ssl_cert_file": f.cert, "ssl_key_file": f.sniKey}, swoole.ErrInvalidParams, []string{"ssl_cert_file", "ssl_key_file", f.sniKey}},
		{"not PEM", map[string]any{"ssl_cert_file": f.dir, "ssl_key_file": f.key}, swoole.ErrSystemCallFail, []string{"ssl_cert_file", f.dir}},
		{"SSLv3", map[string]any{"ssl_cert_file": f.cert, "ssl_key_file": f.key, "ssl_protocols": 4 | 32}, swoole.ErrInvalidParams, []string{"ssl_protocols", "SSLv3"}},
		{"unknown cipher", map[string]any{"ssl_cert_file": f.cert, "ssl_key_file": f.key, "ssl_ciphers": "ECDHE-RSA-AES128-GCM-SHA256:NOSUCHCIPHER"}, swoole.ErrInvalidParams, []string{"ssl_ciphers", "NOSUCHCIPHER"}},
		{"missing client CA", map[string]any{"ssl_cert_file": f.cert, "ssl_key_file": f.key, "ssl_verify_peer": true, "ssl_client_cert_file": missing}, swoole.ErrFileNotExist, []string{"ssl_client_cert_file", missing}},
		{"missing SNI cert", map[string]any{"ssl_cert_file": f.cert, "ssl_key_file": f.key, "ssl_sni_certs": map[string]any{"a.test": map[string]any{"ssl_cert_file": missing, "ssl_key_file": f.key}}}, swoole.ErrFileNotExist, []string{"ssl_sni_certs", "a.test", missing}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := startErr(t, tc.opts)
			var se *swoole.Error
			if !errors.As(err, &se) {
				t.Fatalf("got %v (%T), want a *swoole.Error", err, err)
			}
			if se.Code != tc.code {
				t.Errorf("code %d, want %d: %v", se.Code, tc.code, err)
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not name %q", err, w)
				}
			}
		})
	}
	// A datagram socket cannot be SockSSL.
	if _, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeBase, swoole.SockUDP|swoole.SockSSL); code(err) != swoole.ErrBadSocketType {
		t.Errorf("NewServer(UDP|SSL): %v, want code %d", err, swoole.ErrBadSocketType)
	}
}

// TestTLSProtocolsAndCiphers: ssl_protocols TLSv1.2 only refuses a TLS 1.3-only client and
// serves a TLS 1.2 one; ssl_ciphers picks the TLS 1.2 suite (OpenSSL names).
func TestTLSProtocolsAndCiphers(t *testing.T) {
	f := newTLSFiles(t)
	s := tlsServer(t, f, "127.0.0.1", swoole.SockTCP, map[string]any{
		"ssl_protocols": 32, "ssl_ciphers": "ECDHE-ECDSA-CHACHA20-POLY1305:!aNULL",
	})
	s.OnReceive(echo(t))
	r := start(t, s)
	cfg := f.clientConfig("")
	cfg.MinVersion = tls.VersionTLS13
	if c, err := tlsTryDial("tcp", r.addr, cfg); err == nil {
		c.Close()
		t.Errorf("a TLS 1.3-only client was served with ssl_protocols TLSv1.2")
	}
	cfg = f.clientConfig("")
	c := tlsDial(t, "tcp", r.addr, cfg)
	st := c.ConnectionState()
	if st.Version != tls.VersionTLS12 || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 {
		t.Errorf("negotiated %s %s, want TLS 1.2 ECDHE-ECDSA-CHACHA20-POLY1305", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	}
	tlsEcho(t, c, tlsPattern(40000, 9))
}

// TestTLSFramingSendFilePause: on a TLS port, open_eof_split frames the plaintext; SendFile
// sends a file's bytes encrypted (checked byte for byte, with Sends before and after it);
// Pause holds a connection's input until Resume; the output queue's backpressure
// (socket_buffer_size, 1008) works as on plain ports.
func TestTLSFramingSendFilePause(t *testing.T) {
	f := newTLSFiles(t)
	file := filepath.Join(t.TempDir(), "data.bin")
	content := tlsPattern(300000, 5)
	if err := os.WriteFile(file, content, 0o600); err != nil {
		t.Fatal(err)
	}
	s := tlsServer(t, f, "127.0.0.1", swoole.SockTCP, map[string]any{
		"open_eof_split": true, "package_eof": "\r\n", "socket_buffer_size": 1 << 20,
	})
	var frames sync.Map
	var paused atomic.Int64
	var overflow atomic.Int32
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		cmd := string(bytes.TrimSuffix(data, []byte("\r\n")))
		frames.Store(cmd, true)
		switch {
		case cmd == "file":
			_ = s.Send(fd, []byte("<"))
			if err := s.SendFile(fd, file, 0, 0); err != nil {
				t.Errorf("SendFile: %v", err)
			}
			_ = s.Send(fd, []byte(">"))
		case cmd == "pause":
			if err := s.Pause(fd); err != nil {
				t.Errorf("Pause: %v", err)
			}
			paused.Store(fd)
		case cmd == "flood":
			chunk := make([]byte, 256<<10)
			for range 64 {
				if err := s.Send(fd, chunk); err != nil {
					if code(err) == swoole.ErrOutputBufferOverflow {
						overflow.Add(1)
					}
					break
				}
			}
		default:
			_ = s.Send(fd, []byte(cmd+"\n"))
		}
	})
	r := start(t, s)
	c := tlsDial(t, "tcp", r.addr, f.clientConfig(""))
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	// Two frames in one write, one split across writes.
	if _, err := c.Write([]byte("a\r\nb\r\nc")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("d\r\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("a\nb\ncd\n"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "a\nb\ncd\n" {
		t.Fatalf("framed replies %q, %v", got, err)
	}
	if _, err := c.Write([]byte("file\r\n")); err != nil {
		t.Fatal(err)
	}
	got = make([]byte, len(content)+2)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the file: %v", err)
	}
	if got[0] != '<' || got[len(got)-1] != '>' || !bytes.Equal(got[1:len(got)-1], content) {
		t.Fatalf("SendFile's bytes came back different (first %q last %q)", got[0], got[len(got)-1])
	}
	// Pause: what follows is not delivered until Resume.
	if _, err := c.Write([]byte("pause\r\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ioTimeout, "Pause", func() bool { return paused.Load() != 0 })
	if _, err := c.Write([]byte("later\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // a window for a wrong delivery; the check below does not depend on it
	if _, ok := frames.Load("later"); ok {
		t.Fatalf("a paused connection's frame was delivered")
	}
	if err := s.Resume(paused.Load()); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	got = make([]byte, len("later\n"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "later\n" {
		t.Fatalf("after Resume: %q, %v", got, err)
	}
	// Backpressure: the client does not read; Sends past socket_buffer_size fail with 1008.
	if _, err := c.Write([]byte("flood\r\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ioTimeout, "a Send refused with 1008", func() bool { return overflow.Load() > 0 })
}

// TestTLSOpenSSLClient: the real openssl s_client talks to a goswoole TLS port.
func TestTLSOpenSSLClient(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed: the s_client check needs /usr/bin/openssl")
	}
	f := newTLSFiles(t)
	s := tlsServer(t, f, "127.0.0.1", swoole.SockTCP, nil)
	got := make(chan string, 1)
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		select {
		case got <- string(data):
		default:
		}
		_ = s.Send(fd, []byte("pong from goswoole\n"))
	})
	r := start(t, s)
	cmd := exec.Command(bin, "s_client", "-connect", r.addr, "-CAfile", f.ca, "-verify_return_error", "-quiet", "-servername", "localhost")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &lockedBuf{}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if _, err := stdin.Write([]byte("ping from openssl\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "ping from openssl\n" {
			t.Errorf("OnReceive got %q", m)
		}
	case <-time.After(ioTimeout):
		t.Fatalf("no data from openssl s_client; its output: %s", out.String())
	}
	waitFor(t, ioTimeout, "openssl to print the reply", func() bool {
		return strings.Contains(out.String(), "pong from goswoole")
	})
}

// lockedBuf is a bytes.Buffer a command writes while the test reads it.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
