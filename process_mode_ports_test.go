package swoole_test

// ModeProcess odds and ends from Swoole's phpts: Close inside OnConnect
// (close_in_connect_callback.phpt), a unix datagram port (unsock_dgram.phpt), and session ids
// far from 1 (big_session_id.phpt).

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

func init() { mpMoreServers["procports"] = procPortsServer }

// procPortsServer is a ModeProcess server with 2 workers and 1 task worker and three ports:
// the primary TCP port (lines: "who", "close <fd>" → "closed <code>", "taskclose <fd>" →
// "taskclose 0", then a task closes fd, logging "taskqueued <Task's code>" and "taskclose
// <Close's code>"), a TCP port whose OnConnect closes every connection at once
// ("connect2 <fd>"), and a unix datagram port (<dir>/dgram.sock) that answers each datagram
// with "w<worker id> <data>" by SendToSocket. OnClose logs "close <worker id> <fd> <reactor>".
// start_session_id comes from GOSWOOLE_TEST_START_SESSION (default 0).
func procPortsServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeProcess, swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	start, _ := strconv.ParseInt(os.Getenv("GOSWOOLE_TEST_START_SESSION"), 10, 64)
	set := swoole.Settings{
		WorkerNum: 2, TaskWorkerNum: 1, LogLevel: swoole.LogLevelWarning, MaxConnection: 1024,
		OpenEOFSplit: true, PackageEOF: "\n", MaxWaitTime: 3 * time.Second, StartSessionID: start,
	}
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	closer, err := s.AddListener("127.0.0.1", 0, swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "AddListener:", err)
		return 2
	}
	dgram, err := s.AddListener(filepath.Join(os.Getenv(mpEnvDir), "dgram.sock"), 0, swoole.SockUnixDgram)
	if err != nil {
		fmt.Fprintln(os.Stderr, "AddListener:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	s.OnManagerStart(func(s *swoole.Server) { mpEvent("managerstart", port, closer.Port()) })
	s.OnWorkerStart(func(s *swoole.Server, id int) { mpEvent("workerstart", id) })
	closer.OnConnect(func(s *swoole.Server, fd int64, _ int) {
		mpEvent("connect2", fd, mpCode(s.Close(fd, false)))
	})
	closer.OnReceive(func(*swoole.Server, int64, int, []byte) { mpEvent("receive2") })
	s.OnClose(func(s *swoole.Server, fd int64, rid int) { mpEvent("close", s.GetWorkerID(), fd, rid) })
	dgram.OnPacket(func(s *swoole.Server, data []byte, client swoole.ClientAddr) {
		reply := fmt.Sprintf("w%d %s", s.GetWorkerID(), data)
		if err := s.SendToSocket(client.Address, []byte(reply), client.ServerSocket); err != nil {
			mpEvent("sendtosocket", mpCode(err))
		}
	})
	s.OnTask(func(s *swoole.Server, _ int, _ int, data []byte) any {
		if fd, ok := strings.CutPrefix(string(data), "close "); ok {
			id, _ := strconv.ParseInt(fd, 10, 64)
			mpEvent("taskclose", mpCode(s.Close(id, false)))
		}
		return nil
	})
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		cmd, arg, _ := strings.Cut(strings.TrimSuffix(string(data), "\n"), " ")
		reply := func(format string, args ...any) { _ = s.Send(fd, []byte(fmt.Sprintf(format, args...)+"\n")) }
		switch cmd {
		case "who":
			reply("who %d %d %d", s.GetWorkerID(), os.Getpid(), fd)
		case "taskclose":
			// The reply goes first: a reply sent after the Task races the task worker's
			// Close (the connection may be gone before the reply reaches the master, in
			// Swoole too). A worker's held replies leave before its task (flushBeforeHandoff).
			reply("taskclose 0")
			_, err := s.Task("close "+arg, -1)
			mpEvent("taskqueued", mpCode(err))
		case "close":
			id, _ := strconv.ParseInt(arg, 10, 64)
			reply("closed %d", mpCode(s.Close(id, false)))
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

// TestProcessModeCloseInOnConnect: in ModeProcess, Close inside OnConnect (in a worker)
// succeeds, the client reads EOF, and OnClose runs once.
func TestProcessModeCloseInOnConnect(t *testing.T) {
	ms := mpStartServer(t, "procports", "managerstart")
	port2 := ms.waitEvent("managerstart", nil).int(1)
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port2), mpTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("close\n"))
	_ = c.SetReadDeadline(time.Now().Add(mpTimeout))
	if b, err := io.ReadAll(c); len(b) != 0 || err != nil {
		t.Fatalf("the client read %q, %v: want EOF and nothing", b, err)
	}
	e := ms.waitEvent("connect2", nil)
	if e.Fields[1] != "0" {
		t.Fatalf("Close in OnConnect: code %s", e.Fields[1])
	}
	ms.waitEvent("close", func(ev mpEv) bool { return ev.Fields[1] == e.Fields[0] })
	if n := ms.count("close", func(ev mpEv) bool { return ev.Fields[1] == e.Fields[0] }); n != 1 {
		t.Errorf("OnClose ran %d times", n)
	}
	// (The data that came with the connection is dropped: TestCloseInOnConnectDropsPendingData.)
}

// TestProcessModeUnixDgram: a unix datagram port of a ModeProcess server: each datagram
// reaches a worker's OnPacket, whose SendToSocket reply reaches the client.
func TestProcessModeUnixDgram(t *testing.T) {
	ms := mpStartServer(t, "procports", "managerstart")
	path := filepath.Join(ms.dir, "dgram.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(ms.dir, "client.sock"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 256)
	for i := range 4 {
		msg := "SUCCESS-" + strconv.Itoa(i)
		if _, err := c.WriteTo([]byte(msg), &net.UnixAddr{Name: path, Net: "unixgram"}); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(mpTimeout))
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if f := strings.Fields(string(buf[:n])); len(f) != 2 || (f[0] != "w0" && f[0] != "w1") || f[1] != msg {
			t.Fatalf("reply %q", buf[:n])
		}
	}
}

// TestProcessModeBigSessionIDs: with start_session_id 2^31 and 2^40 the session ids are
// start+1, start+2, ... and Send, Close and OnClose work with them in ModeProcess.
func TestProcessModeBigSessionIDs(t *testing.T) {
	for _, start := range []int64{1 << 31, 1 << 40} {
		t.Run(strconv.FormatInt(start, 10), func(t *testing.T) {
			ms := mpStartServer(t, "procports", "managerstart", "GOSWOOLE_TEST_START_SESSION="+strconv.FormatInt(start, 10))
			var fds []int64
			var cs []*mpClient
			for range 3 {
				c := ms.dial()
				_, _, fd := c.who()
				fds = append(fds, fd)
				cs = append(cs, c)
			}
			for i, fd := range fds {
				if fd != start+1+int64(i) {
					t.Fatalf("session ids %v, want %d, %d, %d", fds, start+1, start+2, start+3)
				}
			}
			wantFields(t, cs[0].do("close "+strconv.FormatInt(fds[2], 10)), "closed", "0")
			ms.waitEvent("close", func(e mpEv) bool { return e.Fields[1] == strconv.FormatInt(fds[2], 10) })
			if l, err := cs[2].readLine(); err == nil {
				t.Fatalf("the closed connection read %q", l)
			}
		})
	}
}
