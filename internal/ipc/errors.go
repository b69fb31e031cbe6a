package ipc

import (
	"errors"
	"fmt"
	"os"
)

// The errors the package returns or reports. Test them with errors.Is.
var (
	// ErrMalformed: a datagram whose header does not decode or whose chunks do not add up.
	// The datagram (and any message it belonged to) is dropped and counted.
	ErrMalformed = errors.New("ipc: malformed datagram")
	// ErrTooLarge: a message larger than Config.MaxMessage. Write refuses it; a Reader drops it.
	ErrTooLarge = errors.New("ipc: message larger than the maximum message size")
	// ErrQueueFull: Write would queue more than Config.MaxBuffered bytes; nothing was queued.
	ErrQueueFull = errors.New("ipc: send queue full")
	// ErrIncomplete: a chunked message was abandoned by its sender (a later message from the
	// same sender began before its last chunk arrived, typically because the sender restarted).
	ErrIncomplete = errors.New("ipc: incomplete chunked message dropped")
	// ErrTruncated: a datagram larger than the Reader's Config.MaxPayload allows; both ends
	// must use the same MaxPayload.
	ErrTruncated = errors.New("ipc: datagram larger than the read buffer")
	// ErrReassemblyFull: accepting a new chunked message would hold more than
	// Config.MaxPending bytes of partial messages.
	ErrReassemblyFull = errors.New("ipc: reassembly memory limit reached")
	// ErrTimeout: a blocking call's deadline passed. It wraps os.ErrDeadlineExceeded.
	ErrTimeout = fmt.Errorf("ipc: deadline passed: %w", os.ErrDeadlineExceeded)
	// ErrBadSocket: Inherit or NewWriter/NewReader got a descriptor that is not an AF_UNIX
	// datagram socket.
	ErrBadSocket = errors.New("ipc: not an AF_UNIX datagram socket")
)

// Preallocated decode errors, so that dropping garbage does not allocate.
var (
	errShort  = fmt.Errorf("%w: shorter than the header", ErrMalformed)
	errLen    = fmt.Errorf("%w: record length beyond the datagram", ErrMalformed)
	errPacked = fmt.Errorf("%w: a chunk packed with other records", ErrMalformed)
	errType   = fmt.Errorf("%w: invalid type", ErrMalformed)
	errChunk  = fmt.Errorf("%w: chunk out of sequence", ErrMalformed)
	errTotal  = fmt.Errorf("%w: chunk lengths do not match the message length", ErrMalformed)
	errFD     = fmt.Errorf("%w: descriptors on a datagram that cannot carry them", ErrMalformed)
	errResume = fmt.Errorf("%w: a receive area's record in hand is not at a record's start", ErrMalformed)
	errSender = fmt.Errorf("%w: a chunk from another process than its message's first", ErrMalformed)
)
