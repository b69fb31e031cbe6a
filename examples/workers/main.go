// Workers is a chat server that runs as a manager and worker processes (ModeBase with
// worker_num > 1): every line a client sends goes to every client, whichever worker holds
// their connection.
//
// Run it from the repository root:
//
//	go run ./examples/workers                  # 127.0.0.1:9502, 2 workers
//	go run ./examples/workers -workers 4
//
// then connect several clients (nc 127.0.0.1 9502) and type. Try, with the manager's pid
// (printed at start, and GetManagerPID in every process):
//
//	kill -USR1 <manager>    # reload: new worker processes (of the binary now on disk)
//	kill -9 <a worker pid>  # the manager reports it (OnWorkerError) and starts another
//	kill <manager>          # graceful shutdown of the whole tree
//
// The program's main runs in every process: the manager and each worker. Code before Start
// runs everywhere (NewServer adopts the manager's socket in a worker); per-process work
// belongs in OnWorkerStart; code after Start runs only in the manager, once the server has
// stopped.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/goswoole/swoole"
)

func main() {
	port := flag.Int("port", 9502, "port to listen on (0: any free port)")
	workers := flag.Int("workers", 2, "worker processes")
	flag.Parse()

	s, err := swoole.NewServer("127.0.0.1", *port, swoole.ModeBase, swoole.SockTCP)
	if err != nil {
		slog.Error("listen", "err", err)
		os.Exit(1)
	}
	if err := s.Set(swoole.Settings{WorkerNum: *workers, OpenEOFSplit: true, PackageEOF: "\n"}); err != nil {
		slog.Error("settings", "err", err)
		os.Exit(2)
	}
	s.OnManagerStart(func(s *swoole.Server) {
		fmt.Printf("chat on 127.0.0.1:%d: manager %d, %d workers\n", s.Ports()[0].Port(), s.GetManagerPID(), s.Setting().WorkerNum)
	})
	s.OnWorkerStart(func(s *swoole.Server, id int) {
		fmt.Printf("worker %d: pid %d\n", id, os.Getpid())
	})
	s.OnWorkerError(func(s *swoole.Server, id, pid, code, sig int) {
		fmt.Printf("worker %d (pid %d) died: exit code %d, signal %d; restarting it\n", id, pid, code, sig)
	})
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		line := fmt.Appendf(nil, "[%d via worker %d] %s", fd, s.GetWorkerID(), data)
		// The connection table is shared: Connections lists every worker's clients, and
		// Send reaches a client of another worker through that worker's pipe.
		for id := range s.Connections() {
			_ = s.Send(id, line)
		}
	})
	if err := s.Start(); err != nil { // a worker never gets past this line
		slog.Error("start", "err", err)
		os.Exit(1)
	}
	fmt.Println("chat stopped")
}
