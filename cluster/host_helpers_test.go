package cluster_test

// The test host: a goswoole server joined to a cluster, driven by a line protocol over its
// own port. The in-process tests run it in the test process; the multi-host tests run it in
// child processes (the test binary started again with envRole, see TestMain).
//
// Lines a client sends, and what the host answers:
//
//	hello                   hi <session>
//	bind <uid>              bound | err <code> <message>
//	touid <uid> <text>      touid ok | touid err <code>     (the uid's client gets "msg <text>")
//	bcast <text>            bcast <count> <code>            (every client gets "msg <text>")
//	stats                   stats <node,node,...> <code>
//	task <text>             task <result> | task err <code>
//	tasks <n> <conc> <ms>   progress (at half), then tasks ok=<n> bad=<n> fail=<n> <first error>
//	                        (every other task through the server's own TaskWait, the rest
//	                        through the node's: the host joins with TasksCluster)
//	send <session> <text>   send ok | send err <code>       (the session gets "msg <text>")
//	exist <session>         exist true | exist false
//	info <session>          info uid=<uid> | info err <code>
//	kick <session>          kick ok | kick err <code>       (Close)
//	counters                counters sent=<n> handled=<n> redone=<n> failed=<n> received=<n> dropped=<n>

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goswoole/swoole"
	"github.com/goswoole/swoole/cluster"
)

// holdFile, when set, makes the host's task handler keep a task whose data starts "hold:"
// in hand (it writes the file first) until the file is removed: the host dies, or is
// stopped, with it.
var holdFile string

// panicked holds the ids of the "panic-once:" tasks whose handler panicked.
var panicked sync.Map

// newHost builds a test host on a free port of 127.0.0.1.
func newHost(mode swoole.Mode, cfg cluster.Config) (*swoole.Server, *cluster.Node, error) {
	s, err := swoole.NewServer("127.0.0.1", 0, mode, swoole.SockTCP)
	if err != nil {
		return nil, nil, err
	}
	st := swoole.Settings{OpenEOFSplit: true, PackageEOF: "\n"}
	if mode == swoole.ModeThread {
		st.WorkerNum = 2
	}
	if err := s.Set(st); err != nil {
		return nil, nil, err
	}
	var node *cluster.Node
	s.OnReceive(func(h *swoole.Server, fd int64, _ int, data []byte) {
		line := strings.TrimSpace(string(data))
		cmd, arg, _ := strings.Cut(line, " ")
		reply := func(format string, args ...any) { _ = h.Send(fd, []byte(fmt.Sprintf(format, args...)+"\n")) }
		switch cmd {
		case "hello":
			reply("hi %s", node.Session(fd))
		case "bind":
			uid, _ := strconv.ParseUint(arg, 10, 32)
			if err := node.Bind(fd, uint32(uid)); err != nil {
				reply("err %d %v", code(err), err)
				return
			}
			reply("bound")
		case "touid":
			u, text, _ := strings.Cut(arg, " ")
			uid, _ := strconv.ParseUint(u, 10, 32)
			go func() {
				if err := node.SendToUID(uint32(uid), []byte("msg "+text+"\n")); err != nil {
					reply("touid err %d", code(err))
					return
				}
				reply("touid ok")
			}()
		case "bcast":
			go func() {
				c, err := node.Broadcast([]byte("msg " + arg + "\n"))
				reply("bcast %d %d", c, code(err))
			}()
		case "stats":
			go func() {
				st, err := node.Stats()
				var names []string
				for name := range st {
					names = append(names, name)
				}
				slices.Sort(names)
				reply("stats %s %d", strings.Join(names, ","), code(err))
			}()
		case "task":
			go func() {
				r, err := node.TaskWait([]byte(arg), 30*time.Second)
				if err != nil {
					reply("task err %d", code(err))
					return
				}
				reply("task %s", r)
			}()
		case "tasks":
			f := strings.Fields(arg)
			if len(f) != 3 {
				reply("err 505")
				return
			}
			total, _ := strconv.Atoi(f[0])
			conc, _ := strconv.Atoi(f[1])
			ms, _ := strconv.Atoi(f[2])
			go runTasks(h, node, total, conc, time.Duration(ms)*time.Millisecond, reply)
		case "send", "exist", "info", "kick":
			target, text, _ := strings.Cut(arg, " ")
			sess, err := cluster.ParseSession(target)
			if err != nil {
				reply("%s err %d", cmd, code(err))
				return
			}
			go func() {
				var err error
				switch cmd {
				case "send":
					err = node.Send(sess, []byte("msg "+text+"\n"))
				case "exist":
					ok := node.Exist(sess)
					reply("exist %v", ok)
					return
				case "info":
					var ci *swoole.ClientInfo
					if ci, err = node.ClientInfo(sess); err == nil {
						reply("info uid=%d", ci.UID)
						return
					}
				case "kick":
					err = node.Close(sess)
				}
				if err != nil {
					reply("%s err %d", cmd, code(err))
					return
				}
				reply("%s ok", cmd)
			}()
		case "counters":
			c := node.Counters()
			reply("counters sent=%d handled=%d redone=%d failed=%d received=%d dropped=%d", c.TasksSent, c.TasksHandled, c.TasksRedone, c.TasksFailed, c.ResultsReceived, c.ResultsDropped)
		default:
			reply("err unknown %q", cmd)
		}
	})
	s.OnTask(func(_ *swoole.Server, _ int, _ int, data []byte) any { return append([]byte("done:"), data...) })
	cfg.Tasks = cluster.TasksCluster
	node, err = cluster.Join(s, cfg)
	if err != nil {
		return nil, nil, err
	}
	node.OnTask(func(taskID string, data []byte) []byte {
		if strings.HasPrefix(string(data), "panic-once:") {
			if _, seen := panicked.LoadOrStore(taskID, true); !seen {
				panic("a task handler that panics on the first delivery")
			}
		}
		if holdFile != "" && strings.HasPrefix(string(data), "hold:") {
			// This host keeps the task in hand until it is killed or the test removes the
			// file (bounded: 2 minutes).
			_ = os.WriteFile(holdFile, data, 0o600)
			for end := time.Now().Add(2 * time.Minute); time.Now().Before(end); {
				if _, err := os.Stat(holdFile); err != nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		return append([]byte("done:"), data...)
	})
	return s, node, nil
}

// runTasks sends total tasks with TaskWait from conc goroutines, every other one with the
// server's TaskWait on handle h, and reports how they went.
func runTasks(h *swoole.Server, node *cluster.Node, total, conc int, timeout time.Duration, reply func(string, ...any)) {
	var next, ok, bad, fail atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	var half sync.Once
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(total) {
					return
				}
				data := fmt.Sprintf("%s-%d", node.Name(), i)
				var r []byte
				var err error
				if i%2 == 0 {
					r, err = h.TaskWait([]byte(data), timeout, -1)
				} else {
					r, err = node.TaskWait([]byte(data), timeout)
				}
				switch {
				case err != nil:
					fail.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				case string(r) != "done:"+data:
					bad.Add(1)
				default:
					ok.Add(1)
				}
				if i == int64(total/2) {
					half.Do(func() { reply("progress") })
				}
			}
		}()
	}
	wg.Wait()
	e, _ := firstErr.Load().(string)
	reply("tasks ok=%d bad=%d fail=%d %s", ok.Load(), bad.Load(), fail.Load(), e)
}

// code is an error's Swoole code (0: nil; -1: not a *swoole.Error).
func code(err error) int {
	if err == nil {
		return 0
	}
	var se *swoole.Error
	if errors.As(err, &se) {
		return se.Code
	}
	return -1
}

// client is a line client of a test host.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, port int) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 10*time.Second)
	if err != nil {
		t.Fatalf("dial %d: %v", port, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

func (c *client) send(line string) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write([]byte(line + "\n")); err != nil {
		c.t.Fatalf("write %q: %v", line, err)
	}
}

// expect reads lines until one starts with prefix (others, such as broadcasts, are
// skipped), within timeout.
func (c *client) expect(prefix string, timeout time.Duration) string {
	c.t.Helper()
	line, err := c.read(prefix, timeout)
	if err != nil {
		c.t.Fatalf("waiting for %q: %v", prefix, err)
	}
	return line
}

func (c *client) read(prefix string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	_ = c.conn.SetReadDeadline(deadline)
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimSuffix(line, "\n")
		if strings.HasPrefix(line, prefix) {
			return line, nil
		}
	}
}

// call sends a line and waits for the answer that starts with prefix.
func (c *client) call(line, prefix string, timeout time.Duration) string {
	c.t.Helper()
	c.send(line)
	return c.expect(prefix, timeout)
}
