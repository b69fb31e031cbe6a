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
	"sync/atomic"
	"time"
)

// IdleConfig is an idle-connections run: open Conns connections, echo one message of Ping
// bytes on each (so that the server has accepted, registered and served every one of them),
// wait Settle, and measure the server's resident memory against what it was before.
type IdleConfig struct {
	Addr  string
	Conns int // connections to hold
	Ping  int // bytes echoed once on each connection after connecting (0: none)
	// Claim, when positive, replaces the ping: each connection sends a 4-byte big-endian
	// length header claiming Claim bytes and nothing after it (the header attack on a
	// length-framed server: what the server holds for a frame it was only promised).
	Claim   int
	Dialers int           // connections opened concurrently (default 32)
	Settle  time.Duration // wait after the last echo before measuring (default 1s)
	Hold    time.Duration // keep the connections open this long after measuring
	Probe   Probe         // the server (required)
	// TLS, if set, makes every connection a TLS client with this configuration (the
	// handshake done as it connects, before its ping).
	TLS *tls.Config

	DialTimeout time.Duration // per connection (default 5s)
	IOTimeout   time.Duration // per ping (default 10s)
}

// IdleResult is what an idle run measured.
type IdleResult struct {
	Conns     int
	RSSBefore int64 // the server's resident bytes before connecting
	RSSAfter  int64 // ... with all the connections open, after Settle
	PSSBefore int64 // proportional set size, if the Probe has a PSS method (else 0)
	PSSAfter  int64 //
	// The growth of RssAnon, RssFile and RssShmem (if the Probe has an RSSParts method).
	AnonGrowth, FileGrowth, ShmemGrowth int64
	Open                                time.Duration // wall time to open and ping all the connections
	ServerCPU                           time.Duration // the server's CPU time while they were opened and pinged
}

// BytesPerConn is the server's resident memory growth per connection.
func (r *IdleResult) BytesPerConn() float64 {
	if r.Conns == 0 {
		return 0
	}
	return float64(r.RSSAfter-r.RSSBefore) / float64(r.Conns)
}

// PSSPerConn is BytesPerConn from the proportional set size (0 without one).
func (r *IdleResult) PSSPerConn() float64 {
	if r.Conns == 0 || r.PSSAfter == 0 {
		return 0
	}
	return float64(r.PSSAfter-r.PSSBefore) / float64(r.Conns)
}

// CPUPerConn is the server's CPU microseconds per connection to accept it and serve its ping.
func (r *IdleResult) CPUPerConn() float64 {
	if r.Conns == 0 {
		return 0
	}
	return float64(r.ServerCPU) / float64(time.Microsecond) / float64(r.Conns)
}

// PartsPerConn is the growth of RssAnon, RssFile and RssShmem per connection.
func (r *IdleResult) PartsPerConn() (anon, file, shmem float64) {
	if r.Conns == 0 {
		return 0, 0, 0
	}
	n := float64(r.Conns)
	return float64(r.AnonGrowth) / n, float64(r.FileGrowth) / n, float64(r.ShmemGrowth) / n
}

func (r *IdleResult) String() string {
	a, f, m := r.PartsPerConn()
	return fmt.Sprintf("%d idle conns: server RSS %.1f → %.1f MB, %.0f B/conn (anon %.0f, file %.0f, shmem %.0f; PSS %.0f B/conn); opened in %v, server CPU %.1f µs/conn",
		r.Conns, float64(r.RSSBefore)/1e6, float64(r.RSSAfter)/1e6, r.BytesPerConn(), a, f, m, r.PSSPerConn(),
		r.Open.Round(time.Millisecond), r.CPUPerConn())
}

type pssProbe interface{ PSS() (int64, error) }

type partsProbe interface {
	RSSParts() (anon, file, shmem int64, err error)
}

// Idle runs cfg: it returns once the connections are measured (and held for cfg.Hold), and
// closes them all before returning.
func Idle(ctx context.Context, cfg IdleConfig) (*IdleResult, error) {
	if cfg.Addr == "" || cfg.Conns < 1 || cfg.Ping < 0 || cfg.Probe == nil {
		return nil, errors.New("load: idle needs an address, a positive Conns and a Probe")
	}
	if cfg.Dialers <= 0 {
		cfg.Dialers = 32
	}
	if cfg.Settle == 0 {
		cfg.Settle = time.Second
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.IOTimeout == 0 {
		cfg.IOTimeout = 10 * time.Second
	}
	pss, _ := cfg.Probe.(pssProbe)
	parts, _ := cfg.Probe.(partsProbe)
	res := &IdleResult{Conns: cfg.Conns}
	var err error
	var a0, f0, m0 int64
	if parts != nil {
		if a0, f0, m0, err = parts.RSSParts(); err != nil {
			return nil, err
		}
	}
	if res.RSSBefore, err = cfg.Probe.RSS(); err != nil {
		return nil, err
	}
	if pss != nil {
		if res.PSSBefore, err = pss.PSS(); err != nil {
			return nil, err
		}
	}
	cpu0, err := cfg.Probe.CPU()
	if err != nil {
		return nil, err
	}

	conns := make([]net.Conn, cfg.Conns)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Dialers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(cfg.Dialers, cfg.Conns) {
		wg.Go(func() {
			d := net.Dialer{Timeout: cfg.DialTimeout}
			msg := bytes.Repeat([]byte{'i'}, cfg.Ping)
			got := make([]byte, cfg.Ping)
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= cfg.Conns {
					return
				}
				c, err := dialTLS(ctx, &d, cfg.Addr, cfg.TLS, cfg.IOTimeout)
				if err != nil {
					errs <- fmt.Errorf("load: idle connection %d of %d: %w", i+1, cfg.Conns, err)
					cancel()
					return
				}
				conns[i] = c
				if cfg.Claim > 0 {
					c.SetDeadline(time.Now().Add(cfg.IOTimeout))
					if _, err := c.Write([]byte{byte(cfg.Claim >> 24), byte(cfg.Claim >> 16), byte(cfg.Claim >> 8), byte(cfg.Claim)}); err != nil {
						errs <- fmt.Errorf("load: idle connection %d of %d: claim: %w", i+1, cfg.Conns, err)
						cancel()
						return
					}
					c.SetDeadline(time.Time{})
					continue
				}
				if cfg.Ping == 0 {
					continue
				}
				c.SetDeadline(time.Now().Add(cfg.IOTimeout))
				_, err = c.Write(msg)
				if err == nil {
					_, err = io.ReadFull(c, got)
				}
				if err != nil {
					errs <- fmt.Errorf("load: idle connection %d of %d: ping: %w", i+1, cfg.Conns, err)
					cancel()
					return
				}
				c.SetDeadline(time.Time{})
			}
		})
	}
	wg.Wait()
	res.Open = time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cpu1, err := cfg.Probe.CPU()
	if err != nil {
		return nil, err
	}
	res.ServerCPU = cpu1 - cpu0

	if err := sleep(ctx, cfg.Settle); err != nil {
		return nil, err
	}
	if res.RSSAfter, err = cfg.Probe.RSS(); err != nil {
		return nil, err
	}
	if pss != nil {
		if res.PSSAfter, err = pss.PSS(); err != nil {
			return nil, err
		}
	}
	if parts != nil {
		a1, f1, m1, err := parts.RSSParts()
		if err != nil {
			return nil, err
		}
		res.AnonGrowth, res.FileGrowth, res.ShmemGrowth = a1-a0, f1-f0, m1-m0
	}
	if err := sleep(ctx, cfg.Hold); err != nil {
		return nil, err
	}
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
