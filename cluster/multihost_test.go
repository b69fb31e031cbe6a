package cluster_test

// Three goswoole hosts as separate processes (the test binary started again with envRole),
// each with an embedded nats-server, routed into one three-node NATS cluster on loopback:
// R3 task stream and uid bucket. The test drives each host over its own port (the line
// protocol of host_helpers_test.go) and kills by pid whatever it started.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goswoole/swoole"
	"github.com/goswoole/swoole/cluster"
)

// Environment of a host process.
const (
	envRole    = "GOSWOOLE_CLUSTER_TEST_ROLE"    // the node's name
	envDir     = "GOSWOOLE_CLUSTER_TEST_DIR"     // where it writes <node>.ready (its port) and keeps its store
	envNATS    = "GOSWOOLE_CLUSTER_TEST_NATS"    // its client port and cluster port: "4222,6222"
	envRoutes  = "GOSWOOLE_CLUSTER_TEST_ROUTES"  // the other servers' route URLs, comma-separated
	envMode    = "GOSWOOLE_CLUSTER_TEST_MODE"    // "thread": ModeThread (default ModeBase)
	envAckWait = "GOSWOOLE_CLUSTER_TEST_ACKWAIT" // TaskAckWait in ms
	envHold    = "GOSWOOLE_CLUSTER_TEST_HOLD"    // "1": the handler keeps "hold:" tasks in hand (holdFile: <dir>/<node>.holding)
	envBeat    = "GOSWOOLE_CLUSTER_TEST_BEAT"    // Heartbeat in ms (default 500)
)

// runHostProcess is the test binary as a host: it serves until SIGTERM (or is killed).
func runHostProcess() int {
	name, dir := os.Getenv(envRole), os.Getenv(envDir)
	var client, route int
	if _, err := fmt.Sscanf(os.Getenv(envNATS), "%d,%d", &client, &route); err != nil {
		fmt.Fprintln(os.Stderr, "host: bad", envNATS, err)
		return 2
	}
	ack, _ := strconv.Atoi(os.Getenv(envAckWait))
	beat := 500 * time.Millisecond
	if ms, err := strconv.Atoi(os.Getenv(envBeat)); err == nil && ms > 0 {
		beat = time.Duration(ms) * time.Millisecond
	}
	if os.Getenv(envHold) == "1" {
		holdFile = filepath.Join(dir, name+".holding")
	}
	mode := swoole.ModeBase
	if os.Getenv(envMode) == "thread" {
		mode = swoole.ModeThread
	}
	s, node, err := newHost(mode, cluster.Config{
		Cluster: "test", Node: name,
		Embedded: cluster.Embedded{Port: client, ClusterPort: route,
			Routes: strings.Split(os.Getenv(envRoutes), ","), StoreDir: filepath.Join(dir, "store-"+name)},
		TaskAckWait:     time.Duration(ack) * time.Millisecond,
		TaskConcurrency: 8,
		RequestTimeout:  3 * time.Second,
		Heartbeat:       beat,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "host:", err)
		return 2
	}
	go func() {
		select {
		case <-node.Ready():
		case <-time.After(2 * time.Minute):
			return
		}
		port := strconv.Itoa(s.Ports()[0].Port())
		_ = os.WriteFile(filepath.Join(dir, name+".tmp"), []byte(port), 0o600)
		_ = os.Rename(filepath.Join(dir, name+".tmp"), filepath.Join(dir, name+".ready"))
	}()
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "host: Start:", err)
		return 1
	}
	if err := node.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "host: node:", err)
		return 1
	}
	return 0
}

// freePorts returns n distinct ports free on 127.0.0.1 now, below the ephemeral range
// (32768 and up) so that other programs' port-0 listeners do not take them meanwhile.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var out []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for try := 0; len(out) < n && try < 1000; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(20000+rand.IntN(12000)))
		if err != nil {
			continue
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	if len(out) < n {
		t.Fatalf("found %d free ports of %d", len(out), n)
	}
	return out
}

// host is a host process the test started.
type host struct {
	name string
	dir  string // the test's directory
	cmd  *exec.Cmd
	port int // its goswoole port
	nats int // its nats-server's client port
	log  string
}

// startHosts starts three hosts routed into one NATS cluster and waits until each is ready
// and knows the two others.
func startHosts(t *testing.T, names ...string) map[string]*host {
	return startHostsEnv(t, nil, names...)
}

// startHostsEnv is startHosts with env added to every host's environment.
func startHostsEnv(t *testing.T, env []string, names ...string) map[string]*host {
	dir := t.TempDir()
	ports := freePorts(t, 2*len(names))
	hosts := map[string]*host{}
	for i, name := range names {
		var routes []string
		for j := range names {
			if j != i {
				routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(ports[2*j+1]))
			}
		}
		h := &host{name: name, dir: dir, nats: ports[2*i], log: filepath.Join(dir, name+".log")}
		logf, err := os.Create(h.log)
		if err != nil {
			t.Fatal(err)
		}
		h.cmd = exec.Command(os.Args[0], "-test.run=^$")
		mode, hold := "", ""
		if i == 1 {
			mode = "thread" // one host of the three runs ModeThread
		}
		if i == 2 {
			hold = "1" // the host the test kills keeps "hold:" tasks in hand
		}
		h.cmd.Env = append(os.Environ(), envRole+"="+name, envDir+"="+dir,
			envNATS+"="+strconv.Itoa(ports[2*i])+","+strconv.Itoa(ports[2*i+1]),
			envRoutes+"="+strings.Join(routes, ","), envMode+"="+mode, envAckWait+"=2000", envHold+"="+hold)
		h.cmd.Env = append(h.cmd.Env, env...)
		h.cmd.Stdout, h.cmd.Stderr = logf, logf
		if err := h.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		_ = logf.Close()
		hosts[name] = h
		t.Cleanup(func() {
			_ = h.cmd.Process.Signal(syscall.SIGCONT) // a stopped host (partition_test.go) first runs again
			_ = h.cmd.Process.Kill()
			_, _ = h.cmd.Process.Wait()
			if t.Failed() {
				b, _ := os.ReadFile(h.log)
				t.Logf("host %s log:\n%s", h.name, b)
			}
		})
	}
	for _, h := range hosts {
		waitFor(t, 90*time.Second, h.name+" ready", func() bool {
			b, err := os.ReadFile(filepath.Join(dir, h.name+".ready"))
			if err != nil {
				return false
			}
			h.port, _ = strconv.Atoi(string(b))
			return true
		})
	}
	return hosts
}

// dumpTasks logs what the task stream and its consumer look like through h's nats-server,
// and the counters of A and B, when the tasks do not finish.
func dumpTasks(t *testing.T, h *host, ctl map[string]*client) {
	for _, name := range []string{"A", "B"} {
		ctl[name].send("counters")
		if line, err := ctl[name].read("counters", 10*time.Second); err == nil {
			t.Logf("%s: %s", name, line)
		}
	}
	nc, err := nats.Connect("nats://127.0.0.1:" + strconv.Itoa(h.nats))
	if err != nil {
		t.Logf("dump: %v", err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "GOSWOOLE_test_TASKS")
	if err != nil {
		t.Logf("dump: stream: %v", err)
		return
	}
	si, err := st.Info(ctx)
	if err == nil {
		b, _ := json.Marshal(si.State)
		c, _ := json.Marshal(si.Cluster)
		t.Logf("stream state %s cluster %s", b, c)
	}
	cons, err := st.Consumer(ctx, "workers")
	if err != nil {
		t.Logf("dump: consumer: %v", err)
		return
	}
	ci, err := cons.Info(ctx)
	if err == nil {
		b, _ := json.Marshal(ci)
		t.Logf("consumer %s", b)
	}
}

// holdTask sends "hold:<i>" tasks through cl until the holding host writes file, and returns
// the client whose TaskWait waits for the held task.
func holdTask(t *testing.T, cl *client, file string) *client {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		cl.send(fmt.Sprintf("task hold:%d", i))
		for {
			if _, err := os.Stat(file); err == nil {
				return cl
			}
			// The answer of a hold task taken by another host; none yet: poll the file.
			_ = cl.conn.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			line, err := cl.r.ReadString('\n')
			if err == nil {
				if !strings.HasPrefix(line, "task done:hold:") {
					t.Fatalf("hold task: %q", line)
				}
				break
			}
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				t.Fatalf("hold task: %v", err)
			}
			if time.Now().After(deadline) {
				break
			}
		}
	}
	t.Fatal("no hold task reached the holding host within 30 s")
	return nil
}

// TestThreeHosts: tasks, uids, broadcasts and stats across three hosts, one of which (with
// its NATS node) is SIGKILLed in the middle of the tasks.
func TestThreeHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("three host processes")
	}
	began := time.Now()
	hosts := startHosts(t, "A", "B", "C")
	a, b, c := hosts["A"], hosts["B"], hosts["C"]
	ctl := map[string]*client{}
	for name, h := range hosts {
		ctl[name] = dial(t, h.port)
	}
	for name := range hosts {
		waitFor(t, 30*time.Second, name+" to know every node", func() bool {
			return ctl[name].call("stats", "stats", 10*time.Second) == "stats A,B,C 0"
		})
	}
	t.Logf("three hosts up in %v", time.Since(began).Round(time.Millisecond))

	// A client on A bound to uid 7 receives a SendToUID from C.
	u7 := dial(t, a.port)
	if got := u7.call("bind 7", "", 10*time.Second); got != "bound" {
		t.Fatalf("bind 7: %q", got)
	}
	if got := ctl["C"].call("touid 7 from-C", "touid", 10*time.Second); got != "touid ok" {
		t.Fatalf("touid from C: %q", got)
	}
	u7.expect("msg from-C", 10*time.Second)
	if got := ctl["C"].call("touid 8 nobody", "touid", 10*time.Second); got != "touid err 1005" {
		t.Fatalf("touid 8 (unbound): %q", got)
	}

	// A broadcast from B reaches every client of the three hosts.
	perHost := envInt("GOSWOOLE_CLUSTER_CLIENTS", 334) // per host: 1,002 clients in all
	var clients []*client
	for _, h := range []*host{a, b, c} {
		for range perHost {
			cl := dial(t, h.port)
			cl.send("hello")
			clients = append(clients, cl)
		}
	}
	for _, cl := range clients {
		cl.expect("hi ", 10*time.Second)
	}
	got := ctl["B"].call("bcast to-all", "bcast", 20*time.Second)
	var reached, bcode int
	if _, err := fmt.Sscanf(got, "bcast %d %d", &reached, &bcode); err != nil || bcode != 0 || reached < 3*perHost {
		t.Fatalf("bcast: %q, want every one of %d clients", got, 3*perHost)
	}
	for _, cl := range append(clients, u7) {
		cl.expect("msg to-all", 10*time.Second)
	}
	t.Logf("broadcast from B reached %d connections", reached)

	// Tasks from every host; C (a goswoole host and a NATS node) is SIGKILLed in the middle.
	tasks := envInt("GOSWOOLE_CLUSTER_TASKS", 3334) // per host: 10,002 in all
	began = time.Now()
	for _, name := range []string{"A", "B", "C"} {
		ctl[name].send(fmt.Sprintf("tasks %d 16 60000", tasks))
	}
	ctl["A"].expect("progress", 60*time.Second)
	// C must die with a task in hand: A sends "hold:" tasks, one at a time, until C's handler
	// holds one (those A or B take come back at once).
	held := holdTask(t, dial(t, a.port), filepath.Join(c.dir, "C.holding"))
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = c.cmd.Process.Wait()
	t.Logf("C killed %v into the tasks", time.Since(began).Round(time.Millisecond))
	// At once, while the NATS cluster elects leaders again: a Bind on B, found from A.
	u8 := dial(t, b.port)
	if got := u8.call("bind 8", "", 20*time.Second); got != "bound" {
		t.Fatalf("bind 8 on B just after the kill: %q", got)
	}
	// (on a connection of its own: ctl["A"] is waiting for A's tasks, and a read skips lines)
	if got := dial(t, a.port).call("touid 8 from-A", "touid", 20*time.Second); got != "touid ok" {
		t.Fatalf("touid 8 from A just after the kill: %q", got)
	}
	u8.expect("msg from-A", 10*time.Second)
	for _, name := range []string{"A", "B"} {
		want := fmt.Sprintf("tasks ok=%d bad=0 fail=0 ", tasks)
		got, err := ctl[name].read("tasks", 90*time.Second)
		if err != nil {
			dumpTasks(t, a, ctl)
			t.Fatalf("%s: waiting for its tasks: %v", name, err)
		}
		if got != want {
			t.Fatalf("%s: %q, want %q", name, got, want)
		}
	}
	// C died with the held task (and others) in hand: they ran again on A or B.
	if got := held.expect("task", 30*time.Second); !strings.HasPrefix(got, "task done:hold:") {
		t.Fatalf("the task C held: %q", got)
	}
	// Every task A and B sent has its one result (the hold tasks included); each ran on A
	// and B both; some ran again.
	redone := 0
	for _, name := range []string{"A", "B"} {
		counters := ctl[name].call("counters", "counters", 10*time.Second)
		var sent, handled, again, failed, received, dropped int
		if _, err := fmt.Sscanf(counters, "counters sent=%d handled=%d redone=%d failed=%d received=%d dropped=%d", &sent, &handled, &again, &failed, &received, &dropped); err != nil || sent < tasks || received != sent || handled == 0 {
			t.Fatalf("%s: %q: want %d sent or more, a result for each and some tasks handled", name, counters, tasks)
		}
		t.Logf("%s: %s", name, counters)
		redone += again
	}
	if redone == 0 {
		t.Errorf("no task C held ran again on A or B")
	}
	t.Logf("%d tasks from A and B done in %v", 2*tasks, time.Since(began).Round(time.Millisecond))

	// With C and its NATS node gone, calls on A and B go on.
	waitFor(t, 20*time.Second, "A to forget C", func() bool {
		return ctl["A"].call("stats", "stats", 10*time.Second) == "stats A,B 0"
	})
	if got := ctl["B"].call("touid 7 after-kill", "touid", 10*time.Second); got != "touid ok" {
		t.Fatalf("touid from B after the kill: %q", got)
	}
	u7.expect("msg after-kill", 10*time.Second)
	got = ctl["A"].call("bcast after-kill", "bcast", 20*time.Second)
	if _, err := fmt.Sscanf(got, "bcast %d %d", &reached, &bcode); err != nil || bcode != 0 || reached < 2*perHost {
		t.Fatalf("bcast after the kill: %q", got)
	}
	for _, cl := range append(clients[:2*perHost], u7) {
		cl.expect("msg after-kill", 10*time.Second)
	}
	if got := ctl["B"].call("task after-kill", "task", 30*time.Second); got != "task done:after-kill" {
		t.Fatalf("task after the kill: %q", got)
	}
	// A and B shut down cleanly (SIGTERM: the server's Shutdown, the node's close).
	for _, h := range []*host{a, b} {
		if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []*host{a, b} {
		done := make(chan error, 1)
		go func() { done <- h.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("host %s exited: %v", h.name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("host %s did not exit within 30 s of SIGTERM", h.name)
		}
	}
}

// envInt is the environment variable name as a positive number, or def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
