package main

// goswoole top: a live view of a running server through its admin server (admin_server),
// refreshed each second, drawn with Bubble Tea (github.com/charmbracelet/bubbletea).

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/goswoole/swoole"
)

const topHelp = `Shows a running server's processes (pid, status, requests, dispatch count, CPU, resident
memory), its connections and its task queue, refreshed every --interval, from its admin
server. Keys: r reloads the workers (POST server_reload), q quits.`

// clockTicks is USER_HZ, the unit of get_server_cpu_usage (clock ticks, as Swoole).
const clockTicks = 100

// top runs goswoole top; it returns the exit code.
func top(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("goswoole top", flag.ContinueOnError)
	fs.SetOutput(stderr)
	adminAddr := fs.String("admin", os.Getenv("GOSWOOLE_ADMIN"), "the server's admin_server, [user:secret@]host:port (default $GOSWOOLE_ADMIN)")
	token := fs.String("token", "", "the X-Admin-Server-Access-Token to send (hex sha1(user+secret)), instead of user:secret@ in --admin")
	interval := fs.Duration("interval", time.Second, "how often the view is refreshed")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: goswoole top --admin [user:secret@]host:port [--token T]\n\n%s\n\nFlags:\n", topHelp)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *adminAddr == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "goswoole top: give the server's admin server: goswoole top --admin [user:secret@]host:port")
		return exitUsage
	}
	if *interval <= 0 {
		fmt.Fprintln(stderr, "goswoole top: --interval must be positive")
		return exitUsage
	}
	t, err := parseAdminFlag(*adminAddr)
	if err != nil {
		fmt.Fprintf(stderr, "goswoole top: %v\n", err)
		return exitUsage
	}
	if *token != "" {
		t.token = *token
	}
	// One look before the screen is taken: a wrong address or token is an error message and
	// exit 1, not a screen that only says so.
	first := fetchTop(t)
	if first.err != nil {
		fmt.Fprintf(stderr, "goswoole top: %v\n", first.err)
		return exitError
	}
	m := &topModel{target: t, interval: *interval, snap: first}
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithOutput(stdout))
	if _, err := p.Run(); err != nil {
		fmt.Fprintf(stderr, "goswoole top: %v\n", err)
		return exitError
	}
	return exitOK
}

// topProc is one row of the view.
type topProc struct {
	name     string // master, manager, worker-N
	kind     string // worker, task, process; "" for the master and the manager
	pid      int
	status   int
	requests int64
	dispatch int64
	cpuTicks int64
	rss      int64
}

// topSnapshot is what one refresh read.
type topSnapshot struct {
	at    time.Time
	stats swoole.Stats
	procs []topProc
	err   error
}

// fetchTop asks the admin server for the process list, each worker's stats, and every
// process's CPU time and resident memory.
func fetchTop(t adminTarget) topSnapshot {
	snap := topSnapshot{at: time.Now()}
	data, err := t.call(http.MethodGet, "get_process_list", nil)
	if err != nil {
		snap.err = err
		return snap
	}
	var st swoole.AdminStats
	if err := json.Unmarshal(data, &st); err != nil {
		snap.err = adminError(fmt.Sprintf("the admin server's answer is not stats: %v", err))
		return snap
	}
	snap.stats = st.Stats
	var cpu, mem map[string]json.Number
	if d, err := t.call(http.MethodGet, "get_server_cpu_usage", nil); err == nil {
		_ = json.Unmarshal(d, &cpu)
	}
	if d, err := t.call(http.MethodGet, "get_server_memory_usage", nil); err == nil {
		_ = json.Unmarshal(d, &mem)
	}
	workers := map[string]swoole.Stats{}
	if d, err := t.call(http.MethodGet, "server_stats/all_worker", nil); err == nil {
		_ = json.Unmarshal(d, &workers)
	}
	num := func(m map[string]json.Number, k string) int64 {
		n, _ := m[k].Int64()
		return n
	}
	// ModeBase's master is worker 0 (Swoole's BASE), ModeProcess's does the manager's work:
	// a row of its own only when it is a process of its own.
	if st.MasterPID > 0 && !slices.ContainsFunc(st.Processes, func(p swoole.AdminProcess) bool { return p.PID == st.MasterPID }) {
		snap.procs = append(snap.procs, topProc{name: "master", pid: st.MasterPID, cpuTicks: num(cpu, "master"), rss: num(mem, "master")})
	}
	if st.ManagerPID > 0 && st.ManagerPID != st.MasterPID {
		snap.procs = append(snap.procs, topProc{name: "manager", pid: st.ManagerPID, cpuTicks: num(cpu, "manager"), rss: num(mem, "manager")})
	}
	for _, p := range st.Processes {
		name := "worker-" + strconv.Itoa(p.ID)
		tp := topProc{name: name, kind: p.Kind, pid: p.PID, status: p.Status, cpuTicks: num(cpu, name), rss: num(mem, name)}
		if ws, ok := workers[name]; ok {
			tp.requests, tp.dispatch = ws.WorkerRequestCount, ws.WorkerDispatchCount
		}
		snap.procs = append(snap.procs, tp)
	}
	return snap
}

// Messages of the view.
type (
	topTick     time.Time
	topFetched  topSnapshot
	topReloaded struct{ err error }
)

// topModel is the Bubble Tea model of goswoole top.
type topModel struct {
	target   adminTarget
	interval time.Duration
	snap     topSnapshot
	prev     topSnapshot // the refresh before, for CPU percentages
	note     string      // the last action's result
	width    int
}

func (m *topModel) tick() tea.Cmd {
	return tea.Tick(m.interval, func(t time.Time) tea.Msg { return topTick(t) })
}

func (m *topModel) Init() tea.Cmd { return m.tick() }

func (m *topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "ctrl+c", "esc":
			return m, tea.Quit
		case "r":
			m.note = "reload requested..."
			t := m.target
			return m, func() tea.Msg {
				_, err := t.call(http.MethodPost, "server_reload", nil)
				return topReloaded{err}
			}
		}
	case tea.WindowSizeMsg:
		m.width = msg.Width
	case topTick:
		t := m.target
		return m, func() tea.Msg { return topFetched(fetchTop(t)) }
	case topFetched:
		if msg.err == nil {
			m.prev, m.snap = m.snap, topSnapshot(msg)
		} else {
			m.snap.err = msg.err
		}
		return m, m.tick()
	case topReloaded:
		if msg.err != nil {
			m.note = "reload: " + msg.err.Error()
		} else {
			m.note = "reload requested at " + time.Now().Format("15:04:05")
		}
	}
	return m, nil
}

func (m *topModel) View() string {
	var b strings.Builder
	s := m.snap
	st := s.stats
	fmt.Fprintf(&b, "goswoole top  %s  %s   r: reload  q: quit\n", m.target.base, s.at.Format("15:04:05"))
	if s.err != nil {
		fmt.Fprintf(&b, "error: %v\n", s.err)
	}
	fmt.Fprintf(&b, "connections %d  accepted %d  closed %d  aborted %d  requests %d  dispatched %d\n",
		st.ConnectionNum, st.AcceptCount, st.CloseCount, st.AbortCount, st.RequestCount, st.DispatchCount)
	fmt.Fprintf(&b, "workers %d (idle %d)  task workers %d (idle %d)  task queue %d (%s)  tasking %d  user processes %d\n",
		st.WorkerNum, st.IdleWorkerNum, st.TaskWorkerNum, st.TaskIdleWorkerNum, st.TaskQueueNum, humanBytes(st.TaskQueueBytes), st.TaskingNum, st.UserWorkerNum)
	if m.note != "" {
		b.WriteString(m.note + "\n")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "%-14s %-8s %8s %-8s %10s %10s %6s %9s\n", "PROCESS", "KIND", "PID", "STATUS", "REQUESTS", "DISPATCH", "CPU%", "RSS")
	prev := map[string]topProc{}
	for _, p := range m.prev.procs {
		prev[p.name] = p
	}
	procs := append([]topProc(nil), s.procs...)
	sort.SliceStable(procs, func(i, j int) bool { return rank(procs[i].name) < rank(procs[j].name) })
	for _, p := range procs {
		cpu := "-"
		if q, ok := prev[p.name]; ok && q.pid == p.pid && !m.prev.at.IsZero() {
			if dt := s.at.Sub(m.prev.at).Seconds(); dt > 0 {
				cpu = fmt.Sprintf("%.1f", float64(p.cpuTicks-q.cpuTicks)/clockTicks/dt*100)
			}
		}
		status := "-"
		if p.kind != "" {
			status = statusName(p.status)
		}
		kind := p.kind
		if kind == "" {
			kind = "-"
		}
		fmt.Fprintf(&b, "%-14s %-8s %8d %-8s %10d %10d %6s %9s\n", p.name, kind, p.pid, status, p.requests, p.dispatch, cpu, humanBytes(p.rss))
	}
	return b.String()
}

// rank orders the rows: master, manager, then processes by global id.
func rank(name string) int {
	switch name {
	case "master":
		return -2
	case "manager":
		return -1
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(name, "worker-"))
	return n
}

// humanBytes writes n bytes with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	d, e := int64(unit), 0
	for x := n / unit; x >= unit; x /= unit {
		d *= unit
		e++
	}
	return fmt.Sprintf("%.1f%c", float64(n)/float64(d), "KMGTPE"[e])
}
