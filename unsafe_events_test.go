package swoole_test

// The connection events of a ModeProcess server under the dispatch modes that may pass one
// connection's events to several workers (every mode but 2 and 4, without a dispatch_func):
// without enable_unsafe_event, Swoole 6.2 logs a warning (9015) and leaves out OnConnect,
// OnClose, OnBufferFull and OnBufferEmpty, and the server starts (master.cc start_check).

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

func init() {
	mpMoreServers["connevents"] = ueServer
}

// ueHighWatermark is buffer_high_watermark of the connection-events server.
const ueHighWatermark = 256 << 10

// ueServer is a ModeProcess line server with one worker and one reactor, dispatch_mode from
// mpEnvDispatch and enable_unsafe_event from mpEnvUnsafe, whose OnConnect, OnClose,
// OnBufferFull and OnBufferEmpty write the events connect, close, bufferfull and
// bufferempty (with the session id). Requests:
//
//	ping             → "pong <session id>"
//	flood <fd> <kib> → <kib> KiB of 'x' to session fd, then "flooded <error code>"
//	conns            → "conns <connection_num>"
//
// Every event of the worker passes one pipe and the one reactor in order, so an answer to
// a request proves that whatever the master did for the requests before it (and the events
// it passed on) is done.
func ueServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeProcess, swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	set := swoole.Settings{
		WorkerNum:                  1,
		ReactorNum:                 1,
		DispatchMode:               envInt(mpEnvDispatch, 0),
		EnableUnsafeEvent:          os.Getenv(mpEnvUnsafe) == "1",
		LogLevel:                   swoole.LogLevelWarning,
		MaxConnection:              1024,
		OpenEOFSplit:               true,
		PackageEOF:                 "\n",
		SocketBufferSize:           64 << 20,
		BufferHighWatermark:        ueHighWatermark,
		KernelSocketSendBufferSize: 4096,
	}
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	s.OnConnect(func(s *swoole.Server, fd int64, _ int) { mpEvent("connect", fd) })
	s.OnClose(func(s *swoole.Server, fd int64, _ int) { mpEvent("close", fd) })
	s.OnBufferFull(func(s *swoole.Server, fd int64) { mpEvent("bufferfull", fd) })
	s.OnBufferEmpty(func(s *swoole.Server, fd int64) { mpEvent("bufferempty", fd) })
	s.OnStart(func(s *swoole.Server) { mpEvent("ready", s.Ports()[0].Port()) })
	s.OnWorkerStart(func(s *swoole.Server, id int) { mpEvent("workerstart", id) })
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		f := strings.Fields(string(data))
		reply := func(format string, args ...any) { _ = s.Send(fd, []byte(fmt.Sprintf(format, args...)+"\n")) }
		switch {
		case len(f) == 1 && f[0] == "ping":
			reply("pong %d", fd)
		case len(f) == 3 && f[0] == "flood":
			to, _ := strconv.ParseInt(f[1], 10, 64)
			kib, _ := strconv.Atoi(f[2])
			reply("flooded %d", mpCode(s.Send(to, bytes.Repeat([]byte("x"), kib<<10))))
		case len(f) == 1 && f[0] == "conns":
			reply("conns %d", s.Stats().ConnectionNum)
		default:
			reply("unknown %q", data)
		}
	})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// ueLine is a client of the connection-events server.
type ueLine struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// ueDial connects; rcvbuf > 0 sets SO_RCVBUF before the connection is made (a small one
// keeps what the server sends in the server's queue).
func ueDial(t *testing.T, port, rcvbuf int) *ueLine {
	t.Helper()
	d := net.Dialer{Timeout: mpTimeout}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	c, err := d.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &ueLine{t: t, c: c, r: bufio.NewReader(c)}
}

// do sends a request and returns the fields of the answer.
func (l *ueLine) do(req string) []string {
	l.t.Helper()
	_ = l.c.SetDeadline(time.Now().Add(mpTimeout))
	if _, err := l.c.Write([]byte(req + "\n")); err != nil {
		l.t.Fatalf("%s: %v", req, err)
	}
	line, err := l.r.ReadString('\n')
	if err != nil {
		l.t.Fatalf("%s: no answer: %v", req, err)
	}
	return strings.Fields(line)
}

// ueRun drives one connection through every connection event: connect, its output queue
// above buffer_high_watermark and drained, close. Another connection asks the questions
// that order the master's work (see ueServer). It returns the session id of the first
// connection; every event the server may deliver for it has been delivered by then.
func ueRun(t *testing.T, ms *mpServer) int64 {
	a := ueDial(t, ms.Port, 4096)
	b := ueDial(t, ms.Port, 0)
	f := a.do("ping") // after OnConnect of a, if it is delivered
	if len(f) != 2 || f[0] != "pong" {
		t.Fatalf("ping: %q", f)
	}
	fd, _ := strconv.ParseInt(f[1], 10, 64)
	const kib = 4096 // far above the high watermark plus what the kernel buffers hold
	if f := b.do(fmt.Sprintf("flood %d %d", fd, kib)); len(f) != 2 || f[1] != "0" {
		t.Fatalf("flood: %q", f)
	}
	_ = a.c.SetReadDeadline(time.Now().Add(mpTimeout))
	if n, err := io.CopyN(io.Discard, a.r, kib<<10); err != nil {
		t.Fatalf("read %d of %d flooded bytes: %v", n, kib<<10, err)
	}
	b.do("ping") // after the drain
	a.c.Close()
	deadline := time.Now().Add(mpTimeout)
	for {
		if f := b.do("conns"); len(f) == 2 && f[1] == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the closed connection is still counted after %v", mpTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.do("ping") // after OnClose of a, if it is delivered
	return fd
}

// TestModeProcessUnsafeEventsLeftOut: under dispatch_mode 1, 3, 5 and 7 without
// enable_unsafe_event, a ModeProcess server with OnConnect, OnClose, OnBufferFull and
// OnBufferEmpty starts, logs one 9015 warning per event, naming enable_unsafe_event, and
// delivers none of them while it serves. With enable_unsafe_event, or under dispatch_mode
// 2, the same run delivers each of them once, with no warning.
func TestModeProcessUnsafeEventsLeftOut(t *testing.T) {
	events := []string{"connect", "bufferfull", "bufferempty", "close"}
	for _, tc := range []struct {
		name      string
		env       []string
		delivered bool
	}{
		{"dispatch_mode 1", []string{mpEnvDispatch + "=1"}, false},
		{"dispatch_mode 3", []string{mpEnvDispatch + "=3"}, false},
		{"dispatch_mode 5", []string{mpEnvDispatch + "=5"}, false},
		{"dispatch_mode 7", []string{mpEnvDispatch + "=7"}, false},
		{"dispatch_mode 1 enable_unsafe_event", []string{mpEnvDispatch + "=1", mpEnvUnsafe + "=1"}, true},
		{"dispatch_mode 2", []string{mpEnvDispatch + "=2"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := mpStartServer(t, "connevents", "ready", tc.env...)
			fd := ueRun(t, ms)
			sfd := strconv.FormatInt(fd, 10)
			for _, ev := range events {
				n := ms.count(ev, func(e mpEv) bool { return e.Fields[0] == sfd })
				if want := map[bool]int{true: 1, false: 0}[tc.delivered]; n != want {
					t.Errorf("%s: %d %s events for session %d, want %d", tc.name, n, ev, fd, want)
				}
			}
			// Like Swoole's, the master passes OnBufferFull and OnBufferEmpty to a worker.
			for _, e := range ms.events() {
				if (e.Name == "bufferfull" || e.Name == "bufferempty") && e.PID == ms.Manager {
					t.Errorf("%s ran in the master (pid %d); want a worker", e.Name, e.PID)
				}
			}
			out, _ := os.ReadFile(ms.dir + "/output")
			var warned []string
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, "code=9015") {
					warned = append(warned, line)
				}
			}
			if tc.delivered {
				if len(warned) != 0 {
					t.Errorf("warnings where the events are delivered:\n%s", strings.Join(warned, "\n"))
				}
				return
			}
			for _, name := range []string{"onConnect", "onClose", "onBufferFull", "onBufferEmpty"} {
				n := 0
				for _, line := range warned {
					if strings.Contains(line, "'"+name+"'") && strings.Contains(line, "enable_unsafe_event") {
						n++
					}
				}
				if n != 1 {
					t.Errorf("%d warnings (9015, naming enable_unsafe_event) about %s, want 1 (from the master):\n%s", n, name, out)
				}
			}
		})
	}
}
