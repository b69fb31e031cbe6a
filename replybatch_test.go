package swoole

import (
	"testing"

	"github.com/goswoole/swoole/internal/ipc"
)

// TestReplyBatchAllocs: a ModeProcess worker's reply batch (hold, arm the flush timer, end)
// allocates nothing once the worker has had its first batch. A timer and a closure made per
// batch were garbage that grew the worker's heap: +100 B per connection of idle RSS at
// 19,000 connections (BENCHMARKS.md, notes).
func TestReplyBatchAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	a, b, err := ipc.NewPair()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	w, err := ipc.NewWriter(a, ipc.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{serverCore: &serverCore{mp: &multi{toReactor: []*ipc.Writer{w}}}}
	batch := func() {
		s.beginReplyBatch()
		s.replyEvent()
		s.replyEvent()
		s.endReplyBatch()
	}
	batch() // the first batch makes the worker's one timer
	if n := testing.AllocsPerRun(1000, batch); n != 0 {
		t.Errorf("a reply batch: %.1f allocations, want 0", n)
	}
	if s.mp.flushTimer.Stop() {
		t.Error("the flush timer is still armed after the batch ended")
	}
}
