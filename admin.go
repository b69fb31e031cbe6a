package swoole

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The admin socket: a unix stream socket the manager of a server of several processes
// serves while the server runs, when pid_file is set, at AdminSocketPath(pid_file). The
// operator's tool (cmd/goswoole: goswoole stats --pid-file F) talks to it; anyone who may
// connect to it (mode 0600: the server's user) may ask.
//
// Protocol: one request line per connection, one JSON reply, then the server closes it.
//
//	stats      → AdminStats
//
// An unknown request gets {"error": "..."}.

// AdminSocketPath returns the path of the admin socket of the server whose pid_file is
// pidFile: pidFile + ".sock".
func AdminSocketPath(pidFile string) string { return pidFile + ".sock" }

// AdminStats is the admin socket's answer to "stats": the server's counters and every
// process of the tree.
type AdminStats struct {
	Stats      Stats          `json:"stats"`
	MasterPID  int            `json:"master_pid"`
	ManagerPID int            `json:"manager_pid"`
	Processes  []AdminProcess `json:"processes"`
}

// AdminProcess is one process of the tree in AdminStats.
type AdminProcess struct {
	ID     int    `json:"id"`     // global id: workers, task workers, user processes
	Kind   string `json:"kind"`   // "worker", "task" or "process"
	PID    int    `json:"pid"`    // 0 while it is being restarted
	Status int    `json:"status"` // WorkerBusy, WorkerIdle, WorkerExit (0: not started)
}

// adminStats builds the answer to "stats".
func (s *Server) adminStats() AdminStats {
	st := AdminStats{Stats: s.Stats(), MasterPID: s.GetMasterPID(), ManagerPID: s.GetManagerPID()}
	for id := range s.procTotal() {
		p := AdminProcess{ID: id, Kind: "worker", PID: s.GetWorkerPID(id)}
		switch {
		case s.userProcessIndex(id) >= 0:
			p.Kind = "process"
		case id >= s.eff.WorkerNum:
			p.Kind = "task"
		}
		if p.PID < 0 {
			p.PID = 0
		}
		p.Status, _ = s.GetWorkerStatus(id)
		st.Processes = append(st.Processes, p)
	}
	return st
}

// serveAdmin starts serving the admin socket (pid_file set) and returns the function that
// stops it and removes the socket. A socket that cannot be created is logged, not fatal.
func (s *Server) serveAdmin() (stop func()) {
	if s.eff.PidFile == "" {
		return func() {}
	}
	path := AdminSocketPath(s.eff.PidFile)
	if c, err := net.DialTimeout("unix", path, 100*time.Millisecond); err == nil {
		c.Close()
		s.log.Warn("swoole: another server serves the admin socket: this one serves none", "path", path)
		return func() {}
	}
	_ = os.Remove(path) // left by a server that died
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		s.log.Warn("swoole: cannot serve the admin socket", "path", path, "err", err)
		return func() {}
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				s.adminConn(c)
			}()
		}
	}()
	return func() {
		ln.Close()
		wg.Wait()
	}
}

// adminConn answers one request.
func (s *Server) adminConn(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && line == "" {
		return
	}
	var reply any
	switch req := strings.TrimSpace(line); req {
	case "stats":
		if !s.tableLive() {
			reply = map[string]string{"error": "the server is not running"}
			break
		}
		reply = s.adminStats()
	default:
		reply = map[string]string{"error": "unknown request " + req + `: use "stats"`}
	}
	b, _ := json.Marshal(reply)
	_, _ = c.Write(append(b, '\n'))
}
