package bench

import (
	"bytes"
	"context"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goswoole/swoole/bench/load"
)

// TestProcFloorCommand builds cmd/procfloorecho and runs it with each transport, the ring
// also with its readers spinning before they sleep, and with two workers over socketpairs: 10 clients each send 1,000 messages of assorted sizes (1 B to
// 60 KiB, log-uniform), one in flight, and every echo must come back byte for byte; the
// process tree is the master and its workers, and after SIGTERM to the master the workers are
// gone too.
func TestProcFloorCommand(t *testing.T) {
	bin := buildCommand(t, "procfloorecho")
	for _, c := range []struct {
		transport string
		workers   int
		spin      string // PROCFLOOR_SPIN_NS: how long a ring's reader polls before it sleeps
	}{{"socketpair", 1, ""}, {"ring", 1, ""}, {"ring", 1, "20000"}, {"socketpair", 2, ""}} {
		name := c.transport + "-" + strconv.Itoa(c.workers)
		if c.spin != "" {
			name += "-spin-" + c.spin
		}
		t.Run(name, func(t *testing.T) {
			t.Setenv("PROCFLOOR_SPIN_NS", c.spin)
			testProcFloor(t, bin, c.transport, c.workers)
		})
	}
}

// TestProcFloorRingRefusesWorkers checks that the ring floor, which has one worker, refuses
// -workers 2 with a message instead of running something else.
func TestProcFloorRingRefusesWorkers(t *testing.T) {
	bin := buildCommand(t, "procfloorecho")
	out, err := exec.Command(bin, "-addr", "127.0.0.1:0", "-transport", "ring", "-workers", "2").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "runs one worker") {
		t.Fatalf("ring with 2 workers: err %v, output %q; want a refusal naming the one worker", err, out)
	}
}

func testProcFloor(t *testing.T, bin, transport string, workers int) {
	// The flags the matrix gives every server, then this one's own.
	srv := startServerProc(t, bin, "-addr", "127.0.0.1:0", "-nofile", "-maxconn", "1000", "-multicore", "-transport", transport, "-workers", strconv.Itoa(workers))
	addr := srv.listening(t)
	pid := srv.cmd.Process.Pid
	tree, err := load.Tree(pid)
	if err != nil || len(tree) != 1+workers {
		t.Fatalf("process tree %v, %v: want the master and %d worker(s)", tree, err, workers)
	}

	const clients, messages, maxSize = 10, 1000, 60 << 10
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			if err := procFloorClient(addr, c, messages, maxSize); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Pipelined large messages: more in flight than the ring (1 MiB) holds, so the master's
	// backlog (ring) or a refused datagram (socketpair) is exercised too.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := load.Run(ctx, load.Config{Addr: addr, Conns: 30, Size: 60 << 10, Depth: 8, Messages: 1000,
		Verify: true, IOTimeout: 10 * time.Second})
	if err != nil {
		t.Error(err)
	} else if res.Msgs != 1000 {
		t.Errorf("pipelined: %d round trips, want 1000", res.Msgs)
	}

	srv.stop(t)
	for _, worker := range tree[1:] {
		waitGone(t, worker) // the master kills and reaps its workers before it exits
	}
}

// procFloorClient sends messages of log-uniform sizes from 1 B to maxSize, one in flight, and
// checks each echo byte for byte.
func procFloorClient(addr string, seed, messages, maxSize int) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	rng := rand.New(rand.NewPCG(uint64(seed), 17))
	out := make([]byte, maxSize)
	in := make([]byte, maxSize)
	for i := range messages {
		var n int
		switch i {
		case 0:
			n = 1
		case 1:
			n = maxSize
		default:
			n = int(math.Exp(rng.Float64() * math.Log(float64(maxSize))))
			n = max(1, min(n, maxSize))
		}
		for j := range n {
			out[j] = byte(rng.Uint32())
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write(out[:n]); err != nil {
			return err
		}
		if _, err := io.ReadFull(conn, in[:n]); err != nil {
			return err
		}
		if !bytes.Equal(in[:n], out[:n]) {
			return &echoMismatch{client: seed, msg: i, size: n}
		}
	}
	return nil
}

type echoMismatch struct{ client, msg, size int }

func (e *echoMismatch) Error() string {
	return "client " + strconv.Itoa(e.client) + ", message " + strconv.Itoa(e.msg) + " (" + strconv.Itoa(e.size) + " B): echo differs"
}
