package swoole

import (
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/supervisor"
)

// envDaemon marks the process that daemonize started: it serves; its parent has exited.
const envDaemon = "GOSWOOLE_DAEMON"

// Environment of the daemon, and of the process Upgrade starts (handover.go, envUpgrade):
// the listeners the process that started it passed, by port index ("0=3,1=4", plus
// "admin=5" for Upgrade's admin_server listener), and the pipe it reports on once it
// serves. It reads and unsets them. The names stay as they are: an Upgrade passes them from
// one build of the program to the next.
const (
	envDaemonListeners = "GOSWOOLE_DAEMON_LISTENERS"
	envDaemonReady     = "GOSWOOLE_DAEMON_READY"
)

// adminListenerKey names the admin_server's listener among the listeners Upgrade passes.
const adminListenerKey = "admin"

// daemonInherit is what a daemon, or a process Upgrade started, took from the process that
// started it (read once, by the first port).
var daemonInherit struct {
	once      sync.Once
	listeners map[int]*os.File
	admin     *os.File // Upgrade: the admin_server listener
	ready     *os.File
	upgraded  bool // started by Upgrade: it does not daemonize again
	mu        sync.Mutex
}

// daemonTake reads (once) the listeners and the ready pipe this process was started with
// as a daemon or by Upgrade, and clears the environment that named them so that no child
// sees it.
func daemonTake() {
	daemonInherit.once.Do(func() {
		upgraded := os.Getenv(envUpgrade) != ""
		if os.Getenv(envDaemon) != "1" && !upgraded {
			return
		}
		if _, child := supervisor.Current(); child {
			return
		}
		fd := func(v string) int {
			n, err := strconv.Atoi(v)
			if err != nil || n < 3 {
				return -1
			}
			unix.CloseOnExec(n)
			return n
		}
		daemonInherit.upgraded = upgraded
		daemonInherit.listeners = map[int]*os.File{}
		for _, kv := range strings.Split(os.Getenv(envDaemonListeners), ",") {
			k, v, ok := strings.Cut(kv, "=")
			n := fd(v)
			if !ok || n < 0 {
				continue
			}
			if k == adminListenerKey {
				daemonInherit.admin = os.NewFile(uintptr(n), "inherited-admin-listener")
			} else if i, err := strconv.Atoi(k); err == nil {
				daemonInherit.listeners[i] = os.NewFile(uintptr(n), "daemon-listener")
			}
		}
		if n := fd(os.Getenv(envDaemonReady)); n >= 0 {
			daemonInherit.ready = os.NewFile(uintptr(n), "daemon-ready")
		}
		os.Unsetenv(envDaemonListeners)
		os.Unsetenv(envDaemonReady)
		os.Unsetenv(envUpgrade)
	})
}

// daemonListener returns the listener the daemon's starter (or the process Upgrade
// replaces) bound for port index (nil when this process is neither, or was given none for
// that port). It is given once.
func daemonListener(index int) *os.File {
	daemonTake()
	daemonInherit.mu.Lock()
	defer daemonInherit.mu.Unlock()
	f := daemonInherit.listeners[index]
	delete(daemonInherit.listeners, index)
	return f
}

// inheritedAdmin returns the admin_server listener the process Upgrade replaces passed, or
// nil. It is given once.
func inheritedAdmin() *os.File {
	daemonTake()
	daemonInherit.mu.Lock()
	defer daemonInherit.mu.Unlock()
	f := daemonInherit.admin
	daemonInherit.admin = nil
	return f
}

// daemonReady tells the process that started this one (the daemon's starter, which then
// exits; the process Upgrade replaces, which then stops accepting and drains) that this
// one serves. Start calls it once the listeners are in the event loop, right before the
// loop runs (the manager: once the workers have started). It does nothing in another
// process, or the second time. The listeners passed for ports this program did not create
// close.
func daemonReady() {
	daemonTake()
	daemonInherit.mu.Lock()
	f := daemonInherit.ready
	daemonInherit.ready = nil
	for i, l := range daemonInherit.listeners { // passed for ports this program did not create
		l.Close()
		delete(daemonInherit.listeners, i)
	}
	if daemonInherit.admin != nil { // this program serves no admin_server now
		daemonInherit.admin.Close()
		daemonInherit.admin = nil
	}
	daemonInherit.mu.Unlock()
	if f != nil {
		_, _ = f.Write([]byte("ready"))
		f.Close()
	}
}

// daemonize is the daemonize setting, called by Start while it prepares (s.mu held): the
// program is started again in a new session (setsid), with stdin from /dev/null and stdout
// and stderr appended to log_file (or /dev/null), and this process exits with status 0 once
// the new one serves — as Swoole's daemonize, the process that called Start does not return
// from it. In the new process (and in every child of the server, and in a process Upgrade
// started) it does nothing. The
// bound ports are passed to the new process (its NewServer and AddListener adopt them, as
// a worker's do), so the ports are never free while the server moves; the new process
// reports on a pipe once it serves (daemonReady: right before its event loop runs, after
// OnStart and OnWorkerStart; a manager once its workers started), and only then does this one exit: if
// the new process exits first, Start returns an error here. The working directory is kept,
// so relative paths in pid_file and log_file keep their meaning.
func (s *Server) daemonize() error {
	if os.Getenv(envDaemon) == "1" {
		return nil
	}
	if daemonTake(); daemonInherit.upgraded {
		return nil // started by Upgrade: it takes the place of a process that serves already
	}
	if _, child := supervisor.Current(); child {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return wrapErrno("", err, "daemonize: cannot find this program's executable")
	}
	out := os.DevNull
	if s.eff.LogFile != "" {
		out = logFileName(s.eff.LogFile, s.eff.LogRotation, logNow())
	}
	var f *os.File
	if out == os.DevNull {
		f, err = os.OpenFile(out, os.O_WRONLY, 0)
	} else {
		f, err = openLogFile(out)
	}
	if err != nil {
		return wrapErrno("open", err, "daemonize: cannot open %q for the daemon's output: check log_file", out)
	}
	defer f.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return wrapErrno("open", err, "daemonize: cannot open %s", os.DevNull)
	}
	defer null.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return wrapErrno("pipe", err, "daemonize: cannot create the daemon's ready pipe")
	}
	defer readyR.Close()
	defer readyW.Close()
	cmd := exec.Command(exe, os.Args[1:]...)
	var lns []string
	for i, p := range s.ports {
		if p.fd < 0 {
			continue
		}
		lf, err := shareSocket(p.fd, "goswoole-listener")
		if err != nil {
			return wrapErrno("", err, "daemonize: cannot pass port %d to the daemon", p.port)
		}
		defer lf.Close()
		lns = append(lns, strconv.Itoa(i)+"="+strconv.Itoa(3+len(cmd.ExtraFiles)))
		cmd.ExtraFiles = append(cmd.ExtraFiles, lf)
	}
	ready := strconv.Itoa(3 + len(cmd.ExtraFiles))
	cmd.ExtraFiles = append(cmd.ExtraFiles, readyW)
	cmd.Env = append(os.Environ(), envDaemon+"=1", envDaemonListeners+"="+strings.Join(lns, ","), envDaemonReady+"="+ready)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return wrapErrno("", err, "daemonize: cannot start the daemon process")
	}
	readyW.Close() // the daemon holds the only write end: EOF means it is gone
	var b [8]byte
	n, _ := io.ReadFull(readyR, b[:5])
	if string(b[:n]) != "ready" {
		_ = cmd.Wait()
		return newError(ErrSystemCallFail, "daemonize: the daemon process exited before it served (%v): see log_file for why", cmd.ProcessState)
	}
	// The daemon serves on the same sockets: this process only lets go of them (a unix
	// socket's path stays, the daemon's now).
	for _, p := range s.ports {
		if p.fd >= 0 {
			syscall.Close(p.fd)
			p.fd = -1
		}
	}
	_ = cmd.Process.Release()
	os.Exit(0)
	return nil
}
