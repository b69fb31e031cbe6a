package pidfile

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// A symbolic link planted at the pid file's path is replaced, never written through.
func TestWriteReplacesALink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "server.pid")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	f, err := Write(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Remove()
	if b, _ := os.ReadFile(victim); string(b) != "keep me" {
		t.Fatalf("the link's target was written: %q", b)
	}
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("the pid file is not a regular file: %v, %v", fi, err)
	}
	if b, _ := os.ReadFile(path); string(b) != strconv.Itoa(os.Getpid())+"\n" {
		t.Fatalf("pid file holds %q", b)
	}
}

// Owner tells a held pid file from a stale one, whose pid may belong to anyone by now.
func TestOwner(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "server.pid")
	f, err := Write(path)
	if err != nil {
		t.Fatal(err)
	}
	if pid, err := Owner(path); err != nil || pid != os.Getpid() {
		t.Fatalf("Owner of a held pid file: %d, %v", pid, err)
	}
	f.Remove()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Remove left the file: %v", err)
	}
	// A pid file that a server which died left behind: nobody holds it.
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Owner(path); !errors.Is(err, ErrStale) {
		t.Fatalf("Owner of a stale pid file: %v, want ErrStale", err)
	}
	// Remove leaves alone a file that is no longer the one it wrote.
	f, err = Write(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.Remove()
	if b, _ := os.ReadFile(path); string(b) != "other\n" {
		t.Fatalf("Remove deleted another process's pid file: %q", b)
	}
}
