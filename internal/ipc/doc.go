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
// Which end to use: a message written to one end is read from the other. So the master
// reads worker w's output from its end a_w and writes to worker w on a_w; any other process
// that must send to worker w (a task worker returning a result) inherits a_w too and only
// writes to it. Exactly one process reads each end.
//
// # Datagram format
//
// A datagram holds one or more records. A record is a 24-byte little-endian [Header]
// followed by Len payload bytes:
//
//	 0      1      2          4          6      8                16       20       24
//	+------+------+----------+----------+------+----------------+--------+--------+---------+
//	| Type | Flags| SrcWorker| ReactorID| Aux  | Fd (int64)     | MsgID  | Len    | payload |
//	+------+------+----------+----------+------+----------------+--------+--------+---------+
//
// A message of at most Config.MaxPayload bytes (64 KiB − 24 by default) is one record with
// FlagChunkBegin|FlagChunkEnd. A longer one is split into chunks with the same MsgID, each
// alone in its datagram: the first has FlagChunkBegin and carries the whole message's length
// (uint32 little-endian) before its payload bytes, so the reader allocates once and refuses
// an oversize message at its first datagram; middle ones have no chunk flag; the last has
// FlagChunkEnd.
//
//	[hdr Begin, Len=P][total][P-4 bytes]   [hdr -, Len=P][P bytes] ...   [hdr End, Len=r][r bytes]
//
// Whole small messages that are queued together are packed into one datagram, up to
// HeaderSize+MaxPayload bytes:
//
//	[hdr Begin|End, Len=a][a bytes][hdr Begin|End, Len=b][b bytes]...
//
// Packing changes nothing for the receiver's callback, but it turns a burst of n messages
// into one datagram: one skb, one copy in and one copy out. The kernel's cost per datagram
// is several times that of the system call itself (see the benchmarks), so packing gains
// far more than sendmmsg alone. A datagram is accepted only if its records fill it
// exactly and, when there are several, all are whole messages; otherwise it is dropped whole.
//
// # Descriptors and senders
//
// [Writer.WriteFD] passes an open descriptor with a message (SCM_RIGHTS): the message travels
// alone in its datagram, and the receiving callback takes the descriptor with
// [Reader.TakeFD] (the Reader closes one that is not taken, and those of datagrams it drops
// or never delivers). Both ends of a pair have SO_PASSCRED, so every datagram carries its
// sender's pid as the kernel knows it ([Reader.SenderPID]): unlike SrcWorker, which any
// writer can set, a process cannot choose it without CAP_SYS_ADMIN. A chunk whose pid is not
// that of its message's first chunk is dropped.
//
// # Writing
//
// A [Writer] sends a message at once when nothing is queued: header and payload gathered by
// one sendmsg (one sendmmsg per Config.Batch chunks of a large message), with no copy of the
// payload. What the socket refuses is copied into pooled slabs (small messages packed into
// shared datagrams) and sent by [Writer.Flush], Config.Batch datagrams per sendmmsg; the owner of an event loop registers EPOLLOUT while
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
// message can be measured: one sendmsg per message written one at a time; for a burst
// enqueued and flushed, one sendmmsg per Config.Batch datagrams, each datagram packing as
// many small messages as fit; likewise one recvmmsg per Config.Batch waiting datagrams.
// The package's benchmarks report syscalls per message and messages per second for each
// way.
package ipc
