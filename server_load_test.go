package swoole_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// TestEcho2000x100: 2,000 concurrent connections each echo 100 messages; every byte is
// checked.
func TestEcho2000x100(t *testing.T) {
	const (
		conns    = 2000
		messages = 100
		size     = 64
		window   = 10 // messages in flight per connection
		dialers  = 64 // concurrent dials, so that the SYNs do not overflow the backlog
		deadline = 60 * time.Second
	)
	s := newEcho(t, map[string]any{"max_connection": 4096, "backlog": 4096})
	var connects atomic.Int64
	s.OnConnect(func(*swoole.Server, int64, int) { connects.Add(1) })
	r := start(t, s)
	began := time.Now()

	// Connect everyone first, so that all 2,000 are open at once.
	cs := make([]net.Conn, conns)
	var wg sync.WaitGroup
	sem := make(chan struct{}, dialers)
	var dialErr atomic.Value
	for i := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", r.addr, ioTimeout)
			if err != nil {
				dialErr.Store(err)
				return
			}
			cs[i] = c
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range cs {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err := dialErr.Load(); err != nil {
		t.Fatalf("dial: %v", err)
	}
	waitFor(t, deadline, "2,000 connections", func() bool { return s.Stats().ConnectionNum == conns })
	connected := time.Since(began)

	stop := time.Now().Add(deadline)
	errs := make(chan error, conns)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetDeadline(stop)
			// Messages go out one Write each, window at a time; then the window's echo is
			// read back and compared byte for byte.
			out := make([]byte, window*size)
			got := make([]byte, window*size)
			for m0 := 0; m0 < messages; m0 += window {
				for k := range window {
					m := m0 + k
					msg := out[k*size : (k+1)*size]
					// Every message is different: connection, sequence number, a pattern.
					copy(msg, fmt.Sprintf("c%04d m%03d ", i, m))
					for j := 11; j < size; j++ {
						msg[j] = byte('a' + (i+m+j)%26)
					}
					if _, err := c.Write(msg); err != nil {
						errs <- fmt.Errorf("conn %d message %d: write: %w", i, m, err)
						return
					}
				}
				if _, err := io.ReadFull(c, got); err != nil {
					errs <- fmt.Errorf("conn %d messages %d+%d: read: %w", i, m0, window, err)
					return
				}
				if !bytes.Equal(got, out) {
					errs <- fmt.Errorf("conn %d messages %d+%d: got %q, want %q", i, m0, window, got, out)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	nerr := 0
	for err := range errs {
		if nerr++; nerr <= 5 {
			t.Error(err)
		}
	}
	if nerr > 0 {
		t.Fatalf("%d of %d connections failed", nerr, conns)
	}
	echoed := time.Since(began) - connected
	const total = conns * messages * size
	// The counters are updated right after each write: wait for the last ones.
	waitFor(t, ioTimeout, "the byte counters", func() bool { return s.Stats().TotalSendBytes == total })
	st := s.Stats()
	if st.TotalRecvBytes != total || st.TotalSendBytes != total || st.AcceptCount != conns || connects.Load() != conns {
		t.Errorf("total_recv_bytes %d total_send_bytes %d accept_count %d connects %d, want %d %d %d %d",
			st.TotalRecvBytes, st.TotalSendBytes, st.AcceptCount, connects.Load(), total, total, conns, conns)
	}
	for _, c := range cs {
		c.Close()
	}
	waitFor(t, deadline, "every connection to close", func() bool { return s.Stats().ConnectionNum == 0 })
	if cc := s.Stats().CloseCount; cc != conns {
		t.Errorf("close_count %d, want %d", cc, conns)
	}
	t.Logf("%d connections in %v, %d×%d echoes in %v, closed after %v", conns, connected.Round(time.Millisecond),
		conns, messages, echoed.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// TestSlowReader: one peer never reads while 50 others echo at full speed. The server keeps
// at most socket_buffer_size + one message queued for it, Send to it fails with 1008, the
// server's heap stays bounded, the others all finish, and the slow peer finally gets exactly
// the bytes of the Sends that succeeded.
func TestSlowReader(t *testing.T) {
	const (
		limit    = 1 << 20
		msg      = 16 << 10
		others   = 50
		messages = 200
		size     = 1024
		deadline = 60 * time.Second
	)
	var fullFor atomic.Int64
	s := newEcho(t, map[string]any{"socket_buffer_size": limit})
	s.OnBufferFull(func(_ *swoole.Server, fd int64) { fullFor.Store(fd) })
	r := start(t, s)
	slow := r.dial(t)
	sfd := fdOf(t, s, slow)
	heap0 := heapAfterGC()

	var (
		accepted, refused atomic.Int64
		maxQueued         atomic.Int64
		maxHeap           atomic.Uint64
		pumpErr           error
		done              = make(chan struct{})
		pumped            = make(chan struct{})
	)
	stopPump := sync.OnceFunc(func() { close(done); <-pumped })
	t.Cleanup(stopPump) // also when the test fails early (before the server's shutdown)
	pumpUntil := time.Now().Add(deadline)
	go func() { // the server side of the slow peer: Send as fast as possible
		defer close(pumped)
		chunk := make([]byte, msg)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if i%1000 == 0 && time.Now().After(pumpUntil) {
				pumpErr = fmt.Errorf("still pumping after %v", deadline)
				return
			}
			for j := range chunk {
				chunk[j] = byte(i)
			}
			switch err := s.Send(sfd, chunk); code(err) {
			case -1:
				accepted.Add(1)
			case swoole.ErrOutputBufferOverflow:
				refused.Add(1)
				runtime.Gosched()
			default:
				pumpErr = err
				return
			}
			info, err := s.GetClientInfo(sfd, -1, false)
			if err != nil {
				pumpErr = err
				return
			}
			if q := int64(info.SendQueuedBytes); q > maxQueued.Load() {
				maxQueued.Store(q)
			}
			if i%200 == 0 {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > maxHeap.Load() {
					maxHeap.Store(ms.HeapAlloc)
				}
			}
		}
	}()

	began := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, others)
	for i := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", r.addr, ioTimeout)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(deadline))
			out := make([]byte, size)
			in := make([]byte, size)
			for m := range messages {
				for j := range out {
					out[j] = byte(i*7 + m + j)
				}
				if _, err := c.Write(out); err != nil {
					errs <- fmt.Errorf("conn %d: write: %w", i, err)
					return
				}
				if _, err := io.ReadFull(c, in); err != nil {
					errs <- fmt.Errorf("conn %d: read: %w", i, err)
					return
				}
				if !bytes.Equal(in, out) {
					errs <- fmt.Errorf("conn %d message %d: wrong echo", i, m)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	othersTook := time.Since(began)
	// Keep pumping until the slow peer has been refused for a while.
	waitFor(t, deadline, "Sends to the slow peer to be refused", func() bool { return refused.Load() > 100 })
	stopPump()
	if pumpErr != nil {
		t.Fatalf("Send to the slow peer: %v (want nil or code %d only)", pumpErr, swoole.ErrOutputBufferOverflow)
	}
	heap1 := heapAfterGC()

	if q := maxQueued.Load(); q > limit+msg {
		t.Errorf("send_queued_bytes reached %d, above socket_buffer_size %d + one message %d", q, limit, msg)
	}
	if fullFor.Load() != sfd {
		t.Errorf("OnBufferFull did not fire for the slow peer %d", sfd)
	}
	const heapSlack = 32 << 20
	if mh := maxHeap.Load(); mh > heap0+heapSlack {
		t.Errorf("heap reached %d MiB while pumping, from %d MiB", mh>>20, heap0>>20)
	}
	if heap1 > heap0+heapSlack {
		t.Errorf("heap after pumping %d MiB, from %d MiB", heap1>>20, heap0>>20)
	}

	// The slow peer now reads: it gets exactly the accepted Sends, whole, in order.
	want := accepted.Load() * msg
	slow.SetReadDeadline(time.Now().Add(deadline))
	buf := make([]byte, msg)
	var i int64
	for ; i < accepted.Load(); i++ {
		if _, err := io.ReadFull(slow, buf); err != nil {
			t.Fatalf("slow peer: read message %d of %d: %v", i, accepted.Load(), err)
		}
		for _, b := range buf {
			if b != buf[0] {
				t.Fatalf("slow peer: message %d is mixed", i)
			}
		}
	}
	roundTrip(t, slow, "and echo") // nothing more than the accepted Sends was queued
	t.Logf("others took %v; slow peer: %d Sends accepted (%d MiB), %d refused with 1008, max queued %d KiB; heap %d → %d MiB (max %d MiB)",
		othersTook.Round(time.Millisecond), accepted.Load(), want>>20, refused.Load(), maxQueued.Load()>>10,
		heap0>>20, heap1>>20, maxHeap.Load()>>20)
}

// TestConnectCloseLeaks: 10,000 connect/close cycles, closed every way (peer close, peer
// reset, server Close, server reset), leave no descriptor, goroutine or heap behind, and
// OnClose ran once for each OnConnect.
func TestConnectCloseLeaks(t *testing.T) {
	const (
		cycles   = 10000
		warmup   = 200
		parallel = 8
		deadline = 60 * time.Second
	)
	var connects, closes atomic.Int64
	s := newServer(t, map[string]any{"max_connection": 1024})
	s.OnConnect(func(*swoole.Server, int64, int) { connects.Add(1) })
	s.OnClose(func(*swoole.Server, int64, int) { closes.Add(1) })
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		var err error
		switch string(data) {
		case "close":
			err = s.Close(fd, false)
		case "reset":
			err = s.Close(fd, true)
		default:
			err = s.Send(fd, data)
		}
		if err != nil {
			t.Errorf("fd %d %q: %v", fd, data, err)
		}
	})
	r := start(t, s)

	cycle := func(i int) error {
		c, err := net.DialTimeout("tcp", r.addr, ioTimeout)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(ioTimeout))
		req := [...]string{"peer close", "peer reset", "close", "reset"}[i%4]
		if _, err := c.Write([]byte(req)); err != nil {
			return err
		}
		switch req {
		case "close", "reset": // the server closes; the peer sees EOF or a reset
			_, err := io.Copy(io.Discard, c)
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				return fmt.Errorf("%s: %w", req, err)
			}
			return nil
		}
		got := make([]byte, len(req))
		if _, err := io.ReadFull(c, got); err != nil {
			return fmt.Errorf("%s: %w", req, err)
		}
		if req == "peer reset" {
			c.(*net.TCPConn).SetLinger(0)
		}
		return nil
	}
	run := func(n int) {
		t.Helper()
		var next atomic.Int64
		var wg sync.WaitGroup
		var firstErr atomic.Value
		for range parallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= n || firstErr.Load() != nil {
						return
					}
					if err := cycle(i); err != nil {
						firstErr.CompareAndSwap(nil, fmt.Errorf("cycle %d: %w", i, err))
					}
				}
			}()
		}
		wg.Wait()
		if err := firstErr.Load(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, deadline, "every connection to close", func() bool {
			return s.Stats().ConnectionNum == 0 && closes.Load() == connects.Load()
		})
	}

	run(warmup)
	fd0, g0, heap0 := fdCount(t), runtime.NumGoroutine(), heapAfterGC()
	began := time.Now()
	run(cycles)
	took := time.Since(began)
	var fd1, g1 int
	waitFor(t, ioTimeout, "client goroutines to end", func() bool {
		g1 = runtime.NumGoroutine()
		return g1 <= g0+2
	})
	fd1 = fdCount(t)
	heap1 := heapAfterGC()

	st := s.Stats()
	if st.AcceptCount != warmup+cycles || st.CloseCount != warmup+cycles || connects.Load() != warmup+cycles || closes.Load() != warmup+cycles {
		t.Errorf("accept_count %d close_count %d connects %d closes %d, want %d each",
			st.AcceptCount, st.CloseCount, connects.Load(), closes.Load(), warmup+cycles)
	}
	if st.SessionRound != warmup+cycles {
		t.Errorf("session_round %d, want %d (one new id per connection)", st.SessionRound, warmup+cycles)
	}
	if fd1 > fd0+2 {
		t.Errorf("descriptors: %d before, %d after %d cycles", fd0, fd1, cycles)
	}
	const heapSlack = 8 << 20
	if heap1 > heap0+heapSlack {
		t.Errorf("heap: %d KiB before, %d KiB after %d cycles", heap0>>10, heap1>>10, cycles)
	}
	t.Logf("%d cycles in %v (%v each, %d parallel): fds %d → %d, goroutines %d → %d, heap %d KiB → %d KiB",
		cycles, took.Round(time.Millisecond), (took / cycles).Round(time.Microsecond), parallel, fd0, fd1, g0, g1, heap0>>10, heap1>>10)
}
