package swoole_test

// Upgrade (handover.go): a server of one process hands its listening sockets to a new
// process of its executable and drains. The server runs as a separate process (the test
// binary in the "upgrade" role, multiproc_helpers_test.go's mpStartServer), replies to
// "pid" with its pid, and upgrades on SIGHUP or on the line "upgrade"; clients connect
// throughout and none may be refused or reset.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole"
)

// Environment of the upgrade test server.
const (
	upEnvWait  = "GOSWOOLE_TEST_UP_WAIT_MS" // max_wait_time in milliseconds (default 60000)
	upEnvFail  = "GOSWOOLE_TEST_UP_FAIL"    // a file: a process that finds it there exits 3 before Start
	upEnvAdmin = "GOSWOOLE_TEST_UP_ADMIN"   // admin_server
	upEnvPorts = "GOSWOOLE_TEST_UP_PORTS"   // a directory: a unix stream port (<dir>/sock) and a UDP port too, enable_reuse_port
)

func init() { mpMoreServers["upgrade"] = upServerMain }

// upServerMain is a line server: "pid" → "<pid>", "upgrade" → Upgrade from the callback,
// then "upgrade <code>". SIGHUP upgrades too. Events: workerstart, ready <port>,
// upgrade <code> <message>, shutdown, exit; "failing" before exiting 3 (upEnvFail).
func upServerMain() int {
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	if f := os.Getenv(upEnvFail); f != "" {
		if _, err := os.Stat(f); err == nil {
			mpEvent("failing")
			fmt.Fprintln(os.Stderr, "upgrade test server: exiting 3 before Start, as asked")
			return 3
		}
	}
	set := mpLineSettings(envInt(mpEnvWorkers, 1))
	set.MaxWaitTime = time.Duration(envInt(upEnvWait, 60000)) * time.Millisecond
	set.AdminServer = os.Getenv(upEnvAdmin)
	if dir := os.Getenv(upEnvPorts); dir != "" {
		set.EnableReusePort = true
		if _, err := s.AddListener(dir+"/sock", 0, swoole.SockUnixStream); err != nil {
			fmt.Fprintln(os.Stderr, "AddListener unix:", err)
			return 2
		}
		udp, err := s.AddListener("127.0.0.1", 0, swoole.SockUDP)
		if err != nil {
			fmt.Fprintln(os.Stderr, "AddListener udp:", err)
			return 2
		}
		mpEvent("udp", udp.Port())
		s.OnPacket(func(s *swoole.Server, _ []byte, from swoole.ClientAddr) {
			_ = s.SendTo(from.Address, from.Port, []byte(strconv.Itoa(os.Getpid())), from.ServerSocket)
		})
	}
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	pid := strconv.Itoa(os.Getpid())
	upgrade := func() int {
		err := s.Upgrade()
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		mpEvent("upgrade", mpCode(err), msg)
		return mpCode(err)
	}
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		switch strings.TrimSpace(string(data)) {
		case "pid":
			_ = s.Send(fd, []byte(pid+"\n"))
		case "upgrade":
			_ = s.Send(fd, []byte("upgrade "+strconv.Itoa(upgrade())+"\n"))
		}
	})
	s.OnWorkerStart(func(s *swoole.Server, id int) {
		mpEvent("workerstart", id)
		// The sockets' inodes: the new process must serve the old one's sockets, not
		// sockets of its own bound to the same ports.
		var inos []any
		for _, p := range s.Ports() {
			ino := uint64(0)
			if f, err := p.GetSocket(); err == nil {
				if fi, err := f.Stat(); err == nil {
					ino = fi.Sys().(*syscall.Stat_t).Ino
				}
			}
			inos = append(inos, ino)
		}
		mpEvent("sockets", inos...)
		mpEvent("ready", s.Ports()[0].Port())
	})
	s.OnShutdown(func(*swoole.Server) { mpEvent("shutdown") })
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				upgrade()
			case <-stop:
				return
			}
		}
	}()
	err = s.Start()
	close(stop)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	mpEvent("exit")
	return 0
}

// upDial connects to the upgrade test server: a line client whose exchanges wait up to mpTimeout.
func upDial(t testing.TB, port int) *lineClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), mpTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &lineClient{t: t, c: c, r: bufio.NewReader(c), timeout: mpTimeout}
}

// upEnd checks that the old process of an upgrade exited 0 once its last connection
// closed, then stops the new one.
func upEnd(t *testing.T, ms *mpServer, newPID int) {
	t.Helper()
	if st := ms.wait(mpTimeout); st.ExitCode() != 0 {
		t.Fatalf("the old process: %v, want exit status 0\n%s", st, ms.output())
	}
	upStopNew(t, newPID)
}

// upStopNew stops the new process of an upgrade with SIGTERM and waits for it to go.
func upStopNew(t *testing.T, newPID int) {
	t.Helper()
	_ = unix.Kill(newPID, unix.SIGTERM)
	if !mpGoneWithin(newPID, mpTimeout) {
		t.Fatalf("the new process %d did not stop on SIGTERM", newPID)
	}
}

// upPID asks the server over c which process answers.
func upPID(c *lineClient) int {
	c.t.Helper()
	return atoi(c.do("pid"))
}

// upChurn is clients that connect, ask "pid" once and close, over and over, until stopped
// (bounded: upChurnMax connections each, and mpTimeout*4). Every failure is recorded.
type upChurn struct {
	port int
	stop chan struct{}
	wg   sync.WaitGroup

	mu   sync.Mutex
	pids map[int]int // answers by pid
	last int         // the pid of the latest answer
	errs []string
}

const (
	upChurnClients = 4
	upChurnMax     = 10000
	upChurnPace    = 2 * time.Millisecond // between one client's connections: spares ephemeral ports
)

func startChurn(t testing.TB, port int) *upChurn {
	ch := &upChurn{port: port, stop: make(chan struct{}), pids: map[int]int{}}
	deadline := time.Now().Add(4 * mpTimeout)
	for range upChurnClients {
		ch.wg.Add(1)
		go func() {
			defer ch.wg.Done()
			for range upChurnMax {
				select {
				case <-ch.stop:
					return
				case <-time.After(upChurnPace):
				}
				if time.Now().After(deadline) {
					return
				}
				pid, err := ch.once()
				ch.mu.Lock()
				if err != nil {
					ch.errs = append(ch.errs, err.Error())
				} else {
					ch.pids[pid]++
					ch.last = pid
				}
				ch.mu.Unlock()
			}
		}()
	}
	t.Cleanup(ch.halt)
	return ch
}

// once connects, asks "pid" and closes.
func (ch *upChurn) once() (int, error) {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(ch.port), mpTimeout)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(mpTimeout))
	if _, err := c.Write([]byte("pid\n")); err != nil {
		return 0, fmt.Errorf("write: %w", err)
	}
	l, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("read: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(l))
	if err != nil {
		return 0, fmt.Errorf("reply %q", l)
	}
	return pid, nil
}

func (ch *upChurn) halt() {
	select {
	case <-ch.stop:
	default:
		close(ch.stop)
	}
	ch.wg.Wait()
}

// answers returns how many answers pid gave, and every failure so far.
func (ch *upChurn) answers(pid int) (int, []string) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.pids[pid], append([]string(nil), ch.errs...)
}

// upWaitAnswers waits until the churn got n more answers from pid than it had (failing at
// the first connection error). pid need not be ms's process: after an upgrade the new process
// answers, also once the old one (ms) has exited, so ms's exit does not cut the wait short.
func upWaitAnswers(t *testing.T, ms *mpServer, ch *upChurn, pid, n int) {
	t.Helper()
	base, _ := ch.answers(pid)
	deadline := time.Now().Add(mpTimeout)
	for {
		got, errs := ch.answers(pid)
		if len(errs) > 0 {
			t.Fatalf("a churn connection failed: %v", errs)
		}
		if got >= base+n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %d churn answers from pid %d\n%s", mpTimeout, n, pid, ms.output())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// upUnixPID asks the unix stream port in dir for its pid.
func upUnixPID(t *testing.T, dir string) int {
	t.Helper()
	c, err := net.DialTimeout("unix", dir+"/sock", mpTimeout)
	if err != nil {
		t.Fatalf("dial the unix port: %v", err)
	}
	defer c.Close()
	return upPID(&lineClient{t: t, c: c, r: bufio.NewReader(c), timeout: mpTimeout})
}

// upUDPPID sends a datagram to the UDP port and returns the pid in the reply (resent every
// 200 ms: a datagram may be lost).
func upUDPPID(t *testing.T, ms *mpServer) int {
	t.Helper()
	port := ms.waitEvent("udp", func(e mpEv) bool { return e.PID == ms.cmd.Process.Pid }).int(0)
	c, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	deadline := time.Now().Add(mpTimeout)
	for time.Now().Before(deadline) {
		if _, err := c.Write([]byte("pid")); err != nil {
			t.Fatalf("UDP write: %v", err)
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, err := c.Read(buf); err == nil {
			return atoi(string(buf[:n]))
		}
	}
	t.Fatalf("no UDP reply within %v", mpTimeout)
	return 0
}

// upNewPID waits for the workerstart of a process other than old and returns its pid.
func upNewPID(ms *mpServer, old int) int {
	return ms.waitEvent("workerstart", func(e mpEv) bool { return e.PID != old }).PID
}

// TestUpgradeHandsOverListeners: SIGHUP (Upgrade on a goroutine of its own) or the line
// "upgrade" (Upgrade in a callback, the loop serving on meanwhile). Clients connect
// throughout: none is refused or reset; connections opened before the upgrade are answered
// by the old process until they close; new ones end up with the new process; the old one
// exits 0 once its last connection closed, and the new one stops on SIGTERM.
//
// The "ports" case adds a unix stream port, a UDP port and enable_reuse_port: the unix
// socket's path stays (the new process owns it), the UDP port is read by the new process.
func TestUpgradeHandsOverListeners(t *testing.T) {
	for _, tc := range []struct {
		name, trigger string
		ports         bool
		thread        bool // ModeThread (two worker loops, two reactors) instead of ModeBase in one process
	}{
		{name: "sighup", trigger: "sighup"},
		{name: "callback", trigger: "callback"},
		{name: "ports", trigger: "sighup", ports: true},
		{name: "thread-sighup", trigger: "sighup", thread: true},
		{name: "thread-callback", trigger: "callback", thread: true},
		{name: "thread-ports", trigger: "sighup", ports: true, thread: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trigger := tc.trigger
			var env []string
			if tc.thread {
				env = append(env, mpEnvMode+"=thread", mpEnvWorkers+"=2")
			}
			dir := ""
			if tc.ports {
				dir = t.TempDir()
				env = append(env, upEnvPorts+"="+dir)
			}
			ms := mpStartServer(t, "upgrade", "ready", env...)
			old := ms.cmd.Process.Pid
			if tc.ports {
				if got := upUnixPID(t, dir); got != old {
					t.Fatalf("the unix port answered by %d, want %d", got, old)
				}
				if got := upUDPPID(t, ms); got != old {
					t.Fatalf("the UDP port answered by %d, want %d", got, old)
				}
			}
			var long []*lineClient
			for range 3 {
				c := upDial(t, ms.Port)
				if got := upPID(c); got != old {
					t.Fatalf("answered by pid %d, want the server's %d", got, old)
				}
				long = append(long, c)
			}
			ch := startChurn(t, ms.Port)
			upWaitAnswers(t, ms, ch, old, 20)

			switch trigger {
			case "sighup":
				ms.signal(syscall.SIGHUP)
			case "callback":
				c := upDial(t, ms.Port)
				if got := c.do("upgrade"); got != "upgrade 0" {
					t.Fatalf("upgrade from a callback: %q, want \"upgrade 0\"\n%s", got, ms.output())
				}
				c.c.Close() // the old process drains until it is closed
			}
			ev := ms.waitEvent("upgrade", func(e mpEv) bool { return e.PID == old })
			if ev.int(0) != 0 {
				t.Fatalf("Upgrade: %v\n%s", ev.Fields, ms.output())
			}
			newPID := upNewPID(ms, old)
			oldSocks := ms.waitEvent("sockets", func(e mpEv) bool { return e.PID == old }).Fields
			newSocks := ms.waitEvent("sockets", func(e mpEv) bool { return e.PID == newPID }).Fields
			if strings.Join(oldSocks, " ") != strings.Join(newSocks, " ") || slices.Contains(oldSocks, "0") {
				t.Fatalf("the new process serves the sockets (inodes) %v, want the old process's %v", newSocks, oldSocks)
			}
			// A second upgrade of the process that handed over is refused (503).
			ms.signal(syscall.SIGHUP)
			ev = ms.waitEvent("upgrade", func(e mpEv) bool { return e.PID == old && e.int(0) != 0 })
			if ev.int(0) != swoole.ErrRefused {
				t.Errorf("a second Upgrade: %v, want code %d", ev.Fields, swoole.ErrRefused)
			}

			// New connections reach the new process; the old connections stay with the old.
			upWaitAnswers(t, ms, ch, newPID, 20)
			for i, c := range long {
				if got := upPID(c); got != old {
					t.Fatalf("long-lived connection %d answered by pid %d after the upgrade, want the old %d", i, got, old)
				}
			}
			for i, c := range long {
				select {
				case <-ms.exited:
					t.Fatalf("the old process exited with %d connection(s) open\n%s", len(long)-i, ms.output())
				default:
				}
				if got := upPID(c); got != old {
					t.Fatalf("long-lived connection %d answered by pid %d, want the old %d", i, got, old)
				}
				c.c.Close()
			}
			st := ms.wait(mpTimeout)
			if st.ExitCode() != 0 {
				t.Fatalf("the old process: %v, want exit status 0\n%s", st, ms.output())
			}
			if ms.count("shutdown", func(e mpEv) bool { return e.PID == old }) != 1 || ms.count("exit", func(e mpEv) bool { return e.PID == old }) != 1 {
				t.Errorf("the old process did not shut down as for Shutdown (OnShutdown, Start returning nil)\n%s", ms.output())
			}
			// The port is served on with the old process gone.
			upWaitAnswers(t, ms, ch, newPID, 20)
			ch.halt()
			if _, errs := ch.answers(old); len(errs) > 0 {
				t.Fatalf("%d churn connection(s) failed, first: %s\n%s", len(errs), errs[0], ms.output())
			}
			if c := upDial(t, ms.Port); upPID(c) != newPID {
				t.Fatalf("a connection after the old process exited is not answered by the new one (%d)", newPID)
			}
			if tc.ports {
				if got := upUnixPID(t, dir); got != newPID {
					t.Fatalf("the unix port (its path kept) answered by %d, want the new %d", got, newPID)
				}
				if got := upUDPPID(t, ms); got != newPID {
					t.Fatalf("the UDP port answered by %d, want the new %d", got, newPID)
				}
			}

			if err := unix.Kill(newPID, unix.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if !mpGoneWithin(newPID, mpTimeout) {
				t.Fatalf("the new process %d did not stop on SIGTERM\n%s", newPID, ms.output())
			}
			if ms.count("exit", func(e mpEv) bool { return e.PID == newPID }) != 1 {
				t.Errorf("the new process did not stop cleanly\n%s", ms.output())
			}
		})
	}
}

// TestUpgradeDrainBound: a connection that stays open is closed by the old process at
// max_wait_time (1 s here), which then exits 0.
func TestUpgradeDrainBound(t *testing.T) {
	ms := mpStartServer(t, "upgrade", "ready", upEnvWait+"=1000")
	old := ms.cmd.Process.Pid
	stubborn := upDial(t, ms.Port)
	if got := upPID(stubborn); got != old {
		t.Fatalf("answered by %d, want %d", got, old)
	}
	ms.signal(syscall.SIGHUP)
	if ev := ms.waitEvent("upgrade", func(e mpEv) bool { return e.PID == old }); ev.int(0) != 0 {
		t.Fatalf("Upgrade: %v\n%s", ev.Fields, ms.output())
	}
	newPID := upNewPID(ms, old)
	if got := upPID(stubborn); got != old {
		t.Fatalf("the open connection is answered by %d after the upgrade, want the old %d", got, old)
	}
	_ = stubborn.c.SetReadDeadline(time.Now().Add(mpTimeout))
	if n, err := stubborn.r.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("the connection left open: read %d bytes, %v; want EOF once max_wait_time passed", n, err)
	}
	if st := ms.wait(mpTimeout); st.ExitCode() != 0 {
		t.Fatalf("the old process: %v, want exit status 0\n%s", st, ms.output())
	}
	if !strings.Contains(ms.output(), "max_wait_time passed with connections still open") {
		t.Errorf("the old process did not log the connections it closed at max_wait_time\n%s", ms.output())
	}
	if c := upDial(t, ms.Port); upPID(c) != newPID {
		t.Fatalf("a new connection is not answered by the new process %d", newPID)
	}
	upStopNew(t, newPID)
}

// TestUpgradeKeepsTheAdminServer: the admin_server's listener is handed over too (the new
// process would not bind its port while the old one holds it): its requests reach the new
// process as soon as it serves, while the old one still drains.
func TestUpgradeKeepsTheAdminServer(t *testing.T) {
	port := adminFreePort(t)
	ms := mpStartServer(t, "upgrade", "ready", upEnvAdmin+"=127.0.0.1:"+strconv.Itoa(port))
	old := ms.cmd.Process.Pid
	a := newAdminClient(t, port, "")
	var pid struct {
		PID int `json:"pid"`
	}
	if a.ok("GET", "/api/getpid", nil, &pid); pid.PID != old {
		t.Fatalf("getpid: %d, want %d", pid.PID, old)
	}
	held := upDial(t, ms.Port) // keeps the old process draining
	if got := upPID(held); got != old {
		t.Fatalf("answered by %d, want %d", got, old)
	}
	ms.signal(syscall.SIGHUP)
	if ev := ms.waitEvent("upgrade", func(e mpEv) bool { return e.PID == old }); ev.int(0) != 0 {
		t.Fatalf("Upgrade with admin_server: %v\n%s", ev.Fields, ms.output())
	}
	newPID := upNewPID(ms, old)
	ms.eventually("the admin server answered by the new process", func() bool {
		status, r := a.api("GET", "/api/getpid", nil)
		return status == 200 && r.Code == 0 && json.Unmarshal(r.Data, &pid) == nil && pid.PID == newPID
	})
	if got := upPID(held); got != old {
		t.Fatalf("the open connection is answered by %d, want the old %d", got, old)
	}
	held.c.Close()
	upEnd(t, ms, newPID)
}

// TestUpgradeChildFails: a new process that exits (status 3) before it serves makes Upgrade
// fail with its exit status; the old process keeps serving every connection, and a later
// Upgrade succeeds.
func TestUpgradeChildFails(t *testing.T) {
	failFile := t.TempDir() + "/fail"
	ms := mpStartServer(t, "upgrade", "ready", upEnvFail+"="+failFile)
	old := ms.cmd.Process.Pid
	if err := os.WriteFile(failFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	long := upDial(t, ms.Port)
	if got := upPID(long); got != old {
		t.Fatalf("answered by %d, want %d", got, old)
	}
	ch := startChurn(t, ms.Port)
	ms.signal(syscall.SIGHUP)
	ev := ms.waitEvent("upgrade", func(e mpEv) bool { return e.PID == old })
	msg := strings.Join(ev.Fields[1:], " ")
	if ev.int(0) != swoole.ErrSystemCallFail || !strings.Contains(msg, "exit status 3") {
		t.Fatalf("Upgrade with a new process that exits 3: code %d %q, want %d naming \"exit status 3\"\n%s", ev.int(0), msg, swoole.ErrSystemCallFail, ms.output())
	}
	if ms.count("failing", nil) != 1 {
		t.Errorf("the new process did not run\n%s", ms.output())
	}
	upWaitAnswers(t, ms, ch, old, 20)
	if got := upPID(long); got != old {
		t.Fatalf("the open connection is answered by %d after the failed upgrade, want %d", got, old)
	}
	if c := upDial(t, ms.Port); upPID(c) != old {
		t.Fatal("a new connection is not answered by the old process after the failed upgrade")
	} else {
		c.c.Close()
	}

	// Fixed: the next upgrade works (from a callback this time).
	if err := os.Remove(failFile); err != nil {
		t.Fatal(err)
	}
	c := upDial(t, ms.Port)
	if got := c.do("upgrade"); got != "upgrade 0" {
		t.Fatalf("the second Upgrade: %q, want \"upgrade 0\"\n%s", got, ms.output())
	}
	c.c.Close() // the old process drains until it is closed
	newPID := upNewPID(ms, old)
	upWaitAnswers(t, ms, ch, newPID, 10)
	ch.halt()
	if _, errs := ch.answers(old); len(errs) > 0 {
		t.Fatalf("%d churn connection(s) failed, first: %s\n%s", len(errs), errs[0], ms.output())
	}
	long.c.Close()
	upEnd(t, ms, newPID)
}

// TestUpgradeRefusedWithWorkers: a server of several processes cannot hand over its
// listeners (507): it reloads instead. The server keeps serving.
func TestUpgradeRefusedWithWorkers(t *testing.T) {
	ms := mpStartServer(t, "upgrade", "ready", mpEnvWorkers+"=2")
	c := upDial(t, ms.Port)
	if got := c.do("upgrade"); got != "upgrade "+strconv.Itoa(swoole.ErrOperationNotSupport) {
		t.Fatalf("Upgrade in a worker: %q, want code %d", got, swoole.ErrOperationNotSupport)
	}
	ms.signal(syscall.SIGHUP) // the manager
	ev := ms.waitEvent("upgrade", func(e mpEv) bool { return e.PID == ms.cmd.Process.Pid })
	if ev.int(0) != swoole.ErrOperationNotSupport {
		t.Fatalf("Upgrade in the manager: %v, want code %d", ev.Fields, swoole.ErrOperationNotSupport)
	}
	if upPID(c) == 0 {
		t.Fatal("the server stopped answering")
	}
}

// TestUpgradeRefusedWhenNotRunning: before Start and after Shutdown, Upgrade is refused (503).
func TestUpgradeRefusedWhenNotRunning(t *testing.T) {
	s := newEcho(t, nil)
	wantCode(t, s, "Upgrade before Start", s.Upgrade(), swoole.ErrRefused)
	r := start(t, s)
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := r.wait(startTimeout); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s, "Upgrade after Shutdown", s.Upgrade(), swoole.ErrRefused)
}
