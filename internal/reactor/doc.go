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
// pointer.
package reactor
