//go:build linux

package conntable

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	childEnv   = "GOSWOOLE_CONNTABLE_CHILD"
	childIDEnv = "GOSWOOLE_CONNTABLE_ID"
	// childPath is the peer path of the parent's second session: longer than a Slot's inline
	// address, so it lives in the table's address region.
	childPath = "/run/goswoole/a-unix-peer-path-longer-than-sixteen-bytes.sock"
)

// runChild is the test binary acting as a child process: it maps the table
// inherited as fd 3, checks the session the parent published, and writes
// back. It returns the exit code.
func runChild() int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "child: "+format+"\n", args...)
		return 2
	}
	id, err := strconv.ParseInt(os.Getenv(childIDEnv), 10, 64)
	if err != nil {
		return fail("bad %s: %v", childIDEnv, err)
	}
	tb, err := Open(os.NewFile(3, "conntable"))
	if err != nil {
		return fail("Open: %v", err)
	}
	defer tb.Close()
	s := tb.Lookup(id)
	if s == nil {
		return fail("session %d not found", id)
	}
	if s.FD.Load() != 42 || s.Worker.Load() != 3 || s.RemoteIP() != "10.1.2.3" ||
		s.RemotePort.Load() != 5555 || s.UID.Load() != 9 || !s.HasFlag(FlagBound|FlagSSL) {
		return fail("fields: fd %d worker %d ip %q port %d uid %d flags %b",
			s.FD.Load(), s.Worker.Load(), s.RemoteIP(), s.RemotePort.Load(), s.UID.Load(), s.Flags.Load())
	}
	if got := tb.List(0, 10, nil); len(got) != 2 || got[0] != id {
		return fail("List = %v", got)
	}
	if s2 := tb.Lookup(id + 1); s2 == nil || s2.RemoteIP() != childPath || s2.RemoteFamily() != unix.AF_UNIX {
		return fail("long unix path not seen")
	}
	tb.Counters().RequestCount.Add(7)
	tb.Worker(1).PID.Store(int32(os.Getpid()))
	tb.Worker(1).Status.Store(WorkerIdle)
	if !tb.MarkClosing(s, id) {
		return fail("MarkClosing failed in child")
	}
	return 0
}

func TestMultiProcess(t *testing.T) {
	tb := newTable(t, 10, 2, 0)
	id, s, ok := tb.Alloc()
	if !ok {
		t.Fatal("Alloc")
	}
	s.FD.Store(42)
	s.Worker.Store(3)
	s.SetRemoteAddr(unix.AF_INET, []byte{10, 1, 2, 3}, 5555, "")
	s.SetUIDOnce(9)
	s.SetFlag(FlagSSL)
	tb.Publish(s)
	tb.Counters().RequestCount.Add(1)
	id2, s2, ok := tb.Alloc()
	if !ok || id2 != id+1 {
		t.Fatalf("Alloc: %d %v", id2, ok)
	}
	s2.SetRemoteAddr(unix.AF_UNIX, nil, 0, childPath)
	tb.Publish(s2)
	defer tb.Release(s2)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=1", childIDEnv+"="+strconv.FormatInt(id, 10))
	cmd.ExtraFiles = []*os.File{tb.File()}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v (ctx %v)\n%s", err, ctx.Err(), out.String())
	}
	// Run has waited: the child is gone.
	if !cmd.ProcessState.Exited() || cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("child state %v", cmd.ProcessState)
	}
	if got := tb.Counters().RequestCount.Load(); got != 8 {
		t.Errorf("RequestCount = %d, want 8", got)
	}
	if pid := tb.Worker(1).PID.Load(); pid != int32(cmd.ProcessState.Pid()) {
		t.Errorf("worker PID = %d, want %d", pid, cmd.ProcessState.Pid())
	}
	if tb.Worker(1).Status.Load() != WorkerIdle {
		t.Error("worker status not written")
	}
	if s.State.Load() != StateClosing || tb.MarkClosing(s, id) {
		t.Error("child's MarkClosing not visible")
	}
	tb.Release(s)
}
