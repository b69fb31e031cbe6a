package swoole_test

import (
	"errors"
	"net"
	"testing"

	"github.com/goswoole/swoole"
)

// TestShutdownBeforeStartReleasesProcessSockets: a server given user processes (AddProcess)
// and shut down before Start leaves no descriptor behind: the socket pairs AddProcess made
// are closed with the listener, and the socket ExportSocket returned reports net.ErrClosed.
func TestShutdownBeforeStartReleasesProcessSockets(t *testing.T) {
	cycle := func() *swoole.Process {
		s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeBase, swoole.SockTCP)
		if err != nil {
			t.Fatal(err)
		}
		var last *swoole.Process
		for range 3 {
			last = swoole.NewProcess(func(*swoole.Process) {})
			if _, err := s.AddProcess(last); err != nil {
				t.Fatal(err)
			}
		}
		wantCode(t, s, "Shutdown before Start", s.Shutdown(), swoole.ErrRefused)
		return last
	}
	cycle() // the runtime's own descriptors (the network poller) exist from now on
	before := fdCount(t)
	p := cycle()
	if after := fdCount(t); after != before {
		t.Fatalf("%d descriptors open after NewServer, 3 AddProcess and Shutdown before Start; %d before", after, before)
	}
	if _, err := p.ExportSocket().Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write on the socket of a server shut down before Start: %v, want net.ErrClosed", err)
	}
}
