// Package metrics serves a server's numbers in Prometheus' text exposition format with
// prometheus/client_golang. The server package hands it plain families of samples at each
// scrape, so that the metric definitions stay in the server and this package is the only
// one that knows client_golang.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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

// collector turns the families of each scrape into Prometheus metrics. It is an unchecked
// collector (Describe sends nothing): the families and their label values may change from
// one scrape to the next (workers come and go).
type collector struct{ collect func() []Family }

func (c collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c.collect() {
		desc := prometheus.NewDesc(f.Name, f.Help, f.Labels, nil)
		vt := prometheus.GaugeValue
		if f.Kind == Counter {
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

// Handler serves, at each request, the families collect returns, the Go runtime's metrics
// (go_*) and this process's (process_*: CPU, memory, descriptors).
func Handler(collect func() []Family) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collector{collect},
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
