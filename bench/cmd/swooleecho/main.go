// Command swooleecho is the "goswoole" echo server of the benchmarks: goswoole in ModeBase
// with worker_num 1: one process, one event loop, OnReceive sending the data back with
// Server.Send; with -mode process, ModeProcess (-workers worker processes), with -mode
// thread, ModeThread (one process, -reactors reactor loops, -workers worker loops). The
// server itself is in bench/servers, shared with the in-process Go benchmarks.
//
// It listens on -addr (default 127.0.0.1:9501; port 0 picks a free port), prints
// "goswoole echo server listening on HOST:PORT", and echoes until SIGINT or SIGTERM. It takes
// the flags every server takes (see servers.Main): -maxconn N sets max_connection (the idle
// cells need it at least the number of connections held), -nofile raises RLIMIT_NOFILE to
// the hard limit, -cpuprofile FILE profiles the whole run (written at SIGTERM), -memprofile
// FILE writes a heap profile on SIGUSR1 and at exit.
package main

import "github.com/goswoole/swoole/bench/servers"

func main() { servers.Main("goswoole") }
