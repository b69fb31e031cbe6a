package load

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echoServer echoes on a free port until the test ends; it returns its address.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { io.Copy(c, c); c.Close() })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// fakeProbe counts: each CPU call adds a millisecond; RSS grows by perRSS a call.
type fakeProbe struct {
	cpu, rss atomic.Int64
	perRSS   int64
}

func (f *fakeProbe) CPU() (time.Duration, error) {
	return time.Duration(f.cpu.Add(int64(time.Millisecond))), nil
}
func (f *fakeProbe) RSS() (int64, error) { return f.rss.Add(f.perRSS), nil }

func TestProcTree(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Skip("no sleep command:", err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	self := os.Getpid()
	tree, err := Tree(self)
	if err != nil {
		t.Fatal(err)
	}
	if tree[0] != self || !slices.Contains(tree, child.Process.Pid) {
		t.Errorf("Tree(%d) = %v, want it first and the child %d in it", self, tree, child.Process.Pid)
	}
	if kids := parentMap()[self]; !slices.Contains(kids, child.Process.Pid) {
		t.Errorf("parentMap()[%d] = %v, want the child %d in it", self, kids, child.Process.Pid)
	}
	p := ProcTree{Pid: self}
	c0, err := p.CPU()
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if c, _ := p.CPU(); c >= c0+20*time.Millisecond {
			break
		}
		for range 1 << 20 { // burn
		}
	}
	if c1, _ := p.CPU(); c1 < c0+20*time.Millisecond {
		t.Errorf("CPU went from %v to %v while busy", c0, c1)
	}
	rss, err := p.RSS()
	if err != nil || rss < 1<<20 {
		t.Errorf("RSS = %d, %v", rss, err)
	}
	if a, f, _, err := p.RSSParts(); err != nil || a <= 0 || f <= 0 || a+f > rss+rss/2 {
		t.Errorf("RSSParts = anon %d, file %d, %v (RSS %d)", a, f, err, rss)
	}
	if pss, err := p.PSS(); err != nil || pss <= 0 {
		t.Errorf("PSS = %d, %v", pss, err)
	}
	if _, err := (ProcTree{Pid: 1 << 30}).CPU(); err == nil {
		t.Error("no error for a process that does not exist")
	}
}

func TestRunSamplesProbe(t *testing.T) {
	addr := echoServer(t)
	p := &fakeProbe{}
	res, err := Run(context.Background(), Config{Addr: addr, Conns: 2, Size: 16, Depth: 3, Duration: 100 * time.Millisecond,
		Warmup: 20 * time.Millisecond, Probe: p, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.ServerCPU != time.Millisecond || res.Msgs == 0 || res.CPUPerMsg() <= 0 {
		t.Errorf("ServerCPU %v over %d msgs (%.3f µs/msg), want 1ms from two samples", res.ServerCPU, res.Msgs, res.CPUPerMsg())
	}
}

func TestIdle(t *testing.T) {
	addr := echoServer(t)
	p := &fakeProbe{perRSS: 50 * 300} // grows 300 B per connection between the two samples
	res, err := Idle(context.Background(), IdleConfig{Addr: addr, Conns: 50, Ping: 64, Dialers: 8, Settle: time.Millisecond, Probe: p})
	if err != nil {
		t.Fatal(err)
	}
	if res.Conns != 50 || res.BytesPerConn() != 300 || res.ServerCPU != time.Millisecond {
		t.Errorf("%+v: %.0f B/conn, want 300", res, res.BytesPerConn())
	}
	// The real thing on this process, which is also the server here.
	if _, err := os.Stat("/proc/self/status"); err == nil {
		res, err := Idle(context.Background(), IdleConfig{Addr: addr, Conns: 20, Ping: 8, Settle: time.Millisecond, Probe: ProcTree{Pid: os.Getpid()}})
		if err != nil || res.RSSAfter <= 0 || res.PSSAfter <= 0 {
			t.Errorf("Idle on /proc: %+v, %v", res, err)
		}
	}
	if _, err := Idle(context.Background(), IdleConfig{Addr: addr, Conns: 5, Probe: nil}); err == nil {
		t.Error("no error without a Probe")
	}
}

func TestConnect(t *testing.T) {
	addr := echoServer(t)
	p := &fakeProbe{}
	res, err := Connect(context.Background(), ConnectConfig{Addr: addr, Workers: 4, Size: 64, Duration: 150 * time.Millisecond,
		Warmup: 20 * time.Millisecond, Probe: p})
	if err != nil {
		t.Fatal(err)
	}
	if res.Conns == 0 || res.Errors != 0 || res.Latency.Count() != res.Conns || res.ServerCPU != time.Millisecond {
		t.Errorf("%+v", res)
	}
	if res.Elapsed != 150*time.Millisecond {
		t.Errorf("elapsed %v, want 150ms", res.Elapsed)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if _, err := Connect(context.Background(), ConnectConfig{Addr: closed, Workers: 2, Duration: 5 * time.Second}); err == nil {
		t.Error("no error connecting to a closed port")
	}
}
