package swoole_test

// Swoole's TLS server tests (tests/swoole_server/bug_2639, bug_2736, sendfile_ssl,
// ssl/bad_client, ssl/heartbeat_1, ssl/heartbeat_2, ssl/ssl_send_wait, ssl/verify_02) ported:
// real sockets, Go crypto/tls clients, certificates made in each test. The multi-process ones
// run in every mode (featureModes); the phpts use SWOOLE_PROCESS for bug_2639, bug_2736 and the
// heartbeat ones, SWOOLE_BASE for the others.

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

func init() { mpMoreServers["tlsphpt"] = tlsPhptServer }

// tlsPhptTasks is "1" when the tlsphpt server has a task worker.
const tlsPhptTasks = "GOSWOOLE_TEST_TLS_TASKS"

// tlsPhptServer serves three SockTCP|SockSSL ports, logging (warnings) to $GOSWOOLE_TEST_DIR/server.log:
//
//	0 length framing ("N", body after 4 bytes; bug_2736): each frame gets
//	  {"len": <header>, "body": <body>} and "\r\n"
//	1 raw, ssl_verify_peer with ssl_client_cert_file $dir/ca.pem and ssl_allow_self_signed
//	  (bug_2639, verify_*): each read gets {"cert": GetClientInfo's SSLClientCert, "worker":
//	  <worker id>} and "\n"; with a task worker it also sends the session to Task, whose OnTask
//	  logs "taskcert <fd> <length of SSLClientCert there> <error code>"
//	2 raw, heartbeat_idle_time 1 s (heartbeat_1/2): nothing is ever answered
//
// Ready event: "managerstart <port 0> <port 1> <port 2>".
func tlsPhptServer() int {
	dir := os.Getenv(tlsEnvDir)
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP|swoole.SockSSL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	workers := envInt(mpEnvWorkers, 2)
	tasks := 0
	if os.Getenv(tlsPhptTasks) == "1" {
		tasks = 1
	}
	if err := s.Set(swoole.Settings{
		WorkerNum: workers, TaskWorkerNum: tasks, MaxConnection: 1024, MaxWaitTime: 3 * time.Second,
		LogLevel: swoole.LogLevelWarning, LogFile: os.Getenv(mpEnvDir) + "/server.log",
		SSLCertFile: dir + "/server.pem", SSLKeyFile: dir + "/server.key",
		OpenLengthCheck: true, PackageLengthType: "N", PackageBodyOffset: 4, PackageMaxLength: 2 << 20,
		HeartbeatCheckInterval: 100 * time.Millisecond, HeartbeatIdleTime: time.Minute,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	verify, err1 := s.AddListener("127.0.0.1", 0, swoole.SockTCP|swoole.SockSSL)
	hb, err2 := s.AddListener("127.0.0.1", 0, swoole.SockTCP|swoole.SockSSL)
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "AddListener:", err1, err2)
		return 2
	}
	if err := verify.SetOptions(map[string]any{
		"open_length_check": false, "ssl_verify_peer": true, "ssl_allow_self_signed": true,
		"ssl_client_cert_file": dir + "/ca.pem", "ssl_cert_file": dir + "/server.pem", "ssl_key_file": dir + "/server.key",
	}); err != nil {
		fmt.Fprintln(os.Stderr, "verify port:", err)
		return 2
	}
	if err := hb.SetOptions(map[string]any{"open_length_check": false, "heartbeat_idle_time": 1,
		"ssl_cert_file": dir + "/server.pem", "ssl_key_file": dir + "/server.key",
	}); err != nil {
		fmt.Fprintln(os.Stderr, "heartbeat port:", err)
		return 2
	}
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		b, _ := json.Marshal(map[string]any{"len": binary.BigEndian.Uint32(data), "body": string(data[4:])})
		_ = s.Send(fd, append(b, "\r\n"...))
	})
	verify.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		reply := map[string]any{"worker": s.GetWorkerID()}
		if info, err := s.GetClientInfo(fd, -1, false); err != nil {
			reply["error"] = err.Error()
		} else {
			reply["cert"] = info.SSLClientCert
		}
		b, _ := json.Marshal(reply)
		_ = s.Send(fd, append(b, '\n'))
		if tasks > 0 {
			if _, err := s.Task(strconv.FormatInt(fd, 10), -1); err != nil {
				mpEvent("taskerror", mpCode(err))
			}
		}
	})
	hb.OnReceive(func(*swoole.Server, int64, int, []byte) {})
	if tasks > 0 {
		s.OnTask(func(s *swoole.Server, _ int, _ int, data []byte) any {
			fd, _ := strconv.ParseInt(string(data), 10, 64)
			info, err := s.GetClientInfo(fd, -1, false)
			n := 0
			if info != nil {
				n = len(info.SSLClientCert)
			}
			mpEvent("taskcert", fd, n, mpCode(err))
			return nil
		})
	}
	ports := fmt.Sprint(s.Ports()[0].Port(), " ", verify.Port(), " ", hb.Port())
	s.OnWorkerStart(func(s *swoole.Server, id int) { mpEvent("workerstart", id) })
	s.OnManagerStart(func(*swoole.Server) { mpEvent("managerstart", ports) })
	s.OnStart(func(*swoole.Server) {
		if workers == 1 && tasks == 0 {
			mpEvent("managerstart", ports) // one process: no manager
		}
	})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// tlsSignedCert writes a client certificate valid from notBefore to notAfter, signed by f's CA
// (or self-signed when self is set), and returns it with its key.
func tlsSignedCert(t testing.TB, f *tlsFiles, cn string, self bool, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	parent, parentKey := f.caCert, f.caKey
	if self {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.BasicConstraintsValid = true
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tlsRefused checks that a TLS client with cfg is not served on addr: its handshake fails, or
// (TLS 1.3: the server checks the client's certificate after the client finished) its first
// read ends without a byte.
func tlsRefused(t *testing.T, addr string, cfg *tls.Config, what string) {
	t.Helper()
	c, err := tlsTryDial("tcp", addr, cfg)
	if err != nil {
		return
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(mpTimeout))
	_, _ = c.Write([]byte("hello world"))
	if b, err := io.ReadAll(c); len(b) > 0 || (err != nil && errors.Is(err, os.ErrDeadlineExceeded)) {
		t.Fatalf("%s: served (%q, %v), want the connection closed", what, b, err)
	}
}

// tlsLogHas waits until the server's log names every word, triggering (again, at most every
// 1.2 s: the server logs one handshake failure a second) what makes the line.
func tlsLogHas(t *testing.T, ms *mpServer, trigger func(), words ...string) {
	t.Helper()
	deadline := time.Now().Add(mpTimeout)
	for {
		trigger()
		until := time.Now().Add(1200 * time.Millisecond)
		for time.Now().Before(until) {
			b, _ := os.ReadFile(ms.dir + "/server.log")
			for _, line := range strings.Split(string(b), "\n") {
				all := true
				for _, w := range words {
					all = all && strings.Contains(line, w)
				}
				if all {
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(ms.dir + "/server.log")
			t.Fatalf("the server's log has no line with %q:\n%s", words, b)
		}
	}
}

// TestTLSPhptInEveryMode ports Swoole's multi-process TLS tests, in each mode:
//
//   - length (bug_2736): a length-framed request written in 100-byte pieces over TLS comes
//     back whole ({"len","body"});
//   - clientcert (bug_2639, verify_01): on a port with ssl_verify_peer, GetClientInfo in the
//     worker that gets the data returns the client's certificate in PEM (ModeProcess too, where
//     the master holds the TLS session), with no OnConnect set; in a task worker it is empty;
//   - expired (verify_02): a client certificate of the CA that has expired is refused, and the
//     log says it expired; an expired self-signed one is refused despite ssl_allow_self_signed;
//   - nocert (verify_03): no client certificate on that port: closed, nothing served;
//   - badclient (ssl/bad_client): plain bytes to a TLS port get no reply, the connection
//     closes, and the log has a TLS handshake warning naming the client's address;
//   - heartbeat (ssl/heartbeat_1, ssl/heartbeat_2): on a TLS port with heartbeat_idle_time 1 s, an
//     idle plain client (no handshake) and an idle TLS client are both closed, not before about
//     a second.
func TestTLSPhptInEveryMode(t *testing.T) {
	f := newTLSFiles(t)
	for _, mode := range featureModes {
		t.Run(mode.name, func(t *testing.T) {
			env := append(mode.env, tlsEnvDir+"="+f.dir)
			tasks := !strings.Contains(mode.name, "1proc")
			if tasks {
				env = append(env, tlsPhptTasks+"=1")
			}
			ms := mpStartServer(t, "tlsphpt", "managerstart", env...)
			ev := ms.waitEvent("managerstart", nil)
			lenAddr := "127.0.0.1:" + ev.Fields[0]
			verifyAddr := "127.0.0.1:" + ev.Fields[1]
			hbAddr := "127.0.0.1:" + ev.Fields[2]
			if tasks {
				ms.eventually("the workers started", func() bool { return ms.count("workerstart", nil) >= 3 })
			}

			t.Run("length", func(t *testing.T) {
				c := tlsDial(t, "tcp", lenAddr, f.clientConfig(""))
				body := "hello world-" + strings.Repeat("A", 230) + "- BB"
				msg := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
				msg = append(msg, body...)
				_ = c.SetDeadline(time.Now().Add(mpTimeout))
				for i := 0; i < len(msg); i += 100 {
					if _, err := c.Write(msg[i:min(i+100, len(msg))]); err != nil {
						t.Fatal(err)
					}
				}
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					t.Fatalf("reply: %v", err)
				}
				var got struct {
					Len  int    `json:"len"`
					Body string `json:"body"`
				}
				if err := json.Unmarshal([]byte(strings.TrimSuffix(line, "\r\n")), &got); err != nil || got.Len != len(body) || got.Body != body {
					t.Fatalf("reply %q (%v), want len %d and the body", line, err, len(body))
				}
			})

			t.Run("clientcert", func(t *testing.T) {
				cfg := f.clientConfig("")
				cfg.Certificates = []tls.Certificate{f.client}
				for i := range 4 { // several connections: in every worker they land on
					c := tlsDial(t, "tcp", verifyAddr, cfg)
					_ = c.SetDeadline(time.Now().Add(mpTimeout))
					if _, err := c.Write([]byte("hello world")); err != nil {
						t.Fatal(err)
					}
					line, err := bufio.NewReader(c).ReadString('\n')
					if err != nil {
						t.Fatalf("connection %d: reply: %v", i, err)
					}
					var got struct {
						Cert   string `json:"cert"`
						Worker int    `json:"worker"`
						Error  string `json:"error"`
					}
					if err := json.Unmarshal([]byte(line), &got); err != nil {
						t.Fatalf("connection %d: reply %q: %v", i, line, err)
					}
					if got.Cert != f.clientPEM {
						t.Errorf("connection %d: GetClientInfo in worker %d: SSLClientCert %q (error %q), want the client's certificate", i, got.Worker, got.Cert, got.Error)
					}
					if b, _ := pem.Decode([]byte(got.Cert)); b != nil {
						if x, err := x509.ParseCertificate(b.Bytes); err != nil || x.Subject.CommonName != "test client" {
							t.Errorf("connection %d: the certificate's subject: %v, %v", i, x.Subject, err)
						}
					}
				}
				if tasks {
					ms.eventually("4 taskcert events", func() bool { return ms.count("taskcert", nil) >= 4 })
					// A task worker process sees no certificate (it was passed to the worker
					// that got the connect event); a ModeThread task-worker loop shares the
					// process that holds the connection, so it sees it, as Swoole's threads do.
					want := "0"
					if mode.name == "thread" {
						want = strconv.Itoa(len(f.clientPEM))
					}
					for _, e := range ms.events() {
						if e.Name == "taskcert" && (e.Fields[1] != want || e.Fields[2] != "0") {
							t.Errorf("in a task worker GetClientInfo(%s): SSLClientCert of %s bytes, error %s; want %s bytes, no error", e.Fields[0], e.Fields[1], e.Fields[2], want)
						}
					}
				}
			})

			t.Run("expired", func(t *testing.T) {
				past := time.Now().Add(-48 * time.Hour)
				expired := tlsSignedCert(t, f, "expired client", false, past, past.Add(24*time.Hour))
				cfg := f.clientConfig("")
				cfg.Certificates = []tls.Certificate{expired}
				tlsLogHas(t, ms, func() { tlsRefused(t, verifyAddr, cfg, "an expired client certificate") }, "expired")
				selfExpired := tlsSignedCert(t, f, "expired self-signed client", true, past, past.Add(24*time.Hour))
				cfg = f.clientConfig("")
				cfg.Certificates = []tls.Certificate{selfExpired}
				tlsRefused(t, verifyAddr, cfg, "an expired self-signed client certificate with ssl_allow_self_signed")
			})

			t.Run("nocert", func(t *testing.T) {
				tlsRefused(t, verifyAddr, f.clientConfig(""), "a client without a certificate")
			})

			t.Run("badclient", func(t *testing.T) {
				tlsLogHas(t, ms, func() {
					c, err := net.DialTimeout("tcp", lenAddr, mpTimeout)
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(mpTimeout))
					_, _ = c.Write([]byte("hello world"))
					b, err := io.ReadAll(c)
					if err != nil && !isReset(err) {
						t.Fatalf("plain client on the TLS port: %v (not closed?)", err)
					}
					if strings.Contains(string(b), "hello") {
						t.Fatalf("plain client on the TLS port was served: %q", b)
					}
				}, "TLS handshake failed", "127.0.0.1", "does not look like a TLS handshake")
			})

			t.Run("heartbeat", func(t *testing.T) {
				plain, err := net.DialTimeout("tcp", hbAddr, mpTimeout)
				if err != nil {
					t.Fatal(err)
				}
				defer plain.Close()
				t0 := time.Now()
				tc := tlsDial(t, "tcp", hbAddr, f.clientConfig(""))
				t1 := time.Now()
				for _, x := range []struct {
					name string
					c    net.Conn
					from time.Time
				}{{"idle plain client (no handshake)", plain, t0}, {"idle TLS client", tc, t1}} {
					_ = x.c.SetDeadline(time.Now().Add(mpTimeout))
					n, err := x.c.Read(make([]byte, 1))
					if n > 0 || (err != nil && errors.Is(err, os.ErrDeadlineExceeded)) {
						t.Fatalf("%s: read %d bytes, %v; want it closed by the heartbeat", x.name, n, err)
					}
					if d := time.Since(x.from); d < 800*time.Millisecond {
						t.Errorf("%s closed after %v, before heartbeat_idle_time (1 s)", x.name, d)
					}
				}
			})
		})
	}
}

// TestTLSSendWaitHTTPReply ports ssl/ssl_send_wait (SWOOLE_BASE): SendWait over TLS, with
// Swoole's test's ssl_ciphers and ssl_verify_peer false, answers an HTTP request, and a 4 MiB
// SendWait returns only once the data left the output queue (SendQueuedBytes 0 after it) while
// the client reads slowly.
func TestTLSSendWaitHTTPReply(t *testing.T) {
	f := newTLSFiles(t)
	s := tlsServer(t, f, "127.0.0.1", swoole.SockTCP, map[string]any{
		"ssl_ciphers":     "ALL:!ADH:!EXPORT56:RC4+RSA:+HIGH:+MEDIUM:+LOW:+SSLv2:+EXP",
		"ssl_verify_peer": false, "ssl_allow_self_signed": true,
	})
	big := tlsPattern(4<<20, 1)
	var queuedAfter atomic.Int64
	queuedAfter.Store(-1)
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		if strings.HasPrefix(string(data), "big") {
			if err := s.SendWait(fd, big); err != nil {
				t.Errorf("SendWait(4 MiB): %v", err)
			}
			if info, err := s.GetClientInfo(fd, -1, false); err == nil {
				queuedAfter.Store(int64(info.SendQueuedBytes))
			}
			return
		}
		if err := s.SendWait(fd, []byte("HTTP/1.1 200 OK\r\nContent-Length:6\r\nContent-Type: text/html; charset=UTF-8\r\n\r\nswoole")); err != nil {
			t.Errorf("SendWait: %v", err)
		}
	})
	r := start(t, s)
	c := tlsDial(t, "tcp", r.addr, f.clientConfig(""))
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	want := "HTTP/1.1 200 OK\r\nContent-Length:6\r\nContent-Type: text/html; charset=UTF-8\r\n\r\nswoole"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("reply %q, %v", got, err)
	}
	if _, err := c.Write([]byte("big")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	got = make([]byte, len(big))
	for n := 0; n < len(got); {
		m, err := c.Read(got[n:min(n+64<<10, len(got))])
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", n, len(got), err)
		}
		n += m
		if n < 1<<20 {
			time.Sleep(time.Millisecond) // a slow reader at first: SendWait has to wait
		}
	}
	if string(got) != string(big) {
		t.Fatalf("the 4 MiB SendWait came back different")
	}
	waitFor(t, ioTimeout, "SendWait to return", func() bool { return queuedAfter.Load() >= 0 })
	if q := queuedAfter.Load(); q != 0 {
		t.Errorf("SendQueuedBytes after SendWait returned: %d, want 0", q)
	}
}

// TestTLSSendFileFromOnConnect ports sendfile_ssl (SWOOLE_BASE): with
// kernel_socket_send_buffer_size 64 KiB, SendFile of a 1 MiB file from OnConnect reaches a
// client with a 64 KiB receive buffer that reads it slowly in pieces of 8–64 KiB; the bytes (md5)
// are the file's.
func TestTLSSendFileFromOnConnect(t *testing.T) {
	f := newTLSFiles(t)
	file := filepath.Join(t.TempDir(), "image.bin")
	content := tlsPattern(1<<20, 11)
	if err := os.WriteFile(file, content, 0o600); err != nil {
		t.Fatal(err)
	}
	s := tlsServer(t, f, "127.0.0.1", swoole.SockTCP, map[string]any{"kernel_socket_send_buffer_size": 65536})
	s.OnConnect(func(s *swoole.Server, fd int64, _ int) {
		if err := s.SendFile(fd, file, 0, 0); err != nil {
			t.Errorf("SendFile in OnConnect: %v", err)
		}
	})
	s.OnReceive(func(*swoole.Server, int64, int, []byte) {})
	r := start(t, s)
	d := &net.Dialer{Timeout: ioTimeout}
	raw, err := d.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.(*net.TCPConn).SetReadBuffer(65536)
	_ = raw.(*net.TCPConn).SetWriteBuffer(65536)
	c := tls.Client(raw, f.clientConfig(""))
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	var got []byte
	for i := 0; len(got) < len(content); i++ {
		n := 8192 + (i*7919)%(65536-8192)
		buf := make([]byte, n)
		m, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", len(got), len(content), err)
		}
		got = append(got, buf[:m]...)
		if i%8 == 0 {
			time.Sleep(time.Millisecond) // a slow reader
		}
	}
	if len(got) != len(content) || md5.Sum(got) != md5.Sum(content) {
		t.Fatalf("got %d bytes (md5 %x), want the file's %d (md5 %x)", len(got), md5.Sum(got), len(content), md5.Sum(content))
	}
}
