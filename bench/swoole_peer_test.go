package bench

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goswoole/swoole/bench/load"
)

// swooleSO is Swoole's extension as the matrix finds it: $SWOOLE_SO, else where
// swoole/build.sh puts it.
func swooleSO() string {
	if so := os.Getenv("SWOOLE_SO"); so != "" {
		return so
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "goswoole-bench", "swoole-6.2.2", "modules", "swoole.so")
}

// TestRealSwooleEcho runs swoole/echo.php on real Swoole as the matrix's swoole-base and
// swoole-process rows do: it echoes correctly, prints its line from every worker, its process
// tree (the one the probes sum) is what the mode makes, and SIGTERM stops it all. Skipped where
// PHP or Swoole's extension is absent (build it with swoole/build.sh).
func TestRealSwooleEcho(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		workers int
	}{
		{"base", []string{"-mode", "base"}, 1},
		{"process", []string{"-mode", "process", "-workers", "2"}, 2},
		// The bad-peer cells' server (attackpair.sh): length framing and the heartbeat.
		{"process-length", []string{"-mode", "process", "-workers", "2", "-length", "-idle", "5"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) { testRealSwooleEcho(t, tc.args, tc.workers) })
	}
}

func testRealSwooleEcho(t *testing.T, args []string, workers int) {
	php, err := exec.LookPath("php")
	if err != nil {
		t.Skip("no php: the Swoole rows need PHP and swoole/build.sh's extension")
	}
	so := swooleSO()
	if _, err := os.Stat(so); so == "" || err != nil {
		t.Skipf("no Swoole extension at %q: build it with swoole/build.sh or set SWOOLE_SO", so)
	}
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("no /proc")
	}
	cmd := exec.Command(php, append([]string{"-d", "extension=" + so, "swoole/echo.php",
		"-addr", "127.0.0.1:0", "-maxconn", "1000", "-nofile", "-multicore"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addrc := make(chan string, workers+1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, a, ok := strings.Cut(sc.Text(), "listening on "); ok {
				select {
				case addrc <- a:
				default:
				}
			}
		}
		exited <- cmd.Wait()
	}()
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr.String())
		}
	}()
	var addr string
	for i := range workers { // every worker prints its line once it runs
		select {
		case a := <-addrc:
			if i > 0 && a != addr {
				t.Errorf("a worker printed %s, another %s", a, addr)
			}
			addr = a
		case err := <-exited:
			stopped = true
			t.Fatalf("exited before its workers started: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatalf("%d of %d workers printed their line within 20s", i, workers)
		}
	}
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("printed %s, not the port it got", addr)
	}
	pid := cmd.Process.Pid
	tree, err := load.Tree(pid)
	// BASE with one worker: one process; PROCESS: the master, a manager and the workers.
	want := 1
	if workers > 1 {
		want = 2 + workers
	}
	if err != nil || len(tree) != want {
		t.Errorf("process tree %v, %v: want %d processes", tree, err, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	framed := slices.Contains(args, "-length")
	// (load's Verify stamps a sequence number on each message's first byte, which a frame's
	// length header holds: framed echoes are counted, not compared.)
	res, err := load.Run(ctx, load.Config{Addr: addr, Conns: 20, Size: 512, Depth: 4, Messages: 4000, Verify: !framed, Framed: framed,
		IOTimeout: 10 * time.Second, Probe: load.ProcTree{Pid: pid}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Msgs != 4000 {
		t.Errorf("%d round trips, want 4000", res.Msgs)
	}
	if framed {
		// A header claiming more than package_max_length: Swoole closes the connection.
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte{4, 0, 0, 0, 'x'})
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 16)); err == nil {
			t.Errorf("a 64 MiB header: read %d bytes, want the connection closed", n)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("a 64 MiB header: the connection stayed open")
		}
		c.Close()
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("not stopped within 20s of SIGTERM")
	}
	for _, p := range tree[1:] {
		if err := syscall.Kill(p, 0); err == nil {
			if b, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat"); !strings.Contains(string(b), ") Z ") {
				t.Errorf("process %d still runs after the master stopped", p)
			}
		}
	}
}
