// Command procfloorecho is the "procfloor" echo server of the benchmarks: not a peer, but a
// measuring stick beside floorecho for the master + worker process design (goswoole's
// ModeProcess, Swoole's SWOOLE_PROCESS). The least such a design can spend per message on one
// core: a master holding the connections in one epoll loop, reading each readable connection
// once per round, and one worker process (this command started again) echoing every message,
// each message crossing to the worker and back (bench/servers/procfloor_linux.go). What
// ModeProcess spends per message above procfloor's figure is its own overhead; what procfloor
// spends above floorecho's is what the second process and the crossing cost at least.
//
// -workers N (socketpair only) runs N worker processes, each with a socketpair of its own; a
// client's messages go to worker fd % N, as ModeProcess's dispatch_mode 2 sends them, so
// -workers 2 is the floor of the configuration the benchmarks run ModeProcess in.
//
// -transport picks how the messages cross: socketpair (the default: one AF_UNIX SOCK_DGRAM
// socketpair, the round's messages batched into datagrams) or ring (a single-producer
// single-consumer ring of 1 MiB per direction in shared memory, with an eventfd wake-up only
// when the reader sleeps): the difference is what shared-memory rings could save.
//
// It listens on -addr (default 127.0.0.1:9501; port 0 picks a free port), prints
// "procfloor echo server listening on HOST:PORT" once its worker runs, and echoes until SIGINT
// or SIGTERM, when it kills its worker (which also dies with it: PR_SET_PDEATHSIG). It takes
// the flags every server takes (see servers.Main).
package main

import (
	"flag"

	"github.com/goswoole/swoole/bench/servers"
)

func main() {
	servers.ProcFloorWorker() // in the worker process: runs it and exits
	flag.StringVar(&servers.ProcFloorTransport, "transport", "socketpair", "procfloor: how messages cross between master and worker: socketpair or ring")
	servers.Main("procfloor")
}
