// Tlsecho is the echo server over TLS: a SockTCP|SockSSL port, the certificate and key from
// files (ssl_cert_file, ssl_key_file). The reactor runs the handshake and the encryption;
// OnConnect runs once the handshake is done and OnReceive gets plaintext.
//
// Run it from the repository root with a certificate, for example a self-signed one:
//
//	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
//	    -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
//	    -keyout key.pem -out cert.pem
//	go run ./examples/tlsecho -cert cert.pem -key key.pem   # listens on 127.0.0.1:9503
//
// and talk to it with a TLS client:
//
//	openssl s_client -connect 127.0.0.1:9503 -CAfile cert.pem -quiet
//
// With -client-ca FILE, clients must present a certificate signed by that CA
// (ssl_verify_peer); the server logs each client certificate's subject.
package main

import (
	"crypto/x509"
	"encoding/pem"
	"flag"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/goswoole/swoole"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9503", "host:port to listen on")
	cert := flag.String("cert", "cert.pem", "PEM certificate (chain) of the server")
	key := flag.String("key", "key.pem", "PEM private key of -cert")
	clientCA := flag.String("client-ca", "", "PEM CA bundle: require client certificates signed by it")
	flag.Parse()
	host, portStr, err := net.SplitHostPort(*addr)
	if err != nil {
		slog.Error("bad -addr", "addr", *addr, "err", err)
		os.Exit(2)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		slog.Error("bad -addr port", "addr", *addr, "err", err)
		os.Exit(2)
	}

	s, err := swoole.NewServer(host, port, swoole.ModeBase, swoole.SockTCP|swoole.SockSSL)
	if err != nil {
		slog.Error("cannot create the server", "err", err)
		os.Exit(1)
	}
	set := swoole.Settings{WorkerNum: 1, SSLCertFile: *cert, SSLKeyFile: *key}
	if *clientCA != "" {
		set.SSLVerifyPeer, set.SSLClientCertFile = true, *clientCA
	}
	if err := s.Set(set); err != nil {
		slog.Error("bad settings", "err", err)
		os.Exit(1)
	}

	s.OnStart(func(s *swoole.Server) {
		p := s.Ports()[0]
		slog.Info("TLS echo server listening", "host", p.Host(), "port", p.Port())
	})
	s.OnConnect(func(s *swoole.Server, fd int64, _ int) {
		info, err := s.GetClientInfo(fd, -1, true)
		if err != nil || info.SSLClientCert == "" {
			slog.Info("connect", "fd", fd)
			return
		}
		if b, _ := pem.Decode([]byte(info.SSLClientCert)); b != nil {
			if c, err := x509.ParseCertificate(b.Bytes); err == nil {
				slog.Info("connect", "fd", fd, "client", c.Subject.String())
			}
		}
	})
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		if err := s.Send(fd, data); err != nil { // encrypted by the server
			slog.Warn("send failed", "fd", fd, "err", err)
		}
	})

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT)
	go func() {
		<-sig
		_ = s.Shutdown()
	}()
	// A missing, unreadable or mismatched certificate or key makes Start return at once with
	// an error that names the setting and the file.
	if err := s.Start(); err != nil {
		slog.Error("server stopped with an error", "err", err)
		os.Exit(1)
	}
	slog.Info("TLS echo server stopped")
}
