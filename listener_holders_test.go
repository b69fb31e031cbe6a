package swoole_test

// Which processes hold a stream port's listening socket: only those that accept on it
// (ModeBase's event workers; a ModeProcess master). A ModeProcess worker, a task worker or a
// user process that held it could accept the server's connections itself (SECURITY.md);
// each of them still knows the port's number, and GetSocket there says why it has none.

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole"
)

func init() { mpMoreServers["holders"] = holdersServer }

// listeningSockets counts this process's descriptors that are listening stream sockets.
func listeningSockets() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err == nil && v == 1 {
			n++
		}
	}
	return n
}

// holdersServer reports, from every process, "holds <kind> <listening sockets> <GetSocket
// code> <port>".
func holdersServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	set := mpLineSettings(2)
	set.TaskWorkerNum = 1
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	report := func(kind string) {
		_, err := s.GetSocket()
		mpEvent("holds", kind, listeningSockets(), mpCode(err), s.Ports()[0].Port())
	}
	if _, err := s.AddProcess(swoole.NewProcess(func(p *swoole.Process) {
		report("userproc")
		buf := make([]byte, 16)
		for {
			if _, err := p.ExportSocket().Read(buf); err != nil {
				return
			}
		}
	})); err != nil {
		fmt.Fprintln(os.Stderr, "AddProcess:", err)
		return 2
	}
	s.OnReceive(func(*swoole.Server, int64, int, []byte) {})
	s.OnTask(func(*swoole.Server, int, int, []byte) any { return nil })
	s.OnWorkerStart(func(s *swoole.Server, id int) {
		kind := "worker"
		if s.IsTaskWorker() {
			kind = "task"
		}
		report(kind)
	})
	s.OnManagerStart(func(s *swoole.Server) {
		report("manager")
		mpEvent("managerstart", s.Ports()[0].Port())
	})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

func TestListenersOnlyWhereAccepted(t *testing.T) {
	for _, mode := range []string{"base", "process"} {
		t.Run(mode, func(t *testing.T) {
			ms := mpStartServer(t, "holders", "managerstart", mpEnvMode+"="+mode)
			port := strconv.Itoa(ms.waitEvent("managerstart", nil).int(0))
			ms.eventually("every process's report", func() bool { return ms.count("holds", nil) >= 5 })
			for _, e := range ms.events() {
				if e.Name != "holds" {
					continue
				}
				kind, n, code := e.Fields[0], e.int(1), e.int(2)
				if e.Fields[3] != port {
					t.Errorf("%s (pid %d) reports port %s, want %s", kind, e.PID, e.Fields[3], port)
				}
				accepts := kind == "manager" || kind == "worker" && mode == "base"
				switch {
				case accepts && (n < 1 || code != 0):
					t.Errorf("%s (pid %d) of %s: %d listening sockets, GetSocket code %d; want the listener", kind, e.PID, mode, n, code)
				case !accepts && (n != 0 || code != swoole.ErrOperationNotSupport):
					t.Errorf("%s (pid %d) of %s: %d listening sockets, GetSocket code %d; want none and 507", kind, e.PID, mode, n, code)
				}
			}
		})
	}
}
