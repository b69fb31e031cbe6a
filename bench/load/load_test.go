package load

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// silentServer accepts connections and never answers; it returns its address.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

func TestRunFailsOnStuckServer(t *testing.T) {
	addr := silentServer(t)
	start := time.Now()
	_, err := Run(context.Background(), Config{Addr: addr, Conns: 3, Messages: 10, IOTimeout: 400 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "read") {
		t.Fatalf("err = %v, want a read timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to fail; IOTimeout is 400ms", d)
	}
}

func TestRunCancelled(t *testing.T) {
	addr := silentServer(t)
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{name: "counted run reports the cancellation", cfg: Config{Messages: 10}, wantErr: true},
		{name: "timed run returns what it measured", cfg: Config{Duration: time.Minute}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			cfg := tc.cfg
			cfg.Addr, cfg.Conns, cfg.IOTimeout = addr, 3, time.Minute
			start := time.Now()
			res, err := Run(ctx, cfg)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("returned %v after the cancellation", d)
			}
			if tc.wantErr != (err != nil) || (err != nil && !errors.Is(err, context.DeadlineExceeded)) {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if res == nil || res.Msgs != 0 {
				t.Errorf("result %+v, want 0 messages", res)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{name: "no address", cfg: Config{Messages: 1}},
		{name: "neither bound", cfg: Config{Addr: "127.0.0.1:1"}},
		{name: "both bounds", cfg: Config{Addr: "127.0.0.1:1", Messages: 1, Duration: time.Second}},
		{name: "negative conns", cfg: Config{Addr: "127.0.0.1:1", Messages: 1, Conns: -1}},
		{name: "negative rate", cfg: Config{Addr: "127.0.0.1:1", Messages: 1, Rate: -1}},
		{name: "rate with depth", cfg: Config{Addr: "127.0.0.1:1", Messages: 1, Rate: 10, Depth: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Run(context.Background(), tc.cfg); err == nil {
				t.Error("no error")
			}
		})
	}
}

// TestRatePaces: a paced run never sends ahead of its schedule, and a counted one still
// completes its messages.
func TestRatePaces(t *testing.T) {
	addr := echoServer(t)
	const conns, rate = 4, 200.0
	start := time.Now()
	res, err := Run(context.Background(), Config{Addr: addr, Conns: conns, Messages: 40, Rate: rate})
	if err != nil {
		t.Fatal(err)
	}
	if res.Msgs != 40 {
		t.Fatalf("%d messages, want 40", res.Msgs)
	}
	// 10 per connection at 200/s: the last is due 9 intervals (45 ms) after the first.
	if took, least := time.Since(start), 9*time.Second/time.Duration(rate); took < least {
		t.Fatalf("40 messages at %v/s on %d connections took %v, less than the schedule's %v", rate, conns, took, least)
	}
}
