// Command load is the benchmarks' load generator, in three modes. Every mode, given the
// server's process id (-pid), samples the CPU time of the server's whole process tree from
// /proc (utime+stime of every process, before and after) and reports the server's CPU time
// per message (echo) or per connection (idle, connect).
//
//	load -mode echo    -addr HOST:PORT [-pid PID] -conns C -size S -depth P -duration D [-warmup W]
//	load -mode idle    -addr HOST:PORT  -pid PID  -conns N [-size 64] [-settle 1s] [-hold 0]
//	load -mode connect -addr HOST:PORT [-pid PID] -conns C [-size 64] -duration D [-warmup W]
//
// echo: C connections, each keeping P messages of S bytes in flight (send, read the echo back
// whole, send the next), measured for D after W of warmup: msgs/s, MB/s (10^6 bytes, one
// direction), round-trip latency p50/p99/p999/max, server CPU µs/msg over the window.
//
// idle: open N connections (-dialers at a time), echo one message of -size bytes on each (0:
// none) so that the server has accepted and served each one, wait -settle, and report the
// server's resident memory growth per connection: VmRSS summed over its process tree (from
// /proc/PID/status and /proc/PID/task/*/children, recursively) after, minus before connecting,
// divided by N (and the same from Pss, /proc/PID/smaps_rollup). The generator raises its own
// RLIMIT_NOFILE soft limit to the hard limit first; N must fit under it.
//
// connect: C workers, each looping connect, one echo of -size bytes, close: connections/s,
// the cycle's latency, server CPU µs per connection.
//
// -tls makes every connection a TLS client (no certificate verification): echo and idle
// complete each handshake while connecting (before measuring), connect does one per
// connection, a full one, or with -resume a resumed one (a client session cache).
// -gencert DIR writes a self-signed ECDSA P-256 certificate and key for the servers' -tlscert
// and -tlskey into DIR and exits.
//
// Output: a human summary, or with -json one JSON object (load.Report).
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/goswoole/swoole/bench/load"
	"github.com/goswoole/swoole/bench/servers"
)

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func main() {
	mode := flag.String("mode", "echo", "echo, idle or connect")
	addr := flag.String("addr", "127.0.0.1:9501", "echo server host:port")
	pid := flag.Int("pid", 0, "the server's process id: sample its process tree's CPU time and memory from /proc (idle needs it)")
	conns := flag.Int("conns", 100, "echo: connections; idle: connections held; connect: concurrent workers")
	size := flag.Int("size", 64, "bytes per message (idle: per connection's one echo, 0 for none)")
	depth := flag.Int("depth", 1, "echo: messages in flight per connection")
	duration := flag.Duration("duration", 5*time.Second, "echo, connect: measured time")
	warmup := flag.Duration("warmup", 500*time.Millisecond, "echo, connect: unmeasured time before -duration")
	rate := flag.Float64("rate", 0, "echo: messages a second per connection on a fixed schedule (depth 1; latency from when each was due); 0: as fast as the echoes come back")
	verify := flag.Bool("verify", false, "echo: check every echo against what was sent")
	settle := flag.Duration("settle", time.Second, "idle: wait after connecting before measuring")
	hold := flag.Duration("hold", 0, "idle: keep the connections open this long after measuring")
	dialers := flag.Int("dialers", 32, "idle: connections opened at a time")
	framed := flag.Bool("framed", false, "echo: each message is a frame with a 4-byte big-endian length header (the server runs with -length)")
	slow := flag.Int("slowloris", 0, "echo: beside the good clients, this many connections sending a frame one byte a second (reconnecting when closed)")
	badRate := flag.Int("badrate", 0, "echo: beside the good clients, this many bad connections a second: garbage bytes, or a header claiming -attackclaim bytes")
	garbage := flag.Float64("garbage", 0.5, "echo: the share of -badrate connections that write garbage (the rest: an oversized header)")
	attackClaim := flag.Uint("attackclaim", 64<<20, "echo: what an oversized header claims (above the server's package_max_length)")
	claim := flag.Int("claim", 0, "idle: instead of an echo, send a 4-byte big-endian length header claiming this many bytes and nothing more (the header attack; the server runs with -length)")
	useTLS := flag.Bool("tls", false, "connect over TLS (no certificate verification); echo and idle: each handshake done before measuring; connect: a handshake per connection")
	resume := flag.Bool("resume", false, "with -tls: keep a client session cache, so that connections after the first resume their session (connect mode measures resumed handshakes)")
	gencert := flag.String("gencert", "", "write a self-signed ECDSA P-256 certificate (DIR/cert.pem) and key (DIR/key.pem) for 127.0.0.1 and localhost into DIR, print their paths and exit")
	asJSON := flag.Bool("json", false, "print one JSON object")
	flag.Parse()
	bad := func(msg string) {
		fmt.Fprintln(os.Stderr, "load: "+msg)
		flag.Usage()
		os.Exit(2)
	}
	if flag.NArg() > 0 {
		bad("no arguments follow the flags")
	}
	rep := load.Report{Mode: *mode, Conns: *conns, Size: *size}
	if *gencert != "" {
		cert, key, err := load.GenerateCert(*gencert)
		if err != nil {
			fail(err)
		}
		fmt.Println(cert, key)
		return
	}
	if *resume && !*useTLS {
		bad("-resume needs -tls")
	}
	var tlsConf *tls.Config
	if *useTLS {
		tlsConf = load.ClientTLS(*resume)
	}
	rep.TLS, rep.Resume = *useTLS, *resume
	if *conns < 1 || *size < 0 || *depth < 1 || *duration <= 0 || *warmup < 0 {
		bad("-conns, -depth and -duration must be positive, -size and -warmup not negative")
	}
	nofile, err := servers.RaiseNofile()
	if err != nil {
		fmt.Fprintf(os.Stderr, "load: raising RLIMIT_NOFILE: %v\n", err)
		os.Exit(1)
	}
	var probe load.Probe
	if *pid > 0 {
		probe = load.ProcTree{Pid: *pid}
		if _, err := probe.CPU(); err != nil {
			fmt.Fprintf(os.Stderr, "load: -pid %d: %v\n", *pid, err)
			os.Exit(1)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var human string
	switch *mode {
	case "echo":
		if *size < 1 {
			bad("echo: -size must be positive")
		}
		rep.Depth, rep.Rate = *depth, *rate
		var attack chan *load.AttackStats
		actx, stopAttack := context.WithCancel(ctx)
		if *slow > 0 || *badRate > 0 {
			attack = make(chan *load.AttackStats, 1)
			go func() {
				attack <- load.Attack(actx, load.AttackConfig{Addr: *addr, Slowloris: *slow, Rate: *badRate,
					GarbageShare: *garbage, Claim: uint32(*attackClaim)})
			}()
		}
		res, err := load.Run(ctx, load.Config{Addr: *addr, Conns: *conns, Size: *size, Depth: *depth,
			Duration: *duration, Warmup: *warmup, Rate: *rate, Verify: *verify, Framed: *framed, Probe: probe, TLS: tlsConf})
		if probe != nil {
			rep.RSSAfter, _ = probe.RSS() // the server's memory at the end (under the attack)
		}
		stopAttack()
		if attack != nil {
			rep.Attack = <-attack
		}
		if err != nil {
			fail(err)
		}
		rep.Seconds, rep.Msgs, rep.Total = res.Elapsed.Seconds(), res.Msgs, res.Total
		rep.PerSec, rep.MBPerSec = res.MsgsPerSec(), res.MBPerSec()
		rep.P50us, rep.P99us = us(res.Latency.Quantile(0.5)), us(res.Latency.Quantile(0.99))
		rep.P999us, rep.MaxUs = us(res.Latency.Quantile(0.999)), us(res.Latency.Max())
		rep.ServerCPU, rep.CPUPer = res.ServerCPU.Seconds(), res.CPUPerMsg()
		human = fmt.Sprintf("echo %s, %d conns × %d B, depth %d, %v (+%v warmup): %v", *addr, *conns, *size, *depth, *duration, *warmup, res)
	case "idle":
		if probe == nil {
			bad("idle: -pid is needed (the server's memory is what it measures)")
		}
		if uint64(*conns) >= nofile {
			bad(fmt.Sprintf("idle: -conns %d does not fit under this process's RLIMIT_NOFILE of %d", *conns, nofile))
		}
		res, err := load.Idle(ctx, load.IdleConfig{Addr: *addr, Conns: *conns, Ping: *size, Claim: *claim, Dialers: *dialers,
			Settle: *settle, Hold: *hold, Probe: load.ProcTree{Pid: *pid}, TLS: tlsConf})
		if err != nil {
			fail(err)
		}
		rep.RSSBefore, rep.RSSAfter, rep.BytesPerConn, rep.PSSPerConn = res.RSSBefore, res.RSSAfter, res.BytesPerConn(), res.PSSPerConn()
		rep.OpenSeconds, rep.ServerCPU, rep.CPUPer = res.Open.Seconds(), res.ServerCPU.Seconds(), res.CPUPerConn()
		rep.AnonPerConn, _, rep.ShmemPerConn = res.PartsPerConn()
		human = fmt.Sprintf("idle %s: %v", *addr, res)
	case "connect":
		res, err := load.Connect(ctx, load.ConnectConfig{Addr: *addr, Workers: *conns, Size: max(*size, 1),
			Duration: *duration, Warmup: *warmup, Probe: probe, TLS: tlsConf})
		if err != nil {
			fail(err)
		}
		rep.Seconds, rep.Msgs, rep.Total, rep.PerSec = res.Elapsed.Seconds(), res.Conns, res.Total, res.ConnsPerSec()
		rep.P50us, rep.P99us = us(res.Latency.Quantile(0.5)), us(res.Latency.Quantile(0.99))
		rep.P999us, rep.MaxUs = us(res.Latency.Quantile(0.999)), us(res.Latency.Max())
		rep.ServerCPU, rep.CPUPer = res.ServerCPU.Seconds(), res.CPUPerConn()
		rep.Errors, rep.Resumed = res.Errors, res.Resumed
		if res.FirstErr != nil {
			rep.FirstErr = res.FirstErr.Error()
		}
		human = fmt.Sprintf("connect %s, %d workers × %d B, %v (+%v warmup): %v", *addr, *conns, max(*size, 1), *duration, *warmup, res)
	default:
		bad("-mode must be echo, idle or connect")
	}
	if *asJSON {
		b, _ := json.Marshal(rep)
		fmt.Println(string(b))
		return
	}
	fmt.Println(human)
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "load: %v\n", err)
	os.Exit(1)
}
