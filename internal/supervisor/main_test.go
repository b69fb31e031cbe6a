//go:build linux

package supervisor_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/supervisor"
)

// Environment of the test children.
const (
	envChild     = "GOSWOOLE_TEST_CHILD"      // echo-gen (default) | exit1 | ignore-term | manager
	envTermDelay = "GOSWOOLE_TEST_TERM_DELAY" // echo-gen: how long to linger after SIGTERM
	envSlots     = "GOSWOOLE_TEST_SLOTS"      // manager: the children's modes, comma-separated
)

func TestMain(m *testing.M) {
	if role, ok := supervisor.Current(); ok {
		os.Exit(runChild(role))
	}
	// Orphaned grandchildren (TestParentKilled) are re-parented to this process instead of
	// PID 1, so the tests can reap them and read how they died.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "PR_SET_CHILD_SUBREAPER:", err)
		os.Exit(2)
	}
	// A race-enabled binary sleeps 1 s before exiting (atexit_sleep_ms): the children
	// inherit GORACE without it, so that each exit is not a second-long wait.
	if g := os.Getenv("GORACE"); !strings.Contains(g, "atexit_sleep_ms") {
		os.Setenv("GORACE", strings.TrimSpace(g+" atexit_sleep_ms=0"))
	}
	goleak.VerifyTestMain(m,
		// The process-wide spawner of supervisor.Spawn lives as long as the process.
		goleak.IgnoreAnyFunction("github.com/goswoole/swoole/internal/supervisor.(*Spawner).loop"))
}

// runChild is the test binary acting as a spawned child. It returns the exit status.
//
//	echo-gen     write "role pid gen uid ppid" to the inherited "report" file, exit 0 on
//	             SIGTERM (after envTermDelay)
//	exit1        exit 1 at once
//	ignore-term  report, ignore SIGTERM, exit 3 when the lifeline closes
//	manager      report, then run a Manager whose slots are worker:i in envSlots' modes
func runChild(role supervisor.Role) int {
	mode := os.Getenv(envChild)
	if mode == "exit1" {
		return 1
	}
	lifelineExit := 1
	if mode == "ignore-term" {
		lifelineExit = 3
	}
	if err := supervisor.WatchLifeline(func() { os.Exit(lifelineExit) }); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 6
	}
	report, ok := supervisor.Inherited("report")
	if ok {
		if _, again := supervisor.Inherited("report"); again {
			fmt.Fprintln(os.Stderr, "child: Inherited handed out the same file twice")
			return 5
		}
	}
	say := func() {
		if report != nil {
			fmt.Fprintf(report, "%s %d %d %d %d\n", role, os.Getpid(), supervisor.Generation(), os.Getuid(), os.Getppid())
		}
	}
	switch mode {
	case "manager":
		return runManagerChild(report, say)
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		say()
		for {
			time.Sleep(time.Hour)
		}
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	say()
	<-term
	if d, err := time.ParseDuration(os.Getenv(envTermDelay)); err == nil {
		time.Sleep(d)
	}
	return 0
}

func runManagerChild(report *os.File, say func()) int {
	var slots []supervisor.SlotSpec
	for i, mode := range strings.Split(os.Getenv(envSlots), ",") {
		spec := supervisor.SlotSpec{
			Role:  supervisor.Role{Kind: supervisor.KindWorker, ID: i},
			Files: supervisor.Files{"report": report},
			Spawn: supervisor.SpawnOptions{Env: []string{envChild + "=" + mode}},
		}
		if mode == "ignore-term" {
			spec.Spawn.DeathSignal = syscall.SIGTERM
		}
		slots = append(slots, spec)
	}
	m := supervisor.NewManager(supervisor.ManagerConfig{
		Slots:       slots,
		MaxWaitTime: time.Second,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	ctx := context.Background()
	supervisor.HandleSignals(ctx, m, true)
	say()
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "manager child:", err)
		return 4
	}
	return 0
}

// ---- helpers ----

// report is one line a child wrote to the "report" pipe.
type report struct {
	Role                string
	PID, Gen, UID, PPID int
}

// reporter reads the lines children write to the pipe they inherit as "report".
type reporter struct {
	t    *testing.T
	r, w *os.File
	done chan struct{} // closed at EOF: every holder of the write end is gone

	mu    sync.Mutex
	lines []report
}

func newReporter(t *testing.T) *reporter {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	rp := &reporter{t: t, r: r, w: w, done: make(chan struct{})}
	go func() {
		defer close(rp.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var l report
			if _, err := fmt.Sscanf(sc.Text(), "%s %d %d %d %d", &l.Role, &l.PID, &l.Gen, &l.UID, &l.PPID); err != nil {
				t.Errorf("bad report line %q: %v", sc.Text(), err)
				continue
			}
			rp.mu.Lock()
			rp.lines = append(rp.lines, l)
			rp.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		rp.closeWriter()
		select {
		case <-rp.done:
		case <-time.After(10 * time.Second):
			t.Errorf("report pipe still open 10 s after the test: some child outlived it")
		}
		for _, l := range rp.all() {
			killStraggler(t, l.PID)
		}
		<-rp.done
		r.Close()
	})
	return rp
}

func (rp *reporter) closeWriter() { rp.w.Close() }

func (rp *reporter) all() []report {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return slices.Clone(rp.lines)
}

// find waits for a line that matches.
func (rp *reporter) find(timeout time.Duration, what string, match func(report) bool) report {
	rp.t.Helper()
	var got report
	waitUntil(rp.t, timeout, what, func() bool {
		for _, l := range rp.all() {
			if match(l) {
				got = l
				return true
			}
		}
		return false
	})
	return got
}

// role finds the first line of a role whose pid is not in not.
func (rp *reporter) role(role string, not ...int) report {
	rp.t.Helper()
	return rp.find(15*time.Second, "a report from "+role, func(l report) bool {
		return l.Role == role && !slices.Contains(not, l.PID)
	})
}

// waitEOF waits until every holder of the pipe's write end is gone.
func (rp *reporter) waitEOF(timeout time.Duration) {
	rp.t.Helper()
	select {
	case <-rp.done:
	case <-time.After(timeout):
		rp.t.Fatalf("report pipe still open after %v", timeout)
	}
}

// waitUntil polls cond until it holds or the timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gone reports whether no process has the pid any more (kill(pid, 0) fails with ESRCH).
func gone(pid int) bool { return errors.Is(unix.Kill(pid, 0), unix.ESRCH) }

// killStraggler kills a process that outlived its test (a failure) and reaps it if it is
// our child or was re-parented to us.
func killStraggler(t *testing.T, pid int) {
	if pid <= 0 || gone(pid) {
		return
	}
	var ws unix.WaitStatus
	if n, _ := unix.Wait4(pid, &ws, unix.WNOHANG, nil); n == pid {
		return // a zombie re-parented to us: now reaped
	}
	t.Errorf("pid %d outlived its test: killing it", pid)
	unix.Kill(pid, unix.SIGKILL)
	unix.Wait4(pid, &ws, 0, nil)
}

// events records the Manager's callbacks.
type events struct {
	mu   sync.Mutex
	list []event

	before, after int
}

type event struct {
	Kind      string // "start" or "exit"
	Slot, PID int
	Code, Sig int
	Expected  bool
	At        time.Time
}

func (e *events) hook(cfg *supervisor.ManagerConfig) {
	cfg.OnStart = func(slot, pid int) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.list = append(e.list, event{Kind: "start", Slot: slot, PID: pid, At: time.Now()})
	}
	cfg.OnExit = func(slot, pid, code, sig int, expected bool) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.list = append(e.list, event{Kind: "exit", Slot: slot, PID: pid, Code: code, Sig: sig, Expected: expected, At: time.Now()})
	}
	cfg.BeforeReload = func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.before++
	}
	cfg.AfterReload = func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.after++
	}
}

func (e *events) all() []event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list)
}

func (e *events) reloads() (before, after int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.before, e.after
}

// exitOf waits for the exit event of pid.
func (e *events) exitOf(t *testing.T, pid int) event {
	t.Helper()
	var got event
	waitUntil(t, 15*time.Second, "the exit of pid "+strconv.Itoa(pid), func() bool {
		for _, ev := range e.all() {
			if ev.Kind == "exit" && ev.PID == pid {
				got = ev
				return true
			}
		}
		return false
	})
	return got
}

func (e *events) count(kind string) int {
	n := 0
	for _, ev := range e.all() {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

// tlog is a slog handler output that writes to t.Log and, when set, to a buffer.
type tlog struct {
	t  *testing.T
	mu sync.Mutex
	sb strings.Builder
}

func (w *tlog) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.sb.Write(p)
	w.mu.Unlock()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func (w *tlog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sb.String()
}

func testLogger(t *testing.T) (*slog.Logger, *tlog) {
	w := &tlog{t: t}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})), w
}

// slots returns n slot specs of kind whose children run mode and inherit rp's pipe.
func slots(rp *reporter, kind supervisor.Kind, first, n int, mode string, env ...string) []supervisor.SlotSpec {
	var s []supervisor.SlotSpec
	for i := range n {
		s = append(s, supervisor.SlotSpec{
			Role:  supervisor.Role{Kind: kind, ID: first + i},
			Files: supervisor.Files{"report": rp.w},
			Spawn: supervisor.SpawnOptions{Env: append([]string{envChild + "=" + mode}, env...)},
		})
	}
	return s
}

// startManager runs a Manager for cfg; the test's cleanup shuts it down and checks that
// Run returned nil and no child is left.
func startManager(t *testing.T, cfg supervisor.ManagerConfig) *supervisor.Manager {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger, _ = testLogger(t)
	}
	m := supervisor.NewManager(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	errc := make(chan error, 1)
	go func() { errc <- m.Run(ctx) }()
	t.Cleanup(func() {
		defer cancel()
		pids := m.PIDs()
		shut := make(chan error, 1)
		go func() { shut <- m.Shutdown() }()
		select {
		case err := <-shut:
			if err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Shutdown did not return within 20 s")
			for _, pid := range pids {
				killStraggler(t, pid)
			}
			<-shut
		}
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
		for slot, pid := range pids {
			if !gone(pid) {
				t.Errorf("slot %d: pid %d still exists after Shutdown", slot, pid)
			}
		}
	})
	return m
}

// waitReady waits until every one of n slots has a child that has reported (so its signal
// handlers are in place) and returns their pids.
func waitReady(t *testing.T, m *supervisor.Manager, rp *reporter, n int) map[int]int {
	t.Helper()
	var pids map[int]int
	waitUntil(t, 15*time.Second, strconv.Itoa(n)+" children ready", func() bool {
		pids = m.PIDs()
		if len(pids) != n {
			return false
		}
		for _, pid := range pids {
			if !slices.ContainsFunc(rp.all(), func(l report) bool { return l.PID == pid }) {
				return false
			}
		}
		return true
	})
	return pids
}
