package swoole_test

// Helpers of the feature tests (framing, datagrams, timers, heartbeat, sendfile, delayed
// receive). Every name starts with ft so that they never clash with the helpers of other
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

// ftTimeout bounds every wait of these tests. It is generous: the suite runs under -race on
// a 2-core machine.
const ftTimeout = 10 * time.Second

// ftQuiet are the settings every test server starts from: nothing logged, and a small
// connection table.
var ftQuiet = swoole.Settings{LogLevel: swoole.LogLevelNone, MaxConnection: 1024}

// ftNew creates a ModeBase server of the socket type on host, port 0, with ftQuiet and then
// set applied. It is not started.
func ftNew(t testing.TB, host string, sock swoole.SockType, set swoole.Settings) *swoole.Server {
	t.Helper()
	s, err := swoole.NewServer(host, 0, swoole.ModeBase, sock)
	if err != nil {
		t.Fatalf("NewServer(%q, 0, ModeBase, %v): %v", host, sock, err)
	}
	if err := s.Set(ftQuiet); err != nil {
		t.Fatalf("Set(quiet): %v", err)
	}
	if err := s.Set(set); err != nil {
		t.Fatalf("Set(%+v): %v", set, err)
	}
	return s
}

// ftStart runs s.Start in a goroutine and returns once the server serves. At cleanup it
// shuts the server down and waits for Start to return nil.
func ftStart(t testing.TB, s *swoole.Server) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Start() }()
	deadline := time.Now().Add(ftTimeout)
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
			t.Fatalf("the server did not start within %v", ftTimeout)
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
		case <-time.After(ftTimeout):
			t.Errorf("Start did not return within %v of Shutdown", ftTimeout)
		}
	})
}

// ftStartWait is ftStart with the channel Start's result arrives on, for tests that shut the
// server down themselves; nothing is done at cleanup beyond a last Shutdown.
func ftStartWait(t testing.TB, s *swoole.Server) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Start() }()
	ftEventually(t, "the server serves", func() bool {
		_, err := s.GetWorkerStatus(0)
		return err == nil
	})
	t.Cleanup(func() { _ = s.Shutdown() })
	return done
}

// ftEventually polls cond until it holds, failing the test after ftTimeout.
func ftEventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ftTimeout)
	pause := 50 * time.Microsecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", ftTimeout, what)
		}
		time.Sleep(pause)
		pause = min(2*pause, 5*time.Millisecond)
	}
}

// ftAddr returns the network and address a client dials to reach p.
func ftAddr(p *swoole.Port) (network, addr string) {
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

// ftDial connects to p (TCP connections get TCP_NODELAY, Go's default) and closes the
// connection at cleanup.
func ftDial(t testing.TB, p *swoole.Port) net.Conn {
	t.Helper()
	network, addr := ftAddr(p)
	c, err := net.DialTimeout(network, addr, ftTimeout)
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

// ftWrite writes p whole, failing the test on an error.
func ftWrite(t testing.TB, c net.Conn, p []byte) {
	t.Helper()
	if err := c.SetWriteDeadline(time.Now().Add(ftTimeout)); err != nil {
		t.Fatalf("SetWriteDeadline: %v", err)
	}
	if _, err := c.Write(p); err != nil {
		t.Fatalf("write %d bytes: %v", len(p), err)
	}
}

// ftWriteBytewise writes p one byte per write call (with TCP_NODELAY each goes out as its
// own segment).
func ftWriteBytewise(t testing.TB, c net.Conn, p []byte) {
	t.Helper()
	for i := range p {
		ftWrite(t, c, p[i:i+1])
	}
}

// ftReadFull reads exactly n bytes within ftTimeout.
func ftReadFull(t testing.TB, c net.Conn, n int) []byte {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(ftTimeout)); err != nil {
		t.Fatalf("SetReadDeadline: %v", err)
	}
	b := make([]byte, n)
	if k, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: got %d: %v", n, k, err)
	}
	return b
}

// ftWantClosed reads from c until the server's close shows (EOF or a reset) and fails the
// test if the connection stays open for ftTimeout or delivers data.
func ftWantClosed(t testing.TB, c net.Conn) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(ftTimeout)); err != nil {
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
				t.Errorf("the connection delivered %d unexpected bytes before closing: %q", got.Len(), ftTrunc(got.Bytes()))
			}
			return
		}
		t.Fatalf("want the server to close the connection, got %v after %d bytes", err, got.Len())
	}
}

func ftTrunc(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// ftCode returns the Swoole code of err (0 when err is not a *swoole.Error).
func ftCode(err error) int {
	var e *swoole.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// ftWantCode fails unless err is a *swoole.Error with the code, that also became the
// server's last error.
func ftWantCode(t testing.TB, s *swoole.Server, what string, err error, code int) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: got nil error, want code %d", what, code)
		return
	}
	if got := ftCode(err); got != code {
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

// ftFDOf returns the session id of the client connection c (matched on its local port).
func ftFDOf(t testing.TB, s *swoole.Server, c net.Conn) int64 {
	t.Helper()
	local := c.LocalAddr().(*net.TCPAddr).Port
	var fd int64
	ftEventually(t, fmt.Sprintf("a session for the client port %d", local), func() bool {
		for id := range s.Connections() {
			if info, err := s.GetClientInfo(id, -1, true); err == nil && info.RemotePort == local {
				fd = id
				return true
			}
		}
		return false
	})
	ftBarrier(t, s)
	return fd
}

// ftBarrier waits for a function run on the server's loop. Everything the loop did before
// (accepting the connection just found in the table, say) then happens-before the caller's
// next step, also for the race detector.
//
// Why: the connection table lives in shared memory (mmap), where the race detector does not
// see the atomics that publish a new connection; and internal/reactor's Loop.accept sets the
// connection's loop and epoll interest (Conn.loop, Conn.events) without holding Conn.mu,
// after the session is findable. A goroutine that finds a session in the table and Sends to
// it while output is queued is then reported as a race (the race detector reported it in these tests).
func ftBarrier(t testing.TB, s *swoole.Server) {
	t.Helper()
	ch := make(chan struct{})
	if err := s.Defer(func() { close(ch) }); err != nil {
		t.Fatalf("Defer: %v", err)
	}
	select {
	case <-ch:
	case <-time.After(ftTimeout):
		t.Fatalf("the loop did not run a deferred function within %v", ftTimeout)
	}
}

// ftRec records what a server's callbacks saw. Safe for concurrent use.
type ftRec struct {
	mu     sync.Mutex
	frames map[int64][][]byte // OnReceive data, copied, by session
	closed map[int64][]int    // OnClose reactorIDs by session
}

func newI3Rec() *ftRec {
	return &ftRec{frames: map[int64][][]byte{}, closed: map[int64][]int{}}
}

func (r *ftRec) receive(fd int64, data []byte) {
	r.mu.Lock()
	r.frames[fd] = append(r.frames[fd], bytes.Clone(data))
	r.mu.Unlock()
}

func (r *ftRec) close(fd int64, reactorID int) {
	r.mu.Lock()
	r.closed[fd] = append(r.closed[fd], reactorID)
	r.mu.Unlock()
}

// got returns a copy of the frames of fd.
func (r *ftRec) got(fd int64) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.frames[fd]...)
}

func (r *ftRec) count(fd int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.frames[fd])
}

func (r *ftRec) closes(fd int64) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.closed[fd]...)
}

// waitFrames waits until fd has delivered n frames and returns them.
func (r *ftRec) waitFrames(t testing.TB, fd int64, n int) [][]byte {
	t.Helper()
	ftEventually(t, fmt.Sprintf("%d frames from session %d", n, fd), func() bool { return r.count(fd) >= n })
	return r.got(fd)
}

// waitClosed waits for OnClose of fd and returns its reactorID.
func (r *ftRec) waitClosed(t testing.TB, fd int64) int {
	t.Helper()
	ftEventually(t, fmt.Sprintf("OnClose of session %d", fd), func() bool { return len(r.closes(fd)) > 0 })
	return r.closes(fd)[0]
}

// ftEchoServer registers handlers on s that record every OnReceive and OnClose in the
// returned recorder and send every received frame back as it came.
func ftEchoServer(s *swoole.Server) *ftRec {
	r := newI3Rec()
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		r.receive(fd, data)
		_ = s.Send(fd, data)
	})
	s.OnClose(func(s *swoole.Server, fd int64, reactorID int) { r.close(fd, reactorID) })
	return r
}

// ftWantFrames compares frames with want, frame by frame.
func ftWantFrames(t testing.TB, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d:\n got %q\nwant %q", len(got), len(want), ftShort(got), ftShort(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d: got %q, want %q", i, ftTrunc(got[i]), ftTrunc(want[i]))
		}
	}
}

func ftShort(fs [][]byte) [][]byte {
	out := make([][]byte, 0, min(len(fs), 8))
	for i, f := range fs {
		if i == 8 {
			out = append(out, []byte("..."))
			break
		}
		out = append(out, ftTrunc(f))
	}
	return out
}

// ftHealthy is a second connection that must go on echoing while another connection of the
// same server misbehaves.
type ftHealthy struct {
	c      net.Conn
	encode func([]byte) []byte
	n      int
}

func newI3Healthy(t testing.TB, p *swoole.Port, encode func([]byte) []byte) *ftHealthy {
	t.Helper()
	h := &ftHealthy{c: ftDial(t, p), encode: encode}
	h.check(t)
	return h
}

// check sends one frame and wants it echoed byte for byte.
func (h *ftHealthy) check(t testing.TB) {
	t.Helper()
	h.n++
	f := h.encode([]byte("healthy " + strconv.Itoa(h.n)))
	ftWrite(t, h.c, f)
	if got := ftReadFull(t, h.c, len(f)); !bytes.Equal(got, f) {
		t.Fatalf("the healthy connection got %q, want %q", got, f)
	}
}

// ftEchoLoop keeps a connection of its own echoing frames in the background until the
// returned stop is called; stop fails the test if an echo went wrong and returns how many
// round trips were made. mark returns the count so far.
func ftEchoLoop(t testing.TB, p *swoole.Port, encode func([]byte) []byte) (mark func() int64, stop func() int64) {
	t.Helper()
	c := ftDial(t, p)
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
			_ = c.SetDeadline(time.Now().Add(ftTimeout))
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

// ftPutLen writes v as a length field of the pack() type typ (c C s S n N l L q Q J P v V)
// into b, which must be long enough.
func ftPutLen(b []byte, typ byte, v int64) {
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

// ftLenSize is the size of a pack() length type.
func ftLenSize(typ byte) int {
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

// ftFrameN encodes body with a 4-byte big-endian length of the body in front ('N',
// package_body_offset 4).
func ftFrameN(body []byte) []byte {
	f := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(f, uint32(len(body)))
	copy(f[4:], body)
	return f
}

// ftSettingsN is the length-prefixed protocol of ftFrameN.
func ftSettingsN(max int) swoole.Settings {
	return swoole.Settings{OpenLengthCheck: true, PackageLengthType: "N", PackageBodyOffset: 4, PackageMaxLength: max}
}

// ftJoin concatenates frames.
func ftJoin(frames [][]byte) []byte { return bytes.Join(frames, nil) }

// ftTempFile writes data to a new file in the test's temp dir and returns its path.
func ftTempFile(t testing.TB, data []byte) string {
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
