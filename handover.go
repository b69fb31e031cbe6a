package swoole

// Upgrade: a server of one process replaces itself with the executable now on disk without
// a refused connection, as cloudflare/tableflip does. The running process (the old one)
// starts the program again with its listening sockets as inherited descriptors; the new
// process's NewServer and AddListener adopt them (adoptPort, daemon.go's inherited
// listeners) instead of binding, and its Start reports on a pipe once its loop is about to
// run. Only then does the old process stop accepting and drain:
//
//	old: Upgrade ─► dup listeners ─► exec new ─────────── wait "ready" (≤ 30 s) ─► stop accepting ─► drain ─► shutdown, Start returns nil
//	new:                              NewServer/AddListener adopt ─► Start ─► "ready" ─► serves
//
// Both processes hold the same sockets (one accept queue per port) while the new one
// starts, so a connection is accepted by one of them, never refused. The old process
// keeps its connections until they close, up to max_wait_time; then it closes the rest
// and stops as for Shutdown.

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/reactor"
	"github.com/goswoole/swoole/internal/supervisor"
)

const (
	// upgradeReadyTimeout bounds how long Upgrade waits for the new process to report that
	// it serves; a process that has not by then is killed.
	upgradeReadyTimeout = 30 * time.Second
	// upgradeExitWait bounds how long a new process that closed its ready pipe without
	// reporting may take to exit before it is killed.
	upgradeExitWait = 5 * time.Second
	// drainPoll is how often a draining loop looks whether its connections are gone.
	drainPoll = 10 * time.Millisecond
)

// envUpgrade marks the process Upgrade started; its value is the pid of the process it
// replaces. The listeners and the ready pipe are named as for a daemon (daemon.go), whose
// variables the new process reads the same way.
const envUpgrade = "GOSWOOLE_UPGRADE"

// upgradeState is one server's upgrade.
type upgradeState struct {
	handedOver atomic.Bool // the new process serves: this one accepts no more
}

// Upgrade replaces this server's process with a new process of the executable on disk,
// without refusing a connection: a binary upgrade for a server of one process (ModeBase,
// worker_num 1, no task workers, no user processes), as cloudflare/tableflip does it.
//
// Upgrade starts the program's executable (the file at the path this process was started
// from, so a binary renamed over it is what runs) with the same arguments, working
// directory, environment and standard files, passing it every port's listening socket (and
// the admin_server's). In the new process NewServer and AddListener adopt those sockets by
// index instead of binding: the program must create the same ports in the same order (a
// port of another socket type, or another port number, is an error there). The new process
// reports once its Start has its listeners in its event loop, after OnStart and
// OnWorkerStart, right before the loop runs.
//
// Until then this process serves as before, and the two share each listening socket, so
// no connection is refused. Once the new process reports, this one stops accepting (it
// closes its copies of the listening sockets; a datagram port's stays open for SendTo but
// is no longer read) and drains: its open connections are served until they close, for up
// to max_wait_time (Settings.MaxWaitTime, default 3 s), after which the rest are closed.
// Then it shuts down as for Shutdown (BeforeShutdown, OnClose for what is left,
// WorkerStop, OnShutdown) and its Start returns nil. A unix socket's path belongs to the new
// process from then on; pid_file names the new process (the old one leaves it alone).
//
// Upgrade returns nil once the new process serves (this process is draining). It returns
// ErrRefused (503) before Start, while or after the server shuts down, while another
// Upgrade runs and once this process has handed its listeners over; ErrOperationNotSupport
// (507) in a server of several processes, whose Reload (SIGUSR1) already starts the
// workers from the binary on disk; and ErrSystemCallFail (502), or the errno, when the new
// process cannot be started, exits before it reports (the error gives its exit status; its
// output says why), or does not report within 30 s (it is killed). After an error this
// process keeps serving, as if Upgrade had not been called.
//
// Upgrade may be called from any goroutine, including a callback: there the event loop
// keeps serving the other connections while Upgrade waits. Nothing but the sockets is
// handed over: timers, connections, user state stay in the old process, so state that must
// survive belongs in storage both processes reach. A process started by daemonize stays in
// its session, and the new process does not daemonize again.
func (s *Server) Upgrade() error {
	r := s.rt()
	if r == nil {
		return s.fail(newError(ErrRefused, "Upgrade before Start: the server is not running yet"))
	}
	switch s.state.Load() {
	case stateStopping:
		return s.fail(newError(ErrRefused, "Upgrade while the server shuts down"))
	case stateStopped:
		return s.fail(newError(ErrRefused, "Upgrade after shutdown: the server is not running"))
	}
	// The runtimes whose loops all live in this process can hand over (acceptLoops lists
	// those loops); a process of a multi-process server holds only part of the server.
	if _, thread := r.(threadRuntime); r.role() != roleSingle && !thread {
		return s.fail(newError(ErrOperationNotSupport, "Upgrade: the %s of a server of several processes cannot hand over its listeners: replace the binary and Reload (SIGUSR1), which starts every worker from the file on disk", r.role()))
	}
	st := &upgradeState{}
	if !s.upgrade.CompareAndSwap(nil, st) {
		if prev := s.upgrade.Load(); prev != nil && prev.handedOver.Load() {
			return s.fail(newError(ErrRefused, "Upgrade: this process handed its listeners over already and drains its connections: upgrade the process that serves now"))
		}
		return s.fail(newError(ErrRefused, "Upgrade: an upgrade is in progress"))
	}
	loops := s.acceptLoops()
	var files []inheritedFile
	var ferr error
	if !loops[0].onLoop(func() { files, ferr = s.upgradeFiles() }) {
		s.upgrade.Store(nil)
		return s.fail(newError(ErrRefused, "Upgrade while the server shuts down"))
	}
	if ferr != nil {
		s.upgrade.Store(nil)
		return s.fail(ferr)
	}
	cmd, ready, err := startSuccessor(files)
	for _, f := range files {
		f.f.Close() // the new process holds its copies
	}
	if err != nil {
		s.upgrade.Store(nil)
		return s.fail(err)
	}
	if err := s.awaitSuccessor(cmd, ready); err != nil {
		s.upgrade.Store(nil)
		return s.fail(err)
	}
	st.handedOver.Store(true)
	s.log.Info("swoole: upgrade: the new process serves the listeners; this one stops accepting and drains", "pid", cmd.Process.Pid, "max_wait_time", s.eff.MaxWaitTime)
	_ = cmd.Process.Release() // it outlives this process, which does not wait for it
	s.handOver(loops)
	return nil
}

// acceptLoops returns the event loops that accept this server's connections in this
// process: Upgrade stops accepting on each of them and drains each. In a server of one
// process that is the single worker loop; in ModeThread, every reactor.
func (s *Server) acceptLoops() []*worker {
	if th := s.thr; th != nil {
		return th.reactors
	}
	return []*worker{s.cur}
}

// inheritedFile is a descriptor passed to the new process, under the key its
// GOSWOOLE_DAEMON_LISTENERS entry gives (a port index, or adminListenerKey).
type inheritedFile struct {
	key string
	f   *os.File
}

// upgradeFiles duplicates, on the loop (which owns the ports' descriptors and the admin
// server until Start returns), the sockets to pass to the new process.
func (s *Server) upgradeFiles() ([]inheritedFile, error) {
	var files []inheritedFile
	fail := func(err error, what string) ([]inheritedFile, error) {
		for _, f := range files {
			f.f.Close()
		}
		return nil, wrapErrno("", err, "Upgrade: cannot pass %s to the new process", what)
	}
	for i, p := range s.ports {
		if p.fd < 0 {
			continue
		}
		f, err := passSocket(p.fd)
		if err != nil {
			return fail(err, "port "+p.addr())
		}
		files = append(files, inheritedFile{strconv.Itoa(i), f})
	}
	if as := s.admin; as != nil {
		sc, ok := as.ln.(syscall.Conn)
		if !ok {
			return fail(errors.New("not a socket"), "the admin_server listener")
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return fail(err, "the admin_server listener")
		}
		var f *os.File
		if cerr := rc.Control(func(fd uintptr) { f, err = passSocket(int(fd)) }); cerr != nil {
			err = cerr
		}
		if err != nil {
			return fail(err, "the admin_server listener")
		}
		files = append(files, inheritedFile{adminListenerKey, f})
	}
	return files, nil
}

// passSocket wraps a close-on-exec duplicate of a listening socket in an *os.File for
// os/exec. The socket stays non-blocking throughout (the loop of this process accepts from
// it meanwhile: shareSocket's moment in blocking mode could hang its accept4); os.NewFile
// sees a non-blocking descriptor, so Fd leaves the mode alone.
func passSocket(fd int) (*os.File, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(nfd), "goswoole-listener"), nil
}

// startSuccessor starts the new process with files and a ready pipe, and returns the read
// end of the pipe.
func startSuccessor(files []inheritedFile) (*exec.Cmd, *os.File, error) {
	exe, err := supervisor.Executable()
	if err != nil {
		return nil, nil, wrapErrno("", err, "Upgrade: cannot find this program's executable")
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, nil, wrapErrno("pipe", err, "Upgrade: cannot create the ready pipe")
	}
	defer readyW.Close()
	cmd := &exec.Cmd{Path: exe, Args: os.Args}
	var lns []string
	for _, f := range files {
		lns = append(lns, f.key+"="+strconv.Itoa(3+len(cmd.ExtraFiles)))
		cmd.ExtraFiles = append(cmd.ExtraFiles, f.f)
	}
	ready := strconv.Itoa(3 + len(cmd.ExtraFiles))
	cmd.ExtraFiles = append(cmd.ExtraFiles, readyW)
	// A later KEY=value wins in os/exec: these replace whatever the environment held.
	cmd.Env = append(os.Environ(), envUpgrade+"="+strconv.Itoa(os.Getpid()), envDaemonListeners+"="+strings.Join(lns, ","), envDaemonReady+"="+ready)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		readyR.Close()
		return nil, nil, wrapErrno("", err, "Upgrade: cannot start %s", exe)
	}
	return cmd, readyR, nil // readyW closes now: the new process holds the only write end
}

// errNotReady is what the ready pipe gave instead of "ready".
var errNotReady = errors.New("the ready pipe closed")

// awaitSuccessor waits for the new process's report, up to upgradeReadyTimeout. On the
// loop's goroutine (Upgrade from a callback) the loop serves meanwhile (a nested run). A
// process that does not report is killed, or reaped once it exits, and the error says so.
func (s *Server) awaitSuccessor(cmd *exec.Cmd, ready *os.File) error {
	deadline := time.Now().Add(upgradeReadyTimeout)
	done := make(chan error, 1)
	w := s.cur // nil on a ModeThread master's handle: it has no loop of its own to serve
	go func() {
		done <- readReady(ready, deadline)
		if w != nil {
			w.loop.Post(reactor.Task{Fn: func() {}}) // wakes a nested wait
		}
	}()
	var err error
	got := false
	if w != nil && w.loop.OnLoop() {
		w.loop.RunUntil(func() bool {
			select {
			case err = <-done:
				got = true
			default:
			}
			return got
		}, w.loop.Now()+int64(upgradeReadyTimeout+time.Second))
	}
	if !got {
		err = <-done // the read ends by its deadline
	}
	ready.Close()
	if err == nil {
		return nil
	}
	pid := cmd.Process.Pid
	if errors.Is(err, os.ErrDeadlineExceeded) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return newError(ErrSystemCallFail, "Upgrade: the new process (pid %d) did not report that it serves within %v: it was killed (%v); this process keeps serving", pid, upgradeReadyTimeout, cmd.ProcessState)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(upgradeExitWait):
		_ = cmd.Process.Kill()
		<-exited
		return newError(ErrSystemCallFail, "Upgrade: the new process (pid %d) closed its ready pipe without reporting and did not exit: it was killed (%v); this process keeps serving", pid, cmd.ProcessState)
	}
	return newError(ErrSystemCallFail, "Upgrade: the new process (pid %d) exited before it served (%v): see its output for why; this process keeps serving", pid, cmd.ProcessState)
}

// readReady reads the new process's report from the ready pipe: nil for "ready",
// os.ErrDeadlineExceeded when deadline passed, errNotReady when the pipe closed first.
func readReady(r *os.File, deadline time.Time) error {
	if err := r.SetReadDeadline(deadline); err != nil {
		return err
	}
	var b [5]byte
	n, err := io.ReadFull(r, b[:])
	if n == len(b) && string(b[:]) == "ready" {
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	return errNotReady
}

// drain is the old process's end once the new one serves: every accept loop stops
// accepting, then each waits for its connections to close; when all have (or
// max_wait_time passed) the server shuts down.
type drain struct {
	s         *Server
	deadline  time.Time
	accepting atomic.Int32 // loops still accepting
	busy      atomic.Int32 // loops with connections left
	once      sync.Once
}

// handOver stops accepting on every loop of loops and drains them.
func (s *Server) handOver(loops []*worker) {
	d := &drain{s: s, deadline: time.Now().Add(s.eff.MaxWaitTime)}
	d.accepting.Store(int32(len(loops)))
	d.busy.Store(int32(len(loops)))
	for _, w := range loops {
		if !w.loop.Post(reactor.Task{Fn: func() { w.stopAccepting(d) }}) {
			// The loop stopped (Shutdown meanwhile): it accepts no more and holds nothing.
			d.stoppedAccepting()
			d.loopDrained()
		}
	}
}

// stopAccepting removes every listener from this loop, then drains it. On the loop.
func (w *worker) stopAccepting(d *drain) {
	for _, ln := range w.loop.Listeners() {
		w.loop.RemoveListener(ln)
	}
	d.stoppedAccepting()
	w.drainConns(d)
}

// stoppedAccepting counts a loop that no longer accepts; after the last one, the ports'
// descriptors are let go of (releaseListeners).
func (d *drain) stoppedAccepting() {
	if d.accepting.Add(-1) == 0 {
		d.s.releaseListeners()
	}
}

// releaseListeners lets go of the ports once no loop watches them: a stream port's
// descriptor closes (the new process holds the socket, and its accept queue); a datagram
// port's stays open until Start returns, for SendTo, and is not read. A unix socket's path
// is the new process's now: this one never unlinks it (adopted). The admin_server stops
// accepting too (its requests in progress finish). On the loop, before Start returns
// (Start's cleanup reads what it writes on the same goroutine).
func (s *Server) releaseListeners() {
	if s.admin != nil {
		_ = s.admin.ln.Close() // Serve returns; stopAdmin ends the connections it has
	}
	for _, p := range s.ports {
		p.adopted = true
		if !p.sock.isStream() || p.fd < 0 {
			continue
		}
		p.mu.Lock() // GetSocket
		syscall.Close(p.fd)
		p.fd = -1
		p.mu.Unlock()
	}
}

// drainConns waits, on the loop, until its connections are gone or the drain's deadline
// passed, looking every drainPoll.
func (w *worker) drainConns(d *drain) {
	var round func(int)
	round = func(int) {
		if n := w.loop.ConnCount(); n == 0 {
			d.loopDrained()
		} else if !time.Now().Before(d.deadline) {
			d.finish(n)
		} else {
			w.timers.Add(w.loop.Now(), drainPoll, 0, round)
		}
	}
	round(0)
}

// loopDrained counts a loop whose connections are all gone; after the last one the server
// shuts down.
func (d *drain) loopDrained() {
	if d.busy.Add(-1) == 0 {
		d.finish(0)
	}
}

// finish ends the drain once: open connections are still open at max_wait_time (0: every
// connection closed). The server shuts down as for Shutdown, which closes what is left.
func (d *drain) finish(open int) {
	d.once.Do(func() {
		s := d.s
		if open > 0 {
			s.log.Warn("swoole: upgrade: max_wait_time passed with connections still open: they are closed", "connections", open, "max_wait_time", s.eff.MaxWaitTime, "code", ErrServerWorkerExitTimeout)
		} else {
			s.log.Info("swoole: upgrade: every connection of the old process closed: it stops")
		}
		_ = s.run.shutdown()
	})
}

// forgetUpgrade drops the server's upgrade state when Start returns.
func (s *Server) forgetUpgrade() { s.upgrade.Store(nil) }

// inheritedAdminListener returns the admin_server listener the process this one replaces
// passed (Upgrade), when it listens on the address addr names (host:port; port 0 takes any),
// else nil (a listener passed for another address is closed).
func inheritedAdminListener(addr string) net.Listener {
	f := inheritedAdmin()
	if f == nil {
		return nil
	}
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil
	}
	_, want, _ := net.SplitHostPort(addr)
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && (want == "0" || want == strconv.Itoa(ta.Port)) {
		return ln
	}
	ln.Close()
	return nil
}
