package swoole_test

// The task test server (builder "task", see runTestServer): a line server whose commands
// send tasks, run in a tree of worker_num workers and task_worker_num task workers.
//
// OnTask reads its payload as "<op> <args>":
//
//	echo X          → "r:X"
//	sleep MS X      → sleeps MS ms, then "r:X" (logs "taskstart <task worker id> X" first)
//	who             → the task worker's id, its IsTaskWorker, its pid
//	nil             → nil (no result)
//	finish X        → Finish("f:X"), then returns "ignored"
//	big N           → a result of N bytes (byte i = i%251)
//	task            → tries Task inside the task worker: "code <error code>"
//	anything else (binary) → "len <n> sum <sum of bytes>"
//
// Client commands (one line each, one reply line):
//
//	tw <timeout ms> <dst> <payload...>  → "tw <code> <result>"
//	burst <n> <window> <payload op...>  → n tasks "<op> <worker id>:<i>", at most window in
//	                                       flight, each result checked: "burst <ok> <bad> <errors>"
//	multi <timeout ms> <p1>|<p2>|...    → TaskWaitMulti: "multi <code> <r1>|<r2>|..." ("-" = nil)
//	co <timeout ms> <p1>|<p2>|...       → TaskCo, the same
//	bigtw <n> <result n>                → TaskWait of n binary bytes; "bigtw <code> <reply>" where
//	                                       reply is the task's "len ... sum ..." or, with a
//	                                       result n > 0, "len <n> ok <bool>"
//	flood <n> <sleep ms>                → one "sleep" task, then n-1 one-way echo tasks:
//	                                       "flood <ok> <code of the first failure> <task_queue_num>"
//	stats                               → "stats <task_worker_num> <idle> <tasking> <queue> <bytes>"
//	who                                 → "who <worker id> <pid> <fd>"
//	echo X                              → "X"
//	msg <dst> X                         → SendMessage: "msg <code>"
//	pid <id>                            → "pid <GetWorkerPID(id)> <status> <code>"
//	finish                              → Finish in a worker: "finish <code>"
//	reloadtask                          → Reload(true): "reloadtask <code>"
//	stop <id>                           → Stop(id, false): "stop <code>"

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/goswoole/swoole"
)

const (
	taskEnvTasks     = "GOSWOOLE_TEST_TASKS"     // task_worker_num (default 2)
	taskEnvMode      = "GOSWOOLE_TEST_TASK_MODE" // task_ipc_mode (default 1)
	taskEnvCoroutine = "GOSWOOLE_TEST_COROUTINE" // "0": enable_coroutine false
	taskEnvMax       = "GOSWOOLE_TEST_TASK_MAX"  // task_max_request
	taskEnvCo        = "GOSWOOLE_TEST_TASK_CO"   // "1": task_enable_coroutine
)

// taskBarrier counts, in a task worker, the "barrier" tasks that have started.
var taskBarrier atomic.Int64

func taskTestServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	set := swoole.Settings{
		WorkerNum:      envInt(mpEnvWorkers, 2),
		TaskWorkerNum:  envInt(taskEnvTasks, 2),
		TaskIPCMode:    envInt(taskEnvMode, 1),
		TaskMaxRequest: envInt(taskEnvMax, 0),
		TaskTmpdir:     os.Getenv(mpEnvDir) + "/tmp",
		LogLevel:       swoole.LogLevelWarning,
		MaxConnection:  1024,
		OpenEOFSplit:   true,
		PackageEOF:     "\n",
		MaxWaitTime:    3 * time.Second,
	}
	if os.Getenv(taskEnvCoroutine) == "0" {
		set.EnableCoroutine = swoole.Bool(false)
	}
	set.TaskEnableCoroutine = os.Getenv(taskEnvCo) == "1"
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	s.OnManagerStart(func(s *swoole.Server) { mpEvent("managerstart", port) })
	s.OnWorkerStart(func(s *swoole.Server, id int) { mpEvent("workerstart", id, s.IsTaskWorker()) })
	s.OnWorkerStop(func(s *swoole.Server, id int) { mpEvent("workerstop", id) })
	s.OnWorkerError(func(s *swoole.Server, id, pid, code, sig int) { mpEvent("workererror", id, pid, code, sig) })
	s.OnAfterReload(func(s *swoole.Server) { mpEvent("afterreload") })
	s.OnPipeMessage(func(s *swoole.Server, src int, data []byte) {
		mpEvent("pipemessage", s.GetWorkerID(), s.IsTaskWorker(), src, string(data))
	})
	s.OnTask(func(s *swoole.Server, taskID, src int, data []byte) any {
		op, arg, _ := strings.Cut(string(data), " ")
		switch op {
		case "echo":
			return "r:" + arg
		case "sleep":
			ms, rest, _ := strings.Cut(arg, " ")
			mpEvent("taskstart", s.GetWorkerID(), rest)
			n, _ := strconv.Atoi(ms)
			time.Sleep(time.Duration(n) * time.Millisecond)
			return "r:" + rest
		case "who":
			return fmt.Sprintf("%d %v %d", s.GetWorkerID(), s.IsTaskWorker(), os.Getpid())
		case "barrier": // barrier <n> <tag>: waits until n barrier tasks have started here
			n, tag, _ := strings.Cut(arg, " ")
			taskBarrier.Add(1)
			deadline := time.Now().Add(2 * time.Second)
			for taskBarrier.Load() < int64(atoi(n)) {
				if time.Now().After(deadline) {
					return "alone:" + tag
				}
				time.Sleep(time.Millisecond)
			}
			if tag == "f" { // Finish from this task's own goroutine
				if err := s.Finish("finished:" + tag); err != nil {
					return "finish failed"
				}
				return nil
			}
			return "met:" + tag
		case "nil":
			return nil
		case "finish":
			if err := s.Finish("f:" + arg); err != nil {
				return "finish failed"
			}
			if s.Finish("again") == nil {
				return "finish twice accepted"
			}
			return "ignored"
		case "big":
			n, _ := strconv.Atoi(arg)
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(i % 251)
			}
			return b
		case "task":
			_, err := s.Task("echo x", -1)
			return fmt.Sprintf("code %d", mpCode(err))
		}
		sum := 0
		for _, c := range data {
			sum += int(c)
		}
		return fmt.Sprintf("len %d sum %d", len(data), sum)
	})
	s.OnFinish(func(s *swoole.Server, taskID int, data []byte) { mpEvent("finish", taskID, string(data)) })
	_ = s.AddCommand("whoami", swoole.CommandTaskWorker|swoole.CommandEventWorker, func(s *swoole.Server, data []byte) []byte {
		return fmt.Appendf(nil, "%d %v %d %s", s.GetWorkerID(), s.IsTaskWorker(), os.Getpid(), data)
	})
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		cmd, arg, _ := strings.Cut(strings.TrimSuffix(string(data), "\n"), " ")
		reply := func(format string, args ...any) { _ = s.Send(fd, []byte(fmt.Sprintf(format, args...)+"\n")) }
		switch cmd {
		case "tw":
			f := strings.SplitN(arg, " ", 3)
			ms, dst := atoi(f[0]), atoi(f[1])
			res, err := s.TaskWait(f[2], time.Duration(ms)*time.Millisecond, dst)
			reply("tw %d %s", mpCode(err), res)
		case "burst":
			f := strings.SplitN(arg, " ", 3)
			taskBurst(s, fd, atoi(f[0]), atoi(f[1]), f[2], reply)
		case "multi", "co":
			reply("%s", taskWaitMany(s, cmd, arg))
		case "manymulti":
			_, err := s.TaskWaitMulti(make([]any, atoi(arg)), time.Second)
			reply("manymulti %d", mpCode(err))
		case "bigtw":
			a, b, _ := strings.Cut(arg, " ")
			n, rn := atoi(a), atoi(b)
			payload := bytes.Repeat([]byte{0xfe}, n)
			if rn > 0 {
				payload = []byte(fmt.Sprintf("big %d", rn))
			}
			res, err := s.TaskWait(payload, 10*time.Second, -1)
			if rn > 0 {
				ok := len(res) == rn
				for i := 0; ok && i < len(res); i++ {
					ok = res[i] == byte(i%251)
				}
				reply("bigtw %d len %d ok %v", mpCode(err), len(res), ok)
				return
			}
			reply("bigtw %d %s", mpCode(err), res)
		case "flood":
			a, b, _ := strings.Cut(arg, " ")
			n := atoi(a)
			ok, first := 0, 0
			if _, err := s.Task("sleep "+b+" first", 0); err == nil {
				ok++
			}
			for i := 1; i < n; i++ {
				if _, err := s.Task("echo "+strconv.Itoa(i), 0); err != nil {
					if first == 0 {
						first = mpCode(err)
					}
					continue
				}
				ok++
			}
			reply("flood %d %d %d", ok, first, s.Stats().TaskQueueNum)
		case "stats":
			st := s.Stats()
			reply("stats %d %d %d %d %d", st.TaskWorkerNum, st.TaskIdleWorkerNum, st.TaskingNum, st.TaskQueueNum, st.TaskQueueBytes)
		case "who":
			reply("who %d %d %d", s.GetWorkerID(), os.Getpid(), fd)
		case "echo":
			reply("%s", arg)
		case "msg":
			to, text, _ := strings.Cut(arg, " ")
			reply("msg %d", mpCode(s.SendMessage(text, atoi(to))))
		case "pid":
			id := atoi(arg)
			st, err := s.GetWorkerStatus(id)
			reply("pid %d %d %d", s.GetWorkerPID(id), st, mpCode(err))
		case "finish":
			reply("finish %d", mpCode(s.Finish("x")))
		case "benchtw", "benchtp":
			f := strings.Fields(arg)
			taskBench(s, cmd, atoi(f[0]), atoi(f[1]), reply)
		case "cmdtask": // Command("whoami") to task worker <index>
			res, err := s.Command("whoami", atoi(arg), swoole.CommandTaskWorker, "hi")
			reply("cmdtask %d %s", mpCode(err), res)
		case "reloadtask":
			reply("reloadtask %d", mpCode(s.Reload(true)))
		case "stop":
			id, _ := strconv.Atoi(arg)
			reply("stop %d", mpCode(s.Stop(id, false)))
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

// taskBurst sends n tasks with at most window in flight (a new one as each result comes),
// checks every result against its task id and payload, and replies once all are back.
func taskBurst(s *swoole.Server, fd int64, n, window int, op string, reply func(string, ...any)) {
	want := make(map[int]string, n)
	sent, ok, bad, errs := 0, 0, 0, 0
	me := s.GetWorkerID()
	var next func()
	trace := os.Getenv("GOSWOOLE_TEST_TRACE") == "1"
	done := func(_ *swoole.Server, taskID int, data []byte) {
		if trace {
			mpEvent("tdone", taskID, len(data))
		}
		if w, found := want[taskID]; found && string(data) == w {
			ok++
		} else {
			bad++
		}
		delete(want, taskID)
		if ok+bad+errs == n {
			reply("burst %d %d %d", ok, bad, errs)
			return
		}
		next()
	}
	next = func() {
		for sent < n && len(want) < window {
			tag := fmt.Sprintf("%d:%d", me, sent)
			sent++
			id, err := s.TaskWithCallback(op+" "+tag, -1, done)
			if err != nil {
				errs++
				if ok+bad+errs == n {
					reply("burst %d %d %d", ok, bad, errs)
				}
				continue
			}
			want[id] = "r:" + tag
			if trace {
				mpEvent("tsent", id, tag)
			}
		}
	}
	next()
}

// taskBench measures, in a worker: "benchtw n size" n sequential TaskWaits of size-byte
// payloads ("benchtw <p50 ns> <p99 ns> <total ns> <failures>"); "benchtp n size" n tasks with
// 256 in flight ("benchtp <total ns> <failures>").
func taskBench(s *swoole.Server, cmd string, n, size int, reply func(string, ...any)) {
	payload := bytes.Repeat([]byte{0xab}, size)
	start := time.Now()
	if cmd == "benchtw" {
		lat := make([]time.Duration, 0, n)
		failed := 0
		for range n {
			t0 := time.Now()
			if _, err := s.TaskWait(payload, 10*time.Second, -1); err != nil {
				failed++
			}
			lat = append(lat, time.Since(t0))
		}
		total := time.Since(start)
		slices.Sort(lat)
		reply("benchtw %d %d %d %d", lat[len(lat)/2], lat[len(lat)*99/100], total, failed)
		return
	}
	sent, got, failed := 0, 0, 0
	var next func()
	cb := func(*swoole.Server, int, []byte) {
		got++
		if got+failed == n {
			reply("benchtp %d %d", time.Since(start), failed)
			return
		}
		next()
	}
	next = func() {
		for sent < n && sent-got-failed < 256 {
			sent++
			if _, err := s.TaskWithCallback(payload, -1, cb); err != nil {
				failed++
			}
		}
	}
	next()
}

// taskWaitMany carries out "multi <ms> <p1|p2|...>" (TaskWaitMulti) or "co ..." (TaskCo) and
// returns the reply line: "<cmd> <error code> <r1|r2|...>", "-" for a task with no result.
func taskWaitMany(s *swoole.Server, cmd, arg string) string {
	ms, list, _ := strings.Cut(arg, " ")
	var tasks []any
	for _, p := range strings.Split(list, "|") {
		tasks = append(tasks, p)
	}
	call := s.TaskWaitMulti
	if cmd == "co" {
		call = s.TaskCo
	}
	res, err := call(tasks, time.Duration(atoi(ms))*time.Millisecond)
	var out []string
	for _, r := range res {
		if r == nil {
			out = append(out, "-")
		} else {
			out = append(out, string(r))
		}
	}
	return fmt.Sprintf("%s %d %s", cmd, mpCode(err), strings.Join(out, "|"))
}
