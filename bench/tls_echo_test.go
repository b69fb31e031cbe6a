package bench

import (
	"context"
	"crypto/tls"
	"os"
	"testing"
	"time"

	"github.com/goswoole/swoole/bench/load"
	"github.com/goswoole/swoole/bench/servers"
)

// TestTLSEchoServers runs a short TLS load through the servers that serve TLS (goswoole on a
// SockTCP|SockSSL port, netstd through crypto/tls's listener) with a generated self-signed
// certificate: a verified echo of a few messages, a connect run with full handshakes and one
// with resumed sessions, and a few idle TLS connections. A plain client is refused.
func TestTLSEchoServers(t *testing.T) {
	cert, key, err := load.GenerateCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"goswoole", "netstd"} {
		t.Run(name, func(t *testing.T) {
			srv, err := servers.StartWith(name, "127.0.0.1:0", servers.Options{TLSCert: cert, TLSKey: key})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := srv.Close(); err != nil {
					t.Error(err)
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			res, err := load.Run(ctx, load.Config{Addr: srv.Addr(), Conns: 4, Size: 64, Depth: 2, Messages: 200,
				Verify: true, TLS: load.ClientTLS(false)})
			if err != nil {
				t.Fatalf("TLS echo: %v", err)
			}
			if res.Msgs != 200 {
				t.Errorf("TLS echo: %d round trips, want 200", res.Msgs)
			}

			// The certificate served is the one given.
			c, err := tls.Dial("tcp", srv.Addr(), load.ClientTLS(false))
			if err != nil {
				t.Fatal(err)
			}
			want, err := tls.LoadX509KeyPair(cert, key)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.ConnectionState().PeerCertificates; len(got) == 0 || string(got[0].Raw) != string(want.Certificate[0]) {
				t.Error("the server did not present the generated certificate")
			}
			c.Close()

			for _, resume := range []bool{false, true} {
				conf := load.ClientTLS(resume)
				cr, err := load.Connect(ctx, load.ConnectConfig{Addr: srv.Addr(), Workers: 2, Size: 16,
					Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond, TLS: conf})
				if err != nil {
					t.Fatalf("TLS connect (resume %v): %v", resume, err)
				}
				if cr.Conns == 0 || cr.Errors > 0 {
					t.Errorf("TLS connect (resume %v): %d connections, %d errors (%v)", resume, cr.Conns, cr.Errors, cr.FirstErr)
				}
				if resume && cr.Resumed == 0 {
					t.Errorf("with a session cache, none of %d connections resumed its session", cr.Conns)
				}
				if !resume && cr.Resumed != 0 {
					t.Errorf("without a session cache, %d connections resumed a session", cr.Resumed)
				}
			}

			ir, err := load.Idle(ctx, load.IdleConfig{Addr: srv.Addr(), Conns: 20, Ping: 8, Settle: time.Millisecond,
				Probe: load.ProcTree{Pid: os.Getpid()}, TLS: load.ClientTLS(false)})
			if err != nil {
				t.Fatalf("TLS idle: %v", err)
			}
			if ir.Conns != 20 {
				t.Errorf("TLS idle: %d connections", ir.Conns)
			}

			// A plain client gets no echo.
			if _, err := load.Run(ctx, load.Config{Addr: srv.Addr(), Conns: 1, Size: 64, Messages: 1, IOTimeout: 2 * time.Second}); err == nil {
				t.Error("a plain client got its echo from a TLS server")
			}
		})
	}
}
