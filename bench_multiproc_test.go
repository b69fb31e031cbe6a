package swoole_test

// Echo throughput of a ModeBase server in one process beside the same server with two worker
// processes and a ModeProcess server with two workers (a master holding the connections), in
// one run of one build:
//
//	go test -run '^$' -bench 'BenchmarkEchoWorkers' -benchtime 400000x .
//
// Both servers run outside the test process (the test binary started again, see
// multiproc_helpers_test.go), so the client's load generator competes with them for CPUs in
// the same way: 100 connections each send a 64-byte message and wait for it to come back
// (one in flight per connection), raw echo (one OnReceive and one Send per read). msgs/s
// counts messages echoed per second of wall time.

import (
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

func BenchmarkEchoWorkers(b *testing.B) {
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"base/workers=1", []string{mpEnvWorkers + "=1"}},
		{"base/workers=2", []string{mpEnvWorkers + "=2"}},
		{"process/workers=2", []string{mpEnvWorkers + "=2", mpEnvMode + "=process"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ms := mpStartServer(b, "rawecho", "ready", append(tc.env, mpEnvQuiet+"=1")...)
			benchEchoAt(b, "127.0.0.1:"+strconv.Itoa(ms.Port))
		})
	}
}

// benchEchoAt runs the echo load (benchConns connections, benchMsgSize bytes, one message in
// flight each) against addr for b.N messages.
func benchEchoAt(b *testing.B, addr string) {
	msg := make([]byte, benchMsgSize)
	for i := range msg {
		msg[i] = byte(i)
	}
	conns := make([]net.Conn, benchConns)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, benchIOLimit)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	// Warm up: every connection once (the workers have accepted and registered them all).
	buf := make([]byte, benchMsgSize)
	for _, c := range conns {
		_ = c.SetDeadline(time.Now().Add(benchIOLimit))
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, benchConns)
	for i, c := range conns {
		n := b.N / benchConns
		if i < b.N%benchConns {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, benchMsgSize)
			_ = c.SetDeadline(time.Now().Add(benchIOLimit))
			for range n {
				if _, err := c.Write(msg); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatalf("client: %v", err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
