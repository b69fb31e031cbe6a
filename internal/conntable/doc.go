// Package conntable is the connection table, the server-wide statistics
// counters and the per-worker status entries of a goswoole server, kept in
// one shared memory mapping that every process of the server maps.
//
// # Creation and sharing
//
// The master creates the table with [New]: memfd_create, ftruncate to the
// computed size (the memfd is then sealed against growing and shrinking) and
// mmap(MAP_SHARED). A child process (the same executable, re-executed) gets
// the memfd as an inherited file ([Table.File], passed through
// exec.Cmd.ExtraFiles) and maps the same pages with [Open]. Every process
// therefore sees every connection, counter and worker entry without I/O.
//
// # Layout
//
// The mapping starts at a page boundary and holds, in order, each region
// starting on a 64-byte boundary:
//
//	header      magic, layout version, the size of every record type,
//	            capacity, max connections, worker slots, start session id,
//	            total size and the live-session count
//	Counters    server-wide statistics (one record)
//	WorkerSlot  × WorkerSlots()   per-worker status
//	Slot        × Capacity()      one connection each, indexed by session id & (Capacity-1)
//	long address × Capacity()     a unix socket path longer than 16 bytes, by slot index
//
// [Open] checks the magic number, the version, the record sizes and the
// region sizes against the file before it hands the table out, so a process
// built from a different layout refuses the mapping instead of misreading it.
//
// Every field in the mapping is a sync/atomic fixed-size value (or padding);
// no Go pointer is ever stored there. Record sizes are multiples of 8 (Slot
// is 128 bytes, WorkerSlot 128), so each 64-bit field is naturally aligned.
//
// The memfd's pages are allocated when first touched, so the mapping costs resident
// memory only for the slots that have been used: 128 bytes per connection (Slot's doc).
//
// # Ownership
//
// One writer per slot, many readers: the fields of a [Slot] are written only
// by the process (worker, or master in process mode) that owns the
// connection, which is the one that called [Table.Alloc] for it. It fills the
// fields while the slot is Reserved, makes it visible with [Table.Publish],
// and is the only one that calls [Table.Release]. Any process may read any
// slot ([Table.Get], [Table.Lookup], [Table.List]) and must treat what it
// reads as a snapshot: the connection can close at any moment, so a reader
// re-checks Session after reading fields it cares about. The one write that
// anyone may make is [Table.MarkClosing], a compare-and-swap that succeeds
// exactly once per session, which tells the caller it won the right to close;
// a caller holding a stale id can never mark a newer session on the same
// slot (Release waits for MarkClosing calls inside their check-and-swap).
// Flags may be set and cleared from anywhere (atomic or/and).
//
// Counters and WorkerSlot fields are atomic adds and stores from anyone; by
// convention a worker writes its own WorkerSlot.
//
// # Session ids
//
// Session ids are int64, unique for the life of the table: the first is
// startSessionID+1 and each Alloc takes the next value of
// Counters.SessionRound. An id whose slot is still held by a long-lived
// connection is skipped (as Swoole does), so ids are increasing but not
// dense.
//
// # Race detector
//
// Atomic operations on memory outside the Go heap are not tracked by the race
// detector, so a happens-before edge carried only through this mapping is
// invisible to it. Hand Go-heap data between goroutines with Go
// synchronization, never only through a table field.
package conntable
