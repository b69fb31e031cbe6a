package swoole

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// SIGRTMIN (34) cannot be caught with os/signal: Go's runtime keeps it for musl
// (SIGSYNCCALL, golang.org/issue/39343), installs no handler for it and unblocks it on
// every thread, so its default action, terminating the process, would stop the server that
// logrotate signals. goswoole installs a handler of its own with rt_sigaction
// (sigrtmin_linux_amd64.s): it writes a byte to a pipe, and a goroutine turns each byte into
// a notification (sigrtmin.go).

var (
	rtminFD   int32 = -1 // the pipe's write end, read by rtminHandler
	rtminByte byte  = 1
)

func rtminHandler()
func rtminRestorer()
func rtminAddrs() (handler, restorer uintptr)

// kernelSigaction is struct sigaction as the rt_sigaction system call takes it on amd64.
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

const (
	saRestart  = 0x10000000
	saOnstack  = 0x08000000
	saRestorer = 0x04000000
)

// rtminInstall makes SIGRTMIN write a byte to the pipe fd (non-blocking); it reports
// whether the handler is in place.
func rtminInstall(fd int) bool {
	rtminFD = int32(fd)
	h, r := rtminAddrs()
	act := kernelSigaction{handler: h, flags: saRestart | saOnstack | saRestorer, restorer: r}
	_, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sigRTMIN), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	return errno == 0
}

// rtminIgnore sets SIGRTMIN's disposition to ignored (a process that does not reopen
// log_file itself survives it).
func rtminIgnore() {
	act := kernelSigaction{handler: 1} // SIG_IGN
	_, _, _ = unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sigRTMIN), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
}
