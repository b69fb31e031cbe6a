package swoole_test

// Over real processes: what task workers and user processes do with client connections and
// with the task queue.
//
//   - A task worker (in OnTask, in OnPipeMessage, in a timer) and a user process reach a
//     client connection with Send (2 MiB too), Close, Pause, Resume, SendFile, Exist and
//     GetClientInfo, in ModeProcess (through the master's reactors, as workers do) and in
//     ModeBase with workers (through the owning worker). Swoole: close_in_task_worker.phpt,
//     send_2m_in_task_worker.phpt, send_2m_in_user_process.phpt.
//   - Finish in a task that nobody waits for (sent by the manager, the master or a user
//     process) is an error, as Finish outside OnTask or outside a task worker is.
//   - A full task queue makes Task wait for room (up to max_wait_time), then 9007; tasks
//     queued past the bound all run, in task-id order.
//
// The server is the "taskroute" builder below, run by TestMain (multiproc_helpers_test.go).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

func init() { mpMoreServers["taskroute"] = trServer }

// trSeq is, in a task worker, the order check of the "seq" tasks (see trServer).
var trSeq struct {
	count, bad, next int
	last             map[int]int // sender → last task id
}

// trServer is a line server with mpEnvWorkers workers (default 2), taskEnvTasks task workers
// (default 1, task_ipc_mode taskEnvMode) and one user process. Requests on a connection:
//
//	who                      → "who <worker id> <pid> <session id>"
//	echo X                   → "X"
//	via <via> <tag> <op...>  → "via <error code>" at once; then the op runs in the process
//	                           via names, which logs "trdone <tag> <via> <result of trDo>":
//	                           task (OnTask), pipe (OnPipeMessage of the first task worker),
//	                           timer (a timer set in OnTask), uproc (the user process),
//	                           worker (this worker)
//	nap MS                   → a task that holds its task worker MS ms: "nap <code>"
//	block PATH               → a task that holds its task worker until PATH exists (it logs
//	                           "blocked" when it starts): "block <code>"
//	flood N                  → N tasks "seq <i>" sent in this callback, stopping at the first
//	                           error: "flood <sent> <code of the error> <ms taken>"
//	mark                     → a task that logs "seqdone <seq tasks run> <out of order>"
//
// The manager (the master in ModeProcess) sends a one-way task "fin manager" once started.
func trServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	workers := envInt(mpEnvWorkers, 2)
	set := swoole.Settings{
		WorkerNum:     workers,
		TaskWorkerNum: envInt(taskEnvTasks, 1),
		TaskIPCMode:   envInt(taskEnvMode, 1),
		TaskTmpdir:    os.Getenv(mpEnvDir) + "/tmp",
		LogLevel:      swoole.LogLevelWarning,
		MaxConnection: 1024,
		OpenEOFSplit:  true,
		PackageEOF:    "\n",
		MaxWaitTime:   3 * time.Second,
	}
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	uproc := swoole.NewProcess(func(p *swoole.Process) {
		sock := p.ExportSocket()
		buf := make([]byte, 64<<10)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				mpEvent("uprocerror", err)
				return
			}
			tag, op, _ := strings.Cut(string(buf[:n]), " ")
			mpEvent("trdone", tag, "uproc", trDo(s, op))
		}
	})
	if _, err := s.AddProcess(uproc); err != nil {
		fmt.Fprintln(os.Stderr, "AddProcess:", err)
		return 2
	}
	s.OnManagerStart(func(s *swoole.Server) {
		mpEvent("managerstart", port)
		_, err := s.Task("fin manager", -1)
		mpEvent("mgrtask", mpCode(err))
	})
	s.OnWorkerStart(func(s *swoole.Server, id int) { mpEvent("workerstart", id, s.IsTaskWorker()) })
	s.OnPipeMessage(func(s *swoole.Server, src int, data []byte) {
		tag, op, _ := strings.Cut(string(data), " ")
		mpEvent("trdone", tag, "pipe", trDo(s, op))
	})
	s.OnFinish(func(s *swoole.Server, taskID int, data []byte) { mpEvent("finish", taskID, string(data)) })
	s.OnTask(func(s *swoole.Server, taskID, src int, data []byte) any {
		op, arg, _ := strings.Cut(string(data), " ")
		switch op {
		case "do":
			tag, rest, _ := strings.Cut(arg, " ")
			mpEvent("trdone", tag, "task", trDo(s, rest))
		case "timer":
			tag, rest, _ := strings.Cut(arg, " ")
			if _, err := s.After(1, func() { mpEvent("trdone", tag, "timer", trDo(s, rest)) }); err != nil {
				mpEvent("trdone", tag, "timer", "after", mpCode(err))
			}
		case "fin": // Finish in OnTask: an error when the sender is not a worker
			mpEvent("trdone", arg, "fin", mpCode(s.Finish("fin:"+arg)))
		case "nap":
			time.Sleep(time.Duration(atoi(arg)) * time.Millisecond)
		case "block":
			mpEvent("blocked")
			for deadline := time.Now().Add(mpTimeout); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
				if _, err := os.Stat(arg); err == nil {
					break
				}
			}
		case "seq": // seq <i>: the i-th task of a flood, checked for order
			if trSeq.last == nil {
				trSeq.last = map[int]int{}
			}
			i := atoi(arg)
			if last, ok := trSeq.last[src]; (ok && taskID <= last) || i != trSeq.next {
				trSeq.bad++
			}
			trSeq.last[src], trSeq.next = taskID, i+1
			trSeq.count++
		case "mark":
			mpEvent("seqdone", trSeq.count, trSeq.bad)
			trSeq.count, trSeq.bad, trSeq.next, trSeq.last = 0, 0, 0, nil
		}
		return nil
	})
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		cmd, arg, _ := strings.Cut(strings.TrimSuffix(string(data), "\n"), " ")
		reply := func(format string, args ...any) { _ = s.Send(fd, []byte(fmt.Sprintf(format, args...)+"\n")) }
		task := func(payload string) int {
			_, err := s.Task(payload, -1)
			return mpCode(err)
		}
		switch cmd {
		case "who":
			reply("who %d %d %d", s.GetWorkerID(), os.Getpid(), fd)
		case "echo":
			reply("%s", arg)
		case "via":
			via, rest, _ := strings.Cut(arg, " ")
			code := 0
			switch via {
			case "task":
				code = task("do " + rest)
			case "timer":
				code = task("timer " + rest)
			case "pipe":
				code = mpCode(s.SendMessage(rest, workers))
			case "uproc":
				if _, err := uproc.ExportSocket().Write([]byte(rest)); err != nil {
					code = -1
				}
			case "worker":
				tag, op, _ := strings.Cut(rest, " ")
				mpEvent("trdone", tag, "worker", trDo(s, op))
			default:
				code = -2
			}
			reply("via %d", code)
		case "nap", "block":
			reply("%s %d", cmd, task(cmd+" "+arg))
		case "flood":
			n := atoi(arg)
			start := time.Now()
			sent, code := 0, 0
			for i := range n {
				if code = task("seq " + strconv.Itoa(i)); code != 0 {
					break
				}
				sent++
			}
			reply("flood %d %d %d", sent, code, time.Since(start).Milliseconds())
		case "mark":
			reply("mark %d", task("mark"))
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

// trDo carries out one operation on a connection (or a task call) in the calling process and
// returns "<error code> [result]":
//
//	send FD TEXT       Send(FD, TEXT+"\n")
//	big FD N TAG       Send(FD, N bytes: 'A's, then TAG, then "\n")
//	close FD           Close(FD, false)
//	pause FD, resume FD
//	exist FD           "0 <Exist(FD)>"
//	info FD            GetClientInfo(FD): "0 <remote port>"
//	sendfile FD PATH   SendFile(FD, PATH, 0, 0)
//	finish             Finish("x")
//	task PAYLOAD...    Task(PAYLOAD, -1)
func trDo(s *swoole.Server, op string) string {
	f := strings.Fields(op)
	if len(f) == 0 {
		return "-1 empty"
	}
	var fd int64
	if len(f) > 1 {
		fd, _ = strconv.ParseInt(f[1], 10, 64)
	}
	code := func(err error) string { return strconv.Itoa(mpCode(err)) }
	switch f[0] {
	case "send":
		return code(s.Send(fd, []byte(f[2]+"\n")))
	case "big":
		n, tag := atoi(f[2]), f[3]
		b := bytes.Repeat([]byte{'A'}, n)
		copy(b[n-1-len(tag):], tag)
		b[n-1] = '\n'
		return code(s.Send(fd, b))
	case "close":
		return code(s.Close(fd, false))
	case "pause":
		return code(s.Pause(fd))
	case "resume":
		return code(s.Resume(fd))
	case "exist":
		return fmt.Sprintf("0 %v", s.Exist(fd))
	case "info":
		ci, err := s.GetClientInfo(fd, -1, false)
		if err != nil {
			return code(err)
		}
		return fmt.Sprintf("0 %d", ci.RemotePort)
	case "sendfile":
		return code(s.SendFile(fd, f[2], 0, 0))
	case "finish":
		return code(s.Finish("x"))
	case "task":
		_, err := s.Task(strings.Join(f[1:], " "), -1)
		return code(err)
	}
	return "-1 unknown"
}

// ---- the test side ----

// trCtl drives a taskroute server over a control connection.
type trCtl struct {
	t   *testing.T
	ms  *mpServer
	ctl *mpClient
}

var trTags atomic.Int64

func trStart(t *testing.T, env ...string) *trCtl {
	t.Helper()
	ms := mpStartServer(t, "taskroute", "managerstart", env...)
	return &trCtl{t: t, ms: ms, ctl: ms.dial()}
}

// do runs op in the process via names and returns the fields of its result (error code
// first).
func (r *trCtl) do(via, op string) []string {
	r.t.Helper()
	tag := "t" + strconv.FormatInt(trTags.Add(1), 10)
	taskWantFields(r.t, "via "+via+" "+op, r.ctl.do("via "+via+" "+tag+" "+op), "via", "0")
	ev := r.ms.waitEvent("trdone", func(e mpEv) bool { return len(e.Fields) > 0 && e.Fields[0] == tag })
	if len(ev.Fields) < 3 || ev.Fields[1] != via {
		r.t.Fatalf("%s %s: event %q", via, op, ev.Fields)
	}
	return ev.Fields[2:]
}

// want runs op via and checks its result.
func (r *trCtl) want(via, op string, want ...string) {
	r.t.Helper()
	taskWantFields(r.t, via+" "+op, r.do(via, op), want...)
}

// trTarget is a client connection the operations act on.
func (r *trCtl) target() (*mpClient, int64) {
	r.t.Helper()
	c := r.ms.dial()
	_, _, fd := c.who()
	return c, fd
}

// trReadBig reads one line of the big op and checks it: n bytes with the newline, 'A's, then
// tag.
func trReadBig(t *testing.T, c *mpClient, n int, tag string) {
	t.Helper()
	line, err := c.readLine()
	if err != nil {
		t.Fatalf("reading the %d-byte send: %v (got %d bytes)", n, err, len(line))
	}
	if len(line) != n-1 || !strings.HasSuffix(line, tag) || strings.Trim(line[:n-1-len(tag)], "A") != "" {
		t.Fatalf("the %d-byte send arrived as %d bytes ending %q; want it whole, ending %q", n, len(line), line[max(0, len(line)-20):], tag)
	}
}

// trWantSilent checks that nothing arrives on c for a while (a paused connection is not
// read, so it gets no reply). A reply that came late would only make this pass wrongly.
func trWantSilent(t *testing.T, c *mpClient, what string) {
	t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	l, err := c.r.ReadString('\n')
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%s: got %q (%v); want nothing while the connection is paused", what, l, err)
	}
}

// TestTaskWorkerAndUserProcessReachConnections: a task worker (from OnTask, OnPipeMessage and
// a timer) and a user process work on a client connection as a worker does, in ModeProcess
// (through the master's reactors) and in ModeBase with workers (through the worker that owns
// it): Send, a 2 MiB Send that arrives whole, SendFile, Exist, GetClientInfo, Pause, Resume
// and Close.
func TestTaskWorkerAndUserProcessReachConnections(t *testing.T) {
	const big = 2 << 20
	file := filepath.Join(t.TempDir(), "sendfile.txt")
	if err := os.WriteFile(file, []byte("from-a-file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"process", "base", "thread"} {
		t.Run(mode, func(t *testing.T) {
			r := trStart(t, mpEnvMode+"="+mode, mpEnvWorkers+"=2", taskEnvTasks+"=1")
			for _, via := range []string{"task", "pipe", "timer", "uproc"} {
				c, fd := r.target()
				id := strconv.FormatInt(fd, 10)
				r.want(via, "send "+id+" hello-"+via, "0")
				taskWantFields(t, via+": send", c.read(), "hello-"+via)
				r.want(via, "big "+id+" "+strconv.Itoa(big)+" end-"+via, "0")
				trReadBig(t, c, big, "end-"+via)
				r.want(via, "sendfile "+id+" "+file, "0")
				taskWantFields(t, via+": sendfile", c.read(), "from-a-file")
				r.want(via, "exist "+id, "0", "true")
				_, port, _ := net.SplitHostPort(c.c.LocalAddr().String())
				r.want(via, "info "+id, "0", port)

				// Pause: the send that follows it from the same process reaches the
				// connection after the pause, so once it arrived the connection is paused.
				r.want(via, "pause "+id, "0")
				r.want(via, "send "+id+" paused-"+via, "0")
				taskWantFields(t, via+": after pause", c.read(), "paused-"+via)
				c.send("echo while-paused")
				trWantSilent(t, c, via+": echo while paused")
				r.want(via, "resume "+id, "0")
				taskWantFields(t, via+": after resume", c.read(), "while-paused")

				r.want(via, "close "+id, "0")
				_ = c.c.SetReadDeadline(time.Now().Add(mpTimeout))
				if l, err := c.r.ReadString('\n'); err != io.EOF {
					t.Fatalf("%s: after Close read %q, %v; want EOF", via, l, err)
				}
				r.ms.eventually(via+": session gone", func() bool { return r.do("worker", "exist "+id)[1] == "false" })
			}
		})
	}
}

// TestTaskFinishWithoutReceiver: Finish in a task that no worker waits for (sent by the
// manager — the master in ModeProcess — or a user process) is 509, and so is Finish in a
// task worker outside OnTask (a timer, OnPipeMessage); Finish outside a task worker (a user
// process) is 503. Finish in a task a worker sent delivers the result (OnFinish).
func TestTaskFinishWithoutReceiver(t *testing.T) {
	for _, mode := range []string{"process", "base", "thread"} {
		t.Run(mode, func(t *testing.T) {
			r := trStart(t, mpEnvMode+"="+mode, mpEnvWorkers+"=1", taskEnvTasks+"=1")
			taskWantFields(t, "the manager's Task", r.ms.waitEvent("mgrtask", nil).Fields, "0")
			ev := r.ms.waitEvent("trdone", func(e mpEv) bool { return e.Fields[0] == "manager" })
			taskWantFields(t, "Finish in a task from the manager", ev.Fields, "manager", "fin", strconv.Itoa(swoole.ErrWrongOperation))

			r.want("uproc", "task fin from-uproc", "0")
			ev = r.ms.waitEvent("trdone", func(e mpEv) bool { return e.Fields[0] == "from-uproc" })
			taskWantFields(t, "Finish in a task from a user process", ev.Fields, "from-uproc", "fin", strconv.Itoa(swoole.ErrWrongOperation))

			r.want("worker", "task fin from-worker", "0")
			ev = r.ms.waitEvent("trdone", func(e mpEv) bool { return e.Fields[0] == "from-worker" })
			taskWantFields(t, "Finish in a task from a worker", ev.Fields, "from-worker", "fin", "0")
			r.ms.waitEvent("finish", func(e mpEv) bool { return len(e.Fields) == 2 && e.Fields[1] == "fin:from-worker" })

			r.want("timer", "finish", strconv.Itoa(swoole.ErrWrongOperation))
			r.want("pipe", "finish", strconv.Itoa(swoole.ErrWrongOperation))
			r.want("uproc", "finish", strconv.Itoa(swoole.ErrRefused))
			r.want("worker", "finish", strconv.Itoa(swoole.ErrRefused))
		})
	}
}

// TestTaskQueueFullWaits: 2,048 tasks sent in one callback while the only task worker is busy
// (twice the queue's bound) are all sent — Task waits for room instead of failing — and all
// run, in task-id order; in ModeBase (task_ipc_mode 1 and 3) and ModeProcess.
func TestTaskQueueFullWaits(t *testing.T) {
	for _, env := range [][]string{
		{mpEnvMode + "=base", taskEnvMode + "=1"},
		{mpEnvMode + "=base", taskEnvMode + "=3"},
		{mpEnvMode + "=process", taskEnvMode + "=1"},
		{mpEnvMode + "=thread"},
	} {
		t.Run(strings.Join(env, ","), func(t *testing.T) {
			r := trStart(t, append(env, mpEnvWorkers+"=1", taskEnvTasks+"=1")...)
			taskWantFields(t, "nap", r.ctl.do("nap 1000"), "nap", "0")
			f := r.ctl.do("flood 2048")
			if len(f) != 4 || f[1] != "2048" || f[2] != "0" {
				t.Fatalf("flood: %q; want all 2048 tasks sent", f)
			}
			taskWantFields(t, "mark", r.ctl.do("mark"), "mark", "0")
			ev := r.ms.waitEvent("seqdone", nil)
			taskWantFields(t, "tasks run (count, out of order)", ev.Fields, "2048", "0")
		})
	}
}

// TestTaskQueueFullTimesOut: while the task workers take nothing, Task waits max_wait_time
// (3 s in this server) for room past the queue's bound, then fails with 9007; what was
// queued before runs once the task worker is free, in order.
func TestTaskQueueFullTimesOut(t *testing.T) {
	r := trStart(t, mpEnvMode+"=process", mpEnvWorkers+"=1", taskEnvTasks+"=1")
	gate := filepath.Join(t.TempDir(), "gate")
	taskWantFields(t, "block", r.ctl.do("block "+gate), "block", "0")
	r.ms.waitEvent("blocked", nil)
	f := r.ctl.do("flood 5000")
	if len(f) != 4 || atoi(f[1]) < 1 || atoi(f[1]) >= 5000 || atoi(f[2]) != swoole.ErrServerNoIdleWorker {
		t.Fatalf("flood: %q; want the queue's bound sent, then 9007", f)
	}
	if ms := atoi(f[3]); ms < 2500 {
		t.Fatalf("flood: failed after %d ms; want Task to wait max_wait_time (3 s) for room first", ms)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	taskWantFields(t, "mark", r.ctl.do("mark"), "mark", "0")
	ev := r.ms.waitEvent("seqdone", nil)
	taskWantFields(t, "tasks run (count, out of order)", ev.Fields, f[1], "0")
}
