package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// selfSigned writes a self-signed ECDSA certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "goswoole serve test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

var tlsListenLine = regexp.MustCompile(`^goswoole: echo server listening on (127\.0\.0\.1):(\d+) \(mode base, 1 worker, TLS\)$`)

// TestServeTLS: serve --ssl-cert F --ssl-key F serves the echo over TLS; --ssl-cert alone and
// a missing file are refused with a message naming the flag or the file.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key, pool := selfSigned(t, dir)
	c := startChild(t, "serve", "--port", "0", "--ssl-cert", cert, "--ssl-key", key)
	l := c.line(10 * time.Second)
	m := tlsListenLine.FindStringSubmatch(l)
	if m == nil {
		t.Fatalf("first line %q does not match %v", l, tlsListenLine)
	}
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", net.JoinHostPort(m[1], m[2]), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	for _, size := range []int{1, 1500, 64 << 10} {
		msg := bytes.Repeat([]byte{'t'}, size)
		if _, err := tc.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, size)
		if _, err := io.ReadFull(tc, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo of %d bytes over TLS: %v", size, err)
		}
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := c.exitCode(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", code, c.stderr)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--port", "0", "--ssl-cert", cert}, "--ssl-key"},
		{[]string{"serve", "--port", "0", "--ssl-cert", filepath.Join(dir, "nope.pem"), "--ssl-key", key}, "nope.pem"},
	} {
		c := startChild(t, tc.args...)
		if code := c.exitCode(10 * time.Second); code == 0 {
			t.Errorf("%v: exit code 0, want a failure", tc.args)
		}
		if !strings.Contains(c.stderr.String(), tc.want) {
			t.Errorf("%v: stderr %q does not name %q", tc.args, c.stderr.String(), tc.want)
		}
	}
}
