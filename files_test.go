package swoole_test

// The files a server creates by path (log_file, pid_file, stats_file) cannot be turned
// against it by a local user who can write their directory: a symbolic link planted there
// is refused or replaced, never written through (the server often runs as root).

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

func init() { mpMoreServers["logfile"] = logFileServer }

// plantLink makes path a symbolic link to a victim file and returns the victim's path.
func plantLink(t *testing.T, path string) string {
	t.Helper()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	return victim
}

func checkVictim(t *testing.T, victim string) {
	t.Helper()
	if b, _ := os.ReadFile(victim); string(b) != "keep me" {
		t.Errorf("the server wrote through a planted link: the victim holds %q", b)
	}
}

// TestLogFileLinkRefused: a link at log_file that another user planted is refused (ELOOP),
// not followed; one of the server's own user (as /dev/stdout) is followed.
func TestLogFileLinkRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("planting a link as another user needs root (chown of the link)")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "server.log")
	victim := plantLink(t, path)
	if err := os.Lchown(path, 65534, 65534); err != nil { // nobody planted it
		t.Fatal(err)
	}
	s := newEcho(t, map[string]any{"log_file": path, "log_level": 0})
	err := s.Start()
	var e *swoole.Error
	if !errors.As(err, &e) || !errors.Is(err, syscall.ELOOP) || !strings.Contains(err.Error(), "log_file") {
		t.Fatalf("Start with a link at log_file: %v, want an error with ELOOP naming log_file", err)
	}
	checkVictim(t, victim)

	// The server's own link is followed, to a character device too.
	own := filepath.Join(dir, "own.log")
	if err := os.Symlink(os.DevNull, own); err != nil {
		t.Fatal(err)
	}
	r := start(t, newEcho(t, map[string]any{"log_file": own, "log_level": 0}))
	_ = r.Shutdown()
	if err := r.wait(startTimeout); err != nil {
		t.Fatalf("Start with log_file a link of its own to /dev/null: %v", err)
	}
}

// TestPidAndStatsFileLinksReplaced: links at pid_file and stats_file are replaced by the
// server's own files; their targets are left alone.
func TestPidAndStatsFileLinksReplaced(t *testing.T) {
	dir := t.TempDir()
	pid, stats := filepath.Join(dir, "server.pid"), filepath.Join(dir, "stats.json")
	pidVictim, statsVictim := plantLink(t, pid), plantLink(t, stats)
	// The old temporary name of stats_file, a fixed one, as a link too.
	tmpVictim := plantLink(t, stats+".tmp")
	r := start(t, newEcho(t, map[string]any{"pid_file": pid, "stats_file": stats}))
	waitFor(t, startTimeout, "stats_file to be written", func() bool {
		fi, err := os.Lstat(stats)
		return err == nil && fi.Mode().IsRegular()
	})
	if b, err := os.ReadFile(pid); err != nil || string(b) != strconv.Itoa(os.Getpid())+"\n" {
		t.Errorf("pid_file holds %q, %v", b, err)
	}
	if fi, err := os.Lstat(pid); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("pid_file is not a regular file: %v", err)
	}
	checkVictim(t, pidVictim)
	checkVictim(t, statsVictim)
	checkVictim(t, tmpVictim)
	_ = r.Shutdown()
	if err := r.wait(startTimeout); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if _, err := os.Lstat(pid); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid_file after shutdown: %v, want it removed", err)
	}
}

// logFileServer: ModeBase with two workers and log_file in the test's directory. A worker
// logs "workerstart" with its pid.
func logFileServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeBase, swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	if err := s.Set(swoole.Settings{WorkerNum: 2, LogFile: os.Getenv(mpEnvDir) + "/server.log", LogLevel: swoole.LogLevelWarning, MaxConnection: 64, MaxWaitTime: 3 * time.Second}); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	s.OnReceive(func(*swoole.Server, int64, int, []byte) {})
	s.OnWorkerStart(func(s *swoole.Server, id int) { mpEvent("workerstart", id) })
	s.OnManagerStart(func(*swoole.Server) { mpEvent("managerstart", port) })
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// TestLogFileHandedDown: workers write to the log_file their manager opened, and never open
// the path themselves (a worker running as another user could not open a root's log; and a
// path swapped after the manager opened it is not followed). The file is renamed away and a
// worker killed: its replacement still writes to the renamed file.
func TestLogFileHandedDown(t *testing.T) {
	ms := mpStartServer(t, "logfile", "managerstart")
	log := ms.dir + "/server.log"
	old := ms.waitEvent("workerstart", func(e mpEv) bool { return e.Fields[0] == "0" })
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	repl := ms.waitEvent("workerstart", func(e mpEv) bool { return e.Fields[0] == "0" && e.PID != old.PID })
	// The manager logs the killed worker (OnWorkerError's warning) into the renamed file.
	ms.eventually("the warning about the killed worker in the renamed log", func() bool {
		b, _ := os.ReadFile(log + ".1")
		return strings.Contains(string(b), strconv.Itoa(old.PID))
	})
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", repl.PID))
	found := false
	for _, fd := range fds {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", repl.PID, fd.Name()))
		if l == log {
			t.Errorf("the new worker opened log_file by its path")
		}
		found = found || l == log+".1"
	}
	if !found {
		t.Errorf("the new worker does not hold the manager's log_file")
	}
	if _, err := os.Stat(log); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a worker created log_file again by its path: %v", err)
	}
}

// TestAdminSocketPrivateDir: the admin socket lives in a directory of its own that only the
// server's user may enter; one planted there beforehand, open to others, is refused (the
// server serves no admin socket rather than one others could reach or fake).
func TestAdminSocketPrivateDir(t *testing.T) {
	dir := t.TempDir()
	pid := filepath.Join(dir, "server.pid")
	ms := mpStartServer(t, "uproc", "managerstart", mpEnvPidFile+"="+pid)
	sock := swoole.AdminSocketPath(pid)
	ms.eventually("the admin socket", func() bool {
		_, err := os.Stat(sock)
		return err == nil
	})
	fi, err := os.Stat(filepath.Dir(sock))
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("the admin socket's directory: %v, %v; want a 0700 directory", fi, err)
	}
	ms.signal(syscall.SIGTERM)
	ms.wait(mpTimeout)
	if _, err := os.Stat(filepath.Dir(sock)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the admin socket's directory after shutdown: %v, want it removed", err)
	}

	// Planted by someone else, open to others: refused.
	pid2 := filepath.Join(dir, "other.pid")
	planted := filepath.Dir(swoole.AdminSocketPath(pid2))
	if err := os.Mkdir(planted, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(planted, 0o777); err != nil {
		t.Fatal(err)
	}
	ms2 := mpStartServer(t, "uproc", "managerstart", mpEnvPidFile+"="+pid2)
	ms2.eventually("the refusal in the log", func() bool {
		b, _ := os.ReadFile(ms2.dir + "/output")
		return strings.Contains(string(b), "cannot serve the admin socket")
	})
	if _, err := os.Stat(swoole.AdminSocketPath(pid2)); err == nil {
		t.Errorf("the server serves its admin socket in a directory others may write")
	}
}
