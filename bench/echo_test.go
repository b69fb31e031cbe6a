package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/goswoole/swoole/bench/load"
	"github.com/goswoole/swoole/bench/servers"
)

// TestEchoServers checks every server echoes correctly under a short load, with every echo
// compared to what was sent, at depth 1 and 4 (goswoole in ModeThread too).
func TestEchoServers(t *testing.T) {
	for _, sc := range serverCases(servers.Options{}) {
		t.Run(sc.name, func(t *testing.T) {
			srv, err := servers.StartWith(sc.server, "127.0.0.1:0", sc.opts)
			if errors.Is(err, servers.ErrUnsupported) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := srv.Close(); err != nil {
					t.Error(err)
				}
			}()
			for _, tc := range []struct {
				name string
				cfg  load.Config
			}{
				{name: "counted", cfg: load.Config{Conns: 10, Size: 64, Depth: 1, Messages: 1000}},
				{name: "counted depth 4, 1 KiB", cfg: load.Config{Conns: 10, Size: 1024, Depth: 4, Messages: 1003}},
				{name: "fewer messages than conns", cfg: load.Config{Conns: 10, Size: 8, Depth: 2, Messages: 3}},
				{name: "timed", cfg: load.Config{Conns: 5, Size: 64, Depth: 1, Duration: 200 * time.Millisecond, Warmup: 50 * time.Millisecond}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					cfg := tc.cfg
					cfg.Addr, cfg.Verify, cfg.IOTimeout = srv.Addr(), true, 10*time.Second
					res, err := load.Run(ctx, cfg)
					if err != nil {
						t.Fatal(err)
					}
					if cfg.Messages > 0 && res.Msgs != uint64(cfg.Messages) {
						t.Errorf("%d round trips, want %d", res.Msgs, cfg.Messages)
					}
					if res.Msgs == 0 || res.Latency.Count() != res.Msgs {
						t.Errorf("msgs %d, latency samples %d", res.Msgs, res.Latency.Count())
					}
					if cfg.Duration > 0 && res.Elapsed != cfg.Duration {
						t.Errorf("elapsed %v, want %v", res.Elapsed, cfg.Duration)
					}
				})
			}
		})
	}
}
