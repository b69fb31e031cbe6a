package swoole_test

// max_request with two ModeProcess workers under round robin (dispatch_mode 1), one
// request at a time on one connection: the answers alternate between worker 0 and worker 1,
// and each worker is replaced after exactly max_request requests (its counter starts
// again) — or never within the test when a grace is added. Swoole's
// max_request_grace_disabled, max_request_threshold and max_request_grace_enabled.

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// Environment of mrServer.
const (
	mrEnvMax   = "GOSWOOLE_TEST_MR_MAX"   // max_request
	mrEnvGrace = "GOSWOOLE_TEST_MR_GRACE" // max_request_grace (unset: not given)
)

func init() { mpMoreServers["maxreqrr"] = mrServer }

// mrServed counts the requests this worker process served.
var mrServed int

// mrServer is a ModeProcess line server with 2 workers and dispatch_mode 1 that answers
// each line with "Worker <id> served <n> request(s) since start".
func mrServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeProcess, swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	if err := s.Set(swoole.Settings{
		WorkerNum: 2, DispatchMode: 1, LogLevel: swoole.LogLevelWarning, MaxConnection: 1024,
		OpenEOFCheck: true, PackageEOF: "\n", MaxWaitTime: 3 * time.Second,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	opts := map[string]any{"max_request": envInt(mrEnvMax, 0)}
	if os.Getenv(mrEnvGrace) != "" {
		opts["max_request_grace"] = envInt(mrEnvGrace, 0)
	}
	if err := s.SetOptions(opts); err != nil {
		fmt.Fprintln(os.Stderr, "SetOptions:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	s.OnManagerStart(func(*swoole.Server) { mpEvent("managerstart", port) })
	s.OnWorkerStart(func(s *swoole.Server, id int) { mpEvent("workerstart", id) })
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, _ []byte) {
		mrServed++
		_ = s.Send(fd, []byte(fmt.Sprintf("Worker %d served %d request(s) since start\n", s.GetWorkerID(), mrServed)))
	})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// TestMaxRequestRoundRobin: the transcript of Swoole's three phpts, line for line.
func TestMaxRequestRoundRobin(t *testing.T) {
	for _, tc := range []struct {
		name          string
		max, requests int
		grace         string // "": not given
		life          int    // requests per worker life
	}{
		{"grace disabled", 12, 48, "0", 12},
		{"threshold", 10, 40, "", 10},
		{"grace enabled", 4, 16, "1000000000", 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := []string{mrEnvMax + "=" + strconv.Itoa(tc.max)}
			if tc.grace != "" {
				env = append(env, mrEnvGrace+"="+tc.grace)
			}
			ms := mpStartServer(t, "maxreqrr", "managerstart", env...)
			ms.eventually("both workers' OnWorkerStart", func() bool { return ms.count("workerstart", nil) >= 2 })
			c := ms.dial()
			for i := range tc.requests {
				c.send("request " + strconv.Itoa(i))
				l, err := c.readLine()
				want := fmt.Sprintf("Worker %d served %d request(s) since start", i%2, (i/2)%tc.life+1)
				if err != nil || l != want {
					t.Fatalf("request %d: %q, %v; want %q", i, l, err, want)
				}
			}
		})
	}
}
