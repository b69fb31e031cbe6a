package load

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// AttackConfig is the bad traffic of an attack run against a length-framed server (4-byte
// big-endian header, swooleecho -length), sent beside the good clients of a Config.
type AttackConfig struct {
	Addr string
	// Slowloris connections each send a frame's header one byte a second, then its body one
	// byte a second, never finishing in time: the server's heartbeat must close them (they
	// reconnect).
	Slowloris int
	// Rate is the bad connections opened per second in all, shared by the two kinds below.
	Rate int
	// Garbage connections write random bytes (a header that claims anything) and close.
	// Oversized connections write a header claiming more than the server's
	// package_max_length (Claim) and nothing after. Weights: GarbageShare of Rate is garbage,
	// the rest oversized.
	GarbageShare float64
	Claim        uint32
}

// AttackStats is what an attack run did.
type AttackStats struct {
	SlowConnects  int64 `json:"slow_connects"` // slowloris connections opened (reconnects included)
	SlowClosed    int64 `json:"slow_closed"`   // ... that the server closed
	BadConnects   int64 `json:"bad_connects"`  // garbage and oversized connections opened
	BadClosedBySv int64 `json:"bad_closed"`    // ... that the server closed before the client did
	DialErrors    int64 `json:"dial_errors"`   // connections that could not be opened
}

// Attack runs the bad traffic until ctx ends.
func Attack(ctx context.Context, cfg AttackConfig) *AttackStats {
	st := &AttackStats{}
	var wg sync.WaitGroup
	d := net.Dialer{Timeout: 2 * time.Second}
	for i := range cfg.Slowloris {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slowloris(ctx, &d, cfg.Addr, uint64(i), st)
		}()
	}
	if cfg.Rate > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second / time.Duration(cfg.Rate))
			defer tick.Stop()
			rng := rand.New(rand.NewPCG(7, 9))
			var inflight sync.WaitGroup
			defer inflight.Wait()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				garbage := rng.Float64() < cfg.GarbageShare
				seed := rng.Uint64()
				inflight.Add(1)
				go func() {
					defer inflight.Done()
					badConn(ctx, &d, cfg, garbage, seed, st)
				}()
			}
		}()
	}
	wg.Wait()
	return st
}

func slowloris(ctx context.Context, d *net.Dialer, addr string, seed uint64, st *AttackStats) {
	rng := rand.New(rand.NewPCG(seed, 1))
	for ctx.Err() == nil {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			atomic.AddInt64(&st.DialErrors, 1)
			if !sleepCtx(ctx, 100*time.Millisecond) {
				return
			}
			continue
		}
		atomic.AddInt64(&st.SlowConnects, 1)
		frame := make([]byte, 4+100)
		binary.BigEndian.PutUint32(frame, 100)
		// Start at a random second so the connections do not move in step.
		if !sleepCtx(ctx, time.Duration(rng.IntN(1000))*time.Millisecond) {
			c.Close()
			return
		}
		closed := false
		for _, b := range frame {
			c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			if _, err := c.Write([]byte{b}); err != nil {
				closed = true
				break
			}
			if !sleepCtx(ctx, time.Second) {
				break
			}
			// A read with a short deadline tells a close by the server.
			c.SetReadDeadline(time.Now().Add(time.Millisecond))
			var one [1]byte
			if _, err := c.Read(one[:]); err != nil {
				if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
					closed = true
					break
				}
			}
		}
		if closed {
			atomic.AddInt64(&st.SlowClosed, 1)
		}
		c.Close()
	}
}

func badConn(ctx context.Context, d *net.Dialer, cfg AttackConfig, garbage bool, seed uint64, st *AttackStats) {
	c, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		atomic.AddInt64(&st.DialErrors, 1)
		return
	}
	defer c.Close()
	atomic.AddInt64(&st.BadConnects, 1)
	var msg []byte
	if garbage {
		rng := rand.New(rand.NewPCG(seed, 2))
		msg = make([]byte, 16+rng.IntN(2000))
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
	} else {
		msg = binary.BigEndian.AppendUint32(nil, cfg.Claim)
	}
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(msg); err != nil {
		atomic.AddInt64(&st.BadClosedBySv, 1)
		return
	}
	// Wait (up to 2 s) for the server to close it: a framing error closes at once.
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				atomic.AddInt64(&st.BadClosedBySv, 1)
			}
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
