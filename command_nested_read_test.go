package swoole_test

// A Command that waits inside a read of the worker's pipe (OnPipeMessage; OnReceive in
// ModeProcess, whose events come through the pipe) while large messages, each several
// datagrams long, keep arriving on that pipe: none of them is lost.
//
// The server (builder "cmdpipe", worker_num 2, ModeBase or ModeProcess by mpEnvMode):
//
//	OnPipeMessage   Command("ping") to the manager, then logs "pipegot <len> <intact> <code>"
//	OnReceive       "blast <n> <size>": n SendMessage of size bytes (message i is size times
//	                the byte 'a'+i%26) to the other worker: "blasted <failures>"; any other
//	                frame: Command("ping") to the manager, then "frame <len> <intact> <code>"

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

func init() { mpMoreServers["cmdpipe"] = cmdPipeServer }

// cmdIntact reports whether a message is one byte repeated (its content as sent).
func cmdIntact(b []byte) bool {
	return len(b) > 0 && bytes.Count(b, b[:1]) == len(b)
}

func cmdPipeServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	if err := s.Set(swoole.Settings{
		WorkerNum:        2,
		LogLevel:         swoole.LogLevelWarning,
		OpenEOFSplit:     true,
		PackageEOF:       "\n",
		PackageMaxLength: 4 << 20,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	_ = s.AddCommand("ping", swoole.CommandManager, func(*swoole.Server, []byte) []byte { return []byte("pong") })
	ping := func(s *swoole.Server) int {
		res, err := s.Command("ping", 0, swoole.CommandManager, "x")
		if err == nil && string(res) != "pong" {
			return -2
		}
		return mpCode(err)
	}
	s.OnManagerStart(func(*swoole.Server) { mpEvent("managerstart", port) })
	s.OnWorkerStart(func(s *swoole.Server, id int) { mpEvent("workerstart", id) })
	s.OnPipeMessage(func(s *swoole.Server, _ int, data []byte) {
		n, intact := len(data), cmdIntact(data)
		code := ping(s)
		// The message is still intact after the wait (the Reader's buffers were not reused).
		mpEvent("pipegot", n, intact && cmdIntact(data) && len(data) == n, code)
	})
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		data = bytes.TrimSuffix(data, []byte("\n"))
		if rest, ok := strings.CutPrefix(string(data), "blast "); ok {
			a, b, _ := strings.Cut(rest, " ")
			n, size := atoi(a), atoi(b)
			failed := 0
			for i := range n {
				if s.SendMessage(bytes.Repeat([]byte{byte('a' + i%26)}, size), 1-s.GetWorkerID()) != nil {
					failed++
				}
			}
			_ = s.Send(fd, []byte(fmt.Sprintf("blasted %d\n", failed)))
			return
		}
		n, intact := len(data), cmdIntact(data)
		code := ping(s)
		_ = s.Send(fd, []byte(fmt.Sprintf("frame %d %v %d\n", n, intact && cmdIntact(data) && len(data) == n, code)))
	})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// TestCommandInPipeMessageLosesNoMessage: 30 messages of 200 KB (chunked) to a worker whose
// OnPipeMessage waits for a Command to the manager each time: all 30 arrive, intact, and
// every Command gets its reply.
func TestCommandInPipeMessageLosesNoMessage(t *testing.T) {
	const n, size = 30, 200_000
	for _, mode := range []string{"base", "process"} {
		t.Run(mode, func(t *testing.T) {
			env := []string{mpEnvWorkers + "=2"}
			if mode == "process" {
				env = append(env, mpEnvMode+"=process")
			}
			ms := mpStartServer(t, "cmdpipe", "managerstart", env...)
			ms.eventually("both workers", func() bool { return ms.count("workerstart", nil) >= 2 })
			c := ms.dial()
			wantFields(t, c.do(fmt.Sprintf("blast %d %d", n, size)), "blasted", "0")
			deadline := time.Now().Add(mpTimeout)
			for ms.count("pipegot", nil) < n && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			good := ms.count("pipegot", func(e mpEv) bool {
				return e.int(0) == size && e.Fields[1] == "true" && e.Fields[2] == "0"
			})
			if got := ms.count("pipegot", nil); got != n || good != n {
				t.Fatalf("%d of %d messages arrived, %d of them intact with a Command reply", got, n, good)
			}
		})
	}
}

// TestCommandInProcessModeReceiveLosesNoFrame: ModeProcess, where OnReceive runs inside a
// read of the worker's pipe: 30 frames of 200 KB sent at once, each OnReceive waiting for a
// Command to the manager: every frame is answered, intact.
func TestCommandInProcessModeReceiveLosesNoFrame(t *testing.T) {
	const n, size = 30, 200_000
	ms := mpStartServer(t, "cmdpipe", "managerstart", mpEnvWorkers+"=2", mpEnvMode+"=process")
	c := ms.dial()
	var all []byte
	for i := range n {
		all = append(all, bytes.Repeat([]byte{byte('a' + i%26)}, size)...)
		all = append(all, '\n')
	}
	go func() { _, _ = c.c.Write(all) }() // the replies are read meanwhile
	for i := range n {
		l, err := c.readLine()
		if err != nil {
			t.Fatalf("frame %d of %d: no reply: %v", i, n, err)
		}
		if l != fmt.Sprintf("frame %d true 0", size) {
			t.Fatalf("frame %d: reply %q", i, l)
		}
	}
}
