package swoole_test

// Dropping privileges (user, group): a worker started with only `group` keeps the uid (as
// asked) but none of root's supplementary groups; task workers that run as another user can
// spill into a task_tmpdir the manager created, and read what the manager spilled. These
// tests run as root (they skip otherwise) with the system's nobody/nogroup.

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// Environment of the privilege-drop server.
const (
	pdEnvUser   = "GOSWOOLE_TEST_PD_USER"   // user
	pdEnvGroup  = "GOSWOOLE_TEST_PD_GROUP"  // group
	pdEnvOut    = "GOSWOOLE_TEST_PD_OUT"    // a directory every process may write its reports to
	pdEnvTmpdir = "GOSWOOLE_TEST_PD_TMPDIR" // task_tmpdir ("": no task workers)
	pdEnvGroups = "GOSWOOLE_TEST_PD_GROUPS" // supplementary groups the manager takes first ("0,4242")
)

// pdBig is the size of the tasks and results that spill to task_tmpdir.
const pdBig = 200 << 10

func init() {
	mpMoreServers["privdrop"] = pdServerMain
}

// pdReport writes a report file in pdEnvOut (atomically: written, then renamed).
func pdReport(name, text string) {
	dir := os.Getenv(pdEnvOut)
	tmp := filepath.Join(dir, "."+name)
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		return
	}
	_ = os.Rename(tmp, filepath.Join(dir, name))
}

// pdCreds returns the Uid, Gid and Groups lines of /proc/self/status.
func pdCreds() string {
	b, _ := os.ReadFile("/proc/self/status")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && (k == "Uid" || k == "Gid" || k == "Groups") {
			out = append(out, k+"="+strings.Join(strings.Fields(v), ","))
		}
	}
	return strings.Join(out, " ")
}

// pdServerMain: ModeBase, one worker and, with pdEnvTmpdir, one task worker, with user and
// group from the environment. Every worker reports its credentials ("creds-<id>", with its
// pid). With task workers, the worker and the manager each send a task of pdBig bytes
// (spilled); the task worker reports each one it gets ("task-<src>": its size) and answers
// with pdBig bytes, whose arrival the worker reports ("finish": its size, or "task": the
// error of Task).
func pdServerMain() int {
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeBase, swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	if gs := os.Getenv(pdEnvGroups); gs != "" && os.Getenv("GOSWOOLE_ROLE") == "" {
		// The manager runs as root with supplementary groups, as root often does.
		var ids []int
		for _, f := range strings.Split(gs, ",") {
			n, _ := strconv.Atoi(f)
			ids = append(ids, n)
		}
		if err := syscall.Setgroups(ids); err != nil {
			fmt.Fprintln(os.Stderr, "setgroups:", err)
			return 2
		}
	}
	tmpdir := os.Getenv(pdEnvTmpdir)
	set := swoole.Settings{WorkerNum: 1, User: os.Getenv(pdEnvUser), Group: os.Getenv(pdEnvGroup), LogLevel: swoole.LogLevelWarning, MaxWaitTime: 3 * time.Second}
	if tmpdir != "" {
		set.TaskWorkerNum, set.TaskTmpdir = 1, tmpdir
	}
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	s.OnWorkerStart(func(s *swoole.Server, id int) {
		pdReport("creds-"+strconv.Itoa(id), fmt.Sprintf("pid=%d %s", os.Getpid(), pdCreds()))
		if tmpdir != "" && !s.IsTaskWorker() {
			if _, err := s.Task(bytes.Repeat([]byte{'w'}, pdBig), -1); err != nil {
				pdReport("task", err.Error())
			}
		}
	})
	s.OnReceive(func(*swoole.Server, int64, int, []byte) {})
	if tmpdir != "" {
		s.OnTask(func(s *swoole.Server, _ int, src int, data []byte) any {
			pdReport("task-"+strconv.Itoa(src), strconv.Itoa(len(data)))
			return bytes.Repeat([]byte{'r'}, pdBig)
		})
		s.OnFinish(func(s *swoole.Server, _ int, data []byte) {
			pdReport("finish", strconv.Itoa(len(data)))
		})
	}
	s.OnManagerStart(func(s *swoole.Server) {
		if tmpdir != "" {
			if _, err := s.Task(bytes.Repeat([]byte{'m'}, pdBig), -1); err != nil {
				pdReport("managertask", err.Error())
			}
		}
		mpEvent("managerstart", port)
	})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// pdSetup checks for root, makes a directory every user may reach and write (with a copy of
// the test binary, which the dropped workers run) and returns it and the binary's path.
func pdSetup(t *testing.T) (dir, bin string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("dropping privileges needs root: run the tests as root to check it")
	}
	dir = t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "server")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir, bin
}

// pdWait waits for report name in dir/out and returns it.
func pdWait(t *testing.T, ms *mpServer, dir, name string) string {
	t.Helper()
	var got string
	ms.eventually("report "+name, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "out", name))
		got = string(b)
		return err == nil
	})
	return got
}

// pdNoWorkerLeft checks, at cleanup, that the worker pids the reports name are gone.
func pdNoWorkerLeft(t *testing.T, dir string) {
	t.Cleanup(func() {
		ents, _ := os.ReadDir(filepath.Join(dir, "out"))
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), "creds-") {
				continue
			}
			b, _ := os.ReadFile(filepath.Join(dir, "out", e.Name()))
			var pid int
			fmt.Sscanf(string(b), "pid=%d", &pid)
			if pid > 0 && !mpGoneWithin(pid, 5*time.Second) {
				t.Errorf("worker pid %d outlived the manager", pid)
			}
		}
	})
}

// TestGroupOnlyDropsRootGroups: with only `group` set, by a manager running as root with
// supplementary groups 0 and 4242, a worker keeps uid 0 (only the group was asked for) but
// its gid and its supplementary groups are that group alone: the manager's groups are gone
// (they were kept, group 0 among them).
func TestGroupOnlyDropsRootGroups(t *testing.T) {
	dir, bin := pdSetup(t)
	g, err := user.LookupGroupId("65534")
	if err != nil {
		t.Skipf("no group 65534 here: %v", err)
	}
	pdNoWorkerLeft(t, dir)
	ms := mpStartBinary(t, bin, "privdrop", "managerstart", pdEnvGroup+"="+g.Name, pdEnvOut+"="+filepath.Join(dir, "out"), pdEnvGroups+"=0,4242")
	creds := pdWait(t, ms, dir, "creds-0")
	t.Logf("worker 0 with group %s: %s", g.Name, creds)
	for _, want := range []string{"Uid=0,0,0,0", "Gid=65534,65534,65534,65534", "Groups=65534"} {
		if !strings.Contains(creds+" ", want+" ") {
			t.Errorf("worker 0 runs with %q; want %s", creds, want)
		}
	}
}

// TestTaskTmpdirForDroppedWorkers: with `user` nobody and a task_tmpdir that does not exist,
// the manager creates it for the workers: a worker's task of 200 KiB spills into it and its
// 200 KiB result comes back (spilled by the task worker), and a task the manager (root)
// spills is read by the task worker. The workers run as nobody with nobody's groups only.
func TestTaskTmpdirForDroppedWorkers(t *testing.T) {
	dir, bin := pdSetup(t)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody here: %v", err)
	}
	pdNoWorkerLeft(t, dir)
	tmpdir := filepath.Join(dir, "spill", "tasks")
	ms := mpStartBinary(t, bin, "privdrop", "managerstart", pdEnvUser+"=nobody", pdEnvOut+"="+filepath.Join(dir, "out"), pdEnvTmpdir+"="+tmpdir, pdEnvGroups+"=0,4242")
	for _, id := range []string{"0", "1"} {
		creds := pdWait(t, ms, dir, "creds-"+id)
		if want := "Uid=" + strings.Repeat(nobody.Uid+",", 3) + nobody.Uid; !strings.Contains(creds, want+" ") {
			t.Errorf("worker %s runs with %q; want %s", id, creds, want)
		}
		if !strings.HasSuffix(creds, "Groups="+nobody.Gid) {
			t.Errorf("worker %s runs with %q; want Groups=%s alone", id, creds, nobody.Gid)
		}
	}
	// The worker's task comes back ("finish") or fails ("task").
	var finished bool
	ms.eventually("the worker's task to come back or fail", func() bool {
		_, err1 := os.Stat(filepath.Join(dir, "out", "finish"))
		_, err2 := os.Stat(filepath.Join(dir, "out", "task"))
		finished = err1 == nil
		return err1 == nil || err2 == nil
	})
	for _, name := range []string{"task", "managertask"} {
		if b, err := os.ReadFile(filepath.Join(dir, "out", name)); err == nil {
			t.Errorf("Task in the %s failed: %s", map[string]string{"task": "worker", "managertask": "manager"}[name], b)
		}
	}
	if !finished {
		t.FailNow()
	}
	if got := pdWait(t, ms, dir, "finish"); got != strconv.Itoa(pdBig) {
		t.Errorf("the worker's task came back with %s bytes; want %d", got, pdBig)
	}
	if got := pdWait(t, ms, dir, "task-0"); got != strconv.Itoa(pdBig) {
		t.Errorf("the task worker got the worker's task with %s bytes; want %d", got, pdBig)
	}
	if got := pdWait(t, ms, dir, "task--1"); got != strconv.Itoa(pdBig) {
		t.Errorf("the task worker got the manager's task with %s bytes; want %d", got, pdBig)
	}
	fi, err := os.Stat(tmpdir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("task_tmpdir has mode %v; want 0700", fi.Mode().Perm())
	}
}
