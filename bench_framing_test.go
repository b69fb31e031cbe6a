package swoole_test

// Framed echo throughput beside raw echo, in one run of one build:
//
//	go test -run '^$' -bench 'BenchmarkEcho(Raw|Length)' -benchtime 200000x .
//
// 100 connections each send 64-byte messages and read them back, with up to `pipeline`
// messages in flight per connection. Raw: the server has no framing and echoes whatever
// each read brought (one OnReceive per read). Length: every message is a frame with a
// 4-byte big-endian length header ('N', package_body_offset 4), the server gets one
// OnReceive per frame and echoes each with its own Send. msgs/s counts messages echoed per
// second of wall time, the client's work (in the same process) included.

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

const (
	benchConns   = 100
	benchMsgSize = 64
	benchIOLimit = 30 * time.Second // bounds every client read and write
)

func BenchmarkEchoRaw(b *testing.B) {
	for _, pipeline := range []int{1, 16} {
		b.Run(fmt.Sprintf("pipeline=%d", pipeline), func(b *testing.B) { benchEcho(b, false, pipeline) })
	}
}

func BenchmarkEchoLength(b *testing.B) {
	for _, pipeline := range []int{1, 16} {
		b.Run(fmt.Sprintf("pipeline=%d", pipeline), func(b *testing.B) { benchEcho(b, true, pipeline) })
	}
}

func benchEcho(b *testing.B, framed bool, pipeline int) {
	set := swoole.Settings{OpenTCPNoDelay: true}
	if framed {
		set.OpenLengthCheck, set.PackageLengthType, set.PackageBodyOffset, set.PackageMaxLength = true, "N", 4, 1<<16
	}
	s := ftNew(b, "127.0.0.1", swoole.SockTCP, set)
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) { _ = s.Send(fd, data) })
	ftStart(b, s)

	msg := make([]byte, benchMsgSize)
	binary.BigEndian.PutUint32(msg, benchMsgSize-4) // a valid frame; raw echo ignores it
	for i := 4; i < len(msg); i++ {
		msg[i] = byte(i)
	}
	conns := make([]net.Conn, benchConns)
	for i := range conns {
		conns[i] = ftDial(b, s.Ports()[0])
	}
	window := make([]byte, 0, pipeline*benchMsgSize)
	for range pipeline {
		window = append(window, msg...)
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
			buf := make([]byte, len(window))
			for n > 0 {
				k := min(n, pipeline)
				_ = c.SetDeadline(time.Now().Add(benchIOLimit))
				if _, err := c.Write(window[:k*benchMsgSize]); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(c, buf[:k*benchMsgSize]); err != nil {
					errs <- err
					return
				}
				n -= k
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
