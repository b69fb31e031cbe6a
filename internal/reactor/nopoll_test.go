package reactor

import (
	"sync/atomic"
	"testing"
	"time"
)

// oneTimer is a Timers with one deadline (loop clock nanoseconds; 0: none).
type oneTimer struct {
	at    int64
	fired chan struct{}
}

func (t *oneTimer) Timeout(now int64) int {
	if t.at == 0 {
		return -1
	}
	if now >= t.at {
		return 0
	}
	return int((t.at-now)/int64(time.Millisecond)) + 1
}

func (t *oneTimer) Run(now int64) int {
	if t.at != 0 && now >= t.at {
		t.at = 0
		close(t.fired)
		return 1
	}
	return 0
}

// TestNoPollLoop: a loop without descriptors runs the tasks posted from other goroutines
// (waking when asleep), its timers, a nested RunUntil, and stops; it refuses listeners.
func TestNoPollLoop(t *testing.T) {
	l, err := New(nopHandler{}, Config{NoPoll: true})
	if err != nil {
		t.Fatal(err)
	}
	timers := &oneTimer{fired: make(chan struct{})}
	l.SetTimers(timers)
	if err := l.AddListener(&Listener{FD: 0}); err == nil {
		t.Fatal("AddListener on a NoPoll loop: no error")
	}
	done := make(chan error, 1)
	go func() { done <- l.Run() }()

	var ran atomic.Int32
	all := make(chan struct{})
	for i := range 1000 {
		if !l.Post(Task{Fn: func() {
			if ran.Add(1) == 1000 {
				close(all)
			}
		}}) {
			t.Fatalf("Post %d refused", i)
		}
	}
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		t.Fatalf("%d of 1000 posted tasks ran", ran.Load())
	}
	// A timer set from the loop fires while the loop sleeps with nothing posted.
	l.Post(Task{Fn: func() { timers.at = l.Now() + int64(20*time.Millisecond) }})
	select {
	case <-timers.fired:
	case <-time.After(10 * time.Second):
		t.Fatal("the timer did not fire")
	}
	// A nested run inside a task waits for a task posted meanwhile.
	nested := make(chan bool, 1)
	l.Post(Task{Fn: func() {
		var got atomic.Bool
		go l.Post(Task{Fn: func() { got.Store(true) }})
		nested <- l.RunUntil(got.Load, l.Now()+int64(10*time.Second))
	}})
	if !<-nested {
		t.Fatal("RunUntil did not see the task posted during it")
	}
	l.Post(Task{Fn: l.Stop})
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Stop")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l.Post(Task{Fn: func() {}}) {
		t.Fatal("Post after Close was taken")
	}
}
