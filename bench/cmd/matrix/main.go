// Command matrix runs the benchmark matrix (echo, idle and connect cells against the peers) and writes BENCHMARKS.md. bench/matrix.sh
// builds it with the servers and the load generator and runs it; see there for the usage.
//
// For every cell, every repetition and every server, it starts the server as a process of its
// own pinned to one core (taskset -c 0), runs cmd/load pinned to the other (taskset -c 1)
// with the server's pid so that the server's CPU time and memory are read from /proc over its
// process tree, and stops the server (SIGTERM): each run gets a fresh server. The servers of a
// cell take turns within each repetition (the first one rotating), so that a slow spell on the
// machine does not fall on one server's runs only. It also notes how busy the two cores were
// with other processes during each run (from /proc/stat, minus the server and the generator).
package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/goswoole/swoole/bench/load"
)

// cell is one configuration of the matrix.
type cell struct {
	Kind  string // echo, idle or connect
	Conns int    // echo: connections; idle: connections held; connect: workers
	Size  int    // message bytes
	Depth int    // echo: pipeline depth
}

func (c cell) String() string {
	switch c.Kind {
	case "echo":
		return fmt.Sprintf("echo C=%d S=%d P=%d", c.Conns, c.Size, c.Depth)
	case "idle":
		return fmt.Sprintf("idle N=%d", c.Conns)
	}
	return fmt.Sprintf("connect C=%d S=%d", c.Conns, c.Size)
}

// cells is the benchmark matrix: echo C = 1, 50, 1000 × S = 64, 4096 at P = 1, and C = 50, S =
// 64, P = 16; idle N for each of idleN; connect C = 50.
func cells(idleN []int) []cell {
	var cs []cell
	for _, c := range []int{1, 50, 1000} {
		for _, s := range []int{64, 4096} {
			cs = append(cs, cell{Kind: "echo", Conns: c, Size: s, Depth: 1})
		}
	}
	cs = append(cs, cell{Kind: "echo", Conns: 50, Size: 64, Depth: 16})
	for _, n := range idleN {
		cs = append(cs, cell{Kind: "idle", Conns: n, Size: 64})
	}
	return append(cs, cell{Kind: "connect", Conns: 50, Size: 64})
}

// result is one run: a server under one cell's load once.
type result struct {
	Cell     string      `json:"cell"`
	Server   string      `json:"server"`
	Rep      int         `json:"rep"`
	Report   load.Report `json:"report"`
	Procs    int         `json:"procs"`     // processes in the server's tree during the run
	LoadCPU  float64     `json:"load_cpu"`  // the generator's CPU seconds
	OtherPct float64     `json:"other_pct"` // % of all cores' time used by other processes
	Attempt  int         `json:"attempt"`   // 1, or more where earlier attempts were too noisy
	Wall     float64     `json:"wall"`      // seconds the generator ran
	Err      string      `json:"error,omitempty"`
}

type config struct {
	bin        string
	duration   time.Duration
	warmup     time.Duration
	reps       int
	servers    []string
	idleN      []int
	only       *regexp.Regexp
	serverCPU  string
	loadCPU    string
	pin        bool
	settle     time.Duration
	maxConn    int
	out        string
	raw        string
	notes      string
	cmdline    string
	maxOthers  float64  // a run where others used more of the cores (%) is repeated ...
	retries    int      // ... up to this many times
	php        string   // the php command, for the swoole-* rows
	swooleSO   string   // Swoole's extension (bench/swoole/build.sh prints its path)
	swooleEcho string   // bench/swoole/echo.php
	swooleVer  string   // what php said of Swoole and PHP, for the report
	skipped    []string // why servers asked for were left out (no PHP, no swoole.so)
}

// servers maps a server's name to its command and the flags of its own it takes after the
// common ones (serverArgs).
var servers = map[string]struct {
	bin    string
	extra  []string
	lines  int  // "listening on" lines it prints once it is up (0: 1); one per process
	swoole bool // real Swoole: php -d extension=SO bench/swoole/echo.php (bin unused)
}{
	"goswoole":    {bin: "swooleecho"},
	"goswoole-2w": {bin: "swooleecho", extra: []string{"-workers", "2"}, lines: 3},
	// ModeProcess: the master (reactor loops holding the connections) and 2 workers.
	"goswoole-proc": {bin: "swooleecho", extra: []string{"-mode", "process", "-workers", "2"}, lines: 3},
	"gnet":          {bin: "gnetecho"},
	"netstd":        {bin: "netecho"},
	// Not a peer: the least an epoll server can do per message (bench/servers/floor_linux.go).
	"floor": {bin: "floorecho"},
	// Not a peer either: the least an io_uring server can do (bench/servers/uring_linux.go).
	"uring": {bin: "uringecho"},
	// Not peers: the least a master + one worker process design spends per message, the
	// worker's messages crossing a socketpair or shared-memory rings
	// (bench/servers/procfloor_linux.go); the master prints the line once its worker runs.
	"procfloor":      {bin: "procfloorecho", extra: []string{"-transport", "socketpair"}},
	"procfloor-ring": {bin: "procfloorecho", extra: []string{"-transport", "ring"}},
	// The same floor with two workers, as goswoole-proc and swoole-process run: a client's
	// messages go to worker fd % 2 over that worker's own socketpair.
	"procfloor-2w": {bin: "procfloorecho", extra: []string{"-transport", "socketpair", "-workers", "2"}},
	// Real Swoole (bench/swoole/echo.php on the extension bench/swoole/build.sh builds): SWOOLE_BASE
	// with worker_num 1, one process; SWOOLE_PROCESS with 2 workers (a master with its reactor
	// thread, a manager and 2 workers; every worker prints its line).
	"swoole-base":    {swoole: true, extra: []string{"-mode", "base"}},
	"swoole-process": {swoole: true, extra: []string{"-mode", "process", "-workers", "2"}, lines: 2},
}

// serverNames is every row the matrix knows, for -servers' messages.
const serverNames = "goswoole, goswoole-2w, goswoole-proc, gnet, netstd, swoole-base, swoole-process, floor, uring, procfloor, procfloor-2w, procfloor-ring"

func main() {
	var cfg config
	flag.StringVar(&cfg.bin, "bin", "", "directory of the built commands (default: this executable's)")
	flag.DurationVar(&cfg.duration, "d", 3*time.Second, "measured time per echo and connect run")
	flag.DurationVar(&cfg.warmup, "w", 500*time.Millisecond, "unmeasured warmup before each echo and connect run")
	flag.IntVar(&cfg.reps, "r", 3, "repetitions of every cell (the tables show medians and min–max)")
	srvList := flag.String("servers", "goswoole,goswoole-2w,goswoole-proc,gnet,netstd,swoole-base,swoole-process", "servers, comma-separated (goswoole's ratios are to each of the others; goswoole-2w: ModeBase with 2 worker processes; goswoole-proc: ModeProcess, a master and 2 worker processes; swoole-base, swoole-process: real Swoole, SWOOLE_BASE with 1 worker and SWOOLE_PROCESS with 2, left out with a message where PHP or swoole.so is absent; also floor, uring, procfloor, procfloor-2w, procfloor-ring)")
	idle := flag.String("idle", "10000,max", "idle N values, comma-separated; max: the RLIMIT_NOFILE hard limit less -fd-margin")
	margin := flag.Int("fd-margin", 1000, "descriptors left for other uses under the hard limit, for idle N=max")
	only := flag.String("only", "", "run only the cells whose name matches this regexp (e.g. 'echo C=50 ')")
	flag.StringVar(&cfg.serverCPU, "server-cpu", "0", "taskset CPU list for the servers")
	flag.StringVar(&cfg.loadCPU, "load-cpu", "1", "taskset CPU list for the load generator")
	flag.BoolVar(&cfg.pin, "pin", true, "pin with taskset (false: nothing pinned)")
	flag.DurationVar(&cfg.settle, "settle", time.Second, "idle: wait after connecting before measuring")
	flag.IntVar(&cfg.maxConn, "maxconn", 0, "the servers' -maxconn (goswoole's max_connection; default: the hard limit)")
	flag.StringVar(&cfg.out, "out", "", "write the report (markdown) here (default: stdout)")
	flag.StringVar(&cfg.raw, "raw", "", "also write every run as a JSON line here")
	flag.StringVar(&cfg.notes, "notes", "", "a markdown file appended to the report as its notes")
	flag.Float64Var(&cfg.maxOthers, "max-others", 25, "repeat a run during which other processes used more than this % of the cores' time")
	flag.IntVar(&cfg.retries, "retries", 2, "repeat a noisy run (see -max-others) at most this many times; the last attempt is kept")
	flag.StringVar(&cfg.php, "php", "php", "the PHP command line interpreter, for the swoole-* rows")
	flag.StringVar(&cfg.swooleSO, "swoole-so", defaultSwooleSO(), "Swoole's extension for the swoole-* rows (bench/swoole/build.sh builds it and prints the path; default: $SWOOLE_SO, else where build.sh puts it)")
	flag.StringVar(&cfg.swooleEcho, "swoole-echo", "", "the Swoole echo server script (default: swoole/echo.php beside -bin's directory, i.e. bench/swoole/echo.php)")
	flag.StringVar(&cfg.cmdline, "cmdline", "", "the command that ran this, for the report (default: this command line)")
	flag.Parse()
	if flag.NArg() > 0 || cfg.reps < 1 || cfg.duration <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	if cfg.cmdline == "" {
		cfg.cmdline = strings.Join(os.Args, " ")
	}
	if cfg.bin == "" {
		exe, err := os.Executable()
		check(err)
		cfg.bin = filepath.Dir(exe)
	}
	if cfg.swooleEcho == "" {
		cfg.swooleEcho = filepath.Join(filepath.Dir(cfg.bin), "swoole", "echo.php")
	}
	cfg.servers = strings.Split(*srvList, ",")
	for _, s := range cfg.servers {
		if _, ok := servers[s]; !ok {
			fatalf("unknown server %q: use %s", s, serverNames)
		}
	}
	cfg.servers = checkSwoole(&cfg)
	if len(cfg.servers) == 0 {
		fatalf("no server left to run")
	}
	if *only != "" {
		var err error
		cfg.only, err = regexp.Compile(*only)
		check(err)
	}
	var rl syscall.Rlimit
	check(syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl))
	if cfg.maxConn == 0 {
		cfg.maxConn = int(min(rl.Max, 1<<20))
	}
	for _, f := range strings.Split(*idle, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if f == "max" {
			cfg.idleN = append(cfg.idleN, int(rl.Max)-*margin)
			continue
		}
		n, err := strconv.Atoi(f)
		check(err)
		cfg.idleN = append(cfg.idleN, n)
	}
	if cfg.pin {
		if _, err := exec.LookPath("taskset"); err != nil {
			fatalf("taskset not found (util-linux): install it, or run with -pin=false")
		}
	}

	m := &machine{}
	m.read(cfg.bin)
	started := time.Now()
	var results []result
	var raw *os.File
	if cfg.raw != "" {
		var err error
		raw, err = os.Create(cfg.raw)
		check(err)
		defer raw.Close()
	}
	todo := 0
	for _, c := range cells(cfg.idleN) {
		if cfg.only == nil || cfg.only.MatchString(c.String()) {
			todo += cfg.reps * len(cfg.servers)
		}
	}
	done := 0
	for _, c := range cells(cfg.idleN) {
		if cfg.only != nil && !cfg.only.MatchString(c.String()) {
			continue
		}
		for rep := range cfg.reps {
			for i := range cfg.servers {
				srv := cfg.servers[(i+rep)%len(cfg.servers)]
				done++
				var r result
				for attempt := 1; ; attempt++ {
					r = runOne(cfg, c, srv, rep+1)
					r.Attempt = attempt
					if r.Err != "" || r.OtherPct <= cfg.maxOthers || attempt > cfg.retries {
						break
					}
					fmt.Fprintf(os.Stderr, "[%d/%d %v] %s %s rep %d: others used %.0f%% of the cores; again in 5s\n", done, todo,
						time.Since(started).Round(time.Second), c, srv, rep+1, r.OtherPct)
					time.Sleep(5 * time.Second)
				}
				line, _ := json.Marshal(r)
				if raw != nil {
					fmt.Fprintln(raw, string(line))
				}
				fmt.Fprintf(os.Stderr, "[%d/%d %v] %s %s rep %d: %s\n", done, todo,
					time.Since(started).Round(time.Second), c, srv, rep+1, summary(r))
				results = append(results, r)
			}
		}
	}
	m.finish(started)

	var out bytes.Buffer
	writeReport(&out, cfg, m, results)
	if cfg.notes != "" {
		notes, err := os.ReadFile(cfg.notes)
		check(err)
		out.WriteString("\n")
		out.Write(notes)
	}
	if cfg.out == "" {
		os.Stdout.Write(out.Bytes())
		return
	}
	check(os.WriteFile(cfg.out, out.Bytes(), 0o644))
	fmt.Fprintf(os.Stderr, "wrote %s (%d runs in %v)\n", cfg.out, len(results), time.Since(started).Round(time.Second))
}

func summary(r result) string {
	if r.Err != "" {
		return "FAILED: " + r.Err
	}
	p := r.Report
	var s string
	switch p.Mode {
	case "echo":
		s = fmt.Sprintf("%.0f msgs/s, p99 %.0f µs, server %.2f µs/msg", p.PerSec, p.P99us, p.CPUPer)
	case "idle":
		s = fmt.Sprintf("%.0f B/conn (RSS %.1f → %.1f MB), opened in %.1fs", p.BytesPerConn,
			float64(p.RSSBefore)/1e6, float64(p.RSSAfter)/1e6, p.OpenSeconds)
	case "connect":
		s = fmt.Sprintf("%.0f conns/s, p99 %.0f µs, server %.1f µs/conn, %d errors", p.PerSec, p.P99us, p.CPUPer, p.Errors)
	}
	return fmt.Sprintf("%s; %d proc(s); others used %.0f%% of the 2 cores", s, r.Procs, r.OtherPct)
}

// serverArgs is srv's command line (after the binary): the same flags for every server, then
// those of its row (goswoole-2w: -workers 2; goswoole-proc: -mode process -workers 2).
func serverArgs(cfg config, srv string) []string {
	a := []string{"-addr", "127.0.0.1:0", "-nofile", "-maxconn", strconv.Itoa(cfg.maxConn), "-multicore"}
	return append(a, servers[srv].extra...)
}

// serverCommand is the program that runs srv and its arguments: a command in cfg.bin, or for
// the swoole-* rows php with Swoole's extension running bench/swoole/echo.php. Both take the
// same flags (serverArgs).
func serverCommand(cfg config, srv string) (string, []string) {
	if servers[srv].swoole {
		return cfg.php, append([]string{"-d", "extension=" + cfg.swooleSO, cfg.swooleEcho}, serverArgs(cfg, srv)...)
	}
	return filepath.Join(cfg.bin, servers[srv].bin), serverArgs(cfg, srv)
}

// defaultSwooleSO is where bench/swoole/build.sh puts Swoole's extension, unless $SWOOLE_SO
// names one.
func defaultSwooleSO() string {
	if so := os.Getenv("SWOOLE_SO"); so != "" {
		return so
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/tmp"
	}
	return filepath.Join(home, ".cache", "goswoole-bench", "swoole-6.2.2", "modules", "swoole.so")
}

// checkSwoole returns cfg.servers less the swoole-* rows when real Swoole cannot run here (no
// php, no swoole.so, no echo.php, or php fails to load the extension), saying why on stderr and
// in cfg.skipped for the report; where it can run, it notes Swoole's and PHP's versions.
func checkSwoole(cfg *config) []string {
	var want []string
	for _, s := range cfg.servers {
		if servers[s].swoole {
			want = append(want, s)
		}
	}
	if len(want) == 0 {
		return cfg.servers
	}
	why := swooleMissing(cfg)
	if why == "" {
		return cfg.servers
	}
	msg := fmt.Sprintf("%s skipped: %s", strings.Join(want, ", "), why)
	fmt.Fprintf(os.Stderr, "matrix: %s\n", msg)
	cfg.skipped = append(cfg.skipped, msg)
	var keep []string
	for _, s := range cfg.servers {
		if !servers[s].swoole {
			keep = append(keep, s)
		}
	}
	return keep
}

// swooleMissing says why real Swoole cannot run here, or "" where it can (then cfg.swooleVer
// holds the versions).
func swooleMissing(cfg *config) string {
	php, err := exec.LookPath(cfg.php)
	if err != nil {
		return fmt.Sprintf("no PHP (%q not found; Debian: apt-get install php8.2-cli, or bench/swoole/build.sh, which installs it)", cfg.php)
	}
	if _, err := os.Stat(cfg.swooleSO); err != nil {
		return fmt.Sprintf("no Swoole extension at %s (build it with bench/swoole/build.sh, or pass -swoole-so or $SWOOLE_SO)", cfg.swooleSO)
	}
	if _, err := os.Stat(cfg.swooleEcho); err != nil {
		return fmt.Sprintf("no echo server script at %s (pass -swoole-echo)", cfg.swooleEcho)
	}
	out, err := exec.Command(php, "-d", "extension="+cfg.swooleSO, "-r",
		`if (!extension_loaded("swoole")) exit(1); echo "Swoole ", SWOOLE_VERSION, ", PHP ", PHP_VERSION;`).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s does not load %s: %v: %s", php, cfg.swooleSO, err, lastLine(string(out)))
	}
	cfg.swooleVer = strings.TrimSpace(string(out))
	return ""
}

// loadArgs is the generator's command line for c (after the binary).
func loadArgs(cfg config, c cell, addr string, pid int) []string {
	a := []string{"-mode", c.Kind, "-addr", addr, "-pid", strconv.Itoa(pid), "-conns", strconv.Itoa(c.Conns),
		"-size", strconv.Itoa(c.Size)}
	switch c.Kind {
	case "echo":
		a = append(a, "-depth", strconv.Itoa(c.Depth), "-duration", cfg.duration.String(), "-warmup", cfg.warmup.String())
	case "connect":
		a = append(a, "-duration", cfg.duration.String(), "-warmup", cfg.warmup.String())
	case "idle":
		a = append(a, "-settle", cfg.settle.String())
	}
	return append(a, "-json")
}

func pinned(ctx context.Context, cfg config, cpus, bin string, args []string) *exec.Cmd {
	if !cfg.pin {
		return exec.CommandContext(ctx, bin, args...)
	}
	return exec.CommandContext(ctx, "taskset", append([]string{"-c", cpus, bin}, args...)...)
}

// runOne starts srv, runs c's load against it once, and stops it.
func runOne(cfg config, c cell, srv string, rep int) (r result) {
	r = result{Cell: c.String(), Server: srv, Rep: rep}
	fail := func(err error) result { r.Err = err.Error(); return r }

	var serr bytes.Buffer
	bin, args := serverCommand(cfg, srv)
	sc := pinned(context.Background(), cfg, cfg.serverCPU, bin, args)
	sc.Stderr = &serr
	stdout, err := sc.StdoutPipe()
	if err != nil {
		return fail(err)
	}
	if err := sc.Start(); err != nil {
		return fail(err)
	}
	exited := make(chan error, 1)
	addrc := make(chan string, max(servers[srv].lines, 1))
	go func() {
		sr := bufio.NewScanner(stdout)
		for sr.Scan() {
			if i := strings.Index(sr.Text(), "listening on "); i >= 0 {
				select { // never blocks: the lines after those awaited are dropped
				case addrc <- sr.Text()[i+len("listening on "):]:
				default:
				}
			}
		}
		exited <- sc.Wait()
	}()
	defer func() {
		select {
		case err := <-exited:
			if r.Err == "" {
				r.Err = fmt.Sprintf("%s exited during the run: %v: %s", srv, err, lastLine(serr.String()))
			}
			return
		default:
		}
		sc.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil && r.Err == "" {
				r.Err = fmt.Sprintf("%s stopped with %v: %s", srv, err, lastLine(serr.String()))
			}
		case <-time.After(10 * time.Second):
			sc.Process.Kill()
			<-exited
			if r.Err == "" {
				r.Err = srv + " did not stop within 10s of SIGTERM"
			}
		}
	}()
	var addr string
	deadline := time.After(10 * time.Second)
	for range max(servers[srv].lines, 1) { // every process of the server is up
		select {
		case addr = <-addrc:
		case <-deadline:
			return fail(fmt.Errorf("%s did not start within 10s: %s", srv, lastLine(serr.String())))
		case err := <-exited:
			exited <- err // for the deferred check
			return fail(fmt.Errorf("%s did not start: %v: %s", srv, err, lastLine(serr.String())))
		}
	}
	pid := sc.Process.Pid // taskset execs the server: the same process
	time.Sleep(200 * time.Millisecond)

	limit := cfg.duration + cfg.warmup + 2*time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	lc := pinned(ctx, cfg, cfg.loadCPU, filepath.Join(cfg.bin, "load"), loadArgs(cfg, c, addr, pid))
	lc.Cancel = func() error { return lc.Process.Signal(syscall.SIGTERM) }
	lc.WaitDelay = 5 * time.Second
	var lout, lerr bytes.Buffer
	lc.Stdout, lc.Stderr = &lout, &lerr
	all0 := readCPU("cpu")
	t0 := time.Now()
	srvCPU0, _ := load.ProcTree{Pid: pid}.CPU()
	procs := make(chan int, 1)
	go func() { // the tree's size halfway through the run
		time.Sleep((cfg.duration + cfg.warmup) / 2)
		t, _ := load.Tree(pid)
		procs <- len(t)
	}()
	err = lc.Run()
	wall := time.Since(t0)
	srvCPU1, _ := load.ProcTree{Pid: pid}.CPU()
	all1 := readCPU("cpu")
	r.Wall = wall.Seconds()
	if lc.ProcessState != nil {
		r.LoadCPU = (lc.ProcessState.UserTime() + lc.ProcessState.SystemTime()).Seconds()
	}
	if ncores := float64(runtime.NumCPU()); wall > 0 {
		other := (all1.busy - all0.busy - (srvCPU1 - srvCPU0)).Seconds() - r.LoadCPU
		r.OtherPct = max(100*other/(wall.Seconds()*ncores), 0)
	}
	select {
	case r.Procs = <-procs:
	default:
		t, _ := load.Tree(pid)
		r.Procs = len(t)
	}
	if err != nil {
		return fail(fmt.Errorf("load: %v: %s", err, lastLine(lerr.String())))
	}
	if err := json.Unmarshal(bytes.TrimSpace(lout.Bytes()), &r.Report); err != nil {
		return fail(fmt.Errorf("load printed %q: %v", lout.String(), err))
	}
	return r
}

// cpuTimes is a line of /proc/stat.
type cpuTimes struct {
	busy time.Duration // user + nice + system + irq + softirq + steal
}

// readCPU returns the /proc/stat line named name ("cpu" for all cores, "cpu0", ...). Without
// CONFIG_IRQ_TIME_ACCOUNTING (as here) irq and softirq time is also charged to the process it
// interrupted, so a process's own CPU time includes the packet processing done in its context.
func readCPU(name string) cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 9 || f[0] != name {
			continue
		}
		v := func(i int) time.Duration {
			n, _ := strconv.ParseInt(f[i], 10, 64)
			return time.Duration(n) * 10 * time.Millisecond
		}
		// user nice system idle iowait irq softirq steal
		return cpuTimes{busy: v(1) + v(2) + v(3) + v(6) + v(7) + v(8)}
	}
	return cpuTimes{}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// machine is what the report says about the machine and the run.
type machine struct {
	nproc                 int
	model, kernel, memory string
	goVersion             string
	gnet                  string
	nofile                string
	loadStart, loadEnd    string
	started               time.Time
	took                  time.Duration
}

func (m *machine) read(bin string) {
	m.nproc = runtime.NumCPU()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 2 {
			kb, _ := strconv.ParseFloat(f[1], 64)
			m.memory = fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	m.goVersion = runtime.Version()
	m.gnet = moduleVersion(filepath.Join(bin, "gnetecho"), "github.com/panjf2000/gnet/v2")
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		m.nofile = fmt.Sprintf("%d soft / %d hard", rl.Cur, rl.Max)
	}
	m.loadStart = loadavg()
	m.started = time.Now()
}

func (m *machine) finish(started time.Time) {
	m.loadEnd = loadavg()
	m.took = time.Since(started)
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// moduleVersion reads a module's version from a Go binary's build information.
func moduleVersion(bin, mod string) string {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "?"
	}
	for _, d := range info.Deps {
		if d.Path == mod {
			return d.Version
		}
	}
	return "?"
}

func check(err error) {
	if err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "matrix: "+format+"\n", args...)
	os.Exit(1)
}
