package swoole

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Error is the error every goswoole call returns. Code is Swoole's numeric error code (see the
// table of Err* constants; Linux errno values below 500 pass through as they are), Msg says
// what went wrong and what to do about it. Use errors.As to reach it:
//
//	var e *swoole.Error
//	if errors.As(err, &e) && e.Code == swoole.ErrSessionNotExist { ... }
//
// errors.Is(err, swoole.ErrCode(1005)) also works: two *Error values match when their codes do.
type Error struct {
	Code int    // Swoole's error number (1001–1008, 1202, 9007, ...) or a Linux errno
	Msg  string // what happened and what to do, prefixed "swoole: "
	Err  error  // the underlying cause (an *os.SyscallError for system calls), or nil
}

// Error returns the message followed by the code.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s (code %d): %v", e.Msg, e.Code, e.Err)
	}
	return fmt.Sprintf("%s (code %d)", e.Msg, e.Code)
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, swoole.ErrCode(swoole.ErrSessionNotExist)) works.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code
	}
	return false
}

// ErrCode returns an *Error carrying only code, for use with errors.Is.
func ErrCode(code int) error { return &Error{Code: code} }

// Swoole error codes goswoole returns. The numbering follows the seed document: 1008 means
// "the connection's send buffer is full" and 1202 "data larger than buffer_output_size".
// Swoole ≥ 4.5 renumbered those two to 1009 and 1203; goswoole keeps the seed's numbers.
const (
	ErrMallocFail          = 501 // out of memory
	ErrSystemCallFail      = 502 // a system call failed (also: sendfile of a missing file)
	ErrInvalidParams       = 505 // an argument is out of range
	ErrQueueFull           = 506
	ErrOperationNotSupport = 507 // the call is not supported in this mode or process
	ErrWrongOperation      = 509
	ErrRefused             = 503 // the call is refused in the server's current state (Swoole 6.2.2 reports these as 503)
	ErrUnknownEvent        = 510 // On with an unknown event name
	ErrNoPayload           = 550 // Send with no data

	ErrFileNotExist   = 700
	ErrDNSLookup      = 711 // a host name does not resolve
	ErrBadIPv6Address = 720
	ErrBadHostAddr    = 722
	ErrBadPort        = 723
	ErrBadSocketType  = 724

	ErrSessionClosedByServer = 1001 // the connection was closed by the server
	ErrSessionClosedByClient = 1002 // the connection was closed by the peer
	ErrSessionClosing        = 1003 // the connection is being closed (Close inside OnClose)
	ErrSessionClosed         = 1004 // the connection is closed
	ErrSessionNotExist       = 1005 // no such session id (unknown, or already closed)
	ErrSessionInvalidID      = 1006 // a malformed session id
	ErrSessionDiscardData    = 1007 // data for a closed connection was dropped
	ErrOutputBufferOverflow  = 1008 // the connection's queued output is above socket_buffer_size
	ErrPackageLengthTooLarge = 1201 // a frame is larger than package_max_length
	ErrDataLengthTooLarge    = 1202 // one Send is larger than buffer_output_size
	ErrPackageMalformedData  = 1204 // the peer sent data the framing cannot parse

	ErrTaskPackageTooBig = 2001
	ErrTaskDispatchFail  = 2002
	ErrTaskTimeout       = 2003

	ErrServerTooManySocket     = 9002 // a connection was refused: max_connection reached
	ErrServerWorkerTerminated  = 9003
	ErrServerInvalidListenPort = 9004
	ErrServerPipeBufferFull    = 9006
	ErrServerNoIdleWorker      = 9007
	ErrServerOnlyStartOne      = 9008 // Start called twice
	ErrServerSendInMaster      = 9009
	ErrServerInvalidRequest    = 9010
	ErrServerInvalidCommand    = 9012
	ErrServerNotRegularFile    = 9013
	ErrServerInvalidCallback   = 9015
	ErrServerWorkerExitTimeout = 9101
)

// newError builds an *Error; format is prefixed with "swoole: ".
func newError(code int, format string, args ...any) *Error {
	return &Error{Code: code, Msg: "swoole: " + fmt.Sprintf(format, args...)}
}

// wrapErrno builds an *Error for a failed system call: the code is the errno when there is one.
func wrapErrno(op string, err error, format string, args ...any) *Error {
	code := ErrSystemCallFail
	var errno syscall.Errno
	if errors.As(err, &errno) {
		code = int(errno)
	}
	e := newError(code, format, args...)
	var se *os.SyscallError
	if op != "" && !errors.As(err, &se) {
		err = os.NewSyscallError(op, err)
	}
	e.Err = err
	return e
}
