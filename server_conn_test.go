package swoole_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole"
)

// TestSessionIDs: the first session id is start_session_id+1, each new connection gets the
// next one, and closed ids are never handed out again.
func TestSessionIDs(t *testing.T) {
	tests := []struct {
		name  string
		start int64
	}{
		{name: "default", start: 0},
		{name: "start_session_id 1000", start: 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newEcho(t, map[string]any{"start_session_id": tc.start})
			ids := make(chan int64, 64)
			s.OnConnect(func(_ *swoole.Server, fd int64, _ int) { ids <- fd })
			r := start(t, s)
			var got []int64
			for i := range 20 {
				c := r.dial(t)
				roundTrip(t, c, "x")
				got = append(got, <-ids)
				if i%2 == 0 {
					c.Close() // half closed at once: their ids must not come back
				}
			}
			for i, id := range got {
				if want := tc.start + 1 + int64(i); id != want {
					t.Fatalf("session ids %v: id #%d is %d, want %d", got, i, id, want)
				}
			}
			var open []int64
			for i, id := range got {
				if i%2 == 1 {
					open = append(open, id)
				}
			}
			waitFor(t, ioTimeout, "the closes", func() bool { return s.Stats().ConnectionNum == len(open) })
			if ids, err := s.GetClientList(0, 100); err != nil || !slices.Equal(ids, open) {
				t.Errorf("GetClientList(0, 100) = %v, %v; want the open ids %v", ids, err, open)
			}
			if sr := s.Stats().SessionRound; sr != got[len(got)-1] {
				t.Errorf("Stats().SessionRound = %d, want the last id %d", sr, got[len(got)-1])
			}
		})
	}
}

// TestSend covers Send from a callback and from another goroutine, and its errors.
func TestSend(t *testing.T) {
	s := newEcho(t, nil)
	closed := make(chan int64, 4)
	s.OnClose(func(_ *swoole.Server, fd int64, _ int) { closed <- fd })
	r := start(t, s)
	c := r.dial(t)
	roundTrip(t, c, "from a callback")
	fd := fdOf(t, s, c)

	if err := s.Send(fd, []byte("from a goroutine")); err != nil {
		t.Fatalf("Send from the test goroutine: %v", err)
	}
	if got := readFull(t, c, len("from a goroutine")); string(got) != "from a goroutine" {
		t.Fatalf("got %q", got)
	}
	buf := []byte("reused")
	if err := s.Send(fd, buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXXX") // Send has returned: the caller may reuse its slice
	if got := readFull(t, c, 6); string(got) != "reused" {
		t.Fatalf("got %q after reusing the slice given to Send, want \"reused\"", got)
	}

	// A connection closed by its peer.
	c2 := r.dial(t)
	fd2 := fdOf(t, s, c2)
	c2.Close()
	if got := <-closed; got != fd2 {
		t.Fatalf("OnClose(%d), want %d", got, fd2)
	}

	tests := []struct {
		name string
		fd   int64
		data []byte
		code int
	}{
		{name: "empty data", fd: fd, data: []byte{}, code: swoole.ErrNoPayload},
		{name: "nil data", fd: fd, data: nil, code: swoole.ErrNoPayload},
		{name: "unknown fd", fd: fd + 1000, data: []byte("x"), code: swoole.ErrSessionNotExist},
		{name: "closed fd", fd: fd2, data: []byte("x"), code: swoole.ErrSessionNotExist},
		{name: "fd 0", fd: 0, data: []byte("x"), code: swoole.ErrRefused},
		{name: "negative fd", fd: -3, data: []byte("x"), code: swoole.ErrRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, s, "Send", s.Send(tc.fd, tc.data), tc.code)
		})
	}
	roundTrip(t, c, "still fine") // the errors did not disturb the good connection
}

// TestSendAtomic: Sends from several goroutines to one connection never interleave.
func TestSendAtomic(t *testing.T) {
	const (
		senders = 4
		each    = 32
		size    = 64 << 10
	)
	s := newEcho(t, map[string]any{"socket_buffer_size": "64M"})
	r := start(t, s)
	c := r.dial(t)
	fd := fdOf(t, s, c)

	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := make([]byte, size)
			for i := range each {
				tag := byte(g*each + i)
				for j := range msg {
					msg[j] = tag
				}
				if err := s.Send(fd, msg); err != nil {
					t.Errorf("Send: %v", err)
					return
				}
			}
		}()
	}
	got := readFull(t, c, senders*each*size)
	wg.Wait()
	seen := make(map[byte]bool)
	for off := 0; off < len(got); off += size {
		block := got[off : off+size]
		for j, b := range block {
			if b != block[0] {
				t.Fatalf("message at offset %d is mixed: byte %d is %d, the message's first is %d", off, j, b, block[0])
			}
		}
		if seen[block[0]] {
			t.Fatalf("message %d arrived twice", block[0])
		}
		seen[block[0]] = true
	}
}

// TestClose covers Close with and without reset, and its errors.
func TestClose(t *testing.T) {
	var rec recorder
	s := newEcho(t, map[string]any{"socket_buffer_size": "64M"})
	s.OnClose(func(s *swoole.Server, fd int64, rid int) {
		rec.add("close:%d:%d", fd, rid)
		if s.Exist(fd) {
			t.Errorf("Exist(%d) inside OnClose = true", fd)
		}
	})
	r := start(t, s)

	// queue fills the kernel buffers towards c and then queues more in the server.
	// queue fills the kernel's buffers towards fd's peer (which has a small receive buffer
	// and does not read yet) and then queues at least 1 MiB in the server.
	queue := func(t *testing.T, fd int64) int {
		chunk := make([]byte, 256<<10)
		for i := range chunk {
			chunk[i] = byte(i)
		}
		sent := 0
		for {
			if err := s.Send(fd, chunk); err != nil {
				t.Fatalf("Send: %v", err)
			}
			sent += len(chunk)
			info, err := s.GetClientInfo(fd, -1, false)
			if err != nil {
				t.Fatal(err)
			}
			if info.SendQueuedBytes >= 1<<20 {
				return sent
			}
			if sent > 32<<20 {
				t.Fatalf("%d bytes sent, still only %d queued", sent, info.SendQueuedBytes)
			}
		}
	}

	t.Run("graceful flushes queued output", func(t *testing.T) {
		c := dialSmallRcvBuf(t, r.addr)
		fd := fdOf(t, s, c)
		sent := queue(t, fd)
		if err := s.Close(fd, false); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if s.Exist(fd) {
			t.Error("Exist is true right after Close")
		}
		wantCode(t, s, "Send after Close", s.Send(fd, []byte("late")), swoole.ErrSessionNotExist)
		// A second Close while the output drains: 1004 (Swoole's close_reset), or 1003 if it
		// meets OnClose running on the loop.
		if err := s.Close(fd, false); code(err) != swoole.ErrSessionClosed && code(err) != swoole.ErrSessionClosing {
			t.Errorf("second Close: %v, want code %d (or %d while OnClose runs)", err, swoole.ErrSessionClosed, swoole.ErrSessionClosing)
		}
		got, err := readUntilClosed(t, c)
		if err != nil {
			t.Errorf("the read ended with %v, want EOF after the queued output", err)
		}
		if len(got) != sent {
			t.Errorf("the peer got %d bytes before EOF, want all %d queued", len(got), sent)
		}
		waitFor(t, ioTimeout, "OnClose", func() bool { return rec.count(fmt.Sprintf("close:%d:-1", fd)) == 1 })
		// The session goes right after its descriptor closed (the EOF just read).
		waitFor(t, ioTimeout, "the session to go", func() bool { _, err := s.GetClientInfo(fd, -1, true); return err != nil })
		wantCode(t, s, "Close after OnClose", s.Close(fd, false), swoole.ErrSessionNotExist)
		wantCode(t, s, "Close(reset) after OnClose", s.Close(fd, true), swoole.ErrSessionNotExist)
	})
	t.Run("reset drops queued output", func(t *testing.T) {
		c := dialSmallRcvBuf(t, r.addr)
		fd := fdOf(t, s, c)
		sent := queue(t, fd)
		if err := s.Close(fd, true); err != nil {
			t.Fatalf("Close(reset): %v", err)
		}
		got, err := readUntilClosed(t, c)
		if !isErrno(err, syscall.ECONNRESET) {
			t.Errorf("the read ended with %v, want ECONNRESET", err)
		}
		if len(got) >= sent {
			t.Errorf("the peer got all %d bytes although the close was a reset", len(got))
		}
		waitFor(t, ioTimeout, "OnClose", func() bool { return rec.count(fmt.Sprintf("close:%d:-1", fd)) == 1 })
	})
	t.Run("errors", func(t *testing.T) {
		wantCode(t, s, "Close of an unknown fd", s.Close(1<<40, false), swoole.ErrSessionNotExist)
		wantCode(t, s, "Close(0)", s.Close(0, false), swoole.ErrRefused)
		wantCode(t, s, "Close(-1)", s.Close(-1, true), swoole.ErrRefused)
	})
}

// TestCloseOnce: OnClose runs exactly once per connection whoever closes it, including a
// server Close racing with the peer's close, and the connections still open at shutdown.
func TestCloseOnce(t *testing.T) {
	type how int
	const (
		peerClose how = iota
		peerReset
		serverClose
		serverReset
		bothAtOnce
		atShutdown
		nHow
	)
	names := [...]string{"peer close", "peer reset", "server close", "server reset", "both at once", "at shutdown"}
	const perHow = 30

	var mu sync.Mutex
	closes := make(map[int64][]int) // fd -> reactor ids of each OnClose
	s := newEcho(t, nil)
	s.OnClose(func(_ *swoole.Server, fd int64, rid int) {
		mu.Lock()
		closes[fd] = append(closes[fd], rid)
		mu.Unlock()
	})
	r := start(t, s)
	fdHow := make(map[int64]how)
	for i := range int(nHow) * perHow {
		h := how(i % int(nHow))
		c := r.dial(t)
		fd := fdOf(t, s, c)
		fdHow[fd] = h
		switch h {
		case peerClose:
			c.Close()
		case peerReset:
			resetClose(t, c)
		case serverClose, serverReset:
			if err := s.Close(fd, h == serverReset); err != nil {
				t.Fatalf("Close(%d): %v", fd, err)
			}
		case bothAtOnce:
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); c.Close() }()
			// nil, or the session is already gone (1005) or closing (1003: its OnClose runs;
			// 1004: the loop is closing it).
			if err := s.Close(fd, false); err != nil && code(err) != swoole.ErrSessionNotExist && code(err) != swoole.ErrSessionClosing && code(err) != swoole.ErrSessionClosed {
				t.Errorf("Close racing the peer: %v", err)
			}
			wg.Wait()
		}
	}
	waitFor(t, ioTimeout, "every closed connection's OnClose", func() bool {
		return s.Stats().CloseCount == int64(nHow-1)*perHow
	})
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := r.wait(startTimeout); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for fd, h := range fdHow {
		rids := closes[fd]
		if len(rids) != 1 {
			t.Errorf("%s: fd %d got %d OnClose calls, want 1", names[h], fd, len(rids))
			continue
		}
		switch h {
		case peerClose, peerReset:
			if rids[0] != 0 {
				t.Errorf("%s: OnClose reactorID %d, want 0 (closed by the peer)", names[h], rids[0])
			}
		case serverClose, serverReset:
			if rids[0] != -1 {
				t.Errorf("%s: OnClose reactorID %d, want -1 (closed by the application)", names[h], rids[0])
			}
		}
	}
	if len(closes) != len(fdHow) {
		t.Errorf("OnClose ran for %d sessions, want %d", len(closes), len(fdHow))
	}
}

// TestExist follows Exist through a connection's life.
func TestExist(t *testing.T) {
	var inClose atomic.Int32
	s := newEcho(t, nil)
	s.OnClose(func(s *swoole.Server, fd int64, _ int) {
		if s.Exist(fd) {
			inClose.Store(1)
		} else {
			inClose.Store(2)
		}
	})
	r := start(t, s)
	c := r.dial(t)
	fd := fdOf(t, s, c)
	if !s.Exist(fd) {
		t.Fatal("Exist is false for an open connection")
	}
	for _, id := range []int64{0, -1, fd + 1, fd + 1<<20} {
		if s.Exist(id) {
			t.Errorf("Exist(%d) = true for an id never opened", id)
		}
	}
	c.Close()
	waitFor(t, ioTimeout, "OnClose", func() bool { return inClose.Load() != 0 })
	if inClose.Load() == 1 {
		t.Error("Exist was true inside OnClose")
	}
	if s.Exist(fd) {
		t.Error("Exist is true after the connection closed")
	}
}

// TestPauseResume: a paused connection's data waits until Resume; other connections go on.
func TestPauseResume(t *testing.T) {
	var got sync.Map // fd -> received bytes (string)
	s := newServer(t, nil)
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		old, _ := got.Load(fd)
		prev, _ := old.(string)
		got.Store(fd, prev+string(data))
		if err := s.Send(fd, data); err != nil {
			t.Errorf("Send: %v", err)
		}
	})
	r := start(t, s)
	a, b := r.dial(t), r.dial(t)
	fa := fdOf(t, s, a)
	fdOf(t, s, b)

	if err := s.Pause(fa); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if err := s.Pause(fa); err != nil {
		t.Errorf("second Pause: %v", err)
	}
	if _, err := a.Write([]byte("held back")); err != nil {
		t.Fatal(err)
	}
	// b's echoes pass through the same loop: once several have come back, a's data would
	// have been read if a were not paused.
	for i := range 5 {
		roundTrip(t, b, "b"+strconv.Itoa(i))
	}
	if v, ok := got.Load(fa); ok {
		t.Fatalf("a paused connection delivered %q", v)
	}
	if err := s.Resume(fa); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if err := s.Resume(fa); err != nil {
		t.Errorf("second Resume: %v", err)
	}
	if echo := readFull(t, a, len("held back")); string(echo) != "held back" {
		t.Fatalf("after Resume got %q", echo)
	}
	roundTrip(t, a, "and more")

	for _, tc := range []struct {
		name string
		fd   int64
		code int
	}{
		{"unknown fd", fa + 1000, swoole.ErrSessionNotExist},
		{"fd 0", 0, swoole.ErrRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, s, "Pause", s.Pause(tc.fd), tc.code)
			wantCode(t, s, "Resume", s.Resume(tc.fd), tc.code)
		})
	}
	t.Run("closed fd", func(t *testing.T) {
		c := r.dial(t)
		fd := fdOf(t, s, c)
		if err := s.Close(fd, false); err != nil {
			t.Fatal(err)
		}
		readUntilClosed(t, c)
		wantCode(t, s, "Pause", s.Pause(fd), swoole.ErrSessionNotExist)
		wantCode(t, s, "Resume", s.Resume(fd), swoole.ErrSessionNotExist)
	})
}

// statIno returns the inode of the socket behind descriptor fd of this process.
func statIno(t *testing.T, fd int) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatalf("fstat(%d): %v", fd, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		t.Fatalf("descriptor %d is not a socket (mode %o)", fd, st.Mode)
	}
	return st.Ino
}

func near(t *testing.T, what string, v, lo, hi float64) {
	t.Helper()
	if v < lo-1 || v > hi+1 {
		t.Errorf("%s = %.3f, want between %.3f and %.3f", what, v, lo, hi)
	}
}

func nowSec() float64 { return float64(time.Now().UnixNano()) / 1e9 }

// TestGetClientInfo checks every field of ClientInfo, its errors and its alias.
func TestGetClientInfo(t *testing.T) {
	type closeInfo struct {
		info *swoole.ClientInfo
		err  error
	}
	closeInfos := make(chan closeInfo, 4)
	s := newEcho(t, nil)
	s.OnClose(func(s *swoole.Server, fd int64, _ int) {
		info, err := s.GetClientInfo(fd, -1, false)
		closeInfos <- closeInfo{info, err}
	})
	r := start(t, s)
	port := s.Ports()[0].Port()

	t0 := nowSec()
	c := r.dial(t)
	fd := fdOf(t, s, c)
	t1 := nowSec()
	clientPort := c.LocalAddr().(*net.TCPAddr).Port

	info, err := s.GetClientInfo(fd, -1, false)
	if err != nil {
		t.Fatalf("GetClientInfo: %v", err)
	}
	if info.ServerPort != port || info.SocketType != int(swoole.SockTCP) || info.RemotePort != clientPort ||
		info.RemoteIP != "127.0.0.1" || info.ReactorID != 0 {
		t.Errorf("server_port %d socket_type %d remote_port %d remote_ip %q reactor_id %d, want %d %d %d %q 0",
			info.ServerPort, info.SocketType, info.RemotePort, info.RemoteIP, info.ReactorID,
			port, swoole.SockTCP, clientPort, "127.0.0.1")
	}
	// server_fd is the listening socket: the same socket GetSocket duplicates.
	f, err := s.Ports()[0].GetSocket()
	if err != nil {
		t.Fatalf("GetSocket: %v", err)
	}
	if statIno(t, info.ServerFD) != statIno(t, int(f.Fd())) {
		t.Errorf("server_fd %d is not the listening socket", info.ServerFD)
	}
	// socket_fd is the connection's descriptor: its peer is the client.
	if sa, err := unix.Getpeername(info.SocketFD); err != nil {
		t.Errorf("getpeername(socket_fd %d): %v", info.SocketFD, err)
	} else if in4, ok := sa.(*unix.SockaddrInet4); !ok || in4.Port != clientPort {
		t.Errorf("socket_fd %d's peer is %+v, want the client's port %d", info.SocketFD, sa, clientPort)
	}
	near(t, "connect_time", float64(info.ConnectTime), t0, t1)
	if info.LastTime != info.ConnectTime {
		t.Errorf("last_time %d before any data, want connect_time %d", info.LastTime, info.ConnectTime)
	}
	if info.LastRecvTime != 0 || info.LastSendTime != 0 || info.LastDispatchTime != 0 {
		t.Errorf("before any data: last_recv_time %v last_send_time %v last_dispatch_time %v, want 0",
			info.LastRecvTime, info.LastSendTime, info.LastDispatchTime)
	}
	if info.CloseErrno != 0 || info.RecvQueuedBytes != 0 || info.SendQueuedBytes != 0 ||
		info.WebSocketStatus != 0 || info.UID != 0 || info.SSLClientCert != "" {
		t.Errorf("idle connection: %+v, want zero close_errno, queues, websocket_status, uid, ssl_client_cert", info)
	}

	t2 := nowSec()
	roundTrip(t, c, "ping")
	// Send records last_send_time just after its write, so the peer may read the echo a
	// moment before: wait for it.
	waitFor(t, ioTimeout, "last_send_time", func() bool {
		info, err = s.ConnectionInfo(fd, 0, false)
		if err != nil {
			t.Fatalf("ConnectionInfo: %v", err)
		}
		return info.LastSendTime != 0
	})
	t3 := nowSec()
	near(t, "last_recv_time", info.LastRecvTime, t2, t3)
	near(t, "last_send_time", info.LastSendTime, t2, t3)
	near(t, "last_dispatch_time", info.LastDispatchTime, t2, t3)
	if info.LastRecvTime < t2-0.01 || info.LastSendTime < info.LastRecvTime {
		t.Errorf("last_recv_time %.6f last_send_time %.6f: want a receive after %.6f and the echo after it", info.LastRecvTime, info.LastSendTime, t2)
	}
	if info.LastTime != int64(info.LastRecvTime) {
		t.Errorf("last_time %d, want the last receive's second %d", info.LastTime, int64(info.LastRecvTime))
	}

	if err := s.Bind(fd, 4242); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	if info, _ = s.GetClientInfo(fd, -1, false); info == nil || info.UID != 4242 {
		t.Errorf("uid after Bind(4242): %+v", info)
	}
	if err := s.Bind(fd, 7); code(err) < 0 {
		t.Errorf("a second Bind: %v, want a *swoole.Error", err)
	}
	if info, _ = s.GetClientInfo(fd, -1, false); info == nil || info.UID != 4242 {
		t.Errorf("uid after a refused second Bind: %+v", info)
	}
	wantCode(t, s, "Bind of an unknown fd", s.Bind(fd+1000, 1), swoole.ErrSessionNotExist)

	js, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]any
	_ = json.Unmarshal(js, &keys)
	for _, k := range []string{"server_port", "server_fd", "socket_fd", "socket_type", "remote_port", "remote_ip",
		"reactor_id", "connect_time", "last_time", "last_recv_time", "last_send_time", "last_dispatch_time",
		"close_errno", "recv_queued_bytes", "send_queued_bytes", "uid"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("ClientInfo's JSON lacks %q: %s", k, js)
		}
	}

	t.Run("inside OnClose", func(t *testing.T) {
		resetClose(t, c)
		ci := <-closeInfos
		if ci.err != nil {
			t.Fatalf("GetClientInfo inside OnClose: %v", ci.err)
		}
		if ci.info.RemotePort != clientPort || ci.info.UID != 4242 {
			t.Errorf("inside OnClose: remote_port %d uid %d, want %d 4242", ci.info.RemotePort, ci.info.UID, clientPort)
		}
		if ci.info.CloseErrno != int(syscall.ECONNRESET) {
			t.Errorf("close_errno %d after a peer reset, want ECONNRESET (%d)", ci.info.CloseErrno, syscall.ECONNRESET)
		}
		c2 := r.dial(t)
		c2.Close()
		if ci = <-closeInfos; ci.err != nil || ci.info.CloseErrno != 0 {
			t.Errorf("inside OnClose after a clean close: %+v %v, want close_errno 0", ci.info, ci.err)
		}
	})
	t.Run("errors", func(t *testing.T) {
		wantCode(t, s, "GetClientInfo(closed fd)", func() error { _, err := s.GetClientInfo(fd, -1, false); return err }(), swoole.ErrSessionNotExist)
		wantCode(t, s, "GetClientInfo(unknown fd)", func() error { _, err := s.GetClientInfo(fd+1000, -1, false); return err }(), swoole.ErrSessionNotExist)
		// fd 0 is malformed: Swoole answers send(0) with 503; either code is fine here.
		if _, err := s.GetClientInfo(0, -1, false); code(err) != swoole.ErrSessionNotExist && code(err) != swoole.ErrRefused {
			t.Errorf("GetClientInfo(0): %v, want code %d or %d", err, swoole.ErrSessionNotExist, swoole.ErrRefused)
		}
		// ignoreError keeps the error out of GetLastError, but still returns it.
		wantCode(t, s, "Send(0)", s.Send(0, []byte("x")), swoole.ErrRefused)
		info, err := s.GetClientInfo(fd, -1, true)
		if info != nil || code(err) != swoole.ErrSessionNotExist {
			t.Errorf("GetClientInfo(closed, ignoreError) = %v, %v; want nil and code 1005", info, err)
		}
		if got := s.GetLastError(); got != swoole.ErrRefused {
			t.Errorf("GetLastError() = %d after GetClientInfo with ignoreError, want the earlier %d", got, swoole.ErrRefused)
		}
	})
}

// TestGetClientList pages through the open connections and compares with Connections().
func TestGetClientList(t *testing.T) {
	const n = 150
	s := newEcho(t, nil)
	var mu sync.Mutex
	open := make(map[int64]bool)
	s.OnConnect(func(_ *swoole.Server, fd int64, _ int) { mu.Lock(); open[fd] = true; mu.Unlock() })
	s.OnClose(func(_ *swoole.Server, fd int64, _ int) { mu.Lock(); delete(open, fd); mu.Unlock() })
	r := start(t, s)

	if ids, err := s.GetClientList(0, 10); err != nil || len(ids) != 0 || ids == nil {
		t.Errorf("GetClientList with no connection = %v (nil: %v), %v; want an empty slice and nil", ids, ids == nil, err)
	}
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = r.dial(t)
	}
	// OnConnect and OnClose may run after the table changed (ModeThread runs them on a
	// worker loop): wait for both.
	opened := func(k int) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return s.Stats().ConnectionNum == k && len(open) == k
		}
	}
	waitFor(t, ioTimeout, "all connections", opened(n))
	var closedID int64
	for i := 5; i < n; i += 10 { // close every tenth
		fd := fdOf(t, s, conns[i])
		closedID = fd
		conns[i].Close()
	}
	waitFor(t, ioTimeout, "the closes", opened(n-n/10))

	mu.Lock()
	var want []int64
	for fd := range open {
		want = append(want, fd)
	}
	mu.Unlock()
	slices.Sort(want)

	var paged []int64
	var after int64
	for page := 0; ; page++ {
		ids, err := s.GetClientList(after, 100)
		if err != nil {
			t.Fatalf("GetClientList(%d, 100): %v", after, err)
		}
		if len(ids) > 100 {
			t.Fatalf("a page of %d ids", len(ids))
		}
		if len(ids) == 0 {
			if ids == nil {
				t.Error("past the last connection: nil slice, want an empty one")
			}
			break
		}
		if page > n {
			t.Fatal("GetClientList does not end")
		}
		paged = append(paged, ids...)
		after = ids[len(ids)-1]
	}
	if !slices.Equal(paged, want) {
		t.Errorf("GetClientList pages:\n got %v\nwant %v", paged, want)
	}
	if !slices.IsSorted(paged) {
		t.Error("GetClientList is not ascending")
	}
	var iterated []int64
	for id := range s.Connections() {
		iterated = append(iterated, id)
	}
	if !slices.Equal(iterated, want) {
		t.Errorf("Connections():\n got %v\nwant %v", iterated, want)
	}
	k := 0
	for range s.Connections() {
		if k++; k == 3 {
			break
		}
	}

	ids, err := s.GetClientList(closedID, 3)
	if err != nil || len(ids) != 3 || ids[0] <= closedID {
		t.Errorf("GetClientList(closed id %d, 3) = %v, %v; want the 3 ids after it", closedID, ids, err)
	}
	if alias, err := s.ConnectionList(closedID, 3); err != nil || !slices.Equal(alias, ids) {
		t.Errorf("ConnectionList = %v, %v; want %v", alias, err, ids)
	}
	if ids, err := s.GetClientList(want[len(want)-1], 100); err != nil || len(ids) != 0 {
		t.Errorf("past the last id: %v, %v; want empty and nil", ids, err)
	}
	if ids, err := s.GetClientList(0, 1); err != nil || !slices.Equal(ids, want[:1]) {
		t.Errorf("GetClientList(0, 1) = %v, %v; want %v", ids, err, want[:1])
	}
	for _, size := range []int{0, -1, 101, 1000} {
		t.Run("page size "+strconv.Itoa(size), func(t *testing.T) {
			_, err := s.GetClientList(0, size)
			wantCode(t, s, "GetClientList", err, swoole.ErrRefused)
		})
	}
}

// TestStats checks Stats' counters through a few connections and messages.
func TestStats(t *testing.T) {
	type inCB struct{ idle, status int }
	fromCB := make(chan inCB, 16)
	s := newServer(t, nil)
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		st, _ := s.GetWorkerStatus(-1)
		fromCB <- inCB{s.Stats().IdleWorkerNum, st}
		if err := s.Send(fd, data); err != nil {
			t.Errorf("Send: %v", err)
		}
	})
	t0 := time.Now().Unix()
	r := start(t, s)
	st := s.Stats()
	// Right after Start the worker may still be in OnStart/OnWorkerStart (busy); then idle.
	// (TestReadsWhileStarting checks the status is never anything else while running.)
	waitFor(t, ioTimeout, "the worker to be idle", func() bool {
		got, _ := s.GetWorkerStatus(0)
		return got == swoole.WorkerIdle
	})
	st = s.Stats()
	if st.StartTime < t0 || st.StartTime > time.Now().Unix() || st.WorkerNum != 1 || st.TaskWorkerNum != 0 ||
		st.IdleWorkerNum != 1 || st.ConnectionNum != 0 || st.AcceptCount != 0 {
		t.Errorf("a fresh server's Stats: %+v", st)
	}

	var conns []net.Conn
	var bytes int64
	for i := range 3 {
		c := r.dial(t)
		conns = append(conns, c)
		for j := range 2 {
			msg := fmt.Sprintf("message %d.%d", i, j)
			roundTrip(t, c, msg)
			bytes += int64(len(msg))
		}
	}
	for range 6 {
		if got := <-fromCB; got.idle != 0 || got.status != swoole.WorkerBusy {
			t.Errorf("inside a callback: idle_worker_num %d, own status %d; want 0 and WorkerBusy", got.idle, got.status)
		}
	}
	conns[0].Close()
	waitFor(t, ioTimeout, "the close", func() bool { return s.Stats().CloseCount == 1 })
	st = s.Stats()
	want := swoole.Stats{
		StartTime: st.StartTime, ConnectionNum: 2, AcceptCount: 3, CloseCount: 1, WorkerNum: 1,
		IdleWorkerNum: 1, RequestCount: 6, ResponseCount: 6, TotalRecvBytes: bytes, TotalSendBytes: bytes,
		SessionRound: 3, MinFD: st.MinFD, MaxFD: st.MaxFD, WorkerRequestCount: 6, WorkerResponseCount: 6,
	}
	if coreMode() == swoole.ModeThread {
		// The reactor dispatches each message to the worker loop; the handle asked is the
		// master's, which counts no request of its own.
		want.DispatchCount, want.WorkerRequestCount, want.WorkerResponseCount = 6, 0, 0
	}
	if st != want {
		t.Errorf("Stats:\n got %+v\nwant %+v", st, want)
	}
	minFD, maxFD := 1<<30, 0
	for id := range s.Connections() {
		info, err := s.GetClientInfo(id, -1, false)
		if err != nil {
			t.Fatal(err)
		}
		minFD, maxFD = min(minFD, info.SocketFD), max(maxFD, info.SocketFD)
	}
	if st.MinFD <= 0 || st.MinFD > minFD || st.MaxFD < maxFD {
		t.Errorf("min_fd %d max_fd %d; the open connections' socket fds span %d..%d", st.MinFD, st.MaxFD, minFD, maxFD)
	}
	js, _ := json.Marshal(st)
	var keys map[string]any
	_ = json.Unmarshal(js, &keys)
	for _, k := range []string{"start_time", "connection_num", "abort_count", "accept_count", "close_count",
		"worker_num", "task_worker_num", "user_worker_num", "idle_worker_num", "dispatch_count", "request_count",
		"response_count", "total_recv_bytes", "total_send_bytes", "pipe_packet_msg_id", "session_round",
		"min_fd", "max_fd", "worker_request_count", "worker_response_count", "worker_dispatch_count"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("Stats' JSON lacks %q", k)
		}
	}
	if got, err := s.GetWorkerStatus(5); code(err) != swoole.ErrInvalidParams {
		t.Errorf("GetWorkerStatus(5) = %d, %v; want code %d", got, err, swoole.ErrInvalidParams)
	}
	if pid := s.GetWorkerPID(0); pid != os.Getpid() {
		t.Errorf("GetWorkerPID(0) = %d, want this process %d", pid, os.Getpid())
	}
	if pid := s.MasterPID(); pid != os.Getpid() {
		t.Errorf("MasterPID() = %d, want this process %d", pid, os.Getpid())
	}
}

// TestSendInsideOnClose: inside OnClose of a connection the server closed, Send still
// reaches the peer before EOF (Swoole's BASE mode); Close there is 1003; after OnClose,
// Send is 1005.
func TestSendInsideOnClose(t *testing.T) {
	onlyOneLoop(t, "in ModeThread, as in ModeProcess, the reactor has closed the socket before OnClose runs in a worker loop: Send there is 1004 (TestReactorModesConnectClose)")
	type res struct{ send, close error }
	results := make(chan res, 1)
	s := newEcho(t, nil)
	s.OnClose(func(s *swoole.Server, fd int64, _ int) {
		results <- res{s.Send(fd, []byte("last words")), s.Close(fd, false)}
	})
	r := start(t, s)
	c := r.dial(t)
	fd := fdOf(t, s, c)
	if err := s.Close(fd, false); err != nil {
		t.Fatal(err)
	}
	got, err := readUntilClosed(t, c)
	if string(got) != "last words" || err != nil {
		t.Errorf("the peer got %q then %v, want \"last words\" then EOF", got, err)
	}
	rs := <-results
	if rs.send != nil {
		t.Errorf("Send inside OnClose: %v", rs.send)
	}
	wantCode(t, nil, "Close inside OnClose", rs.close, swoole.ErrSessionClosing)
	wantCode(t, s, "Send after OnClose", s.Send(fd, []byte("x")), swoole.ErrSessionNotExist)
}

// TestSendDuringOnCloseFromElsewhere: while a connection's OnClose runs, a Send from another
// goroutine is not "inside OnClose": the session is closed for it (1005), and its bytes
// must not reach the peer.
func TestSendDuringOnCloseFromElsewhere(t *testing.T) {
	inClose := make(chan struct{})
	release := make(chan struct{})
	s := newEcho(t, nil)
	s.OnClose(func(*swoole.Server, int64, int) {
		close(inClose)
		<-release
	})
	r := start(t, s)
	c := r.dial(t)
	fd := fdOf(t, s, c)
	if err := s.Close(fd, false); err != nil {
		t.Fatal(err)
	}
	<-inClose
	err := s.Send(fd, []byte("late"))
	close(release)
	wantCode(t, s, "Send from another goroutine during OnClose", err, swoole.ErrSessionNotExist)
	if got, _ := readUntilClosed(t, c); len(got) != 0 {
		t.Errorf("the peer got %q after the server closed it", got)
	}
}

// TestCallbackPatterns covers common uses of the API from inside callbacks.
func TestCallbackPatterns(t *testing.T) {
	t.Run("greeting from OnConnect", func(t *testing.T) {
		var rec recorder
		s := newEcho(t, nil)
		s.OnConnect(func(s *swoole.Server, fd int64, _ int) {
			if !s.Exist(fd) {
				rec.add("Exist false in OnConnect")
			}
			if info, err := s.GetClientInfo(fd, -1, false); err != nil || info.RemoteIP != "127.0.0.1" {
				rec.add("GetClientInfo in OnConnect: %+v %v", info, err)
			}
			if err := s.Send(fd, []byte("welcome\n")); err != nil {
				rec.add("Send in OnConnect: %v", err)
			}
		})
		r := start(t, s)
		c := r.dial(t)
		if got := readFull(t, c, 8); string(got) != "welcome\n" {
			t.Errorf("got %q", got)
		}
		roundTrip(t, c, "then echo")
		for _, e := range rec.list() {
			t.Error(e)
		}
	})
	t.Run("Close in OnConnect", func(t *testing.T) {
		var rec recorder
		s := newEcho(t, nil)
		s.OnConnect(func(s *swoole.Server, fd int64, _ int) {
			if err := s.Close(fd, false); err != nil {
				rec.add("Close in OnConnect: %v", err)
			}
			if err := s.Send(fd, []byte("x")); code(err) != swoole.ErrSessionNotExist {
				rec.add("Send after Close in OnConnect: %v, want code 1005", err)
			}
		})
		s.OnClose(func(_ *swoole.Server, fd int64, rid int) { rec.add("close %d %d", fd, rid) })
		r := start(t, s)
		c := r.dial(t)
		if got, err := readUntilClosed(t, c); len(got) != 0 || err != nil {
			t.Errorf("got %q, %v; want EOF at once", got, err)
		}
		waitFor(t, ioTimeout, "OnClose", func() bool { return len(rec.list()) > 0 })
		if got := rec.list(); !slices.Equal(got, []string{"close 1 -1"}) {
			t.Errorf("events %q, want one OnClose(1, -1)", got)
		}
	})
	t.Run("data then close from the peer", func(t *testing.T) {
		var rec recorder
		s := newServer(t, nil)
		s.OnReceive(func(_ *swoole.Server, fd int64, _ int, data []byte) { rec.add("receive %s", data) })
		s.OnClose(func(_ *swoole.Server, fd int64, _ int) { rec.add("close") })
		r := start(t, s)
		c := r.dial(t)
		if _, err := c.Write([]byte("last")); err != nil {
			t.Fatal(err)
		}
		c.Close()
		waitFor(t, ioTimeout, "OnClose", func() bool { return rec.count("close") == 1 })
		if got := rec.list(); !slices.Equal(got, []string{"receive last", "close"}) {
			t.Errorf("events %q, want the data, then the close", got)
		}
	})
	t.Run("half close: the peer stops writing, the server answers", func(t *testing.T) {
		s := newServer(t, nil)
		s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
			_ = s.Send(fd, bytes.ToUpper(data))
		})
		r := start(t, s)
		c := r.dial(t).(*net.TCPConn)
		if _, err := c.Write([]byte("shout")); err != nil {
			t.Fatal(err)
		}
		if got := readFull(t, c, 5); string(got) != "SHOUT" {
			t.Errorf("got %q", got)
		}
		c.CloseWrite()
		if got, err := readUntilClosed(t, c); len(got) != 0 || err != nil {
			t.Errorf("after the peer's FIN: %q, %v; want the server to close too", got, err)
		}
	})
	t.Run("Pause, then the peer closes, then Resume", func(t *testing.T) {
		closed := make(chan int64, 1)
		s := newEcho(t, nil)
		s.OnClose(func(_ *swoole.Server, fd int64, _ int) { closed <- fd })
		r := start(t, s)
		c := r.dial(t)
		fd := fdOf(t, s, c)
		if err := s.Pause(fd); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if err := s.Resume(fd); err != nil && code(err) != swoole.ErrSessionNotExist {
			t.Fatalf("Resume: %v", err)
		}
		select {
		case got := <-closed:
			if got != fd {
				t.Errorf("OnClose(%d), want %d", got, fd)
			}
		case <-time.After(ioTimeout):
			t.Fatal("no OnClose for a paused connection closed by its peer, after Resume")
		}
	})
	t.Run("server Close of a paused connection", func(t *testing.T) {
		closed := make(chan int64, 1)
		s := newEcho(t, nil)
		s.OnClose(func(_ *swoole.Server, fd int64, _ int) { closed <- fd })
		r := start(t, s)
		c := r.dial(t)
		fd := fdOf(t, s, c)
		if err := s.Pause(fd); err != nil {
			t.Fatal(err)
		}
		if err := s.Send(fd, []byte("queued before close")); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(fd, false); err != nil {
			t.Fatal(err)
		}
		if got, err := readUntilClosed(t, c); string(got) != "queued before close" || err != nil {
			t.Errorf("got %q, %v", got, err)
		}
		select {
		case <-closed:
		case <-time.After(ioTimeout):
			t.Fatal("no OnClose")
		}
	})
}
