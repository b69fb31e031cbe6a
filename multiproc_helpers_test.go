package swoole_test

// Helpers of the multi-process tests (multiproc_test.go). Names start with mp.
//
// A multi-process server cannot run inside the test process: its workers are this
// executable started again, and they must become workers, not run the tests. So a test
// starts the test binary itself as the server's manager, with mpEnvServer naming a server
// builder and -test.run=^$; TestMain (testutil_test.go) sees the variable and runs the
// builder instead of the tests, in the manager and in every worker (they inherit the
// environment and the arguments). The builder's callbacks append lines to an events file in
// a directory the test names (mpEnvDir), which is how the test learns the port, the pids and
// what happened in each process. Every test has deadlines and, at cleanup, kills by pid
// whatever is left and checks that every pid it saw is gone.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole"
	"github.com/goswoole/swoole/internal/ipc"
)

// Environment of a test server tree.
const (
	mpEnvServer     = "GOSWOOLE_TEST_SERVER"      // the builder: "echo"
	mpEnvDir        = "GOSWOOLE_TEST_DIR"         // where the events file goes
	mpEnvWorkers    = "GOSWOOLE_TEST_WORKERS"     // worker_num (default 2)
	mpEnvMaxRequest = "GOSWOOLE_TEST_MAX_REQUEST" // max_request (default 0)
	mpEnvReloadSync = "GOSWOOLE_TEST_RELOAD_SYNC" // "1": reload_async false
	mpEnvReusePort  = "GOSWOOLE_TEST_REUSE_PORT"  // "1": enable_reuse_port
	mpEnvQuiet      = "GOSWOOLE_TEST_QUIET"       // "1": no events but managerstart (benchmarks)
	mpEnvMode       = "GOSWOOLE_TEST_MODE"        // "process": ModeProcess (default ModeBase)
	mpEnvDispatch   = "GOSWOOLE_TEST_DISPATCH"    // dispatch_mode (ModeProcess)
	mpEnvReactors   = "GOSWOOLE_TEST_REACTORS"    // reactor_num (ModeProcess)
	mpEnvConnEvents = "GOSWOOLE_TEST_CONN_EVENTS" // "1": OnConnect/OnClose log connect/close events
	mpEnvUnsafe     = "GOSWOOLE_TEST_UNSAFE"      // "1": enable_unsafe_event
	mpEnvDispFunc   = "GOSWOOLE_TEST_DISPFUNC"    // "1": a dispatch_func (see mpEchoServer)
	mpEnvHeartbeat  = "GOSWOOLE_TEST_HEARTBEAT"   // "<check interval ms>,<idle ms>"
	mpEnvDaemon     = "GOSWOOLE_TEST_DAEMON"      // "1": daemonize, pid_file and log_file in the test's directory
	mpEnvMaxQueued  = "GOSWOOLE_TEST_MAX_QUEUED"  // max_queued_bytes
	mpEnvDelayRecv  = "GOSWOOLE_TEST_DELAY_RECV"  // "1": enable_delay_receive; OnConnect confirms
	mpEnvRedeliver  = "GOSWOOLE_TEST_REDELIVER"   // "1": redeliver_event_in_hand
	mpEnvFault      = "GOSWOOLE_TEST_FAULT"       // "cut": every process cuts its messages of 300-400 KB in half (ipc.Fault)
	mpEnvSnoop      = "GOSWOOLE_TEST_SNOOP"       // a file: a user process that reads every pipe end it holds until it exists (pipe_ends_test.go)
)

// mpMode is the server mode the test environment asks for.
func mpMode() swoole.Mode {
	switch os.Getenv(mpEnvMode) {
	case "process":
		return swoole.ModeProcess
	case "thread":
		return swoole.ModeThread
	}
	return swoole.ModeBase
}

// mpTimeout bounds every wait of these tests (-race, 2 cores, processes starting).
const mpTimeout = 20 * time.Second

// runTestServer is the test binary acting as a server process: the builder runs in the
// manager (Start returns there at shutdown) and in every worker (Start never returns). It
// returns the manager's exit status.
func runTestServer(name string) int {
	switch name {
	case "echo":
		return mpEchoServer()
	case "rawecho":
		return mpRawEchoServer()
	case "task":
		return taskTestServer() // task_helpers_test.go
	}
	if f, ok := mpMoreServers[name]; ok { // builders other files add (multiproc_userproc_test.go)
		return f()
	}
	fmt.Fprintf(os.Stderr, "unknown test server %q\n", name)
	return 2
}

// mpEvent appends one line to the events file: "<event> <pid> <fields...>".
func mpEvent(event string, fields ...any) {
	if os.Getenv(mpEnvQuiet) == "1" && event != "managerstart" && event != "ready" {
		return
	}
	f, err := os.OpenFile(os.Getenv(mpEnvDir)+"/events", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "events:", err)
		return
	}
	defer f.Close()
	line := event + " " + strconv.Itoa(os.Getpid())
	for _, v := range fields {
		line += " " + fmt.Sprint(v)
	}
	f.WriteString(line + "\n")
}

// mpLineSettings is the base of the line servers the multi-process tests build: workers
// worker processes, "\n"-framed requests, warnings logged, max_wait_time 3 s.
func mpLineSettings(workers int) swoole.Settings {
	return swoole.Settings{
		WorkerNum: workers, LogLevel: swoole.LogLevelWarning, MaxConnection: 1024,
		OpenEOFSplit: true, PackageEOF: "\n", MaxWaitTime: 3 * time.Second,
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// mpEchoServer is a line server (one request per line) with commands that exercise the
// multi-process API:
//
//	who              → "who <worker id> <pid> <session id>"
//	echo <text>      → "<text>"
//	bcast <text>     → "<text>" to every connection (Connections(), any worker), then
//	                   "bcast <n> <failures>" to the sender
//	send <fd> <text> → "<text>" to fd, then "sent <error code>" to the sender
//	flood <fd> <n> <size> → n lines of size bytes to fd, then "flooded <failures>"
//	sleep <ms>       → holds the worker's loop, then "slept"
//	close <fd>       → "closed <error code>"
//	info <fd>        → "info <reactor id> <remote port>"
//	stats            → "stats <worker_num> <connection_num> <idle_worker_num> <request_count> <worker_request_count>"
//	pids             → "pids <master> <manager> <worker 0 pid> <worker 1 pid> ..."
//	msg <dst> <text> → SendMessage(text, dst): "msg <error code>"; the target logs "pipemessage"
//	reload / stop <id> / shutdown → Reload(false) / Stop(id, false) / Shutdown(): "<cmd> <error code>"
func mpEchoServer() int {
	if os.Getenv(mpEnvFault) == "cut" {
		ipc.Fault = func(_ ipc.Header, size int) bool { return size >= 300_000 && size < 400_000 }
	}
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	set := swoole.Settings{
		WorkerNum:      envInt(mpEnvWorkers, 2),
		MaxRequest:     envInt(mpEnvMaxRequest, 0),
		LogLevel:       swoole.LogLevelWarning,
		MaxConnection:  1024,
		OpenEOFSplit:   true,
		PackageEOF:     "\n",
		MaxWaitTime:    3 * time.Second,
		OpenTCPNoDelay: true,
		// Room for the flood test's 32 MiB queued for one connection.
		SocketBufferSize: 64 << 20,
	}
	if os.Getenv(mpEnvReloadSync) == "1" {
		set.ReloadAsync = swoole.Bool(false)
	}
	if os.Getenv(mpEnvReusePort) == "1" {
		set.EnableReusePort = true
	}
	if hb := os.Getenv(mpEnvHeartbeat); hb != "" {
		var iv, idle int
		fmt.Sscanf(hb, "%d,%d", &iv, &idle)
		set.HeartbeatCheckInterval = time.Duration(iv) * time.Millisecond
		set.HeartbeatIdleTime = time.Duration(idle) * time.Millisecond
	}
	if os.Getenv(mpEnvDaemon) == "1" {
		set.Daemonize = true
		set.PidFile = os.Getenv(mpEnvDir) + "/pid"
		set.LogFile = os.Getenv(mpEnvDir) + "/log"
	}
	set.MaxQueuedBytes = envInt(mpEnvMaxQueued, 0)
	set.RedeliverEventInHand = os.Getenv(mpEnvRedeliver) == "1"
	if os.Getenv(mpEnvDelayRecv) == "1" {
		set.EnableDelayReceive = true
		s.OnConnect(func(s *swoole.Server, fd int64, _ int) {
			mpEvent("confirm", fd, mpCode(s.Confirm(fd)))
		})
	}
	set.DispatchMode = envInt(mpEnvDispatch, 0)
	set.ReactorNum = envInt(mpEnvReactors, 0)
	set.EnableUnsafeEvent = os.Getenv(mpEnvUnsafe) == "1"
	if os.Getenv(mpEnvDispFunc) == "1" {
		// "to0 ..." → worker 0, "to1 ..." → worker 1, "drop" → dropped, "kill" → the
		// connection is closed, "bad" → an invalid id (dropped with a warning), else
		// dispatch_mode. Connect and close events log what the function saw.
		set.DispatchFunc = func(s *swoole.Server, fd int64, ev int, data []byte) int {
			if ev != 0 {
				mpEvent("dispatchfunc", fd, ev, len(data))
				return -3
			}
			switch {
			case bytes.HasPrefix(data, []byte("to0")):
				return 0
			case bytes.HasPrefix(data, []byte("to1")):
				return 1
			case bytes.HasPrefix(data, []byte("drop")):
				return -1
			case bytes.HasPrefix(data, []byte("kill")):
				return -2
			case bytes.HasPrefix(data, []byte("bad")):
				return 7
			}
			return -3
		}
	}
	if os.Getenv(mpEnvConnEvents) == "1" {
		s.OnConnect(func(s *swoole.Server, fd int64, rid int) { mpEvent("connect", s.GetWorkerID(), fd, rid) })
		s.OnClose(func(s *swoole.Server, fd int64, rid int) {
			_, err := s.GetClientInfo(fd, -1, false)
			mpEvent("close", s.GetWorkerID(), fd, rid, mpCode(err), mpCode(s.Send(fd, []byte("x"))), mpCode(s.Close(fd, false)))
		})
	}
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	s.OnManagerStart(func(s *swoole.Server) {
		// The manager reads the shared table and writes to the workers' pipes too.
		mpEvent("managerstart", port, s.GetManagerPID(), s.Stats().WorkerNum, s.GetWorkerID(), s.GetWorkerPID(0))
		if os.Getenv(mpEnvQuiet) != "1" {
			_ = s.SendMessage("from-manager", 0)
		}
	})
	s.OnManagerStop(func(s *swoole.Server) { mpEvent("managerstop") })
	s.OnShutdown(func(s *swoole.Server) { mpEvent("shutdown") })
	s.OnStart(func(s *swoole.Server) {
		mpEvent("start", s.GetWorkerID())
		if mpMode() == swoole.ModeProcess {
			// The master's timers run on its reactor 0.
			_, err := s.After(20, func() { mpEvent("master-after", os.Getpid()) })
			mpEvent("master-timer", mpCode(err))
		}
	})
	s.OnBeforeShutdown(func(s *swoole.Server) { mpEvent("beforeshutdown", s.GetWorkerID()) })
	// A tick per worker keeps a stopping worker in WorkerExit until WorkerExit clears it.
	// (By worker id: in ModeThread the workers are loops of one process.)
	var tickMu sync.Mutex
	ticks := map[int]int{}
	s.OnWorkerStart(func(s *swoole.Server, id int) {
		tick, _ := s.Tick(60_000, func(int) {})
		tickMu.Lock()
		ticks[id] = tick
		tickMu.Unlock()
		mpEvent("workerstart", id)
	})
	s.OnWorkerExit(func(s *swoole.Server, id int) {
		mpEvent("workerexit", id)
		tickMu.Lock()
		tick := ticks[id]
		tickMu.Unlock()
		s.ClearTimer(tick)
	})
	s.OnWorkerStop(func(s *swoole.Server, id int) { mpEvent("workerstop", id) })
	s.OnWorkerError(func(s *swoole.Server, id, pid, code, sig int) { mpEvent("workererror", id, pid, code, sig) })
	s.OnBeforeReload(func(s *swoole.Server) { mpEvent("beforereload") })
	s.OnAfterReload(func(s *swoole.Server) { mpEvent("afterreload") })
	s.OnPipeMessage(func(s *swoole.Server, src int, data []byte) {
		mpEvent("pipemessage", s.GetWorkerID(), src, string(data))
	})
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		cmd, arg, _ := strings.Cut(strings.TrimSuffix(string(data), "\n"), " ")
		reply := func(format string, args ...any) { _ = s.Send(fd, []byte(fmt.Sprintf(format, args...)+"\n")) }
		switch cmd {
		case "who":
			reply("who %d %d %d", s.GetWorkerID(), os.Getpid(), fd)
		case "echo":
			reply("%s", arg)
		case "bcast":
			n, failed := 0, 0
			for id := range s.Connections() {
				n++
				if s.Send(id, []byte(arg+"\n")) != nil {
					failed++
				}
			}
			reply("bcast %d %d", n, failed)
		case "send":
			to, text, _ := strings.Cut(arg, " ")
			id, _ := strconv.ParseInt(to, 10, 64)
			reply("sent %d", mpCode(s.Send(id, []byte(text+"\n"))))
		case "sleep":
			ms, _ := strconv.Atoi(arg)
			mpEvent("sleeping", s.GetWorkerID())
			time.Sleep(time.Duration(ms) * time.Millisecond) // holds this worker's loop
			reply("slept")
		case "hold":
			// hold <path>: holds this worker's loop until the file exists (at most a minute).
			mpEvent("holding", s.GetWorkerID())
			for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(time.Millisecond) {
				if _, err := os.Stat(arg); err == nil {
					break
				}
			}
			reply("held")
		case "dieonce":
			// dieonce <path>: the first time (no file at path), creates it and holds the
			// loop until killed; after that, answers "redelivered".
			if f, err := os.OpenFile(arg, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
				f.Close()
				mpEvent("sleeping", s.GetWorkerID())
				select {} // until the test kills this process
			}
			reply("redelivered")
		case "replykill":
			// replykill <text>: replies text and at once kills this process (ModeProcess
			// only: in ModeThread it would kill the server). The reply is still held in the
			// batch's queue then, not sent: the replacement sends it from the reply journal.
			reply("%s", arg)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		case "goroutines":
			reply("goroutines %d", runtime.NumGoroutine())
		case "lost":
			reply("lost %d", s.Stats().LostMessageCount)
		case "dispatched":
			reply("dispatched %d", s.Stats().DispatchCount)
		case "flood":
			// flood <fd> <n> <size>: n messages of size bytes to fd, in one callback, then
			// "flooded <failures>"; each message is <size-1> copies of a letter and '\n'.
			var to int64
			var n, size int
			fmt.Sscan(arg, &to, &n, &size)
			failed := 0
			for i := range n {
				msg := bytes.Repeat([]byte{byte('a' + i%26)}, size)
				msg[size-1] = '\n'
				if s.Send(to, msg) != nil {
					failed++
				}
			}
			reply("flooded %d", failed)
		case "heartbeat", "heartbeatclose":
			ids, err := s.Heartbeat(cmd == "heartbeatclose")
			out := fmt.Sprintf("heartbeat %d", mpCode(err))
			for _, id := range ids {
				out += " " + strconv.FormatInt(id, 10)
			}
			reply("%s", out)
		case "queued":
			id, _ := strconv.ParseInt(arg, 10, 64)
			ci, err := s.GetClientInfo(id, -1, false)
			if err != nil {
				reply("queued -1 %d", mpCode(err))
				return
			}
			reply("queued %d", ci.RecvQueuedBytes)
		case "panic":
			panic("a callback panicked on purpose (" + arg + ")")
		case "version":
			reply("version %s", mpBuildTag)
		case "to0", "to1":
			reply("to %d", s.GetWorkerID())
		case "pause", "resume", "protect":
			id, _ := strconv.ParseInt(arg, 10, 64)
			var err error
			switch cmd {
			case "pause":
				err = s.Pause(id)
			case "resume":
				err = s.Resume(id)
			default:
				err = s.Protect(id, true)
			}
			reply("%s %d", cmd, mpCode(err))
		case "sendfile": // sendfile <fd> <path>
			to, path, _ := strings.Cut(arg, " ")
			id, _ := strconv.ParseInt(to, 10, 64)
			reply("sendfile %d", mpCode(s.SendFile(id, path, 0, 0)))
		case "bind":
			uid, _ := strconv.ParseUint(arg, 10, 32)
			reply("bind %d", mpCode(s.Bind(fd, uint32(uid))))
		case "close":
			id, _ := strconv.ParseInt(arg, 10, 64)
			reply("closed %d", mpCode(s.Close(id, false)))
		case "info":
			id, _ := strconv.ParseInt(arg, 10, 64)
			ci, err := s.GetClientInfo(id, -1, false)
			if err != nil {
				reply("info -1 %d", mpCode(err))
				return
			}
			reply("info %d %d", ci.ReactorID, ci.RemotePort)
		case "stats":
			st := s.Stats()
			reply("stats %d %d %d %d %d", st.WorkerNum, st.ConnectionNum, st.IdleWorkerNum, st.RequestCount, st.WorkerRequestCount)
		case "pids":
			out := fmt.Sprintf("pids %d %d", s.GetMasterPID(), s.GetManagerPID())
			for i := range s.Setting().WorkerNum {
				out += " " + strconv.Itoa(s.GetWorkerPID(i))
			}
			reply("%s", out)
		case "msg":
			to, text, _ := strings.Cut(arg, " ")
			dst, _ := strconv.Atoi(to)
			reply("msg %d", mpCode(s.SendMessage(text, dst)))
		case "reload":
			reply("reload %d", mpCode(s.Reload(false)))
		case "stop":
			id, _ := strconv.Atoi(arg)
			reply("stop %d", mpCode(s.Stop(id, false)))
		case "shutdown":
			reply("shutdown %d", mpCode(s.Shutdown()))
		default:
			reply("unknown %q", cmd)
		}
	})
	if stop := os.Getenv(mpEnvSnoop); stop != "" {
		if _, err := s.AddProcess(swoole.NewProcess(func(*swoole.Process) { snoopPipes(stop) })); err != nil {
			fmt.Fprintln(os.Stderr, "AddProcess:", err)
			return 2
		}
	}
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	mpEvent("exit")
	return 0
}

// mpRawEchoServer echoes whatever each read brings (no framing), with mpEnvWorkers workers
// (1: a single-process server), for the benchmarks. OnStart (worker 0) writes "ready <port>".
func mpRawEchoServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeBase, swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	set := swoole.Settings{WorkerNum: envInt(mpEnvWorkers, 2), LogLevel: swoole.LogLevelWarning, MaxConnection: 1024, OpenTCPNoDelay: true}
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	s.OnStart(func(s *swoole.Server) { mpEvent("ready", port) })
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) { _ = s.Send(fd, data) })
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// mpBuildTag is what the "version" command answers. The binary-upgrade test rewrites its
// last 8 bytes in a copy of the test binary: the copy is new code on disk.
var mpBuildTag = "goswoole-build-tag:AAAAAAAA"

// mpCode is an error's Swoole code (0 for nil, -1 for an error without one).
func mpCode(err error) int {
	if err == nil {
		return 0
	}
	var e *swoole.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return -1
}

// ---- the test side ----

var mpSubreaper sync.Once

// mpServer is a server tree started by a test: the manager is the test's child.
type mpServer struct {
	t       testing.TB
	dir     string
	cmd     *exec.Cmd
	out     *os.File
	exited  chan struct{}
	state   *os.ProcessState
	Port    int
	Manager int

	allowPanic bool // a test that makes a worker panic on purpose
}

// mpStart starts the echo server's tree with env (KEY=value) added and waits until its
// manager has started (every worker started its loop). Cleanup stops it and checks that no
// process of the tree is left.
//
// OnManagerStart and OnWorkerStart run in parallel (as in Swoole): it also waits until every
// worker has run OnWorkerStart, so that the events name every worker's pid.
func mpStart(t testing.TB, env ...string) *mpServer {
	t.Helper()
	ms := mpStartServer(t, "echo", "managerstart", env...)
	workers := 2
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, mpEnvWorkers+"="); ok {
			workers, _ = strconv.Atoi(v)
		}
	}
	if os.Getenv(mpEnvQuiet) != "1" && !slices.Contains(env, mpEnvQuiet+"=1") {
		ms.eventually("every worker's workerstart", func() bool {
			ids := map[string]bool{}
			for _, e := range ms.events() {
				if e.Name == "workerstart" {
					ids[e.Fields[0]] = true
				}
			}
			return len(ids) >= workers
		})
	}
	return ms
}

// mpStartServer starts the test server builder (a runTestServer name) and waits for the
// event ready, whose first field is the port.
func mpStartServer(t testing.TB, builder, ready string, env ...string) *mpServer {
	t.Helper()
	return mpStartBinary(t, os.Args[0], builder, ready, env...)
}

// mpStartBinary is mpStartServer with the executable to start (a copy of the test binary).
func mpStartBinary(t testing.TB, bin, builder, ready string, env ...string) *mpServer {
	t.Helper()
	return mpStartCommand(t, []string{bin, "-test.run=^$"}, builder, ready, env...)
}

// mpStartCommand is mpStartServer with the whole command line that starts the test binary
// (under taskset, say).
func mpStartCommand(t testing.TB, argv []string, builder, ready string, env ...string) *mpServer {
	t.Helper()
	if coreMode() == swoole.ModeThread {
		t.Skip("the core suites' ModeThread pass (" + coreModeEnv + "): the multi-process suites run in the main pass, with their own table of modes")
	}
	// Orphans (the workers of a manager killed with SIGKILL) are re-parented to this process,
	// so that the tests can reap them and tell whether they are gone.
	mpSubreaper.Do(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
	dir := t.TempDir()
	out, err := os.Create(dir + "/output")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), mpEnvServer+"="+builder, mpEnvDir+"="+dir, "GORACE=atexit_sleep_ms=0")
	cmd.Env = append(cmd.Env, env...)
	// A file, not a pipe: os/exec then copies nothing, and Wait does not wait for the
	// workers, which hold the same descriptors, to close them.
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the server's manager: %v", err)
	}
	ms := &mpServer{t: t, dir: dir, cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		ms.state = cmd.ProcessState
		close(ms.exited)
	}()
	t.Cleanup(ms.cleanup)
	ev := ms.waitEvent(ready, nil)
	ms.Port, _ = strconv.Atoi(ev.Fields[0])
	if ready == "managerstart" {
		ms.Manager = ev.PID
	} else {
		ms.Manager = cmd.Process.Pid // the process that called Start
	}
	return ms
}

// mpEv is a line of the events file.
type mpEv struct {
	Name   string
	PID    int
	Fields []string
}

func (e mpEv) int(i int) int {
	n, _ := strconv.Atoi(e.Fields[i])
	return n
}

// events reads the events file.
func (ms *mpServer) events() []mpEv {
	b, _ := os.ReadFile(ms.dir + "/events")
	var evs []mpEv
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		pid, _ := strconv.Atoi(f[1])
		evs = append(evs, mpEv{Name: f[0], PID: pid, Fields: f[2:]})
	}
	return evs
}

// count returns the events named name that match (nil: all).
func (ms *mpServer) count(name string, match func(mpEv) bool) int {
	n := 0
	for _, e := range ms.events() {
		if e.Name == name && (match == nil || match(e)) {
			n++
		}
	}
	return n
}

// waitEvent waits for an event named name that matches (nil: any).
func (ms *mpServer) waitEvent(name string, match func(mpEv) bool) mpEv {
	ms.t.Helper()
	var got mpEv
	ms.eventually("event "+name, func() bool {
		for _, e := range ms.events() {
			if e.Name == name && (match == nil || match(e)) {
				got = e
				return true
			}
		}
		return false
	})
	return got
}

// eventually polls cond until it holds; it fails the test after mpTimeout, or at once when
// the manager exited while waiting for something else.
func (ms *mpServer) eventually(what string, cond func() bool) {
	ms.t.Helper()
	deadline := time.Now().Add(mpTimeout)
	exited := ms.exited
	for !cond() {
		if time.Now().After(deadline) {
			ms.t.Fatalf("timed out after %v waiting for %s\n%s", mpTimeout, what, ms.output())
		}
		select {
		case <-exited:
			// The manager is gone: give what it did last one more look, then fail.
			exited = nil
			deadline = time.Now().Add(100 * time.Millisecond)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (ms *mpServer) output() string {
	b, _ := os.ReadFile(ms.dir + "/output")
	evs, _ := os.ReadFile(ms.dir + "/events")
	return "--- server output:\n" + string(b) + "--- events:\n" + string(evs)
}

// workerPIDs returns every worker pid the events show (workerstart), current or past.
func (ms *mpServer) workerPIDs() []int {
	var pids []int
	for _, e := range ms.events() {
		if e.Name == "workerstart" {
			pids = append(pids, e.PID)
		}
	}
	return pids
}

// signal sends sig to the manager.
func (ms *mpServer) signal(sig syscall.Signal) {
	ms.t.Helper()
	if err := ms.cmd.Process.Signal(sig); err != nil {
		ms.t.Fatalf("signalling the manager: %v", err)
	}
}

// wait waits for the manager to exit and returns its status.
func (ms *mpServer) wait(timeout time.Duration) *os.ProcessState {
	ms.t.Helper()
	select {
	case <-ms.exited:
		return ms.state
	case <-time.After(timeout):
		ms.t.Fatalf("the manager did not exit within %v\n%s", timeout, ms.output())
		return nil
	}
}

func (ms *mpServer) cleanup() {
	t := ms.t
	select {
	case <-ms.exited:
	default:
		_ = ms.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-ms.exited:
		case <-time.After(mpTimeout):
			t.Errorf("the manager did not stop within %v of SIGTERM: killing the tree", mpTimeout)
			_ = ms.cmd.Process.Kill()
			<-ms.exited
		}
	}
	for _, pid := range ms.workerPIDs() {
		if !mpGoneWithin(pid, 5*time.Second) {
			t.Errorf("worker pid %d outlived the manager: killing it", pid)
			_ = unix.Kill(pid, unix.SIGKILL)
			mpGoneWithin(pid, 5*time.Second)
		}
	}
	// The server's processes run the race-enabled binary too: a race there is a failure here.
	if out := ms.output(); strings.Contains(out, "DATA RACE") || (strings.Contains(out, "panic:") && !ms.allowPanic) {
		t.Errorf("a server process reported a data race or a panic")
	}
	if t.Failed() {
		t.Log(ms.output())
	}
	ms.out.Close()
}

// mpGone reports whether pid no longer runs: it does not exist, or it is a zombie (reaped
// here when it was re-parented to this process).
func mpGone(pid int) bool {
	var ws unix.WaitStatus
	if n, _ := unix.Wait4(pid, &ws, unix.WNOHANG, nil); n == pid {
		return true
	}
	if errors.Is(unix.Kill(pid, 0), unix.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// "pid (comm) S ...": the state follows the last ')'.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
		return true
	}
	return false
}

func mpGoneWithin(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !mpGone(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// mpClient is a connection to a test server.
type mpClient struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func (ms *mpServer) dial() *mpClient {
	ms.t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(ms.Port), mpTimeout)
	if err != nil {
		ms.t.Fatalf("dial: %v", err)
	}
	ms.t.Cleanup(func() { c.Close() })
	return &mpClient{t: ms.t, c: c, r: bufio.NewReader(c)}
}

// do sends a request line and returns the reply's fields.
func (c *mpClient) do(line string) []string {
	c.t.Helper()
	c.send(line)
	return c.read()
}

func (c *mpClient) send(line string) {
	c.t.Helper()
	_ = c.c.SetWriteDeadline(time.Now().Add(mpTimeout))
	if _, err := c.c.Write([]byte(line + "\n")); err != nil {
		c.t.Fatalf("write %q: %v", line, err)
	}
}

// read returns the next line's fields.
func (c *mpClient) read() []string {
	c.t.Helper()
	l, err := c.readLine()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return strings.Fields(l)
}

func (c *mpClient) readLine() (string, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(mpTimeout))
	l, err := c.r.ReadString('\n')
	return strings.TrimSuffix(l, "\n"), err
}

// who returns the worker id and pid serving the connection, and its session id.
func (c *mpClient) who() (id, pid int, fd int64) {
	c.t.Helper()
	f := c.do("who")
	if len(f) != 4 || f[0] != "who" {
		c.t.Fatalf("who: reply %q", f)
	}
	fd, _ = strconv.ParseInt(f[3], 10, 64)
	return atoi(f[1]), atoi(f[2]), fd
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
