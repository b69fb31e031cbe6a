// Command uringecho is the "uring" echo server of the benchmarks: not a peer, but a
// measuring stick beside floorecho. The least a loop built on io_uring (Linux 6.1 or later)
// can do per message: every connection has one receive or one send in flight, and the
// submissions of a batch of completions enter the kernel together with the next wait
// (bench/servers/uring_linux.go).
//
// It listens on -addr (default 127.0.0.1:9501; port 0 picks a free port), prints
// "uring echo server listening on HOST:PORT", and echoes until SIGINT or SIGTERM. It takes
// the flags every server takes (see servers.Main).
package main

import "github.com/goswoole/swoole/bench/servers"

func main() { servers.Main("uring") }
