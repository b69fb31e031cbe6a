package swoole_test

// ModeThread in the test process itself (one process: no re-execution): the handles of the
// loops, reload, Stop, max_request and a panicking callback (each keeps the connections
// open), tasks, and what Shutdown leaves behind (goleak checks that no goroutine does).

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// newThreadServer creates a ModeThread TCP server on 127.0.0.1 with quiet() and opts. Its
// DispatchFunc sends session n to worker n modulo worker_num: the client and the server
// share this process's descriptors, so dispatch_mode 2 (the socket's descriptor modulo
// worker_num) would see only one parity.
func newThreadServer(t *testing.T, opts map[string]any) *swoole.Server {
	t.Helper()
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeThread, swoole.SockTCP)
	if err != nil {
		t.Fatalf("NewServer(ModeThread): %v", err)
	}
	t.Cleanup(func() { _ = s.Shutdown() })
	setOpts(t, s, opts)
	if err := s.Set(swoole.Settings{DispatchFunc: func(s *swoole.Server, fd int64, _ int, _ []byte) int {
		return int(fd % int64(s.Setting().WorkerNum))
	}}); err != nil {
		t.Fatal(err)
	}
	return s
}

func dialLines(t *testing.T, r *running) *lineClient {
	t.Helper()
	c := r.dial(t)
	return &lineClient{t: t, c: c, r: bufio.NewReader(c)}
}

// threadLines is the options of a line server.
func threadLines(workers int, more map[string]any) map[string]any {
	o := map[string]any{"worker_num": workers, "open_eof_split": true, "package_eof": "\n"}
	for k, v := range more {
		o[k] = v
	}
	return o
}

// whoReply answers "who" with the handle's worker id and the reactor id.
func whoReply(s *swoole.Server, fd int64, reactorID int, data []byte) bool {
	if strings.TrimSpace(string(data)) != "who" {
		return false
	}
	_ = s.Send(fd, []byte(fmt.Sprintf("%d %d\n", s.GetWorkerID(), reactorID)))
	return true
}

func TestThreadHandles(t *testing.T) {
	s := newThreadServer(t, threadLines(3, map[string]any{"task_worker_num": 2, "reactor_num": 2}))
	pid := os.Getpid()
	var mu sync.Mutex
	var bad []string
	fail := func(format string, args ...any) {
		mu.Lock()
		bad = append(bad, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	var started atomic.Int32
	s.OnWorkerStart(func(h *swoole.Server, id int) {
		if h.GetWorkerID() != id {
			fail("OnWorkerStart(%d): GetWorkerID %d", id, h.GetWorkerID())
		}
		if h.IsTaskWorker() != (id >= 3) {
			fail("OnWorkerStart(%d): IsTaskWorker %v", id, h.IsTaskWorker())
		}
		if st, err := h.GetWorkerStatus(-1); err != nil || st != swoole.WorkerIdle {
			fail("OnWorkerStart(%d): GetWorkerStatus(-1) %d %v, want idle", id, st, err)
		}
		if h.GetWorkerPID(-1) != pid || h.GetMasterPID() != pid || h.GetManagerPID() != pid {
			fail("OnWorkerStart(%d): pids %d %d %d, want %d", id, h.GetWorkerPID(-1), h.GetMasterPID(), h.GetManagerPID(), pid)
		}
		if h == s {
			fail("OnWorkerStart(%d): got the master's handle", id)
		}
		// Each loop's timers are its own: a timer made here fires on this loop.
		if _, err := h.After(1, func() {
			if h.GetWorkerID() != id {
				fail("worker %d's timer saw worker %d", id, h.GetWorkerID())
			}
			started.Add(1)
		}); err != nil {
			fail("After in worker %d: %v", id, err)
		}
	})
	s.OnTask(func(h *swoole.Server, taskID, src int, data []byte) any {
		if !h.IsTaskWorker() {
			fail("OnTask: IsTaskWorker false")
		}
		if _, err := h.Task("x", -1); mpCode(err) != swoole.ErrOperationNotSupport {
			fail("Task in a task worker: %v, want 507", err)
		}
		return append([]byte(strconv.Itoa(h.GetWorkerID())+":"), data...)
	})
	s.OnPipeMessage(func(h *swoole.Server, src int, data []byte) {})
	s.OnReceive(func(h *swoole.Server, fd int64, reactorID int, data []byte) {
		if whoReply(h, fd, reactorID, data) {
			return
		}
		self := h.GetWorkerID()
		err := h.SendMessage("me", self)
		r, werr := h.TaskWait("ping", 10*time.Second, 0)
		st, _ := h.GetWorkerStatus(-1)
		_ = h.Send(fd, []byte(fmt.Sprintf("self=%d err=%d task=%s/%v status=%d finish=%d\n", self, mpCode(err), r, werr, st, mpCode(h.Finish("x")))))
	})
	r := start(t, s)
	waitFor(t, startTimeout, "every loop's timer", func() bool { return started.Load() == 5 })
	if s.GetWorkerID() != -1 || s.IsTaskWorker() {
		t.Fatalf("the master's handle: GetWorkerID %d IsTaskWorker %v, want -1 false", s.GetWorkerID(), s.IsTaskWorker())
	}
	if s.GetMasterPID() != pid || s.GetManagerPID() != pid {
		t.Fatalf("GetMasterPID %d GetManagerPID %d, want %d", s.GetMasterPID(), s.GetManagerPID(), pid)
	}
	for id := range 5 {
		if got := s.GetWorkerPID(id); got != pid {
			t.Fatalf("GetWorkerPID(%d) = %d, want %d", id, got, pid)
		}
	}
	if _, err := s.GetWorkerStatus(-1); mpCode(err) != swoole.ErrInvalidParams {
		t.Fatalf("GetWorkerStatus(-1) on the master: %v, want 505", err)
	}
	seen := map[string]bool{}
	for range 6 {
		lc := dialLines(t, r)
		who := strings.Fields(lc.do("who"))
		seen[who[0]] = true
		got := lc.do("go")
		want := fmt.Sprintf("self=%s err=%d task=3:ping/<nil> status=%d finish=%d", who[0], swoole.ErrRefused, swoole.WorkerBusy, swoole.ErrRefused)
		if got != want {
			t.Fatalf("worker %s: %q, want %q", who[0], got, want)
		}
	}
	if len(seen) != 3 {
		t.Fatalf("6 connections reached workers %v: fd modulo must use all 3", seen)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatal(strings.Join(bad, "\n"))
	}
}

// threadLifecycle counts the loops' starts and stops and the OnWorkerError calls.
type threadLifecycle struct {
	mu     sync.Mutex
	starts map[int]int
	stops  map[int]int
	errors []string
}

func watchLifecycle(s *swoole.Server) *threadLifecycle {
	lc := &threadLifecycle{starts: map[int]int{}, stops: map[int]int{}}
	s.OnWorkerStart(func(_ *swoole.Server, id int) { lc.mu.Lock(); lc.starts[id]++; lc.mu.Unlock() })
	s.OnWorkerStop(func(_ *swoole.Server, id int) { lc.mu.Lock(); lc.stops[id]++; lc.mu.Unlock() })
	s.OnWorkerError(func(_ *swoole.Server, id, pid, code, sig int) {
		lc.mu.Lock()
		lc.errors = append(lc.errors, fmt.Sprintf("%d %d %d %d", id, pid, code, sig))
		lc.mu.Unlock()
	})
	return lc
}

func (lc *threadLifecycle) count(id int) (starts, stops, errs int) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.starts[id], lc.stops[id], len(lc.errors)
}

// TestThreadLoopsReplaced: Reload, Stop, max_request and a panicking callback each replace
// worker loops and keep every connection open.
func TestThreadLoopsReplaced(t *testing.T) {
	s := newThreadServer(t, threadLines(2, map[string]any{"max_request": 50}))
	life := watchLifecycle(s)
	var reloaded atomic.Int32
	s.OnAfterReload(func(*swoole.Server) { reloaded.Add(1) })
	s.OnReceive(func(h *swoole.Server, fd int64, rid int, data []byte) {
		if whoReply(h, fd, rid, data) {
			return
		}
		switch strings.TrimSpace(string(data)) {
		case "panic":
			panic("a callback's bug")
		case "stopme":
			_ = h.Send(fd, []byte(fmt.Sprintf("stop %d\n", mpCode(h.Stop(-1, false)))))
		default:
			_ = h.Send(fd, data)
		}
	})
	r := start(t, s)
	waitFor(t, startTimeout, "both workers", func() bool { a, _, _ := life.count(0); b, _, _ := life.count(1); return a == 1 && b == 1 })
	var clients []*lineClient
	byWorker := map[int]*lineClient{}
	for len(byWorker) < 2 && len(clients) < 10 {
		lc := dialLines(t, r)
		id, _ := strconv.Atoi(strings.Fields(lc.do("who"))[0])
		byWorker[id] = lc
		clients = append(clients, lc)
	}
	check := func(when string) {
		t.Helper()
		for i, lc := range clients {
			if got := lc.do("hello " + strconv.Itoa(i)); got != "hello "+strconv.Itoa(i) {
				t.Fatalf("%s: connection %d answered %q", when, i, got)
			}
		}
	}
	check("before")

	if err := s.Reload(false); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	waitFor(t, startTimeout, "the reload", func() bool { return reloaded.Load() == 1 })
	for id := range 2 {
		if starts, stops, _ := life.count(id); starts != 2 || stops != 1 {
			t.Fatalf("after Reload worker %d started %d times and stopped %d, want 2 and 1", id, starts, stops)
		}
	}
	check("after Reload")

	if err := s.Stop(1, false); err != nil {
		t.Fatalf("Stop(1): %v", err)
	}
	waitFor(t, startTimeout, "worker 1 replaced", func() bool { starts, _, _ := life.count(1); return starts == 3 })
	if got := byWorker[0].do("stopme"); got != "stop 0" {
		t.Fatalf("Stop(-1) in worker 0: %q", got)
	}
	waitFor(t, startTimeout, "worker 0 replaced", func() bool { starts, _, _ := life.count(0); return starts == 3 })
	check("after Stop")

	// A panic: logged, OnWorkerError(id, pid, 255, 0), the loop replaced; the connection
	// that caused it stays open too.
	lc := byWorker[1]
	_ = lc.c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := lc.c.Write([]byte("panic\nafter the panic\n")); err != nil {
		t.Fatal(err)
	}
	if got, err := lc.r.ReadString('\n'); err != nil || got != "after the panic\n" {
		t.Fatalf("the event after a panic: %q %v", got, err)
	}
	_, _, errs := life.count(1)
	life.mu.Lock()
	if errs != 1 || life.errors[0] != fmt.Sprintf("1 %d 255 0", os.Getpid()) {
		t.Fatalf("OnWorkerError calls %q, want one \"1 %d 255 0\"", life.errors, os.Getpid())
	}
	life.mu.Unlock()
	check("after a panic")

	// max_request 50: the loop is replaced after its 50th request, the connection kept.
	before, _, _ := life.count(0)
	for i := range 60 {
		if got := byWorker[0].do("n" + strconv.Itoa(i)); got != "n"+strconv.Itoa(i) {
			t.Fatalf("request %d: %q", i, got)
		}
	}
	if starts, _, _ := life.count(0); starts <= before {
		t.Fatalf("60 requests past max_request 50: worker 0 started %d times, before %d", starts, before)
	}
	check("after max_request")
	if st := s.Stats(); st.ConnectionNum != len(clients) {
		t.Fatalf("connection_num %d, want %d: no connection may be lost", st.ConnectionNum, len(clients))
	}
}

func TestThreadTasks(t *testing.T) {
	s := newThreadServer(t, threadLines(1, map[string]any{"task_worker_num": 2}))
	release := make(chan struct{}) // a "hold" task waits for it (the timeout case)
	finished := make(chan string, 16)
	s.OnFinish(func(h *swoole.Server, taskID int, data []byte) {
		finished <- fmt.Sprintf("%d %s worker=%d", taskID, data, h.GetWorkerID())
	})
	s.OnTask(func(h *swoole.Server, taskID, src int, data []byte) any {
		switch d := string(data); {
		case d == "nil":
			return nil
		case d == "panic":
			panic("OnTask's bug")
		case d == "twice":
			first := h.Finish("one")
			second := h.Finish("two")
			return fmt.Sprintf("%d", mpCode(first)*10000+mpCode(second)) // dropped: finished already
		case d == "hold":
			<-release
			return "held"
		default:
			return "re:" + d + " from " + strconv.Itoa(src)
		}
	})
	res := make(chan string, 16)
	s.OnReceive(func(h *swoole.Server, fd int64, _ int, data []byte) {
		switch cmd := strings.TrimSpace(string(data)); cmd {
		case "task":
			id, err := h.Task([]byte("a"), -1)
			res <- fmt.Sprintf("task %d %v", id, err)
		case "callback":
			_, err := h.TaskWithCallback("b", 1, func(h2 *swoole.Server, id int, d []byte) {
				res <- fmt.Sprintf("callback %s worker=%d", d, h2.GetWorkerID())
			})
			if err != nil {
				res <- "callback error " + err.Error()
			}
		case "wait":
			d, err := h.TaskWait("c", 10*time.Second, -1)
			res <- fmt.Sprintf("wait %s %v", d, err)
		case "nil":
			_, err := h.TaskWait("nil", 10*time.Second, -1)
			res <- fmt.Sprintf("nil %d", mpCode(err))
		case "twice":
			d, err := h.TaskWait("twice", 10*time.Second, -1)
			res <- fmt.Sprintf("twice %s %v", d, err)
		case "multi":
			out, err := h.TaskWaitMulti([]any{"x", "y", "nil", "z"}, 10*time.Second)
			res <- fmt.Sprintf("multi %q %v", out, err)
		case "co":
			out, err := h.TaskCo([]any{"hold", "hold", "p"}, 10*time.Second)
			res <- fmt.Sprintf("co %q %v", out, err)
		case "timeout":
			_, err := h.TaskWait("hold", time.Millisecond, 0)
			res <- fmt.Sprintf("timeout %d", mpCode(err))
		case "panic":
			// The waiter learns at once that the task is lost, not after its timeout.
			t0 := time.Now()
			_, err := h.TaskWait("panic", time.Minute, 0)
			res <- fmt.Sprintf("panic %d %v", mpCode(err), time.Since(t0) < 30*time.Second)
		}
	})
	r := start(t, s)
	var releaseOnce sync.Once
	unhold := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unhold) // before the server's shutdown: a failed test leaves no task held
	c := r.dial(t)
	want := []struct{ cmd, want string }{
		{"task", "task 0 <nil>"},
		{"callback", "callback re:b from 0 worker=0"},
		{"wait", "wait re:c from 0 <nil>"},
		{"nil", "nil " + strconv.Itoa(swoole.ErrWrongOperation)},
		{"twice", "twice one <nil>"},
		{"multi", `multi ["re:x from 0" "re:y from 0" "" "re:z from 0"] <nil>`},
		{"timeout", "timeout " + strconv.Itoa(swoole.ErrTaskTimeout)},
		{"co", `co ["held" "held" "re:p from 0"] <nil>`},
		{"panic", "panic " + strconv.Itoa(swoole.ErrTaskTimeout) + " true"},
		{"wait", "wait re:c from 0 <nil>"}, // the replaced task worker serves on
	}
	for _, w := range want {
		if w.cmd == "co" {
			unhold() // the timed-out "hold" task finishes; the later ones run through
		}
		if _, err := c.Write([]byte(w.cmd + "\n")); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-res:
			if got != w.want {
				t.Fatalf("%s: %q, want %q", w.cmd, got, w.want)
			}
		case <-time.After(ioTimeout):
			t.Fatalf("%s: no answer", w.cmd)
		}
	}
	select {
	case got := <-finished:
		if got != "0 re:a from 0 worker=0" {
			t.Fatalf("OnFinish: %q", got)
		}
	case <-time.After(ioTimeout):
		t.Fatal("no OnFinish")
	}
	// Results and counters settle: nothing queued, no task counted twice.
	waitFor(t, ioTimeout, "an empty task queue", func() bool { return s.Stats().TaskQueueNum == 0 })
}

// TestThreadShutdown: every connection gets OnClose on a worker loop, every loop runs
// OnWorkerStop, Start returns nil, and (goleak, TestMain) no goroutine stays.
func TestThreadShutdown(t *testing.T) {
	s := newThreadServer(t, threadLines(2, map[string]any{"task_worker_num": 1, "reactor_num": 2}))
	life := watchLifecycle(s)
	s.OnTask(func(*swoole.Server, int, int, []byte) any { return nil })
	var closes atomic.Int32
	s.OnConnect(func(*swoole.Server, int64, int) {})
	s.OnClose(func(h *swoole.Server, fd int64, rid int) {
		if h.GetWorkerID() < 0 {
			t.Errorf("OnClose on the master's handle")
		}
		closes.Add(1)
	})
	s.OnReceive(func(h *swoole.Server, fd int64, _ int, data []byte) { _ = h.Send(fd, data) })
	proc := swoole.NewProcess(func(p *swoole.Process) {
		buf := make([]byte, 64)
		for {
			if _, err := p.ExportSocket().Read(buf); err != nil {
				return
			}
		}
	})
	if _, err := s.AddProcess(proc); err != nil {
		t.Fatal(err)
	}
	r := start(t, s)
	for range 4 {
		lc := dialLines(t, r)
		lc.do("x")
	}
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := r.wait(startTimeout); err != nil {
		t.Fatal(err)
	}
	if n := closes.Load(); n != 4 {
		t.Fatalf("%d OnClose at shutdown, want 4", n)
	}
	for id := range 3 {
		if starts, stops, _ := life.count(id); starts != 1 || stops != 1 {
			t.Fatalf("worker %d: %d starts, %d stops", id, starts, stops)
		}
	}
}

func TestThreadRefusesProcessSettings(t *testing.T) {
	s := newThreadServer(t, map[string]any{"user": "nobody"})
	s.OnReceive(func(*swoole.Server, int64, int, []byte) {})
	err := s.Start()
	var se *swoole.Error
	if !errors.As(err, &se) || se.Code != swoole.ErrOperationNotSupport {
		t.Fatalf("Start with user in ModeThread: %v, want 507", err)
	}
}

// TestThreadMaxQueuedBytes: a worker that does not keep up makes its reactor stop reading
// the connection at max_queued_bytes (the peer's writes wait in the kernel), and nothing is
// lost once it catches up.
func TestThreadMaxQueuedBytes(t *testing.T) {
	const limit = 256 << 10
	s := newThreadServer(t, map[string]any{"worker_num": 1, "max_queued_bytes": limit})
	release := make(chan struct{})
	var got atomic.Int64
	var once sync.Once
	s.OnReceive(func(h *swoole.Server, fd int64, _ int, data []byte) {
		once.Do(func() { <-release })
		got.Add(int64(len(data)))
	})
	r := start(t, s)
	c := r.dial(t)
	const total = 16 << 20
	writeDone := make(chan error, 1)
	go func() {
		_ = c.SetWriteDeadline(time.Now().Add(4 * startTimeout))
		_, err := c.Write(make([]byte, total))
		writeDone <- err
	}()
	fd := fdOf(t, s, c)
	// While the worker is held, what waits for it stays near the limit (one read beyond).
	var peak int64
	waitFor(t, ioTimeout, "the reactor to stop reading", func() bool {
		info, err := s.GetClientInfo(fd, -1, false)
		if err != nil {
			t.Fatal(err)
		}
		peak = max(peak, int64(info.RecvQueuedBytes))
		return int64(info.RecvQueuedBytes) > limit
	})
	for range 20 {
		info, _ := s.GetClientInfo(fd, -1, false)
		peak = max(peak, int64(info.RecvQueuedBytes))
		runtime.Gosched()
	}
	if peak > limit+256<<10 {
		t.Fatalf("%d bytes queued for a held worker, limit %d", peak, limit)
	}
	close(release)
	if err := <-writeDone; err != nil {
		t.Fatalf("write: %v", err)
	}
	waitFor(t, 4*ioTimeout, "every byte handled", func() bool { return got.Load() == total })
}

// TestThreadTaskMaxRequest: a task-worker loop is replaced after task_max_request tasks; the
// tasks queued behind it are run by its replacement.
func TestThreadTaskMaxRequest(t *testing.T) {
	s := newThreadServer(t, map[string]any{"worker_num": 1, "task_worker_num": 1, "task_max_request": 3})
	life := watchLifecycle(s)
	s.OnTask(func(h *swoole.Server, id, _ int, data []byte) any { return data })
	results := make(chan string, 16)
	s.OnReceive(func(h *swoole.Server, fd int64, _ int, data []byte) {
		for i := range 7 {
			r, err := h.TaskWait(strconv.Itoa(i), 10*time.Second, 0)
			results <- fmt.Sprintf("%s %v", r, err)
		}
	})
	r := start(t, s)
	c := r.dial(t)
	if _, err := c.Write([]byte("go")); err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		select {
		case got := <-results:
			if got != strconv.Itoa(i)+" <nil>" {
				t.Fatalf("task %d: %q", i, got)
			}
		case <-time.After(ioTimeout):
			t.Fatalf("task %d: no result", i)
		}
	}
	// 7 tasks at 3 per loop: the task worker (id 1) started 3 times (2 replacements).
	waitFor(t, ioTimeout, "the task worker's replacements", func() bool { starts, _, _ := life.count(1); return starts == 3 })
}

// TestThreadWorkerExit: a replaced or stopping worker loop that still has timers keeps
// running them, calling OnWorkerExit each round until the user clears them; then
// OnWorkerStop. With reload_async its replacement serves meanwhile; without, it starts after.
func TestThreadWorkerExit(t *testing.T) {
	for _, async := range []bool{true, false} {
		t.Run(fmt.Sprintf("reload_async=%v", async), func(t *testing.T) {
			s := newThreadServer(t, threadLines(2, map[string]any{"reload_async": async, "max_wait_time": 60}))
			var (
				mu      sync.Mutex
				log     = map[int][]string{} // by worker id: start, exit (once per generation), stop
				ticks   = map[int]int{}      // timer id by worker id, of the generation that set it
				exits   = map[int]int{}      // OnWorkerExit calls by worker id
				exited  = map[*swoole.Server]bool{}
				release = make(chan struct{})
				once    sync.Once
			)
			releaseAll := func() { once.Do(func() { close(release) }) }
			s.OnWorkerStart(func(h *swoole.Server, id int) {
				tid, err := h.Tick(10, func(int) {})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("Tick in OnWorkerStart: %v", err)
				}
				log[id] = append(log[id], "start")
				ticks[id] = tid
			})
			s.OnWorkerExit(func(h *swoole.Server, id int) {
				mu.Lock()
				exits[id]++
				if !exited[h] { // once per generation: each has a handle of its own
					exited[h] = true
					log[id] = append(log[id], "exit")
				}
				mu.Unlock()
				select {
				case <-release:
					// Each generation clears its own timer: the handle's timers are its loop's.
					for tid := 1; tid < 100; tid++ {
						h.ClearTimer(tid)
					}
				default:
				}
			})
			s.OnWorkerStop(func(h *swoole.Server, id int) {
				mu.Lock()
				log[id] = append(log[id], "stop")
				mu.Unlock()
			})
			var reloaded atomic.Int32
			s.OnAfterReload(func(*swoole.Server) { reloaded.Add(1) })
			s.OnReceive(func(h *swoole.Server, fd int64, _ int, data []byte) { _ = h.Send(fd, data) })
			r := start(t, s)
			// Registered after start's: it runs first, so that a failed check does not leave
			// the loops draining (max_wait_time) while the cleanup waits for Start.
			t.Cleanup(releaseAll)
			snapshot := func(id int) ([]string, int) {
				mu.Lock()
				defer mu.Unlock()
				return append([]string(nil), log[id]...), exits[id]
			}
			waitFor(t, startTimeout, "both workers", func() bool {
				a, _ := snapshot(0)
				b, _ := snapshot(1)
				return len(a) == 1 && len(b) == 1
			})
			lc := dialLines(t, r)
			if err := s.Reload(false); err != nil {
				t.Fatalf("Reload: %v", err)
			}
			waitFor(t, startTimeout, "OnWorkerExit in both old loops", func() bool {
				_, a := snapshot(0)
				_, b := snapshot(1)
				return a > 1 && b > 1 // more than one round: the timers keep the loops draining
			})
			if async {
				if got := lc.do("while draining"); got != "while draining" {
					t.Fatalf("echo while the old loops drain: %q", got)
				}
			}
			for id := range 2 {
				got, _ := snapshot(id)
				want := "start exit"
				if async {
					want = "start exit start" // the replacement runs beside the draining loop
				}
				if strings.Join(got, " ") != want {
					t.Fatalf("worker %d before the timers are cleared: %q, want %q", id, got, want)
				}
			}
			if n := reloaded.Load(); n != 0 {
				t.Fatalf("OnAfterReload ran while the old loops still drain")
			}
			releaseAll()
			waitFor(t, startTimeout, "OnAfterReload once the old loops ended", func() bool { return reloaded.Load() == 1 })
			waitFor(t, startTimeout, "the old loops to stop and the new ones to start", func() bool {
				a, _ := snapshot(0)
				b, _ := snapshot(1)
				return len(a) == 4 && len(b) == 4
			})
			for id := range 2 {
				got, _ := snapshot(id)
				want := "start exit stop start"
				if async {
					want = "start exit start stop"
				}
				if strings.Join(got, " ") != want {
					t.Fatalf("worker %d after the reload: %q, want %q", id, got, want)
				}
			}
			if got := lc.do("after"); got != "after" {
				t.Fatalf("echo after the reload: %q", got)
			}
			// Shutdown: the new loops' timers are cleared by OnWorkerExit too, then they stop.
			if err := s.Shutdown(); err != nil {
				t.Fatal(err)
			}
			if err := r.wait(startTimeout); err != nil {
				t.Fatal(err)
			}
			for id := range 2 {
				if got, _ := snapshot(id); strings.Join(got[4:], " ") != "exit stop" {
					t.Fatalf("worker %d at shutdown: %q, want exit then stop", id, got[4:])
				}
			}
		})
	}
}

// TestThreadSwooleScenarios ports Swoole's own thread-server tests
// (tests/swoole_thread/server: manager_timer, stop_worker, reload_task_workers_async): a
// timer set in OnManagerStart ticks; Stop of a worker and of a task worker, asked from a
// worker, replaces that loop; Reload(true) from a user process replaces the task-worker
// loops only; every loop started is stopped by the shutdown.
func TestThreadSwooleScenarios(t *testing.T) {
	s := newThreadServer(t, threadLines(2, map[string]any{"task_worker_num": 3}))
	var starts, stops, ticks, reloads atomic.Int32
	s.OnWorkerStart(func(*swoole.Server, int) { starts.Add(1) })
	s.OnWorkerStop(func(*swoole.Server, int) { stops.Add(1) })
	s.OnTask(func(*swoole.Server, int, int, []byte) any { return nil })
	s.OnAfterReload(func(*swoole.Server) { reloads.Add(1) })
	s.OnManagerStart(func(h *swoole.Server) {
		if _, err := h.Tick(20, func(int) { ticks.Add(1) }); err != nil {
			t.Errorf("Tick in OnManagerStart: %v", err)
		}
	})
	s.OnReceive(func(h *swoole.Server, fd int64, _ int, data []byte) {
		f := strings.Fields(string(data))
		if len(f) == 2 && f[0] == "stop" {
			id, _ := strconv.Atoi(f[1])
			_ = h.Send(fd, []byte(fmt.Sprintf("stop %d: %d\n", id, mpCode(h.Stop(id, false)))))
			return
		}
		_ = h.Send(fd, data)
	})
	reloadAsked := make(chan struct{})
	reloadErr := make(chan error, 1)
	proc := swoole.NewProcess(func(p *swoole.Process) {
		select {
		case <-reloadAsked:
			reloadErr <- s.Reload(true) // the handle it captured, as Swoole's test uses $serv
		case <-time.After(2 * startTimeout):
		}
	})
	if _, err := s.AddProcess(proc); err != nil {
		t.Fatal(err)
	}
	r := start(t, s)
	waitFor(t, startTimeout, "5 loops to start", func() bool { return starts.Load() == 5 })
	waitFor(t, startTimeout, "the manager's timer to tick 5 times", func() bool { return ticks.Load() >= 5 })

	lc := dialLines(t, r)
	for _, id := range []int{1, 3} { // a worker, then a task worker
		if got := lc.do(fmt.Sprintf("stop %d", id)); got != fmt.Sprintf("stop %d: 0", id) {
			t.Fatalf("Stop(%d) from a worker: %q", id, got)
		}
	}
	waitFor(t, startTimeout, "the two stopped loops to start again", func() bool { return starts.Load() == 7 })

	close(reloadAsked)
	select {
	case err := <-reloadErr:
		if err != nil {
			t.Fatalf("Reload(true) from a user process: %v", err)
		}
	case <-time.After(startTimeout):
		t.Fatal("the user process did not reload")
	}
	waitFor(t, startTimeout, "the task workers' reload", func() bool { return reloads.Load() == 1 })
	if n := starts.Load(); n != 10 { // 5, 2 after the Stops, 3 task workers reloaded
		t.Fatalf("%d loop starts after Reload(true), want 10", n)
	}
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := r.wait(startTimeout); err != nil {
		t.Fatal(err)
	}
	if a, b := starts.Load(), stops.Load(); a != 10 || b != 10 {
		t.Fatalf("after the shutdown: %d starts, %d stops, want 10 and 10", a, b)
	}
}

// TestThreadTaskCoroutine: with task_enable_coroutine one task-worker loop runs several
// OnTask at once, each on a handle of its own whose Finish answers its own task; a panicking
// OnTask fails its waiter at once (2003), the loop is replaced (OnWorkerError), and a reload
// waits for the tasks in hand.
func TestThreadTaskCoroutine(t *testing.T) {
	s := newThreadServer(t, threadLines(1, map[string]any{"task_worker_num": 1, "task_enable_coroutine": true}))
	life := watchLifecycle(s)
	var inHand atomic.Int32
	release := make(chan struct{})
	// pairs: the first "pair" task of each pair waits on the channel its partner closes.
	var pairMu sync.Mutex
	var pairWait chan struct{}
	s.OnTask(func(h *swoole.Server, taskID, src int, data []byte) any {
		inHand.Add(1)
		defer inHand.Add(-1)
		switch op, arg, _ := strings.Cut(string(data), " "); op {
		case "pair": // returns only once its pair's other task has started too
			pairMu.Lock()
			ch := pairWait
			if ch == nil {
				pairWait = make(chan struct{})
				ch = pairWait
			} else {
				pairWait = nil
				close(ch)
			}
			pairMu.Unlock()
			select {
			case <-ch:
			case <-time.After(startTimeout):
				return "alone " + arg
			}
			if arg == "finish" {
				if err := h.Finish("finished " + arg); err != nil {
					return "Finish: " + err.Error()
				}
				return nil
			}
			return "together " + arg
		case "hold":
			<-release
			return "held"
		case "panic":
			panic("OnTask's bug")
		}
		return nil
	})
	s.OnReceive(func(h *swoole.Server, fd int64, _ int, data []byte) {
		var reply string
		switch line := strings.TrimSpace(string(data)); line {
		case "pair":
			res, err := h.TaskWaitMulti([]any{"pair finish", "pair return"}, 2*startTimeout)
			reply = fmt.Sprintf("%d %q", mpCode(err), res)
		case "panic":
			_, err := h.TaskWait("panic", 2*startTimeout, 0)
			reply = fmt.Sprintf("panic %d", mpCode(err))
		case "hold":
			_, err := h.Task("hold", 0)
			reply = fmt.Sprintf("hold %d", mpCode(err))
		}
		_ = h.Send(fd, []byte(reply+"\n"))
	})
	r := start(t, s)
	lc := dialLines(t, r)
	if got, want := lc.do("pair"), `0 ["finished finish" "together return"]`; got != want {
		t.Fatalf("two tasks on one task worker: %q, want %q", got, want)
	}
	if got := lc.do("panic"); got != "panic 2003" {
		t.Fatalf("a panicking OnTask: %q, want its waiter to fail with 2003", got)
	}
	waitFor(t, startTimeout, "OnWorkerError and a new task-worker loop", func() bool {
		starts, _, errs := life.count(1)
		return errs == 1 && starts == 2
	})
	if got := lc.do("pair"); got != `0 ["finished finish" "together return"]` {
		t.Fatalf("after the panic: %q", got)
	}
	// A reload while a task is in hand: the old loop stops once the task returns.
	if got := lc.do("hold"); got != "hold 0" {
		t.Fatalf("hold: %q", got)
	}
	waitFor(t, startTimeout, "the held task to start", func() bool { return inHand.Load() == 1 })
	if err := s.Reload(true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, startTimeout, "the new task-worker loop", func() bool { starts, _, _ := life.count(1); return starts == 3 })
	// The loop that panicked ran no OnWorkerStop; the reloaded one has not yet.
	if _, stops, _ := life.count(1); stops != 0 {
		t.Fatalf("the task worker stopped %d times while its task is in hand, want 0", stops)
	}
	close(release)
	waitFor(t, startTimeout, "the old loop to stop after its task", func() bool { _, stops, _ := life.count(1); return stops == 1 })
}

// TestThreadMasterHandleWaits: a callback that waits for task results on the handle
// NewServer returned (captured by its closure) instead of the one it receives gets 507 with
// a message that says which handle to use.
func TestThreadMasterHandleWaits(t *testing.T) {
	s := newThreadServer(t, threadLines(1, map[string]any{"task_worker_num": 1}))
	s.OnTask(func(h *swoole.Server, taskID, src int, data []byte) any { return data })
	s.OnReceive(func(h *swoole.Server, fd int64, _ int, data []byte) {
		_, err := s.TaskWait("x", startTimeout, -1) // s, not h
		_, err2 := h.TaskWait("x", startTimeout, -1)
		hint := err != nil && strings.Contains(err.Error(), "the *Server the callback receives")
		_ = h.Send(fd, []byte(fmt.Sprintf("%d %v %d\n", mpCode(err), hint, mpCode(err2))))
	})
	r := start(t, s)
	if got := dialLines(t, r).do("go"); got != "507 true 0" {
		t.Fatalf("TaskWait on the master's handle, then on the callback's: %q, want \"507 true 0\"", got)
	}
}

// TestThreadTaskWaitServes: a TaskWait on a worker loop (enable_coroutine, the default) lets
// that loop serve other sessions while it waits, as in the other modes; the waiting session's
// next frames wait, in order, until its callback returns.
func TestThreadTaskWaitServes(t *testing.T) {
	s := newThreadServer(t, threadLines(1, map[string]any{"task_worker_num": 1}))
	release := make(chan struct{})
	s.OnTask(func(h *swoole.Server, taskID, src int, data []byte) any {
		<-release
		return "done"
	})
	var waiting atomic.Bool
	s.OnReceive(func(h *swoole.Server, fd int64, _ int, data []byte) {
		line := strings.TrimSpace(string(data))
		if line == "wait" {
			waiting.Store(true)
			res, err := h.TaskWait("slow", 2*startTimeout, -1)
			waiting.Store(false)
			_ = h.Send(fd, []byte(fmt.Sprintf("waited %s %d\n", res, mpCode(err))))
			return
		}
		_ = h.Send(fd, []byte(fmt.Sprintf("%s %v\n", line, waiting.Load())))
	})
	r := start(t, s)
	a, b := dialLines(t, r), dialLines(t, r)
	_ = a.c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := a.c.Write([]byte("wait\nafter\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, startTimeout, "the TaskWait to begin", waiting.Load)
	if got := b.do("other"); got != "other true" {
		t.Fatalf("another session while the worker waits: %q, want it served during the wait", got)
	}
	close(release)
	for _, want := range []string{"waited done 0", "after false"} {
		got, err := a.r.ReadString('\n')
		if err != nil || strings.TrimSpace(got) != want {
			t.Fatalf("the waiting session: %q %v, want %q (its next frame after its callback)", got, err, want)
		}
	}
}
