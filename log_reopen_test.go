package swoole_test

// log_file's reopening on SIGRTMIN (logrotate's move + signal) and log_rotation, driven
// against real server trees: each worker writes a warning on demand, and the test looks for
// it in the files.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

func init() { mpMoreServers["logreopen"] = logTestServer }

// Environment of logTestServer.
const (
	logEnvFile     = "GOSWOOLE_TEST_LOG_FILE"     // log_file
	logEnvRotation = "GOSWOOLE_TEST_LOG_ROTATION" // log_rotation
)

// logWarnLine is what a worker's warning looks like in the log (registering a callback after
// Start is refused with a warning, in the process that tries it).
const logWarnLine = "a callback registered after Start is ignored"

// logTestServer is a line server with log_file and log_rotation from the environment:
//
//	warn <worker id> → that worker logs one warning, then "warned <worker id>" (the request
//	                   goes to the other worker with SendMessage when needed)
//
// Events: workerstart (worker id), managerstart (port).
func logTestServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	workers := envInt(mpEnvWorkers, 2)
	set := mpLineSettings(workers)
	set.LogFile, set.LogRotation = os.Getenv(logEnvFile), envInt(logEnvRotation, 0)
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	warn := func(s *swoole.Server, fd int64) {
		s.OnBufferEmpty(func(*swoole.Server, int64) {}) // logs logWarnLine
		_ = s.Send(fd, []byte(fmt.Sprintf("warned %d\n", s.GetWorkerID())))
	}
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
		if cmd != "warn" {
			return
		}
		dst, _ := strconv.Atoi(arg)
		if dst == s.GetWorkerID() {
			warn(s, fd)
		} else if err := s.SendMessage([]byte(strconv.FormatInt(fd, 10)), dst); err != nil {
			_ = s.Send(fd, []byte("error "+err.Error()+"\n"))
		}
	})
	s.OnPipeMessage(func(s *swoole.Server, _ int, data []byte) {
		fd, _ := strconv.ParseInt(string(data), 10, 64)
		warn(s, fd)
	})
	port := s.Ports()[0].Port()
	s.OnWorkerStart(func(s *swoole.Server, id int) { mpEvent("workerstart", id) })
	s.OnManagerStart(func(*swoole.Server) { mpEvent("managerstart", port) })
	s.OnStart(func(*swoole.Server) {
		if workers == 1 && mpMode() == swoole.ModeBase {
			mpEvent("managerstart", port) // one process: no manager
		}
	})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// logStart starts logTestServer and waits until every worker started.
func logStart(t *testing.T, workers int, env ...string) *mpServer {
	t.Helper()
	env = append(env, mpEnvWorkers+"="+strconv.Itoa(workers))
	ms := mpStartServer(t, "logreopen", "managerstart", env...)
	ms.eventually("every worker's workerstart", func() bool {
		ids := map[string]bool{}
		for _, e := range ms.events() {
			if e.Name == "workerstart" {
				ids[e.Fields[0]] = true
			}
		}
		return len(ids) >= workers
	})
	return ms
}

// logWarn asks worker id to log one warning and waits until it did.
func logWarn(t *testing.T, ms *mpServer, id int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(ms.Port), mpTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(mpTimeout))
	fmt.Fprintf(c, "warn %d\n", id)
	line, err := bufio.NewReader(c).ReadString('\n')
	if want := fmt.Sprintf("warned %d\n", id); err != nil || line != want {
		t.Fatalf("warn %d: got %q, %v; want %q\n%s", id, line, err, want, ms.output())
	}
}

// logCount is how many worker warnings path holds (0 when it does not exist).
func logCount(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), logWarnLine)
}

// TestLogFileReopenedOnSIGRTMIN: logrotate's way. The log file is moved away and the
// manager (ModeProcess: the master; one process: the process) gets SIGRTMIN: a new file
// appears at log_file's path, every worker's warnings go there from then on, and the moved
// file gets none of them.
func TestLogFileReopenedOnSIGRTMIN(t *testing.T) {
	for _, c := range []struct {
		name    string
		workers int
		env     []string
	}{
		{"base-2-workers", 2, nil},
		{"process-2-workers", 2, []string{mpEnvMode + "=process"}},
		{"one-process", 1, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "server.log")
			ms := logStart(t, c.workers, append(c.env, logEnvFile+"="+path)...)
			for id := range c.workers {
				logWarn(t, ms, id)
			}
			if n := logCount(path); n != c.workers {
				t.Fatalf("log_file holds %d warnings before the move, want %d\n%s", n, c.workers, ms.output())
			}
			moved := path + ".1"
			if err := os.Rename(path, moved); err != nil {
				t.Fatal(err)
			}
			ms.signal(syscall.Signal(34)) // SIGRTMIN, as `kill -RTMIN` sends it
			ms.eventually("a new log_file at its path", func() bool {
				_, err := os.Stat(path)
				return err == nil
			})
			// Each worker switches when the manager's message reaches it: ask each until
			// its warning lands in the new file (the count of one file grows per warning).
			for id := range c.workers {
				ms.eventually(fmt.Sprintf("worker %d's warning in the new file", id), func() bool {
					before := logCount(path)
					logWarn(t, ms, id)
					return logCount(path) == before+1
				})
			}
			movedCount := logCount(moved)
			for range 3 {
				for id := range c.workers {
					before := logCount(path)
					logWarn(t, ms, id)
					if logCount(path) != before+1 {
						t.Fatalf("worker %d's warning did not land in the new log_file after it switched\n%s", id, ms.output())
					}
				}
			}
			if n := logCount(moved); n != movedCount {
				t.Fatalf("the moved file got %d more warnings after every worker switched", n-movedCount)
			}
		})
	}
}

// TestLogRotationDailyFileName: with log_rotation daily, every worker writes to
// log_file.YYYYMMDD (local time, Swoole's name) and log_file itself is not created.
func TestLogRotationDailyFileName(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "server.log")
	before := time.Now()
	ms := logStart(t, 2, logEnvFile+"="+path, logEnvRotation+"="+strconv.Itoa(swoole.LogRotationDaily))
	logWarn(t, ms, 0)
	logWarn(t, ms, 1)
	after := time.Now()
	name := path + "." + before.Format("20060102")
	n := logCount(name)
	if later := path + "." + after.Format("20060102"); later != name {
		n += logCount(later) // midnight passed meanwhile
	}
	if n != 2 {
		entries, _ := os.ReadDir(dir)
		var have []string
		for _, e := range entries {
			have = append(have, e.Name())
		}
		t.Fatalf("%s holds %d warnings, want both workers' 2 (files in the directory: %v)\n%s", name, n, have, ms.output())
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("log_file itself: %v; with log_rotation only the dated file is written", err)
	}
}
