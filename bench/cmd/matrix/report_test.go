package main

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/goswoole/swoole/bench/load"
)

func TestStat(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want stat
	}{
		{[]float64{3, 1, 2}, stat{med: 2, lo: 1, hi: 3, n: 3}},
		{[]float64{4, 1, 2, 3}, stat{med: 2.5, lo: 1, hi: 4, n: 4}},
		{[]float64{7}, stat{med: 7, lo: 7, hi: 7, n: 1}},
		{nil, stat{}},
	} {
		if got := statOf(tc.in); got != tc.want {
			t.Errorf("statOf(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	if s := (stat{med: 105033, lo: 99012.4, hi: 123441, n: 3}).String(); s != "105,033 (99,012–123,441)" {
		t.Errorf("String = %q", s)
	}
	for v, want := range map[float64]string{0: "0", 1.234: "1.23", 12.34: "12.3", 1234567: "1,234,567", -1500: "-1,500", 100: "100"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestCells(t *testing.T) {
	cs := cells([]int{10000, 19000})
	var names []string
	for _, c := range cs {
		names = append(names, c.String())
	}
	want := "echo C=1 S=64 P=1,echo C=1 S=4096 P=1,echo C=50 S=64 P=1,echo C=50 S=4096 P=1,echo C=1000 S=64 P=1,echo C=1000 S=4096 P=1,echo C=50 S=64 P=16,idle N=10000,idle N=19000,connect C=50 S=64"
	if got := strings.Join(names, ","); got != want {
		t.Errorf("cells:\n%s\nwant\n%s", got, want)
	}
}

// TestReportBar checks the report's tables and the bar's verdicts from made-up results.
func TestReportBar(t *testing.T) {
	cfg := config{duration: time.Second, warmup: time.Second, reps: 3, servers: []string{"goswoole", "goswoole-2w", "goswoole-proc", "gnet", "netstd"},
		idleN: []int{10000}, serverCPU: "0", loadCPU: "1", pin: true, settle: time.Second, maxConn: 20000, cmdline: "bench/matrix.sh"}
	var rs []result
	add := func(c cell, srv string, r load.Report) {
		for rep := 1; rep <= 3; rep++ {
			x := r
			x.PerSec *= 1 + float64(rep-2)/100 // a little spread
			rs = append(rs, result{Cell: c.String(), Server: srv, Rep: rep, Report: x, Procs: 1, Attempt: 1})
		}
	}
	for _, c := range cells(cfg.idleN) {
		for _, srv := range cfg.servers {
			r := load.Report{Mode: c.Kind, PerSec: 1000, CPUPer: 10, P99us: 100, BytesPerConn: 500}
			if srv == "goswoole" {
				switch c.String() {
				case "echo C=1000 S=64 P=1":
					r.CPUPer, r.PerSec = 7.9, 1000 // met: 0.79×, not slower
				case "echo C=50 S=64 P=16":
					r.PerSec = 1050 // not met: 1.05×
				case "echo C=1 S=64 P=1":
					r.P99us = 120 // p99 worse here
				case "idle N=10000":
					r.BytesPerConn = 600 // not met
				}
			}
			add(c, srv, r)
		}
	}
	rs = append(rs, result{Cell: "connect C=50 S=64", Server: "netstd", Rep: 4, Err: "boom"})
	var b bytes.Buffer
	writeReport(&b, cfg, &machine{nproc: 2, model: "Test CPU", started: time.Unix(0, 0)}, rs)
	out := b.String()
	for _, want := range []string{
		"| echo C=1000 S=64 P=1 | goswoole | 1,000 (990–1,010) |",
		"| echo C=1000 S=64 P=1 | goswoole | gnet | 1.00 | 0/3 | 0.79 | 3/3 | 1.00 | 0/3 | – |",
		"| idle N=10000 | goswoole | gnet | – | – | – | – | – | – | 1.20 |",
		"CPU ratio 0.79",
		"| idle N=10000 | goswoole-2w | netstd | – | – | – | – | – | – | 1.00 |",
		"| echo C=50 S=64 P=16 | goswoole-proc | gnet | 1.00 | 0/3 | 1.00 | 0/3 | 1.00 | 0/3 | – |",
		"**goswoole-proc**: the same with `-mode process -workers 2`",
		"): **met**.\n- Pipelined",
		"| echo C=1 S=64 P=1 | goswoole | 1 | 1 | 990 msgs/s",
		"ratio 1.05 (goswoole 1,050 (1,040–1,060) vs gnet 1,000 (990–1,010); every run agrees): **not met**",
		"CPU ratio 0.79 (goswoole 7.90 vs gnet 10.0 µs/msg; every run agrees), msgs/s ratio 1.00 (goswoole 1,000 (990–1,010) vs gnet 1,000 (990–1,010); within noise: the runs' ranges overlap): **met**",
		"Idle N = 10000: RSS per connection at most gnet's: ratio 1.20",
		"worse in 1 of 7 cells: echo C=1 S=64 P=1",
		"connect C=50 S=64, netstd: 1 of 4 runs failed; the first: `boom`",
		"taskset -c 1 bench/bin/load -mode idle -addr HOST:PORT -pid PID -conns 10000",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}

// TestReportSwoole checks the "Beside Swoole" section: the ModeProcess ratios, their paired counts
// and the bar's verdicts, from made-up results.
func TestReportSwoole(t *testing.T) {
	cfg := config{duration: time.Second, warmup: time.Second, reps: 3,
		servers: []string{"goswoole-proc", "swoole-process", "goswoole", "swoole-base", "floor"},
		only:    regexp.MustCompile(`^echo C=(1|50) S=64 `), serverCPU: "0", loadCPU: "1", pin: true,
		maxConn: 20000, cmdline: "bench/swoolepair.sh", swooleVer: "Swoole 6.2.2, PHP 8.2.36", swooleSO: "/x/swoole.so"}
	cpu := map[string]float64{"goswoole-proc": 12, "swoole-process": 10, "goswoole": 6, "swoole-base": 6.5, "floor": 5}
	var rs []result
	for _, c := range cells(nil) {
		if !cfg.only.MatchString(c.String()) {
			continue
		}
		for rep := 1; rep <= 3; rep++ {
			for _, srv := range cfg.servers {
				x := cpu[srv] * (1 + float64(rep-2)/100)
				if c.Conns == 50 && srv == "goswoole-proc" {
					x = 5.5 // 0.55× Swoole PROCESS: met; 0.92× one process: met
				}
				rs = append(rs, result{Cell: c.String(), Server: srv, Rep: rep, Attempt: 1,
					Report: load.Report{Mode: "echo", PerSec: 1000, CPUPer: x}})
			}
		}
	}
	var b bytes.Buffer
	writeReport(&b, cfg, &machine{nproc: 2, started: time.Unix(0, 0)}, rs)
	out := b.String()
	for _, want := range []string{
		"| Swoole | Swoole 6.2.2, PHP 8.2.36 (`/x/swoole.so`) |",
		"- **swoole-process**: the same script with `-mode process -workers 2`",
		"taskset -c 0 php -d extension=SWOOLE_SO bench/swoole/echo.php -addr 127.0.0.1:0",
		"## Beside Swoole",
		"| cell (server CPU µs/msg) | goswoole-proc | swoole-process | goswoole | swoole-base | floor | goswoole-proc vs swoole-process | goswoole-proc vs goswoole (one process) | goswoole vs swoole-base | goswoole vs floor |",
		"| echo C=1 S=64 P=1 | 12.0 | 10.0 | 6.00 | 6.50 | 5.00 | 1.20 (0/3) | 2.00 (0/3) | 0.92 (3/3) | 1.20 (0/3) |",
		"| echo C=50 S=64 P=1 | 5.50 | 10.0 | 6.00 | 6.50 | 5.00 | 0.55 (3/3) | 0.92 (3/3) |",
		"- echo C=1 S=64 P=1: goswoole-proc/swoole-process 1.20, bar ≤ 0.75: **not met**",
		"- echo C=50 S=64 P=1: goswoole-proc/swoole-process 0.55, bar ≤ 0.60: met",
		"- echo C=1 S=64 P=1: goswoole-proc/goswoole 2.00, bar ≤ 1.50: **not met**",
		"- echo C=50 S=64 P=16: goswoole-proc/goswoole 0.92, bar ≤ 1.30: met",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
	// Without a Swoole row, no such section.
	cfg.servers = []string{"goswoole", "floor"}
	b.Reset()
	writeReport(&b, cfg, &machine{nproc: 2, started: time.Unix(0, 0)}, rs)
	if strings.Contains(b.String(), "Beside Swoole") {
		t.Error("a report without Swoole rows has the Beside Swoole section")
	}
}

// TestCheckSwooleSkips checks that the swoole-* rows are left out, with the reason, when the
// extension is absent, and the other rows kept.
func TestCheckSwooleSkips(t *testing.T) {
	cfg := config{servers: []string{"goswoole", "swoole-base", "gnet", "swoole-process"}, php: "php",
		swooleSO: filepath.Join(t.TempDir(), "none.so"), swooleEcho: "../../swoole/echo.php"}
	got := checkSwoole(&cfg)
	if strings.Join(got, ",") != "goswoole,gnet" {
		t.Errorf("servers %v, want goswoole,gnet", got)
	}
	if len(cfg.skipped) != 1 || !strings.Contains(cfg.skipped[0], "swoole-base, swoole-process skipped: no") {
		t.Errorf("skipped %q", cfg.skipped)
	}
	cfg = config{servers: []string{"goswoole"}}
	if got := checkSwoole(&cfg); len(got) != 1 || cfg.skipped != nil {
		t.Errorf("without Swoole rows: %v, %q", got, cfg.skipped)
	}
}
