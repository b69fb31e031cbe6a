//go:build linux

package conntable

import "sync/atomic"

// Worker status values stored in WorkerSlot.Status.
const (
	WorkerBusy int32 = 1 // the worker is running a callback
	WorkerIdle int32 = 2 // the worker waits for events
	WorkerExit int32 = 3 // the worker has exited (or is exiting)
)

// Counters are the server-wide statistics, one record in the mapping. Any
// process may add to or store any field at any time.
type Counters struct {
	// StartTime is the server start time in unix seconds.
	StartTime atomic.Int64
	// ConnectionNum is the number of connections as counted by the server
	// (maintained by the server; it is separate from Table.Len).
	ConnectionNum atomic.Int64
	// AcceptCount counts accepted connections.
	AcceptCount atomic.Int64
	// AbortCount counts connections closed abnormally.
	AbortCount atomic.Int64
	// CloseCount counts closed connections.
	CloseCount atomic.Int64
	// DispatchCount counts packets dispatched to workers.
	DispatchCount atomic.Int64
	// RequestCount counts requests received.
	RequestCount atomic.Int64
	// ResponseCount counts responses sent.
	ResponseCount atomic.Int64
	// TotalRecvBytes counts bytes received from clients.
	TotalRecvBytes atomic.Int64
	// TotalSendBytes counts bytes sent to clients.
	TotalSendBytes atomic.Int64
	// PipePacketMsgID is the sequence used for chunked IPC message ids.
	PipePacketMsgID atomic.Int64
	// SessionRound is the last session id handed out; Table.Alloc adds to it.
	SessionRound atomic.Int64
	// MinFD is the smallest OS file descriptor of a connection, as updated by
	// the server (an OS fd of the owning process, not a session id).
	MinFD atomic.Int64
	// MaxFD is the largest OS file descriptor of a connection, as updated by
	// the server (an OS fd of the owning process, not a session id).
	MaxFD atomic.Int64
	// ServerFlags holds server-wide facts as bits the server defines (OnStart has run, a
	// shutdown has begun, ...); set them with Or, which returns the old bits.
	ServerFlags atomic.Uint64
	// ReloadGen is the reload generation a reload in progress brings the workers to (0
	// when none runs): a worker of an older generation is one the reload replaces.
	ReloadGen atomic.Int64
	// TaskQueueNum counts tasks sent to task workers and not yet taken by one (the sender
	// adds, the task worker that reads a task subtracts).
	TaskQueueNum atomic.Int64
	// TaskQueueBytes counts the payload bytes of those tasks.
	TaskQueueBytes atomic.Int64
	// LostMessageCount counts messages between the server's processes that were dropped
	// (malformed, cut short, too large) or lost with a process that died holding them.
	LostMessageCount atomic.Int64

	_ [11]uint64 // reserved for later counters
}

// WorkerSlot is the status of one worker id, one record per worker slot in
// the mapping. By convention the worker writes its own entry; anyone reads.
type WorkerSlot struct {
	// PID is the OS process id of the worker (0 if none).
	PID atomic.Int32
	// Status is WorkerBusy, WorkerIdle or WorkerExit (0 before start).
	Status atomic.Int32
	// RequestCount counts requests handled by this worker.
	RequestCount atomic.Int64
	// ResponseCount counts responses sent by this worker.
	ResponseCount atomic.Int64
	// DispatchCount counts packets dispatched to this worker.
	DispatchCount atomic.Int64
	// CoroutineNum is the number of coroutines (blocked callbacks) now.
	CoroutineNum atomic.Int64
	// CoroutinePeak is the highest CoroutineNum seen.
	CoroutinePeak atomic.Int64
	// StartTime is the worker start time in unix seconds.
	StartTime atomic.Int64
	// ReaderPID is the pid of the process that reads this worker slot's pipe now (0: none).
	// During a reload the replacement waits until the old process has let go, so that the
	// events of one connection are never handled by two processes at once.
	ReaderPID atomic.Int32
	_         int32

	_ [8]uint64 // reserved
}
