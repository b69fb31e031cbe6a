package swoole_test

// Timers: Tick, After, Defer and ClearTimer run on the worker's event loop like
// every other event — never at the same time as OnReceive — are refused before Start and
// after shutdown, and all vanish when the worker stops.

import (
	"bytes"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// TestTimersBeforeStart: every timer call before Start is refused (503).
func TestTimersBeforeStart(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{})
	ftEchoServer(s)
	_, err := s.Tick(10, func(int) {})
	ftWantCode(t, s, "Tick before Start", err, swoole.ErrRefused)
	_, err = s.After(10, func() {})
	ftWantCode(t, s, "After before Start", err, swoole.ErrRefused)
	ftWantCode(t, s, "Defer before Start", s.Defer(func() {}), swoole.ErrRefused)
	if s.ClearTimer(1) {
		t.Error("ClearTimer before Start returned true")
	}
	ftStart(t, s) // releases the port
}

// TestTimerArguments: intervals under 1 ms and nil callbacks are refused (505); clearing
// an unknown timer is false.
func TestTimerArguments(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{})
	ftEchoServer(s)
	ftStart(t, s)
	_, err := s.Tick(0, func(int) {})
	ftWantCode(t, s, "Tick(0)", err, swoole.ErrInvalidParams)
	_, err = s.Tick(-1, func(int) {})
	ftWantCode(t, s, "Tick(-1)", err, swoole.ErrInvalidParams)
	_, err = s.After(0, func() {})
	ftWantCode(t, s, "After(0)", err, swoole.ErrInvalidParams)
	_, err = s.Tick(5, nil)
	ftWantCode(t, s, "Tick(nil)", err, swoole.ErrInvalidParams)
	_, err = s.After(5, nil)
	ftWantCode(t, s, "After(nil)", err, swoole.ErrInvalidParams)
	ftWantCode(t, s, "Defer(nil)", s.Defer(nil), swoole.ErrInvalidParams)
	if s.ClearTimer(12345) {
		t.Error("ClearTimer(unknown) returned true")
	}
}

// TestTick: a tick made from a goroutine outside the loop runs every interval, never
// early, gets its own id, and stops when its callback clears it; a later timer proves no
// further tick ran.
func TestTick(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{})
	ftEchoServer(s)
	ftStart(t, s)
	const every = 5 * time.Millisecond
	type call struct {
		id      int
		at      time.Time
		cleared bool
	}
	calls := make(chan call, 100)
	var n int // loop only
	start := time.Now()
	id, err := s.Tick(int(every/time.Millisecond), func(timerID int) {
		n++
		c := call{id: timerID, at: time.Now()}
		if n == 5 {
			c.cleared = s.ClearTimer(timerID)
		}
		calls <- c
	})
	if err != nil || id <= 0 {
		t.Fatalf("Tick = %d, %v", id, err)
	}
	for k := 1; k <= 5; k++ {
		var c call
		select {
		case c = <-calls:
		case <-time.After(ftTimeout):
			t.Fatalf("tick %d did not run", k)
		}
		if c.id != id {
			t.Errorf("tick %d got timer id %d, want %d", k, c.id, id)
		}
		if early := start.Add(time.Duration(k) * every).Sub(c.at); early > 0 {
			t.Errorf("tick %d ran %v early", k, early)
		}
		if k == 5 && !c.cleared {
			t.Error("ClearTimer from the tick's own callback returned false")
		}
	}
	// A one-shot timer due 6 intervals later runs after any tick that was still due.
	sentinel := make(chan struct{})
	if _, err := s.After(int(6*every/time.Millisecond), func() { close(sentinel) }); err != nil {
		t.Fatal(err)
	}
	<-sentinel
	select {
	case c := <-calls:
		t.Fatalf("the tick ran again at %v after ClearTimer", c.at.Sub(start))
	default:
	}
	if s.ClearTimer(id) {
		t.Error("a second ClearTimer of the tick returned true")
	}
}

// TestAfter: After runs once, not before its time; ClearTimer cancels a pending one
// (true, and it never runs) and is false for one that already ran.
func TestAfter(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{})
	ftEchoServer(s)
	ftStart(t, s)
	var fired, cancelledFired atomic.Int32
	start := time.Now()
	ran := make(chan time.Time, 2)
	id, err := s.After(20, func() { fired.Add(1); ran <- time.Now() })
	if err != nil {
		t.Fatal(err)
	}
	cid, err := s.After(30, func() { cancelledFired.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	if cid == id {
		t.Fatalf("two timers share id %d", id)
	}
	if !s.ClearTimer(cid) {
		t.Fatal("ClearTimer of a pending After returned false")
	}
	if s.ClearTimer(cid) {
		t.Error("a second ClearTimer returned true")
	}
	at := <-ran
	if d := at.Sub(start); d < 20*time.Millisecond {
		t.Errorf("After(20) ran after %v", d)
	}
	sentinel := make(chan struct{})
	if _, err := s.After(40, func() { close(sentinel) }); err != nil {
		t.Fatal(err)
	}
	<-sentinel
	if fired.Load() != 1 || cancelledFired.Load() != 0 {
		t.Errorf("After ran %d times (want 1); the cleared one %d times (want 0)", fired.Load(), cancelledFired.Load())
	}
	if s.ClearTimer(id) {
		t.Error("ClearTimer of an After that already ran returned true")
	}
}

// TestDefer: Defer runs its function on the loop after the current callback returns,
// in the order the calls were made; from outside the loop it runs soon.
func TestDefer(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{OpenEOFSplit: true, PackageEOF: "\n"})
	var order []string // loop only
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		order = append(order, "receive start")
		for i := range 3 {
			if err := s.Defer(func() {
				order = append(order, "defer "+strconv.Itoa(i))
				if i == 2 {
					_ = s.Send(fd, []byte(fmt.Sprint(order)+"\n"))
				}
			}); err != nil {
				_ = s.Send(fd, []byte("Defer: "+err.Error()+"\n"))
			}
		}
		order = append(order, "receive end")
	})
	ftStart(t, s)
	c := ftDial(t, s.Ports()[0])
	ftWrite(t, c, []byte("go\n"))
	want := "[receive start receive end defer 0 defer 1 defer 2]\n"
	if got := ftReadFull(t, c, len(want)); string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
	ran := make(chan struct{})
	if err := s.Defer(func() { close(ran) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
	case <-time.After(ftTimeout):
		t.Fatal("Defer from outside the loop never ran")
	}
}

// TestTimersSerialWithReceive: ticks, one-shot timers and deferred functions share
// plain (non-atomic) state with OnReceive while a client sends steadily; under -race any
// concurrent run is reported, and a flag catches overlapping callbacks. Timer callbacks see
// their worker idle, as in Swoole (only events make it busy).
func TestTimersSerialWithReceive(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{OpenEOFSplit: true, PackageEOF: "\n", OpenTCPNoDelay: true})
	var (
		counter, ticks, afters, defers, receives int
		inside, overlap                          bool
		notIdle                                  int
	)
	enter := func() {
		if inside {
			overlap = true
		}
		inside = true
		counter++
	}
	leave := func() { inside = false }
	s.OnWorkerStart(func(s *swoole.Server, _ int) {
		// Timers made in OnWorkerStart, on the loop before it runs.
		if _, err := s.Tick(1, func(int) {
			enter()
			ticks++
			if st, _ := s.GetWorkerStatus(-1); st != swoole.WorkerIdle {
				notIdle++
			}
			leave()
		}); err != nil {
			panic(err)
		}
	})
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		enter()
		receives++
		if bytes.Equal(data, []byte("report\n")) {
			leave()
			_ = s.Send(fd, []byte(fmt.Sprintf("%d %d %d %d %d %t %d\n", counter, ticks, afters, defers, receives, overlap, notIdle)))
			return
		}
		if _, err := s.After(1, func() { enter(); afters++; leave() }); err != nil {
			panic(err)
		}
		if err := s.Defer(func() { enter(); defers++; leave() }); err != nil {
			panic(err)
		}
		leave()
	})
	ftStart(t, s)
	c := ftDial(t, s.Ports()[0])
	const msgs = 300
	for i := range msgs {
		ftWrite(t, c, []byte("m"+strconv.Itoa(i)+"\n"))
	}
	// All After(1) timers are due within a few ms of the last message: poll the report.
	var counterV, ticksV, aftersV, defersV, receivesV, notIdleV int
	var overlapV bool
	ftEventually(t, "every After and Defer to have run", func() bool {
		ftWrite(t, c, []byte("report\n"))
		line := ftReadLine(t, c)
		if _, err := fmt.Sscanf(line, "%d %d %d %d %d %t %d", &counterV, &ticksV, &aftersV, &defersV, &receivesV, &overlapV, &notIdleV); err != nil {
			t.Fatalf("report %q: %v", line, err)
		}
		return aftersV == msgs && defersV == msgs
	})
	if overlapV {
		t.Error("a timer or deferred callback overlapped another callback")
	}
	if counterV != ticksV+aftersV+defersV+receivesV {
		t.Errorf("counter %d != ticks %d + afters %d + defers %d + receives %d", counterV, ticksV, aftersV, defersV, receivesV)
	}
	if ticksV == 0 {
		t.Error("the tick never ran while the client sent")
	}
	if notIdleV != 0 {
		t.Errorf("%d ticks saw their worker not idle", notIdleV)
	}
}

func ftReadLine(t testing.TB, c interface{ Read([]byte) (int, error) }) string {
	t.Helper()
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := c.Read(one); err != nil {
			t.Fatalf("read a line: %v (after %q)", err, b)
		}
		if one[0] == '\n' {
			return string(b)
		}
		b = append(b, one[0])
	}
}

// TestTimersGoneAfterShutdown: pending ticks and one-shot timers die with the worker:
// once Start has returned none of them runs again, even past their deadlines, and timer
// calls are refused.
func TestTimersGoneAfterShutdown(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{})
	ftEchoServer(s)
	done := ftStartWait(t, s)
	var ticks, afters atomic.Int32
	tid, err := s.Tick(1, func(int) { ticks.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	const afterMS = 50
	due := time.Now().Add(afterMS * time.Millisecond)
	if _, err := s.After(afterMS, func() { afters.Add(1) }); err != nil {
		t.Fatal(err)
	}
	ftEventually(t, "the tick to run", func() bool { return ticks.Load() > 0 })
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stopped := ticks.Load()
	if time.Now().After(due) {
		t.Logf("shutdown took past the After's deadline; the check below still holds")
	}
	// Wait past the one-shot timer's deadline (a known time, not a guess about scheduling)
	// and 50 tick intervals.
	time.Sleep(time.Until(due) + 50*time.Millisecond)
	if n := ticks.Load(); n != stopped {
		t.Errorf("the tick ran %d times after Start returned", n-stopped)
	}
	if afters.Load() != 0 && time.Now().Before(due) {
		t.Errorf("the After ran before its time")
	}
	if afters.Load() != 0 {
		t.Errorf("the After pending at shutdown ran")
	}
	_, err = s.Tick(1, func(int) {})
	ftWantCode(t, s, "Tick after shutdown", err, swoole.ErrRefused)
	_, err = s.After(1, func() {})
	ftWantCode(t, s, "After after shutdown", err, swoole.ErrRefused)
	ftWantCode(t, s, "Defer after shutdown", s.Defer(func() {}), swoole.ErrRefused)
	if s.ClearTimer(tid) {
		t.Error("ClearTimer after shutdown returned true")
	}
}

// TestClearTimerSparesHeartbeat: the automatic heartbeat scan is the server's, not a
// user timer: ClearTimer of ids the application never got leaves it running.
func TestClearTimerSparesHeartbeat(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{HeartbeatCheckInterval: 50 * time.Millisecond})
	rec := ftEchoServer(s)
	ftStart(t, s)
	id, err := s.After(1000, func() {})
	if err != nil {
		t.Fatal(err)
	}
	for other := 1; other < id; other++ {
		if s.ClearTimer(other) {
			t.Errorf("ClearTimer(%d) returned true for a timer the application never made", other)
		}
	}
	c := ftDial(t, s.Ports()[0])
	fd := ftFDOf(t, s, c)
	ftWantClosed(t, c)
	rec.waitClosed(t, fd)
}

// TestShutdownFromTimer: a timer callback may shut the server down; Start returns and
// the tick that kept running stops with it.
func TestShutdownFromTimer(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{})
	ftEchoServer(s)
	var ticks atomic.Int32
	s.OnWorkerStart(func(s *swoole.Server, _ int) {
		if _, err := s.Tick(1, func(int) { ticks.Add(1) }); err != nil {
			panic(err)
		}
		if _, err := s.After(20, func() {
			if err := s.Shutdown(); err != nil {
				panic(err)
			}
		}); err != nil {
			panic(err)
		}
	})
	done := make(chan error, 1)
	go func() { done <- s.Start() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
	case <-time.After(ftTimeout):
		_ = s.Shutdown()
		t.Fatal("Shutdown from a timer callback did not stop the server")
	}
	if ticks.Load() == 0 {
		t.Error("the tick never ran before the shutdown")
	}
}
