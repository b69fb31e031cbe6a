package swoole_test

// Input framing over loopback: open_eof_check, open_eof_split, open_length_check
// with every package_length_type, package_length_offset, package_body_offset,
// package_length_func, package_max_length, per-port protocols; frames
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

// ftProto is a framing protocol under test and a stream of frames in it.
type ftProto struct {
	name   string
	set    swoole.Settings
	frames [][]byte // the frames of one stream, in order
	check  []byte   // open_eof_check's EOF: deliveries are whole buffers ending with it
}

// due returns the deliveries the server owes once it has read prefix (a prefix of the
// stream, read at once after a frame boundary): the complete frames in it, or for
// open_eof_check the whole prefix when it ends with the EOF.
func (p ftProto) due(prefix []byte) [][]byte {
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

// ftVarint is a package_length_func: a uvarint length of the body, then the body.
func ftVarint(data []byte) int {
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

func ftVarintFrame(body []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

// ftMagicFrame: "GS", a 4-byte big-endian body length at offset 2, 2 flag bytes, the body
// (package_length_offset 2, package_body_offset 8).
func ftMagicFrame(body []byte) []byte {
	f := make([]byte, 8+len(body))
	copy(f, "GS")
	binary.BigEndian.PutUint32(f[2:], uint32(len(body)))
	f[6], f[7] = 0xAB, 0xCD
	copy(f[8:], body)
	return f
}

func ftProtocols() []ftProto {
	long := bytes.Repeat([]byte("0123456789"), 5)
	bodies := [][]byte{{}, []byte("a"), []byte("hello, world"), long}
	enc := func(f func([]byte) []byte) [][]byte {
		var out [][]byte
		for _, b := range bodies {
			out = append(out, f(b))
		}
		return out
	}
	return []ftProto{
		{
			name:   "length_N_offset_2_body_8",
			set:    swoole.Settings{OpenLengthCheck: true, PackageLengthType: "N", PackageLengthOffset: 2, PackageBodyOffset: 8, PackageMaxLength: 1 << 16},
			frames: enc(ftMagicFrame),
		},
		{
			name:   "length_func_varint",
			set:    swoole.Settings{PackageLengthFunc: ftVarint, PackageMaxLength: 1 << 16},
			frames: enc(ftVarintFrame),
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

// TestSplitAtEveryByte writes each protocol's stream in two writes, split at every byte
// boundary in turn, and waits for the server to have read the first part before writing the
// second: the frames complete in the first part are delivered at once, the incomplete rest
// is held (recv_queued_bytes), and the second part completes them, byte-exact.
func TestSplitAtEveryByte(t *testing.T) {
	for _, pr := range ftProtocols() {
		t.Run(pr.name, func(t *testing.T) {
			set := pr.set
			set.OpenTCPNoDelay = true // the echo of several frames: no Nagle wait on delayed ACKs
			s := ftNew(t, "127.0.0.1", swoole.SockTCP, set)
			rec := ftEchoServer(s)
			ftStart(t, s)
			c := ftDial(t, s.Ports()[0])
			fd := ftFDOf(t, s, c)
			stream := ftJoin(pr.frames)
			var read int64
			delivered := 0
			for i := 1; i < len(stream); i++ {
				ftWrite(t, c, stream[:i])
				ftEventually(t, fmt.Sprintf("the server to read the first %d bytes", i), func() bool {
					return s.Stats().TotalRecvBytes == read+int64(i)
				})
				first := pr.due(stream[:i])
				held := i - len(ftJoin(first))
				ftEventually(t, fmt.Sprintf("split at %d: %d frames delivered and %d bytes held", i, len(first), held), func() bool {
					info, err := s.GetClientInfo(fd, -1, true)
					return err == nil && rec.count(fd) == delivered+len(first) && info.RecvQueuedBytes == held
				})
				ftWrite(t, c, stream[i:])
				want := pr.frames
				if pr.check != nil {
					// The first part went out whole if it ended with the EOF, the rest
					// goes out as one buffer.
					want = append([][]byte(nil), first...)
					if rest := stream[len(ftJoin(first)):]; len(rest) > 0 {
						want = append(want, rest)
					}
				}
				got := rec.waitFrames(t, fd, delivered+len(want))[delivered:]
				ftWantFrames(t, got, want)
				if echo := ftReadFull(t, c, len(stream)); !bytes.Equal(echo, stream) {
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

// TestWholeStreamAndBytewise writes many frames in a single write, then the same
// frames one byte per write (TCP_NODELAY): the split protocols deliver exactly one
// OnReceive per frame; open_eof_check delivers whole buffers that end with the EOF and
// together are the stream.
func TestWholeStreamAndBytewise(t *testing.T) {
	for _, pr := range ftProtocols() {
		t.Run(pr.name, func(t *testing.T) {
			s := ftNew(t, "127.0.0.1", swoole.SockTCP, pr.set)
			rec := ftEchoServer(s)
			ftStart(t, s)
			for _, mode := range []string{"one write", "byte by byte"} {
				c := ftDial(t, s.Ports()[0])
				fd := ftFDOf(t, s, c)
				var frames [][]byte
				reps := 200
				if mode == "byte by byte" {
					reps = 3
				}
				for range reps {
					frames = append(frames, pr.frames...)
				}
				stream := ftJoin(frames)
				if mode == "one write" {
					ftWrite(t, c, stream)
				} else {
					ftWriteBytewise(t, c, stream)
				}
				if echo := ftReadFull(t, c, len(stream)); !bytes.Equal(echo, stream) {
					t.Fatalf("%s: the echo differs from the stream", mode)
				}
				got := rec.got(fd)
				if pr.check == nil {
					ftWantFrames(t, got, frames)
					continue
				}
				for i, d := range got {
					if !bytes.HasSuffix(d, pr.check) {
						t.Fatalf("%s: delivery %d %q does not end with the EOF", mode, i, ftTrunc(d))
					}
				}
				if !bytes.Equal(ftJoin(got), stream) {
					t.Fatalf("%s: the deliveries do not add up to the stream", mode)
				}
				if mode == "one write" && len(got) > len(frames)/2 {
					t.Errorf("%s: %d deliveries for %d messages: open_eof_check should deliver whole buffers, not messages", mode, len(got), len(frames))
				}
			}
		})
	}
}

// TestLengthTypes runs open_length_check with every package_length_type, with the
// length at an offset behind a 3-byte prefix, counting the body only (package_body_offset =
// header size) and counting the whole frame (package_body_offset 0).
func TestLengthTypes(t *testing.T) {
	for _, typ := range []byte("cCsSnNlLqQJPvV") {
		for _, whole := range []bool{false, true} {
			name := fmt.Sprintf("%c/body", typ)
			if whole {
				name = fmt.Sprintf("%c/whole", typ)
			}
			t.Run(name, func(t *testing.T) {
				const off = 3
				hdr := off + ftLenSize(typ)
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
					ftPutLen(f[off:], typ, v)
					copy(f[hdr:], body)
					return f
				}
				s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{
					OpenLengthCheck: true, PackageLengthType: string(typ), PackageLengthOffset: off,
					PackageBodyOffset: bodyOff, PackageMaxLength: 4096,
				})
				rec := ftEchoServer(s)
				ftStart(t, s)
				var frames [][]byte
				for _, n := range []int{0, 1, 2, 100, 7} {
					frames = append(frames, encode(bytes.Repeat([]byte{byte('a' + n%26)}, n)))
				}
				stream := ftJoin(frames)
				c := ftDial(t, s.Ports()[0])
				fd := ftFDOf(t, s, c)
				ftWrite(t, c, stream)
				ftWriteBytewise(t, c, stream)
				ftReadFull(t, c, 2*len(stream))
				ftWantFrames(t, rec.got(fd), append(append([][]byte(nil), frames...), frames...))
			})
		}
	}
}

// TestManyFramesOneRead sends 2000 small frames in one write (the server reads them in
// one or a few reads): 2000 OnReceive calls, in order. The frames of one read are slices of
// one input buffer, one after the other (zero-copy), not copies made per frame.
func TestManyFramesOneRead(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, ftSettingsN(1<<16))
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
	ftStart(t, s)
	var want [][]byte
	for i := range 2000 {
		want = append(want, ftFrameN([]byte(fmt.Sprintf("frame %06d", i))))
	}
	c := ftDial(t, s.Ports()[0])
	ftWrite(t, c, ftJoin(want))
	if got := ftReadFull(t, c, 4); string(got) != "done" {
		t.Fatalf("got %q", got)
	}
	r := <-result
	spans, frames = r.spans, r.frames
	ftWantFrames(t, frames, want)
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

// ftBad is a misbehaving peer: what it sends, and the code the server logs when it closes
// the connection.
type ftBad struct {
	name string
	set  swoole.Settings
	send []byte
	code int
	// encode frames the healthy connection's messages in the same protocol.
	encode func([]byte) []byte
}

func ftBadPeers() []ftBad {
	hugeN := make([]byte, 4)
	binary.BigEndian.PutUint32(hugeN, math.MaxUint32)
	over := ftFrameN(nil)
	binary.BigEndian.PutUint32(over, 1024-4+1) // total 1025 with package_body_offset 4
	neg := make([]byte, 4)
	binary.NativeEndian.PutUint32(neg, uint32(0xFFFFFFF0)) // -16 as 'l'
	short := make([]byte, 4)
	binary.BigEndian.PutUint32(short, 2) // whole-frame length 2 < the 4-byte header
	eofN := func(b []byte) []byte { return append(bytes.Clone(b), '\n') }
	return []ftBad{
		{name: "length header above package_max_length", set: ftSettingsN(1024), send: over, code: swoole.ErrPackageLengthTooLarge, encode: ftFrameN},
		{name: "length header 4 GiB", set: ftSettingsN(1024), send: hugeN, code: swoole.ErrPackageLengthTooLarge, encode: ftFrameN},
		{name: "http request to a length port", set: ftSettingsN(1024), send: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), code: swoole.ErrPackageLengthTooLarge, encode: ftFrameN},
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
		{name: "length func says garbage", set: swoole.Settings{PackageLengthFunc: ftVarint, PackageMaxLength: 1024}, send: bytes.Repeat([]byte{0xFF}, 11),
			code: swoole.ErrPackageMalformedData, encode: ftVarintFrame},
		{name: "length func above package_max_length", set: swoole.Settings{PackageLengthFunc: ftVarint, PackageMaxLength: 1024}, send: binary.AppendUvarint(nil, 5000),
			code: swoole.ErrPackageLengthTooLarge, encode: ftVarintFrame},
		{name: "eof_split without EOF past package_max_length", set: swoole.Settings{OpenEOFSplit: true, PackageEOF: "\n", PackageMaxLength: 1024}, send: bytes.Repeat([]byte("x"), 3000),
			code: swoole.ErrPackageLengthTooLarge, encode: eofN},
		{name: "eof_check without EOF past package_max_length", set: swoole.Settings{OpenEOFCheck: true, PackageEOF: "\n", PackageMaxLength: 1024}, send: bytes.Repeat([]byte("x"), 3000),
			code: swoole.ErrPackageLengthTooLarge, encode: eofN},
		{name: "eof_split message longer than package_max_length", set: swoole.Settings{OpenEOFSplit: true, PackageEOF: "\n", PackageMaxLength: 1024}, send: append(bytes.Repeat([]byte("y"), 1500), '\n'),
			code: swoole.ErrPackageLengthTooLarge, encode: eofN},
	}
}

// TestBadPeers: a peer that breaks the framing (an oversized length header, sent
// without its body; a negative or too-small length; garbage; a buffer above
// package_max_length) is closed at once, with a logged reason carrying
// the code; OnClose runs once for it; a healthy connection of the same server echoes before
// and after, another echoes in the background all along, and new connections are served.
func TestBadPeers(t *testing.T) {
	for _, bad := range ftBadPeers() {
		t.Run(bad.name, func(t *testing.T) {
			logPath := filepath.Join(t.TempDir(), "server.log")
			set := bad.set
			set.LogFile, set.LogLevel = logPath, swoole.LogLevelWarning
			s := ftNew(t, "127.0.0.1", swoole.SockTCP, set)
			rec := ftEchoServer(s)
			ftStart(t, s)
			healthy := newI3Healthy(t, s.Ports()[0], bad.encode)
			mark, stop := ftEchoLoop(t, s.Ports()[0], bad.encode)
			c := ftDial(t, s.Ports()[0])
			fd := ftFDOf(t, s, c)
			healthy.check(t)
			ftWrite(t, c, bad.send)
			ftWantClosed(t, c)
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
			ftEventually(t, "the background echo to go on after the close", func() bool { return mark() > atClose+10 })
			stop()
			if n := len(rec.closes(fd)); n != 1 {
				t.Errorf("OnClose ran %d times for session %d", n, fd)
			}
			ftEventually(t, "the log to name the reason", func() bool {
				b, _ := os.ReadFile(logPath)
				return bytes.Contains(b, []byte(fmt.Sprintf("fd=%d", fd))) && bytes.Contains(b, []byte(fmt.Sprintf("code=%d", bad.code)))
			})
		})
	}
}

// TestMaxLengthBoundary: a frame of exactly package_max_length is delivered; one byte
// more closes the connection as soon as the header arrives (the body is never sent).
func TestMaxLengthBoundary(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, ftSettingsN(1024))
	rec := ftEchoServer(s)
	ftStart(t, s)
	c := ftDial(t, s.Ports()[0])
	fd := ftFDOf(t, s, c)
	exact := ftFrameN(bytes.Repeat([]byte("m"), 1020))
	ftWrite(t, c, exact)
	if got := ftReadFull(t, c, len(exact)); !bytes.Equal(got, exact) {
		t.Fatal("the frame of package_max_length bytes did not come back")
	}
	ftWantFrames(t, rec.got(fd), [][]byte{exact})
	ftWrite(t, c, ftFrameN(bytes.Repeat([]byte("m"), 1021))[:4])
	ftWantClosed(t, c)
}

// TestPortProtocols: each port frames its input its own way. The primary port splits
// on "\n"; a second port reads 'n' length frames (a "\n" inside a body is data) with its own
// OnReceive; a third port that never calls Set inherits the primary port's framing; a unix
// stream port uses a package_length_func; a UDP port of the same server gets whole datagrams,
// unframed.
func TestPortProtocols(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{OpenEOFSplit: true, PackageEOF: "\n"})
	rec := ftEchoServer(s)
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
	if err := unixPort.SetOptions(map[string]any{"package_length_func": ftVarint, "package_max_length": 4096}); err != nil {
		t.Fatal(err)
	}
	udp, err := s.AddListener("127.0.0.1", 0, swoole.SockUDP)
	if err != nil {
		t.Fatal(err)
	}
	packets := make(chan string, 4)
	udp.OnPacket(func(s *swoole.Server, data []byte, _ swoole.ClientAddr) { packets <- string(data) })
	ftStart(t, s)

	lines := []byte("a\nbb\n\nccc\n")
	wantLines := [][]byte{[]byte("a\n"), []byte("bb\n"), []byte("\n"), []byte("ccc\n")}

	c := ftDial(t, s.Ports()[0])
	fd := ftFDOf(t, s, c)
	ftWrite(t, c, lines)
	ftReadFull(t, c, len(lines))
	ftWantFrames(t, rec.got(fd), wantLines)

	ci := ftDial(t, inherit)
	fdi := ftFDOf(t, s, ci)
	ftWriteBytewise(t, ci, lines)
	ftReadFull(t, ci, len(lines))
	ftWantFrames(t, rec.got(fdi), wantLines)

	cl := ftDial(t, lenPort)
	fdl := ftFDOf(t, s, cl)
	lf := func(b string) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...) }
	wantLen := [][]byte{lf("x\ny\n"), lf(""), lf("\n")}
	ftWrite(t, cl, ftJoin(wantLen))
	ftReadFull(t, cl, len(ftJoin(wantLen)))
	ftWantFrames(t, lenRec.got(fdl), wantLen)
	if n := rec.count(fdl); n != 0 {
		t.Errorf("the server's OnReceive ran %d times for the port with its own handler", n)
	}

	cu := ftDial(t, unixPort)
	wantU := [][]byte{ftVarintFrame([]byte("u\nv")), ftVarintFrame(bytes.Repeat([]byte("w"), 300))}
	ftWriteBytewise(t, cu, ftJoin(wantU))
	if got := ftReadFull(t, cu, len(ftJoin(wantU))); !bytes.Equal(got, ftJoin(wantU)) {
		t.Fatalf("unix port echo %q", got)
	}
	var fdu int64
	for id := range s.Connections() {
		if info, err := s.GetClientInfo(id, -1, true); err == nil && info.ServerPort == 0 && info.SocketType == int(swoole.SockUnixStream) {
			fdu = id
		}
	}
	ftWantFrames(t, rec.got(fdu), wantU)

	uc := ftDial(t, udp)
	ftWrite(t, uc, []byte("p\nq\nr"))
	if got := <-packets; got != "p\nq\nr" {
		t.Errorf("UDP port delivered %q, want the whole datagram", got)
	}
}

// TestFramingConfigErrors: framing settings that do not fit together are refused when
// they are set.
func TestFramingConfigErrors(t *testing.T) {
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
		{"func and eof split", map[string]any{"open_eof_split": true, "package_length_func": ftVarint}, "open_length_check"},
		{"negative offset", map[string]any{"open_length_check": true, "package_length_offset": -1}, "package_length_offset"},
	} {
		err := s.SetOptions(tc.opts)
		ftWantCode(t, s, tc.name, err, swoole.ErrInvalidParams)
		if err != nil && !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: %v does not name %s", tc.name, err, tc.key)
		}
	}
	// The refused settings changed nothing: the server starts and frames nothing.
	if err := s.Set(ftQuiet); err != nil {
		t.Fatal(err)
	}
	rec := ftEchoServer(s)
	ftStart(t, s)
	c := ftDial(t, s.Ports()[0])
	ftWrite(t, c, []byte("raw"))
	ftReadFull(t, c, 3)
	if got := rec.got(ftFDOf(t, s, c)); len(got) != 1 || string(got[0]) != "raw" {
		t.Errorf("got %q", got)
	}
}

// TestBadHeaderBytewise: an oversized or malformed length header that trickles in one
// byte per segment closes the connection as soon as it is complete, like one sent at once.
func TestBadHeaderBytewise(t *testing.T) {
	for _, bad := range ftBadPeers() {
		if len(bad.send) > 64 {
			continue
		}
		t.Run(bad.name, func(t *testing.T) {
			s := ftNew(t, "127.0.0.1", swoole.SockTCP, bad.set)
			rec := ftEchoServer(s)
			ftStart(t, s)
			healthy := newI3Healthy(t, s.Ports()[0], bad.encode)
			c := ftDial(t, s.Ports()[0])
			fd := ftFDOf(t, s, c)
			for i := range bad.send {
				if _, err := c.Write(bad.send[i : i+1]); err != nil {
					break // closed by the server before the rest was written
				}
				healthy.check(t)
			}
			ftWantClosed(t, c)
			rec.waitClosed(t, fd)
			healthy.check(t)
		})
	}
}

// TestLargeFrames: frames far larger than one read (the loop reads 64 KiB at a time)
// are assembled whole, between small ones, in the length and EOF modes.
func TestLargeFrames(t *testing.T) {
	big := ftPattern(9, 1<<20+17)
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
		{"length", ftSettingsN(2 << 20), ftFrameN},
		{"func", swoole.Settings{PackageLengthFunc: ftVarint, PackageMaxLength: 2 << 20}, ftVarintFrame},
		{"eof_split", swoole.Settings{OpenEOFSplit: true, PackageEOF: "\n", PackageMaxLength: 2 << 20}, func(b []byte) []byte { return append(bytes.Clone(b), '\n') }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ftNew(t, "127.0.0.1", swoole.SockTCP, tc.set)
			rec := ftEchoServer(s)
			ftStart(t, s)
			c := ftDial(t, s.Ports()[0])
			fd := ftFDOf(t, s, c)
			frames := [][]byte{tc.encode([]byte("small")), tc.encode(big), tc.encode([]byte("x")), tc.encode(big[:70000]), tc.encode([]byte("end"))}
			stream := ftJoin(frames)
			go func() { _, _ = c.Write(stream) }() // the echo comes back while we write
			got := ftReadFull(t, c, len(stream))
			if i := ftFirstDiff(got, stream); i >= 0 {
				t.Fatalf("echo differs at %d", i)
			}
			ftWantFrames(t, rec.got(fd), frames)
		})
	}
}

// TestCloseInsideReceive: a callback that closes its connection stops the delivery of
// the frames that came with the same read; OnClose runs once, with reactorID -1.
func TestCloseInsideReceive(t *testing.T) {
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, ftSettingsN(1024))
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
	ftStart(t, s)
	c := ftDial(t, s.Ports()[0])
	fd := ftFDOf(t, s, c)
	frames := [][]byte{ftFrameN([]byte("a")), ftFrameN([]byte("close")), ftFrameN([]byte("b")), ftFrameN([]byte("c"))}
	ftWrite(t, c, ftJoin(frames))
	ftWantClosed(t, c)
	if id := rec.waitClosed(t, fd); id != -1 {
		t.Errorf("OnClose reactorID %d, want -1", id)
	}
	ftWantFrames(t, rec.got(fd), frames[:2])
	if n := len(rec.closes(fd)); n != 1 {
		t.Errorf("OnClose ran %d times", n)
	}
}

// TestFramedEchoAllocs locks in an allocation-free framed path: a round trip of
// length-prefixed frames (whole frames in one read: delivered from the read buffer; a frame
// split across two reads: completed in the connection's pooled input buffer) allocates
// nothing, client included.
func TestFramedEchoAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{OpenLengthCheck: true, PackageLengthType: "N", PackageBodyOffset: 4, OpenTCPNoDelay: true})
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) { _ = s.Send(fd, data) })
	ftStart(t, s)
	c := ftDial(t, s.Ports()[0])
	f := ftFrameN(make([]byte, 60)) // 64-byte frames
	whole := bytes.Repeat(f, 4)
	buf := make([]byte, len(whole))
	_ = c.SetDeadline(time.Now().Add(ftTimeout))
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
