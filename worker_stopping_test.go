package swoole_test

// How worker processes stop: max_request (exact, with its grace rule) and the async exit of
// a stopping worker (its timers run out before it leaves, GetWorkerStatus along the way),
// in ModeBase with worker processes and in ModeProcess. The server is the "stopping"
// builder below, in real process trees (multiproc_helpers_test.go).

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// Environment of the "stopping" builder (with mpEnvMode and mpEnvWorkers).
const (
	stEnvMaxRequest = "GOSWOOLE_TEST_ST_MAX_REQUEST" // max_request, set with SetOptions
	stEnvGrace      = "GOSWOOLE_TEST_ST_GRACE"       // max_request_grace, set with SetOptions (unset: not given)
	stEnvWorkerExit = "GOSWOOLE_TEST_ST_WORKER_EXIT" // "1": an OnWorkerExit that logs (and clears nothing)
)

func init() { mpMoreServers["stopping"] = stServer }

// stRequests counts the requests this process served (a global of the worker process).
var stRequests int

// stServer is a line server. Its events: "managerstart <port>", "workerstart <id> <status>",
// "workerexit <id> <status>", "workerstop <id> <status>", "marker <id> <status>" (the
// armed timer fired), "timerstatus <status>", "afterreload"; the statuses are
// GetWorkerStatus(-1).
// Requests:
//
//	req        → "<pid> <requests served by this process, this one included> <status>"
//	arm <ms>   → After(ms) logs "marker"; "armed <pid>"
//	timer      → After(1) logs "timerstatus"; "timer"
func stServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	if err := s.Set(swoole.Settings{
		WorkerNum:      envInt(mpEnvWorkers, 1),
		LogLevel:       swoole.LogLevelWarning,
		MaxConnection:  1024,
		OpenEOFSplit:   true,
		PackageEOF:     "\n",
		MaxWaitTime:    8 * time.Second,
		OpenTCPNoDelay: true,
		DispatchMode:   2, // ModeProcess: one connection, one worker (while it lives)
	}); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	opts := map[string]any{"max_request": envInt(stEnvMaxRequest, 0)}
	if g := os.Getenv(stEnvGrace); g != "" {
		opts["max_request_grace"] = envInt(stEnvGrace, 0)
	}
	if err := s.SetOptions(opts); err != nil {
		fmt.Fprintln(os.Stderr, "SetOptions:", err)
		return 2
	}
	status := func(s *swoole.Server) int {
		st, err := s.GetWorkerStatus(-1)
		if err != nil {
			return -mpCode(err)
		}
		return st
	}
	port := s.Ports()[0].Port()
	s.OnManagerStart(func(s *swoole.Server) { mpEvent("managerstart", port) })
	s.OnWorkerStart(func(s *swoole.Server, id int) { mpEvent("workerstart", id, status(s)) })
	if os.Getenv(stEnvWorkerExit) == "1" {
		s.OnWorkerExit(func(s *swoole.Server, id int) { mpEvent("workerexit", id, status(s)) })
	}
	s.OnWorkerStop(func(s *swoole.Server, id int) { mpEvent("workerstop", id, status(s)) })
	s.OnAfterReload(func(s *swoole.Server) { mpEvent("afterreload") })
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		cmd, arg, _ := strings.Cut(strings.TrimSuffix(string(data), "\n"), " ")
		reply := func(format string, args ...any) { _ = s.Send(fd, []byte(fmt.Sprintf(format, args...)+"\n")) }
		switch cmd {
		case "req":
			stRequests++
			reply("%d %d %d", os.Getpid(), stRequests, status(s))
		case "arm":
			ms, _ := strconv.Atoi(arg)
			id := s.GetWorkerID()
			if _, err := s.After(ms, func() { mpEvent("marker", id, status(s)) }); err != nil {
				reply("arm %d", mpCode(err))
				return
			}
			reply("armed %d", os.Getpid())
		case "timer":
			_, _ = s.After(1, func() { mpEvent("timerstatus", status(s)) })
			reply("timer")
		default:
			reply("unknown %q", cmd)
		}
	})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// stReply is a parsed answer to "req".
type stReply struct{ pid, n, status int }

func stParse(t *testing.T, f []string) stReply {
	t.Helper()
	if len(f) != 3 {
		t.Fatalf("req: reply %q, want \"<pid> <count> <status>\"", f)
	}
	return stReply{atoi(f[0]), atoi(f[1]), atoi(f[2])}
}

// stCheckRun checks replies against max_request n: each process answers exactly n requests,
// counted from 1, and the next request is answered by a new process. It returns the pids
// in order.
func stCheckRun(t *testing.T, replies []stReply, n int) []int {
	t.Helper()
	var pids []int
	for i, r := range replies {
		if r.status != swoole.WorkerBusy {
			t.Errorf("request %d: GetWorkerStatus(-1) in OnReceive = %d, want busy (%d)", i+1, r.status, swoole.WorkerBusy)
		}
		want := i%n + 1
		if r.n != want {
			t.Fatalf("request %d: answered by pid %d as its request %d, want its request %d (max_request %d): replies %v", i+1, r.pid, r.n, want, n, replies)
		}
		if want == 1 {
			for _, p := range pids {
				if p == r.pid {
					t.Fatalf("request %d: pid %d answered again after its max_request", i+1, r.pid)
				}
			}
			pids = append(pids, r.pid)
		} else if r.pid != pids[len(pids)-1] {
			t.Fatalf("request %d: pid %d, want %d (the process that answered the previous ones)", i+1, r.pid, pids[len(pids)-1])
		}
	}
	return pids
}

// ModeProcess: a worker answers exactly max_request requests; the next one is answered by
// its replacement, whose counter starts again, and the connection stays. One request at a
// time, then pipelined (many queued in the worker's pipe at once: those after the limit
// wait there for the replacement). "max_request_grace" 0 turns the grace off, as in
// Swoole's max_request_grace_disabled test (without it, max_request 12 would get a grace
// of 6).
func TestMaxRequestExactModeProcess(t *testing.T) {
	const n = 12
	for _, pipelined := range []bool{false, true} {
		t.Run(map[bool]string{false: "one at a time", true: "pipelined"}[pipelined], func(t *testing.T) {
			ms := mpStartServer(t, "stopping", "managerstart", mpEnvMode+"=process", stEnvMaxRequest+"="+strconv.Itoa(n), stEnvGrace+"=0")
			c := ms.dial()
			const total = 2*n + 3
			var replies []stReply
			if pipelined {
				_ = c.c.SetWriteDeadline(time.Now().Add(mpTimeout))
				if _, err := c.c.Write([]byte(strings.Repeat("req\n", total))); err != nil {
					t.Fatal(err)
				}
				for range total {
					replies = append(replies, stParse(t, c.read()))
				}
			} else {
				for range total {
					replies = append(replies, stParse(t, c.do("req")))
				}
			}
			pids := stCheckRun(t, replies, n)
			if len(pids) != 3 {
				t.Fatalf("pids %v: want 3 processes for %d requests", pids, total)
			}
			for _, pid := range pids[:2] {
				if !mpGoneWithin(pid, mpTimeout) {
					t.Errorf("worker pid %d still runs after its max_request", pid)
				}
			}
			if n := ms.count("workererror", nil); n != 0 {
				t.Errorf("%d workererror events: max_request is not an error", n)
			}
		})
	}
}

// ModeBase with worker processes: a worker answers exactly max_request requests, then
// stops taking events; the connections it holds are lost with it (Swoole), and a new
// connection is served by its replacement, whose counter starts again.
func TestMaxRequestExactModeBase(t *testing.T) {
	const n = 5
	for _, pipelined := range []bool{false, true} {
		t.Run(map[bool]string{false: "one at a time", true: "pipelined"}[pipelined], func(t *testing.T) {
			ms := mpStartServer(t, "stopping", "managerstart", mpEnvWorkers+"=1", stEnvMaxRequest+"="+strconv.Itoa(n))
			c := ms.dial()
			var replies []stReply
			if pipelined {
				_ = c.c.SetWriteDeadline(time.Now().Add(mpTimeout))
				if _, err := c.c.Write([]byte(strings.Repeat("req\n", n+3))); err != nil {
					t.Fatal(err)
				}
				for range n {
					replies = append(replies, stParse(t, c.read()))
				}
			} else {
				for range n {
					replies = append(replies, stParse(t, c.do("req")))
				}
				_, _ = c.c.Write([]byte("req\n")) // the worker is gone or going: no answer
			}
			first := stCheckRun(t, replies, n)[0]
			if l, err := c.readLine(); err == nil {
				t.Fatalf("read %q after the worker's request %d (max_request %d): want its connection closed", l, n, n)
			}
			// The replacement answers a new connection, from 1.
			r := stParse(t, ms.dial().do("req"))
			if r.pid == first || r.n != 1 {
				t.Fatalf("a new connection: pid %d request %d, want a new process's request 1 (old pid %d)", r.pid, r.n, first)
			}
			if !mpGoneWithin(first, mpTimeout) {
				t.Errorf("worker pid %d still runs after its max_request", first)
			}
			if n := ms.count("workererror", nil); n != 0 {
				t.Errorf("%d workererror events: max_request is not an error", n)
			}
		})
	}
}

// max_request 4 with a huge grace (Swoole's max_request_grace_enabled test): the limit is
// 4 + a random 1..grace, so 16 requests are all answered by the first process.
func TestMaxRequestGraceModeProcess(t *testing.T) {
	ms := mpStartServer(t, "stopping", "managerstart", mpEnvMode+"=process", stEnvMaxRequest+"=4", stEnvGrace+"=1000000000")
	c := ms.dial()
	var first int
	for i := 1; i <= 16; i++ {
		r := stParse(t, c.do("req"))
		if i == 1 {
			first = r.pid
		}
		if r.pid != first || r.n != i {
			t.Fatalf("request %d: pid %d request %d, want pid %d request %d: the grace was not added", i, r.pid, r.n, first, i)
		}
	}
}

// A stopping worker (reload, reload_async) keeps its loop running until its timers have
// fired, with or without OnWorkerExit: a timer armed before the reload fires before the
// worker leaves. GetWorkerStatus(-1) is idle in OnWorkerStart and in a timer callback,
// exit in OnWorkerExit and in the timers that fire while it stops.
func TestStoppingWorkerRunsItsTimers(t *testing.T) {
	for _, mode := range []string{"base", "process"} {
		for _, exitCB := range []bool{false, true} {
			name := mode + map[bool]string{false: " without OnWorkerExit", true: " with OnWorkerExit"}[exitCB]
			t.Run(name, func(t *testing.T) {
				env := []string{mpEnvWorkers + "=2", mpEnvMode + "=" + mode}
				if exitCB {
					env = append(env, stEnvWorkerExit+"=1")
				}
				ms := mpStartServer(t, "stopping", "managerstart", env...)
				ms.eventually("two workers", func() bool { return ms.count("workerstart", nil) == 2 })
				for _, e := range ms.events() {
					if e.Name == "workerstart" && e.int(1) != swoole.WorkerIdle {
						t.Errorf("GetWorkerStatus(-1) in OnWorkerStart = %s, want idle (%d)", e.Fields[1], swoole.WorkerIdle)
					}
				}
				c := ms.dial()
				if f := c.do("timer"); len(f) != 1 {
					t.Fatalf("timer: %q", f)
				}
				if e := ms.waitEvent("timerstatus", nil); e.int(0) != swoole.WorkerIdle {
					t.Errorf("GetWorkerStatus(-1) in a timer callback = %s, want idle (%d)", e.Fields[0], swoole.WorkerIdle)
				}
				f := c.do("arm 1000")
				if len(f) != 2 || f[0] != "armed" {
					t.Fatalf("arm: %q", f)
				}
				pid := atoi(f[1])
				ms.signal(syscall.SIGUSR1)
				ms.waitEvent("workerstop", func(e mpEv) bool { return e.PID == pid })
				marker, at := -1, -1
				evs := ms.events()
				for i, e := range evs {
					if e.PID != pid {
						continue
					}
					switch {
					case e.Name == "marker":
						marker, at = e.int(1), i
					case e.Name == "workerstop":
						if at < 0 {
							t.Fatalf("worker %d stopped before its timer fired (no marker before workerstop)\n%s", pid, ms.output())
						}
					}
				}
				if marker != swoole.WorkerExit {
					t.Errorf("GetWorkerStatus(-1) in the timer that fired while the worker stopped = %d, want exit (%d)", marker, swoole.WorkerExit)
				}
				if exitCB {
					n := 0
					for _, e := range evs {
						if e.PID == pid && e.Name == "workerexit" {
							n++
							if e.int(1) != swoole.WorkerExit {
								t.Errorf("GetWorkerStatus(-1) in OnWorkerExit = %s, want exit (%d)", e.Fields[1], swoole.WorkerExit)
							}
						}
					}
					if n == 0 {
						t.Errorf("OnWorkerExit did not run while the worker waited for its timer")
					}
				}
				ms.waitEvent("afterreload", nil)
				if !mpGoneWithin(pid, mpTimeout) {
					t.Errorf("old worker %d still runs after the reload", pid)
				}
			})
		}
	}
}
