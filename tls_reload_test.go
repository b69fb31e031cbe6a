package swoole_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tlsReplaceServerCert writes a new server certificate (common name cn, signed by f's CA) and
// its key over f's server.pem and server.key (each written aside and renamed in), and returns
// the new certificate's DER.
func tlsReplaceServerCert(t *testing.T, f *tlsFiles, cn string) []byte {
	t.Helper()
	cert, _, c, k := tlsMakeCert(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: cn}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, f.caCert, f.caKey)
	for _, w := range []struct {
		path string
		b    []byte
	}{{f.cert, c}, {f.key, k}} {
		if err := os.WriteFile(w.path+".new", w.b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(w.path+".new", w.path); err != nil {
			t.Fatal(err)
		}
	}
	return cert.Raw
}

// tlsPeerCN is the common name of the certificate c's server presented.
func tlsPeerCN(c *lineClient) string {
	certs := c.c.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return ""
	}
	return certs[0].Subject.CommonName
}

// TestTLSReloadCertificates (beyond Swoole): a reload makes the process that terminates TLS
// re-read ssl_cert_file and ssl_key_file. In each mode the certificate files are replaced and
// Reload(false) is called: new connections get the new certificate, while (in one process and
// in ModeProcess, where the reload keeps the connections) a TLS connection opened before goes
// on with its session. In ModeBase with worker processes the restarted workers read the files
// as they start.
func TestTLSReloadCertificates(t *testing.T) {
	for _, mode := range featureModes {
		t.Run(mode.name, func(t *testing.T) {
			f := newTLSFiles(t)
			ms := mpStartServer(t, "tls", "managerstart", append(mode.env, tlsEnvDir+"="+f.dir)...)
			tlsPort := ms.waitEvent("managerstart", nil).int(0)
			workers := 1
			if mode.name != "base-1proc" {
				workers = 2
				ms.eventually("both workers started", func() bool { return ms.count("workerstart", nil) >= 2 })
			}
			old := tlsLineDial(t, f, tlsPort)
			if cn := tlsPeerCN(old); cn != f.serverCN {
				t.Fatalf("first certificate: CN %q, want %q", cn, f.serverCN)
			}
			if got := old.do("echo before"); got != "before" {
				t.Fatalf("echo before the reload: %q", got)
			}

			newCN := "reloaded-" + mode.name + ".test"
			tlsReplaceServerCert(t, f, newCN)
			before := ms.count("workerstart", nil)
			ctl := tlsLineDial(t, f, tlsPort)
			if got := ctl.do("reload"); got != "reload 0" {
				t.Fatalf("reload: %q, want code 0", got)
			}
			if workers > 1 {
				ms.eventually("the workers replaced", func() bool { return ms.count("workerstart", nil) >= before+workers })
			}
			// Every new connection (whichever worker takes it) gets the new certificate.
			deadline := time.Now().Add(mpTimeout)
			for i := 0; i < 8; i++ {
				var cn string
				for {
					c := tlsLineDial(t, f, tlsPort)
					cn = tlsPeerCN(c)
					got := c.do("echo new " + strconv.Itoa(i))
					c.c.Close()
					if got != "new "+strconv.Itoa(i) {
						t.Fatalf("new connection %d: echo %q", i, got)
					}
					if cn == newCN || time.Now().After(deadline) {
						break
					}
					time.Sleep(20 * time.Millisecond) // a reload in progress: poll until the deadline
				}
				if cn != newCN {
					t.Fatalf("new connection %d after the reload: certificate CN %q, want %q", i, cn, newCN)
				}
			}
			if workers == 1 || strings.Contains(mode.name, "process") {
				if got := old.do("echo after"); got != "after" {
					t.Fatalf("the connection opened before the reload: echo %q", got)
				}
				if cn := tlsPeerCN(old); cn != f.serverCN {
					t.Fatalf("the connection opened before the reload now shows CN %q", cn)
				}
			}
		})
	}
}
