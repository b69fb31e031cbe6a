package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/goswoole/swoole/bench/load"
)

// metric is one column of a table.
type metric struct {
	name string
	get  func(load.Report) float64
}

var (
	perSec  = func(r load.Report) float64 { return r.PerSec }
	p50     = func(r load.Report) float64 { return r.P50us }
	p99     = func(r load.Report) float64 { return r.P99us }
	p999    = func(r load.Report) float64 { return r.P999us }
	cpuPer  = func(r load.Report) float64 { return r.CPUPer }
	rssConn = func(r load.Report) float64 { return r.BytesPerConn }

	echoMetrics = []metric{
		{"msgs/s", perSec},
		{"p50 µs", p50},
		{"p99 µs", p99},
		{"p999 µs", p999},
		{"MB/s", func(r load.Report) float64 { return r.MBPerSec }},
		{"server CPU µs/msg", cpuPer},
	}
	idleMetrics = []metric{
		{"RSS B/conn", rssConn},
		{"of which anon", func(r load.Report) float64 { return r.AnonPerConn }},
		{"of which shmem", func(r load.Report) float64 { return r.ShmemPerConn }},
		{"PSS B/conn", func(r load.Report) float64 { return r.PSSPerConn }},
		{"RSS before, MB", func(r load.Report) float64 { return float64(r.RSSBefore) / 1e6 }},
		{"RSS after, MB", func(r load.Report) float64 { return float64(r.RSSAfter) / 1e6 }},
		{"server CPU µs/conn (accept + 1 echo)", cpuPer},
		{"open all, s", func(r load.Report) float64 { return r.OpenSeconds }},
	}
	connectMetrics = []metric{
		{"conns/s", perSec},
		{"p50 µs", p50},
		{"p99 µs", p99},
		{"p999 µs", p999},
		{"server CPU µs/conn", cpuPer},
		{"errors", func(r load.Report) float64 { return float64(r.Errors) }},
	}
)

func metricsOf(kind string) []metric {
	switch kind {
	case "echo":
		return echoMetrics
	case "idle":
		return idleMetrics
	}
	return connectMetrics
}

// stat is a metric over a cell's repetitions for one server.
type stat struct {
	med, lo, hi float64
	n           int
}

func (s stat) ok() bool { return s.n > 0 }

func statOf(vals []float64) stat {
	if len(vals) == 0 {
		return stat{}
	}
	v := slices.Clone(vals)
	slices.Sort(v)
	n := len(v)
	med := v[n/2]
	if n%2 == 0 {
		med = (v[n/2-1] + v[n/2]) / 2
	}
	return stat{med: med, lo: v[0], hi: v[n-1], n: n}
}

// num formats a figure with precision by magnitude and thousands separators.
func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return commas(fmt.Sprintf("%.0f", v))
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a == 0:
		return "0"
	}
	return fmt.Sprintf("%.2f", v)
}

func commas(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func (s stat) String() string {
	if !s.ok() {
		return "failed"
	}
	if s.n == 1 || s.lo == s.hi {
		return num(s.med)
	}
	return fmt.Sprintf("%s (%s–%s)", num(s.med), num(s.lo), num(s.hi))
}

// table holds the results by cell and server.
type table struct {
	cells   []cell
	servers []string
	runs    map[string]map[string][]result // cell name → server → runs
}

func newTable(cfg config, results []result) *table {
	t := &table{servers: cfg.servers, runs: map[string]map[string][]result{}}
	for _, c := range cells(cfg.idleN) {
		if cfg.only == nil || cfg.only.MatchString(c.String()) {
			t.cells = append(t.cells, c)
		}
	}
	for _, r := range results {
		if t.runs[r.Cell] == nil {
			t.runs[r.Cell] = map[string][]result{}
		}
		t.runs[r.Cell][r.Server] = append(t.runs[r.Cell][r.Server], r)
	}
	return t
}

// stat returns the metric over the successful runs of one cell and server.
func (t *table) stat(c cell, srv string, m func(load.Report) float64) stat {
	var vals []float64
	for _, r := range t.runs[c.String()][srv] {
		if r.Err == "" {
			vals = append(vals, m(r.Report))
		}
	}
	return statOf(vals)
}

// ratio is goswoole's median over the peer's, or NaN.
func (t *table) ratio(c cell, peer string, m func(load.Report) float64) float64 {
	return t.ratioOf(c, "goswoole", peer, m)
}

// ratioOf is srv's median over the peer's, or NaN.
func (t *table) ratioOf(c cell, srv, peer string, m func(load.Report) float64) float64 {
	a, b := t.stat(c, srv, m), t.stat(c, peer, m)
	if !a.ok() || !b.ok() || b.med == 0 {
		return math.NaN()
	}
	return a.med / b.med
}

// wins pairs srv's runs of a cell with the peer's, repetition by repetition (the servers
// took turns within each repetition, so a pair saw about the same machine), and counts the
// pairs in which srv did better on m: a lower figure when lowerBetter, else a higher one.
func (t *table) wins(c cell, srv, peer string, m func(load.Report) float64, lowerBetter bool) (won, pairs int) {
	a, b := t.runs[c.String()][srv], t.runs[c.String()][peer]
	for i := range min(len(a), len(b)) {
		if a[i].Err != "" || b[i].Err != "" {
			continue
		}
		pairs++
		x, y := m(a[i].Report), m(b[i].Report)
		if (lowerBetter && x < y) || (!lowerBetter && x > y) {
			won++
		}
	}
	return won, pairs
}

func fmtWins(won, pairs int) string {
	if pairs == 0 {
		return "–"
	}
	return fmt.Sprintf("%d/%d", won, pairs)
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

func (t *table) failures(c cell, srv string) (failed, all int, first string) {
	for _, r := range t.runs[c.String()][srv] {
		all++
		if r.Err != "" {
			failed++
			if first == "" {
				first = r.Err
			}
		}
	}
	return
}

func writeReport(w io.Writer, cfg config, m *machine, results []result) {
	t := newTable(cfg, results)
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	dur := func(d time.Duration) string { return d.String() }

	p("# Benchmarks: goswoole's echo server beside its peers\n\n")
	p("Written by `bench/matrix.sh` (the benchmark matrix) on %s; the whole run took %v. ",
		m.started.UTC().Format("2006-01-02 15:04 MST"), m.took.Round(time.Second))
	p("Every figure is the **median of %d runs**, with the min–max of those runs in brackets; ", cfg.reps)
	p("each run starts a fresh server process.\n\n")
	p("**The machine is shared**: other people's tests ran on it during this run, so absolute numbers are noisy. ")
	p("Compare servers within a cell (they took turns in each repetition), look at the spreads, and ")
	p("trust server CPU per message more than msgs/s. Load average (1/5/15 min) at the start: %s; at the end: %s. ", m.loadStart, m.loadEnd)
	others := othersSummary(results)
	p("%s ", others)
	p("A run during which other processes used more than %.0f%% of the cores' time was thrown away and run again after 5 s, at most %d times (the last attempt is kept whatever it saw); %s\n\n",
		cfg.maxOthers, cfg.retries, repeatedSummary(results))

	p("## Machine\n\n")
	p("| | |\n|---|---|\n")
	p("| CPUs (nproc) | %d |\n| model name | %s |\n| memory | %s |\n| kernel | %s |\n| Go | %s |\n| gnet | %s |\n| RLIMIT_NOFILE | %s |\n",
		m.nproc, m.model, m.memory, m.kernel, m.goVersion, m.gnet, m.nofile)
	if cfg.swooleVer != "" {
		p("| Swoole | %s (`%s`) |\n", cfg.swooleVer, cfg.swooleSO)
	}
	p("\n")

	p("## What ran\n\n")
	p("- **goswoole**: `bench/cmd/swooleecho`, the library's single-process server (ModeBase, worker_num 1, open_tcp_nodelay on), OnReceive → Send.\n")
	p("- **goswoole-2w**: the same with `-workers 2`: ModeBase with worker_num 2, a manager and two worker processes (the command started again), all pinned to the one server core (affinity is inherited); CPU and memory are summed over the three processes. Its VmRSS sum counts the shared connection table once per process that touched a page; its PSS column splits those pages.\n")
	p("- **gnet**: `bench/cmd/gnetecho`, gnet %s with `WithMulticore(true)` as the issue asks; gnet then runs `runtime.NumCPU()` event loops, and NumCPU follows the affinity mask, so pinned to one core it runs **one** loop (GOMAXPROCS 1, as for every server here).\n", m.gnet)
	p("- **netstd**: `bench/cmd/netecho`, Go's net package, a goroutine per connection with a 64 KiB buffer.\n")
	p("- **goswoole-proc**: the same with `-mode process -workers 2`: ModeProcess, Swoole's default mode: a master process whose reactor loop(s) accept, read and write every connection (reactor_num defaults to the usable CPUs, here 1 under taskset) and two worker processes that run OnReceive; each message crosses a unix socketpair to a worker and its reply crosses back to the master, which writes it to the socket. All three processes are pinned to the one server core; CPU and memory are summed over them as for goswoole-2w (VmRSS again counts the shared connection table once per process that touched a page; PSS splits it).\n")
	if slices.Contains(t.servers, "swoole-base") {
		p("- **swoole-base**: real Swoole (%s), `bench/swoole/echo.php -mode base`: a `Swoole\\Server` in SWOOLE_BASE mode with worker_num 1, one process whose event loop accepts, reads and runs onReceive, which calls `$server->send($fd, $data)`; open_tcp_nodelay on, max_connection `-maxconn`, Swoole's other settings left at their defaults (enable_coroutine on: each onReceive runs in a coroutine).\n", orUnknown(cfg.swooleVer))
	}
	if slices.Contains(t.servers, "swoole-process") {
		p("- **swoole-process**: the same script with `-mode process -workers 2`: SWOOLE_PROCESS, Swoole's default mode, with worker_num 2 and reactor_num 1 (the script's default, as goswoole's: the CPUs of the affinity mask capped at worker_num; Swoole's own default would count the machine's CPUs): a master process whose reactor thread holds the connections, a manager process, and two worker processes running onReceive, each message crossing a unix socketpair to a worker and back. All four processes are pinned to the one server core; CPU and memory are summed over the tree.\n")
	}
	for _, sk := range cfg.skipped {
		p("- Not run: %s.\n", sk)
	}
	if slices.Contains(t.servers, "floor") {
		p("- **floor** (not a peer): `bench/cmd/floorecho`, the least an epoll server can do per message: one locked loop, level-triggered epoll, and for each readable connection one read and one write, with no callbacks, table, counters or queue. It polls as gnet does (timeout 0, Gosched, then block) with the runtime's GOMAXPROCS (1 when pinned); goswoole raises GOMAXPROCS to its loops plus one and blocks at once (BENCHMARKS.md, \"GOMAXPROCS and the loops\"). What a server spends above it is its own overhead.\n")
	}
	if slices.Contains(t.servers, "procfloor") {
		p("- **procfloor** (not a peer): `bench/cmd/procfloorecho -transport socketpair`, the least a master + one worker process design (ModeProcess, SWOOLE_PROCESS) spends per message: the master reads each readable connection once per round into a datagram of [fd][length][bytes] records, sends the round's datagrams over one AF_UNIX SOCK_DGRAM socketpair, and writes each record of the worker's reply datagrams to its client; the worker sends every datagram back unchanged. Both processes are pinned to the server core and summed. What goswoole-proc spends above it is its own overhead.\n")
	}
	if slices.Contains(t.servers, "procfloor-2w") {
		p("- **procfloor-2w** (not a peer): the procfloor with `-workers 2`, the configuration goswoole-proc and swoole-process run: two worker processes, each with a socketpair of its own; a client's records go to worker fd %% 2 (ModeProcess's dispatch_mode 2), and each round ends with a write of the round's datagram(s) to each worker. What goswoole-proc spends above it is its own overhead in that configuration.\n")
	}
	if slices.Contains(t.servers, "procfloor-ring") {
		p("- **procfloor-ring** (not a peer): the same master + one worker floor with `-transport ring`: the records cross through a single-producer single-consumer ring of 1 MiB per direction in shared memory (memfd), read into and written from straight by the master, with an eventfd wake-up only when the reader sleeps. Its difference to procfloor is what shared-memory rings could save over the socketpair.\n")
	}
	if slices.Contains(t.servers, "uring") {
		p("- **uring** (not a peer): `bench/cmd/uringecho`, the least an io_uring server can do (SINGLE_ISSUER, DEFER_TASKRUN): one receive or send in flight per connection, and a whole batch of completions' next submissions entered with the next wait, in one io_uring_enter.\n")
	}
	p("\n")
	pinNote := "nothing pinned (-pin=false)"
	if cfg.pin {
		pinNote = fmt.Sprintf("servers pinned with `taskset -c %s`, the load generator with `taskset -c %s`", cfg.serverCPU, cfg.loadCPU)
	}
	p("%s. Echo and connect runs: %s of warmup, then %s measured; the server's CPU time is read from /proc over its whole process tree (utime+stime+cutime+cstime of every process, at the start and the end of the measured window). ",
		pinNote, dur(cfg.warmup), dur(cfg.duration))
	p("Idle runs: open N connections (32 at a time), echo 64 B once on each so that the server has accepted and served every one, wait %s, then RSS = VmRSS summed over the server's process tree (from /proc/PID/status, following /proc/PID/task/*/children); RSS/conn = (RSS with the connections − RSS of the fresh server just before) / N. Its parts: RssAnon (Go heap, stacks) and RssShmem (shared memory: goswoole keeps its connection table in a memfd mapping) growth per connection; RssFile is the rest. PSS (from smaps_rollup) is the same measure with shared pages split between the processes that map them.\n\n", dur(cfg.settle))

	p("### Commands\n\n```sh\n%s\n```\n\nEach run, with the figures filled in (`PID` is the server's process id, `HOST:PORT` what it printed):\n\n```sh\n", cfg.cmdline)
	srvCmd := "bench/bin/swooleecho " + strings.Join(serverArgs(cfg, "goswoole"), " ")
	ldCmd := func(c cell) string {
		return "bench/bin/load " + strings.Join(loadArgs(cfg, c, "HOST:PORT", 0), " ")
	}
	if cfg.pin {
		srvCmd = "taskset -c " + cfg.serverCPU + " " + srvCmd
	}
	ldPrefix := ""
	if cfg.pin {
		ldPrefix = "taskset -c " + cfg.loadCPU + " "
	}
	p("%s &   # or gnetecho, netecho: the same flags (each ignores those not its own); goswoole-2w adds -workers 2, goswoole-proc -mode process -workers 2\n", srvCmd)
	if slices.Contains(t.servers, "swoole-base") || slices.Contains(t.servers, "swoole-process") {
		sw := "php -d extension=SWOOLE_SO bench/swoole/echo.php " + strings.Join(serverArgs(cfg, "swoole-base"), " ")
		if cfg.pin {
			sw = "taskset -c " + cfg.serverCPU + " " + sw
		}
		p("%s &   # swoole-base; swoole-process: -mode process -workers 2; SWOOLE_SO: what bench/swoole/build.sh prints\n", sw)
	}
	seen := map[string]bool{}
	for _, c := range t.cells {
		if seen[c.Kind] {
			continue
		}
		seen[c.Kind] = true
		p("%s%s\n", ldPrefix, strings.Replace(ldCmd(c), "-pid 0", "-pid PID", 1))
	}
	p("```\n\nwith `-conns`, `-size` and `-depth` per cell (matrix.sh builds into `bench/bin`; the driver, `bench/cmd/matrix`, starts and stops the servers).\n\n")

	for _, kind := range []string{"echo", "idle", "connect"} {
		var cs []cell
		for _, c := range t.cells {
			if c.Kind == kind {
				cs = append(cs, c)
			}
		}
		if len(cs) == 0 {
			continue
		}
		ms := metricsOf(kind)
		switch kind {
		case "echo":
			p("## Echo\n\nC connections, each with P messages of S bytes in flight; latency is the round trip. The generator writes the messages that a read completed as one write (at P = 16: up to 16 messages per write and per read, as a pipelining client does), so the pipelined cell measures the server, not one syscall per message in the generator.\n\n")
		case "idle":
			p("## Idle connections\n\n")
		case "connect":
			p("## Connect\n\nC workers, each looping: connect, echo 64 B, close. Latency is the whole cycle.\n\n")
		}
		p("| cell | server |")
		for _, mt := range ms {
			p(" %s |", mt.name)
		}
		p("\n|---|---|%s\n", strings.Repeat("---:|", len(ms)))
		for _, c := range cs {
			for _, srv := range t.servers {
				p("| %s | %s |", c, srv)
				for _, mt := range ms {
					p(" %s |", t.stat(c, srv, mt.get))
				}
				p("\n")
			}
		}
		p("\n")
		for _, c := range cs {
			for _, srv := range t.servers {
				if f, all, first := t.failures(c, srv); f > 0 {
					p("- %s, %s: %d of %d runs failed; the first: `%s`\n", c, srv, f, all, first)
				}
			}
		}
	}

	var ours, peers []string
	for _, srv := range t.servers {
		if strings.HasPrefix(srv, "goswoole") {
			ours = append(ours, srv)
		} else {
			peers = append(peers, srv)
		}
	}
	if len(ours) > 0 && len(peers) > 0 {
		p("## goswoole's ratios to each peer\n\n")
		p("goswoole's median divided by the peer's (each goswoole row: %s). Throughput (msgs/s, conns/s): above 1 is better; server CPU per message or connection, p99 and RSS per connection: below 1 is better. ", strings.Join(ours, ", "))
		p("\"Better in\" pairs the runs repetition by repetition (within a repetition the servers ran one after the other) and counts the pairs in which the goswoole row did better: a ratio of medians near 1 with a split count is noise, not a difference.\n\n")
		p("| cell | goswoole row | vs | msgs/s or conns/s | better in | server CPU per msg/conn | better in | p99 | better in | RSS/conn |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, c := range t.cells {
			for _, srv := range ours {
				for _, peer := range peers {
					r := func(m func(load.Report) float64) string { return fmtRatio(t.ratioOf(c, srv, peer, m)) }
					switch c.Kind {
					case "idle":
						p("| %s | %s | %s | – | – | – | – | – | – | %s |\n", c, srv, peer, r(rssConn))
					default:
						w := func(m func(load.Report) float64, lower bool) string { return fmtWins(t.wins(c, srv, peer, m, lower)) }
						p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | – |\n", c, srv, peer, r(perSec), w(perSec, false), r(cpuPer), w(cpuPer, true), r(p99), w(p99, true))
					}
				}
			}
		}
		p("\n")
	}

	if slices.Contains(t.servers, "goswoole") && slices.Contains(t.servers, "gnet") {
		writeBar(w, t)
	}
	writeSwoole(w, t)

	p("<details><summary>Every run</summary>\n\n")
	p("`others %%`: the share of the two cores' time that other processes used during the run (from /proc/stat, less the server and the generator).\n\n")
	p("| cell | server | rep | attempt | result | procs | generator CPU s | others %% |\n|---|---|---:|---:|---|---:|---:|---:|\n")
	for _, r := range results {
		p("| %s | %s | %d | %d | %s | %d | %.2f | %.0f |\n", r.Cell, r.Server, r.Rep, r.Attempt, strings.ReplaceAll(short(r), "|", "/"), r.Procs, r.LoadCPU, r.OtherPct)
	}
	p("\n</details>\n")
}

// short is one run's headline figures.
func short(r result) string {
	if r.Err != "" {
		return "failed: " + r.Err
	}
	x := r.Report
	switch x.Mode {
	case "echo":
		return fmt.Sprintf("%s msgs/s, p99 %s µs, %s µs/msg", num(x.PerSec), num(x.P99us), num(x.CPUPer))
	case "idle":
		return fmt.Sprintf("%s B/conn (%s → %s MB)", num(x.BytesPerConn), num(float64(x.RSSBefore)/1e6), num(float64(x.RSSAfter)/1e6))
	}
	return fmt.Sprintf("%s conns/s, p99 %s µs, %s µs/conn, %d errors", num(x.PerSec), num(x.P99us), num(x.CPUPer), x.Errors)
}

func repeatedSummary(results []result) string {
	again := 0
	for _, r := range results {
		if r.Attempt > 1 {
			again++
		}
	}
	return fmt.Sprintf("%d of %d runs needed more than one attempt (the \"attempt\" column of \"Every run\").", again, len(results))
}

func othersSummary(results []result) string {
	var v []float64
	for _, r := range results {
		v = append(v, r.OtherPct)
	}
	if len(v) == 0 {
		return ""
	}
	s := statOf(v)
	busy := 0
	for _, x := range v {
		if x >= 10 {
			busy++
		}
	}
	return fmt.Sprintf("During the kept runs, other processes used a median %.0f%% (max %.0f%%) of the cores' time; %d of %d runs saw 10%% or more (the \"others %%\" column of \"Every run\").",
		s.med, s.hi, busy, len(v))
}

// judge compares goswoole's runs with f × gnet's on m: ok is the medians' verdict (higher: at
// least f× gnet's; else at most f×), and how says whether every run agrees with it.
func (t *table) judge(c cell, m func(load.Report) float64, f float64, higher bool) (ok bool, how string) {
	a, b := t.stat(c, "goswoole", m), t.stat(c, "gnet", m)
	if !a.ok() || !b.ok() {
		return false, "no figures"
	}
	var clearlyMet, clearlyNot bool
	if higher {
		ok = a.med >= f*b.med
		clearlyMet, clearlyNot = a.lo >= f*b.hi, a.hi < f*b.lo
	} else {
		ok = a.med <= f*b.med
		clearlyMet, clearlyNot = a.hi <= f*b.lo, a.lo > f*b.hi
	}
	switch {
	case clearlyMet || clearlyNot:
		return ok, "every run agrees"
	}
	return ok, "within noise: the runs' ranges overlap"
}

// writeBar compares the figures with the performance bar (CPU, msgs/s, p99, idle memory against gnet).
func writeBar(w io.Writer, t *table) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	find := func(kind string, conns, size, depth int) (cell, bool) {
		for _, c := range t.cells {
			if c.Kind == kind && c.Conns == conns && c.Size == size && (kind != "echo" || c.Depth == depth) {
				return c, true
			}
		}
		return cell{}, false
	}
	verdict := func(ok bool) string {
		if ok {
			return "**met**"
		}
		return "**not met**"
	}
	both := func(c cell, m func(load.Report) float64) string {
		return fmt.Sprintf("goswoole %s vs gnet %s", t.stat(c, "goswoole", m), t.stat(c, "gnet", m))
	}
	p("## The bar against gnet (medians of this run)\n\n")
	p("Judged on the single-process goswoole row, the one the bar was set for; the goswoole-2w and goswoole-proc rows' ratios are in the table above.\n\n")
	p("Each line: the verdict from the medians, and whether every run agrees with it (goswoole's whole min–max range on the right side of gnet's, scaled by the bar's factor) or the ranges overlap (the verdict is within this machine's noise).\n\n")
	if c, ok := find("echo", 1000, 64, 1); ok {
		okc, howc := t.judge(c, cpuPer, 0.8, false)
		okr, howr := t.judge(c, perSec, 1, true)
		p("- Server CPU per message at C = 1000, 64 B at most 0.8× gnet's, msgs/s not lower: CPU ratio %s (%s µs/msg; %s), msgs/s ratio %s (%s; %s): %s.\n",
			fmtRatio(t.ratio(c, "gnet", cpuPer)), both(c, cpuPer), howc, fmtRatio(t.ratio(c, "gnet", perSec)), both(c, perSec), howr, verdict(okc && okr))
	}
	if c, ok := find("echo", 50, 64, 16); ok {
		okr, how := t.judge(c, perSec, 1.1, true)
		p("- Pipelined C = 50, P = 16: msgs/s at least 1.1× gnet's: ratio %s (%s; %s): %s.\n", fmtRatio(t.ratio(c, "gnet", perSec)), both(c, perSec), how, verdict(okr))
	}
	for _, c := range t.cells {
		if c.Kind == "idle" {
			okm, how := t.judge(c, rssConn, 1, false)
			p("- Idle N = %d: RSS per connection at most gnet's: ratio %s (%s B/conn; %s): %s.\n", c.Conns, fmtRatio(t.ratio(c, "gnet", rssConn)), both(c, rssConn), how, verdict(okm))
		}
	}
	var worse []string
	n := 0
	for _, c := range t.cells {
		if c.Kind != "echo" {
			continue
		}
		n++
		if okp, how := t.judge(c, p99, 1, false); !okp {
			worse = append(worse, fmt.Sprintf("%s (%s µs, ratio %s; %s)", c, both(c, p99), fmtRatio(t.ratio(c, "gnet", p99)), how))
		}
	}
	if n > 0 {
		p("- p99 latency in every echo cell no worse than gnet's: ")
		if len(worse) == 0 {
			p("no worse in all %d cells: **met**.\n", n)
		} else {
			p("worse in %d of %d cells: %s: **not met**.\n", len(worse), n, strings.Join(worse, "; "))
		}
	}
	p("\n")
}

func orUnknown(s string) string {
	if s == "" {
		return "version unknown"
	}
	return s
}

// pair is a ratio the "Beside Swoole" section shows: a's median over b's.
type pair struct{ a, b, name string }

// swoolePairs are the ModeProcess ratios: goswoole's ModeProcess against Swoole PROCESS and against
// goswoole's one-process server, the one-process server against Swoole BASE and against the
// epoll floor.
var swoolePairs = []pair{
	{"goswoole-proc", "swoole-process", "goswoole-proc vs swoole-process"},
	{"goswoole-proc", "goswoole", "goswoole-proc vs goswoole (one process)"},
	{"goswoole", "swoole-base", "goswoole vs swoole-base"},
	{"goswoole", "floor", "goswoole vs floor"},
}

// writeSwoole writes the echo cells' server CPU per message and msgs/s for the goswoole,
// Swoole and floor rows side by side, with the ModeProcess ratios and their bar, when a Swoole row
// ran.
func writeSwoole(w io.Writer, t *table) {
	if !slices.Contains(t.servers, "swoole-base") && !slices.Contains(t.servers, "swoole-process") {
		return
	}
	var cs []cell
	for _, c := range t.cells {
		if c.Kind == "echo" {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	var rows []string
	for _, srv := range []string{"goswoole-proc", "swoole-process", "goswoole", "swoole-base", "floor"} {
		if slices.Contains(t.servers, srv) {
			rows = append(rows, srv)
		}
	}
	var pairs []pair
	for _, pr := range swoolePairs {
		if slices.Contains(t.servers, pr.a) && slices.Contains(t.servers, pr.b) {
			pairs = append(pairs, pr)
		}
	}
	p("## Beside Swoole\n\n")
	p("The ModeProcess ratios from this run's medians; in brackets, the repetitions (paired, as above) in which the first server did better. ")
	p("Server CPU per message: below 1 is better; msgs/s: above 1 is better.\n\n")
	for _, m := range []struct {
		name  string
		get   func(load.Report) float64
		lower bool
	}{{"server CPU µs/msg", cpuPer, true}, {"msgs/s", perSec, false}} {
		p("| cell (%s) |", m.name)
		for _, srv := range rows {
			p(" %s |", srv)
		}
		for _, pr := range pairs {
			p(" %s |", pr.name)
		}
		p("\n|---|%s\n", strings.Repeat("---:|", len(rows)+len(pairs)))
		for _, c := range cs {
			p("| %s |", c)
			for _, srv := range rows {
				p(" %s |", num(t.stat(c, srv, m.get).med))
			}
			for _, pr := range pairs {
				r := t.ratioOf(c, pr.a, pr.b, m.get)
				p(" %s (%s) |", fmtRatio(r), fmtWins(t.wins(c, pr.a, pr.b, m.get, m.lower)))
			}
			p("\n")
		}
		p("\n")
	}
	// The ModeProcess bar: ModeProcess CPU per message at most 0.6× Swoole PROCESS's at 50 or more
	// connections and 0.75× at one; at most 1.3× the one-process server's at 50 and 1000, 1.5× at 1.
	var bar []string
	for _, c := range cs {
		lim := 0.6
		if c.Conns < 50 {
			lim = 0.75
		}
		if r := t.ratioOf(c, "goswoole-proc", "swoole-process", cpuPer); !math.IsNaN(r) {
			bar = append(bar, fmt.Sprintf("%s: goswoole-proc/swoole-process %.2f, bar ≤ %.2f: %s", c, r, lim, metOrNot(r <= lim)))
		}
		lim = 1.3
		if c.Conns < 50 {
			lim = 1.5
		}
		if r := t.ratioOf(c, "goswoole-proc", "goswoole", cpuPer); !math.IsNaN(r) {
			bar = append(bar, fmt.Sprintf("%s: goswoole-proc/goswoole %.2f, bar ≤ %.2f: %s", c, r, lim, metOrNot(r <= lim)))
		}
	}
	if len(bar) > 0 {
		p("The ModeProcess bar on server CPU per message (medians of this run):\n\n")
		for _, b := range bar {
			p("- %s\n", b)
		}
		p("\n")
	}
}

func metOrNot(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}
