package swoole_test

// GOMAXPROCS in the processes of a server: each has a P to spare beside its event loops,
// also when it is pinned to one CPU, unless GOMAXPROCS is set in the environment (procs.go).

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"

	"github.com/goswoole/swoole"
)

func init() { mpMoreServers["procs"] = procsServer }

// procsServer reports GOMAXPROCS from every process of a server in the mode mpMode says,
// with mpEnvWorkers workers (default 2) and one task worker (none for ModeBase with one
// worker: one process): "procs <role> <GOMAXPROCS>"
// from OnStart (the process that holds the connections: the master, or the one process),
// OnManagerStart and OnWorkerStart; then "ready <port>".
func procsServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	workers := envInt(mpEnvWorkers, 2)
	tasks := 1
	if workers == 1 && mpMode() == swoole.ModeBase {
		tasks = 0 // one process
	}
	if err := s.Set(swoole.Settings{WorkerNum: workers, TaskWorkerNum: tasks, MaxConnection: 64, LogLevel: swoole.LogLevelWarning}); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	s.OnStart(func(*swoole.Server) {
		mpEvent("procs", "start", runtime.GOMAXPROCS(0))
		mpEvent("ready", port)
	})
	s.OnManagerStart(func(*swoole.Server) { mpEvent("procs", "manager", runtime.GOMAXPROCS(0)) })
	s.OnWorkerStart(func(s *swoole.Server, id int) {
		role := "worker"
		if s.IsTaskWorker() {
			role = "taskworker"
		}
		mpEvent("procs", role+strconv.Itoa(id), runtime.GOMAXPROCS(0))
	})
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) { _ = s.Send(fd, data) })
	s.OnTask(func(*swoole.Server, int, int, []byte) any { return nil })
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// TestLoopsHaveASpareP: started pinned to one CPU (taskset, where the runtime's default
// GOMAXPROCS is 1), every process of the server runs with GOMAXPROCS 2 (the master of
// ModeProcess: its reactors plus one); with GOMAXPROCS=1 in the environment, every process
// keeps 1.
func TestLoopsHaveASpareP(t *testing.T) {
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Skip("taskset (util-linux) is not installed: the test pins the server to one CPU with it")
	}
	modes := []struct {
		name  string
		env   []string
		roles []string // the reports to wait for
	}{
		{"ModeBase one process", []string{mpEnvWorkers + "=1"}, []string{"start", "worker0"}},
		{"ModeBase workers", nil, []string{"start", "worker0", "worker1", "taskworker2"}},
		{"ModeProcess", []string{mpEnvMode + "=process"}, []string{"start", "manager", "worker0", "worker1", "taskworker2"}},
		{"ModeThread", []string{mpEnvMode + "=thread"}, []string{"start", "manager", "worker0", "worker1", "taskworker2"}},
	}
	for _, m := range modes {
		for _, pinned := range []string{"", "1"} {
			name := m.name
			if pinned != "" {
				name += ", GOMAXPROCS=1"
			}
			t.Run(name, func(t *testing.T) {
				env := append([]string{"GOMAXPROCS=" + pinned}, m.env...)
				if pinned == "" {
					env[0] = "GOMAXPROCS=" // set and empty: the runtime's default, as when unset
				}
				ms := mpStartCommand(t, []string{taskset, "-c", "0", os.Args[0], "-test.run=^$"}, "procs", "ready", env...)
				var evs []mpEv
				ms.eventually(fmt.Sprint("the reports of ", m.roles), func() bool {
					evs = evs[:0]
					seen := map[string]bool{}
					for _, e := range ms.events() {
						if e.Name == "procs" {
							evs = append(evs, e)
							seen[e.Fields[0]] = true
						}
					}
					for _, r := range m.roles {
						if !seen[r] {
							return false
						}
					}
					return true
				})
				want := "2"
				if pinned != "" {
					want = "1"
				}
				for _, e := range evs {
					if e.Fields[1] != want {
						t.Errorf("%s (pid %d) runs with GOMAXPROCS %s, want %s", e.Fields[0], e.PID, e.Fields[1], want)
					}
				}
			})
		}
	}
}
