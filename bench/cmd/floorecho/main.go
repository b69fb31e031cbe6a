// Command floorecho is the "floor" echo server of the benchmarks: not a peer, but the
// measuring stick for the design that goswoole and gnet share. One event loop, epoll,
// accept4, and for every readable connection one read and one write, with nothing else: no
// callbacks, no connection table, no counters, no output queue (bench/servers/floor_linux.go).
// What a real server spends per message above floorecho's figure is its own overhead.
//
// It listens on -addr (default 127.0.0.1:9501; port 0 picks a free port), prints
// "floor echo server listening on HOST:PORT", and echoes until SIGINT or SIGTERM. It takes
// the flags every server takes (see servers.Main).
package main

import "github.com/goswoole/swoole/bench/servers"

func main() { servers.Main("floor") }
