package dispatch

import (
	"net/netip"
	"sync"
	"testing"
)

func TestPickModes(t *testing.T) {
	p := NewPicker(4)
	for i := range 8 {
		if id, _ := p.Pick(RoundRobin, Key{}, nil); id != i%4 {
			t.Fatalf("round robin step %d: worker %d, want %d", i, id, i%4)
		}
	}
	if id, _ := p.Pick(FDMod, Key{FD: 10}, nil); id != 2 {
		t.Fatalf("fd mod: %d", id)
	}
	ip := IPKey(netip.MustParseAddr("10.0.0.7"))
	if ip != 10<<24|7 {
		t.Fatalf("IPKey v4 = %d", ip)
	}
	if IPKey(netip.MustParseAddr("::ffff:10.0.0.7")) != ip {
		t.Fatal("a v4-mapped address must key like its v4 form")
	}
	if id, _ := p.Pick(IPMod, Key{IP: ip, FD: 1}, nil); id != 3 {
		t.Fatalf("ip mod: %d", id)
	}
	if IPKey(netip.MustParseAddr("::1")) == IPKey(netip.MustParseAddr("::2")) {
		t.Fatal("IPv6 hash collides on neighbours")
	}
	if IPKey(netip.Addr{}) != 0 {
		t.Fatal("invalid address must key 0")
	}
	if id, _ := p.Pick(UIDMod, Key{FD: 9, UID: 6}, nil); id != 2 {
		t.Fatalf("uid mod: %d", id)
	}
	if id, _ := p.Pick(UIDMod, Key{FD: 9}, nil); id != 1 {
		t.Fatalf("uid mod before bind falls back to fd mod: %d", id)
	}
}

func TestPickIdle(t *testing.T) {
	p := NewPicker(3)
	busy := map[int]bool{0: true, 2: true}
	for range 5 {
		id, none := p.Pick(Idle, Key{}, func(i int) bool { return !busy[i] })
		if id != 1 || none {
			t.Fatalf("idle: worker %d none=%v, want 1", id, none)
		}
	}
	seen := map[int]int{}
	for range 9 {
		id, none := p.Pick(Stream, Key{}, func(int) bool { return false })
		if !none {
			t.Fatal("no idle worker must be reported")
		}
		seen[id]++
	}
	if len(seen) != 3 {
		t.Fatalf("without idle workers events must go round: %v", seen)
	}
	// With every worker idle the choice still rotates.
	seen = map[int]int{}
	for range 6 {
		id, _ := p.Pick(Idle, Key{}, func(int) bool { return true })
		seen[id]++
	}
	if len(seen) != 3 {
		t.Fatalf("idle workers must share: %v", seen)
	}
}

func TestKeepsOrder(t *testing.T) {
	for mode, want := range map[int]bool{1: false, 2: true, 3: false, 4: true, 5: true, 7: false} {
		if KeepsOrder(mode) != want {
			t.Fatalf("KeepsOrder(%d) = %v", mode, !want)
		}
	}
}

func TestPickConcurrent(t *testing.T) {
	p := NewPicker(4)
	var wg sync.WaitGroup
	counts := make([][4]int, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				id, _ := p.Pick(RoundRobin, Key{}, nil)
				counts[g][id]++
			}
		}()
	}
	wg.Wait()
	var total [4]int
	for _, c := range counts {
		for i, v := range c {
			total[i] += v
		}
	}
	for i, v := range total {
		if v != 1000 {
			t.Fatalf("worker %d got %d of 4000 round-robin events", i, v)
		}
	}
}

func BenchmarkPick(b *testing.B) {
	p := NewPicker(8)
	k := Key{FD: 17, IP: 12345}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Pick(i%5+1, k, nil)
	}
}
