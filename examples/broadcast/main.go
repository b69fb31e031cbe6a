// Broadcast is the seed's addProcess example in Go: a user process relays what the workers
// write to its socket to every connection of the server.
//
// Run it from the repository root:
//
//	go run ./examples/broadcast            # 127.0.0.1:9501, 2 workers
//	go run ./examples/broadcast -workers 1 # still a manager, a worker and the user process
//
// then connect several clients (nc 127.0.0.1 9501) and type: every line reaches every client.
//
// How it works: AddProcess adds a user process that the manager starts with the server (and
// starts again if it exits). Its ExportSocket is one end of a unix datagram pair; every
// worker holds the other end (the same Process's ExportSocket, seen from a worker). A worker
// writes what a client sent there, and the user process, which reads it, sends it to every
// connection (the connection table is shared by every process, so Connections and Send work
// in the user process too).
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/goswoole/swoole"
)

func main() {
	port := flag.Int("port", 9501, "port to listen on (0: any free port)")
	workers := flag.Int("workers", 2, "worker processes")
	flag.Parse()

	server, err := swoole.NewServer("127.0.0.1", *port, swoole.ModeBase, swoole.SockTCP)
	if err != nil {
		slog.Error("listen", "err", err)
		os.Exit(1)
	}
	if err := server.Set(swoole.Settings{WorkerNum: *workers}); err != nil {
		slog.Error("settings", "err", err)
		os.Exit(2)
	}

	// The user process: it receives the messages of its socket and sends each to every
	// connection of the server.
	process := swoole.NewProcess(func(process *swoole.Process) {
		socket := process.ExportSocket()
		buf := make([]byte, 64<<10)
		for {
			n, err := socket.Read(buf)
			if err != nil {
				slog.Error("user process: read", "err", err)
				return // the manager starts the process again
			}
			msg := buf[:n]
			for conn := range server.Connections() {
				_ = server.Send(conn, msg)
			}
		}
	})
	if _, err := server.AddProcess(process); err != nil {
		slog.Error("add process", "err", err)
		os.Exit(2)
	}

	server.OnManagerStart(func(s *swoole.Server) {
		fmt.Printf("broadcast on 127.0.0.1:%d: manager %d, %d workers\n", s.Ports()[0].Port(), s.GetManagerPID(), s.Setting().WorkerNum)
	})
	server.OnReceive(func(s *swoole.Server, fd int64, reactorID int, data []byte) {
		// Receives the message and sends it to all connections (through the user process).
		socket := process.ExportSocket()
		if _, err := socket.Write(data); err != nil {
			slog.Error("worker: write to the user process", "err", err)
		}
	})
	if err := server.Start(); err != nil { // a worker or the user process never gets past this line
		slog.Error("start", "err", err)
		os.Exit(1)
	}
	fmt.Println("broadcast stopped")
}
