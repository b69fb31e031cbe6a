package swoole_test

// A connection's output queue: a Send that returned nil reaches the client whole, in every
// mode (the owner of a connection never drops what another process's Send accepted: it
// queues it and marks the connection overflowed, and the next Send fails with 1008), and a
// Close with output queued keeps the session until the output is written (a second Close is
// 1004; Close(fd, true) drops the rest and resets). Swoole's tests close_queued.phpt and
// close_reset.phpt.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

func init() { mpMoreServers["outq"] = oqServer }

// oqPattern is n bytes of a pattern that shows where a cut or a shift happened.
func oqPattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// oqFrame is frame seq of size bytes: seq (8 bytes, big endian), then the byte seq%256.
func oqFrame(seq, size int) []byte {
	b := bytes.Repeat([]byte{byte(seq)}, size)
	binary.BigEndian.PutUint64(b, uint64(seq))
	return b
}

// oqEnvBuf is socket_buffer_size for the oqServer.
const oqEnvBuf = "GOSWOOLE_TEST_OQ_BUF"

// oqServer is a line server (ModeProcess with GOSWOOLE_TEST_MODE=process, else ModeBase, with
// GOSWOOLE_TEST_WORKERS workers) whose commands act on another connection:
//
//	who                   → "who <worker id> <session id>"
//	fill <fd> <n>         → one Send of oqPattern(n) to fd, then "fill <code>"
//	flood <fd> <size>     → oqFrame 0, 1, ... of size bytes to fd, a few every 2 ms from a
//	                        timer, until a Send fails (or 64 MiB were sent); then the event
//	                        "flood <frames accepted> <code of the Send that failed>"
//	close <fd> <reset>    → "close <code>"
//	conns                 → "conns <connection_num>"
//
// OnClose logs the event "onclose <fd>".
func oqServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	set := swoole.Settings{
		WorkerNum:                  envInt(mpEnvWorkers, 2),
		LogLevel:                   swoole.LogLevelWarning,
		MaxConnection:              1024,
		OpenEOFSplit:               true,
		PackageEOF:                 "\n",
		MaxWaitTime:                3 * time.Second,
		DispatchMode:               2,
		SocketBufferSize:           envInt(oqEnvBuf, 2<<20),
		BufferOutputSize:           64 << 20,
		KernelSocketSendBufferSize: 128 << 10,
	}
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	s.OnManagerStart(func(s *swoole.Server) { mpEvent("managerstart", port) })
	s.OnClose(func(s *swoole.Server, fd int64, _ int) { mpEvent("onclose", fd) })
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		f := strings.Fields(string(data))
		if len(f) == 0 {
			return
		}
		reply := func(format string, args ...any) { _ = s.Send(fd, []byte(fmt.Sprintf(format, args...)+"\n")) }
		arg := func(i int) int64 {
			if i >= len(f) {
				return 0
			}
			n, _ := strconv.ParseInt(f[i], 10, 64)
			return n
		}
		switch f[0] {
		case "who":
			reply("who %d %d", s.GetWorkerID(), fd)
		case "fill":
			reply("fill %d", mpCode(s.Send(arg(1), oqPattern(int(arg(2))))))
		case "close":
			reply("close %d", mpCode(s.Close(arg(1), arg(2) == 1)))
		case "conns":
			reply("conns %d", s.Stats().ConnectionNum)
		case "flood":
			to, size := arg(1), int(arg(2))
			seq := 0
			_, err := s.Tick(2, func(id int) {
				for range 4 {
					if err := s.Send(to, oqFrame(seq, size)); err != nil || seq*size >= 64<<20 {
						s.ClearTimer(id)
						mpEvent("flood", seq, mpCode(err))
						return
					}
					seq++
				}
			})
			reply("flood %d", mpCode(err))
		default:
			reply("unknown %q", f[0])
		}
	})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// oqDialSlow connects with a small receive buffer (the client then does not read) and
// returns the connection, its session id and the worker that serves it.
func oqDialSlow(t *testing.T, ms *mpServer) (net.Conn, *mpClient, int64, int) {
	t.Helper()
	c := dialSmallRcvBuf(t, "127.0.0.1:"+strconv.Itoa(ms.Port))
	cl := &mpClient{t: t, c: c, r: bufio.NewReader(c)}
	f := cl.do("who")
	if len(f) != 3 || f[0] != "who" {
		t.Fatalf("who: %q", f)
	}
	fd, _ := strconv.ParseInt(f[2], 10, 64)
	return c, cl, fd, atoi(f[1])
}

// oqControl connects a control client served by a worker other than avoid (-1: any).
func oqControl(t *testing.T, ms *mpServer, avoid int) *mpClient {
	t.Helper()
	for range 64 {
		cl := ms.dial()
		f := cl.do("who")
		if len(f) == 3 && (avoid < 0 || atoi(f[1]) != avoid) {
			return cl
		}
		cl.c.Close()
	}
	t.Fatalf("no connection landed on a worker other than %d", avoid)
	return nil
}

// oqReadAll reads from cl (its buffered reader first) until n bytes came or the peer closed.
func oqRead(t *testing.T, cl *mpClient, n int) []byte {
	t.Helper()
	_ = cl.c.SetReadDeadline(time.Now().Add(mpTimeout))
	buf := make([]byte, 0, n)
	tmp := make([]byte, 256<<10)
	for len(buf) < n {
		k, err := cl.r.Read(tmp[:min(len(tmp), n-len(buf))])
		buf = append(buf, tmp[:k]...)
		if err != nil {
			break
		}
	}
	return buf
}

// oqWantFrames checks that got is frames 0 … n-1 of size bytes, whole and in order.
func oqWantFrames(t *testing.T, got []byte, n, size int) {
	t.Helper()
	if len(got) != n*size {
		t.Errorf("the client got %d bytes, want the %d frames of %d bytes whose Send returned nil (%d bytes)", len(got), n, size, n*size)
	}
	for i := 0; (i+1)*size <= len(got); i++ {
		if fr := got[i*size : (i+1)*size]; !bytes.Equal(fr, oqFrame(i, size)) {
			t.Fatalf("frame %d is not whole or not in order: it starts with seq %d", i, binary.BigEndian.Uint64(fr))
		}
	}
}

// TestSendOverflowNeverDrops: ModeProcess, and ModeBase with a Send from another worker. A
// client that does not read while a worker Sends frame after frame: once the connection's
// queue is over socket_buffer_size, the next Send fails with 1008; every Send that returned
// nil reaches the client whole and in order once it reads.
func TestSendOverflowNeverDrops(t *testing.T) {
	for _, mode := range []string{"process", "base"} {
		t.Run(mode, func(t *testing.T) {
			ms := mpStartServer(t, "outq", "managerstart", mpEnvMode+"="+mode, oqEnvBuf+"=1048576")
			_, slow, fd, owner := oqDialSlow(t, ms)
			avoid := -1
			if mode == "base" {
				avoid = owner // the Sends cross to the owner's process
			}
			ctl := oqControl(t, ms, avoid)
			const size = 64 << 10
			if f := ctl.do(fmt.Sprintf("flood %d %d", fd, size)); len(f) != 2 || f[1] != "0" {
				t.Fatalf("flood: %q", f)
			}
			ev := ms.waitEvent("flood", nil)
			n, code := ev.int(0), ev.int(1)
			if code != swoole.ErrOutputBufferOverflow {
				t.Errorf("after %d frames (%d bytes) a Send failed with code %d, want %d (the client does not read)", n, n*size, code, swoole.ErrOutputBufferOverflow)
			}
			oqWantFrames(t, oqRead(t, slow, n*size), n, size)
		})
	}
}

// TestSendLargerThanSocketBuffer: ModeProcess. One Send larger than socket_buffer_size to a
// connection with nothing queued is delivered whole, as in ModeBase.
func TestSendLargerThanSocketBuffer(t *testing.T) {
	ms := mpStartServer(t, "outq", "managerstart", mpEnvMode+"=process")
	_, slow, fd, _ := oqDialSlow(t, ms)
	ctl := oqControl(t, ms, -1)
	const n = 3 << 20 // socket_buffer_size 2 MiB
	if f := ctl.do(fmt.Sprintf("fill %d %d", fd, n)); len(f) != 2 || f[1] != "0" {
		t.Fatalf("fill: %q", f)
	}
	if got := oqRead(t, slow, n); !bytes.Equal(got, oqPattern(n)) {
		t.Errorf("the client got %d bytes, want the %d of the one Send, whole", len(got), n)
	}
}

// TestCloseQueuedMultiProcess: ModeProcess, and ModeBase with Close from another worker. A
// Close with output queued: OnClose runs, the session stays (connection_num counts it) while
// the output drains, a second Close is 1004, then the client gets every byte and EOF.
func TestCloseQueuedMultiProcess(t *testing.T) {
	for _, mode := range []string{"process", "base"} {
		t.Run(mode, func(t *testing.T) {
			ms := mpStartServer(t, "outq", "managerstart", mpEnvMode+"="+mode)
			_, slow, fd, owner := oqDialSlow(t, ms)
			avoid := -1
			if mode == "base" {
				avoid = owner
			}
			ctl := oqControl(t, ms, avoid)
			const n = 8 << 20
			if f := ctl.do(fmt.Sprintf("fill %d %d", fd, n)); len(f) != 2 || f[1] != "0" {
				t.Fatalf("fill: %q", f)
			}
			if f := ctl.do(fmt.Sprintf("close %d 0", fd)); len(f) != 2 || f[1] != "0" {
				t.Fatalf("close: %q", f)
			}
			ms.waitEvent("onclose", func(e mpEv) bool { return e.Fields[0] == strconv.FormatInt(fd, 10) })
			if f := ctl.do("conns"); len(f) != 2 || f[1] != "2" {
				t.Errorf("connection_num while the closed session's output drains: %q, want 2", f)
			}
			if f := ctl.do(fmt.Sprintf("close %d 0", fd)); len(f) != 2 || f[1] != strconv.Itoa(swoole.ErrSessionClosed) {
				t.Errorf("a second Close while the output drains: %q, want code %d", f, swoole.ErrSessionClosed)
			}
			got := oqRead(t, slow, n+1)
			if !bytes.Equal(got, oqPattern(n)) {
				t.Errorf("the client got %d bytes before the close, want all %d queued", len(got), n)
			}
			ms.eventually("the session to go", func() bool {
				f := ctl.do("conns")
				return len(f) == 2 && f[1] == "1"
			})
			if f := ctl.do(fmt.Sprintf("close %d 0", fd)); len(f) != 2 || f[1] != strconv.Itoa(swoole.ErrSessionNotExist) {
				t.Errorf("Close once the session is gone: %q, want code %d", f, swoole.ErrSessionNotExist)
			}
		})
	}
}

// TestCloseResetWhileDrainingMultiProcess: ModeProcess, and ModeBase with Close from another
// worker. Close(fd, true) while a closed session's output drains drops the rest and resets
// the connection at once.
func TestCloseResetWhileDrainingMultiProcess(t *testing.T) {
	for _, mode := range []string{"process", "base"} {
		t.Run(mode, func(t *testing.T) {
			ms := mpStartServer(t, "outq", "managerstart", mpEnvMode+"="+mode)
			_, slow, fd, owner := oqDialSlow(t, ms)
			avoid := -1
			if mode == "base" {
				avoid = owner
			}
			ctl := oqControl(t, ms, avoid)
			const n = 16 << 20
			if f := ctl.do(fmt.Sprintf("fill %d %d", fd, n)); len(f) != 2 || f[1] != "0" {
				t.Fatalf("fill: %q", f)
			}
			if f := ctl.do(fmt.Sprintf("close %d 0", fd)); len(f) != 2 || f[1] != "0" {
				t.Fatalf("close: %q", f)
			}
			ms.waitEvent("onclose", func(e mpEv) bool { return e.Fields[0] == strconv.FormatInt(fd, 10) })
			if f := ctl.do(fmt.Sprintf("close %d 1", fd)); len(f) != 2 || f[1] != "0" {
				t.Errorf("Close(fd, true) while the output drains: %q, want code 0", f)
			}
			ms.eventually("the session to go", func() bool {
				f := ctl.do("conns")
				return len(f) == 2 && f[1] == "1"
			})
			if got := oqRead(t, slow, n); len(got) >= n {
				t.Errorf("the client got all %d bytes: the reset did not drop the queued rest", len(got))
			}
		})
	}
}

// TestCloseQueuedSessionStays: one-process ModeBase. A Close with output queued keeps the
// session (connection_num counts it) until the output is written: a second Close is 1004, the
// client gets every byte and then EOF, and the session goes.
func TestCloseQueuedSessionStays(t *testing.T) {
	s := newServer(t, map[string]any{"socket_buffer_size": 64 << 20, "kernel_socket_send_buffer_size": 128 << 10})
	closed := make(chan int64, 1)
	s.OnReceive(func(*swoole.Server, int64, int, []byte) {})
	s.OnClose(func(_ *swoole.Server, fd int64, _ int) { closed <- fd })
	r := start(t, s)
	c := dialSmallRcvBuf(t, r.addr)
	fd := fdOf(t, s, c)
	const n = 8 << 20
	want := oqPattern(n)
	if err := s.Send(fd, want); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := s.Close(fd, false); err != nil {
		t.Fatalf("Close: %v", err)
	}
	oqWaitOnClose(t, s, fd, closed)
	if cn := s.Stats().ConnectionNum; cn != 1 {
		t.Errorf("connection_num %d while the closed session's output drains, want 1", cn)
	}
	got, err := readUntilClosed(t, c)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("the client got %d bytes and then %v, want all %d queued and EOF", len(got), err, n)
	}
	waitFor(t, ioTimeout, "the session to go", func() bool { return s.Stats().ConnectionNum == 0 })
	wantCode(t, s, "Close once the session is gone", s.Close(fd, false), swoole.ErrSessionNotExist)
}

// TestCloseResetWhileDraining: one-process ModeBase. Close(fd, true) while a closed
// session's output drains drops the rest and resets the connection at once.
func TestCloseResetWhileDraining(t *testing.T) {
	s := newServer(t, map[string]any{"socket_buffer_size": 64 << 20, "kernel_socket_send_buffer_size": 128 << 10})
	closed := make(chan int64, 1)
	s.OnReceive(func(*swoole.Server, int64, int, []byte) {})
	s.OnClose(func(_ *swoole.Server, fd int64, _ int) { closed <- fd })
	r := start(t, s)
	c := dialSmallRcvBuf(t, r.addr)
	fd := fdOf(t, s, c)
	const n = 16 << 20
	if err := s.Send(fd, oqPattern(n)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := s.Close(fd, false); err != nil {
		t.Fatalf("Close: %v", err)
	}
	oqWaitOnClose(t, s, fd, closed)
	if err := s.Close(fd, true); err != nil {
		t.Errorf("Close(fd, true) while the output drains: %v, want nil", err)
	}
	waitFor(t, ioTimeout, "the session to go", func() bool { return s.Stats().ConnectionNum == 0 })
	if got, _ := readUntilClosed(t, c); len(got) >= n {
		t.Errorf("the client got all %d bytes: the reset did not drop the queued rest", len(got))
	}
}

// oqWaitOnClose waits for OnClose of fd (closed) to have run and returned: until then a Close
// is 1003 (Close inside OnClose); after, while the output drains, it is 1004.
func oqWaitOnClose(t *testing.T, s *swoole.Server, fd int64, closed <-chan int64) {
	t.Helper()
	select {
	case <-closed:
	case <-time.After(ioTimeout):
		t.Fatal("no OnClose")
	}
	var err error
	waitFor(t, ioTimeout, "OnClose to return", func() bool {
		err = s.Close(fd, false)
		return code(err) != swoole.ErrSessionClosing
	})
	wantCode(t, s, "a second Close while the output drains", err, swoole.ErrSessionClosed)
}
