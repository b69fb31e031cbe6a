package swoole_test

// Large output in ModeProcess (and, where Swoole's test picks a random mode, ModeBase with
// one worker): megabytes sent from OnReceive, OnConnect, a task worker and a user process
// reach the clients whole, with a Close right behind them, to a client that reads slowly,
// or to a client that goes away while it is paused. Swoole's close_queued, close_force,
// client_close_in_writable_event, send_2m_in_task_worker, send_2m_in_user_process and
// slow_client.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// Environment of boServer.
const (
	boEnvCase      = "GOSWOOLE_TEST_BO_CASE"      // the scenario (see boServer)
	boEnvHeartbeat = "GOSWOOLE_TEST_BO_HEARTBEAT" // "1": heartbeat_check_interval 1 s, heartbeat_idle_time 2 s
)

func init() { mpMoreServers["bigout"] = boServer }

// boFrame is an 'N' length frame: the 4-byte big-endian length of body, then body.
func boFrame(body []byte) []byte {
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(body)), uint32(len(body)))
	return append(b, body...)
}

// boServer is a server in the mode mpMode says, with mpEnvWorkers workers (default 1) and
// mpEnvReactors reactors. Events: "ready <port>" (OnStart), "connect <fd>", "close <fd>",
// "sent <codes of the Sends>". boEnvCase:
//
//	close    OnReceive sends 2 MiB of 'A' and "\r\n", then closes the connection
//	         (kernel_socket_send_buffer_size 128 KiB, buffer_output_size 4 MiB)
//	pause    OnReceive pauses the connection and sends 8 times 2 MiB of 'A' and "\r\n"
//	task     2 workers, 2 task workers, 'N' frames: each frame received becomes a task,
//	         whose OnTask sends a 2 MiB frame ending in the last 8 bytes of the request
//	uproc    the same, the frame sent by a user process the worker writes to
//	slow     kernel_socket_send_buffer_size 64 KiB; OnConnect sends 1 MiB of 'A'
func boServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	c := os.Getenv(boEnvCase)
	set := swoole.Settings{
		WorkerNum: envInt(mpEnvWorkers, 1), ReactorNum: envInt(mpEnvReactors, 0),
		LogLevel: swoole.LogLevelError, MaxConnection: 1024, MaxWaitTime: 3 * time.Second,
	}
	framed := func() {
		set.OpenLengthCheck, set.PackageLengthType, set.PackageBodyOffset = true, "N", 4
		set.PackageMaxLength = 4 << 20
	}
	switch c {
	case "close", "pause":
		set.KernelSocketSendBufferSize, set.BufferOutputSize = 128<<10, 4<<20
	case "task":
		framed()
		set.WorkerNum, set.TaskWorkerNum = 2, 2
	case "uproc":
		framed()
		set.WorkerNum = 2
	case "slow":
		set.KernelSocketSendBufferSize = 64 << 10
	}
	if os.Getenv(boEnvHeartbeat) == "1" {
		set.HeartbeatCheckInterval, set.HeartbeatIdleTime = time.Second, 2*time.Second
	}
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	// reply2m is the 2 MiB frame that answers the request req.
	reply2m := func(req []byte) []byte {
		body := bytes.Repeat([]byte{'A'}, 2<<20-4)
		copy(body[len(body)-8:], req[len(req)-8:])
		return boFrame(body)
	}
	var proc *swoole.Process
	if c == "uproc" {
		proc = swoole.NewProcess(func(p *swoole.Process) {
			sock := p.ExportSocket()
			buf := make([]byte, 64<<10)
			for {
				n, err := sock.Read(buf)
				if err != nil {
					return
				}
				fd, req, _ := strings.Cut(string(buf[:n]), " ")
				id, _ := strconv.ParseInt(fd, 10, 64)
				if err := s.Send(id, reply2m([]byte(req))); err != nil {
					mpEvent("sent", mpCode(err))
				}
			}
		})
		if _, err := s.AddProcess(proc); err != nil {
			fmt.Fprintln(os.Stderr, "AddProcess:", err)
			return 2
		}
	}
	s.OnStart(func(*swoole.Server) { mpEvent("ready", port) })
	s.OnWorkerStart(func(s *swoole.Server, id int) { mpEvent("workerstart", id) })
	s.OnConnect(func(s *swoole.Server, fd int64, _ int) {
		mpEvent("connect", fd)
		switch c {
		case "slow":
			mpEvent("sent", fd, mpCode(s.Send(fd, bytes.Repeat([]byte{'A'}, 1<<20))))
		}
	})
	s.OnClose(func(_ *swoole.Server, fd int64, _ int) { mpEvent("close", fd) })
	s.OnTask(func(s *swoole.Server, _ int, _ int, data []byte) any {
		fd, req, _ := strings.Cut(string(data), " ")
		id, _ := strconv.ParseInt(fd, 10, 64)
		if err := s.Send(id, reply2m([]byte(req))); err != nil {
			mpEvent("sent", mpCode(err))
		}
		return nil
	})
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		switch c {
		case "close":
			send := mpCode(s.Send(fd, append(bytes.Repeat([]byte{'A'}, 2<<20), "\r\n"...)))
			mpEvent("sent", fd, send, mpCode(s.Close(fd, false)))
		case "pause":
			var codes []int
			codes = append(codes, mpCode(s.Pause(fd)))
			for range 8 {
				codes = append(codes, mpCode(s.Send(fd, append(bytes.Repeat([]byte{'A'}, 2<<20), "\r\n"...))))
			}
			mpEvent("sent", fd, codes)
		case "task":
			if _, err := s.Task(strconv.FormatInt(fd, 10)+" "+string(data), -1); err != nil {
				mpEvent("sent", "task", mpCode(err))
			}
		case "uproc":
			if _, err := proc.ExportSocket().Write([]byte(strconv.FormatInt(fd, 10) + " " + string(data))); err != nil {
				mpEvent("sent", "uproc", err)
			}
		}
	})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// boDial connects to the server with SO_RCVBUF rcvbuf (0: the kernel's).
func boDial(t *testing.T, ms *mpServer, rcvbuf int) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: mpTimeout, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if rcvbuf > 0 {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			}
		})
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", "127.0.0.1:"+strconv.Itoa(ms.Port))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// boReadFrame reads one 'N' frame and returns its body.
func boReadFrame(c net.Conn) ([]byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(mpTimeout))
	var h [4]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(h[:]))
	_, err := io.ReadFull(c, body)
	return body, err
}

// TestSendThenCloseFlushes: close_queued and close_force, in ModeProcess and ModeBase (one
// worker), without and with a heartbeat (idle time 2 s) that passes while the client does
// not read: a Send of 2 MiB + "\r\n" and a Close right behind it in OnReceive; the client,
// which reads only later, gets every byte and then EOF.
func TestSendThenCloseFlushes(t *testing.T) {
	for _, mode := range []string{"process", "base"} {
		for _, hb := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/heartbeat=%v", mode, hb), func(t *testing.T) {
				env := []string{mpEnvMode + "=" + mode, boEnvCase + "=close"}
				if hb {
					env = append(env, boEnvHeartbeat+"=1")
				}
				ms := mpStartServer(t, "bigout", "ready", env...)
				c := boDial(t, ms, 128<<10)
				if _, err := c.Write([]byte("close")); err != nil {
					t.Fatal(err)
				}
				e := ms.waitEvent("sent", nil)
				if e.Fields[1] != "0" || e.Fields[2] != "0" {
					t.Fatalf("Send, Close: codes %s, %s; want 0, 0", e.Fields[1], e.Fields[2])
				}
				if hb {
					// The scenario: the client reads nothing past the heartbeat's idle time.
					time.Sleep(2500 * time.Millisecond)
				}
				_ = c.SetReadDeadline(time.Now().Add(mpTimeout))
				got, err := io.ReadAll(c)
				if err != nil || len(got) != 2<<20+2 || !bytes.HasSuffix(got, []byte("\r\n")) {
					t.Fatalf("the client read %d bytes, then %v; want %d bytes ending in \\r\\n, then EOF", len(got), err, 2<<20+2)
				}
			})
		}
	}
}

// TestPausedConnectionClosedByClient is client_close_in_writable_event: ModeProcess, one
// worker. OnReceive pauses the connection and queues 8 × 2 MiB for it; the client, which
// reads nothing, closes: OnClose runs once.
func TestPausedConnectionClosedByClient(t *testing.T) {
	ms := mpStartServer(t, "bigout", "ready", mpEnvMode+"=process", boEnvCase+"=pause")
	c := boDial(t, ms, 128<<10)
	if _, err := c.Write([]byte("begin")); err != nil {
		t.Fatal(err)
	}
	e := ms.waitEvent("sent", nil)
	fd := e.Fields[0]
	if !strings.HasPrefix(strings.Join(e.Fields[1:], " "), "[0 0") {
		t.Errorf("Pause, then the first Send: codes %v; want 0, 0", e.Fields[1:])
	}
	c.Close()
	ms.waitEvent("close", func(ev mpEv) bool { return ev.Fields[0] == fd })
	// A request on a new connection is served after the close: a second OnClose would
	// have come before it.
	c2 := boDial(t, ms, 0)
	if _, err := c2.Write([]byte("begin")); err != nil {
		t.Fatal(err)
	}
	ms.waitEvent("sent", func(ev mpEv) bool { return ev.Fields[0] != fd })
	if n := ms.count("close", func(ev mpEv) bool { return ev.Fields[0] == fd }); n != 1 {
		t.Errorf("OnClose ran %d times for the closed connection, want once", n)
	}
	if n := ms.count("connect", func(ev mpEv) bool { return ev.Fields[0] == fd }); n != 1 {
		t.Errorf("OnConnect ran %d times for the connection, want once", n)
	}
}

// boRequests runs, on conns connections at once, reqs requests each: a frame of 1,000 'A'
// and an 8-digit id, answered by a 2 MiB frame that ends in the id.
func boRequests(t *testing.T, ms *mpServer, conns, reqs int) {
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		c := boDial(t, ms, 0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range reqs {
				sid := strconv.Itoa(10000000 + rand.IntN(90000000))
				_ = c.SetWriteDeadline(time.Now().Add(mpTimeout))
				if _, err := c.Write(boFrame(append(bytes.Repeat([]byte{'A'}, 1000), sid...))); err != nil {
					errs <- fmt.Errorf("connection %d, request %d: %v", i, r, err)
					return
				}
				body, err := boReadFrame(c)
				if err != nil || len(body)+4 != 2<<20 || string(body[len(body)-8:]) != sid {
					errs <- fmt.Errorf("connection %d, request %d: %d bytes, %v; want %d ending in %s", i, r, len(body)+4, err, 2<<20, sid)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := ms.count("sent", nil); n != 0 {
		t.Errorf("%d Sends failed\n%s", n, ms.output())
	}
}

// TestSend2MiBFromTaskWorkerModeProcess is send_2m_in_task_worker: in ModeProcess (2
// workers, 2 task workers), each request becomes a task whose OnTask sends a 2 MiB frame to
// the connection; 8 clients × 12 requests all get their answer. (Swoole's lowest pressure
// level: MAX_CONCURRENCY_MID 8, MAX_REQUESTS 12.)
func TestSend2MiBFromTaskWorkerModeProcess(t *testing.T) {
	ms := mpStartServer(t, "bigout", "ready", mpEnvMode+"=process", boEnvCase+"=task", mpEnvWorkers+"=2")
	boRequests(t, ms, 8, 12)
}

// TestSend2MiBFromUserProcessModeProcess is send_2m_in_user_process: the same, each frame
// sent by a user process the worker passes the request to.
func TestSend2MiBFromUserProcessModeProcess(t *testing.T) {
	ms := mpStartServer(t, "bigout", "ready", mpEnvMode+"=process", boEnvCase+"=uproc", mpEnvWorkers+"=2")
	boRequests(t, ms, 8, 12)
}

// TestSlowClientModeProcess is slow_client: ModeProcess, one worker, SO_SNDBUF 64 KiB: 1 MiB
// sent in OnConnect reaches a client that reads 8 to 64 KiB at a time, every 10 ms, with
// SO_RCVBUF 64 KiB.
func TestSlowClientModeProcess(t *testing.T) {
	ms := mpStartServer(t, "bigout", "ready", mpEnvMode+"=process", boEnvCase+"=slow")
	c := boDial(t, ms, 64<<10)
	const n = 1 << 20
	got := 0
	buf := make([]byte, 64<<10)
	for got < n {
		_ = c.SetReadDeadline(time.Now().Add(mpTimeout))
		k, err := c.Read(buf[:8<<10+rand.IntN(56<<10+1)])
		if bytes.Count(buf[:k], []byte{'A'}) != k {
			t.Fatalf("bytes other than 'A' after %d", got)
		}
		got += k
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		time.Sleep(10 * time.Millisecond) // the slow reader of the scenario
	}
	if got != n {
		t.Fatalf("the client got %d bytes, want %d", got, n)
	}
	if e := ms.waitEvent("sent", nil); e.Fields[1] != "0" {
		t.Errorf("Send in OnConnect: code %s", e.Fields[1])
	}
}
