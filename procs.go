package swoole

import (
	"os"
	"runtime"
)

// Every process of a server runs its event loops in epoll_wait system calls of their own (the
// reactor package), not in the runtime's netpoller. While a loop blocks there it keeps its P,
// and when the runtime has no other P the scheduler's monitor takes that one back after a
// tick and wakes a thread to look for work: two thread wake-ups for every wait, nothing
// gained. That is where GOMAXPROCS is 1: a process pinned to one CPU (taskset, a cpuset, a
// container limited to one CPU), as the workers and the master of a server on a small machine
// often are.
//
// So each process of a server that runs loops makes sure the runtime has one P more than
// the loops that may block at once, unless GOMAXPROCS is set in the environment: in a
// ModeProcess echo pinned to one CPU at 10,000 paced messages a second, the tree's context
// switches went from 3–4.5 to about 2.4 per message, and its CPU per message from about 95 µs
// to about 60 µs (BENCHMARKS.md, "GOMAXPROCS and the loops"). The extra P runs the rest (timers, the
// goroutines of callbacks, the garbage collector) when the loops are busy; it does not add a
// thread while they sleep.

// loopProcs is the GOMAXPROCS a process whose loops may block loops at once wants, given the
// current value: at least loops+1, and never less than it is.
func loopProcs(current, loops int) int {
	return max(current, loops+1)
}

// makeRoomForLoops raises GOMAXPROCS for this process's loops (loopProcs), unless the user set
// it in the environment. Call it once, where the process's role is decided.
func makeRoomForLoops(loops int) {
	if os.Getenv("GOMAXPROCS") != "" || loops < 1 {
		return
	}
	if cur := runtime.GOMAXPROCS(0); loopProcs(cur, loops) != cur {
		runtime.GOMAXPROCS(loopProcs(cur, loops))
	}
}

// blockingLoops is how many of this process's event loops may sit in epoll_wait at once: the
// master's reactors, one elsewhere. ModeThread's loops share the process's Ps by design (there
// are more of them than CPUs); it gets the floor of one loop, GOMAXPROCS 2.
func (s *Server) blockingLoops() int {
	if s.run.role() == roleMaster {
		return s.eff.ReactorNum
	}
	return 1
}
