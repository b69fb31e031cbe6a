package swoole_test

// A single-process server's pids, servers made and dropped in turn on one port, and the
// callbacks Start insists on per port type (Swoole's base/shutdown_single.phpt,
// new_twice.phpt, constructor_lifecycle.phpt, check_callback.phpt).

import (
	"net"
	"os"
	"strconv"
	"testing"

	"github.com/goswoole/swoole"
)

// TestSingleProcessPIDs: with worker_num 1 there is no manager: GetManagerPID is 0, and
// GetMasterPID and GetWorkerPID(-1) are this process, in OnStart and in OnReceive; Shutdown
// from OnReceive ends Start with nil after OnShutdown.
func TestSingleProcessPIDs(t *testing.T) {
	onlyOneLoop(t, "the pids of one process without a manager; ModeThread's are in TestThreadHandles")
	s := newServer(t, map[string]any{"worker_num": 1})
	var rec recorder
	pids := func(s *swoole.Server) string {
		return strconv.Itoa(s.GetManagerPID()) + " " + strconv.Itoa(s.GetMasterPID()) + " " + strconv.Itoa(s.GetWorkerPID(-1))
	}
	s.OnStart(func(s *swoole.Server) { rec.add("start %s", pids(s)) })
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		rec.add("receive %s", pids(s))
		if err := s.Shutdown(); err != nil {
			t.Errorf("Shutdown in OnReceive: %v", err)
		}
	})
	s.OnShutdown(func(*swoole.Server) { rec.add("shutdown") })
	r := start(t, s)
	c := r.dial(t)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := r.wait(startTimeout); err != nil {
		t.Fatalf("Start: %v", err)
	}
	me := strconv.Itoa(os.Getpid())
	want := []string{"start 0 " + me + " " + me, "receive 0 " + me + " " + me, "shutdown"}
	if got := rec.list(); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// TestServersInTurnOnOnePort: a server that was started and shut down gives its port back:
// a new server made on the same port in the same process serves, twice over.
func TestServersInTurnOnOnePort(t *testing.T) {
	port := 0
	for round := range 3 {
		s, err := swoole.NewServer("127.0.0.1", port, swoole.ModeBase, swoole.SockTCP)
		if err != nil {
			t.Fatalf("round %d: NewServer on port %d: %v", round, port, err)
		}
		setOpts(t, s, nil)
		s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
			_ = s.Send(fd, append([]byte(strconv.Itoa(round)+":"), data...))
		})
		r := start(t, s)
		port = s.Ports()[0].Port()
		c := dialAddr(t, "tcp", r.addr)
		if _, err := c.Write([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		if got := string(readFull(t, c, len("0:hi"))); got != strconv.Itoa(round)+":hi" {
			t.Fatalf("round %d: got %q", round, got)
		}
		if err := s.Shutdown(); err != nil {
			t.Fatal(err)
		}
		if err := r.wait(startTimeout); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}

// TestNewServerLeaksNoDescriptor: servers made and shut down without being started, and
// servers that failed to bind a busy port, leave no descriptor behind.
func TestNewServerLeaksNoDescriptor(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	warm, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeBase, swoole.SockTCP)
	if err != nil {
		t.Fatal(err)
	}
	_ = warm.Shutdown()
	before := fdCount(t)
	for range 3 {
		s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeBase, swoole.SockTCP)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Shutdown(); code(err) != swoole.ErrRefused {
			t.Fatalf("Shutdown of a server never started: %v, want code %d", err, swoole.ErrRefused)
		}
		if s, err := swoole.NewServer("127.0.0.1", busyPort, swoole.ModeBase, swoole.SockTCP); err == nil || s != nil {
			t.Fatalf("NewServer on a busy port: %v, %v", s, err)
		}
	}
	if after := fdCount(t); after != before {
		t.Fatalf("%d descriptors before, %d after making and dropping servers", before, after)
	}
}

// TestStartNeedsCallbackPerPortType: Start is refused (9015) when a stream port added to a
// UDP server has no Receive handler, its own or the server's.
func TestStartNeedsCallbackPerPortType(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockUDP, swoole.Settings{})
	t.Cleanup(func() { _ = s.Shutdown() })
	s.OnPacket(func(*swoole.Server, []byte, swoole.ClientAddr) {})
	if _, err := s.AddListener("127.0.0.1", 0, swoole.SockTCP); err != nil {
		t.Fatal(err)
	}
	ftWantCode(t, s, "Start with a TCP port and no Receive handler", s.Start(), swoole.ErrServerInvalidCallback)
}
