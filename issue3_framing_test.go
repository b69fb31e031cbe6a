package swoole_test

// Input framing over loopback (issue 3): open_eof_check, open_eof_split, open_length_check
// with every package_length_type, package_length_offset, package_body_offset,
// package_length_func, package_max_length, buffer_input_size, per-port protocols; frames
// split at every byte boundary, byte-by-byte writers, many frames in one read, oversized
// and garbage input — each bad connection closed, every other connection going on.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/goswoole/swoole"
)

// i3Proto is a framing protocol under test and a stream of frames in it.
type i3Proto struct {
	name   string
	set    swoole.Settings
	frames [][]byte // the frames of one stream, in order
	check  []byte   // open_eof_check's EOF: deliveries are whole buffers ending with it
}

// due returns the deliveries the server owes once it has read prefix (a prefix of the
// stream, read at once after a frame boundary): the complete frames in it, or for
// open_eof_check the whole prefix when it ends with the EOF.
func (p i3Proto) due(prefix []byte) [][]byte {
	if p.check != nil {
		if bytes.HasSuffix(prefix, p.check) {
			return [][]byte{prefix}
		}
		return nil
	}
	var out [][]byte
	off := 0
	for _, f := range p.frames {
		if off+len(f) > len(prefix) {
			break
		}
		out = append(out, f)
		off += len(f)
	}
	return out
}

// i3Varint is a package_length_func: a uvarint length of the body, then the body.
func i3Varint(data []byte) int {
	v, n := binary.Uvarint(data)
	switch {
	case n == 0:
		return 0 // need more
	case n < 0:
		return -1 // more than 64 bits: garbage
	case v > math.MaxInt32:
		return math.MaxInt32 // too large: the server refuses it against package_max_length
	}
	return n + int(v)
}

func i3VarintFrame(body []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

// i3MagicFrame: "GS", a 4-byte big-endian body length at offset 2, 2 flag bytes, the body
// (package_length_offset 2, package_body_offset 8).
func i3MagicFrame(body []byte) []byte {
	f := make([]byte, 8+len(body))
	copy(f, "GS")
	binary.BigEndian.PutUint32(f[2:], uint32(len(body)))
	f[6], f[7] = 0xAB, 0xCD
	copy(f[8:], body)
	return f
}

func i3Protocols() []i3Proto {
	long := bytes.Repeat([]byte("0123456789"), 5)
	bodies := [][]byte{{}, []byte("a"), []byte("hello, world"), long}
	enc := func(f func([]byte) []byte) [][]byte {
		var out [][]byte
		for _, b := range bodies {
			out = append(out, f(b))
		}
		return out
	}
	return []i3Proto{
		{
			name:   "length_N_offset_2_body_8",
			set:    swoole.Settings{OpenLengthCheck: true, PackageLengthType: "N", PackageLengthOffset: 2, PackageBodyOffset: 8, PackageMaxLength: 1 << 16},
			frames: enc(i3MagicFrame),
		},
		{
			name:   "length_func_varint",
			set:    swoole.Settings{PackageLengthFunc: i3Varint, PackageMaxLength: 1 << 16},
			frames: enc(i3VarintFrame),
		},
		{
			name: "eof_split_crlfcrlf",
			set:  swoole.Settings{OpenEOFSplit: true, PackageEOF: "\r\n\r\n", PackageMaxLength: 1 << 16},
			// A frame holding part of the EOF, an empty message, a long one.
			frames: [][]byte{[]byte("a\r\n\r\n"), []byte("hello\r\nworld\r\n\r\n"), []byte("\r\n\r\n"), append(bytes.Clone(long), "\r\n\r\n"...)},
		},
		{
			name:   "eof_check_crlf",
			set:    swoole.Settings{OpenEOFCheck: true, PackageEOF: "\r\n", PackageMaxLength: 1 << 16},
			frames: [][]byte{[]byte("one\r\n"), []byte("two\rthree\r\n"), append(bytes.Clone(long), "\r\n"...)},
			check:  []byte("\r\n"),
		},
	}
}

// TestIssue3SplitAtEveryByte writes each protocol's stream in two writes, split at every byte
// boundary in turn, and waits for the server to have read the first part before writing the
// second: the frames complete in the first part are delivered at once, the incomplete rest
// is held (recv_queued_bytes), and the second part completes them, byte-exact.
func TestIssue3SplitAtEveryByte(t *testing.T) {
	for _, pr := range i3Protocols() {
		t.Run(pr.name, func(t *testing.T) {
			set := pr.set
			set.OpenTCPNoDelay = true // the echo of several frames: no Nagle wait on delayed ACKs
			s := i3New(t, "127.0.0.1", swoole.SockTCP, set)
			rec := i3EchoServer(s)
			i3Start(t, s)
			c := i3Dial(t, s.Ports()[0])
			fd := i3FDOf(t, s, c)
			stream := i3Join(pr.frames)
			var read int64
			delivered := 0
			for i := 1; i < len(stream); i++ {
				i3Write(t, c, stream[:i])
				i3Eventually(t, fmt.Sprintf("the server to read the first %d bytes", i), func() bool {
					return s.Stats().TotalRecvBytes == read+int64(i)
				})
				first := pr.due(stream[:i])
				held := i - len(i3Join(first))
				i3Eventually(t, fmt.Sprintf("split at %d: %d frames delivered and %d bytes held", i, len(first), held), func() bool {
					info, err := s.GetClientInfo(fd, -1, true)
					return err == nil && rec.count(fd) == delivered+len(first) && info.RecvQueuedBytes == held
				})
				i3Write(t, c, stream[i:])
				want := pr.frames
				if pr.check != nil {
					// The first part went out whole if it ended with the EOF, the rest
					// goes out as one buffer.
					want = append([][]byte(nil), first...)
					if rest := stream[len(i3Join(first)):]; len(rest) > 0 {
						want = append(want, rest)
					}
				}
				got := rec.waitFrames(t, fd, delivered+len(want))[delivered:]
				i3WantFrames(t, got, want)
				if echo := i3ReadFull(t, c, len(stream)); !bytes.Equal(echo, stream) {
					t.Fatalf("split at %d: echo %q, want %q", i, echo, stream)
				}
				delivered += len(want)
				read += int64(len(stream))
			}
			if n := len(rec.closes(fd)); n != 0 {
				t.Fatalf("the connection closed (%d OnClose)", n)
			}
		})
	}
}

// TestIssue3WholeStreamAndBytewise writes many frames in a single write, then the same
// frames one byte per write (TCP_NODELAY): the split protocols deliver exactly one
// OnReceive per frame; open_eof_check delivers whole buffers that end with the EOF and
// together are the stream.
func TestIssue3WholeStreamAndBytewise(t *testing.T) {
	for _, pr := range i3Protocols() {
		t.Run(pr.name, func(t *testing.T) {
			s := i3New(t, "127.0.0.1", swoole.SockTCP, pr.set)
			rec := i3EchoServer(s)
			i3Start(t, s)
			for _, mode := range []string{"one write", "byte by byte"} {
				c := i3Dial(t, s.Ports()[0])
				fd := i3FDOf(t, s, c)
				var frames [][]byte
				reps := 200
				if mode == "byte by byte" {
					reps = 3
				}
				for range reps {
					frames = append(frames, pr.frames...)
				}
				stream := i3Join(frames)
				if mode == "one write" {
					i3Write(t, c, stream)
				} else {
					i3WriteBytewise(t, c, stream)
				}
				if echo := i3ReadFull(t, c, len(stream)); !bytes.Equal(echo, stream) {
					t.Fatalf("%s: the echo differs from the stream", mode)
				}
				got := rec.got(fd)
				if pr.check == nil {
					i3WantFrames(t, got, frames)
					continue
				}
				for i, d := range got {
					if !bytes.HasSuffix(d, pr.check) {
						t.Fatalf("%s: delivery %d %q does not end with the EOF", mode, i, i3Trunc(d))
					}
				}
				if !bytes.Equal(i3Join(got), stream) {
					t.Fatalf("%s: the deliveries do not add up to the stream", mode)
				}
				if mode == "one write" && len(got) > len(frames)/2 {
					t.Errorf("%s: %d deliveries for %d messages: open_eof_check should deliver whole buffers, not messages", mode, len(got), len(frames))
				}
			}
		})
	}
}

// TestIssue3LengthTypes runs open_length_check with every package_length_type, with the
// length at an offset behind a 3-byte prefix, counting the body only (package_body_offset =
// header size) and counting the whole frame (package_body_offset 0).
func TestIssue3LengthTypes(t *testing.T) {
	for _, typ := range []byte("cCsSnNlLqQJPvV") {
		for _, whole := range []bool{false, true} {
			name := fmt.Sprintf("%c/body", typ)
			if whole {
				name = fmt.Sprintf("%c/whole", typ)
			}
			t.Run(name, func(t *testing.T) {
				const off = 3
				hdr := off + i3LenSize(typ)
				bodyOff := hdr
				if whole {
					bodyOff = 0
				}
				encode := func(body []byte) []byte {
					f := make([]byte, hdr+len(body))
					copy(f, "xyz")
					v := int64(len(body))
					if whole {
						v += int64(hdr)
					}
					i3PutLen(f[off:], typ, v)
					copy(f[hdr:], body)
					return f
				}
				s := i3New(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{
					OpenLengthCheck: true, PackageLengthType: string(typ), PackageLengthOffset: off,
					PackageBodyOffset: bodyOff, PackageMaxLength: 4096,
				})
				rec := i3EchoServer(s)
				i3Start(t, s)
				var frames [][]byte
				for _, n := range []int{0, 1, 2, 100, 7} {
					frames = append(frames, encode(bytes.Repeat([]byte{byte('a' + n%26)}, n)))
				}
				stream := i3Join(frames)
				c := i3Dial(t, s.Ports()[0])
				fd := i3FDOf(t, s, c)
				i3Write(t, c, stream)
				i3WriteBytewise(t, c, stream)
				i3ReadFull(t, c, 2*len(stream))
				i3WantFrames(t, rec.got(fd), append(append([][]byte(nil), frames...), frames...))
			})
		}
	}
}

// TestIssue3ManyFramesOneRead sends 2000 small frames in one write (the server reads them in
// one or a few reads): 2000 OnReceive calls, in order. The frames of one read are slices of
// one input buffer, one after the other (zero-copy), not copies made per frame.
func TestIssue3ManyFramesOneRead(t *testing.T) {
	s := i3New(t, "127.0.0.1", swoole.SockTCP, i3SettingsN(1<<16))
	type span struct{ ptr, n uintptr }
	var spans []span // touched on the loop only, then handed over through result
	var frames [][]byte
	type all struct {
		spans  []span
		frames [][]byte
	}
	result := make(chan all, 1)
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		spans = append(spans, span{uintptr(unsafe.Pointer(unsafe.SliceData(data))), uintptr(len(data))})
		frames = append(frames, bytes.Clone(data))
		if len(frames) == 2000 {
			result <- all{spans, frames}
			_ = s.Send(fd, []byte("done"))
		}
	})
	i3Start(t, s)
	var want [][]byte
	for i := range 2000 {
		want = append(want, i3FrameN([]byte(fmt.Sprintf("frame %06d", i))))
	}
	c := i3Dial(t, s.Ports()[0])
	i3Write(t, c, i3Join(want))
	if got := i3ReadFull(t, c, 4); string(got) != "done" {
		t.Fatalf("got %q", got)
	}
	r := <-result
	spans, frames = r.spans, r.frames
	i3WantFrames(t, frames, want)
	adjacent := 0
	for i := 1; i < len(spans); i++ {
		if spans[i].ptr == spans[i-1].ptr+spans[i-1].n {
			adjacent++
		}
	}
	if adjacent < len(spans)-64 {
		t.Errorf("only %d of %d frames start where the previous one ends: frames should be slices of the input buffer", adjacent, len(spans)-1)
	}
}

// i3Bad is a misbehaving peer: what it sends, and the code the server logs when it closes
// the connection.
type i3Bad struct {
	name string
	set  swoole.Settings
	send []byte
	code int
	// encode frames the healthy connection's messages in the same protocol.
	encode func([]byte) []byte
}

func i3BadPeers() []i3Bad {
	hugeN := make([]byte, 4)
	binary.BigEndian.PutUint32(hugeN, math.MaxUint32)
	over := i3FrameN(nil)
	binary.BigEndian.PutUint32(over, 1024-4+1) // total 1025 with package_body_offset 4
	neg := make([]byte, 4)
	binary.NativeEndian.PutUint32(neg, uint32(0xFFFFFFF0)) // -16 as 'l'
	short := make([]byte, 4)
	binary.BigEndian.PutUint32(short, 2) // whole-frame length 2 < the 4-byte header
	eofN := func(b []byte) []byte { return append(bytes.Clone(b), '\n') }
	return []i3Bad{
		{name: "length header above package_max_length", set: i3SettingsN(1024), send: over, code: swoole.ErrPackageLengthTooLarge, encode: i3FrameN},
		{name: "length header 4 GiB", set: i3SettingsN(1024), send: hugeN, code: swoole.ErrPackageLengthTooLarge, encode: i3FrameN},
		{name: "http request to a length port", set: i3SettingsN(1024), send: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), code: swoole.ErrPackageLengthTooLarge, encode: i3FrameN},
		{name: "negative signed length", set: swoole.Settings{OpenLengthCheck: true, PackageLengthType: "l", PackageBodyOffset: 4, PackageMaxLength: 1024}, send: neg,
			code: swoole.ErrPackageMalformedData, encode: func(b []byte) []byte {
				f := make([]byte, 4+len(b))
				binary.NativeEndian.PutUint32(f, uint32(len(b)))
				copy(f[4:], b)
				return f
			}},
		{name: "length smaller than its header", set: swoole.Settings{OpenLengthCheck: true, PackageLengthType: "N", PackageMaxLength: 1024}, send: short,
			code: swoole.ErrPackageMalformedData, encode: func(b []byte) []byte {
				f := make([]byte, 4+len(b))
				binary.BigEndian.PutUint32(f, uint32(4+len(b)))
				copy(f[4:], b)
				return f
			}},
		{name: "length func says garbage", set: swoole.Settings{PackageLengthFunc: i3Varint, PackageMaxLength: 1024}, send: bytes.Repeat([]byte{0xFF}, 11),
			code: swoole.ErrPackageMalformedData, encode: i3VarintFrame},
		{name: "length func above package_max_length", set: swoole.Settings{PackageLengthFunc: i3Varint, PackageMaxLength: 1024}, send: binary.AppendUvarint(nil, 5000),
			code: swoole.ErrPackageLengthTooLarge, encode: i3VarintFrame},
		{name: "eof_split without EOF past package_max_length", set: swoole.Settings{OpenEOFSplit: true, PackageEOF: "\n", PackageMaxLength: 1024}, send: bytes.Repeat([]byte("x"), 3000),
			code: swoole.ErrPackageLengthTooLarge, encode: eofN},
		{name: "eof_check without EOF past package_max_length", set: swoole.Settings{OpenEOFCheck: true, PackageEOF: "\n", PackageMaxLength: 1024}, send: bytes.Repeat([]byte("x"), 3000),
			code: swoole.ErrPackageLengthTooLarge, encode: eofN},
		{name: "eof_split message longer than package_max_length", set: swoole.Settings{OpenEOFSplit: true, PackageEOF: "\n", PackageMaxLength: 1024}, send: append(bytes.Repeat([]byte("y"), 1500), '\n'),
			code: swoole.ErrPackageLengthTooLarge, encode: eofN},
		{name: "incomplete frame above buffer_input_size", set: swoole.Settings{OpenLengthCheck: true, PackageLengthType: "N", PackageBodyOffset: 4, PackageMaxLength: 1 << 20, BufferInputSize: 8192},
			send: i3FrameN(bytes.Repeat([]byte("z"), 100000))[:9000], code: swoole.ErrPackageLengthTooLarge, encode: i3FrameN},
		{name: "eof_check buffer above buffer_input_size", set: swoole.Settings{OpenEOFCheck: true, PackageEOF: "\n", PackageMaxLength: 1 << 20, BufferInputSize: 8192},
			send: bytes.Repeat([]byte("z"), 9000), code: swoole.ErrPackageLengthTooLarge, encode: eofN},
	}
}

// TestIssue3BadPeers: a peer that breaks the framing (an oversized length header, sent
// without its body; a negative or too-small length; garbage; a buffer above
// package_max_length or buffer_input_size) is closed at once, with a logged reason carrying
// the code; OnClose runs once for it; a healthy connection of the same server echoes before
// and after, another echoes in the background all along, and new connections are served.
func TestIssue3BadPeers(t *testing.T) {
	for _, bad := range i3BadPeers() {
		t.Run(bad.name, func(t *testing.T) {
			logPath := filepath.Join(t.TempDir(), "server.log")
			set := bad.set
			set.LogFile, set.LogLevel = logPath, swoole.LogLevelWarning
			s := i3New(t, "127.0.0.1", swoole.SockTCP, set)
			rec := i3EchoServer(s)
			i3Start(t, s)
			healthy := newI3Healthy(t, s.Ports()[0], bad.encode)
			mark, stop := i3EchoLoop(t, s.Ports()[0], bad.encode)
			c := i3Dial(t, s.Ports()[0])
			fd := i3FDOf(t, s, c)
			healthy.check(t)
			i3Write(t, c, bad.send)
			i3WantClosed(t, c)
			atClose := mark()
			if id := rec.waitClosed(t, fd); id < 0 {
				t.Errorf("OnClose reactorID = %d for a close by the server's framing, want >= 0", id)
			}
			if s.Exist(fd) {
				t.Errorf("Exist(%d) after the protocol error", fd)
			}
			if n := rec.count(fd); n != 0 {
				t.Errorf("the bad connection delivered %d frames", n)
			}
			healthy.check(t)
			newI3Healthy(t, s.Ports()[0], bad.encode) // still accepting
			healthy.check(t)
			i3Eventually(t, "the background echo to go on after the close", func() bool { return mark() > atClose+10 })
			stop()
			if n := len(rec.closes(fd)); n != 1 {
				t.Errorf("OnClose ran %d times for session %d", n, fd)
			}
			i3Eventually(t, "the log to name the reason", func() bool {
				b, _ := os.ReadFile(logPath)
				return bytes.Contains(b, []byte(fmt.Sprintf("fd=%d", fd))) && bytes.Contains(b, []byte(fmt.Sprintf("code=%d", bad.code)))
			})
		})
	}
}

// TestIssue3MaxLengthBoundary: a frame of exactly package_max_length is delivered; one byte
// more closes the connection as soon as the header arrives (the body is never sent).
func TestIssue3MaxLengthBoundary(t *testing.T) {
	s := i3New(t, "127.0.0.1", swoole.SockTCP, i3SettingsN(1024))
	rec := i3EchoServer(s)
	i3Start(t, s)
	c := i3Dial(t, s.Ports()[0])
	fd := i3FDOf(t, s, c)
	exact := i3FrameN(bytes.Repeat([]byte("m"), 1020))
	i3Write(t, c, exact)
	if got := i3ReadFull(t, c, len(exact)); !bytes.Equal(got, exact) {
		t.Fatal("the frame of package_max_length bytes did not come back")
	}
	i3WantFrames(t, rec.got(fd), [][]byte{exact})
	i3Write(t, c, i3FrameN(bytes.Repeat([]byte("m"), 1021))[:4])
	i3WantClosed(t, c)
}

// TestIssue3PortProtocols: each port frames its input its own way. The primary port splits
// on "\n"; a second port reads 'n' length frames (a "\n" inside a body is data) with its own
// OnReceive; a third port that never calls Set inherits the primary port's framing; a unix
// stream port uses a package_length_func; a UDP port of the same server gets whole datagrams,
// unframed.
func TestIssue3PortProtocols(t *testing.T) {
	s := i3New(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{OpenEOFSplit: true, PackageEOF: "\n"})
	rec := i3EchoServer(s)
	lenPort, err := s.AddListener("127.0.0.1", 0, swoole.SockTCP)
	if err != nil {
		t.Fatal(err)
	}
	if err := lenPort.Set(swoole.Settings{OpenLengthCheck: true, PackageLengthType: "n", PackageBodyOffset: 2}); err != nil {
		t.Fatal(err)
	}
	lenRec := newI3Rec()
	lenPort.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		lenRec.receive(fd, data)
		_ = s.Send(fd, data)
	})
	inherit, err := s.AddListener("127.0.0.1", 0, swoole.SockTCP)
	if err != nil {
		t.Fatal(err)
	}
	unixPort, err := s.AddListener(filepath.Join(t.TempDir(), "func.sock"), 0, swoole.SockUnixStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := unixPort.SetOptions(map[string]any{"package_length_func": i3Varint, "package_max_length": 4096}); err != nil {
		t.Fatal(err)
	}
	udp, err := s.AddListener("127.0.0.1", 0, swoole.SockUDP)
	if err != nil {
		t.Fatal(err)
	}
	packets := make(chan string, 4)
	udp.OnPacket(func(s *swoole.Server, data []byte, _ swoole.ClientAddr) { packets <- string(data) })
	i3Start(t, s)

	lines := []byte("a\nbb\n\nccc\n")
	wantLines := [][]byte{[]byte("a\n"), []byte("bb\n"), []byte("\n"), []byte("ccc\n")}

	c := i3Dial(t, s.Ports()[0])
	fd := i3FDOf(t, s, c)
	i3Write(t, c, lines)
	i3ReadFull(t, c, len(lines))
	i3WantFrames(t, rec.got(fd), wantLines)

	ci := i3Dial(t, inherit)
	fdi := i3FDOf(t, s, ci)
	i3WriteBytewise(t, ci, lines)
	i3ReadFull(t, ci, len(lines))
	i3WantFrames(t, rec.got(fdi), wantLines)

	cl := i3Dial(t, lenPort)
	fdl := i3FDOf(t, s, cl)
	lf := func(b string) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...) }
	wantLen := [][]byte{lf("x\ny\n"), lf(""), lf("\n")}
	i3Write(t, cl, i3Join(wantLen))
	i3ReadFull(t, cl, len(i3Join(wantLen)))
	i3WantFrames(t, lenRec.got(fdl), wantLen)
	if n := rec.count(fdl); n != 0 {
		t.Errorf("the server's OnReceive ran %d times for the port with its own handler", n)
	}

	cu := i3Dial(t, unixPort)
	wantU := [][]byte{i3VarintFrame([]byte("u\nv")), i3VarintFrame(bytes.Repeat([]byte("w"), 300))}
	i3WriteBytewise(t, cu, i3Join(wantU))
	if got := i3ReadFull(t, cu, len(i3Join(wantU))); !bytes.Equal(got, i3Join(wantU)) {
		t.Fatalf("unix port echo %q", got)
	}
	var fdu int64
	for id := range s.Connections() {
		if info, err := s.GetClientInfo(id, -1, true); err == nil && info.ServerPort == 0 && info.SocketType == int(swoole.SockUnixStream) {
			fdu = id
		}
	}
	i3WantFrames(t, rec.got(fdu), wantU)

	uc := i3Dial(t, udp)
	i3Write(t, uc, []byte("p\nq\nr"))
	if got := <-packets; got != "p\nq\nr" {
		t.Errorf("UDP port delivered %q, want the whole datagram", got)
	}
}

// TestIssue3FramingConfigErrors: framing settings that do not fit together are refused when
// they are set.
func TestIssue3FramingConfigErrors(t *testing.T) {
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeBase, swoole.SockTCP)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts map[string]any
		key  string
	}{
		{"unknown length type", map[string]any{"open_length_check": true, "package_length_type": "x"}, "package_length_type"},
		{"eof too long", map[string]any{"open_eof_split": true, "package_eof": "123456789"}, "package_eof"},
		{"eof and length both", map[string]any{"open_eof_check": true, "open_length_check": true}, "open_length_check"},
		{"func and eof split", map[string]any{"open_eof_split": true, "package_length_func": i3Varint}, "open_length_check"},
		{"negative offset", map[string]any{"open_length_check": true, "package_length_offset": -1}, "package_length_offset"},
	} {
		err := s.SetOptions(tc.opts)
		i3WantCode(t, s, tc.name, err, swoole.ErrInvalidParams)
		if err != nil && !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: %v does not name %s", tc.name, err, tc.key)
		}
	}
	// The refused settings changed nothing: the server starts and frames nothing.
	if err := s.Set(i3Quiet); err != nil {
		t.Fatal(err)
	}
	rec := i3EchoServer(s)
	i3Start(t, s)
	c := i3Dial(t, s.Ports()[0])
	i3Write(t, c, []byte("raw"))
	i3ReadFull(t, c, 3)
	if got := rec.got(i3FDOf(t, s, c)); len(got) != 1 || string(got[0]) != "raw" {
		t.Errorf("got %q", got)
	}
}

// TestIssue3BadHeaderBytewise: an oversized or malformed length header that trickles in one
// byte per segment closes the connection as soon as it is complete, like one sent at once.
func TestIssue3BadHeaderBytewise(t *testing.T) {
	for _, bad := range i3BadPeers() {
		if len(bad.send) > 64 {
			continue
		}
		t.Run(bad.name, func(t *testing.T) {
			s := i3New(t, "127.0.0.1", swoole.SockTCP, bad.set)
			rec := i3EchoServer(s)
			i3Start(t, s)
			healthy := newI3Healthy(t, s.Ports()[0], bad.encode)
			c := i3Dial(t, s.Ports()[0])
			fd := i3FDOf(t, s, c)
			for i := range bad.send {
				if _, err := c.Write(bad.send[i : i+1]); err != nil {
					break // closed by the server before the rest was written
				}
				healthy.check(t)
			}
			i3WantClosed(t, c)
			rec.waitClosed(t, fd)
			healthy.check(t)
		})
	}
}

// TestIssue3LargeFrames: frames far larger than one read (the loop reads 64 KiB at a time)
// are assembled whole, between small ones, in the length and EOF modes.
func TestIssue3LargeFrames(t *testing.T) {
	big := i3Pattern(9, 1<<20+17)
	for i, b := range big {
		if b == '\n' {
			big[i] = 'n' // no EOF inside the EOF protocol's body
		}
	}
	for _, tc := range []struct {
		name   string
		set    swoole.Settings
		encode func([]byte) []byte
	}{
		{"length", i3SettingsN(2 << 20), i3FrameN},
		{"func", swoole.Settings{PackageLengthFunc: i3Varint, PackageMaxLength: 2 << 20}, i3VarintFrame},
		{"eof_split", swoole.Settings{OpenEOFSplit: true, PackageEOF: "\n", PackageMaxLength: 2 << 20}, func(b []byte) []byte { return append(bytes.Clone(b), '\n') }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := i3New(t, "127.0.0.1", swoole.SockTCP, tc.set)
			rec := i3EchoServer(s)
			i3Start(t, s)
			c := i3Dial(t, s.Ports()[0])
			fd := i3FDOf(t, s, c)
			frames := [][]byte{tc.encode([]byte("small")), tc.encode(big), tc.encode([]byte("x")), tc.encode(big[:70000]), tc.encode([]byte("end"))}
			stream := i3Join(frames)
			go func() { _, _ = c.Write(stream) }() // the echo comes back while we write
			got := i3ReadFull(t, c, len(stream))
			if i := i3FirstDiff(got, stream); i >= 0 {
				t.Fatalf("echo differs at %d", i)
			}
			i3WantFrames(t, rec.got(fd), frames)
		})
	}
}

// TestIssue3CloseInsideReceive: a callback that closes its connection stops the delivery of
// the frames that came with the same read; OnClose runs once, with reactorID -1.
func TestIssue3CloseInsideReceive(t *testing.T) {
	s := i3New(t, "127.0.0.1", swoole.SockTCP, i3SettingsN(1024))
	rec := newI3Rec()
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		rec.receive(fd, data)
		if string(data[4:]) == "close" {
			if err := s.Close(fd, false); err != nil {
				panic(err)
			}
		}
	})
	s.OnClose(func(s *swoole.Server, fd int64, reactorID int) { rec.close(fd, reactorID) })
	i3Start(t, s)
	c := i3Dial(t, s.Ports()[0])
	fd := i3FDOf(t, s, c)
	frames := [][]byte{i3FrameN([]byte("a")), i3FrameN([]byte("close")), i3FrameN([]byte("b")), i3FrameN([]byte("c"))}
	i3Write(t, c, i3Join(frames))
	i3WantClosed(t, c)
	if id := rec.waitClosed(t, fd); id != -1 {
		t.Errorf("OnClose reactorID %d, want -1", id)
	}
	i3WantFrames(t, rec.got(fd), frames[:2])
	if n := len(rec.closes(fd)); n != 1 {
		t.Errorf("OnClose ran %d times", n)
	}
}

// TestIssue3FramedEchoAllocs locks in an allocation-free framed path: a round trip of
// length-prefixed frames (whole frames in one read: delivered from the read buffer; a frame
// split across two reads: completed in the connection's pooled input buffer) allocates
// nothing, client included.
func TestIssue3FramedEchoAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	s := i3New(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{OpenLengthCheck: true, PackageLengthType: "N", PackageBodyOffset: 4, OpenTCPNoDelay: true})
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) { _ = s.Send(fd, data) })
	i3Start(t, s)
	c := i3Dial(t, s.Ports()[0])
	f := i3FrameN(make([]byte, 60)) // 64-byte frames
	whole := bytes.Repeat(f, 4)
	buf := make([]byte, len(whole))
	_ = c.SetDeadline(time.Now().Add(i3Timeout))
	roundTrip := func(out []byte, back int) {
		if _, err := c.Write(out); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:back]); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		run  func()
	}{
		{"whole frames", func() { roundTrip(whole, len(whole)) }},
		{"split frames", nil}, // each write ends in the middle of a frame, the next completes it
	} {
		if tc.name == "split frames" {
			roundTrip(f[:32], 0) // start mid-frame
			split := append(append([]byte(nil), f[32:]...), append(bytes.Repeat(f, 3), f[:32]...)...)
			tc.run = func() { roundTrip(split, 4*len(f)) }
		}
		for range 100 {
			tc.run() // warm up
		}
		if a := testing.AllocsPerRun(300, tc.run); a > 0.05 {
			t.Errorf("%s: a framed echo round trip allocates %.2f times", tc.name, a)
		}
	}
}
