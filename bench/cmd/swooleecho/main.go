// Command swooleecho is the "goswoole" echo server of the benchmarks: goswoole in ModeBase with worker_num 1: one process, one event loop, OnReceive
// sending the data back with Server.Send. The server
// itself is in bench/servers, shared with the in-process Go benchmarks.
//
// It listens on -addr (default 127.0.0.1:9501; port 0 picks a free port), prints
// "goswoole echo server listening on HOST:PORT", and echoes until SIGINT or SIGTERM.
package main

import "github.com/goswoole/swoole/bench/servers"

func main() { servers.Main("goswoole") }
