// Command gnetecho is the "gnet" echo server of the benchmarks: gnet v2, OnTraffic writing
// back what arrived; one event loop, or with -multicore one per CPU the process may run on
// (runtime.NumCPU, which follows the affinity mask: pinned to one core, one loop). The server
// itself is in bench/servers, shared with the in-process Go benchmarks.
//
// It listens on -addr (default 127.0.0.1:9501; port 0 picks a free port), prints
// "gnet echo server listening on HOST:PORT", and echoes until SIGINT or SIGTERM. It takes
// the flags every server takes (see servers.Main): -multicore -maxconn -nofile -cpuprofile
// -memprofile.
package main

import "github.com/goswoole/swoole/bench/servers"

func main() { servers.Main("gnet") }
