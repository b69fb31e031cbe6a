//go:build linux

package conntable

import (
	"errors"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	goleak.VerifyTestMain(m)
}

func newTable(t testing.TB, maxConn, workers int, start int64) *Table {
	t.Helper()
	tb, err := New(maxConn, workers, start)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := tb.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tb
}

// openSession allocates and publishes a session owned by worker.
func openSession(t testing.TB, tb *Table, worker int32) (int64, *Slot) {
	t.Helper()
	id, s, ok := tb.Alloc()
	if !ok {
		t.Fatalf("Alloc failed at Len %d", tb.Len())
	}
	s.Worker.Store(worker)
	tb.Publish(s)
	return id, s
}

func TestLayout(t *testing.T) {
	sizes := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"header", unsafe.Sizeof(header{}), 128},
		{"Counters", unsafe.Sizeof(Counters{}), 30 * 8},
		{"WorkerSlot", unsafe.Sizeof(WorkerSlot{}), 128},
		{"Slot", unsafe.Sizeof(Slot{}), 128},
		{"longAddr", unsafe.Sizeof(longAddr{}), 112},
	}
	for _, tc := range sizes {
		if tc.got != tc.want || tc.got%8 != 0 {
			t.Errorf("sizeof %s = %d, want %d (multiple of 8)", tc.name, tc.got, tc.want)
		}
	}
	var s Slot
	offsets := []struct {
		name      string
		got, want uintptr
	}{
		{"Session", unsafe.Offsetof(s.Session), 0},
		{"State", unsafe.Offsetof(s.State), 8},
		{"Flags", unsafe.Offsetof(s.Flags), 12},
		{"Worker", unsafe.Offsetof(s.Worker), 16},
		{"UID", unsafe.Offsetof(s.UID), 52},
		{"ConnectTime", unsafe.Offsetof(s.ConnectTime), 56},
		{"LastRecv", unsafe.Offsetof(s.LastRecv), 64},
		{"RecvQueued", unsafe.Offsetof(s.RecvQueued), 88},
		{"SendQueued", unsafe.Offsetof(s.SendQueued), 92},
		{"addrMeta", unsafe.Offsetof(s.addrMeta), 96},
		{"pins", unsafe.Offsetof(s.pins), 100},
		{"OwnerPID", unsafe.Offsetof(s.OwnerPID), 104},
		{"addr", unsafe.Offsetof(s.addr), 112},
	}
	for _, tc := range offsets {
		if tc.got != tc.want {
			t.Errorf("offsetof Slot.%s = %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	var c Counters
	if o := unsafe.Offsetof(c.MaxFD); o != 13*8 {
		t.Errorf("offsetof Counters.MaxFD = %d", o)
	}
	var w WorkerSlot
	if o := unsafe.Offsetof(w.RequestCount); o != 8 {
		t.Errorf("offsetof WorkerSlot.RequestCount = %d", o)
	}
	if o := unsafe.Offsetof(w.StartTime); o != 48 {
		t.Errorf("offsetof WorkerSlot.StartTime = %d", o)
	}
	var h header
	if o := unsafe.Offsetof(h.Len); o != 72 {
		t.Errorf("offsetof header.Len = %d", o)
	}
	l := computeLayout(1024, 3)
	for _, off := range []int{l.counters, l.workers, l.slots, l.addrs} {
		if off%regionAlign != 0 {
			t.Errorf("region offset %d not %d-aligned", off, regionAlign)
		}
	}
	if l.addrs < l.slots+1024*128 || l.total%os.Getpagesize() != 0 || l.total < l.addrs+1024*112 {
		t.Errorf("total %d", l.total)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name            string
		maxConn, worker int
		start           int64
		wantCap         int
		wantErr         bool
	}{
		{"min capacity", 1, 0, 0, 1024, false},
		{"exact", 512, 2, 0, 1024, false},
		{"round up", 513, 2, 0, 2048, false},
		{"big", 100000, 4, 7, 262144, false},
		{"zero maxConn", 0, 1, 0, 0, true},
		{"too big", MaxCapacity, 1, 0, 0, true},
		{"negative workers", 10, -1, 0, 0, true},
		{"negative start", 10, 1, -1, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb, err := New(tc.maxConn, tc.worker, tc.start)
			if tc.wantErr {
				if err == nil {
					tb.Close()
					t.Fatal("New succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tb.Close()
			if tb.Capacity() != tc.wantCap || tb.MaxConn() != tc.maxConn || tb.WorkerSlots() != tc.worker {
				t.Errorf("cap %d maxConn %d workers %d", tb.Capacity(), tb.MaxConn(), tb.WorkerSlots())
			}
			if tb.Worker(tc.worker) != nil || tb.Worker(-1) != nil {
				t.Error("Worker out of range not nil")
			}
			if tc.worker > 0 && tb.Worker(tc.worker-1) == nil {
				t.Error("Worker in range nil")
			}
		})
	}
}

func TestSessionLifecycle(t *testing.T) {
	tb := newTable(t, 10, 1, 1000)
	id, s, ok := tb.Alloc()
	if !ok || id != 1001 {
		t.Fatalf("first Alloc = %d, %v; want 1001", id, ok)
	}
	if tb.Len() != 1 || s.State.Load() != StateReserved || s.Session.Load() != id {
		t.Fatalf("after Alloc: Len %d State %d", tb.Len(), s.State.Load())
	}
	if tb.Get(id) != nil || tb.Lookup(id) != nil {
		t.Fatal("Reserved session visible")
	}
	s.FD.Store(42)
	s.Worker.Store(3)
	tb.Publish(s)
	if tb.Get(id) != s || tb.Lookup(id) != s {
		t.Fatal("Open session not found")
	}
	for _, bad := range []int64{0, -1, id + 1, id + int64(tb.Capacity())} {
		if tb.Get(bad) != nil || tb.Lookup(bad) != nil {
			t.Errorf("Get(%d) not nil", bad)
		}
	}
	if tb.MarkClosing(s, id+1) {
		t.Error("MarkClosing with a wrong id succeeded")
	}
	if !tb.MarkClosing(s, id) {
		t.Fatal("MarkClosing failed")
	}
	if tb.MarkClosing(s, id) {
		t.Fatal("second MarkClosing succeeded")
	}
	if tb.Get(id) != s || tb.Lookup(id) != nil {
		t.Fatal("Closing: Get should find, Lookup should not")
	}
	tb.Release(s)
	if tb.Len() != 0 || tb.Get(id) != nil || s.State.Load() != StateFree || s.Session.Load() != 0 || s.FD.Load() != 0 || s.Worker.Load() != 0 {
		t.Fatalf("after Release: Len %d state %d", tb.Len(), s.State.Load())
	}
	tb.Release(s) // double release is a no-op
	if tb.Len() != 0 {
		t.Fatalf("double Release changed Len to %d", tb.Len())
	}
	id2, _, _ := tb.Alloc()
	if id2 != 1002 {
		t.Fatalf("second id %d, want 1002", id2)
	}
}

func TestIDsSkipHeldSlot(t *testing.T) {
	tb := newTable(t, 10, 0, 0)
	held, _ := openSession(t, tb, 0)
	if held != 1 {
		t.Fatalf("first id %d", held)
	}
	seen := map[int64]bool{held: true}
	for range tb.Capacity() - 1 {
		id, s, ok := tb.Alloc()
		if !ok || seen[id] {
			t.Fatalf("Alloc = %d, %v (seen %v)", id, ok, seen[id])
		}
		seen[id] = true
		tb.Release(s)
	}
	// The next id maps onto the held slot, so it is skipped.
	next := int64(tb.Capacity()) + 1
	id, _, ok := tb.Alloc()
	if !ok || id != next+1 {
		t.Fatalf("Alloc = %d, want %d (skipping %d)", id, next+1, next)
	}
	if tb.Lookup(held) == nil || tb.Lookup(next) != nil {
		t.Fatal("held session lost or skipped id visible")
	}
}

func TestAllocMaxConn(t *testing.T) {
	tb := newTable(t, 5, 0, 0)
	var slots []*Slot
	for range 5 {
		_, s := openSession(t, tb, 0)
		slots = append(slots, s)
	}
	if _, _, ok := tb.Alloc(); ok {
		t.Fatal("Alloc beyond MaxConn succeeded")
	}
	if tb.Len() != 5 {
		t.Fatalf("Len %d", tb.Len())
	}
	tb.Release(slots[2])
	if _, _, ok := tb.Alloc(); !ok {
		t.Fatal("Alloc after Release failed")
	}
}

func TestConcurrentAllocRelease(t *testing.T) {
	const maxConn, goroutines, rounds = 64, 8, 500
	tb := newTable(t, maxConn, 0, 0)
	var (
		mu   sync.Mutex
		seen = map[int64]bool{}
		wg   sync.WaitGroup
		over atomic.Int64
	)
	for range goroutines {
		wg.Go(func() {
			ids := make([]int64, 0, rounds)
			for range rounds {
				id, s, ok := tb.Alloc()
				if !ok {
					continue
				}
				if l := tb.Len(); l > maxConn {
					over.Store(int64(l))
				}
				ids = append(ids, id)
				tb.Publish(s)
				if tb.Lookup(id) != s || !tb.MarkClosing(s, id) {
					t.Errorf("session %d not owned", id)
				}
				tb.Release(s)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				if seen[id] {
					t.Errorf("id %d handed out twice", id)
				}
				seen[id] = true
			}
		})
	}
	wg.Wait()
	if over.Load() != 0 {
		t.Errorf("Len reached %d > MaxConn", over.Load())
	}
	if tb.Len() != 0 {
		t.Errorf("Len %d after all released", tb.Len())
	}
}

func TestMarkClosingRace(t *testing.T) {
	tb := newTable(t, 16, 0, 0)
	const racers = 8
	for range 200 {
		id, s := openSession(t, tb, 0)
		var (
			wins  atomic.Int32
			start sync.WaitGroup
			done  sync.WaitGroup
		)
		start.Add(1)
		for range racers {
			done.Go(func() {
				start.Wait()
				if tb.MarkClosing(s, id) {
					wins.Add(1)
				}
			})
		}
		start.Done()
		done.Wait()
		if wins.Load() != 1 {
			t.Fatalf("session %d: MarkClosing won %d times", id, wins.Load())
		}
		tb.Release(s)
	}
}

// TestMarkClosingVsReuse races MarkClosing calls against Release and reuse
// of one slot: every session on it must be marked closing exactly once, by
// the owner or by one racer, and a racer holding a stale id must never mark
// a newer session.
func TestMarkClosingVsReuse(t *testing.T) {
	tb := newTable(t, 1, 0, 0)
	var (
		mu       sync.Mutex
		racerWin = map[int64]int{}
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		target   atomic.Pointer[Slot]
	)
	defer wg.Wait() // after close(stop), before the table's cleanup
	defer close(stop)
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := target.Load()
				if s == nil {
					continue
				}
				if cur := s.Session.Load(); cur > 0 && tb.MarkClosing(s, cur) {
					mu.Lock()
					racerWin[cur]++
					mu.Unlock()
				}
			}
		})
	}
	ownerWin := map[int64]bool{}
	var ids []int64
	for range 1000 {
		id, ns, ok := tb.Alloc()
		if !ok {
			t.Fatal("Alloc failed")
		}
		target.Store(ns)
		tb.Publish(ns)
		ids = append(ids, id)
		ownerWin[id] = tb.MarkClosing(ns, id)
		tb.Release(ns)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		n := racerWin[id]
		if ownerWin[id] {
			n++
		}
		if n != 1 {
			t.Fatalf("session %d marked closing %d times (owner %v)", id, n, ownerWin[id])
		}
	}
	t.Logf("racers won %d of %d sessions", len(racerWin), len(ids))
}

func openIDs(tb *Table, after int64, filter bool, worker int32) []int64 {
	var ids []int64
	for i := range tb.slots {
		s := &tb.slots[i]
		if id := s.Session.Load(); id > after && s.State.Load() == StateOpen && (!filter || s.Worker.Load() == worker) {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func head(ids []int64, n int) []int64 {
	if len(ids) > n {
		return ids[:n]
	}
	return ids
}

func checkLists(t *testing.T, tb *Table, afters []int64) {
	t.Helper()
	for _, after := range afters {
		for _, limit := range []int{0, 1, 2, 3, 5, 100, 5000} {
			got := tb.List(after, limit, []int64{-7})
			want := append([]int64{-7}, head(openIDs(tb, after, false, 0), limit)...)
			if !slices.Equal(got, want) {
				t.Errorf("List(%d, %d) = %v, want %v", after, limit, got, want)
			}
			for w := int32(0); w < 3; w++ {
				got := tb.ListWorker(after, limit, w, nil)
				want := head(openIDs(tb, after, true, w), limit)
				if len(want) == 0 {
					want = nil
				}
				if !slices.Equal(got, want) {
					t.Errorf("ListWorker(%d, %d, %d) = %v, want %v", after, limit, w, got, want)
				}
			}
		}
	}
}

func TestListWalk(t *testing.T) {
	tb := newTable(t, 100, 0, 500)
	var slots []*Slot
	for i := range 20 {
		_, s := openSession(t, tb, int32(i%3))
		slots = append(slots, s)
	}
	tb.Release(slots[3])
	tb.Release(slots[10])
	tb.MarkClosing(slots[7], slots[7].Session.Load())
	if _, _, ok := tb.Alloc(); !ok { // a Reserved session is not listed
		t.Fatal("Alloc")
	}
	round := tb.Counters().SessionRound.Load()
	if round-500 > int64(tb.Capacity()) {
		t.Fatal("walk strategy not selected")
	}
	got := tb.List(0, 100, nil)
	if len(got) != 17 || got[0] != 501 || got[len(got)-1] != 520 {
		t.Fatalf("List = %v", got)
	}
	checkLists(t, tb, []int64{-5, 0, 500, 501, 504, 510, 519, 520, 521, 1 << 40})
}

func TestListHeap(t *testing.T) {
	tb := newTable(t, 100, 0, 0)
	held, _ := openSession(t, tb, 1) // long-lived low id
	// Churn ids so that round - after > Capacity, keeping a few open.
	for i := range 3*tb.Capacity() + 7 {
		id, s, ok := tb.Alloc()
		if !ok {
			t.Fatal("Alloc")
		}
		s.Worker.Store(int32(id % 3))
		tb.Publish(s)
		if i%97 != 0 {
			tb.Release(s)
		}
	}
	if round := tb.Counters().SessionRound.Load(); round-held <= int64(tb.Capacity()) {
		t.Fatalf("heap strategy not selected: round %d", round)
	}
	got := tb.List(0, 3, nil)
	all := openIDs(tb, 0, false, 0)
	if len(all) < 10 || got[0] != held || !slices.Equal(got, all[:3]) {
		t.Fatalf("List(0, 3) = %v, open %v", got, all)
	}
	// after values for both strategies: small (heap), near the round (walk).
	round := tb.Counters().SessionRound.Load()
	checkLists(t, tb, []int64{0, held, held + 1, all[3], all[len(all)/2], round - 200, round})
}

func TestRemoteAddr(t *testing.T) {
	tb := newTable(t, 4, 0, 0)
	longPath := strings.Repeat("/abcdefg", 25) // 200 bytes
	tests := []struct {
		name     string
		family   int
		ip       []byte
		port     int
		path     string
		wantIP   string
		wantPort int32
	}{
		{"ipv4", unix.AF_INET, []byte{127, 0, 0, 1}, 39136, "", "127.0.0.1", 39136},
		{"ipv4 16-byte", unix.AF_INET, netip.MustParseAddr("::ffff:10.1.2.3").AsSlice(), 80, "", "10.1.2.3", 80},
		{"ipv6", unix.AF_INET6, netip.IPv6Loopback().AsSlice(), 443, "", "::1", 443},
		{"ipv6 full", unix.AF_INET6, netip.MustParseAddr("2001:db8::8a2e:370:7334").AsSlice(), 1, "", "2001:db8::8a2e:370:7334", 1},
		{"ipv4-mapped as ipv6", unix.AF_INET6, netip.MustParseAddr("::ffff:1.2.3.4").AsSlice(), 2, "", "::ffff:1.2.3.4", 2},
		{"unix path", unix.AF_UNIX, nil, 0, "/tmp/swoole.sock", "/tmp/swoole.sock", 0},
		{"unix path 17 bytes", unix.AF_UNIX, nil, 0, "/tmp/swoole1.sock", "/tmp/swoole1.sock", 0},
		{"unix path 108 bytes", unix.AF_UNIX, nil, 0, longPath[:MaxAddrLen], longPath[:MaxAddrLen], 0},
		{"unix unnamed", unix.AF_UNIX, nil, 0, "", "", 0},
		{"unix long", unix.AF_UNIX, nil, 0, longPath, longPath[:MaxAddrLen], 0},
		{"bad ipv4", unix.AF_INET, []byte{1, 2}, 5, "", "", 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, s := openSession(t, tb, 0)
			defer tb.Release(s)
			s.SetRemoteAddr(tc.family, tc.ip, tc.port, tc.path)
			if got := s.RemoteIP(); got != tc.wantIP {
				t.Errorf("RemoteIP = %q, want %q", got, tc.wantIP)
			}
			if s.RemotePort.Load() != tc.wantPort || s.RemoteFamily() != tc.family {
				t.Errorf("port %d family %d", s.RemotePort.Load(), s.RemoteFamily())
			}
		})
	}
	_, s := openSession(t, tb, 0)
	if s.RemoteIP() != "" || s.RemoteFamily() != 0 {
		t.Error("released slot kept its address")
	}
}

func TestFlagsAndUID(t *testing.T) {
	tb := newTable(t, 4, 0, 0)
	_, s := openSession(t, tb, 0)
	s.SetFlag(FlagSSL | FlagPaused)
	if !s.HasFlag(FlagSSL) || !s.HasFlag(FlagPaused|FlagSSL) || s.HasFlag(FlagProtected) || s.HasFlag(FlagSSL|FlagProtected) {
		t.Errorf("flags %b", s.Flags.Load())
	}
	s.ClearFlag(FlagPaused)
	if s.HasFlag(FlagPaused) || !s.HasFlag(FlagSSL) {
		t.Errorf("flags after clear %b", s.Flags.Load())
	}
	if s.SetUIDOnce(0) {
		t.Error("SetUIDOnce(0) succeeded")
	}
	var wg sync.WaitGroup
	var wins atomic.Int32
	for i := range 8 {
		wg.Go(func() {
			if s.SetUIDOnce(uint32(100 + i)) {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || !s.HasFlag(FlagBound) || s.UID.Load() < 100 {
		t.Errorf("wins %d uid %d flags %b", wins.Load(), s.UID.Load(), s.Flags.Load())
	}
	tb.Release(s)
	_, s = openSession(t, tb, 0)
	if s.Flags.Load() != 0 || s.UID.Load() != 0 || !s.SetUIDOnce(5) {
		t.Error("reused slot not clean")
	}
}

func TestOpenSecondMapping(t *testing.T) {
	tb := newTable(t, 10, 2, 0)
	fd, err := unix.Dup(int(tb.File().Fd()))
	if err != nil {
		t.Fatal(err)
	}
	other, err := Open(os.NewFile(uintptr(fd), "dup"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if other.Capacity() != tb.Capacity() || other.MaxConn() != 10 || other.WorkerSlots() != 2 {
		t.Fatalf("Open: cap %d max %d workers %d", other.Capacity(), other.MaxConn(), other.WorkerSlots())
	}
	id, s := openSession(t, tb, 1)
	s.FD.Store(77)
	if os := other.Lookup(id); os == nil || os.FD.Load() != 77 || unsafe.Pointer(os) == unsafe.Pointer(s) {
		t.Fatal("session not visible through the second mapping")
	}
	other.Counters().AcceptCount.Add(3)
	other.Worker(1).Status.Store(WorkerIdle)
	if tb.Counters().AcceptCount.Load() != 3 || tb.Worker(1).Status.Load() != WorkerIdle {
		t.Fatal("writes through the second mapping not visible")
	}
	if id2, _, _ := other.Alloc(); id2 != id+1 || tb.Len() != 2 {
		t.Fatalf("Alloc through second mapping: %d, Len %d", id2, tb.Len())
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOpenRejects(t *testing.T) {
	mk := func(t *testing.T, size int, edit func([]byte)) *os.File {
		fd, err := unix.MemfdCreate("bad", unix.MFD_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), "bad")
		if err := f.Truncate(int64(size)); err != nil {
			t.Fatal(err)
		}
		if size > 0 {
			mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
			if err != nil {
				t.Fatal(err)
			}
			edit(mem)
			unix.Munmap(mem)
		}
		return f
	}
	// copyOf returns a file holding a valid table image, then edited.
	good := newTable(t, 10, 1, 0)
	image := func(edit func(h *header)) func([]byte) {
		return func(mem []byte) {
			copy(mem, good.mem)
			edit((*header)(unsafe.Pointer(&mem[0])))
		}
	}
	size := len(good.mem)
	tests := []struct {
		name string
		size int
		edit func([]byte)
	}{
		{"empty", 0, nil},
		{"zeros", 4096, func([]byte) {}},
		{"magic", size, image(func(h *header) { h.Magic.Store(1) })},
		{"version", size, image(func(h *header) { h.Version.Store(99) })},
		{"slot size", size, image(func(h *header) { h.SlotSize.Store(256) })},
		{"capacity", size, image(func(h *header) { h.Capacity.Store(1000) })},
		{"maxConn", size, image(func(h *header) { h.MaxConn.Store(1 << 20) })},
		{"total", size, image(func(h *header) { h.TotalSize.Store(int64(size) * 2) })},
		{"short file", size / 2, image(func(*header) {})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb, err := Open(mk(t, tc.size, tc.edit))
			if err == nil {
				tb.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrBadTable) {
				t.Fatalf("error %v does not wrap ErrBadTable", err)
			}
		})
	}
	t.Run("valid copy", func(t *testing.T) {
		tb, err := Open(mk(t, size, image(func(*header) {})))
		if err != nil {
			t.Fatal(err)
		}
		tb.Close()
	})
}

func TestBytes32(t *testing.T) {
	var b Bytes32
	for _, tc := range []struct{ in, want int64 }{
		{0, 0}, {1, 1}, {1 << 31, 1 << 31}, {1<<32 - 1, 1<<32 - 1}, {1 << 32, 1<<32 - 1}, {1 << 40, 1<<32 - 1}, {-5, 0},
	} {
		b.Store(tc.in)
		if got := b.Load(); got != tc.want {
			t.Errorf("Store(%d): Load = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestBytes32Add(t *testing.T) {
	var b Bytes32
	if b.Add(10) != 10 || b.Add(-3) != 7 || b.Add(-100) != 0 || b.Add(1<<40) != 1<<32-1 {
		t.Fatalf("Add does not saturate: %d", b.Load())
	}
	b.Store(0)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				b.Add(2)
				b.Add(-1)
			}
		}()
	}
	wg.Wait()
	if b.Load() != 4000 {
		t.Fatalf("concurrent Add: %d, want 4000", b.Load())
	}
}
