// Package ipc carries every message between the processes of a goswoole server: a client's
// data, connect and close events (master → worker), Send, Close, Pause and Resume for a
// connection (worker → master), tasks and their results (worker ↔ task worker),
// SendMessage, and admin commands.
//
// # Transport
//
// Each worker has one AF_UNIX SOCK_DGRAM socket pair ([NewPair]), created by the master
// before any child starts. The child gets its end as an inherited file and adopts it with
// [Inherit]; the master keeps both ends, so a restarted worker inherits the same socket and
// nothing queued for it is lost. Datagrams keep message boundaries: a reader never sees half a
// datagram, and a worker that dies mid-message leaves no partial bytes in the socket for its
// successor. Several processes may write to one socket (every worker writes to a task
// worker's): each datagram arrives whole and the reader sorts chunks by sender.
//
// Every send and receive passes MSG_DONTWAIT, so the calls never block whatever the
// descriptor's O_NONBLOCK flag (shared by every process holding the socket) says.
//
// # Datagram format
//
// A datagram is a 24-byte little-endian [Header] followed by Len payload bytes:
//
//	 0      1      2          4          6      8                16       20       24
//	+------+------+----------+----------+------+----------------+--------+--------+---------+
//	| Type | Flags| SrcWorker| ReactorID| Aux  | Fd (int64)     | MsgID  | Len    | payload |
//	+------+------+----------+----------+------+----------------+--------+--------+---------+
//
// A message of at most Config.MaxPayload bytes (64 KiB − 24 by default) is one datagram with
// FlagChunkBegin|FlagChunkEnd. A longer one is split into chunks with the same MsgID: the
// first has FlagChunkBegin and carries the whole message's length (uint32 little-endian)
// before its payload bytes, so the reader allocates once and refuses an oversize message at
// its first datagram; middle ones have no chunk flag; the last has FlagChunkEnd.
//
//	[hdr Begin, Len=4+P-4][total][P-4 bytes]  [hdr 0, Len=P][P bytes] ...  [hdr End, Len=r][r bytes]
//
// # Writing
//
// A [Writer] sends a message at once when nothing is queued: header and payload gathered by
// one sendmsg (one sendmmsg per Config.Batch chunks of a large message), with no copy of the
// payload. What the socket refuses is copied into pooled slabs and sent by [Writer.Flush],
// Config.Batch datagrams per sendmmsg; the owner of an event loop registers EPOLLOUT while
// [Writer.Buffered] is non-zero (Config.OnQueue tells it when the queue starts) and calls
// Flush when writable. [Writer.Enqueue] queues without sending, so a loop can produce a burst
// and send it with one Flush. Processes without a loop use [Writer.WriteBlocking].
//
// # Reading
//
// A [Reader] receives up to Config.Batch datagrams per recvmmsg into preallocated buffers
// and calls back once per complete message. It keeps at most one partial message per
// sender: a new first chunk (or a single-datagram message) from a sender whose previous
// message is unfinished drops that message (the sender restarted). Messages above
// Config.MaxMessage are dropped at their first chunk, and partial messages together hold at
// most Config.MaxPending bytes. Bad datagrams are dropped and counted, never fatal.
//
// # Ordering and ownership
//
//   - Messages from one Writer arrive in the order their Write/Enqueue calls took the
//     Writer's lock; in particular, messages from one goroutine arrive in the order written.
//     There is no ordering between different sending processes.
//   - Each sending process uses one Writer per socket and a SrcWorker nobody else writing to
//     that socket uses; the master, manager and user processes need ids of their own.
//   - Writer methods may be called from any goroutine. A Reader belongs to one goroutine.
//   - Write's payload belongs to the caller again when Write returns. The payload given to
//     ReadBatch's callback is valid only until the callback returns.
//   - Writer and Reader do not own their *os.File: close it after their last call.
//   - Both ends must use the same Config.MaxPayload.
//
// # Cost
//
// [Counters] count messages, datagrams and system calls at each end, so the cost per
// message can be measured: one syscall per small message when sending one at a time, about
// 1/Config.Batch when bursts are enqueued and flushed, and likewise for ReadBatch when
// datagrams are waiting.
package ipc
