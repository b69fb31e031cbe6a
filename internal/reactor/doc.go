// Package reactor is goswoole's event loop: one epoll instance per loop, driven by one
// goroutine, holding listeners and connections by OS descriptor.
//
// # Triggering
//
// Descriptors are registered level-triggered. Each readiness report reads a connection once
// (into the loop's single read buffer) and moves on, so one busy peer cannot starve the others
// and nothing has to remember "read until EAGAIN". Write interest (EPOLLOUT) is registered only
// while a connection has queued output, so idle connections cost no wake-ups.
//
// # Threads of control
//
//	           Send / Close / Pause / Resume (any goroutine)
//	                │  (Conn.mu: output queue, flags)
//	epoll_wait ──► loop goroutine ──► Handler.Accept / Opened / Data / Closed / BufferFull / BufferEmpty
//	    ▲               │
//	    └── eventfd ◄── Post(Task) from other goroutines (coalesced: one write per batch)
//
// Every Handler method runs on the loop goroutine, one at a time. Conn.Send may be called from
// any goroutine: it writes directly when nothing is queued (no copy, no allocation) and queues
// the rest in pooled chunks flushed with writev when the socket is writable. A close requested
// from anywhere is carried out on the loop after the current batch of events, so Closed runs
// exactly once, on the loop, whoever closed.
//
// The descriptor table is a slice indexed by fd; epoll's data word holds only the fd, never a Go
// pointer. Each entry has a kind: a listener, a connection, the loop's eventfd, or a
// descriptor watched for the caller (AddFD: an FDHandler told when it is readable or
// writable, such as the IPC sockets between a server's processes).
//
// # Listeners shared by several processes
//
// A Listener with Exclusive set is registered with EPOLLEXCLUSIVE, for a listening socket
// that the loops of several worker processes watch: a new connection wakes one idle loop,
// not all of them. The kernel wakes the first idle waiter in registration order, so a loop
// that accepted registers the listener again, which moves it to the back: connections go
// round the idle workers instead of all reaching the first.
package reactor
