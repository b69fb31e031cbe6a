package swoole_test

// TLS in every mode: ModeBase in one process, ModeBase with two worker processes (each worker
// terminates the TLS of the connections it accepted) and ModeProcess (the master's reactors
// terminate TLS; workers see plaintext). One server (tlsModesServer), one table of checks.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

func init() { mpMoreServers["tls"] = tlsModesServer }

// tlsEnvDir is where the test put the PEM files (newTLSFiles' names) and the file for
// SendFile ("sendfile").
const tlsEnvDir = "GOSWOOLE_TEST_TLS_DIR"

// tlsModesServer serves line requests ("\n"-framed) on a SockTCP|SockSSL port:
//
//	echo <x>   → <x>
//	who        → "who <worker id> <pid> <session id>"
//	big <n>    → n bytes of tlsLetters(n), then "\n"
//	file       → the file $dir/sendfile by SendFile, then "\n"
//	reload     → Reload(false): "reload <code>"
//
// A plain TCP port beside it echoes lines too. Ready event: "managerstart <tls port> <plain port>".
func tlsModesServer() int {
	dir := os.Getenv(tlsEnvDir)
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP|swoole.SockSSL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	workers := envInt(mpEnvWorkers, 2)
	set := mpLineSettings(workers)
	set.LogLevel = swoole.LogLevelError
	set.SSLCertFile, set.SSLKeyFile, set.SSLClientCertFile = dir+"/server.pem", dir+"/server.key", dir+"/ca.pem"
	set.PackageMaxLength = 4 << 20
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	plain, err := s.AddListener("127.0.0.1", 0, swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "AddListener:", err)
		return 2
	}
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		cmd, arg, _ := strings.Cut(strings.TrimSuffix(string(data), "\n"), " ")
		switch cmd {
		case "echo":
			_ = s.Send(fd, []byte(arg+"\n"))
		case "who":
			_ = s.Send(fd, []byte(fmt.Sprintf("who %d %d %d\n", s.GetWorkerID(), os.Getpid(), fd)))
		case "big":
			n, _ := strconv.Atoi(arg)
			_ = s.Send(fd, append(tlsLetters(n), '\n'))
		case "file":
			if err := s.SendFile(fd, dir+"/sendfile", 0, 0); err != nil {
				_ = s.Send(fd, []byte("sendfile error "+err.Error()+"\n"))
				return
			}
			_ = s.Send(fd, []byte("\n"))
		case "reload":
			_ = s.Send(fd, []byte(fmt.Sprintf("reload %d\n", mpCode(s.Reload(false)))))
		default:
			_ = s.Send(fd, []byte("unknown "+cmd+"\n"))
		}
	})
	ports := fmt.Sprint(s.Ports()[0].Port(), " ", plain.Port())
	s.OnWorkerStart(func(s *swoole.Server, id int) { mpEvent("workerstart", id) })
	s.OnManagerStart(func(*swoole.Server) { mpEvent("managerstart", ports) })
	s.OnStart(func(*swoole.Server) {
		if workers == 1 {
			mpEvent("managerstart", ports) // one process: no manager
		}
	})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

func tlsLineDial(t *testing.T, f *tlsFiles, port int) *lineClient {
	t.Helper()
	cfg := f.clientConfig("")
	cfg.Certificates = []tls.Certificate{f.client}
	c := tlsDial(t, "tcp", "127.0.0.1:"+strconv.Itoa(port), cfg)
	return &lineClient{t: t, c: c, r: bufio.NewReaderSize(c, 1<<20), timeout: mpTimeout}
}

// TestTLSInEveryMode: in each mode, TLS clients echo (small and 300 KB replies), SendFile's
// bytes arrive encrypted and whole, plain bytes to the TLS port close only that connection
// while the plain port and the TLS clients go on, connections spread over the workers, and in
// ModeProcess a Reload replaces every worker while the TLS connections stay open and working.
func TestTLSInEveryMode(t *testing.T) {
	f := newTLSFiles(t)
	fileData := tlsPattern(200000, 7)
	if err := os.WriteFile(f.dir+"/sendfile", fileData, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range featureModes {
		t.Run(mode.name, func(t *testing.T) {
			ms := mpStartServer(t, "tls", "managerstart", append(mode.env, tlsEnvDir+"="+f.dir)...)
			ev := ms.waitEvent("managerstart", nil)
			tlsPort, plainPort := ev.int(0), ev.int(1)
			workers := 1
			if !strings.Contains(mode.name, "1proc") {
				workers = 2
				ms.eventually("both workers started", func() bool { return ms.count("workerstart", nil) >= 2 })
			}

			c := tlsLineDial(t, f, tlsPort)
			if got := c.do("echo hello"); got != "hello" {
				t.Fatalf("echo: %q", got)
			}
			if got := c.do("big 300000"); !bytes.Equal([]byte(got), tlsLetters(300000)) {
				t.Fatalf("big reply: %d bytes, not the pattern", len(got))
			}
			_ = c.c.SetDeadline(time.Now().Add(mpTimeout))
			if _, err := c.c.Write([]byte("file\n")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(fileData)+1)
			if _, err := io.ReadFull(c.r, got); err != nil || !bytes.Equal(got[:len(fileData)], fileData) || got[len(fileData)] != '\n' {
				t.Fatalf("SendFile over TLS: %v (%d bytes)", err, len(got))
			}

			// Plain bytes to the TLS port: that connection closes, nothing else does.
			bad, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(tlsPort), mpTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer bad.Close()
			_ = bad.SetDeadline(time.Now().Add(mpTimeout))
			_, _ = bad.Write([]byte("echo not tls\n"))
			b, err := io.ReadAll(bad) // up to the close
			if err != nil && !isReset(err) {
				t.Fatalf("plain client on the TLS port: %v (not closed?)", err)
			}
			if bytes.Contains(b, []byte("not tls")) {
				t.Fatalf("plain client on the TLS port was served: %q", b)
			}
			if got := c.do("echo after a plain client"); got != "after a plain client" {
				t.Fatalf("echo after a plain client: %q", got)
			}
			pc, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(plainPort), mpTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			_ = pc.SetDeadline(time.Now().Add(mpTimeout))
			pr := bufio.NewReader(pc)
			_, _ = pc.Write([]byte("echo plain\n"))
			if l, err := pr.ReadString('\n'); err != nil || l != "plain\n" {
				t.Fatalf("plain port: %q, %v", l, err)
			}

			// Connections reach every worker (each one terminates TLS, or sees plaintext).
			pids := map[string]bool{} // the workers reached
			var clients []*lineClient
			for i := 0; i < 40 && len(pids) < workers; i++ {
				cl := tlsLineDial(t, f, tlsPort)
				clients = append(clients, cl)
				fields := strings.Fields(cl.do("who"))
				if len(fields) != 4 {
					t.Fatalf("who: %q", fields)
				}
				pids[fields[1]+"/"+fields[2]] = true // worker id and pid (ModeThread: one pid)
			}
			if len(pids) < workers {
				t.Errorf("TLS connections reached %d workers, want %d", len(pids), workers)
			}
			for i, cl := range clients {
				if got := cl.do("echo c" + strconv.Itoa(i)); got != "c"+strconv.Itoa(i) {
					t.Fatalf("client %d: %q", i, got)
				}
			}

			if mode.name == "process" {
				before := ms.count("workerstart", nil)
				if got := c.do("reload"); got != "reload 0" {
					t.Fatalf("reload: %q", got)
				}
				ms.eventually("the workers replaced", func() bool { return ms.count("workerstart", nil) >= before+2 })
				// The TLS sessions live in the master: they go on with the new workers.
				if got := c.do("echo after reload"); got != "after reload" {
					t.Fatalf("echo after reload: %q", got)
				}
				for i, cl := range clients {
					if got := cl.do("echo r" + strconv.Itoa(i)); got != "r"+strconv.Itoa(i) {
						t.Fatalf("client %d after reload: %q", i, got)
					}
				}
			}
		})
	}
}

// tlsLetters is n bytes of a-z, repeated (no newline in it).
func tlsLetters(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}
