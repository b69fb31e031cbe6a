package swoole_test

// Frames larger than buffer_input_size: a frame whose length is at most package_max_length
// is received whole, whatever buffer_input_size says (Swoole grows a connection's input
// buffer to the frame's size: src/protocol/base.cc), in one process, in ModeBase with
// workers and in ModeProcess, where the master frames and forwards the frame to a worker in
// chunks. The server answers each frame with its length and CRC-32, not the data.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// lfMaxLength is package_max_length of every port of the large-frame server, unless
// lfEnvMax says otherwise.
const lfMaxLength = 16 << 20

// lfEnvMax is package_max_length for lfServerMain (default lfMaxLength).
const lfEnvMax = "GOSWOOLE_TEST_LF_MAX"

func init() {
	mpMoreServers["largeframes"] = lfServerMain
}

// lfServer builds the large-frame server. The primary port has no framing and is not used
// (a port that calls Set has only its own port settings, as in Swoole, so each port sets
// package_max_length too); port 1 reads 'N' length
// frames (the length counts the body), port 2 splits on "\n" (open_eof_split), port 3
// checks for a trailing "\n" (open_eof_check). package_max_length is lfMaxLength on each;
// buffer_input_size keeps its default (2 MiB). Every frame is answered with the line
// "<length> <crc32>". set.PackageMaxLength 0 means lfMaxLength.
func lfServer(mode swoole.Mode, workers int, set swoole.Settings) (*swoole.Server, error) {
	s, err := swoole.NewServer("127.0.0.1", 0, mode, swoole.SockTCP)
	if err != nil {
		return nil, err
	}
	set.WorkerNum, set.MaxConnection = workers, 1024
	if set.PackageMaxLength == 0 {
		set.PackageMaxLength = lfMaxLength
	}
	if err := s.Set(set); err != nil {
		return nil, err
	}
	for _, framing := range []swoole.Settings{
		{OpenLengthCheck: true, PackageLengthType: "N", PackageBodyOffset: 4},
		{OpenEOFSplit: true, PackageEOF: "\n"},
		{OpenEOFCheck: true, PackageEOF: "\n"},
	} {
		p, err := s.AddListener("127.0.0.1", 0, swoole.SockTCP)
		if err != nil {
			return nil, err
		}
		framing.PackageMaxLength = set.PackageMaxLength
		if err := p.Set(framing); err != nil {
			return nil, err
		}
	}
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		_ = s.Send(fd, []byte(fmt.Sprintf("%d %08x\n", len(data), crc32.ChecksumIEEE(data))))
	})
	return s, nil
}

// lfServerMain is the large-frame server as a process tree (mpMoreServers): mpEnvMode and
// mpEnvWorkers choose the mode and worker_num; OnStart writes "ready" and the ports.
func lfServerMain() int {
	s, err := lfServer(mpMode(), envInt(mpEnvWorkers, 2), swoole.Settings{LogLevel: swoole.LogLevelWarning, PackageMaxLength: envInt(lfEnvMax, lfMaxLength)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "largeframes:", err)
		return 2
	}
	s.OnStart(func(s *swoole.Server) {
		ev := []any{}
		for _, p := range s.Ports() {
			ev = append(ev, p.Port())
		}
		mpEvent("ready", ev...)
	})
	s.OnWorkerStart(func(s *swoole.Server, id int) { mpEvent("workerstart", id) })
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// lfData returns n bytes without a "\n".
func lfData(n int) []byte {
	b := make([]byte, n)
	k := copy(b, "abcdefghijklmnopqrstuvwxyz")
	for k < n { // doubling copies: cheap under -race, unlike a loop over the bytes
		k += copy(b[k:], b[:k])
	}
	return b
}

// lfLengthFrame is an 'N' frame whose whole size is total bytes (header included).
func lfLengthFrame(total int) []byte {
	f := lfData(total)
	binary.BigEndian.PutUint32(f, uint32(total-4))
	return f
}

// lfLine is a "\n"-terminated frame of total bytes.
func lfLine(total int) []byte {
	f := lfData(total)
	f[total-1] = '\n'
	return f
}

// lfSend writes frame on c and checks the server's answer: the frame's length and CRC-32.
func lfSend(t *testing.T, c net.Conn, r *bufio.Reader, what string, frame []byte) {
	t.Helper()
	deadline := time.Now().Add(mpTimeout)
	_ = c.SetDeadline(deadline)
	if _, err := c.Write(frame); err != nil {
		t.Fatalf("%s: writing a frame of %d bytes: %v", what, len(frame), err)
	}
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("%s: no answer to a frame of %d bytes: %v", what, len(frame), err)
	}
	if want := fmt.Sprintf("%d %08x\n", len(frame), crc32.ChecksumIEEE(frame)); line != want {
		t.Fatalf("%s: answer %q to a frame of %d bytes, want %q", what, line, len(frame), want)
	}
}

// lfCheck sends frames of 2 MiB (plus the header or the EOF), 8 MiB and exactly
// package_max_length to each port, one connection per port, and then a length header above
// package_max_length, which closes its connection.
func lfCheck(t *testing.T, ports []int) {
	if len(ports) != 4 {
		t.Fatalf("ports %v: want 4", ports)
	}
	ports = ports[1:] // the framed ones
	dial := func(port int) (net.Conn, *bufio.Reader) {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), mpTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	sizes := []int{2<<20 + 4, 8<<20 + 4, lfMaxLength}
	c, r := dial(ports[0])
	for _, n := range sizes {
		lfSend(t, c, r, "open_length_check", lfLengthFrame(n))
	}
	// Two frames in one write: the large one, then a small one right behind it.
	two := append(lfLengthFrame(4<<20), lfLengthFrame(100)...)
	_ = c.SetDeadline(time.Now().Add(mpTimeout))
	if _, err := c.Write(two); err != nil {
		t.Fatal(err)
	}
	for _, f := range [][]byte{two[:4<<20], two[4<<20:]} {
		line, err := r.ReadString('\n')
		if want := fmt.Sprintf("%d %08x\n", len(f), crc32.ChecksumIEEE(f)); err != nil || line != want {
			t.Fatalf("two frames in one write: answer %q, %v; want %q", line, err, want)
		}
	}
	for i, mode := range []string{"open_eof_split", "open_eof_check"} {
		c, r := dial(ports[1+i])
		for _, n := range []int{2<<20 + 1, 8 << 20, lfMaxLength} {
			lfSend(t, c, r, mode, lfLine(n))
		}
	}
	// One byte above package_max_length: closed as soon as the header arrives (1201).
	c, r = dial(ports[0])
	over := make([]byte, 4)
	binary.BigEndian.PutUint32(over, lfMaxLength-4+1)
	_ = c.SetDeadline(time.Now().Add(mpTimeout))
	if _, err := c.Write(over); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err == nil {
		t.Fatalf("a header above package_max_length was answered %q; want the connection closed", line)
	}
}

// TestFramesAboveBufferInputSizeOneProcess: one ModeBase process receives frames of up to
// package_max_length whole, above the default buffer_input_size of 2 MiB.
func TestFramesAboveBufferInputSizeOneProcess(t *testing.T) {
	s, err := lfServer(swoole.ModeBase, 1, swoole.Settings{LogLevel: swoole.LogLevelNone})
	if err != nil {
		t.Fatal(err)
	}
	ftStart(t, s)
	var ports []int
	for _, p := range s.Ports() {
		ports = append(ports, p.Port())
	}
	lfCheck(t, ports)
}

// TestFramesAboveBufferInputSizeMultiProcess: the same frames in ModeBase with two worker processes and in
// ModeProcess, where the master frames them and passes each whole to a worker.
func TestFramesAboveBufferInputSizeMultiProcess(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"ModeBase 2 workers", []string{mpEnvWorkers + "=2"}},
		{"ModeProcess", []string{mpEnvMode + "=process", mpEnvWorkers + "=2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := mpStartServer(t, "largeframes", "ready", tc.env...)
			var ports []int
			for _, f := range ms.waitEvent("ready", nil).Fields {
				ports = append(ports, atoi(f))
			}
			lfCheck(t, ports)
			if out := ms.output(); bytes.Contains([]byte(out), []byte("buffer_input_size")) {
				t.Errorf("the server complained about buffer_input_size:\n%s", out)
			}
		})
	}
}

// TestFramesAboveDefaultIPCMessageModeProcess: with package_max_length 72 MiB, the
// ModeProcess master passes a frame of more than 64 MiB (the pipes' default message limit)
// whole to a worker.
func TestFramesAboveDefaultIPCMessageModeProcess(t *testing.T) {
	const maxLen = 72 << 20
	ms := mpStartServer(t, "largeframes", "ready", mpEnvMode+"=process", mpEnvWorkers+"=1", lfEnvMax+"="+strconv.Itoa(maxLen))
	port := atoi(ms.waitEvent("ready", nil).Fields[1]) // the length port
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), mpTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	lfSend(t, c, r, "open_length_check", lfLengthFrame(64<<20+4096))
	lfSend(t, c, r, "open_length_check", lfLengthFrame(maxLen))
}
