package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/goswoole/swoole/bench/load"
	"github.com/goswoole/swoole/bench/servers"
)

// BenchmarkEcho drives each echo server, started in this process on a free port, with 100
// connections sending 64-byte messages in a closed loop (depth 1): b.N round trips in all,
// spread evenly over the connections. Connecting is not timed. Allocations are the whole
// process's: the server's and the load generator's together. goswoole-thread is goswoole in
// ModeThread (one reactor loop, two worker loops).
//
//	cd bench && go test -run='^$' -bench=Echo -benchtime=200000x
func BenchmarkEcho(b *testing.B) {
	for _, sc := range serverCases(servers.Options{}) {
		b.Run(sc.name, func(b *testing.B) {
			srv, err := servers.StartWith(sc.server, "127.0.0.1:0", sc.opts)
			if errors.Is(err, servers.ErrUnsupported) {
				b.Skip(err)
			}
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				if err := srv.Close(); err != nil {
					b.Error(err)
				}
			}()
			// Bound every run: a stuck server fails the benchmark instead of hanging it.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cl, err := load.Dial(ctx, load.Config{
				Addr: srv.Addr(), Conns: 100, Size: 64, Depth: 1, Messages: b.N,
				IOTimeout: 10 * time.Second,
			})
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()

			b.ReportAllocs()
			b.SetBytes(64)
			b.ResetTimer()
			res, err := cl.Run(ctx)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if res.Msgs != uint64(b.N) {
				b.Fatalf("%d round trips, want %d", res.Msgs, b.N)
			}
			b.ReportMetric(res.MsgsPerSec(), "msgs/s")
			b.ReportMetric(float64(res.Latency.Quantile(0.99))/float64(time.Microsecond), "p99-µs")
		})
	}
}
