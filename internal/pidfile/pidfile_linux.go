// Package pidfile writes a server's pid_file safely and tells whether a pid file still
// belongs to a running server.
//
// The file is written under a random name in its directory (O_EXCL) and renamed over the
// path, so a symbolic link planted there by a local user is replaced, never written
// through; the writer keeps it locked (flock) for its life, so a reader can tell a live
// server's pid from the pid of a server that died and whose number a new process now has.
package pidfile

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrStale is Owner's error for a pid file that no running process holds.
var ErrStale = errors.New("the pid file is stale: no running server holds it")

// File is a pid file this process wrote and holds locked.
type File struct {
	path string
	f    *os.File
}

// Write writes this process's pid to path (replacing what is there) and keeps it locked
// until Remove.
func Write(path string) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*File, error) {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	if err := f.Chmod(0o644); err != nil {
		return fail(err)
	}
	if _, err := f.WriteString(strconv.Itoa(os.Getpid()) + "\n"); err != nil {
		return fail(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fail(os.NewSyscallError("flock", err))
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fail(err)
	}
	return &File{path: path, f: f}, nil
}

// Remove deletes the pid file if it is still the one Write wrote, and lets go of it.
func (p *File) Remove() {
	if p == nil {
		return
	}
	if a, err := os.Lstat(p.path); err == nil {
		if b, err := p.f.Stat(); err == nil && os.SameFile(a, b) {
			os.Remove(p.path)
		}
	}
	p.f.Close()
}

// Owner returns the pid in the pid file at path when a running process still holds the
// file, ErrStale when none does (the server died and left it), or the error reading it.
func Owner(path string) (int, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err == nil {
		return 0, ErrStale
	} else if !errors.Is(err, unix.EWOULDBLOCK) {
		return 0, os.NewSyscallError("flock", err)
	}
	b := make([]byte, 32)
	n, _ := f.Read(b)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return 0, errors.New("the pid file " + path + " holds no pid")
	}
	return pid, nil
}
