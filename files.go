package swoole

import (
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/supervisor"
)

// The files a server creates by path (log_file, pid_file, stats_file) are created so that a
// local user who can write their directory cannot turn them against the server, which often
// runs as root: no path is followed through a symbolic link, and a file that is replaced
// whole (pid_file, stats_file) is written under a random name and renamed over the old one
// (rename replaces a link; it never writes through it).

// openLogFile opens log_file for appending. A symbolic link at the path is followed only
// when root or this process's user owns the link (so /dev/stdout works, while a link that
// another local user planted in a directory they can write is refused with ELOOP, the error
// O_NOFOLLOW gives), and the file must be a regular file or a character device such as
// /dev/null (a FIFO would block the server's writes).
func openLogFile(path string) (*os.File, error) {
	flags := os.O_CREATE | os.O_APPEND | os.O_WRONLY | syscall.O_NONBLOCK
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK &&
		st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		flags |= syscall.O_NOFOLLOW // not ours: refuse it
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() && fi.Mode()&os.ModeCharDevice == 0 {
		err = &os.PathError{Op: "open", Path: path, Err: syscall.EINVAL}
	}
	if err == nil {
		// Appends never block; the flag only kept a FIFO from blocking open.
		err = unix.SetNonblock(int(f.Fd()), false)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// replaceFile writes data to path atomically: a new file with a random name in the same
// directory (O_EXCL), renamed over path. It returns the new file, still open, when keep is
// true (the pid file keeps its lock that way).
func replaceFile(path string, data []byte, perm os.FileMode, keep bool) (*os.File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return nil, err
	}
	if _, err := f.Write(data); err != nil {
		return nil, err
	}
	if keep {
		// The lock says the pid in the file belongs to a live server (pidFileOwner).
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			return nil, os.NewSyscallError("flock", err)
		}
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return nil, err
	}
	ok = true
	if !keep {
		return nil, f.Close()
	}
	return f, nil
}

// fileLog is the name under which a child process inherits the log_file its manager opened.
const fileLog = "logfile"

// logFileOpen opens log_file: a child process takes the one its manager opened and passed
// down (so that a worker running as another user never needs to open the file itself), the
// manager or a single process opens it (openLogFile), under the name of the current period
// with log_rotation, and owns its reopening (logfile.go).
func (s *Server) logFileOpen() (*os.File, error) {
	if f, ok := supervisor.Inherited(fileLog); ok {
		// SIGRTMIN is the manager's to act on (logfile.go); sent to the whole process group
		// (kill -RTMIN -PGID) it must not terminate a worker.
		rtminIgnore()
		return f, nil
	}
	name := logFileName(s.eff.LogFile, s.eff.LogRotation, logNow())
	f, err := openLogFile(name)
	if err == nil {
		s.logCtl = &logControl{name: name}
	}
	return f, err
}
