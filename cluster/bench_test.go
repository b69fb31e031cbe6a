package cluster_test

// Cluster benchmarks: servers in this process (ModeBase, one process each) joined with
// Tasks = TasksCluster, on one embedded nats-server (one host) or three routed into one
// NATS cluster (three hosts, task stream R3):
//
//	go test -run '^$' -bench 'BenchmarkCluster' -benchtime 2000x ./cluster/
//
// BenchmarkClusterTaskWait: the server's TaskWait (64 B) one after another from host 0: p50
// and p99 per round trip (publish, stored on a quorum, pulled by a host, OnTask, result
// confirmed). BenchmarkClusterTaskThroughput: TaskWait from 64 goroutines per host, from
// every host: tasks/s. BenchmarkClusterSend: Node.Send from host 0 to a session of host 1
// until its client read the line: p50 and p99. BenchmarkClusterBroadcast: see there.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goswoole/swoole"
	"github.com/goswoole/swoole/cluster"
)

type benchHost struct {
	s    *swoole.Server
	node *cluster.Node
	done chan error
}

// benchHosts starts n servers joined into one cluster (n = 1 or 3); they shut down at the
// benchmark's end.
func benchHosts(b *testing.B, n int) []*benchHost {
	b.Helper()
	ports := freePorts(b, 2*n)
	name := "bench" + strconv.Itoa(n)
	var hosts []*benchHost
	for i := range n {
		e := cluster.Embedded{StoreDir: b.TempDir(), Port: ports[2*i]}
		if n > 1 {
			e.ClusterPort = ports[2*i+1]
			for j := range n {
				if j != i {
					e.Routes = append(e.Routes, "nats://127.0.0.1:"+strconv.Itoa(ports[2*j+1]))
				}
			}
		}
		s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeBase, swoole.SockTCP)
		if err != nil {
			b.Fatal(err)
		}
		s.OnReceive(func(*swoole.Server, int64, int, []byte) {})
		s.OnTask(func(_ *swoole.Server, _ int, _ int, data []byte) any { return data })
		node, err := cluster.Join(s, cluster.Config{Cluster: name, Node: "h" + strconv.Itoa(i),
			Tasks: cluster.TasksCluster, Embedded: e, Logger: quiet, TaskConcurrency: 16})
		if err != nil {
			b.Fatal(err)
		}
		h := &benchHost{s: s, node: node, done: make(chan error, 1)}
		go func() { h.done <- s.Start() }()
		hosts = append(hosts, h)
	}
	b.Cleanup(func() {
		for _, h := range hosts {
			_ = h.s.Shutdown()
			<-h.done
		}
	})
	for _, h := range hosts {
		select {
		case <-h.node.Ready():
		case err := <-h.done:
			b.Fatalf("Start: %v (%v)", err, h.node.Err())
		case <-time.After(60 * time.Second):
			b.Fatal("a host is not ready after 60 s")
		}
	}
	// One task through each host first: every consumer exists.
	for _, h := range hosts {
		if _, err := h.s.TaskWait([]byte("warm"), 30*time.Second, -1); err != nil {
			b.Fatal(err)
		}
	}
	return hosts
}

// reportLatency reports p50 and p99 of lat in µs, and ops/s over total.
func reportLatency(b *testing.B, lat []time.Duration, total time.Duration, unit string) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(len(lat))/total.Seconds(), unit)
	b.ReportMetric(0, "ns/op")
}

func BenchmarkClusterTaskWait(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run("hosts="+strconv.Itoa(n), func(b *testing.B) {
			hosts := benchHosts(b, n)
			s := hosts[0].s
			data := make([]byte, 64)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			began := time.Now()
			for range b.N {
				t0 := time.Now()
				if _, err := s.TaskWait(data, 10*time.Second, -1); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			total := time.Since(began)
			b.StopTimer()
			reportLatency(b, lat, total, "tasks/s")
		})
	}
}

func BenchmarkClusterTaskThroughput(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run("hosts="+strconv.Itoa(n), func(b *testing.B) {
			hosts := benchHosts(b, n)
			data := make([]byte, 64)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			began := time.Now()
			for _, h := range hosts {
				for range 64 {
					wg.Go(func() {
						for next.Add(1) <= int64(b.N) {
							if _, err := h.s.TaskWait(data, 30*time.Second, -1); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
			}
			wg.Wait()
			total := time.Since(began)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/total.Seconds(), "tasks/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func BenchmarkClusterSend(b *testing.B) {
	hosts := benchHosts(b, 3)
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(hosts[1].s.Ports()[0].Port()))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var fd int64
	waitFor(b, 10*time.Second, "the connection on host 1", func() bool {
		for f := range hosts[1].s.Connections() {
			fd = f
		}
		return fd != 0
	})
	sess := hosts[1].node.Session(fd)
	line := []byte("0123456789012345678901234567890123456789012345678901234567890\n") // 64 B
	buf := make([]byte, len(line))
	lat := make([]time.Duration, 0, b.N)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Minute))
	b.ResetTimer()
	began := time.Now()
	for range b.N {
		t0 := time.Now()
		if err := hosts[0].node.Send(sess, line); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < len(buf); {
			k, err := c.Read(buf[got:])
			if err != nil {
				b.Fatal(err)
			}
			got += k
		}
		lat = append(lat, time.Since(t0))
	}
	total := time.Since(began)
	b.StopTimer()
	reportLatency(b, lat, total, "sends/s")
}

// BenchmarkClusterBroadcast: Node.Broadcast from host 1 of three, until every client (3,334
// per host, 10,002 in all; GOSWOOLE_BENCH_CONNS per host otherwise) read the line: p50 and
// p99 per broadcast. The clients live in a child process (this test binary again, see
// runBroadcastClients): one process holding both ends of 10,000 connections would pass its
// 20,000 descriptors.
func BenchmarkClusterBroadcast(b *testing.B) {
	hosts := benchHosts(b, 3)
	per := envInt("GOSWOOLE_BENCH_CONNS", 3334)
	var addrs []string
	for _, h := range hosts {
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(h.s.Ports()[0].Port()))
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envBroadcastClients+"="+strings.Join(addrs, ","), "GOSWOOLE_BENCH_CONNS="+strconv.Itoa(per))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = in.Close() // the clients exit at EOF
		if err := cmd.Wait(); err != nil {
			b.Errorf("the clients' process: %v", err)
		}
	}()
	replies := bufio.NewReader(out)
	expect := func(want string) {
		b.Helper()
		l, err := replies.ReadString('\n')
		if err != nil || l != want+"\n" {
			b.Fatalf("the clients' process said %q (%v), want %q", l, err, want)
		}
	}
	expect("ready")
	total := per * len(hosts)
	waitFor(b, 60*time.Second, "every connection accepted", func() bool {
		n := 0
		for _, h := range hosts {
			for range h.s.Connections() {
				n++
			}
		}
		return n == total
	})
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	began := time.Now()
	for range b.N {
		t0 := time.Now()
		got, err := hosts[1].node.Broadcast(broadcastLine)
		if err != nil || got != total {
			b.Fatalf("Broadcast: %d of %d, %v", got, total, err)
		}
		expect("got")
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(began)
	b.StopTimer()
	b.ReportMetric(float64(total), "conns")
	reportLatency(b, lat, elapsed, "broadcasts/s")
}

// envBroadcastClients, set, makes the test binary BenchmarkClusterBroadcast's clients: the
// hosts' addresses, comma-separated.
const envBroadcastClients = "GOSWOOLE_CLUSTER_BENCH_CLIENTS"

var broadcastLine = []byte("0123456789012345678901234567890123456789012345678901234567890\n")

// runBroadcastClients opens GOSWOOLE_BENCH_CONNS connections to each address, says "ready",
// then for each broadcast reads the line on every connection and says "got", until its
// standard input ends. It returns the exit status.
func runBroadcastClients(addrs string) int {
	per := envInt("GOSWOOLE_BENCH_CONNS", 3334)
	var conns []net.Conn
	for _, a := range strings.Split(addrs, ",") {
		for range per {
			c, err := net.Dial("tcp", a)
			if err != nil {
				fmt.Fprintln(os.Stderr, "clients:", err)
				return 1
			}
			conns = append(conns, c)
		}
	}
	fmt.Println("ready")
	done := make(chan struct{})
	go func() { // the benchmark closes our standard input when it is done
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(done)
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	buf := make([]byte, len(broadcastLine))
	for {
		for _, c := range conns {
			if _, err := io.ReadFull(c, buf); err != nil {
				select {
				case <-done:
					return 0
				default:
					fmt.Fprintln(os.Stderr, "clients:", err)
					return 1
				}
			}
		}
		fmt.Println("got")
	}
}
