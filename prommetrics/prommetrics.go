// Package prommetrics serves the admin server's /metrics with prometheus/client_golang: the
// server's goswoole_* families plus client_golang's whole Go runtime and process collectors,
// instead of goswoole's built-in writer (which has a few of them). Import it for its effect:
//
//	import _ "github.com/goswoole/swoole/prommetrics"
//
// It is apart because linking client_golang costs every program (measured with bench's idle
// test: 3.5 MiB of RSS at start, 107 bytes more per idle connection, 6.5 MB of binary).
package prommetrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/goswoole/swoole/internal/metrics"
)

func init() { metrics.Exporter = handler }

// collector turns the families of each scrape into Prometheus metrics. It is an unchecked
// collector (Describe sends nothing): the families and their label values may change from
// one scrape to the next (workers come and go).
type collector struct{ collect func() []metrics.Family }

func (c collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c.collect() {
		desc := prometheus.NewDesc(f.Name, f.Help, f.Labels, nil)
		vt := prometheus.GaugeValue
		if f.Kind == metrics.Counter {
			vt = prometheus.CounterValue
		}
		for _, s := range f.Samples {
			m, err := prometheus.NewConstMetric(desc, vt, s.Value, s.Labels...)
			if err != nil {
				ch <- prometheus.NewInvalidMetric(desc, err)
				continue
			}
			ch <- m
		}
	}
}

// handler serves, at each request, the families collect returns, the Go runtime's metrics
// (go_*) and this process's (process_*: CPU, memory, descriptors).
func handler(collect func() []metrics.Family) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collector{collect},
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
