package swoole_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/goswoole/swoole"
)

// childEnv turns the test binary into a child server process (see runChild).
const childEnv = "GOSWOOLE_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role))
	}
	// A process of a multi-process test server (multiproc_helpers_test.go): the manager and
	// each of its workers run the named server instead of the tests.
	if name := os.Getenv(mpEnvServer); name != "" {
		os.Exit(runTestServer(name))
	}
	if os.Getenv("GOSWOOLE_ROLE") != "" {
		// A worker of a multi-process server started inside the test process (a test that
		// should have used mpStart): it must not run the tests again.
		fmt.Fprintln(os.Stderr, "swoole_test: started as a server process without", mpEnvServer)
		os.Exit(3)
	}
	goleak.VerifyTestMain(m)
}

// Timeouts. They are generous: the suite runs under -race on a 2-core machine.
const (
	startTimeout = 10 * time.Second // Start until the server runs; Shutdown until Start returns
	ioTimeout    = 10 * time.Second // one client read or write
)

// waitFor polls cond until it is true, failing the test when timeout passes first. It never
// sleeps longer than 10 ms between polls.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := 100 * time.Microsecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(pause)
		pause = min(2*pause, 10*time.Millisecond)
	}
}

// quiet are the options every test server starts from: nothing logged, and an explicit
// max_connection (the default is ulimit -n, 20000 here, which sizes the connection table).
func quiet() map[string]any {
	return map[string]any{"log_level": 6, "max_connection": 1024}
}

// coreModeEnv, set to "thread", runs the core suites (every test built on newServer) in
// ModeThread with one worker loop instead of ModeBase in one process: .ci/run runs them so.
const coreModeEnv = "GOSWOOLE_TEST_CORE_MODE"

// coreMode is the mode of the servers newServer creates.
func coreMode() swoole.Mode {
	if os.Getenv(coreModeEnv) == "thread" {
		return swoole.ModeThread
	}
	return swoole.ModeBase
}

// onlyOneLoop skips a core test that holds only for ModeBase in one process (one loop that
// accepts, reads and runs the callbacks) when the core suites run in ModeThread; why says
// where ModeThread's behaviour is tested instead.
func onlyOneLoop(t *testing.T, why string) {
	t.Helper()
	if coreMode() == swoole.ModeThread {
		t.Skip("ModeBase in one process only: " + why)
	}
}

// newServer creates a ModeBase TCP server on 127.0.0.1, port 0, with quiet() and then opts
// applied. It is not started.
func newServer(t testing.TB, opts map[string]any) *swoole.Server {
	t.Helper()
	s, err := swoole.NewServer("127.0.0.1", 0, coreMode(), swoole.SockTCP)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	// A server that is never started keeps its port until Shutdown releases it. (For a
	// started one, start's cleanup runs first and this Shutdown is a refused no-op.)
	t.Cleanup(func() { _ = s.Shutdown() })
	setOpts(t, s, opts)
	return s
}

func setOpts(t testing.TB, s *swoole.Server, opts map[string]any) {
	t.Helper()
	all := quiet()
	for k, v := range opts {
		all[k] = v
	}
	if err := s.SetOptions(all); err != nil {
		t.Fatalf("SetOptions(%v): %v", all, err)
	}
}

// newEcho is newServer with an OnReceive that sends every chunk back.
func newEcho(t testing.TB, opts map[string]any) *swoole.Server {
	t.Helper()
	s := newServer(t, opts)
	s.OnReceive(echo(t))
	return s
}

// echo returns a Receive handler that sends the data back and reports a failed Send.
func echo(t testing.TB) func(s *swoole.Server, fd int64, reactorID int, data []byte) {
	return func(s *swoole.Server, fd int64, _ int, data []byte) {
		if err := s.Send(fd, data); err != nil {
			t.Errorf("echo: Send(%d, %d bytes): %v", fd, len(data), err)
		}
	}
}

// running is a started server.
type running struct {
	*swoole.Server
	addr string // host:port (or the socket path) of the first port
	done chan struct{}
	err  error // Start's result, set before done closes
}

// start runs s.Start in a goroutine and waits until the server runs. The readiness probe is
// GetClientList, which answers nil only once the server is running (and its listeners
// listen); it opens no connection, so tests can count every Connect and Close. Cleanup shuts
// the server down and fails the test if Start does not return nil within startTimeout.
func start(t testing.TB, s *swoole.Server) *running {
	t.Helper()
	r := &running{Server: s, done: make(chan struct{})}
	p := s.Ports()[0]
	switch p.Type() {
	case swoole.SockUnixStream:
		r.addr = p.Host()
	default:
		r.addr = net.JoinHostPort(p.Host(), strconv.Itoa(p.Port()))
	}
	go func() {
		defer close(r.done)
		r.err = s.Start()
	}()
	waitFor(t, startTimeout, "the server to run", func() bool {
		select {
		case <-r.done:
			t.Fatalf("Start returned early: %v", r.err)
		default:
		}
		_, err := s.GetClientList(0, 1)
		return err == nil
	})
	t.Cleanup(func() {
		_ = s.Shutdown()
		if err := r.wait(startTimeout); err != nil {
			t.Errorf("after Shutdown: %v", err)
		}
	})
	return r
}

// wait waits for Start to return and gives its result; an error when it does not return in
// time.
func (r *running) wait(timeout time.Duration) error {
	select {
	case <-r.done:
		return r.err
	case <-time.After(timeout):
		return fmt.Errorf("Start did not return within %v", timeout)
	}
}

// network returns the network name for net.Dial.
func (r *running) network() string {
	if r.Ports()[0].Type() == swoole.SockUnixStream {
		return "unix"
	}
	return "tcp"
}

// dial connects to r's first port; the connection is closed at cleanup.
func (r *running) dial(t testing.TB) net.Conn {
	t.Helper()
	return dialAddr(t, r.network(), r.addr)
}

func dialAddr(t testing.TB, network, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(network, addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// fdOf returns the session id of the client connection c, waiting until the server has
// accepted it (matched by the client's local address).
func fdOf(t testing.TB, s *swoole.Server, c net.Conn) int64 {
	t.Helper()
	var fd int64
	switch la := c.LocalAddr().(type) {
	case *net.TCPAddr:
		waitFor(t, ioTimeout, "the server to accept "+la.String(), func() bool {
			for id := range s.Connections() {
				if info, err := s.GetClientInfo(id, -1, true); err == nil && info.RemotePort == la.Port {
					fd = id
					return true
				}
			}
			return false
		})
	default:
		t.Fatalf("fdOf: %T is not a TCP address; record the fd in OnConnect instead", la)
	}
	return fd
}

// readFull reads exactly n bytes from c within ioTimeout.
func readFull(t testing.TB, c net.Conn, n int) []byte {
	t.Helper()
	buf := make([]byte, n)
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return buf
}

// roundTrip writes msg and reads it back (the server must echo).
func roundTrip(t testing.TB, c net.Conn, msg string) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	if got := readFull(t, c, len(msg)); string(got) != msg {
		t.Fatalf("echo: got %q, want %q", got, msg)
	}
}

// readUntilClosed reads c until EOF or an error and returns what was read and the error that
// ended it (nil for a clean EOF). It fails the test if the connection stays open.
func readUntilClosed(t testing.TB, c net.Conn) ([]byte, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	var buf bytes.Buffer
	_, err := io.Copy(&buf, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection stayed open for %v (read %d bytes)", ioTimeout, buf.Len())
	}
	return buf.Bytes(), err
}

// resetClose closes c with a RST (SO_LINGER 0).
func resetClose(t testing.TB, c net.Conn) {
	t.Helper()
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.SetLinger(0); err != nil {
			t.Fatalf("SetLinger: %v", err)
		}
	}
	c.Close()
}

// code returns the Swoole code carried by err, or -1 when err is not a *swoole.Error.
func code(err error) int {
	var e *swoole.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return -1
}

// wantCode checks that err carries code, that errors.Is matches it, and that GetLastError
// reports it.
func wantCode(t testing.TB, s *swoole.Server, call string, err error, want int) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: nil error, want code %d", call, want)
		return
	}
	var e *swoole.Error
	if !errors.As(err, &e) {
		t.Errorf("%s: %T %v is not a *swoole.Error (want code %d)", call, err, err, want)
		return
	}
	if e.Code != want {
		t.Errorf("%s: code %d (%v), want %d", call, e.Code, err, want)
	}
	if !errors.Is(err, swoole.ErrCode(want)) {
		t.Errorf("%s: errors.Is(err, ErrCode(%d)) is false", call, want)
	}
	if s != nil {
		if got := s.GetLastError(); got != want {
			t.Errorf("%s: GetLastError() = %d, want %d", call, got, want)
		}
	}
}

// recorder collects events from callbacks (which run on the server's loop) for the test
// goroutine.
type recorder struct {
	mu sync.Mutex
	ev []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	r.ev = append(r.ev, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ev...)
}

func (r *recorder) count(ev string) int {
	n := 0
	for _, e := range r.list() {
		if e == ev {
			n++
		}
	}
	return n
}

// fdCount returns the number of open descriptors of this process.
func fdCount(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("read /proc/self/fd: %v", err)
	}
	return len(ents)
}

// heapAfterGC returns the live heap after a full collection.
func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// isErrno reports whether err wraps the errno.
func isErrno(err error, errno syscall.Errno) bool { return errors.Is(err, errno) }

// noPanic runs f and turns a panic into a test error, so one broken call does not end the
// whole test binary.
func noPanic(t testing.TB, what string, f func()) {
	t.Helper()
	defer func() {
		if v := recover(); v != nil {
			t.Errorf("%s panicked: %v", what, v)
		}
	}()
	f()
}

// dialSmallRcvBuf connects to the TCP address with a 4 KiB receive buffer set before the
// handshake, so that a peer that does not read holds little in the kernel and the server's
// output queues in the server instead.
func dialSmallRcvBuf(t testing.TB, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: ioTimeout, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// lineClient is a connection that speaks lines.
type lineClient struct {
	t       testing.TB
	c       net.Conn
	r       *bufio.Reader
	timeout time.Duration // for each exchange; 0: ioTimeout
}

// do sends one line and reads one line back.
func (lc *lineClient) do(line string) string {
	lc.t.Helper()
	d := lc.timeout
	if d == 0 {
		d = ioTimeout
	}
	_ = lc.c.SetDeadline(time.Now().Add(d))
	if _, err := lc.c.Write([]byte(line + "\n")); err != nil {
		lc.t.Fatalf("write %q: %v", line, err)
	}
	got, err := lc.r.ReadString('\n')
	if err != nil {
		lc.t.Fatalf("reading the reply to %q: %v", line, err)
	}
	return strings.TrimSuffix(got, "\n")
}
