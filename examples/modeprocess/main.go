// Modeprocess is a session server in ModeProcess: a master process holds every connection,
// worker processes run the callbacks, and a reload (or a new binary) replaces the workers
// without closing a single connection.
//
// Run it from the repository root:
//
//	go run ./examples/modeprocess              # 127.0.0.1:9503, 2 workers, dispatch_mode 5
//
// connect (nc 127.0.0.1 9503) and type:
//
//	login 42        binds the connection to uid 42: from now on its lines go to worker 42 % 2
//	anything        answered by the worker that got it: "[worker 0 pid 1234 build b1] anything"
//
// then, with the master's pid (printed at start):
//
//	kill -USR1 <master>     # reload: new workers; every nc stays connected, the pids change
//	kill -9 <a worker pid>  # the master reports it and starts another; no connection drops
//	kill <master>           # graceful shutdown
//
// To see a binary upgrade, build it (go build -o /tmp/mp ./examples/modeprocess), start
// /tmp/mp, change build below, build again to /tmp/mp.new, mv /tmp/mp.new /tmp/mp and send
// SIGUSR1: the open connections are answered by the new code.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/goswoole/swoole"
)

// build is what the answers carry: change it to see an upgrade happen.
const build = "b1"

func main() {
	port := flag.Int("port", 9503, "port to listen on (0: any free port)")
	workers := flag.Int("workers", 2, "worker processes")
	flag.Parse()

	s, err := swoole.NewServer("127.0.0.1", *port, swoole.ModeProcess, swoole.SockTCP)
	if err != nil {
		slog.Error("listen", "err", err)
		os.Exit(1)
	}
	err = s.Set(swoole.Settings{
		WorkerNum:    *workers,
		DispatchMode: swoole.DispatchUIDMod, // a logged-in user always reaches the same worker
		OpenEOFSplit: true,
		PackageEOF:   "\n",
	})
	if err != nil {
		slog.Error("settings", "err", err)
		os.Exit(2)
	}
	s.OnStart(func(s *swoole.Server) {
		fmt.Printf("listening on 127.0.0.1:%d: master %d, %d workers\n", s.Ports()[0].Port(), s.GetMasterPID(), s.Setting().WorkerNum)
	})
	s.OnWorkerStart(func(s *swoole.Server, id int) { fmt.Printf("worker %d: pid %d, build %s\n", id, os.Getpid(), build) })
	s.OnWorkerError(func(s *swoole.Server, id, pid, code, sig int) {
		fmt.Printf("worker %d (pid %d) died: exit code %d, signal %d; restarting it\n", id, pid, code, sig)
	})
	// dispatch_mode 5 keeps a connection on one worker, so OnConnect and OnClose are
	// delivered, in order, on that worker.
	s.OnConnect(func(s *swoole.Server, fd int64, _ int) {
		_ = s.Send(fd, []byte("hello: type 'login <uid>', then anything\n"))
	})
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		line := strings.TrimSpace(string(data))
		if uid, ok := strings.CutPrefix(line, "login "); ok {
			n, err := strconv.ParseUint(uid, 10, 32)
			if err == nil {
				err = s.Bind(fd, uint32(n))
			}
			_ = s.Send(fd, fmt.Appendf(nil, "login %s: %v\n", uid, errText(err)))
			return
		}
		_ = s.Send(fd, fmt.Appendf(nil, "[worker %d pid %d build %s] %s\n", s.GetWorkerID(), os.Getpid(), build, line))
	})
	s.OnClose(func(s *swoole.Server, fd int64, _ int) { fmt.Printf("session %d closed\n", fd) })
	if err := s.Start(); err != nil {
		slog.Error("start", "err", err)
		os.Exit(1)
	}
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
