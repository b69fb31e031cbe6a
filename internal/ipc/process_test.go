//go:build linux

package ipc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const childEnv = "GOSWOOLE_IPC_CHILD"

// childCfg is the configuration both processes use: small chunks, so that many messages
// are chunked.
var childCfg = Config{MaxPayload: 8000, Batch: 16}

// runChild is the test binary acting as a worker: it adopts fd 3, and echoes every message
// back as TypeFinish until a TypeShutdown arrives, with a poll loop the way an event loop
// would drive Reader and Writer. It returns the exit code.
func runChild() int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "ipc child: "+format+"\n", args...)
		return 2
	}
	f, err := Inherit(3, "ipc-worker")
	if err != nil {
		return fail("Inherit: %v", err)
	}
	defer f.Close()
	r, err := NewReader(f, childCfg)
	if err != nil {
		return fail("NewReader: %v", err)
	}
	defer r.Release()
	w, err := NewWriter(f, childCfg)
	if err != nil {
		return fail("NewWriter: %v", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	stop := false
	var werr error
	echo := func(h Header, p []byte) {
		if h.Type == TypeShutdown {
			stop = true
			return
		}
		h.Type, h.SrcWorker = TypeFinish, 1
		if err := w.Write(h, p); err != nil && werr == nil {
			werr = err
		}
	}
	pfd := []unix.PollFd{{Fd: int32(r.FD())}}
	for !stop {
		if werr != nil {
			return fail("Write: %v", werr)
		}
		if time.Now().After(deadline) {
			return fail("deadline passed")
		}
		pfd[0].Events = unix.POLLIN
		if w.Buffered() > 0 {
			pfd[0].Events |= unix.POLLOUT
		}
		if _, err := unix.Poll(pfd, 1000); err != nil && err != unix.EINTR {
			return fail("poll: %v", err)
		}
		if pfd[0].Revents&unix.POLLOUT != 0 {
			if _, err := w.Flush(); err != nil {
				return fail("Flush: %v", err)
			}
		}
		if pfd[0].Revents&unix.POLLIN != 0 {
			if _, err := r.ReadBatch(echo); err != nil {
				return fail("ReadBatch: %v", err)
			}
		}
	}
	if err := w.FlushBlocking(deadline); err != nil {
		return fail("FlushBlocking: %v", err)
	}
	if s := r.Counters().Load(); s.Dropped != 0 {
		return fail("dropped %d", s.Dropped)
	}
	return 0
}

// TestCrossProcess runs the test binary as a worker that inherits one end of a pair,
// sends it 10,000 messages (some chunked), and checks every echo.
func TestCrossProcess(t *testing.T) {
	const count = 10_000
	size := func(i int) int {
		if i%97 == 0 {
			return 20_000 + i*3 // chunked: up to ~50 KB, 3 to 7 datagrams
		}
		return i % 300
	}
	a, b := newPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.ExtraFiles = []*os.File{b}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	b.Close() // the child holds its end now

	w := newWriter(t, a, childCfg)
	r := newReader(t, a, childCfg)
	deadline := time.Now().Add(50 * time.Second)
	werr := make(chan error, 1)
	go func() {
		for i := range count {
			h := Header{Type: TypeTask, SrcWorker: -1, Fd: int64(i)}
			if err := w.WriteBlocking(h, pattern(i, size(i)), deadline); err != nil {
				werr <- fmt.Errorf("message %d: %w", i, err)
				return
			}
		}
		werr <- w.WriteBlocking(Header{Type: TypeShutdown, SrcWorker: -1}, nil, deadline)
	}()
	next := 0
	var bad error
	n := count
	err := readN(r, &n, deadline, func(h Header, p []byte) {
		if bad != nil {
			return
		}
		if h.Type != TypeFinish || h.Fd != int64(next) || h.SrcWorker != 1 {
			bad = fmt.Errorf("echo %d: header %+v", next, h)
		} else if err := checkPattern(p, next, size(next)); err != nil {
			bad = fmt.Errorf("echo %d: %w", next, err)
		}
		next++
	})
	if e := <-werr; e != nil {
		t.Fatal(e)
	}
	if err != nil || bad != nil {
		t.Fatalf("read: %v, %v\nchild output:\n%s", err, bad, out.String())
	}
	werr2 := cmd.Wait()
	exited = true
	if werr2 != nil || !cmd.ProcessState.Exited() || cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("child: %v (ctx %v)\n%s", werr2, ctx.Err(), out.String())
	}
	// The child is gone and nobody else holds its end: a write now fails.
	if err := w.Write(Header{Type: TypeTask}, []byte("late")); err == nil {
		t.Fatal("Write to a dead peer succeeded")
	} else {
		t.Logf("write to the dead peer: %v", err)
	}
	ws, rs := w.Counters().Load(), r.Counters().Load()
	t.Logf("parent writer %+v", ws)
	t.Logf("parent reader %+v", rs)
}
