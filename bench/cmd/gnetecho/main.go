// Command gnetecho is the "gnet" echo server of the benchmarks: gnet v2 with one event loop (multicore off), OnTraffic writing back what
// arrived. The server
// itself is in bench/servers, shared with the in-process Go benchmarks.
//
// It listens on -addr (default 127.0.0.1:9501; port 0 picks a free port), prints
// "gnet echo server listening on HOST:PORT", and echoes until SIGINT or SIGTERM.
package main

import "github.com/goswoole/swoole/bench/servers"

func main() { servers.Main("gnet") }
