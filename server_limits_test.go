package swoole_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole"
)

// TestMaxConnection: connections above max_connection are accepted and closed at once,
// counted in abort_count, with no OnConnect; a freed place serves the next client.
func TestMaxConnection(t *testing.T) {
	const limit = 5
	var rec recorder
	s := newEcho(t, map[string]any{"max_connection": limit})
	s.OnConnect(func(_ *swoole.Server, fd int64, _ int) { rec.add("connect") })
	r := start(t, s)
	if got := s.Setting().MaxConnection; got != limit {
		t.Fatalf("Setting().MaxConnection = %d, want %d", got, limit)
	}
	var served []net.Conn
	for i := range limit {
		c := r.dial(t)
		roundTrip(t, c, "ok"+strconv.Itoa(i))
		served = append(served, c)
	}
	for i := range 3 {
		c := r.dial(t)
		c.Write([]byte("over")) // may fail: the server closes it at once
		got, _ := readUntilClosed(t, c)
		if len(got) != 0 {
			t.Errorf("connection %d above the limit got %q", limit+i+1, got)
		}
		waitFor(t, ioTimeout, "abort_count", func() bool { return s.Stats().AbortCount == int64(i+1) })
	}
	st := s.Stats()
	if st.AcceptCount != limit || st.ConnectionNum != limit || st.AbortCount != 3 {
		t.Errorf("accept_count %d connection_num %d abort_count %d, want %d %d 3", st.AcceptCount, st.ConnectionNum, st.AbortCount, limit, limit)
	}
	if n := rec.count("connect"); n != limit {
		t.Errorf("OnConnect ran %d times, want %d (not for refused connections)", n, limit)
	}
	for i, c := range served {
		roundTrip(t, c, "still served "+strconv.Itoa(i))
	}
	served[0].Close()
	waitFor(t, ioTimeout, "the close", func() bool { return s.Stats().ConnectionNum == limit-1 })
	roundTrip(t, r.dial(t), "a freed place serves again")
}

// TestBufferOutputSize: one Send larger than buffer_output_size fails with 1202 and sends
// nothing; a Send of exactly the limit passes.
func TestBufferOutputSize(t *testing.T) {
	const limit = 32 << 10
	s := newEcho(t, map[string]any{"buffer_output_size": limit, "socket_buffer_size": "8M"})
	r := start(t, s)
	c := r.dial(t)
	fd := fdOf(t, s, c)

	big := bytes.Repeat([]byte("a"), limit+1)
	err := s.Send(fd, big)
	wantCode(t, s, "Send(limit+1)", err, swoole.ErrDataLengthTooLarge)
	wantCode(t, s, "Send(4 MiB)", s.Send(fd, bytes.Repeat([]byte("b"), 4<<20)), swoole.ErrDataLengthTooLarge)
	if err := s.Send(fd, big[:limit]); err != nil {
		t.Fatalf("Send of exactly buffer_output_size: %v", err)
	}
	if got := readFull(t, c, limit); !bytes.Equal(got, big[:limit]) {
		t.Fatal("the limit-sized message arrived damaged")
	}
	roundTrip(t, c, "nothing else came") // the refused Sends put nothing on the wire
	if !s.Exist(fd) {
		t.Error("a refused Send closed the connection")
	}
}

// TestSocketBufferSize: a connection whose peer does not read queues at most
// socket_buffer_size (+ the Send that found the queue empty); the next Send fails with 1008
// after OnBufferFull, and only that connection is affected.
func TestSocketBufferSize(t *testing.T) {
	const (
		limit = 256 << 10
		msg   = 16 << 10
	)
	var rec recorder
	s := newEcho(t, map[string]any{"socket_buffer_size": limit})
	s.OnBufferFull(func(_ *swoole.Server, fd int64) { rec.add("full:%d", fd) })
	r := start(t, s)
	slow := r.dial(t)
	fast := r.dial(t)
	sfd, ffd := fdOf(t, s, slow), fdOf(t, s, fast)

	chunk := bytes.Repeat([]byte("s"), msg)
	var overflow error
	maxQueued := 0
	for i := 0; overflow == nil; i++ {
		if i > 100000 {
			t.Fatal("Send to a peer that never reads never failed")
		}
		overflow = s.Send(sfd, chunk)
		info, err := s.GetClientInfo(sfd, -1, false)
		if err != nil {
			t.Fatalf("GetClientInfo: %v", err)
		}
		maxQueued = max(maxQueued, info.SendQueuedBytes)
		if info.SendQueuedBytes > limit+msg {
			t.Fatalf("send_queued_bytes %d > socket_buffer_size %d + one message %d", info.SendQueuedBytes, limit, msg)
		}
	}
	wantCode(t, s, "Send past socket_buffer_size", overflow, swoole.ErrOutputBufferOverflow)
	if maxQueued == 0 {
		t.Error("send_queued_bytes never rose above 0")
	}
	waitFor(t, ioTimeout, "OnBufferFull", func() bool { return rec.count(fmt.Sprintf("full:%d", sfd)) == 1 })
	// Again: still refused, no second OnBufferFull while nothing drained.
	wantCode(t, s, "Send to the full connection", s.Send(sfd, chunk), swoole.ErrOutputBufferOverflow)

	// The other connection is unaffected, both ways.
	for i := range 20 {
		roundTrip(t, fast, "fast "+strconv.Itoa(i))
	}
	if err := s.Send(ffd, chunk); err != nil {
		t.Errorf("Send to the other connection: %v", err)
	}
	readFull(t, fast, msg)
	if !s.Exist(sfd) {
		t.Error("the full connection was closed; it should only refuse Sends")
	}
	if n := rec.count(fmt.Sprintf("full:%d", ffd)); n != 0 {
		t.Errorf("OnBufferFull for the fast connection %d times", n)
	}
	if n := rec.count(fmt.Sprintf("full:%d", sfd)); n != 1 {
		t.Errorf("OnBufferFull for the slow connection %d times, want 1", n)
	}
}

// TestWatermarks: OnBufferFull when queued output reaches buffer_high_watermark,
// OnBufferEmpty when it falls to buffer_low_watermark, once per crossing, twice over.
func TestWatermarks(t *testing.T) {
	const (
		high = 512 << 10
		low  = 64 << 10
		msg  = 32 << 10
	)
	type ev struct {
		name   string
		queued int
	}
	evs := make(chan ev, 16)
	s := newEcho(t, map[string]any{"socket_buffer_size": "16M", "buffer_high_watermark": high, "buffer_low_watermark": low})
	s.OnBufferFull(func(s *swoole.Server, fd int64) {
		info, _ := s.GetClientInfo(fd, -1, false)
		evs <- ev{"full", info.SendQueuedBytes}
	})
	s.OnBufferEmpty(func(s *swoole.Server, fd int64) {
		info, _ := s.GetClientInfo(fd, -1, false)
		evs <- ev{"empty", info.SendQueuedBytes}
	})
	r := start(t, s)
	c := r.dial(t)
	fd := fdOf(t, s, c)
	chunk := bytes.Repeat([]byte("w"), msg)

	for round := range 2 {
		sent := 0
		var full ev
		// Send until OnBufferFull: the kernel's buffers take a few MiB first.
		deadline := time.Now().Add(ioTimeout)
	fill:
		for {
			select {
			case full = <-evs:
				break fill
			default:
			}
			if time.Now().After(deadline) || sent > 15<<20 {
				t.Fatalf("round %d: no OnBufferFull after %d bytes", round, sent)
			}
			if err := s.Send(fd, chunk); err != nil {
				t.Fatalf("round %d: Send: %v", round, err)
			}
			sent += msg
			if info, err := s.GetClientInfo(fd, -1, false); err == nil && info.SendQueuedBytes >= high {
				// The crossing Send posted OnBufferFull to the loop: wait for it.
				select {
				case full = <-evs:
				case <-time.After(ioTimeout):
					t.Fatalf("round %d: %d bytes queued (high watermark %d) but no OnBufferFull", round, info.SendQueuedBytes, high)
				}
				break fill
			}
		}
		if full.name != "full" || full.queued < high {
			t.Errorf("round %d: first event %q with %d bytes queued, want \"full\" with at least %d", round, full.name, full.queued, high)
		}
		select {
		case e := <-evs:
			t.Errorf("round %d: %q before the peer read anything", round, e.name)
		default:
		}
		readFull(t, c, sent) // drain: the queue falls under the low watermark
		var empty ev
		select {
		case empty = <-evs:
		case <-time.After(ioTimeout):
			t.Fatalf("round %d: no OnBufferEmpty after the peer read everything", round)
		}
		if empty.name != "empty" || empty.queued > low {
			t.Errorf("round %d: event %q with %d bytes queued, want \"empty\" with at most %d", round, empty.name, empty.queued, low)
		}
	}
	roundTrip(t, c, "done")
	select {
	case e := <-evs:
		t.Errorf("an extra %q event", e.name)
	default:
	}
}

// TestBacklog: the listen backlog bounds how many connections the kernel completes while
// the server does not accept (its loop is blocked in OnConnect).
func TestBacklog(t *testing.T) {
	onlyOneLoop(t, "it holds the one loop to stop accepting; ModeThread's reactors accept while a worker loop is held")
	tests := []struct {
		name    string
		backlog int // 0: the default, 512
		dials   int
	}{
		{name: "backlog 4", backlog: 4, dials: 12},
		{name: "default", backlog: 0, dials: 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := map[string]any{}
			if tc.backlog > 0 {
				opts["backlog"] = tc.backlog
			}
			s := newEcho(t, opts)
			release := make(chan struct{})
			blocked := make(chan struct{}, 1)
			s.OnConnect(func(*swoole.Server, int64, int) {
				select {
				case blocked <- struct{}{}:
					<-release // the first connection blocks the loop
				default:
				}
			})
			r := start(t, s)
			defer close(release)
			r.dial(t)
			<-blocked
			ok := 0
			for i := range tc.dials {
				c, err := net.DialTimeout("tcp", r.addr, 300*time.Millisecond)
				if err != nil {
					var ne net.Error
					if !errors.As(err, &ne) || !ne.Timeout() {
						t.Fatalf("dial %d: %v, want a timeout once the backlog is full", i, err)
					}
					break
				}
				t.Cleanup(func() { c.Close() })
				ok++
			}
			switch {
			case tc.backlog > 0 && (ok < tc.backlog || ok > tc.backlog+1):
				t.Errorf("%d connections completed with backlog %d while the server did not accept, want %d or %d",
					ok, tc.backlog, tc.backlog, tc.backlog+1)
			case tc.backlog == 0 && ok != tc.dials:
				t.Errorf("only %d of %d connections completed with the default backlog 512", ok, tc.dials)
			}
		})
	}
}

func sockoptInt(t *testing.T, fd, level, opt int) int {
	t.Helper()
	v, err := unix.GetsockoptInt(fd, level, opt)
	if err != nil {
		t.Fatalf("getsockopt(%d, %d, %d): %v", fd, level, opt, err)
	}
	return v
}

// TestOpenTCPNoDelay: open_tcp_nodelay sets TCP_NODELAY on accepted sockets, per port.
func TestOpenTCPNoDelay(t *testing.T) {
	check := func(t *testing.T, s *swoole.Server, addr string, want bool) {
		t.Helper()
		c := dialAddr(t, "tcp", addr)
		fd := fdOf(t, s, c)
		info, err := s.GetClientInfo(fd, -1, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := sockoptInt(t, info.SocketFD, unix.IPPROTO_TCP, unix.TCP_NODELAY) != 0; got != want {
			t.Errorf("%s: TCP_NODELAY %v, want %v", addr, got, want)
		}
	}
	t.Run("per port", func(t *testing.T) {
		s := newEcho(t, nil)
		p, err := s.AddListener("127.0.0.1", 0, swoole.SockTCP)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Set(swoole.Settings{OpenTCPNoDelay: true}); err != nil {
			t.Fatal(err)
		}
		r := start(t, s)
		check(t, s, r.addr, false)
		check(t, s, "127.0.0.1:"+strconv.Itoa(p.Port()), true)
	})
	t.Run("server-wide, inherited by ports", func(t *testing.T) {
		s := newEcho(t, map[string]any{"open_tcp_nodelay": true})
		p, err := s.AddListener("127.0.0.1", 0, swoole.SockTCP)
		if err != nil {
			t.Fatal(err)
		}
		r := start(t, s)
		check(t, s, r.addr, true)
		check(t, s, "127.0.0.1:"+strconv.Itoa(p.Port()), true)
	})
}

// listenReusePort listens on addr with SO_REUSEPORT set.
func listenReusePort(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}

// TestEnableReusePort: enable_reuse_port puts SO_REUSEPORT on the listener, so that another
// SO_REUSEPORT socket can listen on the same port; without it, that bind fails.
func TestEnableReusePort(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run("enable_reuse_port="+strconv.FormatBool(on), func(t *testing.T) {
			s := newEcho(t, map[string]any{"enable_reuse_port": on})
			r := start(t, s)
			f, err := s.Ports()[0].GetSocket()
			if err != nil {
				t.Fatal(err)
			}
			if got := sockoptInt(t, int(f.Fd()), unix.SOL_SOCKET, unix.SO_REUSEPORT) != 0; got != on {
				t.Errorf("SO_REUSEPORT on the listener: %v, want %v", got, on)
			}
			ln, err := listenReusePort(r.addr)
			if on {
				if err != nil {
					t.Errorf("a second SO_REUSEPORT listener on %s: %v", r.addr, err)
				} else {
					ln.Close()
				}
			} else {
				if err == nil {
					ln.Close()
					t.Errorf("a second listener took %s without enable_reuse_port", r.addr)
				} else if !isErrno(err, syscall.EADDRINUSE) {
					t.Errorf("a second listener: %v, want EADDRINUSE", err)
				}
			}
			roundTrip(t, r.dial(t), "served")
		})
	}
}

// TestPortInheritsSettings: a port without settings of its own uses the server's
// socket_buffer_size; one that sets its own uses that.
func TestPortInheritsSettings(t *testing.T) {
	const small = 128 << 10
	s := newEcho(t, map[string]any{"socket_buffer_size": small})
	own, err := s.AddListener("127.0.0.1", 0, swoole.SockTCP)
	if err != nil {
		t.Fatal(err)
	}
	if err := own.SetOptions(map[string]any{"socket_buffer_size": "16M"}); err != nil {
		t.Fatal(err)
	}
	inherit, err := s.AddListener("127.0.0.1", 0, swoole.SockTCP)
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	chunk := bytes.Repeat([]byte("p"), 16<<10)
	flood := func(port int) (queued int, err error) {
		c := dialAddr(t, "tcp", "127.0.0.1:"+strconv.Itoa(port))
		fd := fdOf(t, s, c)
		for range 4096 { // at most 64 MiB
			if err := s.Send(fd, chunk); err != nil {
				return queued, err
			}
			info, err := s.GetClientInfo(fd, -1, false)
			if err != nil {
				return queued, err
			}
			if queued = info.SendQueuedBytes; queued > 2*small {
				return queued, nil
			}
		}
		return queued, nil
	}
	var wg sync.WaitGroup
	for _, tc := range []struct {
		name     string
		port     int
		overflow bool
	}{
		{"primary", s.Ports()[0].Port(), true},
		{"inheriting port", inherit.Port(), true},
		{"port with its own socket_buffer_size", own.Port(), false},
	} {
		wg.Add(1)
		t.Run(tc.name, func(t *testing.T) {
			defer wg.Done()
			queued, err := flood(tc.port)
			if tc.overflow {
				wantCode(t, nil, "Send", err, swoole.ErrOutputBufferOverflow)
				if queued > small+len(chunk) {
					t.Errorf("%d bytes queued, above socket_buffer_size %d + one message", queued, small)
				}
			} else if err != nil || queued <= 2*small {
				t.Errorf("queued %d, %v: want more than %d queued without error", queued, err, 2*small)
			}
		})
	}
	wg.Wait()
}

// TestBufferFullInCallback: Sends made inside a callback (on the event loop) to a peer that
// does not read raise OnBufferFull before Send starts failing with 1008, and the queue stays
// within socket_buffer_size + one message.
func TestBufferFullInCallback(t *testing.T) {
	onlyOneLoop(t, "OnBufferFull runs inside the Send that fills the queue only where the loop that holds the connection runs the callbacks; in ModeThread (as ModeProcess) it is an event for the worker, after its callback")
	const (
		limit = 256 << 10
		msg   = 32 << 10
	)
	var rec recorder
	s := newServer(t, map[string]any{"socket_buffer_size": limit})
	s.OnBufferFull(func(_ *swoole.Server, fd int64) { rec.add("full") })
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		chunk := bytes.Repeat([]byte("f"), msg)
		for i := range 100000 {
			err := s.Send(fd, chunk)
			info, _ := s.GetClientInfo(fd, -1, false)
			if info != nil && info.SendQueuedBytes > limit+msg {
				rec.add("queued %d", info.SendQueuedBytes)
			}
			if err != nil {
				rec.add("send error %d after %d sends", code(err), i)
				return
			}
		}
		rec.add("never refused")
	})
	r := start(t, s)
	c := r.dial(t)
	if _, err := c.Write([]byte("flood")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ioTimeout, "the flood to end", func() bool { return len(rec.list()) >= 2 })
	ev := rec.list()
	if len(ev) != 2 || ev[0] != "full" || !strings.HasPrefix(ev[1], fmt.Sprintf("send error %d ", swoole.ErrOutputBufferOverflow)) {
		t.Errorf("events %q, want OnBufferFull, then a Send refused with %d", ev, swoole.ErrOutputBufferOverflow)
	}
}

// TestWatermarkOrder: OnBufferFull and OnBufferEmpty come in the order the queue crossed the
// watermarks, also when the Send that crossed the high watermark came from another goroutine
// and the queue drained below the low one in the same turn of the event loop.
//
// The loop is held twice (in OnReceive of the connections c and b) so that the event loop's
// next batch holds b's data first and then a's writability: while the loop is held in b's
// OnReceive, a Send from the test goroutine takes a's queue over the high watermark, and
// right after b's OnReceive returns the loop flushes a's queue below the low watermark.
func TestWatermarkOrder(t *testing.T) {
	onlyOneLoop(t, "it fills a connection's queue while the loop that would write it is held in a callback; ModeThread's reactors write meanwhile")
	const (
		high = 512 << 10
		low  = high - 16<<10
	)
	var rec recorder
	entered := make(chan int64, 4)
	release := make(chan struct{})
	s := newServer(t, map[string]any{"socket_buffer_size": "64M", "buffer_high_watermark": high, "buffer_low_watermark": low})
	s.OnBufferFull(func(*swoole.Server, int64) { rec.add("full") })
	s.OnBufferEmpty(func(*swoole.Server, int64) { rec.add("empty") })
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		if string(data) == "block" {
			entered <- fd
			<-release
			return
		}
		_ = s.Send(fd, data)
	})
	r := start(t, s)
	defer func() { // never leave the loop held
		for {
			select {
			case release <- struct{}{}:
			default:
				return
			}
		}
	}()
	a, b, c := dialSmallRcvBuf(t, r.addr), r.dial(t), r.dial(t)
	fa := fdOf(t, s, a)
	fdOf(t, s, b)
	fdOf(t, s, c)

	// a's kernel buffers fill; a little output queues in the server.
	chunk := bytes.Repeat([]byte("a"), 16<<10)
	sent := 0
	for queued := 0; queued == 0; {
		if err := s.Send(fa, chunk); err != nil {
			t.Fatal(err)
		}
		sent += len(chunk)
		info, err := s.GetClientInfo(fa, -1, false)
		if err != nil {
			t.Fatal(err)
		}
		queued = info.SendQueuedBytes
		if sent > 64<<20 {
			t.Fatal("no output queued after 64 MiB")
		}
	}
	roundTrip(t, c, "settle") // the loop has handled whatever a's socket reported

	if _, err := c.Write([]byte("block")); err != nil { // hold the loop in c's OnReceive
		t.Fatal(err)
	}
	<-entered
	if _, err := b.Write([]byte("block")); err != nil { // b is ready first...
		t.Fatal(err)
	}
	info, _ := s.GetClientInfo(fa, -1, false)
	inKernel := int64(sent - info.SendQueuedBytes)
	var read atomic.Int64
	go func() { // ... then a becomes writable: its peer reads everything from now on
		buf := make([]byte, 64<<10)
		for {
			n, err := a.Read(buf)
			read.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	waitFor(t, ioTimeout, "a's peer to drain the kernel", func() bool { return read.Load() >= inKernel })
	release <- struct{}{}                                               // the loop's next batch: b's data, then a writable
	<-entered                                                           // held in b's OnReceive, a's writability not yet handled
	if err := s.Send(fa, bytes.Repeat([]byte("b"), high)); err != nil { // over the high watermark
		t.Fatal(err)
	}
	if info, _ := s.GetClientInfo(fa, -1, false); info == nil || info.SendQueuedBytes < high {
		t.Fatalf("the test could not set up: a's queue is %+v, want at least %d", info, high)
	}
	release <- struct{}{}
	waitFor(t, ioTimeout, "both events", func() bool { return len(rec.list()) >= 2 })
	if got := rec.list(); !slices.Equal(got[:2], []string{"full", "empty"}) {
		t.Errorf("events %q: OnBufferEmpty came before the OnBufferFull it answers", got)
	}
}
