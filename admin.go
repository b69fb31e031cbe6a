package swoole

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The admin socket: a unix stream socket the manager of a server of several processes
// serves while the server runs, when pid_file is set, at AdminSocketPath(pid_file). The
// operator's tool (cmd/goswoole: goswoole stats --pid-file F) talks to it; only the server's
// user may connect: the socket lives in a directory of its own, created 0700 by the server
// (a directory there already that is not the server's user's, or that others may enter, is
// refused: a local user who can write pid_file's directory cannot plant the socket or read
// from it).
//
// Protocol: one request line per connection, one JSON reply, then the server closes it.
//
//	stats      → AdminStats
//
// An unknown request gets {"error": "..."}.

// AdminSocketPath returns the path of the admin socket of the server whose pid_file is
// pidFile: "admin.sock" in the private directory pidFile + ".d".
func AdminSocketPath(pidFile string) string { return filepath.Join(pidFile+".d", "admin.sock") }

// privateDir makes dir (0700) or checks that the one there is a directory of this process's
// user that nobody else may enter.
func privateDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Geteuid() || st.Mode&0o077 != 0 {
		return fmt.Errorf("%s is not a directory of this user's that only it may enter (mode %o, owner %d): remove it", dir, st.Mode&0o7777, st.Uid)
	}
	return nil
}

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
	dir := filepath.Dir(path)
	if err := privateDir(dir); err != nil {
		s.log.Warn("swoole: cannot serve the admin socket", "path", path, "err", err)
		return func() {}
	}
	_ = os.Remove(path) // left by a server that died
	ln, err := net.Listen("unix", path)
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
		_ = os.Remove(dir)
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
