package swoole

import (
	"os"
	"os/exec"
	"syscall"

	"github.com/goswoole/swoole/internal/supervisor"
)

// envDaemon marks the process that daemonize started: it serves; its parent has exited.
const envDaemon = "GOSWOOLE_DAEMON"

// daemonize is the daemonize setting, called by Start while it prepares (s.mu held): the
// program is started again in a new session (setsid), with stdin from /dev/null and stdout
// and stderr appended to log_file (or /dev/null), and this process exits with status 0 once
// the new one runs — as Swoole's daemonize, the process that called Start does not return
// from it. In the new process (and in every child of the server) it does nothing. The
// ports are released first (the new process binds them again), and the working directory
// is kept, so relative paths in pid_file and log_file keep their meaning.
func (s *Server) daemonize() error {
	if os.Getenv(envDaemon) == "1" {
		return nil
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
		out = s.eff.LogFile
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
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), envDaemon+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// The daemon binds the ports again: release them here first.
	for _, p := range s.ports {
		if p.fd >= 0 {
			syscall.Close(p.fd)
			p.fd = -1
			if (p.sock.base() == SockUnixStream || p.sock.base() == SockUnixDgram) && !p.adopted {
				os.Remove(p.host)
			}
		}
	}
	if err := cmd.Start(); err != nil {
		return wrapErrno("", err, "daemonize: cannot start the daemon process")
	}
	_ = cmd.Process.Release()
	os.Exit(0)
	return nil
}
