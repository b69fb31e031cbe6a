// Thread is a small chat room in ModeThread: one process, two reactor loops holding the
// connections, four worker loops running the callbacks and a task worker for slow work.
// Each worker loop has its own *Server handle and its own state (no lock needed for it: a
// worker's callbacks run one at a time), and a reload replaces the loops without closing a
// connection.
//
// Run it from the repository root:
//
//	go run ./examples/thread              # 127.0.0.1:9504
//
// connect with a few clients (nc 127.0.0.1 9504) and type:
//
//	nick ann        names this connection
//	say hello       sends "ann: hello" to every connection
//	stats           "worker 2: 5 lines here, 14 in all": the worker's own count and the server's
//	slow 30         runs a 30-step job on the task worker and waits for its result
//
// then, with the pid printed at start:
//
//	kill -USR1 <pid>   # reload: every worker loop is replaced (OnWorkerStop, OnWorkerStart);
//	                   # the connections stay open; per-worker counts start again from 0
//	kill <pid>         # graceful shutdown
//
// A reload in ModeThread restarts the loops, not the program: the code is the same. To run a
// new binary without refusing a connection, call s.Upgrade() (README: "Upgrade a one-process
// server"): the new process takes the listeners, this one drains its connections.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/goswoole/swoole"
)

// workerState is one worker loop's own state: only its callbacks touch it.
type workerState struct {
	lines int
}

func main() {
	port := flag.Int("port", 9504, "port to listen on (0: any free port)")
	flag.Parse()

	s, err := swoole.NewServer("127.0.0.1", *port, swoole.ModeThread, swoole.SockTCP)
	if err != nil {
		slog.Error("listen", "err", err)
		os.Exit(1)
	}
	err = s.Set(swoole.Settings{
		ReactorNum:    2,
		WorkerNum:     4,
		TaskWorkerNum: 1,
		DispatchMode:  swoole.DispatchFDMod, // a connection's lines stay on one worker
		OpenEOFSplit:  true,
		PackageEOF:    "\n",
	})
	if err != nil {
		slog.Error("settings", "err", err)
		os.Exit(2)
	}

	var mu sync.Mutex // guards nicks: shared by every worker loop
	nicks := map[int64]string{}
	states := make([]*workerState, 4) // by worker id; each entry is its own loop's

	s.OnStart(func(s *swoole.Server) {
		fmt.Printf("listening on 127.0.0.1:%d, pid %d: 2 reactors, 4 workers, 1 task worker\n", s.Ports()[0].Port(), os.Getpid())
	})
	s.OnWorkerStart(func(w *swoole.Server, id int) {
		if !w.IsTaskWorker() {
			states[id] = &workerState{} // fresh after each reload
		}
	})
	s.OnClose(func(w *swoole.Server, fd int64, _ int) {
		mu.Lock()
		delete(nicks, fd)
		mu.Unlock()
	})
	s.OnReceive(func(w *swoole.Server, fd int64, _ int, data []byte) {
		st := states[w.GetWorkerID()] // w is this worker's handle
		st.lines++
		cmd, arg, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
		reply := func(format string, args ...any) { _ = w.Send(fd, []byte(fmt.Sprintf(format, args...)+"\n")) }
		switch cmd {
		case "nick":
			mu.Lock()
			nicks[fd] = arg
			mu.Unlock()
			reply("you are %s", arg)
		case "say":
			mu.Lock()
			from := nicks[fd]
			mu.Unlock()
			if from == "" {
				from = "#" + strconv.FormatInt(fd, 10)
			}
			line := []byte(from + ": " + arg + "\n")
			for id := range w.Connections() {
				_ = w.Send(id, line) // any loop may send to any connection
			}
		case "stats":
			reply("worker %d: %d lines here, %d in all", w.GetWorkerID(), st.lines, w.Stats().RequestCount)
		case "slow":
			n, _ := strconv.Atoi(arg)
			res, err := w.TaskWait(strconv.Itoa(n), 10*time.Second, -1)
			if err != nil {
				reply("slow: %v", err)
				return
			}
			reply("slow %d: %s", n, res)
		default:
			reply("commands: nick NAME, say TEXT, stats, slow N")
		}
	})
	s.OnTask(func(t *swoole.Server, _ int, _ int, data []byte) any {
		n, _ := strconv.Atoi(string(data))
		sum := 0
		for i := range n {
			sum += i * i
			time.Sleep(time.Millisecond) // stands for slow work: only the task worker waits
		}
		return fmt.Sprintf("sum of squares below %d = %d (task worker %d)", n, sum, t.GetWorkerID())
	})
	if err := s.Start(); err != nil {
		slog.Error("start", "err", err)
		os.Exit(1)
	}
}
