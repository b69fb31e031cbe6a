package swoole_test

// ModeProcess back-pressure: a worker that does not read its pipe (blocked in a callback)
// makes the master stop reading the connections that send to it, with the default settings:
// the master's memory stays bounded, nothing is dropped, and everything arrives once the
// worker goes on.

import (
	"fmt"
	"hash/crc32"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// Environment of the back-pressure server.
const (
	bpEnvTotal = "GOSWOOLE_TEST_BP_TOTAL" // the bytes the client streams
)

// bpHeapMax is the most the master's heap may grow while a worker is blocked and a client
// streams at it: max_queued_bytes (4 MiB by default) and the pipe's bound (32 MiB), with
// room for the reactor's own buffers. Without a bound the master queued 128 MiB per worker,
// then dropped.
const bpHeapMax = 48 << 20

func init() {
	mpMoreServers["backpressure"] = bpServerMain
}

// bpServerMain: ModeProcess, one worker, no framing, default max_queued_bytes. The master
// logs its heap ("heap <HeapAlloc>") every 20 ms whenever it passed its highest mark by
// 1 MiB. The worker, on the first data it gets, logs "blocked" and holds its loop until the
// file "release" exists in the test's directory; it counts the bytes of each connection and
// their CRC-32, and logs "got <fd> <bytes> <crc>" once bpEnvTotal bytes arrived.
func bpServerMain() int {
	dir := os.Getenv(mpEnvDir)
	total, _ := strconv.ParseInt(os.Getenv(bpEnvTotal), 10, 64)
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeProcess, swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	set := swoole.Settings{WorkerNum: 1, ReactorNum: 1, LogLevel: swoole.LogLevelWarning, LogFile: dir + "/log", MaxConnection: 64, MaxWaitTime: 3 * time.Second}
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	s.OnStart(func(s *swoole.Server) {
		var high uint64
		sample := func(int) {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if high == 0 || m.HeapAlloc > high+1<<20 {
				high = m.HeapAlloc
				mpEvent("heap", m.HeapAlloc)
			}
		}
		sample(0)
		if _, err := s.Tick(20, sample); err != nil {
			fmt.Fprintln(os.Stderr, "Tick:", err)
		}
		mpEvent("bpready", port)
	})
	blocked := false
	type count struct {
		n   int64
		crc uint32
	}
	counts := map[int64]*count{}
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		if !blocked {
			blocked = true
			mpEvent("blocked", fd)
			deadline := time.Now().Add(2 * mpTimeout)
			for time.Now().Before(deadline) {
				if _, err := os.Stat(dir + "/release"); err == nil {
					break
				}
				time.Sleep(5 * time.Millisecond) // holds the worker's loop: that is the point
			}
		}
		c := counts[fd]
		if c == nil {
			c = &count{}
			counts[fd] = c
		}
		c.n += int64(len(data))
		c.crc = crc32.Update(c.crc, crc32.IEEETable, data)
		if c.n == total {
			mpEvent("got", fd, c.n, c.crc)
		}
	})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// TestModeProcessBlockedWorkerBackpressure: with the default settings, a client streams
// 160 MiB at a worker blocked in a callback. The master stops reading the connection (the
// client's writes stall) instead of queueing without limit: its heap grows by at most
// bpHeapMax. Once the worker goes on, every byte arrives, in order (same count and CRC-32),
// and nothing was logged as dropped.
func TestModeProcessBlockedWorkerBackpressure(t *testing.T) {
	const total = 160 << 20
	ms := mpStartServer(t, "backpressure", "bpready", bpEnvTotal+"="+strconv.Itoa(total))
	heapMax := func() (first, most int64) {
		for _, e := range ms.events() {
			if e.Name != "heap" {
				continue
			}
			v, _ := strconv.ParseInt(e.Fields[0], 10, 64)
			if first == 0 {
				first = v
			}
			most = max(most, v)
		}
		return first, most
	}
	c := ms.dial()
	var sent atomic.Int64
	wrote := make(chan error, 1)
	var crc uint32
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	for range total / len(chunk) {
		crc = crc32.Update(crc, crc32.IEEETable, chunk)
	}
	go func() {
		_ = c.c.SetWriteDeadline(time.Now().Add(4 * mpTimeout))
		for range total / len(chunk) {
			if _, err := c.c.Write(chunk); err != nil {
				wrote <- err
				return
			}
			sent.Add(int64(len(chunk)))
		}
		wrote <- nil
	}()
	ms.waitEvent("blocked", nil)
	// Wait until the client has sent everything (the master read it all: no back-pressure)
	// or its writes have stalled for a second (the master stopped reading).
	var done bool
	var writeErr error
	last, since := sent.Load(), time.Now()
	deadline := time.Now().Add(mpTimeout)
	for !done && time.Since(since) < time.Second {
		if time.Now().After(deadline) {
			t.Fatalf("the client neither finished nor stalled: %d bytes sent", sent.Load())
		}
		select {
		case writeErr = <-wrote:
			done = true
		case <-time.After(20 * time.Millisecond):
		}
		if n := sent.Load(); n != last {
			last, since = n, time.Now()
		}
	}
	base, most := heapMax()
	t.Logf("worker blocked: the client sent %d MiB (finished: %v); the master's heap went from %d to %d MiB", sent.Load()>>20, done, base>>20, most>>20)
	if most-base > bpHeapMax {
		t.Errorf("the master's heap grew by %d MiB while the worker was blocked; want at most %d MiB (max_queued_bytes and the pipe's bound)", (most-base)>>20, bpHeapMax>>20)
	}
	if done && writeErr == nil {
		t.Errorf("the client sent all %d MiB while the worker was blocked: the master did not stop reading", total>>20)
	}
	if err := os.WriteFile(ms.dir+"/release", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !done {
		select {
		case writeErr = <-wrote:
		case <-time.After(4 * mpTimeout):
			t.Fatalf("the client's writes did not finish once the worker went on: %d bytes sent", sent.Load())
		}
	}
	if writeErr != nil {
		t.Fatalf("streaming: %v", writeErr)
	}
	got := ms.waitEvent("got", nil)
	if n, _ := strconv.ParseInt(got.Fields[1], 10, 64); n != total || got.Fields[2] != strconv.FormatUint(uint64(crc), 10) {
		t.Errorf("the worker got %s bytes with CRC %s; want %d with CRC %d", got.Fields[1], got.Fields[2], total, crc)
	}
	if _, most2 := heapMax(); most2-base > bpHeapMax {
		t.Errorf("the master's heap grew by %d MiB in all; want at most %d MiB", (most2-base)>>20, bpHeapMax>>20)
	}
	if b, _ := os.ReadFile(ms.dir + "/log"); len(b) > 0 {
		t.Errorf("the server logged:\n%s", b)
	}
}
