package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// ConnectConfig is a connection-churn run: Workers loops, each connecting, echoing one
// message of Size bytes, closing, and starting over, for Warmup (not measured) then Duration.
type ConnectConfig struct {
	Addr     string
	Workers  int // concurrent loops (default 50)
	Size     int // bytes echoed per connection (default 64)
	Duration time.Duration
	Warmup   time.Duration
	Probe    Probe // if set, Result.ServerCPU is the server's CPU time over the window
	// TLS, if set, makes each cycle a TLS client with this configuration: a handshake per
	// connection (a full one, or a resumed one when it has a ClientSessionCache).
	TLS *tls.Config

	DialTimeout time.Duration // default 5s
	IOTimeout   time.Duration // per echo (default 10s)
}

// ConnectResult is what a connect run measured.
type ConnectResult struct {
	Conns     uint64        // connections opened, echoed and closed in the window
	Total     uint64        // ... in all, warmup included
	Errors    uint64        // failed cycles (dial, echo), in all
	Resumed   uint64        // TLS: connections of the window whose handshake resumed a session
	FirstErr  error         // the first failure, if any
	Elapsed   time.Duration // the window
	Latency   Histogram     // connect + echo + close, per connection in the window
	ServerCPU time.Duration // the server's CPU time over the window
}

// ConnsPerSec returns the connection rate.
func (r *ConnectResult) ConnsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Conns) / r.Elapsed.Seconds()
}

// CPUPerConn returns the server's CPU microseconds per connection of the window.
func (r *ConnectResult) CPUPerConn() float64 {
	if r.Conns == 0 {
		return 0
	}
	return float64(r.ServerCPU) / float64(time.Microsecond) / float64(r.Conns)
}

func (r *ConnectResult) String() string {
	s := fmt.Sprintf("%d conns in %v: %.0f conns/s, connect+echo+close p50 %v p99 %v p999 %v max %v, server CPU %.2f µs/conn",
		r.Conns, r.Elapsed.Round(time.Millisecond), r.ConnsPerSec(), r.Latency.Quantile(0.5),
		r.Latency.Quantile(0.99), r.Latency.Quantile(0.999), r.Latency.Max(), r.CPUPerConn())
	if r.Resumed > 0 {
		s += fmt.Sprintf(", %d resumed TLS sessions", r.Resumed)
	}
	if r.Errors > 0 {
		s += fmt.Sprintf("; %d errors, the first: %v", r.Errors, r.FirstErr)
	}
	return s
}

// maxConsecutiveErrors stops a connect run whose worker fails this many cycles in a row.
const maxConsecutiveErrors = 100

// Connect runs cfg. Failed cycles are counted (Errors) and the run goes on; it fails only when
// a worker fails maxConsecutiveErrors cycles in a row, or nothing succeeded in the window.
func Connect(ctx context.Context, cfg ConnectConfig) (*ConnectResult, error) {
	if cfg.Workers == 0 {
		cfg.Workers = 50
	}
	if cfg.Size == 0 {
		cfg.Size = 64
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.IOTimeout == 0 {
		cfg.IOTimeout = 10 * time.Second
	}
	if cfg.Addr == "" || cfg.Workers < 0 || cfg.Size < 0 || cfg.Duration <= 0 || cfg.Warmup < 0 {
		return nil, errors.New("load: connect needs an address, positive workers and size, and a duration")
	}
	w := window{start: time.Now().Add(cfg.Warmup)}
	w.end = w.start.Add(cfg.Duration)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	allDone := make(chan struct{})
	var sampled chan cpuSample
	if cfg.Probe != nil {
		sampled = make(chan cpuSample, 1)
		go func() { sampled <- sampleWindow(ctx, cfg.Probe, w, false, allDone) }()
	}

	type worker struct {
		conns, total, errors uint64
		resumed              uint64
		first                error
		hist                 Histogram
	}
	workers := make([]*worker, cfg.Workers)
	var wg sync.WaitGroup
	for i := range workers {
		wk := &worker{}
		workers[i] = wk
		wg.Go(func() {
			d := net.Dialer{Timeout: cfg.DialTimeout}
			msg := bytes.Repeat([]byte{'c'}, cfg.Size)
			got := make([]byte, cfg.Size)
			failed := 0
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(w.end) {
					return
				}
				resumed, err := cycle(ctx, &d, cfg.Addr, cfg.TLS, cfg.IOTimeout, msg, got)
				now := time.Now()
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					wk.errors++
					if wk.first == nil {
						wk.first = err
					}
					if failed++; failed >= maxConsecutiveErrors {
						wk.first = fmt.Errorf("%d failures in a row, the first: %w", failed, wk.first)
						cancel()
						return
					}
					continue
				}
				failed = 0
				wk.total++
				if !t0.Before(w.start) && now.Before(w.end) {
					wk.conns++
					if resumed {
						wk.resumed++
					}
					wk.hist.Record(now.Sub(t0))
				}
			}
		})
	}
	wg.Wait()
	finished := time.Now()
	close(allDone)
	var cpu cpuSample
	if sampled != nil {
		cpu = <-sampled
	}
	res := &ConnectResult{ServerCPU: cpu.used}
	for _, wk := range workers {
		res.Conns += wk.conns
		res.Total += wk.total
		res.Errors += wk.errors
		res.Resumed += wk.resumed
		if res.FirstErr == nil {
			res.FirstErr = wk.first
		}
		res.Latency.Merge(&wk.hist)
	}
	end := finished
	if w.end.Before(end) {
		end = w.end
	}
	res.Elapsed = max(end.Sub(w.start), 0)
	switch {
	case cpu.err != nil:
		return nil, fmt.Errorf("load: sampling the server: %w", cpu.err)
	case ctx.Err() != nil && res.FirstErr != nil:
		return res, fmt.Errorf("load: connect: %w", res.FirstErr)
	case res.Conns == 0 && res.FirstErr != nil:
		return res, fmt.Errorf("load: connect: nothing succeeded: %w", res.FirstErr)
	}
	return res, nil
}

// cycle connects (with a TLS handshake if conf is set), echoes msg and closes; it says
// whether the TLS handshake resumed a session.
func cycle(ctx context.Context, d *net.Dialer, addr string, conf *tls.Config, timeout time.Duration, msg, got []byte) (bool, error) {
	c, err := dialTLS(ctx, d, addr, conf, timeout)
	if err != nil {
		return false, fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	resumed := false
	if tc, ok := c.(*tls.Conn); ok {
		resumed = tc.ConnectionState().DidResume
	}
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(msg); err != nil {
		return resumed, fmt.Errorf("write: %w", err)
	}
	if _, err := io.ReadFull(c, got); err != nil {
		return resumed, fmt.Errorf("read: %w", err)
	}
	return resumed, nil
}
