//go:build linux

package supervisor_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/supervisor"
)

func TestSpawnWorkers(t *testing.T) {
	rp := newReporter(t)
	var ev events
	cfg := supervisor.ManagerConfig{
		Slots: append(slots(rp, supervisor.KindWorker, 0, 2, "echo-gen"),
			append(slots(rp, supervisor.KindTaskWorker, 2, 1, "echo-gen"),
				slots(rp, supervisor.KindUserProcess, 0, 1, "echo-gen")...)...),
	}
	ev.hook(&cfg)
	m := startManager(t, cfg)
	pids := waitReady(t, m, rp, 4)

	want := []string{"worker:0", "worker:1", "task:2", "process:0"}
	for slot, role := range want {
		l := rp.role(role)
		if l.PID != pids[slot] || l.Gen != 0 || l.PPID != os.Getpid() {
			t.Errorf("slot %d: report %+v, want pid %d gen 0 ppid %d", slot, l, pids[slot], os.Getpid())
		}
	}
	st := m.Status()
	if len(st) != 4 {
		t.Fatalf("Status has %d slots", len(st))
	}
	for i, s := range st {
		if s.ID != i || s.Role.String() != want[i] || s.PID != pids[i] || s.State != supervisor.SlotRunning || s.Restarts != 0 {
			t.Errorf("Status[%d] = %+v", i, s)
		}
	}
	waitUntil(t, 5*time.Second, "4 OnStart", func() bool { return ev.count("start") == 4 })

	if err := m.Shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for slot, pid := range pids {
		if !gone(pid) {
			t.Errorf("slot %d pid %d exists after Shutdown", slot, pid)
		}
		if e := ev.exitOf(t, pid); !e.Expected || e.Code != 0 || e.Sig != 0 || e.Slot != slot {
			t.Errorf("exit of slot %d: %+v, want expected exit 0", slot, e)
		}
	}
	if got := m.PIDs(); len(got) != 0 {
		t.Errorf("PIDs after Shutdown = %v", got)
	}
	if err := m.Reload(); !errors.Is(err, supervisor.ErrStopped) {
		t.Errorf("Reload after Shutdown = %v, want ErrStopped", err)
	}
	rp.closeWriter()
	rp.waitEOF(5 * time.Second)
}

func TestRestartAfterSIGKILL(t *testing.T) {
	rp := newReporter(t)
	var ev events
	cfg := supervisor.ManagerConfig{Slots: slots(rp, supervisor.KindWorker, 0, 2, "echo-gen")}
	ev.hook(&cfg)
	m := startManager(t, cfg)
	pids := waitReady(t, m, rp, 2)
	old := rp.role("worker:1")

	if err := unix.Kill(old.PID, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e := ev.exitOf(t, old.PID)
	if e.Slot != 1 || e.Sig != int(syscall.SIGKILL) || e.Code != 0 || e.Expected {
		t.Errorf("OnExit = %+v, want slot 1, signal 9, unexpected", e)
	}
	// The new child writes through the same inherited pipe.
	nw := rp.role("worker:1", old.PID)
	if nw.Gen != 0 {
		t.Errorf("restarted child has gen %d, want 0 (a crash is not a reload)", nw.Gen)
	}
	if got := m.PIDs(); got[1] != nw.PID || got[0] != pids[0] {
		t.Errorf("PIDs = %v, want slot 0 %d, slot 1 %d", got, pids[0], nw.PID)
	}
	if st := m.Status()[1]; st.Restarts != 1 || st.State != supervisor.SlotRunning {
		t.Errorf("Status[1] = %+v, want 1 restart, running", st)
	}
}

func TestStopSlot(t *testing.T) {
	rp := newReporter(t)
	var ev events
	cfg := supervisor.ManagerConfig{Slots: slots(rp, supervisor.KindWorker, 0, 2, "echo-gen", envTermDelay+"=400ms")}
	cfg.Slots[1].Restart = supervisor.RestartNever
	ev.hook(&cfg)
	m := startManager(t, cfg)
	pids := waitReady(t, m, rp, 2)

	// wait=false: SIGTERM, exit 0, expected, replaced by the policy.
	if err := m.StopSlot(0, false); err != nil {
		t.Fatal(err)
	}
	if e := ev.exitOf(t, pids[0]); !e.Expected || e.Code != 0 || e.Sig != 0 {
		t.Errorf("exit after StopSlot = %+v, want expected exit 0", e)
	}
	second := rp.role("worker:0", pids[0])

	// RestartNever: not replaced.
	if err := m.StopSlot(1, false); err != nil {
		t.Fatal(err)
	}
	if e := ev.exitOf(t, pids[1]); !e.Expected {
		t.Errorf("exit of slot 1 = %+v, want expected", e)
	}
	if st := m.Status()[1]; st.State != supervisor.SlotEmpty || st.PID != 0 {
		t.Errorf("Status[1] = %+v, want empty", st)
	}
	if _, ok := m.PIDs()[1]; ok {
		t.Errorf("PIDs has slot 1 after it stopped for good")
	}

	// wait=true: the replacement starts first, the old child drains beside it.
	if err := m.StopSlot(0, true); err != nil {
		t.Fatal(err)
	}
	st := m.Status()[0]
	if st.PID == second.PID || !slices.Contains(st.Retiring, second.PID) {
		t.Errorf("right after StopSlot(0, true): %+v, want a new pid and %d retiring", st, second.PID)
	}
	third := rp.role("worker:0", pids[0], second.PID)
	if !slices.ContainsFunc(ev.all(), func(e event) bool { return e.Kind == "start" && e.PID == third.PID }) {
		t.Errorf("no OnStart for %d", third.PID)
	}
	if e := ev.exitOf(t, second.PID); !e.Expected {
		t.Errorf("exit of the drained child = %+v, want expected", e)
	}
	if st := m.Status()[0]; st.PID != third.PID || len(st.Retiring) != 0 || st.Restarts != 2 {
		t.Errorf("Status[0] = %+v", st)
	}

	if err := m.StopSlot(7, false); !errors.Is(err, supervisor.ErrNoSlot) {
		t.Errorf("StopSlot(7) = %v, want ErrNoSlot", err)
	}
}

func TestReloadAsync(t *testing.T) {
	rp := newReporter(t)
	var ev events
	cfg := supervisor.ManagerConfig{
		Slots: append(slots(rp, supervisor.KindWorker, 0, 3, "echo-gen", envTermDelay+"=700ms"),
			slots(rp, supervisor.KindTaskWorker, 3, 1, "echo-gen")...),
	}
	ev.hook(&cfg)
	var afterOK []bool // every old pid gone when AfterReload runs; appended on the callback goroutine
	var oldPIDs []int
	cfg.AfterReload = func() {
		ok := true
		for _, pid := range oldPIDs {
			ok = ok && gone(pid)
		}
		ev.mu.Lock()
		ev.after++
		afterOK = append(afterOK, ok)
		ev.mu.Unlock()
	}
	m := startManager(t, cfg)
	pids := waitReady(t, m, rp, 4)
	oldPIDs = []int{pids[0], pids[1], pids[2]}

	if err := m.Reload(supervisor.KindWorker); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if err := m.Reload(); !errors.Is(err, supervisor.ErrReloading) {
		t.Errorf("Reload during a reload = %v, want ErrReloading", err)
	}
	if err := m.ReloadRolling(); !errors.Is(err, supervisor.ErrReloading) {
		t.Errorf("ReloadRolling during a reload = %v, want ErrReloading", err)
	}
	// Replacements are running while the old ones drain (they linger 700 ms after SIGTERM).
	st := m.Status()
	for slot := range 3 {
		if st[slot].PID == pids[slot] || st[slot].Gen != 1 || !slices.Contains(st[slot].Retiring, pids[slot]) {
			t.Errorf("during the reload Status[%d] = %+v, want new pid, gen 1, %d retiring", slot, st[slot], pids[slot])
		}
	}
	if st[3].PID != pids[3] || st[3].Gen != 0 {
		t.Errorf("task slot touched by a worker reload: %+v", st[3])
	}

	waitUntil(t, 15*time.Second, "AfterReload", func() bool { _, a := ev.reloads(); return a == 1 })
	for slot := range 3 {
		l := rp.role("worker:"+strconv.Itoa(slot), pids[slot])
		if l.Gen != 1 {
			t.Errorf("slot %d: new child reports gen %d, want 1", slot, l.Gen)
		}
		if e := ev.exitOf(t, pids[slot]); !e.Expected || e.Code != 0 {
			t.Errorf("old child of slot %d: %+v", slot, e)
		}
	}
	ev.mu.Lock()
	if ev.before != 1 || len(afterOK) != 1 || !afterOK[0] {
		t.Errorf("BeforeReload %d times, AfterReload %v (want once, with every old pid gone)", ev.before, afterOK)
	}
	ev.mu.Unlock()

	// The reload is over: another one is accepted, and the task slot reloads alone.
	if err := m.Reload(supervisor.KindTaskWorker); err != nil {
		t.Fatalf("second Reload: %v", err)
	}
	waitUntil(t, 15*time.Second, "second AfterReload", func() bool { _, a := ev.reloads(); return a == 2 })
	if l := rp.role("task:3", pids[3]); l.Gen != 1 {
		t.Errorf("task child gen %d, want 1", l.Gen)
	}
}

func TestReloadRolling(t *testing.T) {
	rp := newReporter(t)
	var ev events
	cfg := supervisor.ManagerConfig{Slots: slots(rp, supervisor.KindWorker, 0, 3, "echo-gen", envTermDelay+"=150ms")}
	ev.hook(&cfg)
	m := startManager(t, cfg)
	pids := waitReady(t, m, rp, 3)
	waitUntil(t, 5*time.Second, "3 OnStart", func() bool { return ev.count("start") == 3 })

	if err := m.ReloadRolling(supervisor.KindWorker); err != nil {
		t.Fatalf("ReloadRolling: %v", err)
	}
	if err := m.ReloadRolling(supervisor.KindWorker); !errors.Is(err, supervisor.ErrReloading) {
		t.Errorf("ReloadRolling during a reload = %v, want ErrReloading", err)
	}
	if err := m.Reload(); !errors.Is(err, supervisor.ErrReloading) {
		t.Errorf("Reload during a rolling reload = %v, want ErrReloading", err)
	}
	waitUntil(t, 15*time.Second, "AfterReload", func() bool { _, a := ev.reloads(); return a == 1 })

	// One at a time: old 0 exits, new 0 starts, old 1 exits, ...
	var got []string
	for _, e := range ev.all()[3:] {
		got = append(got, e.Kind+":"+strconv.Itoa(e.Slot))
		if e.Kind == "exit" && (!e.Expected || e.PID != pids[e.Slot]) {
			t.Errorf("unexpected exit event %+v", e)
		}
	}
	want := []string{"exit:0", "start:0", "exit:1", "start:1", "exit:2", "start:2"}
	if !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	for slot := range 3 {
		if l := rp.role("worker:"+strconv.Itoa(slot), pids[slot]); l.Gen != 1 {
			t.Errorf("slot %d gen %d, want 1", slot, l.Gen)
		}
	}
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	rp := newReporter(t)
	var ev events
	cfg := supervisor.ManagerConfig{
		Slots:       slots(rp, supervisor.KindWorker, 0, 1, "ignore-term"),
		MaxWaitTime: 300 * time.Millisecond,
	}
	ev.hook(&cfg)
	m := startManager(t, cfg)
	first := rp.role("worker:0")

	start := time.Now()
	if err := m.StopSlot(0, false); err != nil {
		t.Fatal(err)
	}
	e := ev.exitOf(t, first.PID)
	if took := e.At.Sub(start); e.Sig != int(syscall.SIGKILL) || !e.Expected || took < 300*time.Millisecond {
		t.Errorf("exit %+v after %v, want expected SIGKILL after MaxWaitTime", e, took)
	}
	second := rp.role("worker:0", first.PID)

	start = time.Now()
	if err := m.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 600*time.Millisecond || took > 10*time.Second {
		t.Errorf("Shutdown took %v, want about 2 × MaxWaitTime", took)
	}
	if e := ev.exitOf(t, second.PID); e.Sig != int(syscall.SIGKILL) || !e.Expected {
		t.Errorf("exit at shutdown %+v, want expected SIGKILL", e)
	}
	if !gone(second.PID) {
		t.Errorf("pid %d exists after Shutdown", second.PID)
	}
}

func TestShutdownLeavesNoProcess(t *testing.T) {
	rp := newReporter(t)
	cfg := supervisor.ManagerConfig{
		Slots: append(slots(rp, supervisor.KindWorker, 0, 3, "echo-gen", envTermDelay+"=50ms"),
			slots(rp, supervisor.KindUserProcess, 0, 1, "ignore-term")...),
		MaxWaitTime: 200 * time.Millisecond,
	}
	m := startManager(t, cfg)
	pids := waitReady(t, m, rp, 4)
	rp.role("process:0") // it ignores SIGTERM from now on
	// A reload in progress is abandoned by the shutdown.
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Status() {
		pids[100+s.ID] = s.PID
	}
	if err := m.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for slot, pid := range pids {
		if !gone(pid) {
			t.Errorf("slot %d pid %d exists after Shutdown", slot%100, pid)
		}
	}
	rp.closeWriter()
	rp.waitEOF(5 * time.Second) // nobody holds the pipe: no descendant at all is left
}

func TestCrashLoopBackoff(t *testing.T) {
	rp := newReporter(t)
	var ev events
	logger, logs := testLogger(t)
	cfg := supervisor.ManagerConfig{
		Slots:     slots(rp, supervisor.KindWorker, 0, 1, "exit1"),
		CrashLoop: supervisor.CrashLoop{Window: 10 * time.Second, Limit: 3, MaxDelay: 800 * time.Millisecond},
		Logger:    logger,
	}
	ev.hook(&cfg)
	m := startManager(t, cfg)

	// 3 fast exits restart at once; then 100, 200, 400 ms delays.
	waitUntil(t, 20*time.Second, "6 starts", func() bool { return ev.count("start") >= 6 })
	var starts []time.Time
	for _, e := range ev.all() {
		switch e.Kind {
		case "start":
			starts = append(starts, e.At)
		case "exit":
			if e.Code != 1 || e.Expected {
				t.Errorf("exit %+v, want unexpected exit 1", e)
			}
		}
	}
	for i, min := range map[int]time.Duration{3: 100 * time.Millisecond, 4: 200 * time.Millisecond, 5: 400 * time.Millisecond} {
		if gap := starts[i].Sub(starts[i-1]); gap < min {
			t.Errorf("start %d came %v after the previous one, want at least %v", i, gap, min)
		}
	}
	waitUntil(t, 10*time.Second, "slot in backoff", func() bool { return m.Status()[0].State == supervisor.SlotBackoff })
	if !strings.Contains(logs.String(), "delaying its restart") {
		t.Errorf("no crash-loop warning in the log")
	}
	// Shutdown does not wait for the backoff.
	start := time.Now()
	if err := m.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Shutdown during backoff took %v", took)
	}
}

func TestSignals(t *testing.T) {
	rp := newReporter(t)
	var ev events
	cfg := supervisor.ManagerConfig{
		Slots: append(slots(rp, supervisor.KindWorker, 0, 1, "echo-gen"),
			slots(rp, supervisor.KindTaskWorker, 1, 1, "echo-gen")...),
	}
	ev.hook(&cfg)
	m := startManager(t, cfg)
	done := supervisor.HandleSignals(t.Context(), m, true)
	pids := waitReady(t, m, rp, 2)

	// SIGUSR1: workers and task workers.
	unix.Kill(os.Getpid(), unix.SIGUSR1)
	waitUntil(t, 15*time.Second, "AfterReload after SIGUSR1", func() bool { _, a := ev.reloads(); return a == 1 })
	w1, t1 := rp.role("worker:0", pids[0]), rp.role("task:1", pids[1])

	// SIGUSR2: task workers only.
	unix.Kill(os.Getpid(), unix.SIGUSR2)
	waitUntil(t, 15*time.Second, "AfterReload after SIGUSR2", func() bool { _, a := ev.reloads(); return a == 2 })
	t2 := rp.role("task:1", pids[1], t1.PID)
	if got := m.PIDs(); got[0] != w1.PID || got[1] != t2.PID || t2.Gen != 2 {
		t.Errorf("after SIGUSR2 PIDs = %v (task gen %d), want worker %d kept, task %d gen 2", got, t2.Gen, w1.PID, t2.PID)
	}

	// SIGTERM: shutdown; the handler stops with the manager.
	unix.Kill(os.Getpid(), unix.SIGTERM)
	select {
	case <-m.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("SIGTERM did not shut the manager down")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("HandleSignals did not stop after the manager")
	}
	for _, pid := range []int{w1.PID, t2.PID} {
		if !gone(pid) {
			t.Errorf("pid %d exists after SIGTERM", pid)
		}
	}
}

func TestHandleSignalsStopsWithContext(t *testing.T) {
	m := supervisor.NewManager(supervisor.ManagerConfig{})
	ctx, cancel := context.WithCancel(t.Context())
	done := supervisor.HandleSignals(ctx, m, false)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("HandleSignals did not stop with its context")
	}
	if err := m.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(t.Context()); err != nil {
		t.Errorf("Run after Shutdown = %v, want nil at once", err)
	}
	if err := m.Reload(); !errors.Is(err, supervisor.ErrStopped) {
		t.Errorf("Reload on a finished manager = %v, want ErrStopped", err)
	}
}

func TestManagerNotRunning(t *testing.T) {
	m := supervisor.NewManager(supervisor.ManagerConfig{})
	if err := m.Reload(); !errors.Is(err, supervisor.ErrNotRunning) {
		t.Errorf("Reload before Run = %v", err)
	}
	if err := m.StopSlot(0, false); !errors.Is(err, supervisor.ErrNotRunning) {
		t.Errorf("StopSlot before Run = %v", err)
	}
	if len(m.PIDs()) != 0 || m.Status() != nil {
		t.Errorf("PIDs/Status before Run not empty")
	}
}

func TestRunStartFailure(t *testing.T) {
	rp := newReporter(t)
	var ev events
	cfg := supervisor.ManagerConfig{Slots: slots(rp, supervisor.KindWorker, 0, 2, "echo-gen")}
	cfg.Slots[1].Spawn.Path = "/nonexistent/server"
	ev.hook(&cfg)
	cfg.Logger, _ = testLogger(t)
	m := supervisor.NewManager(cfg)
	err := m.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "worker:1") {
		t.Fatalf("Run = %v, want the spawn error of worker:1", err)
	}
	starts := ev.all()
	if len(starts) != 2 || starts[0].Kind != "start" || starts[1].Kind != "exit" || !starts[1].Expected {
		t.Errorf("events %+v, want slot 0 started then stopped", starts)
	}
	if len(starts) > 0 && !gone(starts[0].PID) {
		t.Errorf("slot 0's child %d survived the failed start", starts[0].PID)
	}
	if err2 := m.Shutdown(); err2 != err {
		t.Errorf("Shutdown = %v, want Run's error", err2)
	}
	if err := m.Run(t.Context()); !errors.Is(err, supervisor.ErrAlreadyRun) {
		t.Errorf("second Run = %v, want ErrAlreadyRun", err)
	}
}
