package swoole_test

// Helpers of the issue-3 tests (framing, datagrams, timers, heartbeat, sendfile, delayed
// receive). Every name starts with i3 so that they never clash with the helpers of other
// test files of the package.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// i3Timeout bounds every wait of these tests. It is generous: the suite runs under -race on
// a 2-core machine.
const i3Timeout = 10 * time.Second

// i3Quiet are the settings every test server starts from: nothing logged, and a small
// connection table.
var i3Quiet = swoole.Settings{LogLevel: swoole.LogLevelNone, MaxConnection: 1024}

// i3New creates a ModeBase server of the socket type on host, port 0, with i3Quiet and then
// set applied. It is not started.
func i3New(t testing.TB, host string, sock swoole.SockType, set swoole.Settings) *swoole.Server {
	t.Helper()
	s, err := swoole.NewServer(host, 0, swoole.ModeBase, sock)
	if err != nil {
		t.Fatalf("NewServer(%q, 0, ModeBase, %v): %v", host, sock, err)
	}
	if err := s.Set(i3Quiet); err != nil {
		t.Fatalf("Set(quiet): %v", err)
	}
	if err := s.Set(set); err != nil {
		t.Fatalf("Set(%+v): %v", set, err)
	}
	return s
}

// i3Start runs s.Start in a goroutine and returns once the server serves. At cleanup it
// shuts the server down and waits for Start to return nil.
func i3Start(t testing.TB, s *swoole.Server) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Start() }()
	deadline := time.Now().Add(i3Timeout)
	for {
		if _, err := s.GetWorkerStatus(0); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Start returned before serving: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not start within %v", i3Timeout)
		}
		time.Sleep(time.Millisecond)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Start returned %v after Shutdown, want nil", err)
			}
		case <-time.After(i3Timeout):
			t.Errorf("Start did not return within %v of Shutdown", i3Timeout)
		}
	})
}

// i3StartWait is i3Start with the channel Start's result arrives on, for tests that shut the
// server down themselves; nothing is done at cleanup beyond a last Shutdown.
func i3StartWait(t testing.TB, s *swoole.Server) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Start() }()
	i3Eventually(t, "the server serves", func() bool {
		_, err := s.GetWorkerStatus(0)
		return err == nil
	})
	t.Cleanup(func() { _ = s.Shutdown() })
	return done
}

// i3Eventually polls cond until it holds, failing the test after i3Timeout.
func i3Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(i3Timeout)
	pause := 50 * time.Microsecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", i3Timeout, what)
		}
		time.Sleep(pause)
		pause = min(2*pause, 5*time.Millisecond)
	}
}

// i3Addr returns the network and address a client dials to reach p.
func i3Addr(p *swoole.Port) (network, addr string) {
	switch p.Type() {
	case swoole.SockTCP, swoole.SockTCP6:
		return "tcp", net.JoinHostPort(p.Host(), strconv.Itoa(p.Port()))
	case swoole.SockUDP, swoole.SockUDP6:
		return "udp", net.JoinHostPort(p.Host(), strconv.Itoa(p.Port()))
	case swoole.SockUnixStream:
		return "unix", p.Host()
	case swoole.SockUnixDgram:
		return "unixgram", p.Host()
	}
	panic("unknown socket type " + p.Type().String())
}

// i3Dial connects to p (TCP connections get TCP_NODELAY, Go's default) and closes the
// connection at cleanup.
func i3Dial(t testing.TB, p *swoole.Port) net.Conn {
	t.Helper()
	network, addr := i3Addr(p)
	c, err := net.DialTimeout(network, addr, i3Timeout)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.SetNoDelay(true); err != nil {
			t.Fatalf("SetNoDelay: %v", err)
		}
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// i3Write writes p whole, failing the test on an error.
func i3Write(t testing.TB, c net.Conn, p []byte) {
	t.Helper()
	if err := c.SetWriteDeadline(time.Now().Add(i3Timeout)); err != nil {
		t.Fatalf("SetWriteDeadline: %v", err)
	}
	if _, err := c.Write(p); err != nil {
		t.Fatalf("write %d bytes: %v", len(p), err)
	}
}

// i3WriteBytewise writes p one byte per write call (with TCP_NODELAY each goes out as its
// own segment).
func i3WriteBytewise(t testing.TB, c net.Conn, p []byte) {
	t.Helper()
	for i := range p {
		i3Write(t, c, p[i:i+1])
	}
}

// i3ReadFull reads exactly n bytes within i3Timeout.
func i3ReadFull(t testing.TB, c net.Conn, n int) []byte {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(i3Timeout)); err != nil {
		t.Fatalf("SetReadDeadline: %v", err)
	}
	b := make([]byte, n)
	if k, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: got %d: %v", n, k, err)
	}
	return b
}

// i3WantClosed reads from c until the server's close shows (EOF or a reset) and fails the
// test if the connection stays open for i3Timeout or delivers data.
func i3WantClosed(t testing.TB, c net.Conn) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(i3Timeout)); err != nil {
		t.Fatalf("SetReadDeadline: %v", err)
	}
	var got bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			if got.Len() > 0 {
				t.Errorf("the connection delivered %d unexpected bytes before closing: %q", got.Len(), i3Trunc(got.Bytes()))
			}
			return
		}
		t.Fatalf("want the server to close the connection, got %v after %d bytes", err, got.Len())
	}
}

func i3Trunc(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// i3Code returns the Swoole code of err (0 when err is not a *swoole.Error).
func i3Code(err error) int {
	var e *swoole.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// i3WantCode fails unless err is a *swoole.Error with the code, that also became the
// server's last error.
func i3WantCode(t testing.TB, s *swoole.Server, what string, err error, code int) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: got nil error, want code %d", what, code)
		return
	}
	if got := i3Code(err); got != code {
		t.Errorf("%s: got %v (code %d), want code %d", what, err, got, code)
		return
	}
	if !errors.Is(err, swoole.ErrCode(code)) {
		t.Errorf("%s: errors.Is(err, ErrCode(%d)) is false", what, code)
	}
	if s != nil && s.GetLastError() != code {
		t.Errorf("%s: GetLastError() = %d, want %d", what, s.GetLastError(), code)
	}
}

// i3FDOf returns the session id of the client connection c (matched on its local port).
func i3FDOf(t testing.TB, s *swoole.Server, c net.Conn) int64 {
	t.Helper()
	local := c.LocalAddr().(*net.TCPAddr).Port
	var fd int64
	i3Eventually(t, fmt.Sprintf("a session for the client port %d", local), func() bool {
		for id := range s.Connections() {
			if info, err := s.GetClientInfo(id, -1, true); err == nil && info.RemotePort == local {
				fd = id
				return true
			}
		}
		return false
	})
	i3Barrier(t, s)
	return fd
}

// i3Barrier waits for a function run on the server's loop. Everything the loop did before
// (accepting the connection just found in the table, say) then happens-before the caller's
// next step, also for the race detector.
//
// Why: the connection table lives in shared memory (mmap), where the race detector does not
// see the atomics that publish a new connection; and internal/reactor's Loop.accept sets the
// connection's loop and epoll interest (Conn.loop, Conn.events) without holding Conn.mu,
// after the session is findable. A goroutine that finds a session in the table and Sends to
// it while output is queued is then reported as a race (see the report of issue 3's tests).
func i3Barrier(t testing.TB, s *swoole.Server) {
	t.Helper()
	ch := make(chan struct{})
	if err := s.Defer(func() { close(ch) }); err != nil {
		t.Fatalf("Defer: %v", err)
	}
	select {
	case <-ch:
	case <-time.After(i3Timeout):
		t.Fatalf("the loop did not run a deferred function within %v", i3Timeout)
	}
}

// i3Rec records what a server's callbacks saw. Safe for concurrent use.
type i3Rec struct {
	mu     sync.Mutex
	frames map[int64][][]byte // OnReceive data, copied, by session
	closed map[int64][]int    // OnClose reactorIDs by session
}

func newI3Rec() *i3Rec {
	return &i3Rec{frames: map[int64][][]byte{}, closed: map[int64][]int{}}
}

func (r *i3Rec) receive(fd int64, data []byte) {
	r.mu.Lock()
	r.frames[fd] = append(r.frames[fd], bytes.Clone(data))
	r.mu.Unlock()
}

func (r *i3Rec) close(fd int64, reactorID int) {
	r.mu.Lock()
	r.closed[fd] = append(r.closed[fd], reactorID)
	r.mu.Unlock()
}

// got returns a copy of the frames of fd.
func (r *i3Rec) got(fd int64) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.frames[fd]...)
}

func (r *i3Rec) count(fd int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.frames[fd])
}

func (r *i3Rec) closes(fd int64) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.closed[fd]...)
}

// waitFrames waits until fd has delivered n frames and returns them.
func (r *i3Rec) waitFrames(t testing.TB, fd int64, n int) [][]byte {
	t.Helper()
	i3Eventually(t, fmt.Sprintf("%d frames from session %d", n, fd), func() bool { return r.count(fd) >= n })
	return r.got(fd)
}

// waitClosed waits for OnClose of fd and returns its reactorID.
func (r *i3Rec) waitClosed(t testing.TB, fd int64) int {
	t.Helper()
	i3Eventually(t, fmt.Sprintf("OnClose of session %d", fd), func() bool { return len(r.closes(fd)) > 0 })
	return r.closes(fd)[0]
}

// i3EchoServer registers handlers on s that record every OnReceive and OnClose in the
// returned recorder and send every received frame back as it came.
func i3EchoServer(s *swoole.Server) *i3Rec {
	r := newI3Rec()
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		r.receive(fd, data)
		_ = s.Send(fd, data)
	})
	s.OnClose(func(s *swoole.Server, fd int64, reactorID int) { r.close(fd, reactorID) })
	return r
}

// i3WantFrames compares frames with want, frame by frame.
func i3WantFrames(t testing.TB, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d:\n got %q\nwant %q", len(got), len(want), i3Short(got), i3Short(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d: got %q, want %q", i, i3Trunc(got[i]), i3Trunc(want[i]))
		}
	}
}

func i3Short(fs [][]byte) [][]byte {
	out := make([][]byte, 0, min(len(fs), 8))
	for i, f := range fs {
		if i == 8 {
			out = append(out, []byte("..."))
			break
		}
		out = append(out, i3Trunc(f))
	}
	return out
}

// i3Healthy is a second connection that must go on echoing while another connection of the
// same server misbehaves.
type i3Healthy struct {
	c      net.Conn
	encode func([]byte) []byte
	n      int
}

func newI3Healthy(t testing.TB, p *swoole.Port, encode func([]byte) []byte) *i3Healthy {
	t.Helper()
	h := &i3Healthy{c: i3Dial(t, p), encode: encode}
	h.check(t)
	return h
}

// check sends one frame and wants it echoed byte for byte.
func (h *i3Healthy) check(t testing.TB) {
	t.Helper()
	h.n++
	f := h.encode([]byte("healthy " + strconv.Itoa(h.n)))
	i3Write(t, h.c, f)
	if got := i3ReadFull(t, h.c, len(f)); !bytes.Equal(got, f) {
		t.Fatalf("the healthy connection got %q, want %q", got, f)
	}
}

// i3EchoLoop keeps a connection of its own echoing frames in the background until the
// returned stop is called; stop fails the test if an echo went wrong and returns how many
// round trips were made. mark returns the count so far.
func i3EchoLoop(t testing.TB, p *swoole.Port, encode func([]byte) []byte) (mark func() int64, stop func() int64) {
	t.Helper()
	c := i3Dial(t, p)
	var n atomic.Int64
	quit := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 256)
		for i := 0; ; i++ {
			select {
			case <-quit:
				done <- nil
				return
			default:
			}
			f := encode([]byte("loop " + strconv.Itoa(i)))
			_ = c.SetDeadline(time.Now().Add(i3Timeout))
			if _, err := c.Write(f); err != nil {
				done <- fmt.Errorf("echo loop write %d: %w", i, err)
				return
			}
			if _, err := io.ReadFull(c, buf[:len(f)]); err != nil {
				done <- fmt.Errorf("echo loop read %d: %w", i, err)
				return
			}
			if !bytes.Equal(buf[:len(f)], f) {
				done <- fmt.Errorf("echo loop %d: got %q, want %q", i, buf[:len(f)], f)
				return
			}
			n.Add(1)
		}
	}()
	stopped := false
	stop = func() int64 {
		t.Helper()
		if !stopped {
			stopped = true
			close(quit)
			if err := <-done; err != nil {
				t.Errorf("the background echo connection failed: %v", err)
			}
		}
		return n.Load()
	}
	t.Cleanup(func() { stop() })
	return n.Load, stop
}

// i3PutLen writes v as a length field of the pack() type typ (c C s S n N l L q Q J P v V)
// into b, which must be long enough.
func i3PutLen(b []byte, typ byte, v int64) {
	switch typ {
	case 'c', 'C':
		b[0] = byte(v)
	case 's', 'S':
		binary.NativeEndian.PutUint16(b, uint16(v))
	case 'n':
		binary.BigEndian.PutUint16(b, uint16(v))
	case 'v':
		binary.LittleEndian.PutUint16(b, uint16(v))
	case 'l', 'L':
		binary.NativeEndian.PutUint32(b, uint32(v))
	case 'N':
		binary.BigEndian.PutUint32(b, uint32(v))
	case 'V':
		binary.LittleEndian.PutUint32(b, uint32(v))
	case 'q', 'Q':
		binary.NativeEndian.PutUint64(b, uint64(v))
	case 'J':
		binary.BigEndian.PutUint64(b, uint64(v))
	case 'P':
		binary.LittleEndian.PutUint64(b, uint64(v))
	default:
		panic("unknown length type " + string(typ))
	}
}

// i3LenSize is the size of a pack() length type.
func i3LenSize(typ byte) int {
	switch typ {
	case 'c', 'C':
		return 1
	case 's', 'S', 'n', 'v':
		return 2
	case 'l', 'L', 'N', 'V':
		return 4
	}
	return 8
}

// i3FrameN encodes body with a 4-byte big-endian length of the body in front ('N',
// package_body_offset 4).
func i3FrameN(body []byte) []byte {
	f := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(f, uint32(len(body)))
	copy(f[4:], body)
	return f
}

// i3SettingsN is the length-prefixed protocol of i3FrameN.
func i3SettingsN(max int) swoole.Settings {
	return swoole.Settings{OpenLengthCheck: true, PackageLengthType: "N", PackageBodyOffset: 4, PackageMaxLength: max}
}

// i3Join concatenates frames.
func i3Join(frames [][]byte) []byte { return bytes.Join(frames, nil) }

// i3TempFile writes data to a new file in the test's temp dir and returns its path.
func i3TempFile(t testing.TB, data []byte) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "i3")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}
