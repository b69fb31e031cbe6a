package cluster_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"

	"github.com/goswoole/swoole"
	"github.com/goswoole/swoole/cluster"
)

// startServer starts s and returns a function that shuts it down and waits for Start.
func startServer(t *testing.T, s *swoole.Server, node *cluster.Node) (stop func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Start() }()
	select {
	case <-node.Ready():
	case err := <-done:
		t.Fatalf("Start returned %v (node: %v)", err, node.Err())
	case <-time.After(20 * time.Second):
		_ = s.Shutdown()
		<-done
		t.Fatal("the node is not ready after 20 s")
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = s.Shutdown()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Start: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Start did not return within 20 s of Shutdown")
		}
	}
	t.Cleanup(stop)
	return stop
}

// startNATS starts a nats-server with JetStream on a free loopback port, standing for an
// external NATS; the caller shuts it down (before goleak looks).
func startNATS(t *testing.T) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT,
		JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		t.Fatal("nats-server not ready")
	}
	return ns
}

// TestTwoNodesExternalNATS: two servers in this process (one ModeBase, one ModeThread)
// joined through an external nats-server: Send, Exist, ClientInfo and Close on the other
// node's sessions; a node not running; a second node with a taken name is refused.
func TestTwoNodesExternalNATS(t *testing.T) {
	defer goleak.VerifyNone(t)
	ns := startNATS(t)
	defer ns.WaitForShutdown()
	defer ns.Shutdown()
	cfg := func(name string) cluster.Config {
		return cluster.Config{Cluster: "ext", Node: name, URL: ns.ClientURL(), Heartbeat: 200 * time.Millisecond, Logger: quiet}
	}
	sx, nx, err := newHost(swoole.ModeBase, cfg("X"))
	if err != nil {
		t.Fatal(err)
	}
	stopX := startServer(t, sx, nx)
	sy, ny, err := newHost(swoole.ModeThread, cfg("Y"))
	if err != nil {
		t.Fatal(err)
	}
	stopY := startServer(t, sy, ny)

	cx, cy := dial(t, sx.Ports()[0].Port()), dial(t, sy.Ports()[0].Port())
	sessX := strings.TrimPrefix(cx.call("hello", "hi ", 10*time.Second), "hi ")
	sessY := strings.TrimPrefix(cy.call("hello", "hi ", 10*time.Second), "hi ")
	if !strings.HasPrefix(sessX, "X/") || !strings.HasPrefix(sessY, "Y/") {
		t.Fatalf("sessions %q, %q", sessX, sessY)
	}
	if got := cy.call("send "+sessX+" from-Y", "send", 10*time.Second); got != "send ok" {
		t.Fatalf("send: %q", got)
	}
	cx.expect("msg from-Y", 10*time.Second)
	if got := cy.call("exist "+sessX, "exist", 10*time.Second); got != "exist true" {
		t.Fatalf("exist: %q", got)
	}
	if got := cy.call("bind 9", "", 10*time.Second); got != "bound" {
		t.Fatalf("bind: %q", got)
	}
	if got := cx.call("info "+sessY, "info", 10*time.Second); got != "info uid=9" {
		t.Fatalf("info: %q", got)
	}
	if got := cx.call("touid 9 to-nine", "touid", 10*time.Second); got != "touid ok" {
		t.Fatalf("touid: %q", got)
	}
	cy.expect("msg to-nine", 10*time.Second)
	if got := cx.call("send Z/1 nobody", "send", 10*time.Second); got != "send err 1005" {
		t.Fatalf("send to a node not running: %q", got)
	}
	if got := cx.call("task ext", "task", 20*time.Second); got != "task done:ext" {
		t.Fatalf("task: %q", got)
	}
	// Y closes X's client.
	if got := cy.call("kick "+sessX, "kick", 10*time.Second); got != "kick ok" {
		t.Fatalf("kick: %q", got)
	}
	if _, err := cx.read("never", 10*time.Second); err != io.EOF {
		t.Fatalf("X's client after Close from Y: %v, want EOF", err)
	}
	if got := cy.call("exist "+sessX, "exist", 10*time.Second); got != "exist false" {
		t.Fatalf("exist after close: %q", got)
	}
	if got := cy.call("send "+sessX+" late", "send", 10*time.Second); got != "send err 1005" {
		t.Fatalf("send after close: %q", got)
	}

	// Another node named X: its start fails, its server shuts down, Start returns.
	s2, n2, err := newHost(swoole.ModeBase, cfg("X"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s2.Start() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = s2.Shutdown()
		t.Fatal("a second node named X started")
	}
	if code(n2.Err()) != swoole.ErrInvalidParams {
		t.Fatalf("second X: %v, want code 505", n2.Err())
	}

	// Y leaves: X's uid entry for Y's client goes with the connection, X stops hearing Y.
	stopY()
	waitFor(t, 10*time.Second, "uid 9's entry to go with Y's shutdown", func() bool {
		_, _, err := nx.SessionOf(9)
		return code(err) == swoole.ErrSessionNotExist
	})
	waitFor(t, 10*time.Second, "X to forget Y", func() bool { return len(nx.Peers()) == 0 })
	stopX()
}
