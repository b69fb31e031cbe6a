//go:build linux

package supervisor_test

import (
	"errors"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/supervisor"
)

// copyExe copies this test binary to path, executable.
func copyExe(t *testing.T, path string) {
	t.Helper()
	self, err := supervisor.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// spawnManagerChild runs the test binary (or the file at path) as a manager child whose
// workers run modes; it reports to rp. The test's cleanup kills it if it is still there.
func spawnManagerChild(t *testing.T, rp *reporter, path, modes string) *supervisor.Child {
	t.Helper()
	sp, err := supervisor.NewSpawner()
	if err != nil {
		t.Fatal(err)
	}
	mc, err := sp.Spawn(supervisor.Role{Kind: supervisor.KindManager}, supervisor.Files{"report": rp.w},
		supervisor.SpawnOptions{Path: path, Env: []string{envChild + "=manager", envSlots + "=" + modes}})
	if err != nil {
		sp.Close()
		t.Fatal(err)
	}
	rp.closeWriter() // the manager child holds it now: EOF means the whole subtree is gone
	t.Cleanup(func() {
		select {
		case <-mc.Done():
		default:
			t.Errorf("manager child %d still running at the end: killing it", mc.PID())
			mc.Signal(syscall.SIGKILL)
			mc.Wait()
		}
		sp.Close()
	})
	return mc
}

func waitChild(t *testing.T, c *supervisor.Child, timeout time.Duration) supervisor.ExitStatus {
	t.Helper()
	select {
	case <-c.Done():
		return c.Wait()
	case <-time.After(timeout):
		t.Fatalf("pid %d did not exit within %v", c.PID(), timeout)
		return supervisor.ExitStatus{}
	}
}

// reapOrphan waits for a grandchild re-parented to this process (a child subreaper, see
// TestMain) to die and returns how it ended. ours is false when the grandchild was reaped
// before it could be re-parented: its dying parent's threads die one by one, and a thread
// still blocked in waitid can reap a child that the first thread's death signal killed.
func reapOrphan(t *testing.T, pid int, timeout time.Duration) (ws unix.WaitStatus, ours bool) {
	t.Helper()
	waitUntil(t, timeout, "orphan "+strconv.Itoa(pid)+" to die", func() bool {
		n, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		switch {
		case n == pid:
			ours = true
			return true
		case errors.Is(err, unix.ECHILD) && gone(pid):
			return true // dead and reaped by its parent
		case err != nil && !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.ECHILD):
			t.Fatalf("wait4(%d): %v", pid, err)
		}
		return false
	})
	return ws, ours
}

// TestParentKilled: test → manager child → two worker grandchildren. SIGKILL the manager:
// the grandchild with the default death signal dies of SIGKILL (Pdeathsig) or of its
// lifeline, whichever comes first, the one that
// ignores its death signal (SIGTERM) exits 3 when it sees its lifeline close.
func TestParentKilled(t *testing.T) {
	rp := newReporter(t)
	mc := spawnManagerChild(t, rp, "", "echo-gen,ignore-term")
	mgr := rp.role("manager")
	w0, w1 := rp.role("worker:0"), rp.role("worker:1")
	if mgr.PID != mc.PID() || w0.PPID != mc.PID() || w1.PPID != mc.PID() {
		t.Fatalf("tree: manager %+v (child %d), workers %+v %+v", mgr, mc.PID(), w0, w1)
	}

	if err := mc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if st := waitChild(t, mc, 10*time.Second); st.Signal != syscall.SIGKILL {
		t.Fatalf("manager child ended with %v", st)
	}
	// The kernel closes a dying process's files before it sends its children their death
	// signal, so worker:0 may see its lifeline close and exit 1 first: either way it died
	// with its parent, at once.
	if ws, ours := reapOrphan(t, w0.PID, 10*time.Second); !ours {
		t.Logf("worker:0 was reaped by the dying manager (its death signal came first)")
	} else if lifeline := ws.Exited() && ws.ExitStatus() == 1; lifeline {
		t.Logf("worker:0 saw its lifeline close before its death signal came")
	} else if !ws.Signaled() || ws.Signal() != unix.SIGKILL {
		t.Errorf("worker:0 ended with %#x, want killed by SIGKILL (Pdeathsig) or exit 1 (lifeline)", uint32(ws))
	}
	// The lifeline closes only when the manager's last thread is gone: always re-parented.
	if ws, ours := reapOrphan(t, w1.PID, 10*time.Second); !ours || !ws.Exited() || ws.ExitStatus() != 3 {
		t.Errorf("worker:1 ended with %#x (reaped here: %v), want exit 3 (lifeline)", uint32(ws), ours)
	}
	rp.waitEOF(10 * time.Second)
	for _, pid := range []int{mc.PID(), w0.PID, w1.PID} {
		if !gone(pid) {
			t.Errorf("pid %d still exists", pid)
		}
	}
}

// TestReplacedExecutable: the manager child runs from a copy of the test binary; the file
// at that path is replaced and SIGUSR1 reloads the workers, which run the new file.
func TestReplacedExecutable(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "server")
	copyExe(t, bin)
	oldIno := inode(t, bin)

	rp := newReporter(t)
	mc := spawnManagerChild(t, rp, bin, "echo-gen")
	rp.role("manager")
	w0 := rp.role("worker:0")
	if got := inode(t, "/proc/"+strconv.Itoa(w0.PID)+"/exe"); got != oldIno {
		t.Fatalf("worker runs inode %d, want %d", got, oldIno)
	}

	// Deploy: write the new file beside the old and rename it over.
	copyExe(t, bin+".new")
	if err := os.Rename(bin+".new", bin); err != nil {
		t.Fatal(err)
	}
	newIno := inode(t, bin)
	if newIno == oldIno {
		t.Fatal("the replacement has the old inode")
	}

	if err := mc.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	w1 := rp.role("worker:0", w0.PID)
	if w1.Gen != 1 {
		t.Errorf("reloaded worker gen %d, want 1", w1.Gen)
	}
	if got := inode(t, "/proc/"+strconv.Itoa(w1.PID)+"/exe"); got != newIno {
		t.Errorf("reloaded worker runs inode %d, want the new file's %d (old %d)", got, newIno, oldIno)
	}
	if got := inode(t, "/proc/"+strconv.Itoa(mc.PID())+"/exe"); got != oldIno {
		t.Errorf("the manager itself now runs inode %d, want the old %d", got, oldIno)
	}
	waitUntil(t, 10*time.Second, "the old worker to exit", func() bool { return gone(w0.PID) })

	if err := mc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st := waitChild(t, mc, 15*time.Second); st.Code != 0 || st.Signal != 0 {
		t.Errorf("manager child ended with %v, want exit 0", st)
	}
	rp.waitEOF(10 * time.Second)
	if !gone(w1.PID) {
		t.Errorf("worker %d outlived its manager's shutdown", w1.PID)
	}
}

func TestSpawnDirect(t *testing.T) {
	rp := newReporter(t)
	role := supervisor.Role{Kind: supervisor.KindUserProcess, ID: 2}
	c, err := supervisor.Spawn(role, supervisor.Files{"report": rp.w},
		supervisor.SpawnOptions{Gen: 7, Env: []string{envChild + "=echo-gen"}})
	if err != nil {
		t.Fatal(err)
	}
	l := rp.role("process:2")
	if l.PID != c.PID() || l.Gen != 7 || l.PPID != os.Getpid() || c.Role() != role || c.Gen() != 7 {
		t.Errorf("report %+v, child pid %d role %v gen %d", l, c.PID(), c.Role(), c.Gen())
	}
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st := waitChild(t, c, 10*time.Second); st.Code != 0 || st.Signal != 0 || st.Err != nil || st.String() != "exit 0" {
		t.Errorf("exit status %+v (%v)", st, st)
	}
	if err := c.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after reaping = %v, want os.ErrProcessDone", err)
	}
	if !gone(c.PID()) {
		t.Errorf("pid %d exists after Wait", c.PID())
	}

	for name, files := range map[string]supervisor.Files{
		"reserved": {supervisor.LifelineName: rp.w},
		"comma":    {"a,b": rp.w},
		"nil":      {"x": nil},
	} {
		if _, err := supervisor.Spawn(role, files, supervisor.SpawnOptions{}); err == nil {
			t.Errorf("%s: Spawn accepted %v", name, files)
		}
	}
	if _, err := supervisor.Spawn(role, nil, supervisor.SpawnOptions{Path: "/nonexistent/binary"}); err == nil {
		t.Errorf("Spawn of a missing file succeeded")
	}
}

func TestSpawnCredentials(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	// nobody must be able to reach and run the binary.
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	bin := filepath.Join(dir, "server")
	copyExe(t, bin)

	rp := newReporter(t)
	cfg := supervisor.ManagerConfig{Slots: slots(rp, supervisor.KindWorker, 0, 1, "echo-gen")}
	cfg.Slots[0].Spawn.Path = bin
	cfg.Slots[0].Spawn.User = "nobody"
	startManager(t, cfg)
	if l := rp.role("worker:0"); strconv.Itoa(l.UID) != nobody.Uid {
		t.Errorf("child runs as uid %d, want %s", l.UID, nobody.Uid)
	}

	if _, err := supervisor.Spawn(supervisor.Role{Kind: supervisor.KindWorker}, nil,
		supervisor.SpawnOptions{User: "no-such-user-here"}); err == nil {
		t.Errorf("Spawn with an unknown user succeeded")
	}
}
