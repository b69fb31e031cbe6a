package swoole_test

// Tasks whose task worker dies: the task in hand ends in an error the sender sees at once
// (2003), the tasks queued behind it survive for the replacement, and task_queue_num returns
// to 0. The server (builder "losttask") runs worker_num 1 and task_worker_num 1.
//
// OnTask: "sleep <ms> <tag>" logs "taskstart <tag>", sleeps and returns "r:<tag>"; "echo X"
// returns "r:X"; anything else (binary) returns "len <n> sum <sum of its bytes>".
//
// Client commands (one reply line each):
//
//	burst <n> <big>   n TaskWithCallback to task worker 0: task i is "sleep 20 i", but task
//	                  <big> is 100 KiB of binary (spilled to task_tmpdir): "burst <n>"
//	cb <payload>      one TaskWithCallback: "cb <id>"
//	tally             "tally <ok> <lost> <bad> <entries>": callbacks with the expected result,
//	                  with nil data and GetLastError 2003, anything else; entries is
//	                  swoole.TaskWaitsNum (tasks the worker still keeps an entry for)
//	tw <ms> <payload> TaskWait to task worker 0: "tw <code> <result>"
//	multi|co <ms> <p1>|<p2>  TaskWaitMulti / TaskCo: "<cmd> <code> <r1>|<r2>" ("-": nil)
//	queue             "queue <task_queue_num>"
//	reloadtask        Reload(true): "reloadtask <code>"

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

func init() { mpMoreServers["losttask"] = lostTaskServer }

const lostBigSize = 100 << 10

func lostTaskServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	if err := s.Set(swoole.Settings{
		WorkerNum:     1,
		TaskWorkerNum: 1,
		TaskTmpdir:    os.Getenv(mpEnvDir) + "/tmp",
		LogLevel:      swoole.LogLevelError,
		OpenEOFSplit:  true,
		PackageEOF:    "\n",
		MaxWaitTime:   3 * time.Second,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	s.OnManagerStart(func(s *swoole.Server) { mpEvent("managerstart", port) })
	s.OnWorkerStart(func(s *swoole.Server, id int) { mpEvent("workerstart", id, s.IsTaskWorker()) })
	s.OnTask(func(s *swoole.Server, taskID, src int, data []byte) any {
		op, arg, _ := strings.Cut(string(data), " ")
		switch op {
		case "sleep":
			ms, tag, _ := strings.Cut(arg, " ")
			mpEvent("taskstart", tag)
			time.Sleep(time.Duration(atoi(ms)) * time.Millisecond)
			return "r:" + tag
		case "echo":
			return "r:" + arg
		}
		sum := 0
		for _, c := range data {
			sum += int(c)
		}
		return fmt.Sprintf("len %d sum %d", len(data), sum)
	})
	s.OnFinish(func(*swoole.Server, int, []byte) {})
	want := map[int]string{}
	ok, lost, bad := 0, 0, 0
	done := func(s *swoole.Server, id int, data []byte) {
		w, found := want[id]
		delete(want, id)
		switch {
		case data == nil && s.GetLastError() == swoole.ErrTaskTimeout:
			lost++
		case found && string(data) == w:
			ok++
		default:
			bad++
		}
	}
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		cmd, arg, _ := strings.Cut(strings.TrimSuffix(string(data), "\n"), " ")
		reply := func(format string, args ...any) { _ = s.Send(fd, []byte(fmt.Sprintf(format, args...)+"\n")) }
		switch cmd {
		case "burst":
			a, b, _ := strings.Cut(arg, " ")
			n, big := atoi(a), atoi(b)
			for i := range n {
				var p any = fmt.Sprintf("sleep 20 %d", i)
				w := fmt.Sprintf("r:%d", i)
				if i == big {
					p = bytes.Repeat([]byte{1}, lostBigSize)
					w = fmt.Sprintf("len %d sum %d", lostBigSize, lostBigSize)
				}
				id, err := s.TaskWithCallback(p, 0, done)
				if err != nil {
					bad++
					continue
				}
				want[id] = w
			}
			reply("burst %d", n)
		case "cb":
			id, err := s.TaskWithCallback(arg, 0, done)
			if err != nil {
				bad++
			}
			reply("cb %d", id)
		case "tally":
			reply("tally %d %d %d %d", ok, lost, bad, swoole.TaskWaitsNum(s))
		case "tw":
			ms, p, _ := strings.Cut(arg, " ")
			res, err := s.TaskWait(p, time.Duration(atoi(ms))*time.Millisecond, 0)
			reply("tw %d %s", mpCode(err), res)
		case "multi", "co":
			reply("%s", taskWaitMany(s, cmd, arg))
		case "queue":
			reply("queue %d", s.Stats().TaskQueueNum)
		case "reloadtask":
			reply("reloadtask %d", mpCode(s.Reload(true)))
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

// lostStart starts the losttask server in mode ("base" or "process").
func lostStart(t *testing.T, mode string) *mpServer {
	t.Helper()
	var env []string
	if mode == "process" {
		env = append(env, mpEnvMode+"=process")
	}
	ms := mpStartServer(t, "losttask", "managerstart", env...)
	ms.waitEvent("workerstart", func(e mpEv) bool { return e.Fields[1] == "true" })
	return ms
}

// lostKillAt waits until the task tagged tag starts and kills its task worker (SIGKILL).
func lostKillAt(t *testing.T, ms *mpServer, tag string) int {
	t.Helper()
	ev := ms.waitEvent("taskstart", func(e mpEv) bool { return e.Fields[0] == tag })
	if err := syscall.Kill(ev.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	return ev.PID
}

// lostTally returns the worker's tally: ok, lost, bad, entries.
func lostTally(t *testing.T, c *mpClient) (ok, lost, bad, entries int) {
	t.Helper()
	f := c.do("tally")
	if len(f) != 5 || f[0] != "tally" {
		t.Fatalf("tally: reply %q", f)
	}
	return atoi(f[1]), atoi(f[2]), atoi(f[3]), atoi(f[4])
}

// lostWaitQueueEmpty waits until task_queue_num is 0.
func lostWaitQueueEmpty(ms *mpServer, c *mpClient) {
	ms.t.Helper()
	var last []string
	deadline := time.Now().Add(mpTimeout)
	for time.Now().Before(deadline) {
		if last = c.do("queue"); len(last) == 2 && last[1] == "0" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ms.t.Fatalf("task_queue_num did not return to 0: %q", last)
}

// TestTaskWorkerDeathKeepsQueuedTasks: a burst of 60 tasks (one of them 100 KiB, which
// travels through task_tmpdir) queued for one task worker, which is killed (SIGKILL) while it
// runs task 20: every task ends exactly once, in its result (from the replacement for the
// tasks queued behind) or, for the one in hand at most, in the 2003 error; the worker keeps
// no entry for any, and task_queue_num returns to 0. The same with a reload of the task
// workers instead of a kill: every task gives its result.
func TestTaskWorkerDeathKeepsQueuedTasks(t *testing.T) {
	const n = 60
	for _, mode := range []string{"base", "process"} {
		for _, how := range []string{"kill", "reload"} {
			t.Run(mode+"/"+how, func(t *testing.T) {
				ms := lostStart(t, mode)
				c := ms.dial()
				taskWantFields(t, "burst", c.do(fmt.Sprintf("burst %d %d", n, 40)), "burst", strconv.Itoa(n))
				if how == "kill" {
					lostKillAt(t, ms, "20")
				} else {
					ms.waitEvent("taskstart", func(e mpEv) bool { return e.Fields[0] == "20" })
					taskWantFields(t, "reload", c.do("reloadtask"), "reloadtask", "0")
				}
				var ok, lost, bad, entries int
				deadline := time.Now().Add(mpTimeout)
				for {
					ok, lost, bad, entries = lostTally(t, c)
					if ok+lost+bad == n || time.Now().After(deadline) {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				maxLost := 1
				if how == "reload" {
					maxLost = 0
				}
				if ok+lost+bad != n || bad != 0 || lost > maxLost || entries != 0 {
					t.Fatalf("%d tasks: %d results, %d lost, %d wrong, %d unanswered; %d entries left (want every task answered, at most %d lost, no entry left)", n, ok, lost, bad, n-ok-lost-bad, entries, maxLost)
				}
				lostWaitQueueEmpty(ms, c)
			})
		}
	}
}

// TestTaskWaitersLearnOfDeadTaskWorker: TaskWait, TaskWaitMulti, TaskCo (each with a 60 s
// timeout) and TaskWithCallback, whose task worker is killed while it runs their task, learn
// at once (well before the timeout): TaskWait fails with 2003, the multi calls give nil for
// the lost task and the results of the others (run by the replacement), the callback runs
// with nil data and GetLastError 2003; no entry is left in the worker.
func TestTaskWaitersLearnOfDeadTaskWorker(t *testing.T) {
	for _, mode := range []string{"base", "process"} {
		t.Run(mode, func(t *testing.T) {
			ms := lostStart(t, mode)
			c := ms.dial()
			check := func(what string) {
				t.Helper()
				if _, _, _, entries := lostTally(t, c); entries != 0 {
					t.Fatalf("%s: the worker keeps %d task entries", what, entries)
				}
			}
			start := time.Now()
			c.send("tw 60000 sleep 600000 tw")
			lostKillAt(t, ms, "tw")
			taskWantFields(t, "TaskWait", c.read(), "tw", "2003")
			check("TaskWait")

			c.send("multi 60000 sleep 600000 multi|echo after")
			lostKillAt(t, ms, "multi")
			taskWantFields(t, "TaskWaitMulti", c.read(), "multi", "0", "-|r:after")
			check("TaskWaitMulti")

			c.send("co 60000 sleep 600000 co|echo after")
			lostKillAt(t, ms, "co")
			taskWantFields(t, "TaskCo", c.read(), "co", "0", "-|r:after")
			check("TaskCo")

			taskWantFields(t, "cb", c.do("cb sleep 600000 cb"), "cb", "5") // ids 0-4: the calls above
			lostKillAt(t, ms, "cb")
			ms.eventually("the callback of the lost task", func() bool {
				_, lost, _, _ := lostTally(t, c)
				return lost == 1
			})
			if ok, lost, bad, entries := lostTally(t, c); ok != 0 || lost != 1 || bad != 0 || entries != 0 {
				t.Fatalf("callback: tally %d ok, %d lost, %d wrong, %d entries; want 0 1 0 0", ok, lost, bad, entries)
			}
			if d := time.Since(start); d > 50*time.Second {
				t.Fatalf("the waiters took %v: they waited for their timeouts", d)
			}
			lostWaitQueueEmpty(ms, c)
		})
	}
}
