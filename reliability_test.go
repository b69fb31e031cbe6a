package swoole_test

// The reliability suite: faults under load, each with what it must not lose. The short
// versions run with the package's tests (CI); GOSWOOLE_RELIABILITY=long runs the long ones
// (bench/reliability.sh), and GOSWOOLE_RELIABILITY_OUT=<file> appends one JSON line of
// figures per run (RELIABILITY.md quotes them).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// relScale is the size of a reliability run.
type relScale struct {
	conns    int           // echoing connections
	duration time.Duration // how long the faults go on
	tasks    int           // tasks in the task-worker run
	cycles   int           // connect/close cycles
}

func reliabilityScale() relScale {
	if os.Getenv("GOSWOOLE_RELIABILITY") == "long" {
		return relScale{conns: 1000, duration: 60 * time.Second, tasks: 100_000, cycles: 1_000_000}
	}
	return relScale{conns: 100, duration: 4 * time.Second, tasks: 3000, cycles: 5000}
}

// relReport logs the figures of a run and appends them to GOSWOOLE_RELIABILITY_OUT.
func relReport(t *testing.T, figures map[string]any) {
	t.Helper()
	figures["test"] = t.Name()
	b, _ := json.Marshal(figures)
	t.Logf("figures: %s", b)
	if path := os.Getenv("GOSWOOLE_RELIABILITY_OUT"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fmt.Fprintf(f, "%s\n", b)
	}
}

// relLoad is echo traffic on many connections, each sending one request at a time and
// checking the reply byte for byte. A request unanswered within the wait is counted and
// the connection goes on with the next one (a reply that comes late is recognised by its
// sequence number); a connection that fails (closed, reset) counts as dropped.
type relLoad struct {
	requests, answered, unanswered, late, corrupt, dropped atomic.Int64
	stop                                                   chan struct{}
	wg                                                     sync.WaitGroup
	wait                                                   time.Duration
	firstErr                                               atomic.Value
}

func startRelLoad(t *testing.T, port, conns int, wait time.Duration) *relLoad {
	t.Helper()
	l := &relLoad{stop: make(chan struct{}), wait: wait}
	cs := make([]net.Conn, 0, conns)
	for range conns {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), mpTimeout)
		if err != nil {
			t.Fatalf("dial %d: %v", len(cs), err)
		}
		cs = append(cs, c)
	}
	t.Cleanup(func() {
		for _, c := range cs {
			c.Close()
		}
	})
	for i, c := range cs {
		l.wg.Add(1)
		go l.run(i, c)
	}
	return l
}

func (l *relLoad) fail(err error) {
	l.firstErr.CompareAndSwap(nil, err)
}

func (l *relLoad) run(id int, c net.Conn) {
	defer l.wg.Done()
	rng := rand.New(rand.NewPCG(uint64(id), 7))
	r := bufio.NewReaderSize(c, 8192)
	for seq := 0; ; seq++ {
		select {
		case <-l.stop:
			return
		default:
		}
		// "echo <id>-<seq>-<filler>": the reply is everything after "echo ".
		body := fmt.Sprintf("%d-%d-%s", id, seq, strings.Repeat(string(rune('a'+rng.IntN(26))), 1+rng.IntN(1500)))
		_ = c.SetWriteDeadline(time.Now().Add(mpTimeout))
		if _, err := c.Write([]byte("echo " + body + "\n")); err != nil {
			l.dropped.Add(1)
			l.fail(fmt.Errorf("connection %d: write: %w", id, err))
			return
		}
		l.requests.Add(1)
		prefix := fmt.Sprintf("%d-%d-", id, seq)
		for {
			_ = c.SetReadDeadline(time.Now().Add(l.wait))
			line, err := r.ReadString('\n')
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				l.unanswered.Add(1) // go on with the next request
				break
			}
			if err != nil {
				l.dropped.Add(1)
				l.fail(fmt.Errorf("connection %d: read: %w", id, err))
				return
			}
			line = strings.TrimSuffix(line, "\n")
			if line == body {
				l.answered.Add(1)
				break
			}
			// A reply to an earlier request of this connection, counted unanswered then.
			if n, _, ok := strings.Cut(line, "-"); ok && n == strconv.Itoa(id) && !strings.HasPrefix(line, prefix) {
				l.late.Add(1)
				continue
			}
			l.corrupt.Add(1)
			l.fail(fmt.Errorf("connection %d: reply %.40q, want %.40q", id, line, body))
			break
		}
	}
}

// finish stops the load and waits for every connection's last request.
func (l *relLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}

func (l *relLoad) figures() map[string]any {
	return map[string]any{
		"requests": l.requests.Load(), "answered": l.answered.Load(), "unanswered": l.unanswered.Load(),
		"late": l.late.Load(), "corrupt": l.corrupt.Load(), "dropped": l.dropped.Load(),
	}
}

// finishLossless checks, once the load has gone on past the last fault, that the run lost
// nothing (no connection dropped, no reply corrupt, no request unanswered), and reports its
// figures with extra.
func (l *relLoad) finishLossless(ms *mpServer, conns int, extra map[string]any) {
	t := ms.t.(*testing.T)
	t.Helper()
	at := l.answered.Load()
	ms.eventually("load after the last fault", func() bool { return l.answered.Load() >= at+int64(conns) })
	l.finish()
	f := l.figures()
	for k, v := range extra {
		f[k] = v
	}
	relReport(t, f)
	if err, _ := l.firstErr.Load().(error); err != nil {
		t.Errorf("first failure: %v", err)
	}
	if l.dropped.Load() != 0 || l.corrupt.Load() != 0 || l.unanswered.Load() != 0 {
		t.Fatalf("%d connections dropped, %d replies corrupt, %d requests unanswered (want 0)", l.dropped.Load(), l.corrupt.Load(), l.unanswered.Load())
	}
}

// waitAllReplaced waits until every event worker has a pid other than the one in before.
func waitAllReplaced(ms *mpServer, before map[int]int) {
	ms.t.Helper()
	ms.eventually("every worker replaced", func() bool {
		now := currentWorkerPIDs(ms)
		for id, pid := range before {
			if now[id] == pid {
				return false
			}
		}
		return true
	})
}

// currentWorkerPIDs returns the pid of each event worker id as its last workerstart says.
func currentWorkerPIDs(ms *mpServer) map[int]int {
	pids := map[int]int{}
	for _, e := range ms.events() {
		if e.Name == "workerstart" {
			pids[e.int(0)] = e.PID
		}
	}
	return pids
}

// TestReliabilityWorkerKills: SIGKILL a random worker every 200-400 ms under echoing
// connections (ModeProcess): no connection is dropped, every reply is byte-exact, and at
// most one request goes unanswered per kill (the event in hand).
func TestReliabilityWorkerKills(t *testing.T) {
	sc := reliabilityScale()
	ms := mpProcStart(t, mpEnvWorkers+"=4")
	ms.eventually("every worker's workerstart", func() bool { return len(currentWorkerPIDs(ms)) == 4 })
	l := startRelLoad(t, ms.Port, sc.conns, 5*time.Second)
	ms.eventually("load running", func() bool { return l.answered.Load() >= int64(sc.conns) })
	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	for end := time.Now().Add(sc.duration); time.Now().Before(end); {
		time.Sleep(time.Duration(200+rng.IntN(200)) * time.Millisecond) // the fault's own rhythm
		pids := currentWorkerPIDs(ms)
		victim := pids[rng.IntN(4)]
		if victim == 0 || syscall.Kill(victim, syscall.SIGKILL) != nil {
			continue
		}
		kills++
		// The next kill waits for the replacement, so that every kill hits a live worker.
		ms.eventually("the replacement", func() bool {
			p := currentWorkerPIDs(ms)
			for _, pid := range p {
				if pid == victim {
					return false
				}
			}
			return len(p) == 4
		})
	}
	at := l.answered.Load()
	ms.eventually("load after the last kill", func() bool { return l.answered.Load() >= at+int64(sc.conns) })
	l.finish()
	f := l.figures()
	f["kills"] = kills
	f["conns"] = sc.conns
	f["seconds"] = sc.duration.Seconds()
	relReport(t, f)
	if err, _ := l.firstErr.Load().(error); err != nil {
		t.Errorf("first failure: %v", err)
	}
	if l.dropped.Load() != 0 || l.corrupt.Load() != 0 {
		t.Fatalf("%d connections dropped, %d replies corrupt (want 0)", l.dropped.Load(), l.corrupt.Load())
	}
	if kills == 0 {
		t.Fatal("no worker was killed")
	}
	if l.unanswered.Load() > int64(kills) {
		t.Fatalf("%d requests unanswered with %d kills: a killed worker may lose only the event in hand", l.unanswered.Load(), kills)
	}
}

// TestReliabilityReloads: a reload (SIGUSR1) every second under echoing connections
// (ModeProcess): no connection dropped, no request unanswered, every reply byte-exact.
func TestReliabilityReloads(t *testing.T) {
	sc := reliabilityScale()
	ms := mpProcStart(t, mpEnvWorkers+"=4")
	ms.eventually("every worker's workerstart", func() bool { return len(currentWorkerPIDs(ms)) == 4 })
	l := startRelLoad(t, ms.Port, sc.conns, mpTimeout)
	ms.eventually("load running", func() bool { return l.answered.Load() >= int64(sc.conns) })
	reloads := 0
	for end := time.Now().Add(sc.duration); time.Now().Before(end); {
		before := currentWorkerPIDs(ms)
		ms.signal(syscall.SIGUSR1)
		reloads++
		waitAllReplaced(ms, before)
		time.Sleep(time.Second) // the fault's own rhythm: one reload a second
	}
	l.finishLossless(ms, sc.conns, map[string]any{"reloads": reloads, "conns": sc.conns})
}

// TestReliabilityTaskWorkerKills: bursts of tasks (TaskWithCallback, 64 in flight per
// worker) while task workers are killed at random: every task id ends in exactly one answer
// (a result, or "lost" for those a killed task worker held), none is left waiting.
func TestReliabilityTaskWorkerKills(t *testing.T) {
	sc := reliabilityScale()
	ms := taskStart(t, mpEnvWorkers+"=2", taskEnvTasks+"=2")
	a, b := ms.dial(), ms.dial()
	per := sc.tasks / 2
	a.send(fmt.Sprintf("burst %d 64 sleep 1", per))
	b.send(fmt.Sprintf("burst %d 64 sleep 1", per))
	ms.eventually("tasks running", func() bool { return ms.count("taskstart", nil) > 50 })
	rng := rand.New(rand.NewPCG(3, 4))
	kills := 0
	done := make(chan [2][]string, 1)
	go func() {
		// Not c.read: its deadline is shorter than a long run, and it fails the test from
		// this goroutine. A burst that never ends shows as the test's own timeout.
		var out [2][]string
		for i, c := range []*mpClient{a, b} {
			_ = c.c.SetReadDeadline(time.Time{})
			l, _ := c.r.ReadString('\n')
			out[i] = strings.Fields(l)
		}
		done <- out
	}()
	var res [2][]string
	for running := true; running; {
		select {
		case res = <-done:
			running = false
			continue
		case <-time.After(time.Duration(200+rng.IntN(200)) * time.Millisecond):
		}
		id := 2 + rng.IntN(2)
		pids := taskWorkerPIDs(ms, id)
		if len(pids) > 0 && syscall.Kill(pids[len(pids)-1], syscall.SIGKILL) == nil {
			kills++
		}
	}
	ok, lost := 0, 0
	for i, f := range res {
		if len(f) != 4 || f[0] != "burst" {
			t.Fatalf("burst %d: %q", i, f)
		}
		o, bad, errs := atoi(f[1]), atoi(f[2]), atoi(f[3])
		if o+bad+errs != per || errs != 0 {
			t.Fatalf("burst %d: %q: want %d tasks answered, none refused", i, f, per)
		}
		ok += o
		lost += bad
	}
	relReport(t, map[string]any{"tasks": 2 * per, "results": ok, "lost": lost, "kills": kills})
	if lost > kills {
		t.Fatalf("%d tasks lost with %d kills: a task worker holds one task at a time", lost, kills)
	}
}

// TestReliabilityConnectClose: many connect/close cycles (with one echo each) leave the
// server's descriptors and goroutines where they started, in every mode.
func TestReliabilityConnectClose(t *testing.T) {
	sc := reliabilityScale()
	for _, mode := range []string{"base", "process"} {
		t.Run(mode, func(t *testing.T) {
			ms := mpStart(t, mpEnvWorkers+"=2", mpEnvMode+"="+mode)
			// The processes that hold the connections: the workers (ModeBase), the master.
			var holders []int
			for _, pid := range currentWorkerPIDs(ms) {
				holders = append(holders, pid)
			}
			if mode == "process" {
				holders = []int{ms.Manager}
			}
			fds := func() (n int) {
				for _, pid := range holders {
					ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
					n += len(ents)
				}
				return n
			}
			rss := func() (n int) {
				for _, pid := range holders {
					n += mpRSS(pid)
				}
				return n
			}
			cycle := func() {
				c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(ms.Port), mpTimeout)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(mpTimeout))
				if _, err := c.Write([]byte("echo x\n")); err != nil {
					t.Fatal(err)
				}
				if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "x\n" {
					t.Fatalf("echo: %q, %v", line, err)
				}
			}
			for range 50 { // warm up: pools and tables at their working size
				cycle()
			}
			goroutines := func() int {
				c := ms.dial()
				defer c.c.Close()
				f := c.do("goroutines")
				if len(f) != 2 {
					t.Fatalf("goroutines: %q", f)
				}
				return atoi(f[1])
			}
			start, g0 := fds(), goroutines()
			rss0 := rss()
			// Two halves: memory that a leak would take keeps growing in the second, memory
			// the runtime keeps for its peak (and returns to the system over minutes) does not.
			per := sc.cycles / 16
			half := func() {
				var wg sync.WaitGroup
				for range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range per {
							cycle()
						}
					}()
				}
				wg.Wait()
			}
			half()
			rssHalf := rss()
			half()
			ms.eventually("descriptors back to their start", func() bool { return fds() <= start })
			// A worker's goroutines (the probe's own connection aside) are as many as before.
			ms.eventually("goroutines back to their start", func() bool { return goroutines() <= g0 })
			rss1 := rss()
			relReport(t, map[string]any{"mode": mode, "cycles": 16 * per, "fds_start": start, "fds_end": fds(),
				"goroutines_start": g0, "goroutines_end": goroutines(), "rss_start_kib": rss0, "rss_half_kib": rssHalf, "rss_end_kib": rss1})
		})
	}
}

// mpRSS returns a process's resident set in KiB (0 when unknown).
func mpRSS(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// TestReliabilityBinaryUpgrades: five binary upgrades (a new executable renamed over the old,
// then SIGUSR1) under echoing connections (ModeProcess): every worker runs the new code after
// each, no connection is dropped, no request goes unanswered, every reply is byte-exact.
func TestReliabilityBinaryUpgrades(t *testing.T) {
	sc := reliabilityScale()
	dir := t.TempDir()
	bin := filepath.Join(dir, "server")
	orig, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	tag := func(i int) []byte { return []byte(fmt.Sprintf("goswoole-build-tag:%08d", i)) }
	first := []byte("goswoole-build-tag:" + strings.Repeat("A", 8))
	if bytes.Count(orig, first) != 1 {
		t.Fatalf("the build tag appears %d times in the test binary", bytes.Count(orig, first))
	}
	if err := os.WriteFile(bin, orig, 0o755); err != nil {
		t.Fatal(err)
	}
	ms := mpStartBinary(t, bin, "echo", "managerstart", mpEnvMode+"=process", mpEnvWorkers+"=4")
	ms.eventually("every worker's workerstart", func() bool { return len(currentWorkerPIDs(ms)) == 4 })
	l := startRelLoad(t, ms.Port, sc.conns, mpTimeout)
	ms.eventually("load running", func() bool { return l.answered.Load() >= int64(sc.conns) })
	probe := ms.dial()
	const upgrades = 5
	for i := 1; i <= upgrades; i++ {
		next := bytes.Replace(orig, first, tag(i), 1)
		if err := os.WriteFile(bin+".new", next, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(bin+".new", bin); err != nil {
			t.Fatal(err)
		}
		before := currentWorkerPIDs(ms)
		ms.signal(syscall.SIGUSR1)
		waitAllReplaced(ms, before)
		if f := probe.do("version"); len(f) != 2 || f[1] != string(tag(i)) {
			t.Fatalf("after upgrade %d: version %q, want %s", i, f, tag(i))
		}
	}
	l.finishLossless(ms, sc.conns, map[string]any{"upgrades": upgrades, "conns": sc.conns})
}

// TestReliabilityMasterKill: SIGKILL to the master of a ModeProcess server with workers and
// task workers: every process of the tree is gone soon after (each child watches a lifeline
// to its parent); the figure is how long the last one took.
func TestReliabilityMasterKill(t *testing.T) {
	ms := taskStart(t, mpEnvMode+"=process", taskEnvTasks+"=2", mpEnvWorkers+"=4")
	ms.eventually("every process started", func() bool { return len(ms.workerPIDs()) >= 6 })
	pids := ms.workerPIDs()
	start := time.Now()
	ms.signal(syscall.SIGKILL)
	ms.wait(mpTimeout)
	for _, pid := range pids {
		if !mpGoneWithin(pid, 5*time.Second) {
			t.Fatalf("process %d outlived the master killed with SIGKILL by 5 s", pid)
		}
	}
	took := time.Since(start)
	relReport(t, map[string]any{"processes": len(pids), "all_gone_ms": took.Milliseconds()})
}
