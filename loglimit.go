package swoole

import (
	"sync/atomic"
	"time"
)

// Warnings that a remote peer can cause at will (a refused connection, a broken frame, an
// oversized datagram, an event that cannot be passed to a worker, no idle worker) are logged
// at most once per second per kind, so that a flood cannot fill the disk through log_file.
// The line that is logged carries "suppressed", the number of the same events left out
// since the previous line of that kind. Counting an event left out
// is two atomic operations: no allocation, no lock.

// logKind is a kind of rate-limited warning.
type logKind uint8

const (
	logRefused     logKind = iota // a connection refused at max_connection (ErrServerTooManySocket)
	logFraming                    // a connection closed for breaking its port's framing
	logDgramLarge                 // a datagram dropped for being larger than the read buffer
	logEventDrop                  // an event that could not be passed to a worker (ModeProcess)
	logNoIdle                     // no idle worker (9007, ModeProcess)
	logDispatchBad                // dispatch_func returned an invalid worker id
	logRefusedMsg                 // a request from another process refused (a SendFile without its file)
	logForgedSrc                  // a message that claims to be the manager's from another process
	logIPCDrop                    // a message between the server's processes dropped by its reader
	logTLS                        // a TLS handshake that failed (tls.go)
	logFrameSlow                  // a connection closed for not finishing a frame within frame_timeout
	logKinds
)

// logInterval is how often one kind of rate-limited warning is logged at most.
const logInterval = time.Second

// logLimit is the state of one kind of rate-limited warning.
type logLimit struct {
	last atomic.Int64 // unix ns of the last line logged
	left atomic.Int64 // events left out since
}

// allow reports whether an event of this kind is logged now and, if so, how many were left
// out before it (the line logs it as "suppressed"). Callers test it before building the
// line's arguments, so that an event left out allocates nothing.
func (l *logLimit) allow() (bool, int64) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(logInterval) || !l.last.CompareAndSwap(last, now) {
		l.left.Add(1)
		return false, 0
	}
	return true, l.left.Swap(0)
}
