package swoole

import (
	"testing"

	"github.com/goswoole/swoole/internal/ipc"
)

// TestInHandTableEntriesApart fills every entry of every task worker's part of the table of
// tasks in hand, through claim as a task worker does, and reads each back: no entry may reach
// into its neighbour, and the last one must lie inside the mapping (an entry stride smaller
// than the record once made each task id overwrite the next entry's pid, and the last task
// worker's last entry write past the end of the mapping, corrupting the process).
func TestInHandTableEntriesApart(t *testing.T) {
	const workers = 3
	tab, f, err := newInHandTable(workers)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defer tab.close()
	if got, want := len(tab.mem), workers*inHandPerWorker*inHandEntrySize; got != want {
		t.Fatalf("mapping is %d bytes; want %d", got, want)
	}
	hands := make([]*inHand, workers)
	for tw := range hands {
		hands[tw] = &inHand{t: tab, tw: tw, pid: int32(1000 + tw), sent: map[int][]int{}, outs: make([]*ipc.Writer, 2)}
	}
	id := func(tw, i int) int64 { return int64(tw)<<40 | int64(i)<<8 | 0x5a }
	for tw, h := range hands {
		for i := range inHandPerWorker {
			hd := ipc.Header{Type: ipc.TypeTask, SrcWorker: int16(i % 2), Fd: id(tw, i), Aux: taskFlagWait}
			if got := h.claim(hd); got != i {
				t.Fatalf("task worker %d: claim %d took entry %d; want %d", tw, i, got, i)
			}
		}
		if got := h.claim(ipc.Header{Type: ipc.TypeTask, Fd: 1, Aux: taskFlagWait}); got != -1 {
			t.Fatalf("task worker %d: a claim on a full table took entry %d; want -1", tw, got)
		}
	}
	for tw := range hands {
		for i := range inHandPerWorker {
			e := tab.entry(tw, i)
			if e.pid.Load() != int32(1000+tw) || e.src.Load() != int32(i%2) || e.id.Load() != id(tw, i) || e.flags.Load() != uint32(taskFlagWait) {
				t.Fatalf("entry %d of task worker %d reads pid %d src %d id %#x flags %d; want %d %d %#x %d",
					i, tw, e.pid.Load(), e.src.Load(), e.id.Load(), e.flags.Load(), 1000+tw, i%2, id(tw, i), taskFlagWait)
			}
		}
	}
}
