package swoole_test

// SendFile and SendWait: sendfile(2) output interleaved in order with queued Send
// data, byte-exact at a slow-then-fast reader; clear errors for a missing file, a bad offset
// or length; SendWait blocking until the data is written or the peer is gone.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"net"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// ftPattern returns n bytes that differ from any shifted copy of themselves, so that a
// misplaced or repeated piece shows.
func ftPattern(seed uint32, n int) []byte {
	b := make([]byte, n+4)
	x := seed*2654435761 + 1
	for i := 0; i < n; i += 4 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		binary.LittleEndian.PutUint32(b[i:], x)
	}
	return b[:n]
}

// ftSlowThenFast reads n bytes from c: first 256 reads of at most 1 KiB, then the rest in
// large reads.
func ftSlowThenFast(t testing.TB, c net.Conn, n int) []byte {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(3 * ftTimeout)); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 0, n)
	small := make([]byte, 1024)
	for i := 0; i < 256 && len(out) < n; i++ {
		k, err := c.Read(small[:min(len(small), n-len(out))])
		out = append(out, small[:k]...)
		if err != nil {
			t.Fatalf("slow read after %d bytes: %v", len(out), err)
		}
	}
	rest := make([]byte, n-len(out))
	if k, err := io.ReadFull(c, rest); err != nil {
		t.Fatalf("fast read after %d bytes: got %d of %d: %v", len(out), k, len(rest), err)
	}
	return append(out, rest...)
}

// ftFirstDiff returns the offset of the first difference of a and b, or -1.
func ftFirstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// TestSendFileInterleaved: with megabytes of Send data queued for a peer that does not
// read yet, SendFile segments (a whole file, a middle part, the last bytes) and more Sends
// are queued behind them; the peer, reading slowly and then fast, gets everything in call
// order, byte-exact. Then the same sequence with nothing queued, and from inside OnReceive.
func TestSendFileInterleaved(t *testing.T) {
	file := ftPattern(7, 3<<20+123)
	path := ftTempFile(t, file)
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{SocketBufferSize: 256 << 20})
	var expectInCallback []byte
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		// From the loop: Send, SendFile, Send.
		_ = s.Send(fd, []byte("cb-head"))
		if err := s.SendFile(fd, path, 17, 100000); err != nil {
			_ = s.Send(fd, []byte(err.Error()))
		}
		_ = s.Send(fd, []byte("cb-tail"))
	})
	expectInCallback = append(append([]byte("cb-head"), file[17:17+100000]...), "cb-tail"...)
	ftStart(t, s)

	t.Run("behind queued output", func(t *testing.T) {
		c := ftDial(t, s.Ports()[0])
		fd := ftFDOf(t, s, c)
		var want bytes.Buffer
		send := func(p []byte) {
			t.Helper()
			if err := s.Send(fd, p); err != nil {
				t.Fatalf("Send: %v", err)
			}
			want.Write(p)
		}
		sendFile := func(off, n int64) {
			t.Helper()
			if err := s.SendFile(fd, path, off, n); err != nil {
				t.Fatalf("SendFile(%d, %d): %v", off, n, err)
			}
			if n == 0 {
				n = int64(len(file)) - off
			}
			want.Write(file[off : off+n])
		}
		// Fill the kernel buffers, then queue 4 MiB more in the server.
		chunk := 0
		queued := func() int {
			info, err := s.GetClientInfo(fd, -1, false)
			if err != nil {
				t.Fatal(err)
			}
			return info.SendQueuedBytes
		}
		for queued() < 4<<20 {
			send(ftPattern(uint32(1000+chunk), 64<<10))
			chunk++
			if chunk > 4096 {
				t.Fatal("256 MiB sent and nothing queued: the peer cannot be this fast")
			}
		}
		sendFile(0, 0)
		send([]byte("between"))
		sendFile(1000, 5000)
		send([]byte("tail"))
		sendFile(int64(len(file))-10, 10)
		send([]byte("end"))
		if q := queued(); q < 4<<20 {
			t.Fatalf("only %d bytes queued", q)
		}
		got := ftSlowThenFast(t, c, want.Len())
		if i := ftFirstDiff(got, want.Bytes()); i >= 0 {
			t.Fatalf("the peer's bytes differ from the call order at offset %d of %d", i, want.Len())
		}
		ftEventually(t, "the queue to drain", func() bool { return queued() == 0 })
	})

	t.Run("nothing queued", func(t *testing.T) {
		c := ftDial(t, s.Ports()[0])
		fd := ftFDOf(t, s, c)
		if err := s.SendFile(fd, path, 5, 64); err != nil {
			t.Fatal(err)
		}
		if err := s.Send(fd, []byte("after")); err != nil {
			t.Fatal(err)
		}
		want := append(bytes.Clone(file[5:69]), "after"...)
		if got := ftReadFull(t, c, len(want)); !bytes.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})

	t.Run("from OnReceive", func(t *testing.T) {
		c := ftDial(t, s.Ports()[0])
		ftWrite(t, c, []byte("go"))
		got := ftSlowThenFast(t, c, len(expectInCallback))
		if i := ftFirstDiff(got, expectInCallback); i >= 0 {
			t.Fatalf("differs at offset %d: %q", i, got[max(0, i-8):min(len(got), i+32)])
		}
	})
}

// TestSendFileErrors: bad calls fail with a clear error and Swoole's code, and the
// connection stays usable: a missing file and an offset or length past the end are 502 (the
// errno stays reachable with errors.Is), negative numbers 505, a directory 9013, an unknown
// or closed session: 1005, a queue past socket_buffer_size 1008, before Start 503.
func TestSendFileErrors(t *testing.T) {
	dir := t.TempDir()
	file := ftPattern(3, 4096)
	path := ftTempFile(t, file)
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{SocketBufferSize: 64 << 10})
	rec := ftEchoServer(s)
	ftWantCode(t, s, "SendFile before Start", s.SendFile(1, path, 0, 0), swoole.ErrRefused)
	ftStart(t, s)
	c := ftDial(t, s.Ports()[0])
	fd := ftFDOf(t, s, c)

	err := s.SendFile(fd, dir+"/missing", 0, 0)
	ftWantCode(t, s, "SendFile(missing file)", err, swoole.ErrSystemCallFail)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SendFile(missing file) = %v: errors.Is(err, fs.ErrNotExist) is false", err)
	}
	for _, tc := range []struct {
		name        string
		path        string
		off, length int64
		code        int
	}{
		{"offset at the end", path, 4096, 0, swoole.ErrSystemCallFail},
		{"offset past the end", path, 5000, 1, swoole.ErrSystemCallFail},
		{"length past the end", path, 4000, 97, swoole.ErrSystemCallFail},
		{"negative offset", path, -1, 10, swoole.ErrInvalidParams},
		{"negative length", path, 0, -10, swoole.ErrInvalidParams},
		{"a directory", dir, 0, 0, swoole.ErrServerNotRegularFile},
	} {
		ftWantCode(t, s, "SendFile("+tc.name+")", s.SendFile(fd, tc.path, tc.off, tc.length), tc.code)
	}
	ftWantCode(t, s, "SendFile(unknown session)", s.SendFile(fd+1000, path, 0, 0), swoole.ErrSessionNotExist)
	ftWantCode(t, s, "SendFile(session 0)", s.SendFile(0, path, 0, 0), swoole.ErrRefused)

	// Nothing of the failed calls reached the peer; the connection still works.
	ftWrite(t, c, []byte("ping"))
	if got := ftReadFull(t, c, 4); string(got) != "ping" {
		t.Fatalf("after the failed calls the peer got %q", got)
	}
	if err := s.SendFile(fd, path, 4090, 6); err != nil {
		t.Fatal(err)
	}
	if got := ftReadFull(t, c, 6); !bytes.Equal(got, file[4090:]) {
		t.Fatalf("got %q", got)
	}

	// A peer that does not read: once output is queued, a file that would take the queue past
	// socket_buffer_size is refused like a Send.
	big := ftTempFile(t, ftPattern(4, 1<<20))
	for i := 0; ; i++ {
		if err := s.Send(fd, ftPattern(uint32(i), 16<<10)); err != nil {
			ftWantCode(t, s, "Send to a full queue", err, swoole.ErrOutputBufferOverflow)
			break
		}
		if i > 10000 {
			t.Fatal("the queue never filled")
		}
	}
	ftWantCode(t, s, "SendFile past socket_buffer_size", s.SendFile(fd, big, 0, 0), swoole.ErrOutputBufferOverflow)

	if err := s.Close(fd, true); err != nil {
		t.Fatal(err)
	}
	rec.waitClosed(t, fd)
	ftWantCode(t, s, "SendFile(closed session)", s.SendFile(fd, path, 0, 0), swoole.ErrSessionNotExist)
}

// TestSendWait: SendWait blocks until its data is written to the socket: with a peer
// that does not read it is still waiting while the data sits queued, and returns nil once
// the peer has read enough (nothing queued then). A peer that goes away ends it with an
// error. Called inside OnReceive it works too (the loop waits with it).
func TestSendWait(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{SocketBufferSize: 256 << 20, OpenEOFSplit: true, PackageEOF: "\n"})
	inCallback := ftPattern(11, 3<<20)
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		if err := s.SendWait(fd, inCallback); err != nil {
			_ = s.Send(fd, []byte(err.Error()))
			return
		}
		_ = s.Send(fd, []byte("after"))
	})
	closed := make(chan int64, 4)
	s.OnClose(func(s *swoole.Server, fd int64, _ int) { closed <- fd })
	ftWantCode(t, s, "SendWait before Start", s.SendWait(1, []byte("x")), swoole.ErrRefused)
	ftStart(t, s)
	const big = 32 << 20 // far above loopback socket buffers
	data := ftPattern(5, big)

	queued := func(fd int64) int {
		info, err := s.GetClientInfo(fd, -1, true)
		if err != nil {
			return -1
		}
		return info.SendQueuedBytes
	}

	t.Run("written", func(t *testing.T) {
		c := ftDial(t, s.Ports()[0])
		fd := ftFDOf(t, s, c)
		done := make(chan error, 1)
		go func() { done <- s.SendWait(fd, data) }()
		ftEventually(t, "SendWait's data to wait in the queue", func() bool {
			select {
			case err := <-done:
				t.Fatalf("SendWait returned %v while the peer had read nothing", err)
			default:
			}
			return queued(fd) > 0
		})
		got := ftSlowThenFast(t, c, big)
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("SendWait: %v", err)
			}
		case <-time.After(ftTimeout):
			t.Fatal("SendWait did not return after the peer read everything")
		}
		if q := queued(fd); q != 0 {
			t.Errorf("%d bytes still queued after SendWait returned", q)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("differs at %d", ftFirstDiff(got, data))
		}
	})

	t.Run("peer gone", func(t *testing.T) {
		c := ftDial(t, s.Ports()[0])
		fd := ftFDOf(t, s, c)
		done := make(chan error, 1)
		go func() { done <- s.SendWait(fd, data) }()
		ftEventually(t, "SendWait's data to wait in the queue", func() bool { return queued(fd) > 0 })
		c.Close() // unread data: the peer resets the connection
		select {
		case err := <-done:
			ftWantCode(t, nil, "SendWait to a peer that left", err, swoole.ErrSessionClosedByClient)
		case <-time.After(ftTimeout):
			t.Fatal("SendWait did not return after the peer left")
		}
		for got := int64(0); got != fd; {
			select {
			case got = <-closed: // earlier subtests' connections close too
			case <-time.After(ftTimeout):
				t.Fatal("no OnClose for the peer that left")
			}
		}
	})

	t.Run("in OnReceive", func(t *testing.T) {
		c := ftDial(t, s.Ports()[0])
		ftWrite(t, c, []byte("go\n"))
		got := ftSlowThenFast(t, c, len(inCallback)+5)
		if !bytes.Equal(got[:len(inCallback)], inCallback) || string(got[len(inCallback):]) != "after" {
			t.Fatalf("got %d bytes, differing at %d", len(got), ftFirstDiff(got, append(bytes.Clone(inCallback), "after"...)))
		}
	})

	t.Run("errors", func(t *testing.T) {
		ftWantCode(t, s, "SendWait(unknown)", s.SendWait(987654, []byte("x")), swoole.ErrSessionNotExist)
		c := ftDial(t, s.Ports()[0])
		fd := ftFDOf(t, s, c)
		ftWantCode(t, s, "SendWait(no data)", s.SendWait(fd, nil), swoole.ErrNoPayload)
		if err := s.SendWait(fd, []byte("small")); err != nil {
			t.Fatal(err)
		}
		if got := ftReadFull(t, c, 5); string(got) != "small" {
			t.Fatalf("got %q", got)
		}
	})
}

// TestSendOffLoopRace: a goroutine that finds a new session in the connection table and
// Sends to it while output is queued must not race with the loop registering the connection
// (the race detector cannot see the shared table's atomics, so the reactor sets what Send
// reads under the connection's mutex).
func TestSendOffLoopRace(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{SocketBufferSize: 64 << 20})
	ftEchoServer(s)
	ftStart(t, s)
	c := ftDial(t, s.Ports()[0])
	var fd int64
	ftEventually(t, "the session", func() bool {
		for id := range s.Connections() {
			fd = id
		}
		return fd != 0
	})
	for range 200 { // no barrier: queue output from this goroutine
		if err := s.Send(fd, make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
	}
	_ = c
}
