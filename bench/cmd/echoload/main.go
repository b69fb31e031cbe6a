// Command echoload is a closed-loop TCP echo load generator.
//
//	echoload -addr 127.0.0.1:9501 -conns 100 -size 64 -depth 1 -duration 5s
//
// Each of -conns connections keeps -depth messages of -size bytes in flight: it sends, reads
// each echo back whole, and sends the next (depth 1: send one, read it back, repeat). After
// -warmup (not measured) it measures for -duration and reports messages per second, echoed
// megabytes per second (10^6 bytes, one direction) and the round-trip latency p50/p99/max.
// -csv prints one machine-readable line instead:
// msgs,msgs_per_s,mb_per_s,p50_us,p99_us,max_us,total_msgs (total_msgs counts the warmup too).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/goswoole/swoole/bench/load"
)

func main() {
	var cfg load.Config
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:9501", "echo server host:port")
	flag.IntVar(&cfg.Conns, "conns", 100, "connections")
	flag.IntVar(&cfg.Size, "size", 64, "bytes per message")
	flag.IntVar(&cfg.Depth, "depth", 1, "messages in flight per connection")
	flag.DurationVar(&cfg.Duration, "duration", 5*time.Second, "measured time")
	flag.DurationVar(&cfg.Warmup, "warmup", 500*time.Millisecond, "unmeasured time before -duration")
	flag.BoolVar(&cfg.Verify, "verify", false, "check every echo against what was sent")
	csv := flag.Bool("csv", false, "print one CSV line: msgs,msgs_per_s,mb_per_s,p50_us,p99_us,max_us,total_msgs")
	flag.Parse()
	if flag.NArg() > 0 || cfg.Conns < 1 || cfg.Size < 1 || cfg.Depth < 1 || cfg.Duration <= 0 || cfg.Warmup < 0 {
		fmt.Fprintln(os.Stderr, "echoload: -conns, -size, -depth and -duration must be positive, and no arguments follow the flags")
		flag.Usage()
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := load.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "echoload: %v\n", err)
		os.Exit(1)
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	if *csv {
		fmt.Printf("%d,%.0f,%.3f,%.1f,%.1f,%.1f,%d\n", res.Msgs, res.MsgsPerSec(), res.MBPerSec(),
			us(res.Latency.Quantile(0.50)), us(res.Latency.Quantile(0.99)), us(res.Latency.Max()), res.Total)
		return
	}
	fmt.Printf("echoload: %s, %d conns × %d B, depth %d, %v (+%v warmup)\n", cfg.Addr, cfg.Conns, cfg.Size, cfg.Depth, cfg.Duration, cfg.Warmup)
	fmt.Printf("  msgs      %d\n", res.Msgs)
	fmt.Printf("  msgs/s    %.0f\n", res.MsgsPerSec())
	fmt.Printf("  MB/s      %.2f\n", res.MBPerSec())
	fmt.Printf("  latency   p50 %v  p99 %v  max %v\n", res.Latency.Quantile(0.50), res.Latency.Quantile(0.99), res.Latency.Max())
}
