package swoole

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/ipc"
)

// Log rotation (log_rotation) and reopening log_file (SIGRTMIN, SIGWINCH), as Swoole's
// Logger does (src/core/log.cc): with a rotation, the file written is log_file plus "." and
// the period in local time (strftime %Y%m, %Y%m%d, %Y%m%d%H, %Y%m%d%H%M), and a new file is
// opened when the period changes; SIGRTMIN (and SIGWINCH, which Swoole's source accepts
// too) closes the file and opens the path again, so that logrotate can move the file away
// and signal the server.
//
// Who opens the file. Swoole reopens the file by name in every process. goswoole keeps the
// rule of files.go instead: only the process that owns the file (the manager of a server
// with workers, the ModeProcess master, or the one process) opens log_file, with
// openLogFile's checks, and the other processes get the descriptor from it: a worker that
// runs as another user (user/group) may not be allowed to open the path at all, and must
// never create files there. So a reopen or a rotation happens in the owner, which
//
//  1. opens the new file (openLogFile: no planted link is followed),
//  2. puts it in place of the old one with dup3 on the descriptor its logger writes to (the
//     logger, and stdout/stderr when they were the log file, as after daemonize, write to
//     the new file from then on; the descriptor the workers inherit at spawn is that same
//     one, so a worker started later gets the new file),
//  3. sends a duplicate of it to every child over the child's pipe (msgLogReopen,
//     SCM_RIGHTS, accepted only from the manager's pid), and each child puts it in place of
//     its own log descriptor the same way (adoptLogFD).
//
// A child writes to the old file until the message arrives: lines logged in the few
// milliseconds after a period changes may land at the end of the previous period's file.
// The owner switches at the period's end on a timer, whether or not anything is logged.

// Log rotation periods: the values of log_rotation (Settings.LogRotation), Swoole's
// SWOOLE_LOG_ROTATION_* constants.
const (
	// LogRotationSingle writes log_file itself (no rotation). Swoole's
	// SWOOLE_LOG_ROTATION_SINGLE; the default.
	LogRotationSingle = 0
	// LogRotationMonthly writes log_file.YYYYMM (local time). SWOOLE_LOG_ROTATION_MONTHLY.
	LogRotationMonthly = 1
	// LogRotationDaily writes log_file.YYYYMMDD. SWOOLE_LOG_ROTATION_DAILY.
	LogRotationDaily = 2
	// LogRotationHourly writes log_file.YYYYMMDDHH. SWOOLE_LOG_ROTATION_HOURLY.
	LogRotationHourly = 3
	// LogRotationEveryMinute writes log_file.YYYYMMDDHHMM. SWOOLE_LOG_ROTATION_EVERY_MINUTE.
	LogRotationEveryMinute = 4
)

// msgLogReopen (manager → every child, with a descriptor): the log file is now this one.
const msgLogReopen = ipc.TypeUser + 32

// sigRTMIN is Linux's SIGRTMIN as C programs and shells see it (glibc keeps 32 and 33 for
// itself): `kill -RTMIN pid` sends 34.
const sigRTMIN = syscall.Signal(34)

// logNow is the clock of log rotation (tests replace it).
var logNow = time.Now

// logPeriodName is the suffix of the file of the period that t falls in (Swoole's
// gen_real_file formats; any value other than the known ones is daily, as there).
func logPeriodName(rotation int, t time.Time) string {
	switch rotation {
	case LogRotationMonthly:
		return t.Format("200601")
	case LogRotationHourly:
		return t.Format("2006010215")
	case LogRotationEveryMinute:
		return t.Format("200601021504")
	}
	return t.Format("20060102")
}

// logPeriodEnd is when the period that t falls in ends (in t's location).
func logPeriodEnd(rotation int, t time.Time) time.Time {
	y, m, d := t.Date()
	loc := t.Location()
	switch rotation {
	case LogRotationMonthly:
		return time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	case LogRotationHourly:
		return time.Date(y, m, d, t.Hour()+1, 0, 0, 0, loc)
	case LogRotationEveryMinute:
		return time.Date(y, m, d, t.Hour(), t.Minute()+1, 0, 0, loc)
	}
	return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

// logFileName is the file log_file names at t: log_file itself, or with the period's suffix.
func logFileName(file string, rotation int, t time.Time) string {
	if rotation == LogRotationSingle {
		return file
	}
	return file + "." + logPeriodName(rotation, t)
}

// logControl is the owner's side of log_file: the reopen signal and the rotation timer.
type logControl struct {
	mu      sync.Mutex
	name    string        // the file open now
	started bool          // watch ran
	stop    chan struct{} // closed by stopLogWatch
	done    chan struct{} // closed when watch returns
}

// startLogWatch starts, in the process that opened log_file (not in a child, which gets
// the file from its manager), the goroutine that reopens the file on SIGRTMIN or SIGWINCH
// and at the end of each rotation period. Call it once the pipes to the children exist;
// stopLogWatch ends it.
func (s *Server) startLogWatch() {
	lc := s.logCtl
	if lc == nil {
		return
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.started {
		return
	}
	lc.started = true
	lc.stop = make(chan struct{})
	lc.done = make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGWINCH)
	rt := make(chan struct{}, 1)
	if !notifyRTMIN(rt) {
		s.log.Debug("swoole: SIGRTMIN cannot be caught on this platform: reopen log_file with SIGWINCH")
	}
	go func() {
		defer close(lc.done)
		defer signal.Stop(sigs)
		defer stopRTMIN(rt)
		var tick <-chan time.Time
		var timer *time.Timer
		arm := func() {
			if s.eff.LogRotation == LogRotationSingle {
				return
			}
			now := logNow()
			d := logPeriodEnd(s.eff.LogRotation, now).Sub(now)
			if timer == nil {
				timer = time.NewTimer(d)
				tick = timer.C
			} else {
				timer.Reset(d)
			}
		}
		arm()
		defer func() {
			if timer != nil {
				timer.Stop()
			}
		}()
		for {
			select {
			case <-lc.stop:
				return
			case <-sigs:
				s.reopenLog(true)
			case <-rt:
				s.reopenLog(true)
			case <-tick:
				s.reopenLog(false)
				arm()
			}
		}
	}()
}

// stopLogWatch ends startLogWatch's goroutine and waits for it (before the pipes close).
func (s *Server) stopLogWatch() {
	lc := s.logCtl
	if lc == nil {
		return
	}
	lc.mu.Lock()
	started, stop := lc.started, lc.stop
	if started {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}
	lc.mu.Unlock()
	if started {
		<-lc.done
	}
}

// reopenLog opens the log file again in the owner: always (force: the reopen signal), or
// when the rotation period changed. The new file takes the place of the old one in this
// process and in every child (see the top of this file).
func (s *Server) reopenLog(force bool) {
	lc := s.logCtl
	if lc == nil || s.logFile == nil {
		return
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	name := logFileName(s.eff.LogFile, s.eff.LogRotation, logNow())
	if !force && name == lc.name {
		return
	}
	f, err := openLogFile(name)
	if err != nil {
		s.log.Warn("swoole: cannot reopen log_file: still writing to the old one", "path", name, "err", err, "code", ErrSystemCallFail)
		return
	}
	defer f.Close()
	if err := s.adoptLogFD(int(f.Fd())); err != nil {
		s.log.Warn("swoole: cannot reopen log_file: still writing to the old one", "path", name, "err", err, "code", ErrSystemCallFail)
		return
	}
	lc.name = name
	if s.mp == nil || s.mp.child {
		return
	}
	deadline := time.Now().Add(3 * time.Second)
	for id := 0; id < s.procTotal(); id++ {
		wr := s.writerTo(id)
		if wr == nil {
			continue
		}
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err == nil {
			err = wr.WriteFDBlocking(ipc.Header{Type: msgLogReopen, SrcWorker: managerSrcID}, nil, fd, deadline)
		}
		if err != nil {
			s.log.Warn("swoole: cannot hand the reopened log_file to a child: it keeps writing to the old one", "id", id, "err", err)
		}
	}
}

// adoptLogFD puts the open file fd in place of this process's log file descriptor (and of
// stdout and stderr where they are the same file as the log, as after daemonize). fd stays
// the caller's.
func (s *Server) adoptLogFD(fd int) error {
	if s.logFile == nil {
		return nil
	}
	old := int(s.logFile.Fd())
	var was unix.Stat_t
	if err := unix.Fstat(old, &was); err != nil {
		return os.NewSyscallError("fstat", err)
	}
	for _, std := range []int{1, 2} {
		var st unix.Stat_t
		if unix.Fstat(std, &st) == nil && st.Dev == was.Dev && st.Ino == was.Ino {
			_ = unix.Dup3(fd, std, 0)
		}
	}
	if err := unix.Dup3(fd, old, unix.O_CLOEXEC); err != nil {
		return os.NewSyscallError("dup3", err)
	}
	return nil
}

// logReopenMessage applies msgLogReopen in a child: fd (TakeFD; -1 when none came) becomes
// the log file. It reports whether h was that message.
func (s *Server) logReopenMessage(h ipc.Header, fd int) bool {
	if h.Type != msgLogReopen {
		return false
	}
	if fd < 0 {
		return true
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || (st.Mode&unix.S_IFMT != unix.S_IFREG && st.Mode&unix.S_IFMT != unix.S_IFCHR) {
		return true // not a log file: keep the old one
	}
	if err := s.adoptLogFD(fd); err != nil {
		s.log.Warn("swoole: cannot switch to the reopened log_file", "err", err)
	}
	return true
}
