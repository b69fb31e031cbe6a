//go:build linux

package servers

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ---- procfloor: the least a master and its worker processes can do per message ----

// procFloorServer is, like floorServer, a measuring stick and not a server to run: the least
// a master + worker processes echo design (goswoole's ModeProcess, Swoole's SWOOLE_PROCESS)
// spends per message. The master holds every client connection in one level-triggered epoll
// loop; a worker (this program started again, PROCFLOOR_WORKER in its environment) does the
// echo (one worker, or several: see below). Every message crosses to a worker and back as a
// record
//
//	[8-byte client fd][4-byte length][length bytes]
//
// over one of two transports (ProcFloorTransport):
//
//   - "socketpair": one AF_UNIX SOCK_DGRAM socketpair. Per epoll round the master reads each
//     readable connection once, straight into an outgoing datagram (up to 64 KiB; a new one
//     when full), and sends the round's datagram(s) at its end, one write each. The worker
//     receives each datagram, walks its records and sends it back unchanged; the master
//     writes each record of a reply datagram to its client.
//   - "ring": one single-producer single-consumer byte ring of 1 MiB per direction in shared
//     memory (a memfd each), the same records, and an eventfd per process for wake-ups, written
//     only when the other side said it sleeps (see pfRing). The master reads connections
//     straight into the ring and writes replies to the clients straight from it.
//
// Nothing else: no connection table (a reply goes to the descriptor its record names: a
// connection closed with a reply in flight, its descriptor reused by a new one, would get that
// reply — the echo cells never do that), no counters, no output queue (a client write the
// socket does not take whole is finished by spinning on it, as the floor does), no timers.
// With the socketpair, the floor may run several workers (StartProcFloor's workers), each
// with a socketpair of its own: a client's records go to worker fd % workers (ModeProcess's
// dispatch_mode 2), and a round ends with its datagrams written to each worker in turn.
//
// All processes raise GOMAXPROCS 1 to 2 and block in epoll_wait itself, yielding at most
// every 4 ms, as goswoole's loops do (pfWaiter).
//
// What goswoole's ModeProcess spends per message above this figure is its own overhead; the
// two transports' difference is what shared-memory rings could save over a socketpair.
type procFloorServer struct {
	rawLoop
	transport string
	epfd      int
	procs     []*pfProc // the workers

	tx, rx     *pfRing // ring: master → worker, worker → master
	efdM, efdW int     // ring: the master waits on efdM, the worker on efdW
}

// pfProc is one worker process, as the master sees it.
type pfProc struct {
	ctl    int // the master's end of the lifeline (see spawn)
	cmd    *exec.Cmd
	exited chan error // cmd.Wait's result
	pfd    int        // socketpair: the master's end; -1 with the ring

	// socketpair, the master's loop: the datagrams for this worker.
	free    [][]byte // spare datagram buffers
	queue   [][]byte // datagrams to send: queue[sent:], oldest first (the last one filling)
	sent    int
	filling int  // queue[filling:] may take more records this round
	blocked bool // the socket refused a datagram: wait for EPOLLOUT
}

// ProcFloorTransport is the master↔worker transport the "procfloor" server uses:
// "socketpair" (the default) or "ring". cmd/procfloorecho sets it from its -transport flag.
var ProcFloorTransport = "socketpair"

const (
	procFloorEnv  = "PROCFLOOR_WORKER" // in the worker's environment: its transport
	pfHdr         = 12                 // a record's header: fd (8 bytes) and length (4)
	pfDgramMax    = 64 << 10           // socketpair: the largest datagram
	pfMinRead     = 4 << 10            // the least room a client read is given
	pfMaxRead     = 64 << 10           // the most one client read takes
	pfRingSize    = 1 << 20            // ring: data bytes per direction (a power of 2)
	pfRingData    = 4096               // ring: offset of the data in the mapping (the header before)
	pfWrap        = 0xFFFFFFFF         // ring: the length of a wrap marker
	pfYieldEvery  = 4 * time.Millisecond
	pfSockBufSize = 4 << 20 // socketpair: SO_SNDBUF/SO_RCVBUF asked for (capped by the kernel)
	pfReadyByte   = 'R'
)

// The worker's descriptors: ExtraFiles start at 3.
const (
	pfFdCtl  = 3 // the lifeline
	pfFdPair = 4 // socketpair: the worker's end
	pfFdM2W  = 4 // ring: memfd of the master → worker ring
	pfFdW2M  = 5 // ring: memfd of the worker → master ring
	pfFdEfdW = 6 // ring: the eventfd the worker waits on
	pfFdEfdM = 7 // ring: the eventfd the master waits on
)

// procFloorProcs raises GOMAXPROCS 1 to 2 unless GOMAXPROCS is set in the environment: a
// goroutine blocked in a raw epoll_wait keeps its P, and with no other P the runtime's sysmon
// takes it back after a tick and wakes a thread for nothing (goswoole's procs.go).
func procFloorProcs() {
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) == 1 {
		runtime.GOMAXPROCS(2)
	}
}

// pfWaiter is one process's epoll_wait, as goswoole's reactor loop waits: with GOMAXPROCS
// above 1 it blocks in the system call at once and yields to the scheduler at most every
// pfYieldEvery (under sysmon's 10 ms); with GOMAXPROCS 1 (set in the environment) it polls
// first, yields, then blocks.
type pfWaiter struct {
	epfd   int
	events []unix.EpollEvent
	base   time.Time
	yield  time.Duration
	procs  int
}

func newPfWaiter(epfd int) *pfWaiter {
	return &pfWaiter{epfd: epfd, events: make([]unix.EpollEvent, 256), base: time.Now()}
}

// wait is one epoll_wait with timeout in milliseconds (-1: none); it returns the events.
func (w *pfWaiter) wait(timeout int) ([]unix.EpollEvent, error) {
	if timeout != 0 {
		if now := time.Since(w.base); now-w.yield >= pfYieldEvery || w.procs == 0 {
			w.yield = now
			w.procs = runtime.GOMAXPROCS(0)
			if w.procs > 1 {
				runtime.Gosched()
			}
		}
	}
	var n int
	var err error
	if w.procs > 1 || timeout == 0 {
		n, err = unix.EpollWait(w.epfd, w.events, timeout)
	} else {
		n, err = unix.EpollWait(w.epfd, w.events, 0)
		if n == 0 && err == nil {
			runtime.Gosched()
			n, err = unix.EpollWait(w.epfd, w.events, timeout)
		}
	}
	if err == unix.EINTR {
		return nil, nil
	}
	if err != nil {
		return nil, os.NewSyscallError("epoll_wait", err)
	}
	return w.events[:n], nil
}

// StartProcFloor starts the procfloor echo server on addr (host:port; port 0 picks one) with
// the given transport ("socketpair" or "ring") and number of workers (the ring takes one):
// this process becomes the master and starts its workers, this program again with
// PROCFLOOR_WORKER in its environment, so the program's main must call ProcFloorWorker first.
// It returns once every worker runs.
func StartProcFloor(addr, transport string, workers int) (Server, error) {
	if transport != "socketpair" && transport != "ring" {
		return nil, fmt.Errorf("procfloor: transport %q: use socketpair or ring", transport)
	}
	workers = max(workers, 1)
	if transport == "ring" && workers != 1 {
		return nil, fmt.Errorf("procfloor: the ring transport runs one worker, not %d: use -workers 1 or the socketpair", workers)
	}
	procFloorProcs()
	s := &procFloorServer{transport: transport, epfd: -1, efdM: -1, efdW: -1}
	if err := s.start(addr, workers); err != nil {
		s.closeFDs()
		s.cleanup()
		return nil, fmt.Errorf("procfloor: %w", err)
	}
	pids := make([]int, len(s.procs))
	for i, p := range s.procs {
		pids[i] = p.cmd.Process.Pid
	}
	fmt.Fprintf(os.Stderr, "procfloor: transport %s, master pid %d, worker pids %v, GOMAXPROCS %d\n",
		transport, os.Getpid(), pids, runtime.GOMAXPROCS(0))
	go s.run()
	return s, nil
}

func (s *procFloorServer) start(addr string, workers int) error {
	if err := s.listen4(addr, unix.SOCK_NONBLOCK, unix.EFD_NONBLOCK); err != nil {
		return err
	}
	var err error
	if s.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	watch := []int{s.lfd, s.wakefd}
	if s.transport == "socketpair" {
		for range workers {
			pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return os.NewSyscallError("socketpair", err)
			}
			for _, fd := range pair {
				_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, pfSockBufSize)
				_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, pfSockBufSize)
			}
			// The worker's end is its own open file description: make it blocking before
			// os.NewFile (see spawn); the worker makes it non-blocking again.
			if err := unix.SetNonblock(pair[1], false); err != nil {
				unix.Close(pair[0])
				unix.Close(pair[1])
				return os.NewSyscallError("fcntl", err)
			}
			p, err := s.spawn([]*os.File{os.NewFile(uintptr(pair[1]), "procfloor-pair")})
			if p != nil {
				p.pfd = pair[0]
			} else {
				unix.Close(pair[0])
			}
			if err != nil {
				return err
			}
			watch = append(watch, p.ctl, p.pfd)
		}
	} else {
		var files []*os.File
		defer func() {
			for _, f := range files { // the child has its copies
				f.Close()
			}
		}()
		for _, name := range []string{"procfloor-m2w", "procfloor-w2m"} {
			fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
			if err != nil {
				return os.NewSyscallError("memfd_create", err)
			}
			files = append(files, os.NewFile(uintptr(fd), name))
			if err := unix.Ftruncate(fd, pfRingData+pfRingSize); err != nil {
				return os.NewSyscallError("ftruncate", err)
			}
			r, err := mapPfRing(fd)
			if err != nil {
				return err
			}
			if s.tx == nil {
				s.tx = r
			} else {
				s.rx = r
			}
		}
		// Blocking eventfds (a file description both processes share: os.NewFile and exec
		// must not see it non-blocking, see above); each is read only when epoll says so.
		if s.efdW, err = unix.Eventfd(0, unix.EFD_CLOEXEC); err != nil {
			return os.NewSyscallError("eventfd", err)
		}
		if s.efdM, err = unix.Eventfd(0, unix.EFD_CLOEXEC); err != nil {
			return os.NewSyscallError("eventfd", err)
		}
		for _, fd := range []int{s.efdW, s.efdM} {
			dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				return os.NewSyscallError("fcntl", err)
			}
			files = append(files, os.NewFile(uintptr(dup), "procfloor-eventfd"))
		}
		p, err := s.spawn(files)
		files = nil // spawn closed them
		if err != nil {
			return err
		}
		watch = append(watch, p.ctl, s.efdM)
	}
	for _, fd := range watch {
		if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return os.NewSyscallError("epoll_ctl", err)
		}
	}
	return nil
}

// spawn starts a worker, this program again with the transport in its environment and
// extra (the transport's files: its fds 4 on) after its lifeline, and waits until it says it
// runs. It closes extra (the child has its copies). The worker is in s.procs as soon as it
// is started, so that cleanup kills it whatever spawn returns.
func (s *procFloorServer) spawn(extra []*os.File) (*pfProc, error) {
	defer func() {
		for _, f := range extra {
			f.Close()
		}
	}()
	// The lifeline: a stream socketpair, the worker's end its fd 3. The worker writes one
	// byte on it when it is ready; after that each side sees EOF on it when the other is gone.
	// Created blocking: os.NewFile would register a non-blocking descriptor with the runtime's
	// netpoller, and the master reads it only when poll or epoll says it is readable.
	ctl, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socketpair", err)
	}
	child := os.NewFile(uintptr(ctl[1]), "procfloor-ctl")
	defer child.Close()
	p := &pfProc{ctl: ctl[0], pfd: -1}
	exe, err := os.Executable()
	if err != nil {
		unix.Close(p.ctl)
		return nil, err
	}
	p.cmd = exec.Command(exe)
	p.cmd.Env = append(os.Environ(), procFloorEnv+"="+s.transport)
	p.cmd.ExtraFiles = append([]*os.File{child}, extra...)
	p.cmd.Stderr = os.Stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		unix.Close(p.ctl)
		return nil, err
	}
	p.exited = make(chan error, 1)
	go func() { p.exited <- p.cmd.Wait() }()
	s.procs = append(s.procs, p)

	// Wait for the worker's byte.
	pfds := []unix.PollFd{{Fd: int32(p.ctl), Events: unix.POLLIN}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := unix.Poll(pfds, int(time.Until(deadline)/time.Millisecond)+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return p, os.NewSyscallError("poll", err)
		}
		if n == 0 {
			return p, errors.New("the worker did not start within 10s")
		}
		break
	}
	var b [1]byte
	if n, _ := unix.Read(p.ctl, b[:]); n != 1 || b[0] != pfReadyByte {
		return p, errors.New("the worker exited before it was ready")
	}
	return p, nil
}

// cleanup kills the workers (those started) and closes and unmaps what this side holds
// besides the rawLoop's descriptors.
func (s *procFloorServer) cleanup() {
	for _, p := range s.procs {
		_ = p.cmd.Process.Kill()
		<-p.exited
		for _, fd := range []int{p.ctl, p.pfd} {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}
	for _, fd := range []int{s.epfd, s.efdM, s.efdW} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	for _, r := range []*pfRing{s.tx, s.rx} {
		if r != nil {
			_ = unix.Munmap(r.mem)
		}
	}
}

// Close stops the loop, closes every connection and the listener, kills the workers and waits
// for them.
func (s *procFloorServer) Close() error {
	s.stop()
	s.cleanup()
	return nil
}

// run is the master's loop.
func (s *procFloorServer) run() {
	defer close(s.done)
	open := map[int]struct{}{}
	defer func() {
		for fd := range open {
			unix.Close(fd)
		}
	}()
	var err error
	if s.transport == "socketpair" {
		err = s.runPair(open)
	} else {
		err = s.runRing(open)
	}
	if err != nil && err != errStop {
		fmt.Fprintf(os.Stderr, "procfloor: master: %v\n", err)
		s.cleanupOnFatal()
	}
}

// cleanupOnFatal ends the process after the loop failed or a worker died: the floor has
// nothing to fall back on, and the matrix reports a server that exits during a run.
func (s *procFloorServer) cleanupOnFatal() {
	for _, p := range s.procs {
		_ = p.cmd.Process.Kill()
	}
	os.Exit(1)
}

// errStop is what a loop returns when told to stop.
var errStop = errors.New("stop")

// accept takes every pending connection into the epoll set.
func (s *procFloorServer) accept(open map[int]struct{}) {
	for {
		nfd, _, err := unix.Accept4(s.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		_ = unix.SetsockoptInt(nfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		if unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, nfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(nfd)}) != nil {
			unix.Close(nfd)
			continue
		}
		open[nfd] = struct{}{}
	}
}

// control handles the descriptors every round may report besides the clients and the
// transport: it returns errStop for the stop eventfd, an error when a worker is gone, and
// true when fd was one of them.
func (s *procFloorServer) control(fd int, open map[int]struct{}) (bool, error) {
	switch fd {
	case s.wakefd:
		return true, errStop
	case s.lfd:
		s.accept(open)
		return true, nil
	}
	for _, p := range s.procs {
		if fd == p.ctl {
			return true, errors.New("a worker is gone")
		}
	}
	return false, nil
}

// readClient makes the one read of a readable connection into b; it returns the bytes read,
// or 0 after closing the connection (EOF, an error) or when there was nothing to read.
func readClient(fd int, b []byte, open map[int]struct{}) int {
	r, err := unix.Read(fd, b)
	if r > 0 {
		return r
	}
	if err == unix.EAGAIN || err == unix.EINTR {
		return 0
	}
	unix.Close(fd) // EOF or error; closing removes it from the epoll set
	delete(open, fd)
	return 0
}

// writeClient writes b to the client fd whole, spinning on a socket that does not take it at
// once (as the floor does); it gives up on an error (a client gone).
func writeClient(fd int, b []byte) {
	for w := 0; w < len(b); {
		k, err := unix.Write(fd, b[w:])
		if k > 0 {
			w += k
		}
		if err != nil && err != unix.EAGAIN && err != unix.EINTR {
			return
		}
	}
}

// putHdr writes a record header.
func putHdr(b []byte, fd int, n int) {
	binary.NativeEndian.PutUint64(b, uint64(fd))
	binary.NativeEndian.PutUint32(b[8:], uint32(n))
}

// writeRecords writes every record of a reply datagram to its client.
func writeRecords(d []byte) {
	for len(d) >= pfHdr {
		fd := int(binary.NativeEndian.Uint64(d))
		n := int(binary.NativeEndian.Uint32(d[8:]))
		if pfHdr+n > len(d) {
			return // cannot happen: the worker sends back what it got
		}
		writeClient(fd, d[pfHdr:pfHdr+n])
		d = d[pfHdr+n:]
	}
}

// ---- socketpair ----

// runPair is the master's loop over the socketpairs.
func (s *procFloorServer) runPair(open map[int]struct{}) error {
	w := newPfWaiter(s.epfd)
	rbuf := make([]byte, pfDgramMax)
	n := len(s.procs)
	for {
		events, err := w.wait(-1)
		if err != nil {
			return err
		}
		for _, ev := range events {
			fd := int(ev.Fd)
			if ok, err := s.control(fd, open); ok {
				if err != nil {
					return err
				}
				continue
			}
			if p := s.procOfPipe(fd); p != nil {
				if err := s.pipeEvent(p, ev.Events, rbuf); err != nil {
					return err
				}
				continue
			}
			// A client: one read, straight into its worker's datagram being filled.
			p := s.procs[fd%n]
			if p.filling >= len(p.queue) || pfDgramMax-len(p.queue[len(p.queue)-1]) < pfHdr+pfMinRead {
				p.queue = append(p.queue, p.newDgram())
				p.filling = len(p.queue) - 1
			}
			d := p.queue[len(p.queue)-1]
			at := len(d)
			limit := min(pfDgramMax, at+pfHdr+pfMaxRead)
			if k := readClient(fd, d[at+pfHdr:limit], open); k > 0 {
				putHdr(d[at:at+pfHdr], fd, k)
				p.queue[len(p.queue)-1] = d[:at+pfHdr+k]
			}
		}
		// The round's datagrams, one write each, unless a socket said it is full.
		for _, p := range s.procs {
			if err := s.sendQueue(p); err != nil {
				return err
			}
		}
	}
}

// procOfPipe returns the worker whose socketpair fd is, or nil.
func (s *procFloorServer) procOfPipe(fd int) *pfProc {
	for _, p := range s.procs {
		if fd == p.pfd {
			return p
		}
	}
	return nil
}

// pipeEvent handles an event of p's socketpair: room again (EPOLLOUT) and the worker's reply
// datagrams, each record written to its client.
func (s *procFloorServer) pipeEvent(p *pfProc, ev uint32, rbuf []byte) error {
	if ev&unix.EPOLLOUT != 0 && p.blocked {
		p.blocked = false
		if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_MOD, p.pfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(p.pfd)}); err != nil {
			return os.NewSyscallError("epoll_ctl", err)
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		for {
			n, err := unix.Read(p.pfd, rbuf)
			if err == unix.EINTR {
				continue
			}
			if n <= 0 {
				break
			}
			writeRecords(rbuf[:n])
		}
	}
	return nil
}

// newDgram returns an empty datagram buffer of pfDgramMax bytes' capacity.
func (p *pfProc) newDgram() []byte {
	if k := len(p.free); k > 0 {
		b := p.free[k-1]
		p.free = p.free[:k-1]
		return b[:0]
	}
	return make([]byte, 0, pfDgramMax)
}

// sendQueue ends a round for p: it sends p's datagrams, one write each, until the socket
// refuses one (then it waits for EPOLLOUT), and starts the next round on a new datagram.
func (s *procFloorServer) sendQueue(p *pfProc) error {
	p.filling = len(p.queue) // the next round starts a new datagram
	for !p.blocked && p.sent < len(p.queue) {
		d := p.queue[p.sent]
		if len(d) == 0 {
			p.free = append(p.free, d)
			p.sent++
			continue
		}
		_, err := unix.Write(p.pfd, d)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN || err == unix.ENOBUFS {
			p.blocked = true
			if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_MOD, p.pfd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT, Fd: int32(p.pfd)}); err != nil {
				return os.NewSyscallError("epoll_ctl", err)
			}
			break
		}
		if err != nil {
			return fmt.Errorf("send to a worker: %w", err)
		}
		p.free = append(p.free, d)
		p.sent++
	}
	if p.sent == len(p.queue) {
		clear(p.queue)
		p.queue, p.sent, p.filling = p.queue[:0], 0, 0
	}
	return nil
}

// runPairWorker is the worker's loop over the socketpair: every datagram received goes back
// unchanged, one write each.
func runPairWorker() error {
	pfd := pfFdPair
	if err := unix.SetNonblock(pfd, true); err != nil {
		return os.NewSyscallError("fcntl", err)
	}
	epfd, err := pfWorkerEpoll(pfd)
	if err != nil {
		return err
	}
	w := newPfWaiter(epfd)
	buf := make([]byte, pfDgramMax)
	if _, err := unix.Write(pfFdCtl, []byte{pfReadyByte}); err != nil {
		return os.NewSyscallError("write", err)
	}
	for {
		events, err := w.wait(-1)
		if err != nil {
			return err
		}
		for _, ev := range events {
			if int(ev.Fd) == pfFdCtl {
				return nil // the master is gone
			}
			for {
				n, err := unix.Read(pfd, buf)
				if err == unix.EINTR {
					continue
				}
				if n <= 0 {
					break
				}
				// Walk the records, as a worker dispatching them would; the echo sends
				// them back as they are.
				for d := buf[:n]; len(d) >= pfHdr; {
					d = d[min(len(d), pfHdr+int(binary.NativeEndian.Uint32(d[8:]))):]
				}
				for {
					_, err := unix.Write(pfd, buf[:n])
					if err == nil {
						break
					}
					if err == unix.EINTR {
						continue
					}
					if err != unix.EAGAIN && err != unix.ENOBUFS {
						return fmt.Errorf("send to the master: %w", err)
					}
					// Full: wait until it takes more, or the master is gone.
					pfds := []unix.PollFd{{Fd: int32(pfd), Events: unix.POLLOUT}, {Fd: pfFdCtl, Events: unix.POLLIN}}
					if _, err := unix.Poll(pfds, -1); err != nil && err != unix.EINTR {
						return os.NewSyscallError("poll", err)
					}
					if pfds[1].Revents != 0 {
						return nil
					}
				}
			}
		}
	}
}

// pfWorkerEpoll makes the worker's epoll set: fd and the lifeline.
func pfWorkerEpoll(fd int) (int, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return -1, os.NewSyscallError("epoll_create1", err)
	}
	for _, f := range []int{fd, pfFdCtl} {
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, f, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(f)}); err != nil {
			return -1, os.NewSyscallError("epoll_ctl", err)
		}
	}
	return epfd, nil
}

// ---- ring ----

// pfRing is one direction's single-producer single-consumer byte ring in shared memory: a
// header page, then pfRingSize bytes of records. In the header, each on its own cache line:
//
//	prod     uint64  bytes ever published by the writer (atomic)
//	cons     uint64  bytes ever released by the reader (atomic)
//	sleeping uint32  1: the reader is about to block, or blocks, in epoll_wait on its eventfd
//	waiting  uint32  1: the writer found no room and waits on its eventfd for the reader
//
// Records start at multiples of 8 and never wrap: one that does not fit before the end is
// preceded by a wrap marker (a header with length pfWrap), or by nothing when fewer than a
// header's bytes are left, and starts at offset 0.
//
// Wake-ups are a Dekker-style handshake. The reader, finding the ring empty, stores
// sleeping = 1, then loads prod again; only if it is still empty does it block. The writer
// stores prod, then loads sleeping; if 1, it swaps it to 0 (CAS, so one wake-up per sleep) and
// writes the reader's eventfd. Go's sync/atomic operations are sequentially consistent (the
// memory model: all atomic operations behave as if executed in one total order, here also
// across the two processes, which run the same instructions on the same shared memory), so
// the reader's store of sleeping and the writer's store of prod cannot both be missed by the
// other's later load: either the reader sees the new records, or the writer sees it sleeping
// and wakes it. The writer waiting for room and the reader releasing it are the same
// handshake with waiting and cons.
type pfRing struct {
	mem      []byte
	data     []byte
	prod     *atomic.Uint64
	cons     *atomic.Uint64
	sleeping *atomic.Uint32
	waiting  *atomic.Uint32

	head  uint64 // writer: prod to publish; reader: cons to release
	other uint64 // writer: the cons last loaded; reader: the prod last loaded
	pub   uint64 // writer: prod last published; reader: cons last released
}

const pfRingMask = pfRingSize - 1

// mapPfRing maps the ring of memfd fd (pfRingData+pfRingSize bytes).
func mapPfRing(fd int) (*pfRing, error) {
	mem, err := unix.Mmap(fd, 0, pfRingData+pfRingSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	r := &pfRing{
		mem:      mem,
		data:     mem[pfRingData:],
		prod:     (*atomic.Uint64)(unsafe.Pointer(&mem[0])),
		cons:     (*atomic.Uint64)(unsafe.Pointer(&mem[128])),
		sleeping: (*atomic.Uint32)(unsafe.Pointer(&mem[256])),
		waiting:  (*atomic.Uint32)(unsafe.Pointer(&mem[384])),
	}
	return r, nil
}

func align8(n uint64) uint64 { return (n + 7) &^ 7 }

// reserve finds room for a record of at least least bytes: the data offset of its header,
// the bytes to skip before it (a wrap), and the most it may hold. off is -1 when there is no
// room (the reader has not released enough).
func (r *pfRing) reserve(least int) (off int, skip uint64, room int) {
	for try := 0; try < 2; try++ {
		free := pfRingSize - (r.head - r.other)
		pos := r.head & pfRingMask
		tail := pfRingSize - pos
		need := uint64(pfHdr + least)
		if tail >= need && free >= need {
			return int(pos), 0, int(min(tail, free)) - pfHdr
		}
		if free >= tail+need {
			return 0, tail, int(free-tail) - pfHdr
		}
		r.other = r.cons.Load()
	}
	return -1, 0, 0
}

// commit adds the record of n bytes at off (from reserve, its bytes written after the
// header) for client fd; publish makes it visible.
func (r *pfRing) commit(off int, skip uint64, fd int, n int) {
	if skip > 0 {
		if pos := r.head & pfRingMask; skip >= pfHdr {
			putHdr(r.data[pos:], 0, pfWrap)
		}
	}
	putHdr(r.data[off:], fd, n)
	r.head += skip + align8(uint64(pfHdr+n))
}

// publish stores the writer's committed records and reports whether the reader sleeps and
// must be woken (its eventfd written).
func (r *pfRing) publish() bool {
	if r.head == r.pub {
		return false
	}
	r.pub = r.head
	r.prod.Store(r.head)
	return r.sleeping.Load() == 1 && r.sleeping.CompareAndSwap(1, 0)
}

// peek returns the reader's next record, without consuming it (advance does), and false when
// the ring is empty.
func (r *pfRing) peek() (fd int, msg []byte, size uint64, ok bool) {
	for {
		if r.head == r.other {
			if r.other = r.prod.Load(); r.head == r.other {
				return 0, nil, 0, false
			}
		}
		pos := r.head & pfRingMask
		tail := pfRingSize - pos
		if tail < pfHdr {
			r.head += tail
			continue
		}
		n := binary.NativeEndian.Uint32(r.data[pos+8:])
		if n == pfWrap {
			r.head += tail
			continue
		}
		fd = int(binary.NativeEndian.Uint64(r.data[pos:]))
		return fd, r.data[pos+pfHdr : pos+pfHdr+uint64(n)], align8(uint64(pfHdr) + uint64(n)), true
	}
}

// release gives the records read so far back to the writer and reports whether it waits for
// room and must be woken.
func (r *pfRing) release() bool {
	if r.head == r.pub {
		return false
	}
	r.pub = r.head
	r.cons.Store(r.head)
	return r.waiting.Load() == 1 && r.waiting.CompareAndSwap(1, 0)
}

// pfSpin is how long a reader of the ring polls it for records before it sleeps: 0 (the
// default), or PROCFLOOR_SPIN_NS nanoseconds from the environment (the worker inherits it).
// A spin saves a wake-up when the writer runs on another core and writes within it; on the
// core the writer shares, it only delays the writer. It is there to be measured.
var pfSpin = func() time.Duration {
	n, _ := strconv.ParseInt(os.Getenv("PROCFLOOR_SPIN_NS"), 10, 64)
	return time.Duration(max(n, 0))
}()

// spin polls the ring for up to pfSpin; true when records came in.
func (r *pfRing) spin() bool {
	if pfSpin == 0 {
		return false
	}
	for end := time.Now().Add(pfSpin); time.Now().Before(end); {
		if r.prod.Load() != r.head {
			return true
		}
	}
	return false
}

// sleep is the reader's half of the handshake before it blocks: false when records came in
// meanwhile (it must not block then). After it wakes, the reader clears sleeping (awake).
func (r *pfRing) sleep() bool {
	r.sleeping.Store(1)
	if r.head != r.prod.Load() {
		r.sleeping.Store(0)
		return false
	}
	return true
}

// awake clears the reader's sleeping flag after a wait.
func (r *pfRing) awake() { r.sleeping.Store(0) }

// waitRoom is the writer's half of the handshake when it has no room for least bytes: false
// when room came meanwhile (it must not block then).
func (r *pfRing) waitRoom(least int) bool {
	r.waiting.Store(1)
	if off, _, _ := r.reserve(least); off >= 0 {
		r.waiting.Store(0)
		return false
	}
	return true
}

// wake adds 1 to the eventfd efd.
func wake(efd int) {
	one := [8]byte{1}
	for {
		if _, err := unix.Write(efd, one[:]); err != unix.EINTR {
			return
		}
	}
}

// drainEventfd resets a readable eventfd.
func drainEventfd(efd int) {
	var b [8]byte
	_, _ = unix.Read(efd, b[:])
}

// pfPending is a message the master read while the ring to the worker was full.
type pfPending struct {
	fd  int
	msg []byte
}

// runRing is the master's loop over the rings.
func (s *procFloorServer) runRing(open map[int]struct{}) error {
	w := newPfWaiter(s.epfd)
	tx, rx := s.tx, s.rx
	var backlog []pfPending // read while tx was full, oldest first
	rbuf := make([]byte, pfMaxRead)
	timeout := -1
	for {
		events, err := w.wait(timeout)
		if err != nil {
			return err
		}
		if timeout != 0 {
			rx.awake()
		}
		// Messages kept back while the ring was full go first, in order.
		for len(backlog) > 0 {
			off, skip, _ := tx.reserve(len(backlog[0].msg))
			if off < 0 {
				break
			}
			copy(tx.data[off+pfHdr:], backlog[0].msg)
			tx.commit(off, skip, backlog[0].fd, len(backlog[0].msg))
			backlog = backlog[1:]
		}
		for _, ev := range events {
			fd := int(ev.Fd)
			if ok, err := s.control(fd, open); ok {
				if err != nil {
					return err
				}
				continue
			}
			if fd == s.efdM {
				drainEventfd(s.efdM)
				continue
			}
			// A client: one read, straight into the ring (or, while it is full, kept).
			if len(backlog) == 0 {
				if off, skip, room := tx.reserve(pfMinRead); off >= 0 {
					if n := readClient(fd, tx.data[off+pfHdr:off+pfHdr+min(room, pfMaxRead)], open); n > 0 {
						tx.commit(off, skip, fd, n)
					}
					continue
				}
			}
			if n := readClient(fd, rbuf, open); n > 0 {
				backlog = append(backlog, pfPending{fd, append([]byte(nil), rbuf[:n]...)})
			}
		}
		if tx.publish() {
			wake(s.efdW)
		}
		again := len(backlog) > 0 && !tx.waitRoom(len(backlog[0].msg)) // room came: go round at once
		// Replies, straight from the ring to the clients.
		for {
			fd, msg, size, ok := rx.peek()
			if !ok {
				break
			}
			writeClient(fd, msg)
			rx.head += size
		}
		if rx.release() {
			wake(s.efdW)
		}
		timeout = -1
		if again || rx.spin() || !rx.sleep() {
			timeout = 0
		}
	}
}

// runRingWorker is the worker's loop over the rings: every record of the master's ring is
// copied, unchanged, into the ring back.
func runRingWorker() error {
	rx, err := mapPfRing(pfFdM2W)
	if err != nil {
		return err
	}
	tx, err := mapPfRing(pfFdW2M)
	if err != nil {
		return err
	}
	unix.Close(pfFdM2W)
	unix.Close(pfFdW2M)
	epfd, err := pfWorkerEpoll(pfFdEfdW)
	if err != nil {
		return err
	}
	w := newPfWaiter(epfd)
	if _, err := unix.Write(pfFdCtl, []byte{pfReadyByte}); err != nil {
		return os.NewSyscallError("write", err)
	}
	// block waits on the eventfd (or the lifeline); false when the master is gone.
	block := func() (bool, error) {
		events, err := w.wait(-1)
		if err != nil {
			return false, err
		}
		for _, ev := range events {
			if int(ev.Fd) == pfFdCtl {
				return false, nil
			}
			drainEventfd(pfFdEfdW)
		}
		return true, nil
	}
	for {
		for {
			fd, msg, size, ok := rx.peek()
			if !ok {
				break
			}
			off, skip, _ := tx.reserve(len(msg))
			if off < 0 {
				// No room back: hand over what is done, then wait for the master to read.
				if tx.publish() {
					wake(pfFdEfdM)
				}
				if rx.release() {
					wake(pfFdEfdM)
				}
				if tx.waitRoom(len(msg)) {
					if up, err := block(); !up {
						return err
					}
				}
				continue
			}
			copy(tx.data[off+pfHdr:], msg)
			tx.commit(off, skip, fd, len(msg))
			rx.head += size
		}
		if tx.publish() {
			wake(pfFdEfdM)
		}
		if rx.release() {
			wake(pfFdEfdM)
		}
		if !rx.spin() && rx.sleep() {
			up, err := block()
			rx.awake()
			if !up {
				return err
			}
		}
	}
}

// ---- the worker role ----

// ProcFloorWorker runs this process as the procfloor server's worker if it was started as one
// (PROCFLOOR_WORKER in its environment, naming the transport) and then exits; otherwise it
// returns at once. A program that starts the procfloor server calls it first in main.
//
// The worker dies with its master: PR_SET_PDEATHSIG (SIGKILL, set when it is started) and the
// lifeline, a stream socket to the master whose EOF ends its loop. It ignores SIGINT (a
// terminal's ^C reaches the whole process group): the master stops it.
func ProcFloorWorker() {
	transport := os.Getenv(procFloorEnv)
	if transport == "" {
		return
	}
	signal.Ignore(syscall.SIGINT)
	procFloorProcs()
	var err error
	switch transport {
	case "socketpair":
		err = runPairWorker()
	case "ring":
		err = runRingWorker()
	default:
		err = fmt.Errorf("transport %q", transport)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "procfloor: worker: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}
