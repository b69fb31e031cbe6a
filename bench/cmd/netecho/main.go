// Command netecho is the "netstd" echo server of the benchmarks: Go's standard net package: a goroutine per connection copying its input back
// through a 64 KiB buffer. The server
// itself is in bench/servers, shared with the in-process Go benchmarks.
//
// It listens on -addr (default 127.0.0.1:9501; port 0 picks a free port), prints
// "netstd echo server listening on HOST:PORT", and echoes until SIGINT or SIGTERM.
package main

import "github.com/goswoole/swoole/bench/servers"

func main() { servers.Main("netstd") }
