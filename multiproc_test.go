package swoole_test

// Multi-process ModeBase servers (worker_num > 1, max_request), as real process trees: see
// multiproc_helpers_test.go for how a test starts one. Each test runs a manager (a child of
// the test process) and its workers (grandchildren), talks to them over loopback and reads
// what happened in each process from the events file.

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// mpSpread opens connections until both workers of a two-worker server hold at least one, and
// returns them by worker id.
func mpSpread(t *testing.T, ms *mpServer) map[int][]*mpClient {
	t.Helper()
	byWorker := map[int][]*mpClient{}
	for i := 0; i < 200 && (len(byWorker[0]) == 0 || len(byWorker[1]) == 0); i++ {
		c := ms.dial()
		id, _, _ := c.who()
		byWorker[id] = append(byWorker[id], c)
	}
	if len(byWorker[0]) == 0 || len(byWorker[1]) == 0 {
		t.Fatalf("200 connections did not reach both workers: %d on worker 0, %d on worker 1", len(byWorker[0]), len(byWorker[1]))
	}
	return byWorker
}

func TestMultiProcEcho(t *testing.T) {
	ms := mpStart(t)
	byWorker := mpSpread(t, ms)
	total := len(byWorker[0]) + len(byWorker[1])
	t.Logf("connections: %d on worker 0, %d on worker 1", len(byWorker[0]), len(byWorker[1]))

	pids := map[int]int{}
	for id, cs := range byWorker {
		for i, c := range cs {
			msg := fmt.Sprintf("w%d-c%d", id, i)
			if f := c.do("echo " + msg); len(f) != 1 || f[0] != msg {
				t.Fatalf("echo on worker %d: %q, want %q", id, f, msg)
			}
			gotID, pid, _ := c.who()
			if gotID != id {
				t.Fatalf("a connection moved from worker %d to %d", id, gotID)
			}
			if pids[id] != 0 && pids[id] != pid {
				t.Fatalf("worker %d answered from pids %d and %d", id, pids[id], pid)
			}
			pids[id] = pid
		}
	}
	if pids[0] == pids[1] || pids[0] == ms.Manager || pids[1] == ms.Manager {
		t.Fatalf("worker pids %v, manager %d: want three processes", pids, ms.Manager)
	}
	// In the manager: Stats, GetWorkerID (-1: not a worker) and GetWorkerPID from the table.
	if e := ms.waitEvent("managerstart", nil); !slices.Equal(e.Fields[2:], []string{"2", "-1", strconv.Itoa(pids[0])}) {
		t.Errorf("managerstart %q: want worker_num 2, worker id -1, worker 0's pid %d", e.Fields, pids[0])
	}

	// Stats read the shared table: every process counts every worker's connections.
	for id := range 2 {
		f := byWorker[id][0].do("stats")
		if len(f) != 6 || f[1] != "2" || atoi(f[2]) != total {
			t.Fatalf("stats from worker %d: %q, want worker_num 2 and connection_num %d", id, f, total)
		}
		if atoi(f[4]) < atoi(f[5]) || atoi(f[5]) == 0 {
			t.Errorf("stats from worker %d: request_count %s, worker_request_count %s", id, f[4], f[5])
		}
	}
	// GetClientInfo of another worker's connection: its reactor id is its owner.
	_, _, fd1 := byWorker[1][0].who()
	if f := byWorker[0][0].do("info " + strconv.FormatInt(fd1, 10)); len(f) != 3 || f[1] != "1" {
		t.Fatalf("info of worker 1's session %d from worker 0: %q, want reactor id 1", fd1, f)
	}
	// Pids: master = worker 0 (Swoole's BASE), manager = the process that called Start.
	f := byWorker[1][0].do("pids")
	want := []string{"pids", strconv.Itoa(pids[0]), strconv.Itoa(ms.Manager), strconv.Itoa(pids[0]), strconv.Itoa(pids[1])}
	if !slices.Equal(f, want) {
		t.Fatalf("pids: %q, want %q (master = worker 0, manager, workers)", f, want)
	}
	if n := ms.count("start", nil); n != 1 {
		t.Errorf("OnStart ran %d times, want once (in worker 0)", n)
	}
	if e := ms.waitEvent("start", nil); e.PID != pids[0] {
		t.Errorf("OnStart ran in pid %d, want worker 0 (%d)", e.PID, pids[0])
	}
}

func TestMultiProcCrossWorker(t *testing.T) {
	ms := mpStart(t)
	byWorker := mpSpread(t, ms)
	a, b := byWorker[0][0], byWorker[1][0]
	_, _, fdB := b.who()
	_, _, fdA := a.who()

	// Send from worker 0 to a connection of worker 1, and back.
	if f := a.do(fmt.Sprintf("send %d from-a", fdB)); !slices.Equal(f, []string{"sent", "0"}) {
		t.Fatalf("send to worker 1's session: %q", f)
	}
	if f := b.read(); !slices.Equal(f, []string{"from-a"}) {
		t.Fatalf("worker 1's client got %q, want from-a", f)
	}
	if f := b.do(fmt.Sprintf("send %d from-b", fdA)); !slices.Equal(f, []string{"sent", "0"}) {
		t.Fatalf("send to worker 0's session: %q", f)
	}
	if f := a.read(); !slices.Equal(f, []string{"from-b"}) {
		t.Fatalf("worker 0's client got %q, want from-b", f)
	}
	// An unknown session is refused on the sender's side.
	if f := a.do("send 999999 x"); !slices.Equal(f, []string{"sent", "1005"}) {
		t.Fatalf("send to an unknown session: %q, want 1005", f)
	}

	// A broadcast over Connections() from one worker reaches every client of both.
	var all []*mpClient
	for _, cs := range byWorker {
		all = append(all, cs...)
	}
	a.send("bcast hello-all")
	var summary []string
	for _, c := range all {
		f := c.read()
		if c == a && len(f) > 0 && f[0] == "bcast" { // the sender may see its summary first
			summary = f
			f = c.read()
		}
		if !slices.Equal(f, []string{"hello-all"}) {
			t.Fatalf("broadcast: a client got %q", f)
		}
	}
	if summary == nil {
		summary = a.read()
	}
	if want := []string{"bcast", strconv.Itoa(len(all)), "0"}; !slices.Equal(summary, want) {
		t.Fatalf("broadcast summary %q, want %q", summary, want)
	}

	// SendMessage between workers: OnPipeMessage runs in the target with the sender's id.
	if f := a.do("msg 1 ping-1"); !slices.Equal(f, []string{"msg", "0"}) {
		t.Fatalf("SendMessage to worker 1: %q", f)
	}
	ms.waitEvent("pipemessage", func(e mpEv) bool {
		return slices.Equal(e.Fields, []string{"1", "0", "ping-1"})
	})
	ms.waitEvent("pipemessage", func(e mpEv) bool { // sent by the manager in ManagerStart
		return slices.Equal(e.Fields, []string{"0", "-1", "from-manager"})
	})
	if f := a.do("msg 0 self"); !slices.Equal(f, []string{"msg", "503"}) {
		t.Fatalf("SendMessage to itself: %q, want 503", f)
	}
	if f := a.do("msg 2 nobody"); !slices.Equal(f, []string{"msg", "503"}) {
		t.Fatalf("SendMessage out of range: %q, want 503", f)
	}

	// Close of another worker's connection: its client sees the end, the table forgets it.
	if f := a.do(fmt.Sprintf("close %d", fdB)); !slices.Equal(f, []string{"closed", "0"}) {
		t.Fatalf("close worker 1's session: %q", f)
	}
	if l, err := b.readLine(); err == nil {
		t.Fatalf("worker 1's client read %q after its session was closed by worker 0", l)
	}
	ms.eventually("the closed session leaves the table", func() bool {
		f := a.do("info " + strconv.FormatInt(fdB, 10))
		return len(f) == 3 && f[1] == "-1" && f[2] == "1005"
	})
}

func TestMultiProcWorkerKilled(t *testing.T) {
	ms := mpStart(t)
	byWorker := mpSpread(t, ms)
	total := len(byWorker[0]) + len(byWorker[1])
	victim := byWorker[1][0]
	_, pid, _ := victim.who()

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e := ms.waitEvent("workererror", nil)
	if e.PID != ms.Manager || !slices.Equal(e.Fields, []string{"1", strconv.Itoa(pid), "0", "9"}) {
		t.Fatalf("workererror event %+v, want in the manager (%d) with worker 1, pid %d, exit code 0, signal 9", e, ms.Manager, pid)
	}
	ne := ms.waitEvent("workerstart", func(e mpEv) bool { return e.Fields[0] == "1" && e.PID != pid })
	if !mpGoneWithin(pid, mpTimeout) {
		t.Fatalf("killed worker %d still exists", pid)
	}
	// Its clients see the end of their connections; the manager released their sessions.
	if l, err := victim.readLine(); err == nil {
		t.Fatalf("a client of the killed worker read %q", l)
	}
	survivor := byWorker[0][0]
	ms.eventually("the killed worker's sessions leave the table", func() bool {
		f := survivor.do("stats")
		return atoi(f[2]) == total-len(byWorker[1])
	})
	// New connections are served, by both workers again (the new one included).
	got := mpSpread(t, ms)
	_, newPID, _ := got[1][0].who()
	if newPID != ne.PID {
		t.Fatalf("worker 1 answers from pid %d, want the replacement %d", newPID, ne.PID)
	}
	if n := ms.count("workererror", nil); n != 1 {
		t.Errorf("%d workererror events, want 1", n)
	}
}

func TestMultiProcMaxRequest(t *testing.T) {
	ms := mpStart(t, mpEnvMaxRequest+"=10")
	c := ms.dial()
	id, pid, _ := c.who() // request 1
	for i := 2; i <= 10; i++ {
		if f := c.do("echo " + strconv.Itoa(i)); !slices.Equal(f, []string{strconv.Itoa(i)}) {
			t.Fatalf("request %d: %q", i, f)
		}
	}
	// The tenth request was answered; the worker is replaced and its connections closed.
	if l, err := c.readLine(); err == nil {
		t.Fatalf("read %q after the worker's 10th request: want its connection closed", l)
	}
	ms.waitEvent("workerstop", func(e mpEv) bool { return e.PID == pid })
	ne := ms.waitEvent("workerstart", func(e mpEv) bool { return atoi(e.Fields[0]) == id && e.PID != pid })
	if !mpGoneWithin(pid, mpTimeout) {
		t.Fatalf("worker pid %d still exists after max_request", pid)
	}
	if n := ms.count("workererror", nil); n != 0 {
		t.Fatalf("%d workererror events: a max_request exit is not an error", n)
	}
	ms.eventually("a new connection served by the replacement", func() bool {
		c := ms.dial()
		gotID, gotPID, _ := c.who()
		return gotID != id || gotPID == ne.PID
	})
}

func TestMultiProcReload(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"async", nil},
		{"rolling", []string{mpEnvReloadSync + "=1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := mpStart(t, tc.env...)
			old := map[int]bool{}
			for _, pid := range ms.workerPIDs() {
				old[pid] = true
			}
			c := ms.dial()
			ms.signal(syscall.SIGUSR1)
			ms.waitEvent("afterreload", nil)
			// Every worker was replaced by a new process; the old ones are gone.
			ms.eventually("two new workers", func() bool {
				n := 0
				for _, e := range ms.events() {
					if e.Name == "workerstart" && !old[e.PID] {
						n++
					}
				}
				return n == 2
			})
			for pid := range old {
				if !mpGoneWithin(pid, mpTimeout) {
					t.Fatalf("old worker %d still exists after the reload", pid)
				}
				if ms.count("workerstop", func(e mpEv) bool { return e.PID == pid }) != 1 {
					t.Errorf("old worker %d did not run WorkerStop", pid)
				}
				if ms.count("workerexit", func(e mpEv) bool { return e.PID == pid }) != 1 {
					t.Errorf("old worker %d did not run WorkerExit once (it clears its timer there)", pid)
				}
			}
			if b, a := ms.count("beforereload", nil), ms.count("afterreload", nil); b != 1 || a != 1 {
				t.Fatalf("beforereload %d, afterreload %d: want one each", b, a)
			}
			if e := ms.waitEvent("beforereload", nil); e.PID != ms.Manager {
				t.Errorf("BeforeReload ran in pid %d, want the manager", e.PID)
			}
			// ModeBase: the reloaded workers' connections are closed; new ones are served.
			if l, err := c.readLine(); err == nil {
				t.Fatalf("a connection of an old worker read %q after the reload", l)
			}
			n := ms.dial()
			if _, pid, _ := n.who(); old[pid] {
				t.Fatalf("a new connection was served by old worker %d", pid)
			}
			if n := ms.count("workererror", nil); n != 0 {
				t.Fatalf("%d workererror events during a reload", n)
			}
		})
	}
}

func TestMultiProcSIGTERM(t *testing.T) {
	ms := mpStart(t)
	byWorker := mpSpread(t, ms)
	pids := ms.workerPIDs()
	ms.signal(syscall.SIGTERM)
	st := ms.wait(mpTimeout)
	if !st.Exited() || st.ExitCode() != 0 {
		t.Fatalf("manager ended with %v, want exit code 0\n%s", st, ms.output())
	}
	for _, pid := range append(pids, ms.Manager) {
		if !mpGoneWithin(pid, time.Second) {
			t.Errorf("pid %d still exists after the manager returned", pid)
		}
	}
	// Events, in order: BeforeShutdown (worker 0), WorkerStop in each worker, ManagerStop
	// and Shutdown in the manager, and Start returned there.
	var names []string
	for _, e := range ms.events() {
		names = append(names, e.Name)
	}
	for _, want := range []string{"beforeshutdown", "workerstop", "managerstop", "shutdown", "exit"} {
		if !slices.Contains(names, want) {
			t.Fatalf("no %s event: %v", want, names)
		}
	}
	if ms.count("workerstop", nil) != 2 || ms.count("beforeshutdown", nil) != 1 {
		t.Fatalf("events %v: want two workerstop and one beforeshutdown", names)
	}
	if i, j := slices.Index(names, "managerstop"), slices.Index(names, "shutdown"); i > j || slices.Index(names, "workerstop") > i {
		t.Fatalf("events out of order: %v", names)
	}
	for _, e := range ms.events() {
		if (e.Name == "shutdown" || e.Name == "managerstop" || e.Name == "exit") && e.PID != ms.Manager {
			t.Errorf("%s ran in pid %d, want the manager %d", e.Name, e.PID, ms.Manager)
		}
	}
	for _, cs := range byWorker {
		if l, err := cs[0].readLine(); err == nil {
			t.Errorf("a client read %q after shutdown", l)
		}
	}
}

func TestMultiProcShutdownFromWorker(t *testing.T) {
	ms := mpStart(t)
	c := ms.dial()
	if f := c.do("shutdown"); !slices.Equal(f, []string{"shutdown", "0"}) {
		t.Fatalf("Shutdown from a worker: %q", f)
	}
	if st := ms.wait(mpTimeout); st.ExitCode() != 0 {
		t.Fatalf("manager ended with %v", st)
	}
	ms.waitEvent("shutdown", nil)
}

func TestMultiProcManagerKilled(t *testing.T) {
	mpKillTopAndCheck(t, mpStart(t), "manager")
}

// mpKillTopAndCheck kills the tree's top process (what: its name) with SIGKILL and checks
// that both workers die with it within 5 s.
func mpKillTopAndCheck(t *testing.T, ms *mpServer, what string) {
	t.Helper()
	pids := ms.workerPIDs()
	if len(pids) != 2 {
		t.Fatalf("worker pids %v", pids)
	}
	ms.signal(syscall.SIGKILL)
	ms.wait(mpTimeout)
	for _, pid := range pids {
		if !mpGoneWithin(pid, 5*time.Second) {
			t.Fatalf("worker %d outlived its %s killed with SIGKILL by 5 s", pid, what)
		}
	}
}

func TestMultiProcStopWorker(t *testing.T) {
	ms := mpStart(t)
	byWorker := mpSpread(t, ms)
	_, pid1, _ := byWorker[1][0].who()
	if f := byWorker[0][0].do("stop 1"); !slices.Equal(f, []string{"stop", "0"}) {
		t.Fatalf("Stop(1) from worker 0: %q", f)
	}
	ms.waitEvent("workerstop", func(e mpEv) bool { return e.PID == pid1 })
	ms.waitEvent("workerstart", func(e mpEv) bool { return e.Fields[0] == "1" && e.PID != pid1 })
	if !mpGoneWithin(pid1, mpTimeout) {
		t.Fatalf("stopped worker %d still exists", pid1)
	}
	if n := ms.count("workererror", nil); n != 0 {
		t.Fatalf("%d workererror events after Stop", n)
	}
	if f := byWorker[0][0].do("stop 7"); !slices.Equal(f, []string{"stop", "505"}) {
		t.Fatalf("Stop(7): %q, want 505", f)
	}
	// Stop(-1): worker 0 stops itself; its replacement does not run OnStart again (once per
	// server life).
	c := byWorker[0][0]
	_, pid0, _ := c.who()
	if f := c.do("stop -1"); !slices.Equal(f, []string{"stop", "0"}) {
		t.Fatalf("Stop(-1) from worker 0: %q", f)
	}
	if l, err := c.readLine(); err == nil {
		t.Fatalf("read %q from worker 0 after it stopped", l)
	}
	ms.waitEvent("workerstart", func(e mpEv) bool { return e.Fields[0] == "0" && e.PID != pid0 })
	if n := ms.count("start", nil); n != 1 {
		t.Fatalf("OnStart ran %d times, want once for the server's life", n)
	}
	if n := ms.count("workererror", nil); n != 0 {
		t.Fatalf("%d workererror events after Stop(-1)", n)
	}
}

func TestMultiProcReusePort(t *testing.T) {
	ms := mpStart(t, mpEnvReusePort+"=1")
	byWorker := mpSpread(t, ms)
	for id, cs := range byWorker {
		if f := cs[0].do("echo reuse"); !slices.Equal(f, []string{"reuse"}) {
			t.Fatalf("echo on worker %d: %q", id, f)
		}
	}
	// A reload replaces the SO_REUSEPORT sockets with the new workers'. (There is an instant
	// between the old workers closing theirs and the new ones listening where a connection
	// is refused: wait for the new workers.)
	old := ms.workerPIDs()
	ms.signal(syscall.SIGUSR1)
	ms.waitEvent("afterreload", nil)
	ms.eventually("two new workers", func() bool { return len(ms.workerPIDs()) == len(old)+2 })
	c := ms.dial()
	if f := c.do("echo after"); !slices.Equal(f, []string{"after"}) {
		t.Fatalf("echo after reload: %q", f)
	}
}

// TestMultiProcCrossWorkerFlood: far more data for another worker's connection than the
// pipe between the workers holds (32 MiB in one callback): the sender's Writer queues it and
// its loop flushes it as the pipe drains; every byte arrives, in order.
func TestMultiProcCrossWorkerFlood(t *testing.T) {
	ms := mpStart(t)
	byWorker := mpSpread(t, ms)
	a, b := byWorker[0][0], byWorker[1][0]
	_, _, fdB := b.who()
	const n, size = 4096, 8192
	// Worker 1 is busy while worker 0 floods it, so the pipe fills and worker 0 queues.
	_, pidB, _ := b.who()
	b.send("sleep 300")
	ms.waitEvent("sleeping", func(e mpEv) bool { return e.PID == pidB })
	a.send(fmt.Sprintf("flood %d %d %d", fdB, n, size))
	if f := a.read(); !slices.Equal(f, []string{"flooded", "0"}) {
		t.Fatalf("flood reply %q", f)
	}
	if f := b.read(); !slices.Equal(f, []string{"slept"}) {
		t.Fatalf("worker 1's client got %q, want slept", f)
	}
	for i := range n {
		l, err := b.readLine()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if len(l) != size-1 || l[0] != byte('a'+i%26) || l[size-2] != l[0] {
			t.Fatalf("message %d: %d bytes starting %q, want %d of %q", i, len(l), l[:min(len(l), 8)], size-1, string(rune('a'+i%26)))
		}
	}
}

// max_request with worker_num 1: a manager and one worker (as Swoole), replaced after N.
func TestMultiProcMaxRequestOneWorker(t *testing.T) {
	ms := mpStart(t, mpEnvWorkers+"=1", mpEnvMaxRequest+"=5")
	c := ms.dial()
	_, first, _ := c.who()
	if first == ms.Manager {
		t.Fatal("max_request with worker_num 1 must run the worker in a process of its own")
	}
	for range 10 {
		// A connection the old worker accepted just before it stopped is closed with it
		// (ModeBase): such a request may see EOF instead of its answer.
		c = ms.dial()
		c.send("echo x")
		_, _ = c.readLine()
	}
	// The manager starts the replacement first, then stops the old worker.
	ms.waitEvent("workerstart", func(e mpEv) bool { return e.PID != first })
	if !mpGoneWithin(first, mpTimeout) {
		t.Fatal("the worker was not replaced after max_request")
	}
	if _, now, _ := ms.dial().who(); now == first {
		t.Fatal("the old worker still serves")
	}
	if n := ms.count("workererror", nil); n != 0 {
		t.Fatalf("%d workererror events: a max_request exit is not an error", n)
	}
}

// daemonize: the process that called Start exits 0 at once; the daemon (a new session)
// writes pid_file, serves, logs to log_file, and stops on SIGTERM leaving nothing behind.
func TestDaemonize(t *testing.T) {
	for _, mode := range []string{"base", "process"} {
		t.Run(mode, func(t *testing.T) {
			mpSubreaper.Do(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), mpEnvServer+"=echo", mpEnvDir+"="+dir, mpEnvDaemon+"=1", mpEnvMode+"="+mode, "GORACE=atexit_sleep_ms=0")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("the starting process: %v\n%s", err, out)
			}
			ms := &mpServer{t: t, dir: dir, exited: make(chan struct{})}
			e := ms.waitEvent("managerstart", nil)
			ms.Port = atoi(e.Fields[0])
			var pid int
			ms.eventually("pid_file", func() bool {
				b, _ := os.ReadFile(dir + "/pid")
				pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
				return pid > 0
			})
			defer func() {
				_ = unix.Kill(pid, unix.SIGKILL)
				for _, w := range ms.workerPIDs() {
					_ = unix.Kill(w, unix.SIGKILL)
				}
			}()
			if pid != e.PID || pid == cmd.Process.Pid {
				t.Fatalf("pid_file says %d, managerstart came from %d, the starter was %d", pid, e.PID, cmd.Process.Pid)
			}
			if sid, _ := unix.Getsid(pid); sid != pid {
				t.Fatalf("the daemon's session is %d, want its own (%d)", sid, pid)
			}
			if f := ms.dial().do("echo daemon"); len(f) != 1 || f[0] != "daemon" {
				t.Fatalf("echo from the daemon: %q", f)
			}
			workers := ms.workerPIDs()
			if err := unix.Kill(pid, unix.SIGTERM); err != nil {
				t.Fatal(err)
			}
			for _, p := range append(workers, pid) {
				if !mpGoneWithin(p, mpTimeout) {
					t.Fatalf("pid %d still runs after SIGTERM to the daemon", p)
				}
			}
			if _, err := os.Stat(dir + "/pid"); !os.IsNotExist(err) {
				t.Errorf("pid_file left behind after a clean stop: %v", err)
			}
			if _, err := os.Stat(dir + "/log"); err != nil {
				t.Errorf("log_file: %v", err)
			}
		})
	}
}
