package swoole_test

// The feature suites in every mode: framing (length and EOF), datagram ports, sendfile,
// timers and the heartbeat, each checked against one process, ModeBase with worker processes
// and ModeProcess, with the same server (featureServer) and the same assertions. The
// single-process suites (framing_test.go, dgram_test.go, ...) go deeper into each feature;
// this file makes sure none of them works in one mode only.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

func init() { mpMoreServers["features"] = featureServer }

// featureModes is the table of modes every feature runs in.
var featureModes = []struct {
	name string
	env  []string
}{
	{"base-1proc", []string{mpEnvWorkers + "=1"}},
	{"base-nproc", []string{mpEnvWorkers + "=2"}},
	{"process", []string{mpEnvWorkers + "=2", mpEnvMode + "=process"}},
	{"thread", []string{mpEnvWorkers + "=2", mpEnvMode + "=thread"}},
}

// featureMaxLen is package_max_length of the length-framed port.
const featureMaxLen = 64 << 10

// featureServer serves five ports:
//
//	0 TCP, length framing ("N", body after a 4-byte header): each frame's body is a request:
//	  "echo <x>" → <x>; "file" → the file at $dir/sendfile by SendFile; "after <ms> <x>" →
//	  <x> once an After timer fired; "tick <n>" → "tick 1" … "tick n" from a Tick timer
//	1 TCP, EOF framing ("\r\n"), open_tcp_nodelay: echoes each line back, "\r\n"-terminated
//	2 UDP: echoes each datagram back to its sender, prefixed with "re:"
//	3 TCP, raw: the heartbeat closes a connection idle for 300 ms (checked every 100 ms)
//	4 TCP as port 0 with an 8 KiB kernel send buffer: replies wait in the server's queue
//
// Replies on port 0 are framed like the requests.
func featureServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	if err := s.Set(swoole.Settings{
		WorkerNum: envInt(mpEnvWorkers, 2), LogLevel: swoole.LogLevelError, MaxConnection: 1024,
		OpenLengthCheck: true, PackageLengthType: "N", PackageBodyOffset: 4, PackageMaxLength: featureMaxLen,
		MaxWaitTime:            3 * time.Second,
		HeartbeatCheckInterval: 100 * time.Millisecond, HeartbeatIdleTime: time.Minute,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	eof, err1 := s.AddListener("127.0.0.1", 0, swoole.SockTCP)
	udp, err2 := s.AddListener("127.0.0.1", 0, swoole.SockUDP)
	hb, err3 := s.AddListener("127.0.0.1", 0, swoole.SockTCP)
	small, err4 := s.AddListener("127.0.0.1", 0, swoole.SockTCP)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		fmt.Fprintln(os.Stderr, "AddListener:", err1, err2, err3, err4)
		return 2
	}
	if err := small.SetOptions(map[string]any{"kernel_socket_send_buffer_size": 8192,
		"open_length_check": true, "package_length_type": "N", "package_body_offset": 4, "package_max_length": featureMaxLen}); err != nil {
		fmt.Fprintln(os.Stderr, "small port:", err)
		return 2
	}
	if err := eof.SetOptions(map[string]any{"open_length_check": false, "open_eof_split": true, "package_eof": "\r\n", "open_tcp_nodelay": true}); err != nil {
		fmt.Fprintln(os.Stderr, "eof port:", err)
		return 2
	}
	if err := hb.SetOptions(map[string]any{"open_length_check": false, "heartbeat_idle_time": 0.3}); err != nil {
		fmt.Fprintln(os.Stderr, "heartbeat port:", err)
		return 2
	}
	ports := fmt.Sprint(s.Ports()[0].Port(), eof.Port(), udp.Port(), hb.Port(), small.Port())
	frame := func(b []byte) []byte {
		out := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
		return append(out, b...)
	}
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		cmd, arg, _ := strings.Cut(string(data[4:]), " ")
		switch cmd {
		case "echo":
			_ = s.Send(fd, frame([]byte(arg)))
		case "file":
			if err := s.SendFile(fd, os.Getenv(mpEnvDir)+"/sendfile", 0, 0); err != nil {
				_ = s.Send(fd, frame([]byte("sendfile error "+err.Error())))
			}
		case "after":
			ms, text, _ := strings.Cut(arg, " ")
			n, _ := strconv.Atoi(ms)
			if _, err := s.After(n, func() { _ = s.Send(fd, frame([]byte(text))) }); err != nil {
				_ = s.Send(fd, frame([]byte("after error "+err.Error())))
			}
		case "tick":
			n, _ := strconv.Atoi(arg)
			i := 0
			if _, err := s.Tick(5, func(id int) {
				i++
				_ = s.Send(fd, frame([]byte("tick "+strconv.Itoa(i))))
				if i == n {
					s.ClearTimer(id)
				}
			}); err != nil {
				_ = s.Send(fd, frame([]byte("tick error "+err.Error())))
			}
		default:
			_ = s.Send(fd, frame([]byte("unknown "+cmd)))
		}
	})
	eof.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) { _ = s.Send(fd, data) })
	hb.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) { _ = s.Send(fd, data) })
	udp.OnPacket(func(s *swoole.Server, data []byte, c swoole.ClientAddr) {
		_ = s.SendTo(c.Address, c.Port, append([]byte("re:"), data...), c.ServerSocket)
	})
	s.OnManagerStart(func(*swoole.Server) { mpEvent("managerstart", ports) })
	s.OnStart(func(*swoole.Server) {
		if envInt(mpEnvWorkers, 2) == 1 {
			mpEvent("managerstart", ports) // one process: no manager
		}
	})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// TestFeaturesInEveryMode runs each feature against each mode.
func TestFeaturesInEveryMode(t *testing.T) {
	for _, mode := range featureModes {
		t.Run(mode.name, func(t *testing.T) {
			ms := mpStartServer(t, "features", "managerstart", mode.env...)
			ev := ms.waitEvent("managerstart", nil)
			var ports [5]int
			for i := range ports {
				ports[i] = ev.int(i)
			}
			if err := os.WriteFile(ms.dir+"/sendfile", bytes.Repeat([]byte("0123456789abcdef"), 4096), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Run("length", func(t *testing.T) { featureLength(t, ports[0]) })
			t.Run("eof", func(t *testing.T) { featureEOF(t, ports[1]) })
			t.Run("udp", func(t *testing.T) { featureUDP(t, ports[2]) })
			t.Run("sendfile", func(t *testing.T) { featureSendFile(t, ms, ports[0]) })
			t.Run("timers", func(t *testing.T) { featureTimers(t, ports[0]) })
			t.Run("heartbeat", func(t *testing.T) { featureHeartbeat(t, ports[3]) })
			t.Run("tcp_nodelay", func(t *testing.T) { featureNoDelay(t, ms, ports[0], ports[1]) })
			t.Run("flood", func(t *testing.T) { featureFlood(t, ports[4]) })
		})
	}
}

func featureDial(t *testing.T, port int) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), mpTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(mpTimeout))
	return c
}

func featureFrame(body string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func featureRead(t *testing.T, c net.Conn) string {
	t.Helper()
	var h [4]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		t.Fatalf("reading a frame's header: %v", err)
	}
	b := make([]byte, binary.BigEndian.Uint32(h[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading a frame's body: %v", err)
	}
	return string(b)
}

// featureLength: frames in one write, a frame split byte by byte, a large frame, and a frame
// above package_max_length, which closes only its own connection.
func featureLength(t *testing.T, port int) {
	c := featureDial(t, port)
	var all []byte
	for i := range 3 {
		all = append(all, featureFrame("echo "+strconv.Itoa(i))...)
	}
	if _, err := c.Write(all); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if got := featureRead(t, c); got != strconv.Itoa(i) {
			t.Fatalf("frame %d of one write: %q", i, got)
		}
	}
	for _, b := range featureFrame("echo bytewise") {
		if _, err := c.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	if got := featureRead(t, c); got != "bytewise" {
		t.Fatalf("a frame written byte by byte: %q", got)
	}
	big := strings.Repeat("x", featureMaxLen-4-len("echo "))
	if _, err := c.Write(featureFrame("echo " + big)); err != nil {
		t.Fatal(err)
	}
	if got := featureRead(t, c); got != big {
		t.Fatalf("a frame of package_max_length: %d bytes back, want %d", len(got), len(big))
	}
	bad := featureDial(t, port)
	if _, err := bad.Write(binary.BigEndian.AppendUint32(nil, featureMaxLen+1)); err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Read(make([]byte, 1)); err == nil {
		t.Fatalf("a frame above package_max_length: the connection stays open")
	}
	if _, err := c.Write(featureFrame("echo after")); err != nil {
		t.Fatal(err)
	}
	if got := featureRead(t, c); got != "after" {
		t.Fatalf("another connection after a bad peer: %q", got)
	}
}

func featureEOF(t *testing.T, port int) {
	c := featureDial(t, port)
	if _, err := c.Write([]byte("one\r\ntwo\r\nthr")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("ee\r\n")); err != nil {
		t.Fatal(err)
	}
	want := "one\r\ntwo\r\nthree\r\n"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("EOF-split lines: %q, %v; want %q", got, err, want)
	}
}

func featureUDP(t *testing.T, port int) {
	c, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	// A datagram can be lost; a reply to any of a bounded number of tries is enough.
	for i := range 50 {
		if _, err := c.Write([]byte("ping" + strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil {
			if !strings.HasPrefix(string(buf[:n]), "re:ping") {
				t.Fatalf("datagram reply %q", buf[:n])
			}
			return
		}
	}
	t.Fatalf("no datagram reply in 50 tries")
}

func featureSendFile(t *testing.T, ms *mpServer, port int) {
	want, _ := os.ReadFile(ms.dir + "/sendfile")
	c := featureDial(t, port)
	if _, err := c.Write(append(featureFrame("file"), featureFrame("echo done")...)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("sendfile: %d bytes, %v; want the file's %d bytes", len(got), err, len(want))
	}
	if got := featureRead(t, c); got != "done" {
		t.Fatalf("the reply after the file: %q", got)
	}
}

func featureTimers(t *testing.T, port int) {
	c := featureDial(t, port)
	if _, err := c.Write(append(featureFrame("after 20 fired"), featureFrame("tick 3")...)); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 4 {
		seen[featureRead(t, c)] = true
	}
	for _, w := range []string{"fired", "tick 1", "tick 2", "tick 3"} {
		if !seen[w] {
			t.Errorf("timers: no %q in %v", w, seen)
		}
	}
}

func featureHeartbeat(t *testing.T, port int) {
	c := featureDial(t, port)
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	// Idle from now: the heartbeat closes it (within the deadline featureDial set).
	if _, err := c.Read(buf); err != io.EOF {
		t.Fatalf("an idle connection on the heartbeat port: %v, want EOF", err)
	}
}
