package swoole_test

// Over real processes: user processes (AddProcess, ExportSocket, the seed's broadcast
// example), SendMessage between every kind of process, Command between processes (and the
// seed's addCommand example), the worker API (GetWorkerPID, GetWorkerStatus, ...). The
// servers are test builders run by TestMain (multiproc_helpers_test.go).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// mpMoreServers are test server builders beyond runTestServer's own.
var mpMoreServers = map[string]func() int{
	"uproc":   mpUserProcServer,
	"cmdseed": mpCommandSeedServer,
	"udpproc": mpUDPProcessServer, // modeprocess_test.go
}

const (
	mpEnvNoPipe  = "GOSWOOLE_TEST_NO_PIPE"  // "1": no OnPipeMessage
	mpEnvPidFile = "GOSWOOLE_TEST_PID_FILE" // pid_file
)

// mpUserProcServer is a line server with mpEnvWorkers workers (default 2) and two user
// processes: 0 is the seed's broadcast relay (what a worker writes to its ExportSocket goes
// to every connection; "ask <x>" is answered on the socket with "answer <x>"), 1 carries out
// the requests workers send it with SendMessage (see upRequest) and logs the results as
// "up-*" events. Worker requests:
//
//	who                       → "who <worker id> <pid> <session id>"
//	pids                      → "pids <master> <manager> <pid of each global id ...>"
//	status <id>               → "status <status> <error code>"
//	msg <dst> <text>          → SendMessage(text, dst): "msg <error code>"
//	big <dst> <n>             → SendMessage(n bytes, dst): "big <error code> <crc32>"
//	up <request>              → SendMessage(request, user process 1): "up <error code>"
//	relay <text>              → writes text to user process 0's socket (it broadcasts it)
//	ask <text>                → writes "ask <text>" to the socket, reads the answer: "answer <text>"
//	cmd <name> <type> <id> [data] → Command: "cmd <error code> <reply>"
func mpUserProcServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	workers := envInt(mpEnvWorkers, 2)
	set := swoole.Settings{
		WorkerNum: workers, LogLevel: swoole.LogLevelWarning, MaxConnection: 1024,
		OpenEOFSplit: true, PackageEOF: "\n", MaxWaitTime: 3 * time.Second,
		PidFile: os.Getenv(mpEnvPidFile),
	}
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	userID := func(i int) int { return workers + i } // no task workers

	// The seed's broadcast example, in Go.
	relay := swoole.NewProcess(func(p *swoole.Process) {
		mpEvent("uprocstart", 0, s.GetWorkerID(), s.GetWorkerPID(userID(0)) == os.Getpid(), s.GetManagerPID(), s.GetMasterPID())
		socket := p.ExportSocket()
		buf := make([]byte, 64<<10)
		for {
			n, err := socket.Read(buf)
			if err != nil {
				mpEvent("uprocerror", 0, err)
				return
			}
			msg := buf[:n]
			if rest, ok := bytes.CutPrefix(msg, []byte("ask ")); ok {
				_, _ = socket.Write(append([]byte("answer "), rest...))
				continue
			}
			for conn := range s.Connections() {
				_ = s.Send(conn, msg)
			}
		}
	})
	agent := swoole.NewProcess(func(p *swoole.Process) {
		st, _ := s.GetWorkerStatus(-1)
		mpEvent("uprocstart", 1, s.GetWorkerID(), s.GetWorkerPID(userID(1)) == os.Getpid(), s.GetManagerPID(), s.GetMasterPID(), st)
		select {} // its work comes as OnPipeMessage
	})
	for i, p := range []*swoole.Process{relay, agent} {
		if idx, err := s.AddProcess(p); err != nil || idx != i {
			fmt.Fprintln(os.Stderr, "AddProcess:", idx, err)
			return 2
		}
	}
	getpid := func(s *swoole.Server, data []byte) []byte {
		return []byte(fmt.Sprintf("pid=%d data=%s", os.Getpid(), data))
	}
	_ = s.AddCommand("getpid", swoole.CommandMaster|swoole.CommandManager|swoole.CommandEventWorker, getpid)
	_ = s.AddCommand("workeronly", swoole.CommandEventWorker, getpid)
	// bounce, in worker b, asks the caller worker a (data) for its pid while a waits for b.
	_ = s.AddCommand("bounce", swoole.CommandEventWorker, func(s *swoole.Server, data []byte) []byte {
		a, _ := strconv.Atoi(string(data))
		r, err := s.Command("getpid", a, swoole.CommandEventWorker, "bounced")
		return []byte(fmt.Sprintf("bounce(%d)%s", mpCode(err), r))
	})

	s.OnManagerStart(func(s *swoole.Server) {
		mpEvent("managerstart", port, s.GetManagerPID())
		// The manager asks a worker, and writes to a user process.
		r, err := s.Command("getpid", 0, swoole.CommandEventWorker, "from-manager")
		mpEvent("mgr-cmd", mpCode(err), string(r))
		mpEvent("mgr-msg", mpCode(s.SendMessage("from-manager", userID(1))))
	})
	s.OnWorkerStart(func(s *swoole.Server, id int) { mpEvent("workerstart", id) })
	s.OnWorkerError(func(s *swoole.Server, id, pid, code, sig int) { mpEvent("workererror", id, pid, code, sig) })
	if os.Getenv(mpEnvNoPipe) != "1" {
		s.OnPipeMessage(func(s *swoole.Server, src int, data []byte) {
			if s.GetWorkerID() < 0 { // user process 1
				upRequest(s, src, string(data))
				return
			}
			if len(data) > 1000 {
				mpEvent("bigmessage", s.GetWorkerID(), src, len(data), crc32.ChecksumIEEE(data))
				return
			}
			mpEvent("pipemessage", s.GetWorkerID(), src, string(data))
		})
	}
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		cmd, arg, _ := strings.Cut(strings.TrimSuffix(string(data), "\n"), " ")
		reply := func(format string, args ...any) { _ = s.Send(fd, []byte(fmt.Sprintf(format, args...)+"\n")) }
		switch cmd {
		case "who":
			reply("who %d %d %d", s.GetWorkerID(), os.Getpid(), fd)
		case "pids":
			out := fmt.Sprintf("pids %d %d", s.GetMasterPID(), s.GetManagerPID())
			for i := range userID(2) {
				out += " " + strconv.Itoa(s.GetWorkerPID(i))
			}
			reply("%s", out)
		case "status":
			id, _ := strconv.Atoi(arg)
			st, err := s.GetWorkerStatus(id)
			reply("status %d %d", st, mpCode(err))
		case "msg":
			to, text, _ := strings.Cut(arg, " ")
			dst, _ := strconv.Atoi(to)
			reply("msg %d", mpCode(s.SendMessage(text, dst)))
		case "big":
			var dst, n int
			fmt.Sscan(arg, &dst, &n)
			msg := mpBig(n)
			reply("big %d %d", mpCode(s.SendMessage(msg, dst)), crc32.ChecksumIEEE(msg))
		case "up":
			reply("up %d", mpCode(s.SendMessage(arg, userID(1))))
		case "relay":
			if _, err := relay.ExportSocket().Write([]byte(arg + "\n")); err != nil {
				reply("relay error %v", err)
			}
		case "ask":
			c := relay.ExportSocket()
			if _, err := c.Write([]byte("ask " + arg)); err != nil {
				reply("ask error %v", err)
				return
			}
			buf := make([]byte, 1024)
			_ = c.SetReadDeadline(time.Now().Add(mpTimeout))
			n, err := c.Read(buf)
			if err != nil {
				reply("ask error %v", err)
				return
			}
			reply("%s", buf[:n])
		case "cmd":
			f := strings.SplitN(arg, " ", 4)
			typ, _ := strconv.Atoi(f[1])
			id, _ := strconv.Atoi(f[2])
			data := ""
			if len(f) > 3 {
				data = f[3]
			}
			r, err := s.Command(f[0], id, typ, data)
			reply("cmd %d %s", mpCode(err), r)
		default:
			reply("unknown %q", cmd)
		}
	})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	mpEvent("exit")
	return 0
}

// mpBig is n bytes of a pattern (for large messages).
func mpBig(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// upRequest carries out, in user process 1, a request a worker sent it, and logs the result.
func upRequest(s *swoole.Server, src int, req string) {
	cmd, arg, _ := strings.Cut(req, " ")
	switch cmd {
	case "send":
		to, text, _ := strings.Cut(arg, " ")
		fd, _ := strconv.ParseInt(to, 10, 64)
		mpEvent("up-send", mpCode(s.Send(fd, []byte(text+"\n"))))
	case "exist":
		fd, _ := strconv.ParseInt(arg, 10, 64)
		mpEvent("up-exist", s.Exist(fd))
	case "list":
		ids, err := s.GetClientList(0, 100)
		out := []any{mpCode(err), len(ids)}
		for _, id := range ids {
			out = append(out, id)
		}
		mpEvent("up-list", out...)
	case "stats":
		st := s.Stats()
		mpEvent("up-stats", st.ConnectionNum, st.WorkerNum)
	case "close":
		fd, _ := strconv.ParseInt(arg, 10, 64)
		mpEvent("up-close", mpCode(s.Close(fd, false)))
	case "msg":
		to, text, _ := strings.Cut(arg, " ")
		dst, _ := strconv.Atoi(to)
		mpEvent("up-msg", mpCode(s.SendMessage(text, dst)))
	case "big":
		var dst, n int
		fmt.Sscan(arg, &dst, &n)
		msg := mpBig(n)
		mpEvent("up-big", mpCode(s.SendMessage(msg, dst)), crc32.ChecksumIEEE(msg))
	case "cmd":
		f := strings.SplitN(arg, " ", 3)
		typ, _ := strconv.Atoi(f[1])
		id, _ := strconv.Atoi(f[2])
		r, err := s.Command(f[0], id, typ, "from-up")
		mpEvent("up-cmd", mpCode(err), string(r))
	case "pids":
		st, err := s.GetWorkerStatus(-1)
		mpEvent("up-pids", s.GetWorkerID(), s.GetWorkerPID(-1) == os.Getpid(), s.WorkerPID() == os.Getpid(), s.GetManagerPID(), s.GetMasterPID(), s.IsTaskWorker(), st, mpCode(err))
	case "timer":
		// A user process's timers run on a timer loop of its own (Swoole's do too).
		_, err := s.Tick(10, func(id int) {
			mpEvent("up-tick", s.ClearTimer(id))
		})
		mpEvent("up-timer", mpCode(err))
	case "stop":
		id, _ := strconv.Atoi(arg)
		mpEvent("up-stop", mpCode(s.Stop(id, false)))
	default:
		mpEvent("up-pipemessage", src, req)
	}
}

// mpCommandSeedServer is the seed's addCommand example (worker_num 2): OnStart runs the
// commands and logs "seed <what> <ok>", then shuts the server down.
func mpCommandSeedServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeBase, swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	_ = s.AddCommand("test_getpid", swoole.CommandMaster|swoole.CommandEventWorker, func(s *swoole.Server, data []byte) []byte {
		var v map[string]string
		_ = s.Decode(data, &v)
		mpEvent("seed-cmd", v["type"])
		b, _ := json.Marshal(map[string]int{"pid": os.Getpid()})
		return b
	})
	if err := s.Set(swoole.Settings{LogFile: "/dev/null", WorkerNum: 2}); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	s.OnManagerStart(func(s *swoole.Server) { mpEvent("managerstart", port, s.GetManagerPID()) })
	s.OnWorkerStart(func(s *swoole.Server, id int) { mpEvent("workerstart", id) })
	s.OnStart(func(s *swoole.Server) {
		pidOf := func(r []byte, err error) int {
			var v struct{ Pid int }
			if err != nil || json.Unmarshal(r, &v) != nil {
				return -1
			}
			return v.Pid
		}
		pid := pidOf(s.Command("test_getpid", 0, swoole.CommandMaster, map[string]string{"type": "master"}))
		mpEvent("seed", "master", pid == s.GetMasterPID() && pid > 0)
		pid = pidOf(s.Command("test_getpid", 1, swoole.CommandEventWorker, map[string]string{"type": "worker"}))
		mpEvent("seed", "worker", pid == s.GetWorkerPID(1) && pid > 0)
		r, err := s.Command("test_not_found", 1, swoole.CommandEventWorker, map[string]string{"type": "worker"})
		mpEvent("seed", "not_found", r == nil && mpCode(err) == swoole.ErrServerInvalidCommand)
		_ = s.Shutdown()
	})
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	mpEvent("exit")
	return 0
}

// ---- the test side ----

// upStart starts the uproc server and checks at cleanup that its user processes are gone too.
func upStart(t *testing.T, env ...string) *mpServer {
	t.Helper()
	var ms *mpServer
	t.Cleanup(func() { // registered first: runs after the server's own cleanup stopped it
		if ms == nil {
			return
		}
		for _, e := range ms.events() {
			if e.Name == "uprocstart" && !mpGoneWithin(e.PID, 5*time.Second) {
				t.Errorf("user process pid %d outlived the manager: killing it", e.PID)
				_ = syscall.Kill(e.PID, syscall.SIGKILL)
				mpGoneWithin(e.PID, 5*time.Second)
			}
		}
	})
	ms = mpStartServer(t, "uproc", "managerstart", env...)
	return ms
}

// upPID waits for user process i's start and returns its pid.
func (ms *mpServer) upPID(i int) int {
	ms.t.Helper()
	return ms.waitEvent("uprocstart", func(e mpEv) bool { return e.int(0) == i }).PID
}

func wantFields(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("reply %q, want %q", got, want)
	}
}

// TestProcUserProcessesWithOneWorker: AddProcess with worker_num 1 runs a manager, the worker
// and the user processes; the worker API answers for every process kind.
func TestProcUserProcessesWithOneWorker(t *testing.T) {
	ms := upStart(t, mpEnvWorkers+"=1")
	u0, u1 := ms.upPID(0), ms.upPID(1)
	for _, i := range []int{0, 1} {
		e := ms.waitEvent("uprocstart", func(e mpEv) bool { return e.int(0) == i })
		// GetWorkerID -1 (as Swoole), GetWorkerPID(own id) is its pid, manager pid known
		// (the master pid, worker 0's, may still be 0 here: worker 0 may not have started).
		if e.Fields[1] != "-1" || e.Fields[2] != "true" || e.int(3) != ms.Manager {
			t.Errorf("user process %d: GetWorkerID, GetWorkerPID(id)==pid, GetManagerPID = %v (manager %d)", i, e.Fields[1:4], ms.Manager)
		}
	}
	if e := ms.waitEvent("uprocstart", func(e mpEv) bool { return e.int(0) == 1 }); e.Fields[5] != strconv.Itoa(swoole.WorkerBusy) {
		t.Errorf("GetWorkerStatus(-1) in a user process = %s, want busy", e.Fields[5])
	}
	c := ms.dial()
	id, wpid, _ := c.who()
	if id != 0 {
		t.Fatalf("worker id %d", id)
	}
	f := c.do("pids")
	// master (worker 0 in ModeBase), manager, worker 0, user process 0 (id 1), 1 (id 2)
	wantFields(t, f, "pids", strconv.Itoa(wpid), strconv.Itoa(ms.Manager), strconv.Itoa(wpid), strconv.Itoa(u0), strconv.Itoa(u1))
	wantFields(t, c.do("status 1"), "status", strconv.Itoa(swoole.WorkerBusy), "0")
	wantFields(t, c.do("status 3"), "status", "0", strconv.Itoa(swoole.ErrInvalidParams))

	// Inside a user process: the properties.
	wantFields(t, c.do("up pids"), "up", "0")
	e := ms.waitEvent("up-pids", nil)
	want := fmt.Sprintf("-1 true true %d %d false %d 0", ms.Manager, wpid, swoole.WorkerBusy)
	if got := strings.Join(e.Fields, " "); got != want {
		t.Errorf("user process properties: %q, want %q (GetWorkerID, GetWorkerPID(-1), WorkerPID, GetManagerPID, GetMasterPID, IsTaskWorker, GetWorkerStatus(-1))", got, want)
	}
	// Timers run in a user process, on a loop of its own.
	c.do("up timer")
	if e := ms.waitEvent("up-timer", nil); e.int(0) != 0 {
		t.Errorf("Tick in a user process: code %d, want 0", e.int(0))
	}
	if e := ms.waitEvent("up-tick", nil); e.Fields[0] != "true" {
		t.Errorf("ClearTimer in the user process's own tick: %v, want true", e.Fields[0])
	}
}

// TestProcBroadcastExample is the seed's addProcess example: a worker writes what a client
// sent to the user process's socket, the user process sends it to every connection.
func TestProcBroadcastExample(t *testing.T) {
	ms := upStart(t)
	ms.upPID(0)
	clients := make([]*mpClient, 4)
	workers := map[int]bool{}
	for i := range clients {
		clients[i] = ms.dial()
		id, _, _ := clients[i].who()
		workers[id] = true
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
	t.Logf("clients on workers %v", workers)
	// And back: the user process answers on the socket, the worker reads it.
	wantFields(t, clients[0].do("ask ping"), "answer", "ping")
}

// TestProcUserProcessCalls: Send, Close, Exist, GetClientList, Stats, SendMessage and Command
// inside a user process.
func TestProcUserProcessCalls(t *testing.T) {
	ms := upStart(t)
	ms.upPID(1)
	a, b := ms.dial(), ms.dial()
	aw, _, afd := a.who()
	_, _, bfd := b.who()

	wantFields(t, a.do(fmt.Sprintf("up send %d from-up", bfd)), "up", "0")
	wantFields(t, b.read(), "from-up")
	if e := ms.waitEvent("up-send", nil); e.int(0) != 0 {
		t.Errorf("Send in a user process: code %d", e.int(0))
	}
	a.do(fmt.Sprintf("up exist %d", bfd))
	if e := ms.waitEvent("up-exist", nil); e.Fields[0] != "true" {
		t.Errorf("Exist in a user process: %v", e.Fields)
	}
	a.do("up list")
	if e := ms.waitEvent("up-list", nil); strings.Join(e.Fields, " ") != fmt.Sprintf("0 2 %d %d", min(afd, bfd), max(afd, bfd)) {
		t.Errorf("GetClientList in a user process: %v (sessions %d %d)", e.Fields, afd, bfd)
	}
	a.do("up stats")
	if e := ms.waitEvent("up-stats", nil); e.int(0) != 2 || e.int(1) != 2 {
		t.Errorf("Stats in a user process: connection_num, worker_num = %v", e.Fields)
	}
	// SendMessage from the user process (id 3) to a worker.
	a.do(fmt.Sprintf("up msg %d hi-from-up", aw))
	if e := ms.waitEvent("up-msg", nil); e.int(0) != 0 {
		t.Errorf("SendMessage in a user process: code %d", e.int(0))
	}
	ms.waitEvent("pipemessage", func(e mpEv) bool { return e.int(0) == aw && e.int(1) == 3 && e.Fields[2] == "hi-from-up" })
	// Command from the user process: to a worker, to the manager.
	a.do("up cmd getpid 8 1")
	e := ms.waitEvent("up-cmd", nil)
	if e.int(0) != 0 || !strings.HasPrefix(strings.Join(e.Fields[1:], " "), "pid=") {
		t.Errorf("Command to worker 1 from a user process: %v", e.Fields)
	}
	a.do("up cmd getpid 32 0")
	ms.eventually("the manager's answer", func() bool {
		return ms.count("up-cmd", func(e mpEv) bool {
			return strings.Join(e.Fields, " ") == fmt.Sprintf("0 pid=%d data=from-up", ms.Manager)
		}) == 1
	})
	// Close from the user process.
	a.do(fmt.Sprintf("up close %d", bfd))
	if e := ms.waitEvent("up-close", nil); e.int(0) != 0 {
		t.Errorf("Close in a user process: code %d", e.int(0))
	}
	if _, err := b.readLine(); err == nil {
		t.Errorf("the connection closed by the user process still reads")
	}
}

// TestProcSendMessage: between workers, worker ↔ user process, large messages, and the errors.
func TestProcSendMessage(t *testing.T) {
	ms := upStart(t)
	ms.upPID(1)
	// Two clients on two different workers.
	var conns [2]*mpClient
	for n := 0; conns[0] == nil || conns[1] == nil; n++ {
		if n > 40 {
			t.Fatal("40 connections all went to one worker")
		}
		c := ms.dial()
		id, _, _ := c.who()
		if conns[id] == nil {
			conns[id] = c
		}
	}
	wantFields(t, conns[0].do("msg 1 w0-to-w1"), "msg", "0")
	ms.waitEvent("pipemessage", func(e mpEv) bool { return e.int(0) == 1 && e.int(1) == 0 && e.Fields[2] == "w0-to-w1" })
	wantFields(t, conns[1].do("msg 0 w1-to-w0"), "msg", "0")
	ms.waitEvent("pipemessage", func(e mpEv) bool { return e.int(0) == 0 && e.int(1) == 1 && e.Fields[2] == "w1-to-w0" })
	// Worker → user process 1 (id 3): its OnPipeMessage gets the source id.
	wantFields(t, conns[1].do("msg 3 w1-to-up"), "msg", "0")
	ms.waitEvent("up-pipemessage", func(e mpEv) bool { return e.int(0) == 1 && e.Fields[1] == "w1-to-up" })
	// Large messages arrive whole: worker → worker, user process → worker.
	const n = 3<<20 + 17
	f := conns[0].do(fmt.Sprintf("big 1 %d", n))
	if len(f) != 3 || f[1] != "0" {
		t.Fatalf("big: %q", f)
	}
	ms.waitEvent("bigmessage", func(e mpEv) bool { return e.int(0) == 1 && e.int(1) == 0 && e.int(2) == n && e.Fields[3] == f[2] })
	conns[0].do(fmt.Sprintf("up big 0 %d", n))
	up := ms.waitEvent("up-big", nil)
	if up.int(0) != 0 {
		t.Fatalf("big from the user process: code %d", up.int(0))
	}
	ms.waitEvent("bigmessage", func(e mpEv) bool {
		return e.int(0) == 0 && e.int(1) == 3 && e.int(2) == n && e.Fields[3] == up.Fields[1]
	})
	// Errors (503): to itself, out of range.
	wantFields(t, conns[0].do("msg 0 self"), "msg", strconv.Itoa(swoole.ErrRefused))
	wantFields(t, conns[0].do("msg 4 nobody"), "msg", strconv.Itoa(swoole.ErrRefused))
	wantFields(t, conns[0].do("msg -1 nobody"), "msg", strconv.Itoa(swoole.ErrRefused))
	conns[0].do("up msg 3 self")
	if e := ms.waitEvent("up-msg", nil); e.int(0) != swoole.ErrRefused {
		t.Errorf("SendMessage from a user process to itself: code %d, want 503", e.int(0))
	}
}

// TestProcSendMessageNoHandler: with no OnPipeMessage, SendMessage is an error (503).
func TestProcSendMessageNoHandler(t *testing.T) {
	ms := upStart(t, mpEnvNoPipe+"=1")
	c := ms.dial()
	id, _, _ := c.who()
	wantFields(t, c.do(fmt.Sprintf("msg %d x", 1-id)), "msg", strconv.Itoa(swoole.ErrRefused))
}

// TestProcCommand: Command between workers, to the manager and the master (worker 0 in
// ModeBase), a command that calls back the waiting worker, and the errors.
func TestProcCommand(t *testing.T) {
	ms := upStart(t)
	c := ms.dial()
	id, _, _ := c.who()
	other := 1 - id
	f := c.do("pids")
	pids := []string{f[3], f[4]}
	wantFields(t, c.do(fmt.Sprintf("cmd getpid 8 %d hello", other)), "cmd", "0", "pid="+pids[other], "data=hello")
	wantFields(t, c.do(fmt.Sprintf("cmd getpid 8 %d here", id)), "cmd", "0", "pid="+pids[id], "data=here")
	wantFields(t, c.do("cmd getpid 32 0 m"), "cmd", "0", "pid="+strconv.Itoa(ms.Manager), "data=m")
	wantFields(t, c.do("cmd getpid 2 0 master"), "cmd", "0", "pid="+pids[0], "data=master")
	// The other worker asks this one back while this one waits for it.
	wantFields(t, c.do(fmt.Sprintf("cmd bounce 8 %d %d", other, id)), "cmd", "0", "bounce(0)pid="+pids[id], "data=bounced")
	// Errors: unknown name 9012, a type the command does not accept 507, ids out of range 505.
	wantFields(t, c.do("cmd test_not_found 8 1"), "cmd", strconv.Itoa(swoole.ErrServerInvalidCommand))
	wantFields(t, c.do("cmd workeronly 32 0"), "cmd", strconv.Itoa(swoole.ErrOperationNotSupport))
	wantFields(t, c.do("cmd getpid 8 2"), "cmd", strconv.Itoa(swoole.ErrInvalidParams))
	wantFields(t, c.do("cmd getpid 16 0"), "cmd", strconv.Itoa(swoole.ErrOperationNotSupport))
	// From the manager (OnManagerStart): Command to worker 0, SendMessage to user process 1.
	if e := ms.waitEvent("mgr-cmd", nil); strings.Join(e.Fields, " ") != "0 pid="+pids[0]+" data=from-manager" {
		t.Errorf("Command from the manager: %q", e.Fields)
	}
	if e := ms.waitEvent("mgr-msg", nil); e.int(0) != 0 {
		t.Errorf("SendMessage from the manager: code %d", e.int(0))
	}
	ms.waitEvent("up-pipemessage", func(e mpEv) bool { return e.int(0) == -1 && e.Fields[1] == "from-manager" })
}

// TestProcCommandSeedExample is the seed's addCommand example: OnStart (worker 0) asks the
// master and worker 1 for their pids and checks them; test_not_found is an error.
func TestProcCommandSeedExample(t *testing.T) {
	ms := mpStartServer(t, "cmdseed", "managerstart")
	for _, what := range []string{"master", "worker", "not_found"} {
		e := ms.waitEvent("seed", func(e mpEv) bool { return e.Fields[0] == what })
		if e.Fields[1] != "true" {
			t.Errorf("seed example, %s: the check failed\n%s", what, ms.output())
		}
	}
	if st := ms.wait(mpTimeout); !st.Success() {
		t.Errorf("the server exited with %v", st)
	}
}

// TestProcUserProcessLifecycle: a killed user process is started again (no WorkerError);
// a reload replaces the workers and leaves the user processes alone; at shutdown they end.
func TestProcUserProcessLifecycle(t *testing.T) {
	ms := upStart(t)
	u0, u1 := ms.upPID(0), ms.upPID(1)
	if err := syscall.Kill(u1, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e := ms.waitEvent("uprocstart", func(e mpEv) bool { return e.int(0) == 1 && e.PID != u1 })
	u1 = e.PID
	c := ms.dial()
	f := c.do("pids")
	if f[5] != strconv.Itoa(u0) || f[6] != strconv.Itoa(u1) {
		t.Errorf("pids after the restart: %q, want user processes %d %d", f, u0, u1)
	}
	if n := ms.count("workererror", nil); n != 0 {
		t.Errorf("%d WorkerError events for a user process", n)
	}
	oldW := []string{f[3], f[4]}
	ms.signal(syscall.SIGUSR1)
	ms.eventually("new workers", func() bool { return ms.count("workerstart", nil) >= 4 })
	c2 := ms.dial()
	ms.eventually("the reloaded workers' pids", func() bool {
		f = c2.do("pids")
		return f[3] != oldW[0] && f[4] != oldW[1] && f[3] != "-1" && f[4] != "-1"
	})
	if f[5] != strconv.Itoa(u0) || f[6] != strconv.Itoa(u1) {
		t.Errorf("a reload touched the user processes: %q, want %d %d", f, u0, u1)
	}
	if n := ms.count("uprocstart", nil); n != 3 {
		t.Errorf("%d user process starts, want 3 (2 + the restart)", n)
	}
	// Stop from a user process: the manager replaces worker 0.
	starts := ms.count("workerstart", func(e mpEv) bool { return e.int(0) == 0 })
	c2.do("up stop 0")
	if e := ms.waitEvent("up-stop", nil); e.int(0) != 0 {
		t.Errorf("Stop(0) in a user process: code %d", e.int(0))
	}
	ms.eventually("worker 0 replaced", func() bool {
		return ms.count("workerstart", func(e mpEv) bool { return e.int(0) == 0 }) > starts
	})
	ms.signal(syscall.SIGTERM)
	if st := ms.wait(mpTimeout); !st.Success() {
		t.Errorf("the manager exited with %v", st)
	}
	for _, pid := range []int{u0, u1} {
		if !mpGoneWithin(pid, 5*time.Second) {
			t.Errorf("user process %d still runs after the shutdown", pid)
		}
	}
}

// TestProcAddProcessArguments: AddProcess's errors, its indexes, and ExportSocket before
// and after it (in this process, which would be the manager).
func TestProcAddProcessArguments(t *testing.T) {
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeBase, swoole.SockTCP)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	if _, err := s.AddProcess(nil); mpCode(err) != swoole.ErrInvalidParams {
		t.Errorf("AddProcess(nil): %v", err)
	}
	if _, err := s.AddProcess(swoole.NewProcess(nil)); mpCode(err) != swoole.ErrInvalidParams {
		t.Errorf("AddProcess(NewProcess(nil)): %v", err)
	}
	p := swoole.NewProcess(func(*swoole.Process) {})
	if p.ExportSocket() != nil {
		t.Errorf("ExportSocket before AddProcess is not nil")
	}
	for want := range 2 {
		q := p
		if want == 1 {
			q = swoole.NewProcess(func(*swoole.Process) {})
		}
		if i, err := s.AddProcess(q); i != want || err != nil {
			t.Fatalf("AddProcess: %d, %v; want %d", i, err, want)
		}
		if q.ExportSocket() == nil {
			t.Fatalf("ExportSocket after AddProcess is nil")
		}
	}
	if _, err := s.AddProcess(p); mpCode(err) != swoole.ErrRefused {
		t.Errorf("AddProcess of the same process twice: %v", err)
	}
	// The pair: a Write on the workers' end is one datagram (the other end is the user
	// process's, which only a child gets; nothing reads it here).
	if n, err := p.ExportSocket().Write([]byte("x")); n != 1 || err != nil {
		t.Errorf("Write on the workers' end: %d, %v", n, err)
	}
}
