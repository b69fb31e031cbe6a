package swoole_test

// The admin server (admin_server): Swoole's HTTP admin API and /metrics, driven over HTTP
// against real servers in every mode (one process, ModeBase with workers, ModeProcess), and
// its refusals (address, token, method, host, origin, size, rate).

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/goswoole/swoole"
)

func init() { mpMoreServers["admin"] = adminTestServer }

// adminEnvAddr is the admin_server setting of adminTestServer.
const adminEnvAddr = "GOSWOOLE_TEST_ADMIN"

// adminTestServer is a line server with admin_server set from adminEnvAddr:
//
//	who        → "who <worker id> <pid> <session id>"
//	echo <x>   → "<x>"
//
// It registers the command raw_echo (every process type), whose reply is "raw:" followed by
// the data it got. Events: workerstart (worker id), managerstart (port) once the server
// serves.
func adminTestServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	workers := envInt(mpEnvWorkers, 2)
	set := mpLineSettings(workers)
	set.AdminServer = os.Getenv(adminEnvAddr)
	if workers > 1 || mpMode() == swoole.ModeProcess {
		set.TaskWorkerNum = 1
		s.OnTask(func(s *swoole.Server, taskID int, srcWorker int, data []byte) any { return data })
		s.OnFinish(func(s *swoole.Server, taskID int, data []byte) {})
	}
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	const all = swoole.CommandMaster | swoole.CommandManager | swoole.CommandEventWorker | swoole.CommandTaskWorker
	if err := s.AddCommand("raw_echo", all, func(s *swoole.Server, data []byte) []byte {
		return append([]byte("raw:"), data...)
	}); err != nil {
		fmt.Fprintln(os.Stderr, "AddCommand:", err)
		return 2
	}
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		line := strings.TrimSpace(string(data))
		cmd, arg, _ := strings.Cut(line, " ")
		switch cmd {
		case "who":
			_ = s.Send(fd, []byte(fmt.Sprintf("who %d %d %d\n", s.GetWorkerID(), os.Getpid(), fd)))
		case "echo":
			_ = s.Send(fd, []byte(arg+"\n"))
		}
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

// adminFreePort returns a loopback port that was free a moment ago.
func adminFreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func adminToken(user, secret string) string {
	sum := sha1.Sum([]byte(user + secret))
	return hex.EncodeToString(sum[:])
}

// adminClient talks to an admin server.
type adminClient struct {
	t     testing.TB
	base  string // http://127.0.0.1:port
	token string // "" sends none
	hc    *http.Client
}

func newAdminClient(t testing.TB, port int, token string) *adminClient {
	// No keep-alive: no idle connection (and its goroutines) outlives a request.
	tr := &http.Transport{DisableKeepAlives: true}
	return &adminClient{t: t, base: "http://127.0.0.1:" + strconv.Itoa(port), token: token, hc: &http.Client{Transport: tr, Timeout: mpTimeout}}
}

// do sends a request and returns the status and the body.
func (a *adminClient) do(method, path string, body []byte, ctype string, hdr ...string) (int, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if a.token != "" {
		req.Header.Set("X-Admin-Server-Access-Token", a.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// adminReply is the admin API's JSON reply.
type adminReply struct {
	Code int             `json:"code"`
	Data json.RawMessage `json:"data"`
}

// api runs a command (form values in the query for GET, in the body for POST) and decodes
// the reply.
func (a *adminClient) api(method, path string, form url.Values) (int, adminReply) {
	a.t.Helper()
	var status int
	var body []byte
	if method == http.MethodPost {
		status, body = a.do(method, path, []byte(form.Encode()), "application/x-www-form-urlencoded")
	} else {
		if len(form) > 0 {
			path += "?" + form.Encode()
		}
		status, body = a.do(method, path, nil, "")
	}
	var r adminReply
	if err := json.Unmarshal(body, &r); err != nil {
		a.t.Fatalf("%s %s: reply %q is not JSON: %v", method, path, body, err)
	}
	return status, r
}

// ok runs a command that must answer HTTP 200 with code 0 and decodes its data into v.
func (a *adminClient) ok(method, path string, form url.Values, v any) {
	a.t.Helper()
	status, r := a.api(method, path, form)
	if status != http.StatusOK || r.Code != 0 {
		a.t.Fatalf("%s %s: HTTP %d, code %d, data %s; want 200 and code 0", method, path, status, r.Code, r.Data)
	}
	if v != nil {
		if err := json.Unmarshal(r.Data, v); err != nil {
			a.t.Fatalf("%s %s: data %s: %v", method, path, r.Data, err)
		}
	}
}

// denied checks a 403 with code 4003.
func (a *adminClient) denied(method, path string, form url.Values, why string) {
	a.t.Helper()
	status, r := a.api(method, path, form)
	if status != http.StatusForbidden || r.Code != 4003 {
		a.t.Fatalf("%s %s (%s): HTTP %d, code %d, data %s; want 403 and code 4003", method, path, why, status, r.Code, r.Data)
	}
}

// scrape reads /metrics and parses it.
func (a *adminClient) scrape() map[string]*adminFamily {
	a.t.Helper()
	status, body := a.do(http.MethodGet, "/metrics", nil, "")
	if status != http.StatusOK {
		a.t.Fatalf("/metrics: HTTP %d: %s", status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		a.t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	out := map[string]*adminFamily{}
	for name, f := range fams {
		af := &adminFamily{kind: f.GetType().String(), values: map[string]float64{}}
		for _, m := range f.GetMetric() {
			var lv []string
			for _, l := range m.GetLabel() {
				lv = append(lv, l.GetName()+"="+l.GetValue())
			}
			v := m.GetGauge().GetValue()
			if m.Counter != nil {
				v = m.GetCounter().GetValue()
			} else if m.Untyped != nil {
				v = m.GetUntyped().GetValue()
			}
			af.values[strings.Join(lv, ",")] = v
		}
		out[name] = af
	}
	return out
}

// adminFamily is a scraped metric: its type and its values by "label=value,...".
type adminFamily struct {
	kind   string
	values map[string]float64
}

// adminModes is the table of modes the admin server is checked in.
var adminModes = []struct {
	name    string
	workers int
	env     []string
}{
	{"base-1proc", 1, []string{mpEnvWorkers + "=1"}},
	{"base-nproc", 2, []string{mpEnvWorkers + "=2"}},
	{"process", 2, []string{mpEnvWorkers + "=2", mpEnvMode + "=process"}},
}

// TestAdminServerInEveryMode drives every built-in command, the token, the POST-only rules,
// close_session, a user command, an unknown command, /metrics against Stats(), a reload
// with a client connected and the shutdown over HTTP, in each mode.
func TestAdminServerInEveryMode(t *testing.T) {
	for _, mode := range adminModes {
		t.Run(mode.name, func(t *testing.T) {
			port := adminFreePort(t)
			env := append(slices.Clone(mode.env), adminEnvAddr+"=ops:s3cret@127.0.0.1:"+strconv.Itoa(port))
			ms := mpStartServer(t, "admin", "managerstart", env...)
			single := mode.name == "base-1proc"
			tasks := 1
			if single {
				tasks = 0
			}
			workerPID := map[int]int{} // worker id (task workers after the workers) → pid, from workerstart
			ms.eventually("every worker's workerstart", func() bool {
				for _, e := range ms.events() {
					if e.Name == "workerstart" {
						workerPID[e.int(0)] = e.PID
					}
				}
				return len(workerPID) == mode.workers+tasks
			})
			a := newAdminClient(t, port, adminToken("ops", "s3cret"))

			t.Run("token", func(t *testing.T) {
				none := newAdminClient(t, port, "")
				none.denied("GET", "/api/server_stats", nil, "no token")
				wrong := newAdminClient(t, port, adminToken("ops", "guess"))
				wrong.denied("GET", "/api/server_stats", nil, "wrong token")
				if status, _ := none.do("GET", "/metrics", nil, ""); status != http.StatusForbidden {
					t.Errorf("/metrics without the token: HTTP %d, want 403", status)
				}
				// Upper-case hex is the same token.
				upper := newAdminClient(t, port, strings.ToUpper(adminToken("ops", "s3cret")))
				upper.ok("GET", "/api/server_stats", nil, nil)
			})

			t.Run("built-in commands", func(t *testing.T) {
				var st swoole.Stats
				a.ok("GET", "/api/server_stats", nil, &st)
				if st.WorkerNum != mode.workers || st.TaskWorkerNum != tasks {
					t.Errorf("server_stats: worker_num %d, task_worker_num %d; want %d, %d", st.WorkerNum, st.TaskWorkerNum, mode.workers, tasks)
				}
				a.ok("GET", "/api/server_stats/master", nil, &st) // /api/{command} is master

				var set map[string]any
				a.ok("GET", "/api/server_setting", nil, &set)
				if set["worker_num"] != float64(mode.workers) || set["port"] != float64(ms.Port) {
					t.Errorf("server_setting: worker_num %v, port %v; want %d, %d", set["worker_num"], set["port"], mode.workers, ms.Port)
				}
				if s, _ := set["admin_server"].(string); strings.Contains(s, "s3cret") || !strings.Contains(s, "ops:") {
					t.Errorf("server_setting shows admin_server %q: the secret must be hidden", s)
				}

				for id := range mode.workers {
					var wi struct {
						ID  int `json:"id"`
						PID int `json:"pid"`
					}
					a.ok("GET", "/api/get_worker_info/worker-"+strconv.Itoa(id), nil, &wi)
					if wi.ID != id || wi.PID != workerPID[id] {
						t.Errorf("get_worker_info/worker-%d: id %d pid %d, want id %d pid %d", id, wi.ID, wi.PID, id, workerPID[id])
					}
				}
				if tasks > 0 {
					var wi struct {
						PID int `json:"pid"`
					}
					a.ok("GET", "/api/get_worker_info/task_worker-0", nil, &wi)
					var pid struct {
						PID int `json:"pid"`
					}
					a.ok("GET", "/api/getpid/task-0", nil, &pid)
					if wi.PID == 0 || wi.PID != pid.PID || wi.PID == workerPID[0] {
						t.Errorf("task worker 0: get_worker_info pid %d, getpid %d (worker 0 is %d)", wi.PID, pid.PID, workerPID[0])
					}
				}

				var timers []any
				a.ok("GET", "/api/get_timer_list/worker-0", nil, &timers)

				var cpu map[string]float64
				a.ok("GET", "/api/get_server_cpu_usage", nil, &cpu)
				if cpu["cpu_num"] != float64(runtime.NumCPU()) {
					t.Errorf("get_server_cpu_usage: cpu_num %v, want %d", cpu["cpu_num"], runtime.NumCPU())
				}
				for i := range mode.workers + tasks {
					if _, ok := cpu["worker-"+strconv.Itoa(i)]; !ok {
						t.Errorf("get_server_cpu_usage has no worker-%d: %v", i, cpu)
					}
				}
				var mem map[string]float64
				a.ok("GET", "/api/get_server_memory_usage", nil, &mem)
				if mem["worker-0"] <= 0 || mem["total"] < mem["worker-0"] || mem["memory_size"] <= 0 {
					t.Errorf("get_server_memory_usage: %v", mem)
				}

				var ver map[string]string
				a.ok("GET", "/api/get_version_info", nil, &ver)
				if ver["go"] != runtime.Version() || ver["os"] == "" {
					t.Errorf("get_version_info: %v", ver)
				}
				var cs map[string]float64
				a.ok("GET", "/api/coroutine_stats/worker-0", nil, &cs)
				if cs["goroutine_num"] < 1 {
					t.Errorf("coroutine_stats: %v", cs)
				}
				var cl []struct {
					ID        int    `json:"id"`
					BackTrace string `json:"backTrace"`
				}
				a.ok("GET", "/api/coroutine_list/worker-0", nil, &cl)
				if len(cl) == 0 || cl[0].ID == 0 || cl[0].BackTrace == "" {
					t.Errorf("coroutine_list: %d goroutines, first %+v", len(cl), cl)
				}
				var gc map[string]float64
				a.ok("GET", "/api/gc_status", nil, &gc)
				if gc["heap_alloc"] <= 0 {
					t.Errorf("gc_status: %v", gc)
				}
				var mu map[string]float64
				a.ok("GET", "/api/memory_usage", nil, &mu)
				if mu["real_usage"] <= 0 {
					t.Errorf("memory_usage: %v", mu)
				}

				c := ms.dial()
				defer c.c.Close()
				_, _, fd := c.who()
				var info swoole.ClientInfo
				a.ok("GET", "/api/get_client_info", url.Values{"session_id": {strconv.FormatInt(fd, 10)}}, &info)
				if want := c.c.LocalAddr().(*net.TCPAddr).Port; info.RemotePort != want || info.ServerPort != ms.Port {
					t.Errorf("get_client_info(%d): remote_port %d server_port %d, want %d, %d", fd, info.RemotePort, info.ServerPort, want, ms.Port)
				}
				// The same in a JSON body.
				status, body := a.do("POST", "/api/get_client_info", []byte(`{"session_id": `+strconv.FormatInt(fd, 10)+`}`), "application/json")
				if status != 200 || !bytes.Contains(body, []byte(`"remote_port":`+strconv.Itoa(info.RemotePort))) {
					t.Errorf("get_client_info with a JSON body: HTTP %d %s", status, body)
				}
				if _, r := a.api("GET", "/api/get_client_info", nil); r.Code != 4003 {
					t.Errorf("get_client_info without session_id: code %d, want 4003", r.Code)
				}
			})

			t.Run("all", func(t *testing.T) {
				var all map[string]adminReply
				a.ok("GET", "/api/getpid/all", nil, &all)
				want := []string{"master"}
				if !single {
					want = append(want, "manager")
				}
				for i := range mode.workers {
					want = append(want, "worker-"+strconv.Itoa(i))
				}
				for i := range tasks {
					want = append(want, "task_worker-"+strconv.Itoa(i))
				}
				var got []string
				for name, r := range all {
					got = append(got, name)
					if r.Code != 0 {
						t.Errorf("getpid/all: %s answered code %d: %s", name, r.Code, r.Data)
					}
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("getpid/all names %v, want %v", got, want)
				}
				var workers map[string]adminReply
				a.ok("GET", "/api/getpid/all_worker", nil, &workers)
				if len(workers) != mode.workers {
					t.Errorf("getpid/all_worker: %d replies, want %d", len(workers), mode.workers)
				}
				var tw map[string]adminReply
				a.ok("GET", "/api/getpid/all_task_worker", nil, &tw)
				if len(tw) != tasks {
					t.Errorf("getpid/all_task_worker: %d replies, want %d", len(tw), tasks)
				}
			})

			t.Run("user command", func(t *testing.T) {
				status, body := a.do("POST", "/api/raw_echo/worker-"+strconv.Itoa(mode.workers-1), []byte(`{"x":1}`), "application/json")
				if status != 200 || string(body) != `raw:{"x":1}` {
					t.Errorf("raw_echo: HTTP %d %q, want 200 %q (the callback's bytes)", status, body, `raw:{"x":1}`)
				}
				status, body = a.do("GET", "/api/raw_echo?a=b", nil, "")
				if status != 200 || string(body) != `raw:{"a":"b"}` {
					t.Errorf("raw_echo GET: HTTP %d %q, want %q", status, body, `raw:{"a":"b"}`)
				}
			})

			t.Run("unknown command", func(t *testing.T) {
				for _, proc := range []string{"master", "worker-0"} {
					_, r := a.api("GET", "/api/no_such_command/"+proc, nil)
					if r.Code != 9012 {
						t.Errorf("no_such_command on %s: code %d %s, want 9012", proc, r.Code, r.Data)
					}
				}
				a.denied("GET", "/api/server_stats/reactor-x", nil, "bad process")
				a.denied("GET", "/api/server_stats/worker-0/x", nil, "bad path")
			})

			t.Run("POST only", func(t *testing.T) {
				for _, cmd := range []string{"server_reload", "server_shutdown", "close_session"} {
					a.denied("GET", "/api/"+cmd, url.Values{"session_id": {"1"}}, "GET of a POST-only command")
				}
				c := ms.dial()
				defer c.c.Close()
				if f := c.do("echo still"); len(f) != 1 || f[0] != "still" {
					t.Fatalf("the server after refused GETs: %q", f)
				}
			})

			t.Run("close_session", func(t *testing.T) {
				c := ms.dial()
				_, _, fd := c.who()
				a.ok("POST", "/api/close_session", url.Values{"session_id": {strconv.FormatInt(fd, 10)}}, nil)
				if l, err := c.readLine(); err == nil {
					t.Fatalf("after close_session the client read %q, want EOF", l)
				}
				_, r := a.api("POST", "/api/close_session", url.Values{"session_id": {strconv.FormatInt(fd, 10)}})
				if r.Code != 4004 {
					t.Errorf("close_session of a closed session: code %d %s, want 4004", r.Code, r.Data)
				}
			})

			t.Run("metrics", func(t *testing.T) {
				// Only the three connections below are open (the others closed).
				var st swoole.Stats
				deadline := time.Now().Add(mpTimeout)
				for a.ok("GET", "/api/server_stats", nil, &st); st.ConnectionNum != 0; a.ok("GET", "/api/server_stats", nil, &st) {
					if time.Now().After(deadline) {
						t.Fatalf("connection_num is %d, want 0 once the earlier clients closed", st.ConnectionNum)
					}
					time.Sleep(50 * time.Millisecond) // polls below the rate limit
				}
				for range 3 {
					c := ms.dial()
					defer c.c.Close()
					c.who()
				}
				fams := a.scrape()
				a.ok("GET", "/api/server_stats", nil, &st)
				conn := fams["goswoole_connection_num"]
				if conn == nil || conn.kind != "GAUGE" || conn.values[""] != 3 || st.ConnectionNum != 3 {
					t.Fatalf("goswoole_connection_num %+v, Stats connection_num %d; want a gauge of 3 and 3", conn, st.ConnectionNum)
				}
				acc := fams["goswoole_accept_total"]
				if acc == nil || acc.kind != "COUNTER" || acc.values[""] != float64(st.AcceptCount) {
					t.Errorf("goswoole_accept_total %+v, Stats accept_count %d", acc, st.AcceptCount)
				}
				pids := fams["goswoole_process_pid"]
				for id := range mode.workers {
					key := "process=worker-" + strconv.Itoa(id) + ",type=worker"
					if pids == nil || pids.values[key] != float64(workerPID[id]) {
						t.Errorf("goswoole_process_pid{%s} = %v, want %d", key, pids, workerPID[id])
					}
				}
				var reqs float64
				for _, v := range fams["goswoole_worker_request_total"].values {
					reqs += v
				}
				if reqs < 3 || fams["goswoole_worker_request_total"].kind != "COUNTER" {
					t.Errorf("goswoole_worker_request_total sums to %v, want at least the 3 requests", reqs)
				}
				if fams["go_goroutines"] == nil || fams["process_resident_memory_bytes"] == nil {
					t.Errorf("/metrics has no Go runtime metrics (go_goroutines, process_resident_memory_bytes)")
				}
			})

			t.Run("reload", func(t *testing.T) {
				c := ms.dial()
				_, oldPID, _ := c.who()
				status, r := a.api("POST", "/api/server_reload", nil)
				if single {
					// One process has no manager to restart its worker: refused, nothing changes.
					if status != 200 || r.Code != swoole.ErrOperationNotSupport {
						t.Fatalf("server_reload with one process: HTTP %d code %d %s, want code %d", status, r.Code, r.Data, swoole.ErrOperationNotSupport)
					}
					if f := c.do("echo after"); len(f) != 1 || f[0] != "after" {
						t.Fatalf("after the refused reload: %q", f)
					}
					return
				}
				if status != 200 || r.Code != 0 {
					t.Fatalf("server_reload: HTTP %d code %d %s", status, r.Code, r.Data)
				}
				ms.eventually("every worker replaced", func() bool {
					n := 0
					for _, e := range ms.events() {
						if e.Name == "workerstart" && e.int(0) < mode.workers {
							n++
						}
					}
					return n >= 2*mode.workers
				})
				if mode.name == "process" {
					// ModeProcess: the master holds the connection; a new worker serves it.
					var pid int
					ms.eventually("the connection served by a new worker", func() bool {
						_, pid, _ = c.who()
						return pid != oldPID
					})
					if f := c.do("echo kept"); len(f) != 1 || f[0] != "kept" {
						t.Fatalf("the connection after the reload: %q", f)
					}
					return
				}
				// ModeBase: a reloaded worker's connections close (as in Swoole); new ones work.
				if l, err := c.readLine(); err == nil {
					t.Fatalf("ModeBase: after the reload the old connection read %q, want EOF", l)
				}
				c2 := ms.dial()
				if _, pid, _ := c2.who(); pid == oldPID {
					t.Fatalf("a new connection is served by the old worker %d", pid)
				}
			})

			t.Run("shutdown", func(t *testing.T) {
				a.ok("POST", "/api/server_shutdown", nil, nil)
				if st := ms.wait(mpTimeout); !st.Success() {
					t.Fatalf("the server exited with %v after server_shutdown", st)
				}
			})
		})
	}
}
