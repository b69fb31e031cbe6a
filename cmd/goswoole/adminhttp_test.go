package main

import (
	"encoding/json"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// workerPIDs parses stats' process table: the pids of the workers.
func workerPIDs(out string) []int {
	var pids []int
	for _, l := range strings.Split(out, "\n") {
		if m := procLine.FindStringSubmatch(l); m != nil && m[2] == "worker" {
			pid, _ := strconv.Atoi(m[3])
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestCLIAdminOverHTTP operates servers started without a pid file through their admin
// server: stats (text and --json), a wrong secret, reload (new worker pids), stop (the
// process exits), and stats once it is gone.
func TestCLIAdminOverHTTP(t *testing.T) {
	for _, workers := range []int{1, 2} {
		t.Run(strconv.Itoa(workers)+" workers", func(t *testing.T) {
			port := freePort(t)
			addr := "ops:pw@127.0.0.1:" + strconv.Itoa(port)
			c := startChild(t, "serve", "--port", "0", "--workers", strconv.Itoa(workers), "--admin", addr)
			c.line(20 * time.Second)

			var out string
			deadline := time.Now().Add(20 * time.Second)
			for {
				code, stdout, stderr := cli("stats", "--admin", addr)
				out = stdout
				if code == 0 && len(workerPIDs(out)) == workers && !slices.Contains(workerPIDs(out), 0) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("stats --admin never listed %d running workers: exit %d\n%s%s", workers, code, stdout, stderr)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !strings.Contains(out, "worker_num: "+strconv.Itoa(workers)+"\n") || !strings.Contains(out, "connection_num: 0\n") {
				t.Errorf("stats --admin output:\n%s", out)
			}
			first := workerPIDs(out)

			code, stdout, stderr := cli("stats", "--json", "--admin", addr)
			var st swoole.AdminStats
			if code != 0 || json.Unmarshal([]byte(stdout), &st) != nil || st.Stats.WorkerNum != workers || len(st.Processes) != workers {
				t.Errorf("stats --json --admin: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}

			code, _, stderr = cli("stats", "--admin", "ops:guess@127.0.0.1:"+strconv.Itoa(port))
			if code != exitError || !strings.Contains(stderr, "4003") || !strings.Contains(stderr, "token") {
				t.Errorf("stats with a wrong secret: exit %d, stderr %q; want 1 and the token refusal", code, stderr)
			}

			code, stdout, stderr = cli("reload", "--admin", addr)
			if workers == 1 {
				if code != exitError || !strings.Contains(stderr, "single process") {
					t.Errorf("reload of one process: exit %d, stdout %q, stderr %q; want 1 and why", code, stdout, stderr)
				}
			} else {
				if code != 0 || !strings.Contains(stdout, "reload of the workers requested") {
					t.Fatalf("reload --admin: exit %d, stdout %q, stderr %q", code, stdout, stderr)
				}
				deadline := time.Now().Add(20 * time.Second)
				for {
					_, out, _ = cli("stats", "--admin", addr)
					p := workerPIDs(out)
					if len(p) == 2 && !slices.Contains(p, 0) && p[0] != first[0] && p[1] != first[1] {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the workers were not replaced (were %v):\n%s", first, out)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}

			code, stdout, stderr = cli("stop", "--admin", addr)
			if code != 0 || !strings.Contains(stdout, "server stopped") {
				t.Fatalf("stop --admin: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			if code := c.exitCode(20 * time.Second); code != 0 {
				t.Errorf("the server exited with %d", code)
			}
			if code, _, stderr := cli("stats", "--admin", addr); code != exitError || !strings.Contains(stderr, "not running") {
				t.Errorf("stats after stop: exit %d, stderr %q", code, stderr)
			}
		})
	}
}
