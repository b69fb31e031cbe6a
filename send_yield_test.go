package swoole_test

// send_yield for connections another process holds (Swoole's send_2.phpt and send_3.phpt):
// in ModeProcess a worker's Send to a connection whose queue in the master is full waits for
// room instead of failing with 1008, and everything arrives.

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

func init() { mpMoreServers["sendyield"] = sendYieldServer }

const (
	syFrames  = 16
	syMinSize = 256 << 10
	syMaxSize = 1 << 20
)

// sendYieldServer: ModeProcess, dispatch_mode 2, send_yield, socket_buffer_size 1 MiB. In
// OnConnect the worker sends syFrames frames of 256 KiB to 1 MiB (a 4-byte big-endian length,
// then the length's bytes, each the frame's index) and logs "yielded <fd> <failures>".
func sendYieldServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeProcess, swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	if err := s.Set(swoole.Settings{
		WorkerNum: envInt(mpEnvWorkers, 1), ReactorNum: envInt(mpEnvReactors, 2), DispatchMode: swoole.DispatchFDMod,
		SendYield: true, SocketBufferSize: 1 << 20, LogLevel: swoole.LogLevelWarning, MaxConnection: 1024,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	s.OnConnect(func(s *swoole.Server, fd int64, _ int) {
		failed := 0
		rng := rand.New(rand.NewPCG(uint64(fd), 7))
		for i := range syFrames {
			n := syMinSize + rng.IntN(syMaxSize-syMinSize)
			frame := make([]byte, 4+n)
			binary.BigEndian.PutUint32(frame, uint32(n))
			for k := 4; k < len(frame); k++ {
				frame[k] = byte(i)
			}
			if err := s.Send(fd, frame); err != nil {
				failed++
				mpEvent("yield-error", fd, mpCode(err))
			}
		}
		mpEvent("yielded", fd, failed)
	})
	s.OnReceive(func(*swoole.Server, int64, int, []byte) {})
	s.OnManagerStart(func(*swoole.Server) { mpEvent("managerstart", port) })
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

func TestSendYieldModeProcess(t *testing.T) {
	for _, c := range []struct {
		name string
		env  []string
	}{
		{"1 worker", []string{mpEnvWorkers + "=1", mpEnvReactors + "=2"}},
		{"4 workers, 1 reactor", []string{mpEnvWorkers + "=4", mpEnvReactors + "=1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ms := mpStartServer(t, "sendyield", "managerstart", c.env...)
			const conns = 6
			var wg sync.WaitGroup
			errs := make(chan error, conns)
			for range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- syReadAll(ms.Port)
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			if n := ms.count("yield-error", nil); n > 0 {
				t.Errorf("%d Sends failed with send_yield on", n)
			}
			ms.eventually("every connection's sends done", func() bool { return ms.count("yielded", nil) == conns })
		})
	}
}

// syReadAll connects, waits a moment before reading (so that the master's queue fills), and
// reads every frame, checking each one's bytes.
func syReadAll(port int) error {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), mpTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * mpTimeout))
	var h [4]byte
	buf := make([]byte, syMaxSize)
	for i := range syFrames {
		if _, err := io.ReadFull(c, h[:]); err != nil {
			return fmt.Errorf("frame %d's header: %w", i, err)
		}
		n := int(binary.BigEndian.Uint32(h[:]))
		if n < syMinSize || n > syMaxSize {
			return fmt.Errorf("frame %d: length %d", i, n)
		}
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return fmt.Errorf("frame %d's %d bytes: %w", i, n, err)
		}
		for k := range n {
			if buf[k] != byte(i) {
				return fmt.Errorf("frame %d: byte %d is %d", i, k, buf[k])
			}
		}
	}
	return nil
}
