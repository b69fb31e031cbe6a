package swoole_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestModeProcessKilledWorkerLosesOnlyTheEventInHand: events that reached a ModeProcess
// worker's pipe together, while it was busy, are not lost with it when it is killed in the
// first one's callback: only the event in hand is (as in Swoole, whose worker reads one
// message at a time); its replacement answers the rest, on the same connections. With
// redeliver_event_in_hand the replacement gets the event in hand again, first.
func TestModeProcessKilledWorkerLosesOnlyTheEventInHand(t *testing.T) {
	t.Run("at most once", func(t *testing.T) { testKilledWorkerInHand(t, false) })
	t.Run("redeliver_event_in_hand", func(t *testing.T) { testKilledWorkerInHand(t, true) })
}

func testKilledWorkerInHand(t *testing.T, redeliver bool) {
	env := []string{mpEnvDispatch + "=2"}
	if redeliver {
		env = append(env, mpEnvRedeliver+"=1")
	}
	ms := mpProcStart(t, env...)
	mine, other := workerConns(t, ms, 6) // worker 0's connections, and one of worker 1's
	_, victim, _ := mine[0].who()
	probe := other[0]
	dispatched := func() int {
		f := probe.do("dispatched")
		if len(f) != 2 {
			t.Fatalf("dispatched: %q", f)
		}
		n, _ := strconv.Atoi(f[1])
		return n
	}
	// waitQueued waits until the master has passed n more events to the workers than at
	// base (each probe is an event too).
	probes := 0
	waitQueued := func(base, n int) {
		ms.eventually(fmt.Sprintf("%d events passed to the workers", n), func() bool {
			probes++
			return dispatched() >= base+n+probes
		})
	}
	release := filepath.Join(t.TempDir(), "release")
	mine[0].send("hold " + release)
	ms.waitEvent("holding", func(e mpEv) bool { return e.PID == victim })

	// While worker 0 is held, its pipe fills: first the event it will be killed in, then
	// four more behind it.
	probes = 0
	base := dispatched()
	mine[1].send("dieonce " + filepath.Join(t.TempDir(), "died"))
	waitQueued(base, 1)
	for i, c := range mine[2:] {
		c.send(fmt.Sprintf("echo queued-%d", i))
	}
	waitQueued(base, 1+len(mine[2:]))

	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if f := mine[0].read(); len(f) != 1 || f[0] != "held" {
		t.Fatalf("hold: %q", f)
	}
	ms.waitEvent("sleeping", func(e mpEv) bool { return e.PID == victim })
	if err := syscallKill(victim); err != nil {
		t.Fatal(err)
	}
	ms.waitEvent("workererror", func(e mpEv) bool { return e.int(1) == victim })
	if redeliver {
		if f := mine[1].read(); len(f) != 1 || f[0] != "redelivered" {
			t.Fatalf("the event in hand: %q, want it redelivered", f)
		}
	}
	for i, c := range mine[2:] {
		want := fmt.Sprintf("queued-%d", i)
		if f := c.read(); len(f) != 1 || f[0] != want {
			t.Fatalf("event %d queued behind the one in hand: %q, want %q (lost with the killed worker)", i, f, want)
		}
	}
	if !redeliver {
		ms.eventually("the lost event logged", func() bool { return strings.Contains(ms.output(), "an event was lost") })
	}
	// Every connection is still served, by the replacement.
	for i, c := range mine {
		if id, pid, _ := c.who(); id != 0 || pid == victim {
			t.Fatalf("connection %d: served by worker %d pid %d after the kill", i, id, pid)
		}
	}
}

// TestModeProcessKilledWorkerKeepsItsHeldReplies: replies a worker made and had not sent yet
// when it died are not lost with it. Two events reach a held worker's pipe and are read in one
// batch, whose replies the worker holds to send together: an echo, then a request whose
// callback replies and kills the worker at once. Both replies are in the reply journal, in
// memory that outlives the worker, and its replacement sends them, each once.
func TestModeProcessKilledWorkerKeepsItsHeldReplies(t *testing.T) {
	ms := mpProcStart(t, mpEnvDispatch+"=2")
	mine, other := workerConns(t, ms, 3) // worker 0's connections, and one of worker 1's
	_, victim, _ := mine[0].who()
	probe := other[0]
	probes := 0
	waitQueued := func(base, n int) {
		ms.eventually(fmt.Sprintf("%d events passed to the workers", n), func() bool {
			probes++
			f := probe.do("dispatched")
			got, _ := strconv.Atoi(f[len(f)-1])
			return got >= base+n+probes
		})
	}
	release := filepath.Join(t.TempDir(), "release")
	mine[0].send("hold " + release)
	ms.waitEvent("holding", func(e mpEv) bool { return e.PID == victim })
	f := probe.do("dispatched")
	base, _ := strconv.Atoi(f[len(f)-1])
	probes = 0
	mine[1].send("echo first")
	mine[2].send("replykill journaled")
	waitQueued(base, 2)
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if f := mine[0].read(); len(f) != 1 || f[0] != "held" {
		t.Fatalf("hold: %q", f)
	}
	ms.waitEvent("workererror", func(e mpEv) bool { return e.int(1) == victim })
	for i, want := range []string{"first", "journaled"} {
		if f := mine[1+i].read(); len(f) != 1 || f[0] != want {
			t.Fatalf("reply %d of the batch the worker died in: %q, want %q", i, f, want)
		}
	}
	for i, c := range mine[1:] {
		if f := c.do("echo after"); len(f) != 1 || f[0] != "after" {
			t.Fatalf("connection %d, next reply: %q, want \"after\" (a held reply came twice?)", i+1, f)
		}
		if id, pid, _ := c.who(); id != 0 || pid == victim {
			t.Fatalf("connection %d: served by worker %d pid %d after the kill", i+1, id, pid)
		}
	}
}

// workerConns dials until it has n connections served by worker 0 and at least one by worker
// 1 (dispatch_mode 2 spreads them by descriptor).
func workerConns(t *testing.T, ms *mpServer, n int) (mine, other []*mpClient) {
	t.Helper()
	for i := 0; i < 60 && (len(mine) < n || len(other) < 1); i++ {
		c := ms.dial()
		if id, _, _ := c.who(); id == 0 {
			mine = append(mine, c)
		} else {
			other = append(other, c)
		}
	}
	if len(mine) < n || len(other) < 1 {
		t.Fatalf("connections: %d on worker 0, %d on worker 1", len(mine), len(other))
	}
	return mine, other
}
