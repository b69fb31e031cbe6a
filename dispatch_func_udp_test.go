package swoole_test

// dispatch_func on a UDP port of a ModeProcess server (Swoole's dispatch_func.phpt): for a
// datagram the function gets the sender's IPv4 address as its in_addr reads in memory, so
// that "fd % worker_num" picks the worker the phpt expects.

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

func init() { mpMoreServers["dispfuncudp"] = dispatchFuncUDPServer }

// dispatchFuncUDPServer: ModeProcess UDP, 5 workers, dispatch_func fd % worker_num. OnPacket
// replies "<worker id> <the id the sender's address gives> <data>".
func dispatchFuncUDPServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeProcess, swoole.SockUDP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	const workers = 5
	if err := s.Set(swoole.Settings{
		WorkerNum: workers, LogLevel: swoole.LogLevelWarning, MaxConnection: 64,
		DispatchFunc: func(s *swoole.Server, fd int64, ev int, data []byte) int {
			return int(fd % workers)
		},
	}); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	s.OnPacket(func(s *swoole.Server, data []byte, c swoole.ClientAddr) {
		ip := net.ParseIP(c.Address).To4()
		want := int(binary.LittleEndian.Uint32(ip)) % workers // the phpt's unpack('L', pack('N', ip2long(...)))
		_ = s.SendTo(c.Address, c.Port, fmt.Appendf(nil, "%d %d %s", s.GetWorkerID(), want, data), c.ServerSocket)
	})
	s.OnManagerStart(func(*swoole.Server) { mpEvent("managerstart", port) })
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

func TestDispatchFuncUDPModeProcess(t *testing.T) {
	ms := mpStartServer(t, "dispfuncudp", "managerstart")
	c, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(ms.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 256)
	got := 0
	// Datagrams can be lost: a bounded number of tries, and enough answers.
	for i := 0; i < 200 && got < 10; i++ {
		msg := "ping" + strconv.Itoa(i)
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := c.Read(buf)
		if err != nil {
			continue
		}
		var id, want int
		var data string
		if _, err := fmt.Sscan(string(buf[:n]), &id, &want, &data); err != nil {
			t.Fatalf("reply %q: %v", buf[:n], err)
		}
		if id != want || want != 16777343%5 {
			t.Fatalf("a datagram from 127.0.0.1 was handled by worker %d; dispatch_func's fd %% 5 gives %d (want %d)", id, want, 16777343%5)
		}
		got++
	}
	if got < 10 {
		t.Fatalf("only %d of 200 datagrams were answered", got)
	}
}
