package swoole_test

// The role matrix: every connection call and process call, made from every kind of process
// that can call it (event worker, another event worker, task worker, user process, manager,
// master, a goroutine of a worker), in every mode (ModeBase in one process, ModeBase with
// worker processes, ModeProcess). Each cell asserts Swoole's behaviour or the documented
// error code.
//
// How a cell runs: the test opens two connections, A and B, to the "matrix" server. It sends
// "probe <caller> <fd of B>" on A. The worker that reads it hands the probe to the caller
// (itself, the other worker by SendMessage, a task worker by Task, the user process through
// its ExportSocket, the manager or the master by Command, or a goroutine), which runs
// matrixProbe on A and B: each call's Swoole code goes into one "probe" event, what it sends
// reaches A, and its Close of B reaches B.

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

func init() { mpMoreServers["matrix"] = matrixServer }

// matrixMode is one column of the matrix: how the server runs.
type matrixMode struct {
	name    string
	env     []string
	callers []string // the kinds of process that exist in this mode
}

var matrixModes = []matrixMode{
	{"base-1proc", []string{mpEnvWorkers + "=1", matrixEnvExtras + "=0"}, []string{"worker", "goroutine"}},
	{"base-nproc", []string{mpEnvWorkers + "=2"}, []string{"worker", "otherworker", "task", "userproc", "manager", "goroutine"}},
	{"process", []string{mpEnvWorkers + "=2", mpEnvMode + "=process"}, []string{"worker", "otherworker", "task", "userproc", "manager", "master", "goroutine"}},
	{"thread", []string{mpEnvWorkers + "=2", mpEnvMode + "=thread"}, []string{"worker", "otherworker", "task", "userproc", "manager", "master", "goroutine"}},
}

// matrixEnvExtras: "0" runs the matrix server with no task worker and no user process (so
// that worker_num 1 is one process).
const matrixEnvExtras = "GOSWOOLE_TEST_MATRIX_EXTRAS"

// matrixSteps are the calls of a probe, in order.
var matrixSteps = []string{"exist", "info", "list", "send", "pause", "resume", "protect", "sendfile", "timer", "msgall", "stats", "workerpid", "command", "task", "close"}

// matrixExpect is the Swoole code each (mode, caller, step) must give where it is not 0.
// The keys are "mode/caller/step"; "*" matches any mode.
var matrixExpect = map[string]int{
	// A task worker cannot hand out tasks (Swoole: "Server->task() cannot use in the
	// task-worker").
	"*/task/task": swoole.ErrOperationNotSupport,
}

func matrixWant(mode, caller, step string) int {
	if c, ok := matrixExpect[mode+"/"+caller+"/"+step]; ok {
		return c
	}
	if c, ok := matrixExpect["*/"+caller+"/"+step]; ok {
		return c
	}
	return 0
}

// matrixServer is the matrix's test server: worker_num from the environment, one task
// worker and one user process (unless matrixEnvExtras is "0").
func matrixServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	workers := envInt(mpEnvWorkers, 2)
	extras := os.Getenv(matrixEnvExtras) != "0"
	set := swoole.Settings{
		WorkerNum: workers, LogLevel: swoole.LogLevelWarning, MaxConnection: 1024,
		OpenEOFSplit: true, PackageEOF: "\n", MaxWaitTime: 3 * time.Second,
	}
	if extras {
		set.TaskWorkerNum = 1
	}
	if mpMode() != swoole.ModeBase {
		set.DispatchMode = swoole.DispatchFDMod
	}
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	var proc *swoole.Process
	if extras {
		proc = swoole.NewProcess(func(p *swoole.Process) {
			sock := p.ExportSocket()
			buf := make([]byte, 4096)
			for {
				n, err := sock.Read(buf)
				if err != nil {
					return
				}
				matrixRun(s, "userproc", string(buf[:n]))
			}
		})
		if _, err := s.AddProcess(proc); err != nil {
			fmt.Fprintln(os.Stderr, "AddProcess:", err)
			return 2
		}
	}
	probe := func(s *swoole.Server, data []byte) []byte {
		caller, req, _ := strings.Cut(string(data), " ")
		matrixRun(s, caller, req)
		return []byte("ok")
	}
	_ = s.AddCommand("probe", swoole.CommandMaster|swoole.CommandManager, probe)
	_ = s.AddCommand("ping", swoole.CommandEventWorker, func(_ *swoole.Server, data []byte) []byte {
		return append([]byte("pong "), data...)
	})
	s.OnManagerStart(func(s *swoole.Server) { mpEvent("managerstart", port) })
	s.OnStart(func(s *swoole.Server) {
		if !extras && workers == 1 {
			mpEvent("managerstart", port) // one process: it is ready when it starts
		}
	})
	s.OnPipeMessage(func(s *swoole.Server, src int, data []byte) {
		if req, ok := strings.CutPrefix(string(data), "probe "); ok {
			matrixRun(s, "otherworker", req)
			return
		}
		mpEvent("pipemessage", s.GetWorkerID(), src, string(data))
	})
	if extras {
		s.OnTask(func(s *swoole.Server, _ int, _ int, data []byte) any {
			if string(data) != "none" {
				matrixRun(s, "task", string(data))
			}
			return nil
		})
		s.OnFinish(func(*swoole.Server, int, []byte) {})
	}
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		cmd, arg, _ := strings.Cut(strings.TrimSuffix(string(data), "\n"), " ")
		reply := func(format string, args ...any) { _ = s.Send(fd, []byte(fmt.Sprintf(format, args...)+"\n")) }
		switch cmd {
		case "who":
			reply("who %d %d %d", s.GetWorkerID(), os.Getpid(), fd)
		case "echo":
			reply("%s", arg)
		case "probe": // probe <caller> <fd B>
			caller, fdB, _ := strings.Cut(arg, " ")
			req := strconv.FormatInt(fd, 10) + " " + fdB
			var err error
			switch caller {
			case "worker":
				matrixRun(s, caller, req)
			case "goroutine":
				go matrixRun(s, caller, req)
			case "otherworker":
				err = s.SendMessage("probe "+req, 1-s.GetWorkerID())
			case "task":
				_, err = s.Task(req, -1)
			case "userproc":
				_, err = proc.ExportSocket().Write([]byte(req))
			case "manager":
				_, err = s.Command("probe", 0, swoole.CommandManager, "manager "+req)
			case "master":
				_, err = s.Command("probe", 0, swoole.CommandMaster, "master "+req)
			}
			reply("probing %s %d", caller, mpCode(err))
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

// matrixRun runs the probe req ("<fd A> <fd B>") as caller, and logs its codes as one
// "probe" event: "probe <pid> <caller> <step>=<code> ...".
func matrixRun(s *swoole.Server, caller, req string) {
	var a, b int64
	fmt.Sscan(req, &a, &b)
	codes := make([]string, 0, len(matrixSteps))
	add := func(step string, code int) { codes = append(codes, step+"="+strconv.Itoa(code)) }
	if s.Exist(a) {
		add("exist", 0)
	} else {
		add("exist", 1)
	}
	_, err := s.GetClientInfo(a, -1, false)
	add("info", mpCode(err))
	ids, err := s.GetClientList(0, 100)
	if err == nil && !slices.Contains(ids, a) {
		add("list", -1)
	} else {
		add("list", mpCode(err))
	}
	add("send", mpCode(s.Send(a, []byte("from "+caller+"\n"))))
	add("pause", mpCode(s.Pause(a)))
	add("resume", mpCode(s.Resume(a)))
	add("protect", mpCode(s.Protect(a, true)))
	add("sendfile", mpCode(s.SendFile(a, os.Getenv(mpEnvDir)+"/sendfile", 0, 0)))
	_, err = s.After(1, func() { mpEvent("timerfired", caller) })
	add("timer", mpCode(err))
	// A pipe message to every worker and task worker but the caller itself.
	st := s.Stats()
	msgCode, sentTo := 0, []string{}
	for id := range st.WorkerNum + st.TaskWorkerNum {
		if id == s.GetWorkerID() {
			continue
		}
		if c := mpCode(s.SendMessage("pm "+caller+" "+strconv.Itoa(id), id)); c != 0 {
			msgCode = c
		}
		sentTo = append(sentTo, strconv.Itoa(id))
	}
	add("msgall", msgCode)
	if st.WorkerNum == s.Setting().WorkerNum {
		add("stats", 0)
	} else {
		add("stats", -1)
	}
	if s.GetWorkerPID(st.WorkerNum-1) > 0 {
		add("workerpid", 0)
	} else {
		add("workerpid", -1)
	}
	if r, err := s.Command("ping", 0, swoole.CommandEventWorker, caller); err != nil || string(r) != "pong "+caller {
		add("command", -1)
		if err != nil {
			add("command", mpCode(err))
		}
	} else {
		add("command", 0)
	}
	if st.TaskWorkerNum > 0 {
		_, err = s.Task("none", -1)
		add("task", mpCode(err))
	} else {
		add("task", 0)
	}
	add("close", mpCode(s.Close(b, false)))
	mpEvent("probe", caller, strings.Join(codes, " "), "msgto="+strings.Join(sentTo, ","))
}

// TestRoleMatrix runs every cell of the matrix: each kind of calling process in each mode.
func TestRoleMatrix(t *testing.T) {
	for _, mode := range matrixModes {
		t.Run(mode.name, func(t *testing.T) {
			ms := mpStartServer(t, "matrix", "managerstart", mode.env...)
			if err := os.WriteFile(ms.dir+"/sendfile", []byte("sendfile data\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			procs := 3 // two workers and a task worker
			if mode.name == "base-1proc" {
				procs = 1
			}
			for _, caller := range mode.callers {
				t.Run(caller, func(t *testing.T) { matrixCell(t, ms, mode.name, caller, procs) })
			}
		})
	}
}

func matrixCell(t *testing.T, ms *mpServer, mode, caller string, procs int) {
	a, b := ms.dial(), ms.dial()
	_, _, fdB := b.who()
	if _, _, fdA := a.who(); fdA == fdB {
		t.Fatalf("two connections with one session id %d", fdA)
	}
	a.send("probe " + caller + " " + strconv.FormatInt(fdB, 10))
	// A receives the probe's reply, its Send and its SendFile, in an order that depends on
	// which process made them.
	want := map[string]bool{"probing " + caller + " 0": true, "from " + caller: true, "sendfile data": true}
	if c := matrixWant(mode, caller, "send"); c != 0 {
		delete(want, "from "+caller)
	}
	if c := matrixWant(mode, caller, "sendfile"); c != 0 {
		delete(want, "sendfile data")
	}
	var got []string
	for len(want) > 0 {
		l, err := a.readLine()
		if err != nil {
			t.Fatalf("connection A: %v after %q, still waiting for %v\n%s", err, got, want, ms.output())
		}
		got = append(got, l)
		delete(want, l)
	}
	ev := ms.waitEvent("probe", func(e mpEv) bool { return e.Fields[0] == caller })
	codes := map[string]int{}
	for _, f := range ev.Fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		codes[k], _ = strconv.Atoi(v)
	}
	for _, step := range matrixSteps {
		if got, want := codes[step], matrixWant(mode, caller, step); got != want {
			t.Errorf("%s from %s: code %d, want %d", step, caller, got, want)
		}
	}
	// B was closed by the caller: it reads end-of-file.
	if codes["close"] == 0 {
		_ = b.c.SetReadDeadline(time.Now().Add(mpTimeout))
		if _, err := b.r.ReadString('\n'); err != io.EOF {
			t.Errorf("connection B after Close from %s: %v, want EOF", caller, err)
		}
	}
	// The timer fired in the caller's process, and the pipe messages reached every worker
	// and task worker but the caller.
	if codes["timer"] == 0 {
		ms.waitEvent("timerfired", func(e mpEv) bool { return e.Fields[0] == caller })
	}
	if codes["msgall"] == 0 {
		var to []string
		for _, f := range ev.Fields[1:] {
			if v, ok := strings.CutPrefix(f, "msgto="); ok && v != "" {
				to = strings.Split(v, ",")
			}
		}
		if len(to) < procs-1 {
			t.Errorf("pipe messages from %s went to %v, want every worker and task worker but itself (%d)", caller, to, procs)
		}
		for _, id := range to {
			text := "pm " + caller + " " + id
			ms.waitEvent("pipemessage", func(e mpEv) bool {
				return len(e.Fields) > 2 && e.Fields[0] == id && strings.Join(e.Fields[2:], " ") == text
			})
		}
	}
	// A still works (lines the probe sent late may come first).
	a.send("echo still")
	for {
		l, err := a.readLine()
		if err != nil {
			t.Fatalf("connection A after the probe: %v", err)
		}
		if l == "still" {
			break
		}
	}
}
