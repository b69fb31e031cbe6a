// Package load is a closed-loop TCP echo load generator: each connection keeps Depth messages
// of Size bytes in flight, reading every echo back whole before sending the next, and records
// each message's round-trip latency.
package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Config is one load run.
type Config struct {
	Addr  string // host:port of the echo server
	Conns int    // connections (default 100)
	Size  int    // bytes per message (default 64)
	Depth int    // messages in flight per connection (default 1: send, read back, repeat)

	// Either Duration or Messages bounds the run. With Duration, the connections run for
	// Warmup (not measured), then for Duration (measured). With Messages, exactly that many
	// round trips are made, spread over the connections, all measured.
	Duration time.Duration
	Warmup   time.Duration
	Messages int

	// Rate, when above 0, paces each connection (Depth 1 only) to this many messages a second
	// on a fixed schedule, the connections' schedules spread over one interval: an open-loop
	// client, whose latency counts from when a message was due, so a server that falls behind
	// is charged for the backlog (no coordinated omission). 0: each message is sent as soon as
	// the previous echo is back (closed loop).
	Rate float64

	// Verify compares every echo with what was sent (costs a little CPU). Not with Framed.
	Verify bool
	// Framed makes each message a frame of a 4-byte big-endian length header (Size-4) and
	// Size-4 bytes, for a length-framed server (swooleecho -length). Size must be above 4.
	Framed bool
	// TLS, if set, makes every connection a TLS client with this configuration, its
	// handshake completed by Dial (before the measured window).
	TLS *tls.Config
	// DialTimeout bounds connecting (default 5s). IOTimeout (default 10s) bounds waiting on
	// the server: a connection with no progress for between IOTimeout/2 and IOTimeout fails
	// the run instead of hanging it.
	DialTimeout time.Duration
	IOTimeout   time.Duration

	// Probe, if set, is sampled at the start and the end of the measured window (the whole
	// run for a counted one): Result.ServerCPU is the CPU time the server used between.
	Probe Probe
}

// Result is what a run measured.
type Result struct {
	Msgs    uint64        // round trips completed in the measured window
	Total   uint64        // round trips completed in all, warmup and stragglers included
	Bytes   uint64        // payload bytes echoed back in the window (one direction)
	Elapsed time.Duration // the measured window
	Latency Histogram     // round-trip latency of each measured message

	// ServerCPU is the server's CPU time over the measured window, from Config.Probe (zero
	// without one).
	ServerCPU time.Duration
}

// CPUPerMsg returns the server's CPU microseconds per message of the window (0 without a
// Probe or messages).
func (r *Result) CPUPerMsg() float64 {
	if r.Msgs == 0 {
		return 0
	}
	return float64(r.ServerCPU) / float64(time.Microsecond) / float64(r.Msgs)
}

// MsgsPerSec returns the message rate.
func (r *Result) MsgsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Msgs) / r.Elapsed.Seconds()
}

// MBPerSec returns the echoed payload rate in MB/s (10^6 bytes, one direction).
func (r *Result) MBPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) / 1e6 / r.Elapsed.Seconds()
}

// String is a one-line human summary.
func (r *Result) String() string {
	s := fmt.Sprintf("%d msgs in %v: %.0f msgs/s, %.2f MB/s, latency p50 %v p99 %v p999 %v max %v",
		r.Msgs, r.Elapsed.Round(time.Millisecond), r.MsgsPerSec(), r.MBPerSec(),
		r.Latency.Quantile(0.50), r.Latency.Quantile(0.99), r.Latency.Quantile(0.999), r.Latency.Max())
	if r.ServerCPU > 0 {
		s += fmt.Sprintf(", server CPU %.2f µs/msg", r.CPUPerMsg())
	}
	return s
}

func (c *Config) defaults() error {
	if c.Conns == 0 {
		c.Conns = 100
	}
	if c.Size == 0 {
		c.Size = 64
	}
	if c.Depth == 0 {
		c.Depth = 1
	}
	if c.Framed && c.Size <= 4 {
		return fmt.Errorf("load: a framed message of %d bytes: it needs more than its 4-byte header", c.Size)
	}
	if c.Framed && c.Verify {
		return errors.New("load: Verify and Framed cannot be combined: Verify stamps a sequence number on each message's first byte, which a frame's length header holds")
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.IOTimeout == 0 {
		c.IOTimeout = 10 * time.Second
	}
	switch {
	case c.Addr == "":
		return errors.New("load: no address")
	case c.Conns < 0 || c.Size < 0 || c.Depth < 0:
		return errors.New("load: conns, size and depth must be positive")
	case c.Rate < 0 || c.Rate > 0 && c.Depth != 1:
		return errors.New("load: a rate must be positive, and needs depth 1")
	case (c.Duration > 0) == (c.Messages > 0):
		return errors.New("load: give exactly one of Duration and Messages")
	case c.Duration < 0 || c.Warmup < 0 || c.Messages < 0:
		return errors.New("load: negative duration or message count")
	}
	return nil
}

// Run connects, drives the load and closes every connection. ctx cancels it early (the
// measured window then ends at the cancellation).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cl, err := Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return cl.Run(ctx)
}

// Client is a set of connections to an echo server, ready to drive load with Run (once). Dial
// it before a benchmark's timer starts so that connecting is not measured.
type Client struct {
	cfg   Config
	conns []net.Conn
	loads []*connLoad // one per connection, with its buffers and histogram made by Dial
}

// Dial checks cfg and opens its connections.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	cl := &Client{cfg: cfg, conns: make([]net.Conn, 0, cfg.Conns)}
	d := net.Dialer{Timeout: cfg.DialTimeout}
	for i := range cfg.Conns {
		c, err := dialTLS(ctx, &d, cfg.Addr, cfg.TLS, cfg.IOTimeout)
		if err != nil {
			cl.Close()
			return nil, fmt.Errorf("load: connection %d of %d: %w", i+1, cfg.Conns, err)
		}
		cl.conns = append(cl.conns, c)
		out := bytes.Repeat([]byte{'x'}, cfg.Size*cfg.Depth)
		if cfg.Framed {
			for m := 0; m+cfg.Size <= len(out); m += cfg.Size {
				binary.BigEndian.PutUint32(out[m:], uint32(cfg.Size-4))
			}
		}
		cl.loads = append(cl.loads, &connLoad{
			c:    c,
			out:  out,
			in:   make([]byte, min(max(cfg.Size*cfg.Depth, 4096), 256<<10)),
			sent: make([]time.Time, cfg.Depth),
		})
	}
	return cl, nil
}

// Close closes the connections.
func (cl *Client) Close() {
	for _, c := range cl.conns {
		c.Close()
	}
	cl.conns, cl.loads = nil, nil
}

// Run drives the load the Config describes on the open connections and returns what it
// measured. ctx cancels it early.
func (cl *Client) Run(ctx context.Context) (*Result, error) {
	cfg := cl.cfg
	conns := cl.conns
	if len(conns) == 0 {
		return nil, errors.New("load: Run on a closed Client")
	}
	// The window: [start, end) for a timed run; the whole run for a counted one.
	now := time.Now()
	counted := cfg.Messages > 0
	w := window{start: now.Add(cfg.Warmup)}
	w.end = w.start.Add(cfg.Duration)
	if counted {
		w.start, w.end = now, time.Time{}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	unblocked := make(chan struct{})
	go func() { // unblock every reader and writer on cancellation
		defer close(unblocked)
		<-ctx.Done()
		for _, c := range conns {
			c.SetDeadline(time.Unix(1, 0))
		}
	}()

	allDone := make(chan struct{})
	var sampled chan cpuSample
	if cfg.Probe != nil {
		sampled = make(chan cpuSample, 1)
		go func() { sampled <- sampleWindow(ctx, cfg.Probe, w, counted, allDone) }()
	}

	workers := cl.loads
	var wg sync.WaitGroup
	errs := make(chan error, len(conns))
	for i := range conns {
		quota := 0
		if counted {
			quota = cfg.Messages / len(conns)
			if i < cfg.Messages%len(conns) {
				quota++
			}
		}
		l := workers[i]
		l.cfg, l.w, l.counted, l.quota, l.ctx = &cfg, w, counted, quota, ctx
		if cfg.Rate > 0 {
			iv := time.Duration(float64(time.Second) / cfg.Rate)
			l.interval, l.due = iv, now.Add(iv*time.Duration(i)/time.Duration(len(conns)))
		}
		wg.Go(func() {
			if err := l.run(); err != nil {
				errs <- fmt.Errorf("load: connection %d: %w", i+1, err)
				cancel()
			}
		})
	}
	wg.Wait()
	finished := time.Now()
	stopped := ctx.Err() != nil
	close(allDone)
	var cpu cpuSample
	if sampled != nil {
		cpu = <-sampled
	}
	cancel()
	<-unblocked
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	if cpu.err != nil {
		return nil, fmt.Errorf("load: sampling the server: %w", cpu.err)
	}

	res := &Result{ServerCPU: cpu.used}
	for _, l := range workers {
		res.Msgs += l.msgs
		res.Total += l.total
		res.Latency.Merge(&l.hist)
	}
	res.Bytes = res.Msgs * uint64(cfg.Size)
	end := finished
	if !counted && w.end.Before(end) {
		end = w.end
	}
	res.Elapsed = max(end.Sub(w.start), 0)
	if stopped && counted {
		return res, context.Cause(ctx)
	}
	return res, nil
}

type cpuSample struct {
	used time.Duration
	err  error
}

// sampleWindow samples p's CPU time at w.start and at w.end (for a counted run: now and when
// done is closed); the end sample is taken early if the run ends or is cancelled first.
func sampleWindow(ctx context.Context, p Probe, w window, counted bool, done <-chan struct{}) cpuSample {
	if !counted {
		t := time.NewTimer(time.Until(w.start))
		select {
		case <-t.C:
		case <-done:
			t.Stop()
			return cpuSample{}
		}
	}
	c0, err := p.CPU()
	if err != nil {
		return cpuSample{err: err}
	}
	if counted {
		<-done
	} else {
		t := time.NewTimer(time.Until(w.end))
		select {
		case <-t.C:
		case <-done:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
		}
	}
	c1, err := p.CPU()
	return cpuSample{used: c1 - c0, err: err}
}

// window is the measured interval: [start, end), or from start on when end is zero.
type window struct{ start, end time.Time }

// connLoad drives one connection; its fields are its own until run returns.
type connLoad struct {
	cfg     *Config
	c       net.Conn
	w       window
	counted bool // a run of quota messages, else a timed run
	quota   int
	ctx     context.Context

	out  []byte      // Depth messages, sent k at a time in one write
	in   []byte      // the read buffer: echoes are counted as their bytes arrive
	sent []time.Time // send times of the messages in flight, a ring of Depth

	interval time.Duration // Config.Rate: the time between two messages' due times
	due      time.Time     // Config.Rate: when the next message is due

	msgs  uint64 // in the window
	total uint64 // all
	hist  Histogram
}

// run keeps Depth messages in flight: it sends Depth at once in one write, then reads what
// arrives, and for the k messages completed by a read sends k new ones in one write (a
// pipelining client, as redis-benchmark -P does; at depth 1 it is send one, read it back).
// Each message's latency is from the write that sent it to the read that completed its echo.
func (l *connLoad) run() error {
	cfg := l.cfg
	size, depth := cfg.Size, cfg.Depth
	sent := l.sent
	head, inFlight, sentTotal, received := 0, 0, 0, 0
	timed := !l.counted

	// allowed returns how many of k new messages may be sent now.
	allowed := func(now time.Time, k int) int {
		if l.ctx.Err() != nil {
			return 0
		}
		if timed {
			if now.Before(l.w.end) {
				return k
			}
			return 0
		}
		return min(k, l.quota-sentTotal)
	}
	// The I/O deadline is moved on only when half of it has passed, so that the hot loop
	// does not reset a runtime timer per message.
	var deadline time.Time
	refresh := func(now time.Time) error {
		if now.Add(cfg.IOTimeout / 2).Before(deadline) {
			return nil
		}
		deadline = now.Add(cfg.IOTimeout)
		if err := l.c.SetDeadline(deadline); err != nil {
			return err
		}
		if l.ctx.Err() != nil { // Run's canceller may have set its past deadline just before
			return l.c.SetDeadline(time.Unix(1, 0))
		}
		return nil
	}
	send := func(now time.Time, k int) error {
		if l.interval > 0 { // paced, depth 1: wait for the message's due time
			if d := l.due.Sub(now); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-l.ctx.Done():
					t.Stop()
					return nil
				}
				now = time.Now()
			}
		}
		if k = allowed(now, k); k <= 0 {
			return nil
		}
		out := l.out[:k*size]
		if cfg.Verify {
			for i := range k {
				out[i*size] = byte(sentTotal + i)
			}
		}
		if err := refresh(now); err != nil {
			return err
		}
		if _, err := l.c.Write(out); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		for range k {
			sent[(head+inFlight)%depth] = now
			inFlight++
		}
		if l.interval > 0 {
			sent[head] = l.due // latency counts from when it was due (it is 1 in flight)
			l.due = l.due.Add(l.interval)
		}
		sentTotal += k
		return nil
	}

	now := time.Now()
	if err := send(now, depth); err != nil {
		return err
	}
	pending := 0 // bytes of the next echo already read
	for inFlight > 0 {
		if err := refresh(now); err != nil {
			return err
		}
		n, err := l.c.Read(l.in[:min(len(l.in), inFlight*size-pending)])
		if n == 0 {
			if l.ctx.Err() != nil {
				return nil // cancelled: not an error of this connection
			}
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read: %w", err)
		}
		now = time.Now()
		if cfg.Verify {
			for i, b := range l.in[:n] {
				off := pending + i
				want := byte('x')
				if off%size == 0 {
					want = byte(received + off/size)
				}
				if b != want {
					return fmt.Errorf("echo %d differs from what was sent (byte %d)", received+off/size, off%size)
				}
			}
		}
		pending += n
		k := pending / size
		pending %= size
		for range k {
			received++
			l.total++
			if !now.Before(l.w.start) && (timed && now.Before(l.w.end) || !timed) {
				l.msgs++
				l.hist.Record(now.Sub(sent[head]))
			}
			head = (head + 1) % depth
			inFlight--
		}
		if k > 0 {
			if err := send(now, k); err != nil {
				return err
			}
		}
	}
	return nil
}
