//go:build linux

package servers

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ---- uring: the least an io_uring server can do per message ----

// ErrUnsupported is wrapped in the error of a server this kernel cannot run (uring without
// io_uring, or with an io_uring too old for its setup flags).
var ErrUnsupported = errors.New("not supported by this kernel")

// uringServer is, like floorServer, a measuring stick and not a server to run: what a loop
// built on io_uring (Linux 6.1+) instead of epoll spends per message, to tell how far a
// reactor could go below "one read and one write per ready connection". One ring, created
// and driven by one goroutine locked to its thread (IORING_SETUP_SINGLE_ISSUER |
// DEFER_TASKRUN). Every connection has one receive or one send in flight: a receive's
// completion submits a send of the bytes it read, the send's completion the next receive.
// The submissions of a whole batch of completions go into the kernel with the next wait, in
// one io_uring_enter: many connections' receives and sends per system call, where an epoll
// loop makes a read and a write per connection and an epoll_wait per batch.
//
// An experiment's knob: URING_MIN_WAIT_US=N in its environment makes a wait that would block
// wait up to N µs for URING_BATCH (default 64) completions before it takes fewer
// (IORING_ENTER_EXT_ARG's min_wait_usec, Linux 6.12+): batching bought with latency.
type uringServer struct {
	rawLoop
	started chan error
}

const (
	sysIOUringSetup = 425
	sysIOUringEnter = 426

	uringSetupSingleIssuer = 1 << 12
	uringSetupDeferTaskrun = 1 << 13
	uringEnterGetEvents    = 1 << 0

	uringOpRead   = 22
	uringOpSend   = 26
	uringOpRecv   = 27
	uringOpAccept = 13

	uringOffSQRing = 0
	uringOffCQRing = 0x8000000
	uringOffSQEs   = 0x10000000

	uringEntries = 4096
	uringConnBuf = 16 << 10
)

type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
		userAddr                                                        uint64
	}
	cqOff struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
		userAddr                                                        uint64
	}
}

type uringSQE struct {
	opcode, flags uint8
	ioprio        uint16
	fd            int32
	off, addr     uint64
	len, opFlags  uint32
	userData      uint64
	bufIndex      uint16
	personality   uint16
	spliceFDIn    int32
	addr3, pad    uint64
}

type uringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

// ring is the mapped submission and completion queues.
type ring struct {
	fd                 int
	sqHead, sqTail     *uint32
	sqMask             uint32
	sqes               []uringSQE
	cqHead, cqTail     *uint32
	cqMask             uint32
	cqes               []uringCQE
	pending            uint32 // SQEs filled since the last enter
	minWait, batch     uint32 // URING_MIN_WAIT_US, URING_BATCH: wait for a batch (experiment)
	sqMap, cqMap, eMap []byte
}

func newRing(entries uint32) (*ring, error) {
	var p uringParams
	p.flags = uringSetupSingleIssuer | uringSetupDeferTaskrun
	fd, _, e := unix.Syscall(sysIOUringSetup, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		return nil, os.NewSyscallError("io_uring_setup", e)
	}
	r := &ring{fd: int(fd)}
	var err error
	sqSize := int(p.sqOff.array + p.sqEntries*4)
	cqSize := int(p.cqOff.cqes + p.cqEntries*uint32(unsafe.Sizeof(uringCQE{})))
	if r.sqMap, err = unix.Mmap(r.fd, uringOffSQRing, sqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		r.close()
		return nil, os.NewSyscallError("mmap", err)
	}
	if r.cqMap, err = unix.Mmap(r.fd, uringOffCQRing, cqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		r.close()
		return nil, os.NewSyscallError("mmap", err)
	}
	if r.eMap, err = unix.Mmap(r.fd, uringOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(uringSQE{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		r.close()
		return nil, os.NewSyscallError("mmap", err)
	}
	at := func(m []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&m[off])) }
	r.sqHead, r.sqTail, r.sqMask = at(r.sqMap, p.sqOff.head), at(r.sqMap, p.sqOff.tail), *at(r.sqMap, p.sqOff.ringMask)
	r.cqHead, r.cqTail, r.cqMask = at(r.cqMap, p.cqOff.head), at(r.cqMap, p.cqOff.tail), *at(r.cqMap, p.cqOff.ringMask)
	r.sqes = unsafe.Slice((*uringSQE)(unsafe.Pointer(&r.eMap[0])), p.sqEntries)
	r.cqes = unsafe.Slice((*uringCQE)(unsafe.Pointer(&r.cqMap[p.cqOff.cqes])), p.cqEntries)
	// The submission array maps ring slots to SQEs one to one, once and for all.
	array := unsafe.Slice((*uint32)(unsafe.Pointer(&r.sqMap[p.sqOff.array])), p.sqEntries)
	for i := range array {
		array[i] = uint32(i)
	}
	return r, nil
}

func (r *ring) close() {
	for _, m := range [][]byte{r.sqMap, r.cqMap, r.eMap} {
		if m != nil {
			_ = unix.Munmap(m)
		}
	}
	unix.Close(r.fd)
}

// sqe returns the next free SQE, entering the kernel first if the queue is full.
func (r *ring) sqe() *uringSQE {
	tail := *r.sqTail
	if tail-atomic.LoadUint32(r.sqHead) >= uint32(len(r.sqes)) {
		r.enter(0)
		tail = *r.sqTail
	}
	e := &r.sqes[tail&r.sqMask]
	*e = uringSQE{}
	atomic.StoreUint32(r.sqTail, tail+1)
	r.pending++
	return e
}

// getEventsArg is struct io_uring_getevents_arg.
type getEventsArg struct {
	sigmask     uint64
	sigmaskSize uint32
	minWaitUsec uint32
	ts          uint64
}

// enter submits what is pending and waits until at least wait completions are posted (0:
// only runs the completions the kernel has ready, without blocking). With minWait > 0 and
// wait > 0 it waits up to minWait µs for wait completions, then returns with one or more.
func (r *ring) enter(wait uint32) error {
	flags, argp, argsz := uintptr(uringEnterGetEvents), uintptr(0), uintptr(0)
	var arg getEventsArg
	if wait > 0 && r.minWait > 0 {
		arg.minWaitUsec = r.minWait
		wait = r.batch
		flags |= 1 << 3 // IORING_ENTER_EXT_ARG
		argp, argsz = uintptr(unsafe.Pointer(&arg)), unsafe.Sizeof(arg)
	}
	for {
		_, _, e := unix.Syscall6(sysIOUringEnter, uintptr(r.fd), uintptr(r.pending), uintptr(wait), flags, argp, argsz)
		if e == 0 || e == unix.ETIME { // ETIME: the wait ended with nothing completed
			r.pending = 0
			return nil
		}
		if e != unix.EINTR {
			return os.NewSyscallError("io_uring_enter", e)
		}
	}
}

// StartUring starts the io_uring echo server on addr (host:port; port 0 picks one).
func StartUring(addr string) (Server, error) {
	s := &uringServer{started: make(chan error, 1)}
	if err := s.listen4(addr, 0, 0); err != nil {
		s.closeFDs()
		return nil, fmt.Errorf("uring: %w", err)
	}
	go s.run()
	if err := <-s.started; err != nil {
		<-s.done
		s.closeFDs()
		return nil, err
	}
	return s, nil
}

// What a completion is for: the low 32 bits of user_data are the descriptor.
const (
	tagAccept = iota << 32
	tagRecv
	tagSend
	tagWake
)

func (s *uringServer) run() {
	runtime.LockOSThread()
	defer close(s.done)
	r, err := newRing(uringEntries)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) {
			err = fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		s.started <- fmt.Errorf("uring: %w (io_uring with SINGLE_ISSUER and DEFER_TASKRUN needs Linux 6.1 or later, not disabled by kernel.io_uring_disabled)", err)
		return
	}
	defer r.close()
	if v, err := strconv.Atoi(os.Getenv("URING_MIN_WAIT_US")); err == nil {
		r.minWait, r.batch = uint32(v), 64
		if b, err := strconv.Atoi(os.Getenv("URING_BATCH")); err == nil {
			r.batch = uint32(b)
		}
	}
	// Per connection, by descriptor: its buffer (what it received is what it echoes), the
	// length of the echo in flight and how much of it is sent.
	type uconn struct {
		buf        []byte
		echo, sent int
	}
	var conns []uconn
	defer func() {
		for fd := range conns {
			if conns[fd].buf != nil {
				unix.Close(fd)
			}
		}
	}()
	var wake [8]byte
	accept := func() {
		e := r.sqe()
		e.opcode, e.fd, e.userData = uringOpAccept, int32(s.lfd), tagAccept|uint64(s.lfd)
		e.opFlags = unix.SOCK_CLOEXEC
	}
	recv := func(fd int) {
		e := r.sqe()
		b := conns[fd].buf
		e.opcode, e.fd, e.userData = uringOpRecv, int32(fd), tagRecv|uint64(fd)
		e.addr, e.len = uint64(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b))
	}
	send := func(fd int, p []byte) {
		e := r.sqe()
		e.opcode, e.fd, e.userData = uringOpSend, int32(fd), tagSend|uint64(fd)
		e.addr, e.len = uint64(uintptr(unsafe.Pointer(&p[0]))), uint32(len(p))
		e.opFlags = unix.MSG_NOSIGNAL
	}
	accept()
	{
		e := r.sqe()
		e.opcode, e.fd, e.userData = uringOpRead, int32(s.wakefd), tagWake
		e.addr, e.len = uint64(uintptr(unsafe.Pointer(&wake[0]))), 8
	}
	if err := r.enter(0); err != nil {
		s.started <- err
		return
	}
	s.started <- nil
	for {
		head, tail := *r.cqHead, atomic.LoadUint32(r.cqTail)
		if head == tail {
			// Nothing completed: submit what is pending and run ready completions without
			// blocking; then yield once, and wait (the polling of the other loops here).
			if err := r.enter(0); err != nil {
				fmt.Fprintln(os.Stderr, "uring:", err)
				return
			}
			if head, tail = *r.cqHead, atomic.LoadUint32(r.cqTail); head == tail {
				runtime.Gosched()
				if err := r.enter(1); err != nil {
					fmt.Fprintln(os.Stderr, "uring:", err)
					return
				}
				head, tail = *r.cqHead, atomic.LoadUint32(r.cqTail)
			}
		}
		for ; head != tail; head++ {
			c := r.cqes[head&r.cqMask]
			fd := int(uint32(c.userData))
			switch c.userData &^ (1<<32 - 1) {
			case tagWake:
				atomic.StoreUint32(r.cqHead, head+1)
				return
			case tagAccept:
				if c.res >= 0 {
					nfd := int(c.res)
					_ = unix.SetsockoptInt(nfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
					if nfd >= len(conns) {
						conns = append(conns, make([]uconn, nfd+1-len(conns))...)
					}
					conns[nfd] = uconn{buf: make([]byte, uringConnBuf)}
					recv(nfd)
				}
				accept()
			case tagRecv:
				cn := &conns[fd]
				if c.res <= 0 {
					unix.Close(fd)
					*cn = uconn{}
					continue
				}
				cn.echo, cn.sent = int(c.res), 0
				send(fd, cn.buf[:c.res])
			case tagSend:
				cn := &conns[fd]
				if c.res < 0 {
					unix.Close(fd)
					*cn = uconn{}
					continue
				}
				if cn.sent += int(c.res); cn.sent < cn.echo {
					send(fd, cn.buf[cn.sent:cn.echo])
					continue
				}
				recv(fd)
			}
		}
		atomic.StoreUint32(r.cqHead, head)
	}
}

// Close stops the loop, closes every connection and the listener, and waits.
func (s *uringServer) Close() error {
	s.stop()
	return nil
}
