package swoole_test

// Data for a closed session, in ModeProcess: what the master had already passed to a
// worker for a connection that was then closed is dropped, not delivered to OnReceive
// (Swoole's Worker_discard_data, error 1007). Swoole's close_in_connect_callback.phpt (a
// Close in OnConnect while the client's first bytes are on their way) and
// discard_timeout_packet.phpt (dispatch_mode 3 with discard_timeout_request: data of
// connections the clients closed while the only worker was busy).

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// cdEnvDiscard selects the discard_timeout_request server of cdServer.
const cdEnvDiscard = "GOSWOOLE_TEST_CD_DISCARD"

func init() { mpMoreServers["closeddata"] = cdServer }

// cdServer is a ModeProcess server. Events: "ready <port>" (OnManagerStart), "receive <fd>
// <data>", "close <fd>".
//
// Default: 2 workers, no framing; OnConnect waits (10 s at most) until the connection's
// first bytes were passed to the worker (recv_queued_bytes > 0), then closes it and logs
// "connect <fd> <queued bytes> <Close's error code>".
//
// With cdEnvDiscard=1: 1 worker, dispatch_mode 3, discard_timeout_request, frames split on
// "\r\n"; OnWorkerStart holds the worker until the file <dir>/gate exists and two
// connections have been closed (close_count 2: their data waits in the worker's pipe), then
// logs "released". OnReceive answers "hello <data>\r\n".
func cdServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeProcess, swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	discard := os.Getenv(cdEnvDiscard) == "1"
	set := swoole.Settings{WorkerNum: 2, LogLevel: swoole.LogLevelWarning, MaxConnection: 1024, MaxWaitTime: 3 * time.Second}
	if discard {
		set.WorkerNum, set.DispatchMode, set.DiscardTimeoutRequest = 1, 3, true
		set.OpenEOFSplit, set.PackageEOF = true, "\r\n"
	}
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	s.OnManagerStart(func(*swoole.Server) { mpEvent("ready", port) })
	s.OnWorkerStart(func(s *swoole.Server, id int) {
		if !discard {
			return
		}
		deadline := time.Now().Add(mpTimeout)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(os.Getenv(mpEnvDir) + "/gate"); err == nil && s.Stats().CloseCount >= 2 {
				mpEvent("released")
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		mpEvent("released-timeout")
	})
	if !discard {
		s.OnConnect(func(s *swoole.Server, fd int64, _ int) {
			queued := 0
			for deadline := time.Now().Add(mpTimeout); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
				if info, err := s.GetClientInfo(fd, -1, true); err == nil && info.RecvQueuedBytes > 0 {
					queued = info.RecvQueuedBytes
					break
				}
			}
			mpEvent("connect", fd, queued, mpCode(s.Close(fd, false)))
		})
		s.OnClose(func(_ *swoole.Server, fd int64, _ int) { mpEvent("close", fd) })
	}
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		mpEvent("receive", fd, strconv.Quote(string(data)))
		if discard {
			_ = s.Send(fd, []byte("hello "+string(data)+"\r\n"))
		}
	})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// TestCloseInOnConnectDropsPendingData: in ModeProcess, a Close inside OnConnect, made
// once the client's first bytes were passed to the worker, succeeds; the client reads EOF;
// OnClose runs once; and the bytes are not delivered to OnReceive (Swoole discards data of
// a closed session).
func TestCloseInOnConnectDropsPendingData(t *testing.T) {
	ms := mpStartServer(t, "closeddata", "ready")
	for i := range 3 {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(ms.Port), mpTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("close")); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(mpTimeout))
		b, err := io.ReadAll(c)
		c.Close()
		if len(b) != 0 || err != nil {
			t.Fatalf("connection %d: the client read %q, %v: want EOF and nothing", i, b, err)
		}
		var e mpEv
		ms.eventually("OnConnect of connection "+strconv.Itoa(i), func() bool {
			n := 0
			for _, ev := range ms.events() {
				if ev.Name == "connect" {
					if n == i {
						e = ev
						return true
					}
					n++
				}
			}
			return false
		})
		fd := e.Fields[0]
		if e.Fields[1] == "0" {
			t.Fatalf("connection %d: OnConnect saw no queued bytes within %v", i, mpTimeout)
		}
		if e.Fields[2] != "0" {
			t.Fatalf("connection %d: Close in OnConnect: code %s, want 0", i, e.Fields[2])
		}
		ms.waitEvent("close", func(ev mpEv) bool { return ev.Fields[0] == fd })
		if n := ms.count("close", func(ev mpEv) bool { return ev.Fields[0] == fd }); n != 1 {
			t.Errorf("connection %d: OnClose ran %d times, want once", i, n)
		}
		// The worker handles its events in order: the data was in its pipe before the close.
		if n := ms.count("receive", func(ev mpEv) bool { return ev.Fields[0] == fd }); n != 0 {
			t.Errorf("connection %d: OnReceive ran %d times for a session closed in OnConnect, want 0 (the data is dropped)\n%s", i, n, ms.output())
		}
	}
}

// TestDiscardTimeoutRequest: ModeProcess, dispatch_mode 3, discard_timeout_request. Two
// clients each send four frames and close while the only worker is held in OnWorkerStart:
// once it is free, none of the eight frames reaches OnReceive (their sessions are gone),
// and a new connection is answered.
func TestDiscardTimeoutRequest(t *testing.T) {
	ms := mpStartServer(t, "closeddata", "ready", cdEnvDiscard+"=1")
	for range 2 {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(ms.Port), mpTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("Swoole\r\nhello world\r\nphp\r\njava\r\n")); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if err := os.WriteFile(ms.dir+"/gate", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ms.waitEvent("released", nil)
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(ms.Port), mpTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(mpTimeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "hello ping\r\n" {
		t.Fatalf("a new connection got %q, %v; want \"hello ping\\r\\n\"", line, err)
	}
	for _, e := range ms.events() {
		if e.Name == "receive" && !strings.Contains(e.Fields[1], "ping") {
			t.Errorf("OnReceive got %s of a closed session %s: want it dropped", e.Fields[1], e.Fields[0])
		}
	}
}

// TestCloseInTaskWorkerModeProcess is close_in_task_worker: in ModeProcess, a task worker's
// Close of the connection whose worker sent the task succeeds, the client reads EOF, and
// OnClose runs once, in the worker that received the connection's data.
func TestCloseInTaskWorkerModeProcess(t *testing.T) {
	ms := mpStartServer(t, "procports", "managerstart")
	c := ms.dial()
	id, _, fd := c.who()
	if f := c.do("taskclose " + strconv.FormatInt(fd, 10)); len(f) != 2 || f[1] != "0" {
		t.Fatalf("taskclose: %q", f)
	}
	if l, err := c.readLine(); err == nil {
		t.Fatalf("read %q: want EOF once the task worker closed the connection", l)
	}
	if e := ms.waitEvent("taskqueued", nil); e.Fields[0] != "0" {
		t.Errorf("Task: code %s, want 0", e.Fields[0])
	}
	if e := ms.waitEvent("taskclose", nil); e.Fields[0] != "0" {
		t.Errorf("Close in the task worker: code %s, want 0", e.Fields[0])
	}
	sfd := strconv.FormatInt(fd, 10)
	e := ms.waitEvent("close", func(ev mpEv) bool { return ev.Fields[1] == sfd })
	if e.int(0) != id {
		t.Errorf("OnClose ran in worker %d, want worker %d (the one that received the data)", e.int(0), id)
	}
	if n := ms.count("close", func(ev mpEv) bool { return ev.Fields[1] == sfd }); n != 1 {
		t.Errorf("OnClose ran %d times, want once", n)
	}
}
