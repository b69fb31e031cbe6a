package cluster_test

// A network partition simulated by stopping a node: host C (its goswoole server and its
// embedded nats-server, one process) gets SIGSTOP. Its TCP connections stay open and nothing
// answers on them: the NATS routes to it, its clients' connections. The test drives A and B
// over their ports (the line protocol of host_helpers_test.go) while C is stopped, then sends
// SIGCONT and checks that C takes up where it was.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// answer is what a host answered to one line, and how long it took.
type answer struct {
	line string
	err  error
	took time.Duration
}

// ask sends a line (none if empty) and reads the answer, the first line that starts with one
// of prefixes, on a goroutine of its own (which ends within timeout): several calls can wait
// at once, each on its own client.
func (c *client) ask(line string, timeout time.Duration, prefixes ...string) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		began := time.Now()
		_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if line != "" {
			if _, err := c.conn.Write([]byte(line + "\n")); err != nil {
				ch <- answer{err: err}
				return
			}
		}
		_ = c.conn.SetReadDeadline(began.Add(timeout))
		for {
			l, err := c.r.ReadString('\n')
			if err != nil {
				ch <- answer{err: err, took: time.Since(began)}
				return
			}
			l = strings.TrimSuffix(l, "\n")
			for _, p := range prefixes {
				if strings.HasPrefix(l, p) {
					ch <- answer{l, nil, time.Since(began)}
					return
				}
			}
		}
	}()
	return ch
}

// expectAll reads lines until each of want has come (in any order; other lines are
// skipped), within timeout.
func (c *client) expectAll(timeout time.Duration, want ...string) {
	c.t.Helper()
	left := map[string]bool{}
	for _, w := range want {
		left[w] = true
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	for len(left) > 0 {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("waiting for %v: %v", left, err)
		}
		delete(left, strings.TrimSuffix(line, "\n"))
	}
}

// leadOn moves the leadership of the task stream, the uid bucket and both task consumers
// to the NATS node named leader (through the nats-server of h): the worst case for a
// partition of that node, every one of them must elect a leader again.
func leadOn(t *testing.T, h *host, leader string) {
	t.Helper()
	nc, err := nats.Connect("nats://127.0.0.1:" + strconv.Itoa(h.nats))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const tasks, uids = "GOSWOOLE_test_TASKS", "KV_goswoole_test_uid"
	groups := []struct{ stream, consumer string }{{tasks, ""}, {uids, ""}, {tasks, "workers"}, {tasks, "server"}}
	req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": leader}})
	for _, g := range groups {
		subject := "$JS.API.STREAM.LEADER.STEPDOWN." + g.stream
		if g.consumer != "" {
			subject = "$JS.API.CONSUMER.LEADER.STEPDOWN." + g.stream + "." + g.consumer
		}
		current := func() string {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st, err := js.Stream(ctx, g.stream)
			if err != nil {
				return ""
			}
			if g.consumer == "" {
				si, err := st.Info(ctx)
				if err != nil || si.Cluster == nil {
					return ""
				}
				return si.Cluster.Leader
			}
			cons, err := st.Consumer(ctx, g.consumer)
			if err != nil {
				return ""
			}
			ci, err := cons.Info(ctx)
			if err != nil || ci.Cluster == nil {
				return ""
			}
			return ci.Cluster.Leader
		}
		deadline := time.Now().Add(30 * time.Second)
		for l := current(); l != leader; l = current() {
			if time.Now().After(deadline) {
				t.Fatalf("%s %s: leader %q, not %s, after 30 s", g.stream, g.consumer, l, leader)
			}
			if l != "" { // a leader to step down (none: an election is under way)
				_, _ = nc.Request(subject, req, 5*time.Second)
			}
			waitFor(t, 10*time.Second, g.stream+" "+g.consumer+" to have a leader", func() bool { return current() != "" })
		}
	}
}

// TestStoppedHost: a network partition simulated by stopping host C (SIGSTOP: its server and
// its NATS node freeze, their connections stay open). C leads the task stream, the uid
// bucket and the task consumers, and holds a task, when it stops. What each call returns
// meanwhile, on A and B; then SIGCONT: C takes up again.
func TestStoppedHost(t *testing.T) {
	if testing.Short() {
		t.Skip("three host processes")
	}
	const reqTimeout = 3 * time.Second // the hosts' Config.RequestTimeout
	began := time.Now()
	// Heartbeat 2 s: C stays in the others' list for 4 s or more after it stops (forgotten
	// after three heartbeats unheard), so the first Broadcast and Stats wait for it.
	hosts := startHostsEnv(t, []string{envBeat + "=2000"}, "A", "B", "C")
	a, b, c := hosts["A"], hosts["B"], hosts["C"]
	conns := map[string]int{} // the connections the test holds open on each host
	open := func(h *host) *client {
		conns[h.name]++
		return dial(t, h.port)
	}
	ctl := map[string]*client{}
	for _, name := range []string{"A", "B", "C"} {
		ctl[name] = open(hosts[name])
	}
	for name := range hosts {
		waitFor(t, 30*time.Second, name+" to know every node", func() bool {
			return ctl[name].call("stats", "stats", 10*time.Second) == "stats A,B,C 0"
		})
	}
	session := func(cl *client) string { return strings.TrimPrefix(cl.call("hello", "hi ", 10*time.Second), "hi ") }
	// C's clients: cS takes Send, Exist and ClientInfo, cK is closed (Close), cU is bound to
	// uid 7; uB on B is bound to uid 9 while C is stopped.
	cS, cK, cU, uB := open(c), open(c), open(c), open(b)
	sS, sK, sU := session(cS), session(cK), session(cU)
	if got := cU.call("bind 7", "", 10*time.Second); got != "bound" {
		t.Fatalf("bind 7 on C: %q", got)
	}
	leadOn(t, a, "C")
	// C takes a "hold:" task from A and keeps it in hand.
	holdPath := filepath.Join(c.dir, "C.holding")
	held := holdTask(t, open(a), holdPath)
	// One client per call, opened (and served once) before the stop: a broadcast counts them.
	q := map[string]*client{}
	for _, k := range []string{"stats", "send", "kick", "exist", "info", "tasks", "touid9"} {
		q[k] = open(a)
		session(q[k])
	}
	for _, k := range []string{"bcast", "touid7", "tasks"} {
		q["B"+k] = open(b)
		session(q["B"+k])
	}
	atAB := conns["A"] + conns["B"]
	t.Logf("three hosts up, C leading, a task held on C, in %v", time.Since(began).Round(time.Millisecond))

	if err := c.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	ask := map[string]<-chan answer{
		"stats":  q["stats"].ask("stats", 30*time.Second, "stats"),
		"bcast":  q["Bbcast"].ask("bcast stop-1", 30*time.Second, "bcast"),
		"send":   q["send"].ask("send "+sS+" stop-send", 30*time.Second, "send"),
		"kick":   q["kick"].ask("kick "+sK, 30*time.Second, "kick"),
		"exist":  q["exist"].ask("exist "+sS, 30*time.Second, "exist"),
		"info":   q["info"].ask("info "+sU, 30*time.Second, "info"),
		"touid7": q["Btouid7"].ask("touid 7 stop-touid", 40*time.Second, "touid"),
		"bind9":  uB.ask("bind 9", 40*time.Second, "bound", "err "),
		"tasksA": q["tasks"].ask("tasks 100 8 40000", 60*time.Second, "tasks "),
		"tasksB": q["Btasks"].ask("tasks 100 8 40000", 60*time.Second, "tasks "),
		"held":   held.ask("", 40*time.Second, "task"), // its TaskWait is under way
	}
	get := func(k string) answer {
		t.Helper()
		r := <-ask[k]
		if r.err != nil {
			t.Fatalf("%s while C is stopped: %v", k, r.err)
		}
		t.Logf("C stopped: %-7s -> %q in %v", k, r.line, r.took.Round(time.Millisecond))
		return r
	}
	// Calls on C's sessions wait RequestTimeout, then answer ETIMEDOUT (Exist: false).
	for k, want := range map[string]string{"send": "send err 110", "kick": "kick err 110", "exist": "exist false", "info": "info err 110"} {
		r := get(k)
		if r.line != want || r.took < reqTimeout-100*time.Millisecond || r.took > reqTimeout+7*time.Second {
			t.Errorf("%s on a session of stopped C: %q in %v, want %q after %v", k, r.line, r.took, want, reqTimeout)
		}
	}
	// Broadcast and Stats wait RequestTimeout for C (still heard of), then answer the others'
	// figures with ETIMEDOUT.
	if r := get("stats"); r.line != "stats A,B 110" || r.took < reqTimeout-100*time.Millisecond {
		t.Errorf("stats while C is stopped: %q in %v, want \"stats A,B 110\" after %v", r.line, r.took, reqTimeout)
	}
	if r := get("bcast"); r.line != fmt.Sprintf("bcast %d 110", atAB) {
		t.Errorf("bcast while C is stopped: %q, want \"bcast %d 110\" (A's and B's connections)", r.line, atAB)
	}
	// A uid bound on C: found in the bucket (two NATS nodes of three), its Send times out.
	if r := get("touid7"); r.line != "touid err 110" {
		t.Errorf("touid 7 (bound on C) while C is stopped: %q, want \"touid err 110\"", r.line)
	}
	// Bind on B writes the bucket (a new leader, elected by two nodes of three).
	if r := get("bind9"); r.line != "bound" {
		t.Errorf("bind 9 on B while C is stopped: %q", r.line)
	}
	// The task C held is delivered again, to A or B, after TaskAckWait (and an election).
	if r := get("held"); !strings.HasPrefix(r.line, "task done:hold:") {
		t.Errorf("the task C held: %q", r.line)
	}
	// Tasks sent while C is stopped (half through the server's TaskWait, half the node's).
	for _, k := range []string{"tasksA", "tasksB"} {
		if r := get(k); r.line != "tasks ok=100 bad=0 fail=0 " {
			t.Errorf("%s while C is stopped: %q, want every one done", k, r.line)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// C is forgotten three heartbeats after its last: Broadcast and Stats answer at once
	// without it.
	waitFor(t, 20*time.Second, "A to forget C", func() bool {
		return ctl["A"].call("stats", "stats", 10*time.Second) == "stats A,B 0"
	})
	t.Logf("A forgot C %v after the stop", time.Since(stopped).Round(time.Millisecond))
	if got := ctl["A"].call("bcast stop-2", "bcast", 10*time.Second); got != fmt.Sprintf("bcast %d 0", atAB) {
		t.Errorf("bcast once C is forgotten: %q, want \"bcast %d 0\"", got, atAB)
	}
	if got := q["touid9"].call("touid 9 to-9", "touid", 20*time.Second); got != "touid ok" {
		t.Errorf("touid 9 (bound on B while C is stopped): %q", got)
	}
	uB.expect("msg to-9", 10*time.Second)
	stoppedFor := time.Since(stopped)

	// SIGCONT: C runs again, and runs what reached it meanwhile.
	if err := c.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	t.Logf("C resumed after %v stopped", stoppedFor.Round(time.Millisecond))
	// The calls that timed out reached C: it runs them now (late). The Send and the uid's
	// Send arrive, both broadcasts too, the Close closes.
	cS.expect("msg stop-send", 15*time.Second)
	cU.expect("msg stop-touid", 15*time.Second)
	ctl["C"].expectAll(15*time.Second, "msg stop-1", "msg stop-2")
	_ = cK.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	if rest, err := io.ReadAll(cK.r); err != nil {
		t.Errorf("the session closed while C was stopped: %v (read %q), want its connection closed once C resumed", err, rest)
	}
	conns["C"]--
	// The held task's handler returns: its result reaches A after the redelivery's, and is
	// dropped there (one result per task).
	if err := os.Remove(holdPath); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "A to drop the held task's late result", func() bool {
		var sent, handled, again, failed, received, dropped int
		line := ctl["A"].call("counters", "counters", 10*time.Second)
		_, err := fmt.Sscanf(line, "counters sent=%d handled=%d redone=%d failed=%d received=%d dropped=%d", &sent, &handled, &again, &failed, &received, &dropped)
		return err == nil && dropped > 0
	})
	for _, name := range []string{"A", "B", "C"} {
		waitFor(t, 20*time.Second, name+" to know every node again", func() bool {
			return ctl[name].call("stats", "stats", 10*time.Second) == "stats A,B,C 0"
		})
	}
	t.Logf("C back in the cluster %v after SIGCONT", time.Since(stopped.Add(stoppedFor)).Round(time.Millisecond))
	// Calls on C's sessions work again; its clients' connections are open.
	if got := q["send"].call("send "+sS+" after", "send", 10*time.Second); got != "send ok" {
		t.Errorf("send to C after SIGCONT: %q", got)
	}
	cS.expect("msg after", 10*time.Second)
	if got := q["exist"].call("exist "+sS, "exist", 10*time.Second); got != "exist true" {
		t.Errorf("exist on C after SIGCONT: %q", got)
	}
	if got := q["info"].call("info "+sU, "info", 10*time.Second); got != "info uid=7" {
		t.Errorf("info on C after SIGCONT: %q", got)
	}
	if got := q["Btouid7"].call("touid 7 after", "touid", 20*time.Second); got != "touid ok" {
		t.Errorf("touid 7 after SIGCONT: %q", got)
	}
	cU.expect("msg after", 10*time.Second)
	all := conns["A"] + conns["B"] + conns["C"]
	if got := q["Bbcast"].call("bcast after-all", "bcast", 20*time.Second); got != fmt.Sprintf("bcast %d 0", all) {
		t.Errorf("bcast after SIGCONT: %q, want \"bcast %d 0\"", got, all)
	}
	for _, cl := range []*client{cS, cU, ctl["C"]} {
		cl.expect("msg after-all", 10*time.Second)
	}
	if got := ctl["C"].call("tasks 20 4 30000", "tasks ", 60*time.Second); got != "tasks ok=20 bad=0 fail=0 " {
		t.Errorf("tasks from C after SIGCONT: %q", got)
	}
	// Every task A and B sent has had one result (the held one included).
	for _, name := range []string{"A", "B"} {
		var sent, handled, again, failed, received, dropped int
		line := ctl[name].call("counters", "counters", 10*time.Second)
		if _, err := fmt.Sscanf(line, "counters sent=%d handled=%d redone=%d failed=%d received=%d dropped=%d", &sent, &handled, &again, &failed, &received, &dropped); err != nil || received != sent || sent < 100 {
			t.Errorf("%s: %q: want a result received for each task sent", name, line)
		}
		t.Logf("%s: %s", name, line)
	}
	// All three shut down cleanly (SIGTERM).
	for _, h := range []*host{a, b, c} {
		if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []*host{a, b, c} {
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
	t.Logf("done in %v", time.Since(began).Round(time.Millisecond))
}
