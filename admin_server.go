package swoole

import (
	"context"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The admin server (setting admin_server): Swoole's HTTP admin API, served by the master (the
// manager in ModeBase with workers, the process itself with one process) with net/http on
// goroutines of its own, never on a reactor.
//
//	GET|POST /api/{command}[/{process}]  runs command with Command's machinery in process
//	GET      /metrics                    Prometheus text exposition (metrics.go)
//
// process is master (the default), manager, worker-N, event_worker-N, task_worker-N,
// task-N, all, all_worker, all_event_worker, all_task_worker, all_task. A command answers
// with the bytes its callback returned (the built-in commands of admin_commands.go return
// {"code": 0, "data": ...}); all* answer {"code": 0, "data": {"<process>": <reply>, ...}};
// a failure of Command answers {"code": <its code>, "data": "<its message>"} (9012 for an
// unknown command).
//
// Security, beyond Swoole's: the address is loopback unless it says otherwise, and one that
// is not needs user:secret@ (Start refuses otherwise); the token is compared in constant
// time; without a token, requests that name a host other than a loopback one (DNS
// rebinding) or come from a web page of another origin (CSRF) are refused; bodies are
// limited to adminMaxBody, headers to adminMaxHeader, and the whole server to
// adminRateBurst requests at once and adminRatePerSec a second after that. No command reads
// a file named by the request.

// The admin server's limits.
const (
	adminMaxBody    = 64 << 10 // bytes of a request body
	adminMaxHeader  = 16 << 10 // bytes of the request line and headers
	adminRatePerSec = 100      // requests a second, sustained
	adminRateBurst  = 200      // requests at once
	// adminTokenHeader is the header that carries the access token (Swoole's name).
	adminTokenHeader = "X-Admin-Server-Access-Token"
)

// Swoole's admin reply codes.
const (
	adminCodeDenied   = 4003 // bad token, method, path or process
	adminCodeNotFound = 4004 // a session or path that does not exist
	adminCodeTooMany  = 4029 // the rate limit (goswoole's)
	adminCodeTooLarge = 4013 // the body is above adminMaxBody (goswoole's)
)

// adminPostOnly are the commands that change the server: POST only, as in Swoole.
var adminPostOnly = map[string]bool{"server_reload": true, "server_shutdown": true, "close_session": true}

// adminAddr is a parsed admin_server setting.
type adminAddr struct {
	user, secret string // both empty: no token
	host         string // never empty: 127.0.0.1 when the setting gave none
	port         int
	loopback     bool
}

// token is the access token requests must carry: hex sha1(user+secret), "" for none.
func (a adminAddr) token() string {
	if a.user == "" {
		return ""
	}
	sum := sha1.Sum([]byte(a.user + a.secret))
	return hex.EncodeToString(sum[:])
}

// hostPort is the address to listen on.
func (a adminAddr) hostPort() string { return net.JoinHostPort(a.host, strconv.Itoa(a.port)) }

// redacted is the setting with the secret hidden (server_setting, logs).
func (a adminAddr) redacted() string {
	if a.user == "" {
		return a.hostPort()
	}
	return a.user + ":***@" + a.hostPort()
}

// parseAdminServer parses "[user:secret@]host:port". An empty host means 127.0.0.1.
func parseAdminServer(v string) (adminAddr, error) {
	var a adminAddr
	if strings.HasPrefix(v, "unix:") || strings.HasPrefix(v, "/") {
		return a, fmt.Errorf("%q: a unix socket is not supported (as in Swoole); give [user:secret@]host:port", v)
	}
	hp := v
	if i := strings.LastIndexByte(v, '@'); i >= 0 {
		cred := v[:i]
		hp = v[i+1:]
		user, secret, ok := strings.Cut(cred, ":")
		if !ok || user == "" || secret == "" {
			return a, fmt.Errorf("%q: the credentials before @ must be user:secret, both non-empty", redactCred(v))
		}
		a.user, a.secret = user, secret
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		if _, e := strconv.Atoi(hp); e != nil {
			return a, fmt.Errorf("%q: give [user:secret@]host:port (%v)", redactCred(v), err)
		}
		host, port = "", hp // a port alone
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return a, fmt.Errorf("%q: the port %q is not a number from 0 to 65535", redactCred(v), port)
	}
	a.port = n
	switch {
	case host == "":
		a.host, a.loopback = "127.0.0.1", true
	case strings.EqualFold(host, "localhost"):
		a.host, a.loopback = "127.0.0.1", true
	default:
		a.host = host
		if ip, err := netip.ParseAddr(host); err == nil {
			a.loopback = ip.IsLoopback()
		}
	}
	return a, nil
}

// redactCred hides a secret in a setting quoted by an error.
func redactCred(v string) string {
	if i := strings.LastIndexByte(v, '@'); i >= 0 {
		if user, _, ok := strings.Cut(v[:i], ":"); ok {
			return user + ":***" + v[i:]
		}
	}
	return v
}

// checkAdminServer is the check Start makes before it serves anything: an admin server on an
// address that is not loopback must require a token.
func checkAdminServer(v string) error {
	if v == "" {
		return nil
	}
	a, err := parseAdminServer(v)
	if err != nil {
		return newError(ErrInvalidParams, "invalid setting admin_server (Settings.AdminServer): %v", err)
	}
	if !a.loopback && a.user == "" {
		return newError(ErrInvalidParams, "admin_server %q listens on %s, which is not a loopback address, without credentials: anyone who reaches it could read the server's state, close connections and shut it down. Give user:secret@%s (requests then need the X-Admin-Server-Access-Token header), or listen on 127.0.0.1", v, a.host, a.hostPort())
	}
	return nil
}

// adminServer is a running admin server.
type adminServer struct {
	s        *Server
	addr     adminAddr
	token    []byte // hex sha1, nil for none
	ln       net.Listener
	srv      *http.Server
	served   chan struct{} // closed when Serve returned
	started  bool          // startAdmin ran (set and read by the goroutine that runs Start)
	handlers sync.WaitGroup
	limit    rateLimit
	metrics  http.Handler // metrics.go; nil until first asked
	mOnce    sync.Once
}

// listenAdmin binds the admin server's port (Start, in the process that serves it: the
// single process, the manager or the master). It serves once startAdmin runs.
func (s *Server) listenAdmin() error {
	if s.eff.AdminServer == "" {
		return nil
	}
	a, err := parseAdminServer(s.eff.AdminServer)
	if err != nil {
		return newError(ErrInvalidParams, "invalid setting admin_server (Settings.AdminServer): %v", err)
	}
	ln := inheritedAdminListener(a.hostPort()) // the one the process Upgrade replaced served (handover.go)
	if ln == nil {
		if ln, err = net.Listen("tcp", a.hostPort()); err != nil {
			return wrapErrno("", err, "admin_server: cannot listen on %s: is the port taken?", a.hostPort())
		}
	}
	as := &adminServer{s: s, addr: a, ln: ln, served: make(chan struct{})}
	if t := a.token(); t != "" {
		as.token = []byte(t)
	}
	as.limit = rateLimit{perSec: adminRatePerSec, burst: adminRateBurst}
	as.srv = &http.Server{
		Handler:           as,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      time.Minute, // all* waits for every process (10 s each at most, in parallel)
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    adminMaxHeader,
	}
	s.admin = as
	return nil
}

// startAdmin starts serving (the server runs).
func (s *Server) startAdmin() {
	as := s.admin
	if as == nil {
		return
	}
	s.log.Info("swoole: admin server listening", "addr", as.ln.Addr().String(), "token", as.token != nil)
	as.started = true
	go func() {
		defer close(as.served)
		_ = as.srv.Serve(as.ln)
	}()
}

// stopAdmin stops the admin server: requests in progress may finish (a second at most),
// then every connection closes. It waits for its handlers and its goroutine. A listener
// that never served closes.
func (s *Server) stopAdmin() {
	as := s.admin
	if as == nil {
		return
	}
	s.admin = nil
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	if err := as.srv.Shutdown(ctx); err != nil {
		_ = as.srv.Close()
	}
	cancel()
	_ = as.ln.Close() // when Serve never ran
	as.handlers.Wait()
	if as.started {
		<-as.served
	}
}

// rateLimit is a token bucket shared by every request.
type rateLimit struct {
	mu     sync.Mutex
	perSec float64
	burst  float64
	tokens float64
	last   time.Time
}

func (r *rateLimit) allow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if r.last.IsZero() {
		r.tokens = r.burst
	} else {
		r.tokens = min(r.burst, r.tokens+now.Sub(r.last).Seconds()*r.perSec)
	}
	r.last = now
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}

// adminJSON writes {"code": code, "data": data} with the HTTP status.
func adminJSON(w http.ResponseWriter, status, code int, data any) {
	b, err := json.Marshal(map[string]any{"code": code, "data": data})
	if err != nil {
		b = []byte(`{"code":500,"data":"cannot encode the reply"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (as *adminServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	as.handlers.Add(1)
	defer as.handlers.Done()
	w.Header().Set("Server", "goswoole-admin-server")
	if !as.limit.allow() {
		w.Header().Set("Retry-After", "1")
		adminJSON(w, http.StatusTooManyRequests, adminCodeTooMany, fmt.Sprintf("too many requests: the admin server takes %d a second", adminRatePerSec))
		return
	}
	if as.token != nil {
		// Swoole's Dashboard calls from a browser: the token it must send keeps other pages out.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "X-ACCESS-TOKEN, X-ADMIN-SERVER-ACCESS-TOKEN, Content-Type")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	} else if msg := browserRefusal(r); msg != "" {
		adminJSON(w, http.StatusForbidden, adminCodeDenied, msg)
		return
	}
	if as.token != nil {
		got := []byte(strings.ToLower(r.Header.Get(adminTokenHeader)))
		if subtle.ConstantTimeCompare(got, as.token) != 1 {
			adminJSON(w, http.StatusForbidden, adminCodeDenied, "Bad access token: send header "+adminTokenHeader+": hex sha1(user+secret)")
			return
		}
	}
	if r.URL.Path == "/metrics" {
		as.serveMetrics(w, r)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if parts[0] != "api" {
		adminJSON(w, http.StatusNotFound, adminCodeNotFound, "not found: use /api/{command}/{process} or /metrics")
		return
	}
	if len(parts) < 2 || len(parts) > 3 || parts[1] == "" {
		adminJSON(w, http.StatusForbidden, adminCodeDenied, "Bad API path: use /api/{command} or /api/{command}/{process}")
		return
	}
	cmd := parts[1]
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		adminJSON(w, http.StatusMethodNotAllowed, adminCodeDenied, "Bad request method: GET or POST")
		return
	}
	if adminPostOnly[cmd] && r.Method != http.MethodPost {
		adminJSON(w, http.StatusForbidden, adminCodeDenied, "Bad request method: "+cmd+" changes the server and accepts POST only")
		return
	}
	data, err := adminRequestData(w, r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			adminJSON(w, http.StatusRequestEntityTooLarge, adminCodeTooLarge, fmt.Sprintf("the request body is above %d bytes", adminMaxBody))
			return
		}
		adminJSON(w, http.StatusBadRequest, adminCodeDenied, "Bad request: "+err.Error())
		return
	}
	process := "master"
	if len(parts) == 3 {
		process = parts[2]
	}
	as.runCommand(w, cmd, process, data)
}

// browserRefusal is why a request without a token is refused when it comes from a web page:
// another origin (a page that posts a form to 127.0.0.1, CSRF) or a host name that is not a
// loopback one (DNS rebinding). "" lets it through.
func browserRefusal(r *http.Request) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if !loopbackName(host) {
		return "Bad host: this admin server has no token and answers only requests addressed to a loopback host (set admin_server user:secret@ to allow others)"
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || !loopbackName(u.Hostname()) {
			return "Bad origin: this admin server has no token and refuses requests from web pages of other sites (set admin_server user:secret@ to allow them)"
		}
	}
	return ""
}

func loopbackName(host string) bool {
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// adminRequestData is the data a command receives, as Swoole passes it: a JSON body as it
// is, or else the request's form values (the query, and a POST's form body) as a JSON
// object of strings (a key given several times: an array).
func adminRequestData(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, adminMaxBody)
	if r.Method == http.MethodPost && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") &&
		!strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		if t := strings.TrimSpace(string(body)); t != "" {
			if !json.Valid(body) {
				return nil, errors.New("the body is neither JSON nor a form")
			}
			return body, nil
		}
	}
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	m := make(map[string]any, len(r.Form))
	for k, v := range r.Form {
		if len(v) == 1 {
			m[k] = v[0]
		} else {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// adminTarget is one process a command runs in.
type adminTarget struct {
	name string // master, manager, worker-N, task_worker-N
	typ  int
	id   int
}

// adminTargets resolves a process name of the API: one target, or several for all*. ok is
// false for a name the API does not know.
func (as *adminServer) adminTargets(process string) (targets []adminTarget, all, ok bool) {
	s := as.s
	workers := func() []adminTarget {
		var t []adminTarget
		for i := range s.eff.WorkerNum {
			t = append(t, adminTarget{"worker-" + strconv.Itoa(i), CommandEventWorker, i})
		}
		return t
	}
	tasks := func() []adminTarget {
		var t []adminTarget
		for i := range s.eff.TaskWorkerNum {
			t = append(t, adminTarget{"task_worker-" + strconv.Itoa(i), CommandTaskWorker, i})
		}
		return t
	}
	switch process {
	case "master":
		return []adminTarget{{"master", CommandMaster, 0}}, false, true
	case "manager":
		return []adminTarget{{"manager", CommandManager, 0}}, false, true
	case "all":
		t := []adminTarget{{"master", CommandMaster, 0}}
		if s.GetManagerPID() > 0 { // a single-process server has none
			t = append(t, adminTarget{"manager", CommandManager, 0})
		}
		return append(append(t, workers()...), tasks()...), true, true
	case "all_worker", "all_event_worker":
		return workers(), true, true
	case "all_task_worker", "all_task":
		return tasks(), true, true
	}
	kind, n, found := strings.Cut(process, "-")
	id, err := strconv.Atoi(n)
	if !found || err != nil || id < 0 {
		return nil, false, false
	}
	switch kind {
	case "worker", "event_worker":
		return []adminTarget{{process, CommandEventWorker, id}}, false, true
	case "task", "task_worker":
		return []adminTarget{{process, CommandTaskWorker, id}}, false, true
	}
	return nil, false, false
}

// runCommand runs cmd in process and writes the reply.
func (as *adminServer) runCommand(w http.ResponseWriter, cmd, process string, data []byte) {
	targets, all, ok := as.adminTargets(process)
	if !ok {
		adminJSON(w, http.StatusForbidden, adminCodeDenied, "Bad process "+strconv.Quote(process)+": use master, manager, worker-N, task_worker-N, all, all_worker or all_task_worker")
		return
	}
	if !all {
		reply, err := as.s.Command(cmd, targets[0].id, targets[0].typ, data)
		if err != nil {
			adminError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(reply)
		return
	}
	results := make([]json.RawMessage, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			reply, err := as.s.Command(cmd, t.id, t.typ, data)
			var b []byte
			switch {
			case err != nil:
				b, _ = json.Marshal(adminErrorBody(err))
			case json.Valid(reply):
				b = reply
			default:
				b, _ = json.Marshal(string(reply))
			}
			results[i] = b
		})
	}
	wg.Wait()
	m := make(map[string]json.RawMessage, len(targets))
	for i, t := range targets {
		m[t.name] = results[i]
	}
	adminJSON(w, http.StatusOK, 0, m)
}

// adminErrorBody is {"code": <Swoole's code>, "data": "<message>"} for a failed Command.
func adminErrorBody(err error) map[string]any {
	code, msg := ErrSystemCallFail, err.Error()
	var e *Error
	if errors.As(err, &e) {
		code, msg = e.Code, strings.TrimPrefix(e.Msg, "swoole: ")
	}
	return map[string]any{"code": code, "data": msg}
}

// adminError writes a failed Command's reply: HTTP 200 with Swoole's code, as Swoole does.
func adminError(w http.ResponseWriter, err error) {
	b := adminErrorBody(err)
	adminJSON(w, http.StatusOK, b["code"].(int), b["data"])
}
