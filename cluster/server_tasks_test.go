package cluster_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/goswoole/swoole"
	"github.com/goswoole/swoole/cluster"
)

// A server task host: a server joined with Tasks = TasksCluster, driven by lines:
//
//	tw <text>        TaskWait on the loop            tw <result> | tw err <code>
//	twg <text>       TaskWait from a goroutine       tw ...
//	twm <n>          TaskWaitMulti of n tasks        twm <result,result,...>
//	tco <n>          TaskCo of n tasks               tco <result,...>
//	t <text>         Task; OnFinish answers          fin <id> <result>
//	tcb <text>       TaskWithCallback                cb <id> <result>
//	dst              Task to task worker 0           dst err <code>
//
// OnTask (only where withOnTask) answers "done@<node>:<src>:<text>"; "nores:" returns nil,
// "fin:" calls Finish twice ("fin1"; the second's code goes to finishTwice), "slow:" lasts
// until its sender's TaskWait gave up (slowGate); it records Task's code on its own handle in
// taskInTask.
// slowGate lets a "slow:" task end: its sender's "twg" sends once its TaskWait returned
// (both hosts of a test live in this process).
var slowGate = make(chan struct{}, 8)

func newTaskHost(t *testing.T, mode swoole.Mode, cfg cluster.Config, withOnTask bool) (*swoole.Server, *cluster.Node) {
	t.Helper()
	s, err := swoole.NewServer("127.0.0.1", 0, mode, swoole.SockTCP)
	if err != nil {
		t.Fatal(err)
	}
	st := swoole.Settings{OpenEOFSplit: true, PackageEOF: "\n"}
	if mode == swoole.ModeThread {
		st.WorkerNum = 2
	}
	if err := s.Set(st); err != nil {
		t.Fatal(err)
	}
	name := cfg.Node
	s.OnReceive(func(h *swoole.Server, fd int64, _ int, data []byte) {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
		reply := func(format string, args ...any) { _ = h.Send(fd, []byte(fmt.Sprintf(format, args...)+"\n")) }
		switch cmd {
		case "tw":
			r, err := h.TaskWait(arg, 10*time.Second, -1)
			if err != nil {
				reply("tw err %d", code(err))
				return
			}
			reply("tw %s", r)
		case "twg":
			go func() {
				timeout := 10 * time.Second
				if strings.HasPrefix(arg, "slow:") {
					timeout = 300 * time.Millisecond
				}
				r, err := h.TaskWait([]byte(arg), timeout, -1)
				if strings.HasPrefix(arg, "slow:") {
					slowGate <- struct{}{} // the sender gave up: the slow task may end now
				}
				if err != nil {
					reply("tw err %d", code(err))
					return
				}
				reply("tw %s", r)
			}()
		case "twm", "tco":
			n, _ := strconv.Atoi(arg)
			tasks := make([]any, n)
			for i := range tasks {
				tasks[i] = fmt.Sprintf("m%d", i)
			}
			var rs [][]byte
			var err error
			if cmd == "twm" {
				rs, err = h.TaskWaitMulti(tasks, 10*time.Second)
			} else {
				rs, err = h.TaskCo(tasks, 10*time.Second)
			}
			if err != nil {
				reply("%s err %d", cmd, code(err))
				return
			}
			var out []string
			for _, r := range rs {
				out = append(out, string(r))
			}
			reply("%s %s", cmd, strings.Join(out, ","))
		case "t":
			if _, err := h.Task(strconv.FormatInt(fd, 10)+"|"+arg, -1); err != nil {
				reply("fin err %d", code(err))
			}
		case "tcb":
			id, err := h.TaskWithCallback(arg, -1, func(h2 *swoole.Server, id int, r []byte) {
				_ = h2.Send(fd, []byte(fmt.Sprintf("cb %d %s\n", id, r)))
			})
			if err != nil {
				reply("cb err %d", code(err))
			}
			_ = id
		case "dst":
			_, err := h.Task("x", 0)
			reply("dst err %d", code(err))
		}
	})
	s.OnFinish(func(h *swoole.Server, id int, r []byte) {
		f, text, _ := strings.Cut(string(r), "|")
		fd, _ := strconv.ParseInt(strings.TrimPrefix(f, "done@"+hostOf(f)), 10, 64)
		_ = h.Send(fd, []byte(fmt.Sprintf("fin %d %s|%s\n", id, f, text)))
	})
	s.OnPipeMessage(func(h *swoole.Server, src int, data []byte) {
		pipeGot <- fmt.Sprintf("%s:%d:%d:%s", name, h.GetWorkerID(), src, data)
	})
	if withOnTask {
		s.OnTask(func(h *swoole.Server, id int, src int, data []byte) any {
			text := string(data)
			_, err := h.Task("inner", -1)
			taskInTask.Store(int64(code(err)))
			switch {
			case strings.HasPrefix(text, "nores:"):
				return nil
			case strings.HasPrefix(text, "fin:"):
				if err := h.Finish("fin1"); err != nil {
					finishTwice.Store(-int64(code(err)))
					return nil
				}
				finishTwice.Store(int64(code(h.Finish("fin2"))))
				return nil
			case strings.HasPrefix(text, "slow:"):
				select { // its work ends only once its sender stopped waiting
				case <-slowGate:
				case <-time.After(20 * time.Second):
				}
			}
			return fmt.Sprintf("done@%s:%d:%s", name, src, text)
		})
	}
	node, err := cluster.Join(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, node
}

// hostOf returns "<node>:<src>:" of a result "done@<node>:<src>:<fd>".
func hostOf(r string) string {
	r = strings.TrimPrefix(r, "done@")
	i := strings.LastIndex(r, ":")
	if i < 0 {
		return ""
	}
	return r[:i+1]
}

var taskInTask, finishTwice atomic.Int64

// pipeGot gets "<node>:<worker>:<src>:<data>" for each OnPipeMessage of the task hosts.
var pipeGot = make(chan string, 16)

// TestServerTasksOnCluster: two servers in this process joined through an external
// nats-server with Tasks = TasksCluster; only B (ModeThread) has an OnTask, so A's tasks
// (ModeBase) run on B. Task + OnFinish, TaskWithCallback, TaskWait (on the loop and from a
// goroutine), TaskWaitMulti, TaskCo from both; no result (509), Finish twice (509), a wait
// that times out (2003), a task worker index (503), Task inside OnTask (507).
func TestServerTasksOnCluster(t *testing.T) {
	defer goleak.VerifyNone(t)
	ns := startNATS(t)
	defer ns.WaitForShutdown()
	defer ns.Shutdown()
	cfg := func(name string) cluster.Config {
		return cluster.Config{Cluster: "stasks", Node: name, URL: ns.ClientURL(), Tasks: cluster.TasksCluster,
			Heartbeat: 200 * time.Millisecond, Logger: quiet}
	}
	sa, na := newTaskHost(t, swoole.ModeBase, cfg("A"), false)
	stopA := startServer(t, sa, na)
	sb, nb := newTaskHost(t, swoole.ModeThread, cfg("B"), true)
	stopB := startServer(t, sb, nb)

	ca, cb := dial(t, sa.Ports()[0].Port()), dial(t, sb.Ports()[0].Port())
	for _, c := range []struct {
		cl   *client
		line string
		want string
	}{
		{ca, "tw a1", "tw done@B:0:a1"},
		{ca, "twg a2", "tw done@B:0:a2"},
		{cb, "tw b1", "tw done@B:"}, // from a worker loop of B: src is its worker id
		{ca, "twm 3", "twm done@B:0:m0,done@B:0:m1,done@B:0:m2"},
		{ca, "tco 2", "tco done@B:0:m0,done@B:0:m1"},
		{cb, "twm 2", "twm done@B:"},
		{ca, "tw nores:x", "tw err 509"},
		{ca, "tw fin:x", "tw fin1"},
		{ca, "twg slow:x", "tw err 2003"},
		{ca, "dst", "dst err 503"},
		{ca, "tcb c1", "cb "},
		{cb, "tcb c2", "cb "},
	} {
		if got := c.cl.call(c.line, strings.Fields(c.want)[0], 20*time.Second); !strings.HasPrefix(got, c.want) {
			t.Fatalf("%s: %q, want %q", c.line, got, c.want)
		}
	}
	if got := finishTwice.Load(); got != swoole.ErrWrongOperation {
		t.Fatalf("the second Finish: code %d, want 509", got)
	}
	if got := taskInTask.Load(); got != swoole.ErrOperationNotSupport {
		t.Fatalf("Task inside OnTask: code %d, want 507", got)
	}
	// Task with OnFinish, from both hosts: OnFinish runs on the sender's loop.
	for _, cl := range []*client{ca, cb} {
		cl.send("t hello")
		got := cl.expect("fin ", 20*time.Second)
		if !strings.Contains(got, "done@B:") || !strings.HasSuffix(got, "|hello") {
			t.Fatalf("OnFinish: %q", got)
		}
	}
	// SendMessage to a worker of another host, and of this one.
	for _, c := range []struct {
		from   *cluster.Node
		node   string
		worker int
		want   string
	}{
		{na, "B", 1, "B:1:-1:"}, {nb, "A", 0, "A:0:-1:"}, {na, "A", 0, "A:0:-1:"}, {nb, "B", 0, "B:0:-1:"},
	} {
		msg := fmt.Sprintf("to-%s-%d", c.node, c.worker)
		if err := c.from.SendMessage([]byte(msg), c.node, c.worker); err != nil {
			t.Fatalf("SendMessage to %s/%d: %v", c.node, c.worker, err)
		}
		select {
		case got := <-pipeGot:
			if got != c.want+msg {
				t.Fatalf("OnPipeMessage: %q, want %q", got, c.want+msg)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no OnPipeMessage for %s within 20 s", msg)
		}
	}
	for _, c := range []struct {
		node   string
		worker int
		want   int
	}{{"B", 99, swoole.ErrRefused}, {"A", 1, swoole.ErrRefused}, {"Z", 0, swoole.ErrRefused}, {"bad name", 0, swoole.ErrInvalidParams}} {
		if err := na.SendMessage([]byte("x"), c.node, c.worker); code(err) != c.want {
			t.Fatalf("SendMessage to %s/%d: %v, want code %d", c.node, c.worker, err, c.want)
		}
	}
	stopB()
	stopA()
	if err := na.SendMessage([]byte("x"), "A", 0); code(err) != 107 {
		t.Fatalf("SendMessage after the shutdown: %v, want 107", err)
	}
}
