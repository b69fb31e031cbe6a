package swoole_test

// ModeProcess servers as real process trees: a master holding the connections (the test's
// child) and worker processes (its children). See multiproc_helpers_test.go.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

func syscallKill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// reactorModes are the modes whose reactors hold every connection while workers run the
// callbacks: ModeProcess (worker processes) and ModeThread (worker loops). The suites that
// hold for both run in each (forReactorModes).
var reactorModes = []string{"process", "thread"}

func forReactorModes(t *testing.T, fn func(t *testing.T, mode string)) {
	for _, mode := range reactorModes {
		t.Run(mode, func(t *testing.T) { fn(t, mode) })
	}
}

// mpModeStart starts the echo server in mode ("process" or "thread") with env added.
func mpModeStart(t *testing.T, mode string, env ...string) *mpServer {
	t.Helper()
	return mpStart(t, append([]string{mpEnvMode + "=" + mode}, env...)...)
}

// mpProcStart starts the echo server in ModeProcess with env added.
func mpProcStart(t *testing.T, env ...string) *mpServer {
	t.Helper()
	return mpStart(t, append([]string{mpEnvMode + "=process"}, env...)...)
}

func TestModeProcessEcho(t *testing.T) {
	ms := mpProcStart(t)
	workers := map[int]int{} // worker id → pid
	var cs []*mpClient
	for i := range 8 {
		c := ms.dial()
		cs = append(cs, c)
		msg := fmt.Sprintf("hello-%d", i)
		if f := c.do("echo " + msg); len(f) != 1 || f[0] != msg {
			t.Fatalf("echo: %q, want %q", f, msg)
		}
		id, pid, _ := c.who()
		workers[id] = pid
	}
	if len(workers) != 2 {
		t.Fatalf("8 connections reached workers %v: want both workers", workers)
	}
	for id, pid := range workers {
		if pid == ms.Manager {
			t.Fatalf("worker %d runs in the master (pid %d)", id, pid)
		}
	}
	// A timer made in the master (OnStart) fires there.
	if e := ms.waitEvent("master-after", nil); e.PID != ms.Manager {
		t.Fatalf("the master's timer fired in pid %d, want %d", e.PID, ms.Manager)
	}
	f := cs[0].do("pids")
	if len(f) != 5 || atoi(f[1]) != ms.Manager || atoi(f[2]) != ms.Manager {
		t.Fatalf("pids %q: want master = manager = %d", f, ms.Manager)
	}
	if f := cs[0].do("stats"); len(f) != 6 || f[1] != "2" || f[2] != "8" {
		t.Fatalf("stats %q: want worker_num 2, connection_num 8", f)
	}
	_, _, fd := cs[1].who()
	if f := cs[0].do("info " + strconv.FormatInt(fd, 10)); len(f) != 3 || (f[1] != "0" && f[1] != "1") {
		t.Fatalf("info of session %d: %q, want reactor 0 or 1", fd, f)
	}
}

// whoN asks who serves the connection n times and returns the worker ids in order.
func whoN(c *mpClient, n int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i], _, _ = c.who()
	}
	return ids
}

func TestReactorModesDispatchFDMod(t *testing.T) {
	forReactorModes(t, func(t *testing.T, mode string) {
		ms := mpModeStart(t, mode, mpEnvDispatch+"=2")
		seen := map[int]bool{}
		for range 6 {
			c := ms.dial()
			ids := whoN(c, 10)
			for _, id := range ids {
				if id != ids[0] {
					t.Fatalf("dispatch_mode 2 moved a connection between workers: %v", ids)
				}
			}
			seen[ids[0]] = true
		}
		if len(seen) != 2 {
			t.Fatalf("6 connections all went to worker(s) %v: fd modulo must use both", seen)
		}
	})
}

func TestReactorModesDispatchRoundRobin(t *testing.T) {
	forReactorModes(t, func(t *testing.T, mode string) {
		ms := mpModeStart(t, mode, mpEnvDispatch+"=1", mpEnvReactors+"=1")
		c := ms.dial()
		ids := whoN(c, 10)
		for i := 1; i < len(ids); i++ {
			if ids[i] == ids[i-1] {
				t.Fatalf("dispatch_mode 1: consecutive packets went to the same worker: %v", ids)
			}
		}
	})
}

func TestReactorModesDispatchIdle(t *testing.T) {
	forReactorModes(t, func(t *testing.T, mode string) {
		ms := mpModeStart(t, mode, mpEnvDispatch+"=3", mpEnvReactors+"=1")
		busy, other := ms.dial(), ms.dial()
		// Hold one worker in a callback; every packet meanwhile must go to the other, idle one.
		// Held until the test is done (a gate file), not for a time a loaded machine can
		// outlast.
		gate := ms.dir + "/gate"
		busy.send("hold " + gate)
		busyID := ms.waitEvent("holding", nil).int(0)
		ids := whoN(other, 10)
		if err := os.WriteFile(gate, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if id == busyID {
				t.Fatalf("dispatch_mode 3 sent a packet to the busy worker %d: %v", busyID, ids)
			}
		}
		if f := busy.read(); len(f) != 1 || f[0] != "held" {
			t.Fatalf("hold: %q", f)
		}
	})
}

func TestReactorModesDispatchIPMod(t *testing.T) {
	forReactorModes(t, func(t *testing.T, mode string) {
		ms := mpModeStart(t, mode, mpEnvDispatch+"=4")
		// 127.0.0.1 = 0x7f000001: odd, so worker 1 of 2, whatever the connection.
		for range 5 {
			c := ms.dial()
			for _, id := range whoN(c, 3) {
				if id != 1 {
					t.Fatalf("dispatch_mode 4: a 127.0.0.1 connection reached worker %d, want 1", id)
				}
			}
		}
	})
}

func TestReactorModesDispatchUIDMod(t *testing.T) {
	forReactorModes(t, func(t *testing.T, mode string) {
		ms := mpModeStart(t, mode, mpEnvDispatch+"=5")
		for uid := 1; uid <= 4; uid++ {
			c := ms.dial()
			if f := c.do("bind " + strconv.Itoa(uid)); len(f) != 2 || f[1] != "0" {
				t.Fatalf("bind %d: %q", uid, f)
			}
			for _, id := range whoN(c, 4) {
				if id != uid%2 {
					t.Fatalf("dispatch_mode 5: uid %d reached worker %d, want %d", uid, id, uid%2)
				}
			}
			if f := c.do("bind 9"); len(f) != 2 || f[1] == "0" {
				t.Fatalf("a second bind must fail: %q", f)
			}
		}
	})
}

func TestReactorModesDispatchFunc(t *testing.T) {
	forReactorModes(t, func(t *testing.T, mode string) {
		ms := mpModeStart(t, mode, mpEnvDispFunc+"=1", mpEnvConnEvents+"=1")
		c := ms.dial()
		for range 3 {
			if f := c.do("to0"); len(f) != 2 || f[1] != "0" {
				t.Fatalf("to0: %q", f)
			}
			if f := c.do("to1"); len(f) != 2 || f[1] != "1" {
				t.Fatalf("to1: %q", f)
			}
		}
		// -1 drops the packet and keeps the connection; an invalid id drops it too.
		c.send("drop")
		c.send("bad")
		if f := c.do("echo still-here"); len(f) != 1 || f[0] != "still-here" {
			t.Fatalf("after dropped packets: %q", f)
		}
		_, _, fd := c.who()
		ms.waitEvent("connect", func(e mpEv) bool { return e.Fields[1] == strconv.FormatInt(fd, 10) })
		ms.waitEvent("dispatchfunc", func(e mpEv) bool { return e.Fields[0] == strconv.FormatInt(fd, 10) && e.Fields[1] == "5" })
		// -2 closes the connection.
		c.send("kill")
		if _, err := c.readLine(); err == nil {
			t.Fatal("dispatch_func -2 must close the connection")
		}
		ms.waitEvent("close", func(e mpEv) bool { return e.Fields[1] == strconv.FormatInt(fd, 10) })
		ms.waitEvent("dispatchfunc", func(e mpEv) bool { return e.Fields[0] == strconv.FormatInt(fd, 10) && e.Fields[1] == "4" })
	})
}

// OnConnect and OnClose reach the worker that serves the connection (dispatch_mode 2);
// inside OnClose GetClientInfo still works, Send fails with 1004 and Close with 1003.
func TestReactorModesConnectClose(t *testing.T) {
	forReactorModes(t, func(t *testing.T, mode string) {
		ms := mpModeStart(t, mode, mpEnvConnEvents+"=1")
		c := ms.dial()
		id, _, fd := c.who()
		sfd := strconv.FormatInt(fd, 10)
		ms.waitEvent("connect", func(e mpEv) bool { return e.Fields[1] == sfd && e.int(0) == id })
		c.c.Close()
		e := ms.waitEvent("close", func(e mpEv) bool { return e.Fields[1] == sfd })
		if e.int(0) != id || e.int(2) < 0 || e.Fields[3] != "0" || e.Fields[4] != "1004" || e.Fields[5] != "1003" {
			t.Fatalf("close event %q: want worker %d, reactor ≥ 0, GetClientInfo ok, Send 1004, Close 1003", e.Fields, id)
		}
		// A server-side Close: OnClose gets reactor id -1.
		c2, c3 := ms.dial(), ms.dial()
		_, _, fd2 := c2.who()
		if f := c3.do("close " + strconv.FormatInt(fd2, 10)); len(f) != 2 || f[1] != "0" {
			t.Fatalf("close: %q", f)
		}
		e = ms.waitEvent("close", func(e mpEv) bool { return e.Fields[1] == strconv.FormatInt(fd2, 10) })
		if e.Fields[2] != "-1" {
			t.Fatalf("OnClose after Close: reactor id %s, want -1", e.Fields[2])
		}
		if f := c3.do("stats"); len(f) != 6 || f[2] != "1" {
			t.Fatalf("stats after two closes: %q, want connection_num 1", f)
		}
	})
}

// A worker killed with SIGKILL: the master keeps every connection, the manager's work
// (OnWorkerError, a replacement with the same id) happens in the master, and the requests
// queued for the dead worker are answered by its replacement.
func TestModeProcessWorkerKilled(t *testing.T) {
	ms := mpProcStart(t, mpEnvDispatch+"=2")
	// Connections by worker (fd modulo: stable).
	byWorker := map[int][]*mpClient{}
	for i := 0; i < 40 && (len(byWorker[0]) < 4 || len(byWorker[1]) < 4); i++ {
		c := ms.dial()
		id, _, _ := c.who()
		byWorker[id] = append(byWorker[id], c)
	}
	if len(byWorker[0]) < 4 || len(byWorker[1]) < 4 {
		t.Fatalf("connections per worker: %d and %d", len(byWorker[0]), len(byWorker[1]))
	}
	_, victim, _ := byWorker[0][0].who()
	// Hold worker 0 in a callback, queue requests behind it, then kill it.
	byWorker[0][0].send("sleep 60000")
	ms.waitEvent("sleeping", func(e mpEv) bool { return e.PID == victim })
	for i, c := range byWorker[0][1:] {
		c.send(fmt.Sprintf("echo queued-%d", i))
	}
	// Load on the other worker's connections all through the kill and the restart.
	stop := make(chan struct{})
	loadDone := make(chan error, 1)
	var progress atomic.Int64
	go func() {
		_, err := mpLoad(ms, byWorker[1], 100000, stop, &progress)
		loadDone <- err
	}()
	ms.eventually("load running", func() bool { return progress.Load() >= 100 })
	if err := syscallKill(victim); err != nil {
		t.Fatal(err)
	}
	e := ms.waitEvent("workererror", func(e mpEv) bool { return e.int(1) == victim })
	if e.int(0) != 0 || e.int(3) != 9 || e.PID != ms.Manager {
		t.Fatalf("workererror %q in pid %d: want worker 0, signal 9, in the master %d", e.Fields, e.PID, ms.Manager)
	}
	// Every request queued for the dead worker is answered by its replacement, on the
	// same connections.
	for i, c := range byWorker[0][1:] {
		want := fmt.Sprintf("queued-%d", i)
		if f := c.read(); len(f) != 1 || f[0] != want {
			t.Fatalf("queued request %d: %q, want %q", i, f, want)
		}
	}
	at := progress.Load()
	ms.eventually("load after the restart", func() bool { return progress.Load() >= at+100 })
	close(stop)
	if err := <-loadDone; err != nil {
		t.Fatalf("load on worker 1 during the kill: %v", err)
	}
	// Every connection is still open and served; worker 0 is a new process.
	for id, cs := range byWorker {
		for i, c := range cs {
			gotID, pid, _ := c.who()
			if gotID != id || pid == victim {
				t.Fatalf("connection %d of worker %d: served by worker %d pid %d after the kill", i, id, gotID, pid)
			}
		}
	}
	if f := byWorker[1][0].do("stats"); len(f) != 6 || atoi(f[2]) != len(byWorker[0])+len(byWorker[1]) {
		t.Fatalf("stats %q: every connection must still be open", f)
	}
}

// mpLoad runs n clients that each send echo requests until stop closes (at most max each),
// depth at a time (pipelined: the replies must come back in order), checking every reply; it
// returns the number answered and the first failure.
func mpLoad(ms *mpServer, cs []*mpClient, max int, stop <-chan struct{}, progress *atomic.Int64, depth ...int) (answered int, err error) {
	d := 1
	if len(depth) > 0 {
		d = depth[0]
	}
	type res struct {
		n   int
		err error
	}
	out := make(chan res, len(cs))
	for ci, c := range cs {
		go func() {
			n := 0
			for i := 0; i < max; i += d {
				select {
				case <-stop:
					out <- res{n, nil}
					return
				default:
				}
				_ = c.c.SetDeadline(time.Now().Add(mpTimeout))
				var req []byte
				for j := range d {
					req = fmt.Appendf(req, "echo c%d-r%d\n", ci, i+j)
				}
				if _, err := c.c.Write(req); err != nil {
					out <- res{n, fmt.Errorf("client %d request %d: write: %v", ci, i, err)}
					return
				}
				for j := range d {
					want := fmt.Sprintf("c%d-r%d", ci, i+j)
					l, err := c.readLine()
					if err != nil || l != want {
						out <- res{n, fmt.Errorf("client %d request %d: got %q, %v; want %q", ci, i+j, l, err, want)}
						return
					}
					n++
					progress.Add(1)
				}
			}
			out <- res{n, nil}
		}()
	}
	for range cs {
		r := <-out
		answered += r.n
		if err == nil {
			err = r.err
		}
	}
	return answered, err
}

// A reload under load keeps every connection (ModeProcess): clients keep sending while every
// worker is replaced, and every request is answered.
func TestModeProcessReloadUnderLoad(t *testing.T) {
	ms := mpProcStart(t)
	old := map[int]bool{}
	for _, pid := range ms.workerPIDs() {
		old[pid] = true
	}
	var cs []*mpClient
	for range 20 {
		cs = append(cs, ms.dial())
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	var answered int
	var loadErr error
	var progress atomic.Int64
	go func() {
		// Half the clients pipeline 8 requests: their replies must stay in order while two
		// processes of one worker id exist (the new one reads the pipe once the old let go).
		var a1, a2 int
		var e1, e2 error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); a1, e1 = mpLoad(ms, cs[:10], 100000, stop, &progress) }()
		go func() { defer wg.Done(); a2, e2 = mpLoad(ms, cs[10:], 100000, stop, &progress, 8) }()
		wg.Wait()
		answered, loadErr = a1+a2, errors.Join(e1, e2)
		close(done)
	}()
	ms.eventually("load running", func() bool { return progress.Load() >= 200 })
	ms.signal(syscall.SIGUSR1)
	ms.waitEvent("afterreload", nil)
	for pid := range old {
		if !mpGoneWithin(pid, mpTimeout) {
			t.Fatalf("old worker %d still exists after the reload", pid)
		}
	}
	// A second reload while the load goes on.
	ms.signal(syscall.SIGUSR1)
	ms.eventually("a second afterreload", func() bool { return ms.count("afterreload", nil) == 2 })
	at := progress.Load()
	ms.eventually("load after the reloads", func() bool { return progress.Load() >= at+200 })
	close(stop)
	<-done
	if loadErr != nil {
		t.Fatalf("under reload: %v (after %d answers)", loadErr, answered)
	}
	t.Logf("%d requests answered on 20 connections across two reloads", answered)
	for i, c := range cs {
		if _, pid, _ := c.who(); old[pid] {
			t.Fatalf("connection %d is served by an old worker %d", i, pid)
		}
	}
}

// The binary upgrade: replace the executable on disk, send SIGUSR1, and the same open
// connections are answered by the new code.
func TestModeProcessBinaryUpgrade(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "server")
	orig, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	tag := []byte("goswoole-build-tag:" + strings.Repeat("A", 8))
	if bytes.Count(orig, tag) != 1 {
		t.Fatalf("the build tag appears %d times in the test binary", bytes.Count(orig, tag))
	}
	if err := os.WriteFile(bin, orig, 0o755); err != nil {
		t.Fatal(err)
	}
	ms := mpStartBinary(t, bin, "echo", "managerstart", mpEnvMode+"=process")
	var cs []*mpClient
	for range 4 {
		c := ms.dial()
		if f := c.do("version"); len(f) != 2 || f[1] != string(tag) {
			t.Fatalf("version before the upgrade: %q", f)
		}
		cs = append(cs, c)
	}
	// Write the new binary beside the old and rename it over (what a deploy does).
	upgraded := bytes.Replace(orig, tag, []byte("goswoole-build-tag:"+strings.Repeat("B", 8)), 1)
	if err := os.WriteFile(bin+".new", upgraded, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bin+".new", bin); err != nil {
		t.Fatal(err)
	}
	ms.signal(syscall.SIGUSR1)
	ms.waitEvent("afterreload", nil)
	for i, c := range cs {
		if f := c.do("version"); len(f) != 2 || f[1] != "goswoole-build-tag:BBBBBBBB" {
			t.Fatalf("connection %d after the upgrade: %q, want the new build", i, f)
		}
	}
}

func TestModeProcessSIGTERM(t *testing.T) {
	ms := mpProcStart(t, mpEnvConnEvents+"=1")
	c := ms.dial()
	_, _, fd := c.who()
	pids := ms.workerPIDs()
	ms.signal(syscall.SIGTERM)
	if st := ms.wait(mpTimeout); st.ExitCode() != 0 {
		t.Fatalf("master exit status %v", st)
	}
	for _, pid := range pids {
		if !mpGoneWithin(pid, 5*time.Second) {
			t.Fatalf("worker %d outlived the master", pid)
		}
	}
	// The connection was closed by the shutdown, and its OnClose ran in a worker.
	if l, err := c.readLine(); err == nil {
		t.Fatalf("read %q after shutdown", l)
	}
	if ms.count("close", func(e mpEv) bool { return e.Fields[1] == strconv.FormatInt(fd, 10) }) != 1 {
		t.Errorf("OnClose of session %d did not run once at shutdown", fd)
	}
	order := []string{}
	for _, e := range ms.events() {
		switch e.Name {
		case "beforeshutdown", "managerstop", "shutdown", "exit":
			order = append(order, e.Name)
		}
	}
	if strings.Join(order, ",") != "beforeshutdown,managerstop,shutdown,exit" {
		t.Fatalf("shutdown events %v", order)
	}
}

func TestModeProcessMasterKilled(t *testing.T) {
	mpKillTopAndCheck(t, mpProcStart(t), "master")
}

func TestModeProcessMaxRequest(t *testing.T) {
	ms := mpProcStart(t, mpEnvMaxRequest+"=10", mpEnvDispatch+"=2")
	c := ms.dial()
	_, first, _ := c.who()
	for range 12 {
		c.do("echo x")
	}
	// The replacement starts first, then the old worker stops; the connection stays.
	ms.eventually("a replacement worker", func() bool { return ms.count("workerstart", nil) >= 3 })
	if !mpGoneWithin(first, mpTimeout) {
		t.Fatalf("the worker was not replaced after max_request 10")
	}
	if _, now, _ := c.who(); now == first {
		t.Fatalf("the old worker still serves")
	}
	if n := ms.count("workererror", nil); n != 0 {
		t.Fatalf("%d workererror events: max_request is not an error", n)
	}
}

// Task workers, user processes and SendMessage in ModeProcess: the same scenarios as in
// ModeBase (task_test.go, multiproc_userproc_test.go), with the master holding the
// connections.
func TestModeProcessTasks(t *testing.T) {
	ms := taskStart(t, mpEnvMode+"=process", taskEnvMode+"=1", taskEnvTasks+"=2")
	var clients []*mpClient
	for range 4 {
		clients = append(clients, ms.dial())
	}
	for _, c := range clients {
		c.send("burst 500 50 echo")
	}
	for _, c := range clients {
		taskWantFields(t, "burst", c.read(), "burst", "500", "0", "0")
	}
}

func TestModeProcessBroadcastExample(t *testing.T) {
	ms := upStart(t, mpEnvMode+"=process")
	ms.upPID(0)
	clients := make([]*mpClient, 4)
	for i := range clients {
		clients[i] = ms.dial()
	}
	for round := range 3 {
		msg := fmt.Sprintf("hello-%d", round)
		clients[round].send("relay " + msg)
		for i, c := range clients {
			if f := c.read(); len(f) != 1 || f[0] != msg {
				t.Fatalf("client %d got %q, want %q", i, f, msg)
			}
		}
	}
	wantFields(t, clients[0].do("ask ping"), "answer", "ping")
	// SendMessage between workers and Command to the master (the master's own pid).
	c := clients[0]
	id, _, _ := c.who()
	wantFields(t, c.do("cmd getpid 2 0 master"), "cmd", "0", "pid="+strconv.Itoa(ms.Manager), "data=master")
	wantFields(t, c.do(fmt.Sprintf("cmd getpid 8 %d w", 1-id)), "cmd", "0", "pid="+c.do("pids")[3+1-id], "data=w")
}

// The heartbeat in ModeProcess: the master's reactors close idle connections (OnClose in a
// worker with reactor id ≥ 0), and Heartbeat in a worker lists and closes through them.
func TestModeProcessHeartbeat(t *testing.T) {
	t.Run("automatic", func(t *testing.T) {
		ms := mpProcStart(t, mpEnvHeartbeat+"=100,400", mpEnvConnEvents+"=1")
		idle, busy := ms.dial(), ms.dial()
		_, _, fd := idle.who()
		sfd := strconv.FormatInt(fd, 10)
		deadline := time.Now().Add(mpTimeout)
		for ms.count("close", func(e mpEv) bool { return e.Fields[1] == sfd }) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the idle connection %d was not closed by the heartbeat", fd)
			}
			busy.do("echo alive") // keeps this one active (one round trip per look)
		}
		e := ms.waitEvent("close", func(e mpEv) bool { return e.Fields[1] == sfd })
		if e.int(2) < 0 {
			t.Fatalf("OnClose after the automatic heartbeat: reactor id %d, want ≥ 0", e.int(2))
		}
		if f := busy.do("echo still"); len(f) != 1 || f[0] != "still" {
			t.Fatalf("the active connection: %q", f)
		}
	})
	t.Run("Heartbeat", func(t *testing.T) {
		ms := mpProcStart(t, mpEnvHeartbeat+"=60000,300", mpEnvConnEvents+"=1")
		idle, busy := ms.dial(), ms.dial()
		_, _, fd := idle.who()
		sfd := strconv.FormatInt(fd, 10)
		var f []string
		ms.eventually("the idle connection listed", func() bool {
			f = busy.do("heartbeat")
			return slices.Contains(f, sfd)
		})
		if f[1] != "0" {
			t.Fatalf("Heartbeat(false): %q", f)
		}
		busy.do("heartbeatclose")
		e := ms.waitEvent("close", func(e mpEv) bool { return e.Fields[1] == sfd })
		if e.Fields[2] != "-1" {
			t.Fatalf("OnClose after Heartbeat(true): reactor id %s, want -1", e.Fields[2])
		}
		if _, err := idle.readLine(); err == nil {
			t.Fatal("the idle connection is still open")
		}
	})
}

// mpUDPProcessServer is a ModeProcess UDP server with two workers: each datagram is answered
// by the worker it was dispatched to, with SendTo on the port's socket: "w<id> <data>".
func mpUDPProcessServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeProcess, swoole.SockUDP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	if err := s.Set(swoole.Settings{WorkerNum: 2, LogLevel: swoole.LogLevelWarning, DispatchMode: swoole.DispatchRoundRobin}); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	s.OnStart(func(s *swoole.Server) { mpEvent("ready", port) })
	s.OnWorkerStart(func(s *swoole.Server, id int) { mpEvent("workerstart", id) })
	s.OnPacket(func(s *swoole.Server, data []byte, client swoole.ClientAddr) {
		reply := fmt.Sprintf("w%d %s %s", s.GetWorkerID(), data, client.Address)
		if err := s.SendTo(client.Address, client.Port, []byte(reply), client.ServerSocket); err != nil {
			mpEvent("sendto-error", mpCode(err))
		}
	})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

func TestModeProcessUDP(t *testing.T) {
	ms := mpStartServer(t, "udpproc", "ready")
	ms.eventually("two workers", func() bool { return ms.count("workerstart", nil) == 2 })
	c, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(ms.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seen := map[string]bool{}
	buf := make([]byte, 256)
	for i := range 6 {
		msg := fmt.Sprintf("ping-%d", i)
		_ = c.SetDeadline(time.Now().Add(mpTimeout))
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		f := strings.Fields(string(buf[:n]))
		if len(f) != 3 || f[1] != msg || f[2] != "127.0.0.1" {
			t.Fatalf("reply %q", buf[:n])
		}
		seen[f[0]] = true
	}
	if !seen["w0"] || !seen["w1"] {
		t.Fatalf("round-robin datagrams reached only %v", seen)
	}
}

// max_queued_bytes: while a worker is busy, the master stops reading a connection once more
// than that many of its bytes wait in the worker's pipe (recv_queued_bytes shows them), and
// reads on when the worker catches up: nothing is lost, order is kept.
func TestModeProcessMaxQueuedBytes(t *testing.T) {
	ms := mpProcStart(t, mpEnvMaxQueued+"=2000", mpEnvDispatch+"=2")
	byWorker := map[int][]*mpClient{}
	for i := 0; i < 40 && (len(byWorker[0]) == 0 || len(byWorker[1]) == 0); i++ {
		c := ms.dial()
		id, _, _ := c.who()
		byWorker[id] = append(byWorker[id], c)
	}
	slow, watcher := byWorker[0][0], byWorker[1][0]
	_, pid0, fd := slow.who()
	slow.send("sleep 800")
	ms.waitEvent("sleeping", func(e mpEv) bool { return e.PID == pid0 })
	// 3000 lines of 100 bytes: 300 KB, far more than the limit and than one read (64 KiB).
	const lines = 3000
	line := strings.Repeat("x", 92)
	var batch bytes.Buffer
	for i := range lines {
		fmt.Fprintf(&batch, "echo %04d%s\n", i, line[:92-6])
	}
	wrote := make(chan error, 1)
	go func() { // blocks once the kernel's buffers are full, until the master reads again
		_ = slow.c.SetWriteDeadline(time.Now().Add(mpTimeout))
		_, err := slow.c.Write(batch.Bytes())
		wrote <- err
	}()
	// While the worker sleeps, watch recv_queued_bytes from the other worker: it must climb
	// past the limit (the bytes wait for the busy worker) and stop near it (the master
	// stopped reading; one read of up to 64 KiB may go past it once).
	slept := make(chan []string, 1)
	go func() { slept <- slow.read() }()
	maxQ := 0
	deadline := time.Now().Add(mpTimeout)
	var f []string
	for f == nil {
		select {
		case f = <-slept:
		default:
			if time.Now().After(deadline) {
				t.Fatal("the sleeping worker never answered")
			}
			maxQ = max(maxQ, atoi(watcher.do("queued " + strconv.FormatInt(fd, 10))[1]))
		}
	}
	if len(f) != 1 || f[0] != "slept" {
		t.Fatalf("sleep: %q", f)
	}
	if maxQ <= 2000 || maxQ > 2000+64<<10+100 {
		t.Fatalf("recv_queued_bytes peaked at %d with max_queued_bytes 2000 and %d bytes sent: want above the limit and at most one read past it", maxQ, batch.Len())
	}
	t.Logf("recv_queued_bytes peaked at %d (max_queued_bytes 2000, %d bytes sent)", maxQ, batch.Len())
	for i := range lines {
		want := fmt.Sprintf("%04d%s", i, line[:92-6])
		if f := slow.read(); len(f) != 1 || f[0] != want {
			t.Fatalf("line %d: %q", i, f)
		}
	}
	if err := <-wrote; err != nil {
		t.Fatalf("writing the lines: %v", err)
	}
	ms.eventually("queue empty", func() bool { return watcher.do("queued " + strconv.FormatInt(fd, 10))[1] == "0" })
}

// Large data both ways through the master: a 1 MiB frame to a worker (chunked over the
// pipe) and 4 × 1 MiB sent back by the worker, byte for byte.
func TestModeProcessLargeMessages(t *testing.T) {
	ms := mpProcStart(t)
	c := ms.dial()
	_, _, fd := c.who()
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	_ = c.c.SetDeadline(time.Now().Add(mpTimeout))
	go func() { _, _ = c.c.Write([]byte("echo " + big + "\n")) }()
	l, err := c.readLine()
	if err != nil || l != big {
		t.Fatalf("1 MiB echo: %d bytes back, %v", len(l), err)
	}
	c.send(fmt.Sprintf("flood %d 4 %d", fd, 1<<20))
	for i := range 4 {
		l, err := c.readLine()
		want := strings.Repeat(string(rune('a'+i)), 1<<20-1)
		if err != nil || l != want {
			t.Fatalf("flood message %d: %d bytes, %v", i, len(l), err)
		}
	}
	if f := c.read(); len(f) != 2 || f[0] != "flooded" || f[1] != "0" {
		t.Fatalf("flood: %q", f)
	}
}

// Pause/Resume, SendFile and Protect from a worker reach the master's reactor; with
// enable_delay_receive the connection is read only after the worker's Confirm.
func TestModeProcessConnectionControl(t *testing.T) {
	ms := mpProcStart(t, mpEnvDelayRecv+"=1", mpEnvHeartbeat+"=100,300")
	a, b := ms.dial(), ms.dial()
	// Both were confirmed in OnConnect (in a worker), else nothing would be read.
	_, _, fdb := b.who()
	sfd := strconv.FormatInt(fdb, 10)
	if e := ms.waitEvent("confirm", func(e mpEv) bool { return e.Fields[0] == sfd }); e.Fields[1] != "0" {
		t.Fatalf("Confirm in OnConnect: %q", e.Fields)
	}
	// Pause b: what it sends waits in the kernel until Resume.
	wantFields(t, a.do("pause "+sfd), "pause", "0")
	b.send("echo after-resume")
	_ = b.c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if l, err := b.r.ReadString('\n'); err == nil {
		t.Fatalf("a paused connection was read: %q", l)
	}
	wantFields(t, a.do("resume "+sfd), "resume", "0")
	if f := b.read(); len(f) != 1 || f[0] != "after-resume" {
		t.Fatalf("after Resume: %q", f)
	}
	// SendFile from a worker: the reactor sends the file.
	path := filepath.Join(t.TempDir(), "f")
	body := strings.Repeat("sendfile-line\n", 1000)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	b.send("sendfile " + sfd + " " + path)
	for i := range 1000 {
		if l, err := b.readLine(); err != nil || l != "sendfile-line" {
			t.Fatalf("file line %d: %q, %v", i, l, err)
		}
	}
	if f := b.read(); len(f) != 2 || f[1] != "0" {
		t.Fatalf("sendfile: %q", f)
	}
	// Protect: the heartbeat (idle 300 ms) spares b, and closes an unprotected idle c.
	c := ms.dial()
	_, _, fdc := c.who()
	wantFields(t, a.do("protect "+sfd), "protect", "0")
	deadline := time.Now().Add(mpTimeout)
	for {
		_ = c.c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.r.ReadString('\n'); err != nil && !os.IsTimeout(err) {
			break // closed by the heartbeat
		}
		if time.Now().After(deadline) {
			t.Fatalf("the idle, unprotected session %d was never closed", fdc)
		}
		a.do("echo keep-a-alive")
	}
	if f := b.do("echo protected"); len(f) != 1 || f[0] != "protected" {
		t.Fatalf("the protected idle connection: %q", f)
	}
}

// During a reload the replacement of a worker reads the pipe only once the old process has
// let go: a connection's requests are answered in order even while the old process is still
// busy with one of them.
func TestModeProcessReloadKeepsOrder(t *testing.T) {
	ms := mpProcStart(t, mpEnvDispatch+"=2")
	c := ms.dial()
	id, old, _ := c.who()
	c.send("sleep 700")
	ms.waitEvent("sleeping", func(e mpEv) bool { return e.PID == old })
	ms.signal(syscall.SIGUSR1)
	ms.waitEvent("workerstart", func(e mpEv) bool { return e.int(0) == id && e.PID != old })
	c.send("echo after")
	if f := c.read(); len(f) != 1 || f[0] != "slept" {
		t.Fatalf("first reply %q, want slept: a later request was answered first", f)
	}
	if f := c.read(); len(f) != 1 || f[0] != "after" {
		t.Fatalf("second reply %q, want after", f)
	}
	if _, pid, _ := c.who(); pid == old {
		t.Fatalf("the old worker %d still serves after the reload", old)
	}
}

// A callback that panics kills its worker process (as an uncaught panic does in Go): the
// master reports it (OnWorkerError, exit code 2), starts another, and keeps the connection.
func TestModeProcessWorkerPanics(t *testing.T) {
	ms := mpProcStart(t, mpEnvDispatch+"=2")
	ms.allowPanic = true
	c := ms.dial()
	id, pid, _ := c.who()
	c.send("panic test")
	e := ms.waitEvent("workererror", func(e mpEv) bool { return e.int(1) == pid })
	if e.int(0) != id || e.int(2) != 2 || e.int(3) != 0 {
		t.Fatalf("workererror %q: want worker %d, exit code 2, no signal", e.Fields, id)
	}
	if f := c.do("echo still-connected"); len(f) != 1 || f[0] != "still-connected" {
		t.Fatalf("after the panic: %q", f)
	}
	if _, now, _ := c.who(); now == pid {
		t.Fatal("the panicked worker still answers")
	}
}

// TestModeProcessHeldReplyFlushed: a worker holds the replies of one batch of events until the
// batch ends, but a slow callback must not hold back a reply made before it: the batch's
// flush timer sends it within about a millisecond.
func TestModeProcessHeldReplyFlushed(t *testing.T) {
	ms := mpProcStart(t, mpEnvWorkers+"=1", mpEnvReactors+"=1")
	c := ms.dial()
	c.who()                // the connection is up and served
	for round := range 2 { // twice: the second batch re-arms the same timer
		// Two requests in one write: one read of the master, one batch of the worker.
		c.send("echo first\nsleep 1500")
		ms.eventually("the worker is in its slow callback", func() bool { return ms.count("sleeping", nil) == round+1 })
		_ = c.c.SetReadDeadline(time.Now().Add(time.Second))
		l, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatalf("round %d: the reply made before a 1.5 s callback did not arrive within 1 s of that callback's start (%v): held replies are not flushed while a batch runs", round, err)
		}
		if l != "first\n" {
			t.Fatalf("round %d: first reply %q, want \"first\"", round, l)
		}
		if f := c.read(); len(f) != 1 || f[0] != "slept" {
			t.Fatalf("round %d: second reply %q, want \"slept\"", round, f)
		}
	}
}
