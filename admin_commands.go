package swoole

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The admin server's built-in commands (Swoole's names, Go meanings). Start registers them
// in every process of a server with admin_server set, for every process type, unless the
// program registered a command of the same name (its own wins). Each returns Swoole's
// {"code": 0, "data": ...}; a bad request {"code": 4003, "data": "why"}.
//
//	server_stats             Stats()
//	server_setting           the settings in force, plus mode, host, port, master_pid, manager_pid (the admin secret hidden)
//	get_client_info          GetClientInfo(session_id)
//	close_session            Close(session_id, force)             POST only
//	get_worker_info          this process: id, pid, memory, goroutines, timers, /proc/self/status
//	get_timer_list           this process's timers (Tick, After)
//	get_server_cpu_usage     CPU time of every process of the server (clock ticks, as Swoole)
//	get_server_memory_usage  resident memory of every process of the server (bytes)
//	get_version_info         OS, goswoole and Go versions, an address of the host
//	coroutine_stats          goroutine counts (Go's coroutines)
//	coroutine_list           every goroutine's stack
//	gc_status                Go runtime memory and GC statistics
//	getpid, memory_usage     this process's pid; its heap and resident memory
//	get_process_list         goswoole's: AdminStats (Stats, master and manager pids, every process's pid and status)
//	server_reload            Reload(only_task)                    POST only
//	server_shutdown          Shutdown()                           POST only
var adminBuiltins = map[string]func(s *Server, data []byte) []byte{
	"server_stats":            adminServerStats,
	"server_setting":          adminServerSetting,
	"get_client_info":         adminGetClientInfo,
	"close_session":           adminCloseSession,
	"get_worker_info":         adminGetWorkerInfo,
	"get_timer_list":          adminGetTimerList,
	"get_server_cpu_usage":    adminCPUUsage,
	"get_server_memory_usage": adminMemoryUsage,
	"get_version_info":        adminVersionInfo,
	"coroutine_stats":         adminCoroutineStats,
	"coroutine_list":          adminCoroutineList,
	"gc_status":               adminGCStatus,
	"getpid":                  func(*Server, []byte) []byte { return adminOK(map[string]int{"pid": os.Getpid()}) },
	"memory_usage":            adminMemoryUsageSelf,
	"get_process_list":        func(s *Server, _ []byte) []byte { return adminOK(s.adminStats()) },
	"server_reload":           adminServerReload,
	"server_shutdown":         adminServerShutdown,
}

// goswooleVersion is goswoole's version, as get_version_info reports it.
const goswooleVersion = "0.1.0"

// registerAdminCommands adds the built-in commands (prepare, s.mu held).
func (s *Server) registerAdminCommands() {
	if s.given.AdminServer == "" {
		return
	}
	if s.commands == nil {
		s.commands = map[string]command{}
	}
	const all = CommandMaster | CommandManager | CommandEventWorker | CommandTaskWorker
	for name, fn := range adminBuiltins {
		if _, mine := s.commands[name]; !mine {
			s.commands[name] = command{types: all, fn: fn}
		}
	}
}

// adminOK is Swoole's reply {"code": 0, "data": data}.
func adminOK(data any) []byte { return adminReply(0, data) }

func adminReply(code int, data any) []byte {
	b, err := json.Marshal(map[string]any{"code": code, "data": data})
	if err != nil {
		b, _ = json.Marshal(map[string]any{"code": ErrInvalidParams, "data": "cannot encode the reply: " + err.Error()})
	}
	return b
}

// adminFail is the reply for a Server call that failed.
func adminFail(err error) []byte {
	b := adminErrorBody(err)
	return adminReply(b["code"].(int), b["data"])
}

// adminSession reads session_id (a number or a numeric string) and force from a command's data.
func adminSession(data []byte) (fd int64, force bool, ok bool) {
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return 0, false, false
	}
	switch v := m["session_id"].(type) {
	case float64:
		fd = int64(v)
	case string:
		fd, _ = strconv.ParseInt(v, 10, 64)
	}
	switch v := m["force"].(type) {
	case bool:
		force = v
	case string:
		force = v != "" && v != "0" && v != "false"
	case float64:
		force = v != 0
	}
	return fd, force, fd > 0
}

func adminServerStats(s *Server, _ []byte) []byte { return adminOK(s.Stats()) }

func adminServerSetting(s *Server, _ []byte) []byte {
	m := s.Setting().toMap()
	for k, v := range m {
		if v != nil {
			if _, isString := v.(string); !isString && !isJSONScalar(v) {
				m[k] = "(func)" // dispatch_func, package_length_func: set, not shown
			}
		}
	}
	if a, err := parseAdminServer(s.eff.AdminServer); err == nil {
		m["admin_server"] = a.redacted()
	}
	m["mode"] = int(s.mode)
	if len(s.ports) > 0 {
		m["host"], m["port"] = s.ports[0].host, s.ports[0].port
	}
	m["master_pid"], m["manager_pid"] = s.GetMasterPID(), s.GetManagerPID()
	return adminOK(m)
}

func isJSONScalar(v any) bool {
	switch v.(type) {
	case bool, int, int64, float64, string:
		return true
	}
	return false
}

func adminGetClientInfo(s *Server, data []byte) []byte {
	fd, _, ok := adminSession(data)
	if !ok {
		return adminReply(adminCodeDenied, "require session_id")
	}
	info, err := s.GetClientInfo(fd, -1, true)
	if err != nil {
		return adminFail(err)
	}
	return adminOK(info)
}

func adminCloseSession(s *Server, data []byte) []byte {
	fd, force, ok := adminSession(data)
	if !ok {
		return adminReply(adminCodeDenied, "require session_id")
	}
	if err := s.Close(fd, force); err != nil {
		code := ErrSystemCallFail
		if e, ok := err.(*Error); ok {
			code = e.Code
		}
		return adminReply(adminCodeNotFound, map[string]any{"error": code, "message": strings.TrimPrefix(err.Error(), "swoole: ")})
	}
	return adminOK([]any{})
}

func adminGetWorkerInfo(s *Server, _ []byte) []byte {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	timers := 0
	if w, err := s.timerWorker("get_worker_info"); err == nil {
		w.onLoop(func() { timers = len(w.timers.List(userTimer)) })
	}
	return adminOK(map[string]any{
		"id":                s.GetWorkerID(),
		"pid":               os.Getpid(),
		"gc_status":         gcStatus(&ms),
		"memory_usage":      ms.HeapAlloc,
		"memory_real_usage": procRSS(os.Getpid()),
		"process_status":    procStatus(os.Getpid()),
		"coroutine_stats":   map[string]any{"goroutine_num": runtime.NumGoroutine()},
		"timer_stats":       map[string]any{"num": timers},
	})
}

func adminGetTimerList(s *Server, _ []byte) []byte {
	w, err := s.timerWorker("get_timer_list")
	if err != nil {
		return adminFail(err)
	}
	list := []any{}
	w.onLoop(func() {
		now := w.loop.Now()
		for _, t := range w.timers.List(userTimer) {
			list = append(list, map[string]any{"id": t.ID, "info": map[string]any{
				"exec_msec": max(t.Deadline-now, 0) / int64(time.Millisecond),
				"interval":  t.Interval.Milliseconds(),
				"removed":   false,
			}})
		}
	})
	return adminOK(list)
}

// adminProcesses names every process of the server and its pid (0: none now), as the usage
// commands report them: master and manager (0 when there is none: ModeBase has no master,
// as in Swoole; a ModeProcess master does the manager's work), then worker-N for every
// worker and task worker (Swoole's numbering).
func (s *Server) adminProcesses() (names []string, pids []int) {
	master, manager := 0, s.GetManagerPID()
	if s.mode == ModeProcess {
		master, manager = s.GetMasterPID(), 0 // the master does the manager's work
	}
	names, pids = []string{"master", "manager"}, []int{master, manager}
	for i := range s.eff.WorkerNum + s.eff.TaskWorkerNum {
		names = append(names, "worker-"+strconv.Itoa(i))
		pids = append(pids, max(s.GetWorkerPID(i), 0))
	}
	return names, pids
}

// perProcess maps every process's name to what of returns for its pid, with their "total".
func (s *Server) perProcess(of func(pid int) int64) map[string]any {
	names, pids := s.adminProcesses()
	out := map[string]any{}
	var total int64
	for i, name := range names {
		v := of(pids[i])
		out[name] = v
		total += v
	}
	out["total"] = total
	return out
}

func adminCPUUsage(s *Server, _ []byte) []byte {
	out := s.perProcess(procCPUTicks)
	out["cpu_num"] = runtime.NumCPU()
	return adminOK(out)
}

func adminMemoryUsage(s *Server, _ []byte) []byte {
	out := s.perProcess(procRSS)
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		out["memory_size"] = int64(si.Totalram) * int64(si.Unit)
	}
	return adminOK(out)
}

func adminMemoryUsageSelf(*Server, []byte) []byte {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return adminOK(map[string]any{"usage": ms.HeapAlloc, "real_usage": procRSS(os.Getpid())})
}

func adminVersionInfo(*Server, []byte) []byte {
	var u unix.Utsname
	osName := runtime.GOOS
	if unix.Uname(&u) == nil {
		osName = unix.ByteSliceToString(u.Sysname[:]) + "-" + unix.ByteSliceToString(u.Release[:])
	}
	return adminOK(map[string]any{"os": osName, "swoole": goswooleVersion, "goswoole": goswooleVersion, "go": runtime.Version(), "ip": hostIP()})
}

// hostIP is an address of this host: the first global unicast one, else the first private
// one, else "".
func hostIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	var private string
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() || !n.IP.IsGlobalUnicast() {
			continue
		}
		if !n.IP.IsPrivate() {
			return n.IP.String()
		}
		if private == "" {
			private = n.IP.String()
		}
	}
	return private
}

func adminCoroutineStats(s *Server, _ []byte) []byte {
	st := s.Stats()
	return adminOK(map[string]any{
		"goroutine_num":      runtime.NumGoroutine(),
		"coroutine_num":      st.CoroutineNum,
		"coroutine_peak_num": st.CoroutinePeekNum,
	})
}

// adminCoroutineList is every goroutine of this process: id, state and stack.
func adminCoroutineList(*Server, []byte) []byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) || len(buf) >= 64<<20 {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	list := []any{}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		head, stack, _ := bytes.Cut(g, []byte("\n"))
		// "goroutine 18 [running]:"
		f := strings.Fields(strings.TrimSuffix(string(head), ":"))
		if len(f) < 3 || f[0] != "goroutine" {
			continue
		}
		id, _ := strconv.Atoi(f[1])
		state := strings.Trim(strings.Join(f[2:], " "), "[]")
		list = append(list, map[string]any{"id": id, "state": state, "backTrace": string(stack)})
	}
	return adminOK(list)
}

func adminGCStatus(*Server, []byte) []byte {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return adminOK(gcStatus(&ms))
}

func gcStatus(ms *runtime.MemStats) map[string]any {
	return map[string]any{
		"runs":            ms.NumGC,
		"forced":          ms.NumForcedGC,
		"pause_total_ns":  ms.PauseTotalNs,
		"gc_cpu_fraction": ms.GCCPUFraction,
		"next_gc":         ms.NextGC,
		"last_gc":         ms.LastGC,
		"heap_alloc":      ms.HeapAlloc,
		"heap_sys":        ms.HeapSys,
		"heap_idle":       ms.HeapIdle,
		"heap_inuse":      ms.HeapInuse,
		"heap_objects":    ms.HeapObjects,
		"total_alloc":     ms.TotalAlloc,
		"mallocs":         ms.Mallocs,
		"frees":           ms.Frees,
		"sys":             ms.Sys,
		"stack_inuse":     ms.StackInuse,
	}
}

func adminServerReload(s *Server, data []byte) []byte {
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	onlyTask := false
	switch v := m["only_task"].(type) {
	case bool:
		onlyTask = v
	case string:
		onlyTask = v == "1" || v == "true"
	}
	if err := s.Reload(onlyTask); err != nil {
		return adminFail(err)
	}
	return adminOK("Operation succeeded")
}

func adminServerShutdown(s *Server, _ []byte) []byte {
	if err := s.Shutdown(); err != nil {
		return adminFail(err)
	}
	return adminOK("Operation succeeded")
}

// procStatus is /proc/<pid>/status as a map (the process's own numbers, Swoole's
// process_status).
func procStatus(pid int) map[string]string {
	m := map[string]string{}
	if pid <= 0 {
		return m
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// procRSS is the resident memory of pid in bytes (0 when it is gone).
func procRSS(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// procCPUTicks is the CPU time of pid, user plus system, in clock ticks (0 when it is gone).
func procCPUTicks(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces and parentheses: the fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return utime + stime
}
