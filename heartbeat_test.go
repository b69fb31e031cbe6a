package swoole_test

// Heartbeat: heartbeat_check_interval, heartbeat_idle_time (default 2 × interval,
// per port), Heartbeat(closeConns), Protect, and OnClose's reactorID for each kind of close.

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// TestHeartbeatAuto: with only heartbeat_check_interval, the idle time is 2 × the
// interval; the automatic scan closes a connection that received nothing for that long
// (never sooner; OnClose reactorID >= 0), also one the server keeps sending to (sending is
// not activity), but spares a connection that keeps sending and one that is protected, until
// Protect is lifted.
func TestHeartbeatAuto(t *testing.T) {
	const interval = 100 * time.Millisecond
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{HeartbeatCheckInterval: interval, OpenEOFSplit: true, PackageEOF: "\n"})
	if got := s.Setting().HeartbeatIdleTime; got != 2*interval {
		t.Errorf("Setting().HeartbeatIdleTime = %v, want 2 × %v", got, interval)
	}
	rec := ftEchoServer(s)
	ftStart(t, s)
	p := s.Ports()[0]

	dialed := time.Now()
	idle := ftDial(t, p)
	idleFD := ftFDOf(t, s, idle)
	sendOnly := ftDial(t, p)
	sendOnlyFD := ftFDOf(t, s, sendOnly)
	protected := ftDial(t, p)
	protectedFD := ftFDOf(t, s, protected)
	if err := s.Protect(protectedFD, true); err != nil {
		t.Fatalf("Protect: %v", err)
	}
	active := ftDial(t, p)
	activeFD := ftFDOf(t, s, active)

	// The active client sends every 40 ms; the server sends to sendOnly as often.
	stop := make(chan struct{})
	failed := make(chan error, 1)
	go func() {
		tick := time.NewTicker(interval * 2 / 5)
		defer tick.Stop()
		buf := make([]byte, 2)
		for {
			select {
			case <-stop:
				failed <- nil
				return
			case <-tick.C:
			}
			_ = s.Send(sendOnlyFD, []byte("s"))
			_ = active.SetDeadline(time.Now().Add(ftTimeout))
			if _, err := active.Write([]byte("k\n")); err != nil {
				failed <- err
				return
			}
			if _, err := active.Read(buf); err != nil {
				failed <- err
				return
			}
		}
	}()

	ftWantClosed(t, idle)
	closedAt := time.Now()
	if d := closedAt.Sub(dialed); d < 2*interval {
		t.Errorf("the idle connection closed %v after connecting, before heartbeat_idle_time %v", d, 2*interval)
	}
	if id := rec.waitClosed(t, idleFD); id < 0 {
		t.Errorf("OnClose reactorID = %d after the automatic scan, want >= 0", id)
	}
	if id := rec.waitClosed(t, sendOnlyFD); id < 0 {
		t.Errorf("OnClose reactorID = %d for the send-only connection, want >= 0", id)
	}
	// The active and protected connections outlive several more scans.
	ftEventually(t, "three more idle periods", func() bool { return time.Since(closedAt) > 3*2*interval })
	close(stop)
	if err := <-failed; err != nil {
		t.Fatalf("the active connection failed: %v", err)
	}
	for _, fd := range []int64{activeFD, protectedFD} {
		if !s.Exist(fd) || len(rec.closes(fd)) != 0 {
			t.Errorf("session %d was closed by the heartbeat", fd)
		}
	}
	if err := s.Protect(protectedFD, false); err != nil {
		t.Fatal(err)
	}
	ftWantClosed(t, protected)
	if id := rec.waitClosed(t, protectedFD); id < 0 {
		t.Errorf("OnClose reactorID = %d, want >= 0", id)
	}
}

// TestHeartbeatManual: Heartbeat(false) lists the idle connections and leaves them
// open; Heartbeat(true) closes them (OnClose reactorID -1) and a second call no longer lists
// them; protected and recently active connections are never listed.
func TestHeartbeatManual(t *testing.T) {
	const idleTime = 300 * time.Millisecond
	// An interval far above the test's length: only the manual calls close anything.
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{HeartbeatCheckInterval: time.Hour, HeartbeatIdleTime: idleTime})
	rec := ftEchoServer(s)
	ftStart(t, s)
	p := s.Ports()[0]
	a := ftDial(t, p)
	aFD := ftFDOf(t, s, a)
	b := ftDial(t, p)
	bFD := ftFDOf(t, s, b)
	if err := s.Protect(bFD, true); err != nil {
		t.Fatal(err)
	}
	c := ftDial(t, p)
	cFD := ftFDOf(t, s, c)

	heartbeat := func(closeConns bool) []int64 {
		t.Helper()
		ids, err := s.Heartbeat(closeConns)
		if err != nil {
			t.Fatalf("Heartbeat(%t): %v", closeConns, err)
		}
		return ids
	}
	ftEventually(t, "Heartbeat(false) to list the idle connection", func() bool {
		return slices.Contains(heartbeat(false), aFD)
	})
	ftWrite(t, c, []byte("fresh"))
	ftReadFull(t, c, 5)
	ids := heartbeat(false)
	if !slices.Contains(ids, aFD) || slices.Contains(ids, bFD) || slices.Contains(ids, cFD) {
		t.Errorf("Heartbeat(false) = %v: want %d (idle), not %d (protected) nor %d (just received)", ids, aFD, bFD, cFD)
	}
	if !s.Exist(aFD) {
		t.Fatal("Heartbeat(false) closed a connection")
	}
	ids = heartbeat(true)
	if !slices.Contains(ids, aFD) || slices.Contains(ids, bFD) {
		t.Errorf("Heartbeat(true) = %v", ids)
	}
	ftWantClosed(t, a)
	if id := rec.waitClosed(t, aFD); id != -1 {
		t.Errorf("OnClose reactorID = %d after Heartbeat(true), want -1", id)
	}
	if ids := heartbeat(true); slices.Contains(ids, aFD) {
		t.Errorf("a second Heartbeat(true) lists the closed %d again: %v", aFD, ids)
	}
	if err := s.Protect(bFD, false); err != nil {
		t.Fatal(err)
	}
	ftEventually(t, "the unprotected connection to be listed", func() bool {
		return slices.Contains(heartbeat(false), bFD)
	})
}

// TestHeartbeatErrors: Heartbeat without any heartbeat option is an error, as before
// Start; Protect of an unknown session is 1005.
func TestHeartbeatErrors(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{})
	ftEchoServer(s)
	_, err := s.Heartbeat(false)
	ftWantCode(t, s, "Heartbeat before Start", err, swoole.ErrRefused)
	ftWantCode(t, s, "Protect before Start", s.Protect(1, true), swoole.ErrRefused)
	ftStart(t, s)
	ids, err := s.Heartbeat(true)
	ftWantCode(t, s, "Heartbeat without heartbeat options", err, swoole.ErrRefused)
	if ids != nil {
		t.Errorf("Heartbeat returned %v with its error", ids)
	}
	ftWantCode(t, s, "Protect(unknown)", s.Protect(999, true), swoole.ErrSessionNotExist)
}

// TestHeartbeatPerPort: heartbeat_idle_time set on one port only starts the scan (every
// max(idle/2, 1 s)); it closes that port's idle connections and leaves the other port's,
// which have no idle limit.
func TestHeartbeatPerPort(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{})
	rec := ftEchoServer(s)
	p2, err := s.AddListener("127.0.0.1", 0, swoole.SockTCP)
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.SetOptions(map[string]any{"heartbeat_idle_time": 0.2}); err != nil {
		t.Fatal(err)
	}
	ftStart(t, s)
	keep := ftDial(t, s.Ports()[0])
	keepFD := ftFDOf(t, s, keep)
	var idle net.Conn = ftDial(t, p2)
	idleFD := ftFDOf(t, s, idle)
	start := time.Now()
	ftWantClosed(t, idle)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("closed after %v, before the port's idle time", d)
	}
	if id := rec.waitClosed(t, idleFD); id < 0 {
		t.Errorf("OnClose reactorID %d, want >= 0", id)
	}
	if !s.Exist(keepFD) {
		t.Error("the primary port's connection was closed: it has no heartbeat_idle_time")
	}
	if ids, err := s.Heartbeat(false); err != nil || slices.Contains(ids, keepFD) {
		t.Errorf("Heartbeat(false) = %v, %v: the primary port's connection has no idle limit", ids, err)
	}
}
