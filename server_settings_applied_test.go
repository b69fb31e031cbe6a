package swoole_test

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	swoole "github.com/goswoole/swoole"
)

// TestSendYield: with send_yield a Send to a full queue waits for room instead of failing
// with 1008, and every byte arrives in order once the peer reads.
func TestSendYield(t *testing.T) {
	const msg, count = 64 << 10, 64 // 4 MiB through a 256 KiB queue
	sent := make(chan error, 1)
	s := newServer(t, map[string]any{"socket_buffer_size": 256 << 10, "send_yield": true})
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, _ []byte) {
		go func() {
			buf := make([]byte, msg)
			for i := range count {
				for j := range buf {
					buf[j] = byte(i)
				}
				if err := s.Send(fd, buf); err != nil {
					sent <- err
					return
				}
			}
			sent <- nil
		}()
	})
	r := start(t, s)
	c := dialSmallRcvBuf(t, r.addr)
	if _, err := c.Write([]byte("go")); err != nil {
		t.Fatal(err)
	}
	got := readFull(t, c, msg*count)
	for i := range count {
		if got[i*msg] != byte(i) || got[i*msg+msg-1] != byte(i) {
			t.Fatalf("message %d arrived out of order or torn", i)
		}
	}
	select {
	case err := <-sent:
		if err != nil {
			t.Fatalf("Send with send_yield: %v", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("the sender did not finish")
	}
}

// TestSendYieldTimeout: a peer that never reads makes a yielding Send fail with ETIMEDOUT
// after send_timeout.
func TestSendYieldTimeout(t *testing.T) {
	result := make(chan error, 1)
	s := newServer(t, map[string]any{"socket_buffer_size": 64 << 10, "send_yield": true, "send_timeout": 0.2})
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, _ []byte) {
		go func() {
			buf := make([]byte, 32<<10)
			for range 4096 { // bounded: 128 MiB at most
				if err := s.Send(fd, buf); err != nil {
					result <- err
					return
				}
			}
			result <- nil
		}()
	})
	r := start(t, s)
	c := dialSmallRcvBuf(t, r.addr)
	if _, err := c.Write([]byte("go")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-result:
		if code(err) != int(syscall.ETIMEDOUT) {
			t.Fatalf("Send to a peer that never reads: %v, want code %d (ETIMEDOUT)", err, syscall.ETIMEDOUT)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Send never gave up")
	}
}

// TestPidFile: pid_file holds the server's pid while it runs and is removed at shutdown.
func TestPidFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.pid")
	s := newEcho(t, map[string]any{"pid_file": path})
	r := start(t, s)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("pid_file while running: %v", err)
	}
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(os.Getpid()) {
		t.Fatalf("pid_file holds %q, want %d", got, os.Getpid())
	}
	s.Shutdown()
	if err := r.wait(startTimeout); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("pid_file after shutdown: %v, want it removed", err)
	}
}

// TestStatsFile: stats_file gets the server's Stats as JSON (for a .json name) and as
// key: value lines otherwise.
func TestStatsFile(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"stats.json", "stats.txt"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			s := newEcho(t, map[string]any{"stats_file": path})
			r := start(t, s)
			roundTrip(t, r.dial(t), "hello")
			waitFor(t, ioTimeout, "stats_file to count the request", func() bool {
				b, err := os.ReadFile(path)
				if err != nil {
					return false
				}
				if strings.HasSuffix(name, ".json") {
					var st swoole.Stats
					return json.Unmarshal(b, &st) == nil && st.RequestCount >= 1 && st.WorkerNum == 1
				}
				return strings.Contains(string(b), "request_count: 1") && strings.Contains(string(b), "worker_num: 1")
			})
		})
	}
}

// TestMaxIdleTime: a connection silent in both directions for max_idle_time is closed; one
// that keeps talking is not.
func TestMaxIdleTime(t *testing.T) {
	s := newEcho(t, map[string]any{"max_idle_time": 0.3})
	r := start(t, s)
	idle := r.dial(t)
	busy := r.dial(t)
	stop := time.Now().Add(900 * time.Millisecond)
	for time.Now().Before(stop) {
		roundTrip(t, busy, "ping")
		time.Sleep(50 * time.Millisecond) // the client's pace, not a wait for the server
	}
	idle.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection: read %v, want EOF (closed by max_idle_time)", err)
	}
	roundTrip(t, busy, "still here")
}

// TestSocketOptionsApplied: tcp_user_timeout and the kernel buffer sizes reach accepted
// sockets (read back with getsockopt on the connection's descriptor).
func TestSocketOptionsApplied(t *testing.T) {
	s := newEcho(t, map[string]any{"tcp_user_timeout": 1500, "kernel_socket_recv_buffer_size": 96 << 10, "kernel_socket_send_buffer_size": 80 << 10})
	r := start(t, s)
	c := r.dial(t)
	info, err := s.GetClientInfo(fdOf(t, s, c), -1, false)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := syscall.GetsockoptInt(info.SocketFD, syscall.IPPROTO_TCP, 0x12 /* TCP_USER_TIMEOUT */); err != nil || v != 1500 {
		t.Errorf("TCP_USER_TIMEOUT = %d, %v; want 1500", v, err)
	}
	// Linux doubles SO_RCVBUF/SO_SNDBUF values for bookkeeping.
	if v, err := syscall.GetsockoptInt(info.SocketFD, syscall.SOL_SOCKET, syscall.SO_RCVBUF); err != nil || v != 2*(96<<10) {
		t.Errorf("SO_RCVBUF = %d, %v; want %d", v, err, 2*(96<<10))
	}
	if v, err := syscall.GetsockoptInt(info.SocketFD, syscall.SOL_SOCKET, syscall.SO_SNDBUF); err != nil || v != 2*(80<<10) {
		t.Errorf("SO_SNDBUF = %d, %v; want %d", v, err, 2*(80<<10))
	}
}

// TestShutdownRacingStart: a Shutdown that lands at any point of Start (before, while it
// prepares, or once it runs) is never lost: Start always returns.
func TestShutdownRacingStart(t *testing.T) {
	for i := range 50 {
		s := newEcho(t, nil)
		done := make(chan error, 1)
		go func() { done <- s.Start() }()
		for range i % 5 {
			runtime.Gosched()
		}
		_ = s.Shutdown()
		select {
		case err := <-done:
			if err != nil && code(err) != swoole.ErrRefused {
				t.Fatalf("round %d: Start returned %v", i, err)
			}
		case <-time.After(startTimeout):
			t.Fatalf("round %d: Start never returned after a Shutdown racing it", i)
		}
	}
}
