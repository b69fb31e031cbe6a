package swoole

import "strconv"

// Mode is how a server lays out its processes (SPEC.md "Modes and processes").
type Mode int

// The run modes, with Swoole's values.
const (
	// ModeBase: each worker holds the connections it accepted and runs their callbacks in its
	// own event loop. With worker_num 1 and no task workers the server is a single process.
	ModeBase Mode = 1
	// ModeProcess: a master holds every connection; workers in other processes run callbacks.
	ModeProcess Mode = 2
	// ModeThread: one OS process; workers are goroutine event loops.
	ModeThread Mode = 3
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case ModeBase:
		return "base"
	case ModeProcess:
		return "process"
	case ModeThread:
		return "thread"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// SockType is the kind of socket a listener uses, with Swoole's values. SockSSL may be or'ed
// into a stream type to serve TLS.
type SockType int

// The socket types.
const (
	SockTCP        SockType = 1
	SockUDP        SockType = 2
	SockTCP6       SockType = 3
	SockUDP6       SockType = 4
	SockUnixStream SockType = 5
	SockUnixDgram  SockType = 6
	SockSSL        SockType = 512
)

// base returns the type without the SSL flag.
func (t SockType) base() SockType { return t &^ SockSSL }

// isStream reports whether the type is a stream socket (TCP, TCP6, unix stream).
func (t SockType) isStream() bool {
	b := t.base()
	return b == SockTCP || b == SockTCP6 || b == SockUnixStream
}

// String returns the type's name.
func (t SockType) String() string {
	var s string
	switch t.base() {
	case SockTCP:
		s = "tcp"
	case SockUDP:
		s = "udp"
	case SockTCP6:
		s = "tcp6"
	case SockUDP6:
		s = "udp6"
	case SockUnixStream:
		s = "unix"
	case SockUnixDgram:
		s = "unixgram"
	default:
		s = "SockType(" + strconv.Itoa(int(t.base())) + ")"
	}
	if t&SockSSL != 0 {
		s += "+ssl"
	}
	return s
}

// Dispatch modes (dispatch_mode): how ModeProcess picks the worker for a packet.
const (
	DispatchRoundRobin = 1 // one step of a counter per packet
	DispatchFDMod      = 2 // the connection stays on fd % worker_num (default)
	DispatchIdle       = 3 // the first idle worker
	DispatchIPMod      = 4 // the peer's address modulo worker_num
	DispatchUIDMod     = 5 // the uid given to Bind modulo worker_num
	DispatchStream     = 7 // idle workers take packets from a shared stream
)

// Worker statuses returned by GetWorkerStatus.
const (
	WorkerBusy = 1 // running a callback
	WorkerIdle = 2 // waiting for events
	WorkerExit = 3 // an old process draining during a reload
)

// Process types for AddCommand and Command (bits, combinable in AddCommand).
const (
	CommandMaster      = 2
	CommandEventWorker = 8
	CommandTaskWorker  = 16
	CommandManager     = 32
)
