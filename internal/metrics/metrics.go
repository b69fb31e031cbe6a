// Package metrics serves a server's numbers in Prometheus' text exposition format. The
// server package hands it plain families of samples at each scrape, so that the metric
// definitions stay in the server.
//
// The built-in writer (Handler) needs no dependency: linking prometheus/client_golang into
// every program that uses goswoole cost, measured with bench's idle test (10,000 idle
// connections, one process), 3.5 MiB of RSS at start and 107 more bytes per connection (its
// package initialisation grows the live heap, and the GC's goal with it), and 6.5 MB of
// binary. A program that wants client_golang's whole Go and process collectors imports
// github.com/goswoole/swoole/prommetrics, which sets Exporter.
package metrics

import (
	"bufio"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Kind is a metric's type.
type Kind int

// Kinds: a gauge goes up and down; a counter only grows (it restarts from 0 when its
// process restarts, which Prometheus' rate() allows for).
const (
	Gauge Kind = iota
	Counter
)

// Family is one metric: its samples share a name, help text, type and label names.
type Family struct {
	Name    string
	Help    string
	Kind    Kind
	Labels  []string // label names; each sample gives the values, in this order
	Samples []Sample
}

// Sample is one value of a family.
type Sample struct {
	Labels []string // label values
	Value  float64
}

// Exporter, when set (by the prommetrics package), builds the /metrics handler instead of
// the built-in writer.
var Exporter func(collect func() []Family) http.Handler

// Handler serves, at each request, the families collect returns, then a few of the Go
// runtime's metrics (go_*) and this process's (process_*: CPU, memory, descriptors), under
// client_golang's names.
func Handler(collect func() []Family) http.Handler {
	if Exporter != nil {
		return Exporter(collect)
	}
	return textHandler{collect}
}

type textHandler struct{ collect func() []Family }

func (h textHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	for _, f := range h.collect() {
		writeFamily(bw, f)
	}
	for _, f := range runtimeFamilies() {
		writeFamily(bw, f)
	}
	_ = bw.Flush()
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// writeFamily writes one family in the text exposition format (version 0.0.4).
func writeFamily(w *bufio.Writer, f Family) {
	if len(f.Samples) == 0 {
		return
	}
	typ := "gauge"
	if f.Kind == Counter {
		typ = "counter"
	}
	w.WriteString("# HELP " + f.Name + " " + helpEscaper.Replace(f.Help) + "\n")
	w.WriteString("# TYPE " + f.Name + " " + typ + "\n")
	for _, s := range f.Samples {
		w.WriteString(f.Name)
		if len(f.Labels) > 0 {
			w.WriteByte('{')
			for i, name := range f.Labels {
				if i > 0 {
					w.WriteByte(',')
				}
				v := ""
				if i < len(s.Labels) {
					v = s.Labels[i]
				}
				w.WriteString(name + `="` + labelEscaper.Replace(v) + `"`)
			}
			w.WriteByte('}')
		}
		w.WriteByte(' ')
		w.WriteString(strconv.FormatFloat(s.Value, 'g', -1, 64))
		w.WriteByte('\n')
	}
}

var startTime = float64(time.Now().Unix())

// runtimeFamilies are the Go runtime's and this process's metrics, named as client_golang's
// collectors name them.
func runtimeFamilies() []Family {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	one := func(name, help string, kind Kind, v float64) Family {
		return Family{Name: name, Help: help, Kind: kind, Samples: []Sample{{Value: v}}}
	}
	fams := []Family{
		one("go_goroutines", "Number of goroutines that currently exist.", Gauge, float64(runtime.NumGoroutine())),
		one("go_threads", "Number of OS threads created.", Gauge, float64(threads())),
		one("go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use.", Gauge, float64(ms.HeapAlloc)),
		one("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", Gauge, float64(ms.HeapInuse)),
		one("go_memstats_sys_bytes", "Number of bytes obtained from system.", Gauge, float64(ms.Sys)),
		one("go_memstats_mallocs_total", "Total number of heap objects allocated.", Counter, float64(ms.Mallocs)),
		one("go_gc_cycles_total", "Number of completed GC cycles.", Counter, float64(ms.NumGC)),
		one("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", Gauge, startTime),
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		cpu := float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
		fams = append(fams, one("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", Counter, cpu))
	}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if pages, err := strconv.ParseFloat(f[1], 64); err == nil {
				fams = append(fams, one("process_resident_memory_bytes", "Resident memory size in bytes.", Gauge, pages*float64(os.Getpagesize())))
			}
		}
	}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		fams = append(fams, one("process_open_fds", "Number of open file descriptors.", Gauge, float64(len(ents))))
	}
	return fams
}

// threads is the number of this process's OS threads (/proc/self/status), 0 if unknown.
func threads() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}
