#include "textflag.h"

// func rtminHandler()
//
// A signal handler with the C calling convention, installed for SIGRTMIN with
// rt_sigaction (sigrtmin_linux_amd64.go): it writes one byte to the non-blocking pipe
// rtminFD and returns to rtminRestorer. It touches no Go state, takes no lock and uses only
// registers the kernel restores at rt_sigreturn.
TEXT ·rtminHandler(SB),NOSPLIT|NOFRAME,$0-0
	MOVL ·rtminFD(SB), DI
	LEAQ ·rtminByte(SB), SI
	MOVL $1, DX
	MOVL $1, AX // SYS_write
	SYSCALL
	RET

// func rtminRestorer()
//
// The sa_restorer of rtminHandler: rt_sigreturn.
TEXT ·rtminRestorer(SB),NOSPLIT|NOFRAME,$0-0
	MOVL $15, AX // SYS_rt_sigreturn
	SYSCALL
	INT $3

// func rtminAddrs() (handler, restorer uintptr)
TEXT ·rtminAddrs(SB),NOSPLIT,$0-16
	LEAQ ·rtminHandler(SB), AX
	MOVQ AX, handler+0(FP)
	LEAQ ·rtminRestorer(SB), AX
	MOVQ AX, restorer+8(FP)
	RET
