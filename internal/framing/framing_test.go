package framing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// result is what feeding a stream to a decoder produced.
type result struct {
	frames [][]byte
	err    error
	rest   []byte // unconsumed input at the end (when err == nil)
}

// feed simulates a connection: the stream arrives in chunks (chunk sizes from sizes, the
// last one repeated), each is appended to a buffer that starts at a frame boundary, and
// Next is called until it returns 0 or an error. Frames are consumed from the front.
func feed(t testing.TB, cfg *Config, stream []byte, sizes ...int) result {
	t.Helper()
	d := NewDecoder(cfg)
	var buf []byte
	var res result
	si := 0
	for len(stream) > 0 {
		sz := sizes[min(si, len(sizes)-1)]
		si++
		sz = min(max(sz, 1), len(stream))
		buf = append(buf, stream[:sz]...)
		stream = stream[sz:]
		for len(buf) > 0 {
			n, err := d.Next(buf)
			if n < 0 || n > len(buf) {
				t.Fatalf("Next returned n=%d with len(buf)=%d", n, len(buf))
			}
			if err != nil {
				if n != 0 {
					t.Fatalf("Next returned n=%d with error %v", n, err)
				}
				res.err = err
				return res
			}
			if n == 0 {
				break
			}
			res.frames = append(res.frames, append([]byte(nil), buf[:n]...))
			// compact the buffer like a connection would
			m := copy(buf, buf[n:])
			buf = buf[:m]
		}
	}
	res.rest = buf
	return res
}

func sameResult(a, b result) bool {
	if !errors.Is(a.err, b.err) || !errors.Is(b.err, a.err) || len(a.frames) != len(b.frames) {
		return false
	}
	for i := range a.frames {
		if !bytes.Equal(a.frames[i], b.frames[i]) {
			return false
		}
	}
	return a.err != nil || bytes.Equal(a.rest, b.rest)
}

func (r result) String() string {
	var s strings.Builder
	for _, f := range r.frames {
		fmt.Fprintf(&s, "%q ", f)
	}
	fmt.Fprintf(&s, "err=%v rest=%q", r.err, r.rest)
	return s.String()
}

// checkAllSplits feeds stream whole, byte by byte, and split in two at every point, and
// checks that every run gives want.
func checkAllSplits(t *testing.T, cfg *Config, stream []byte, want result) {
	t.Helper()
	if got := feed(t, cfg, stream, len(stream)); !sameResult(got, want) {
		t.Errorf("whole: got %v, want %v", got, want)
	}
	if got := feed(t, cfg, stream, 1); !sameResult(got, want) {
		t.Errorf("byte by byte: got %v, want %v", got, want)
	}
	for i := 1; i < len(stream); i++ {
		if got := feed(t, cfg, stream, i, len(stream)); !sameResult(got, want) {
			t.Errorf("split at %d: got %v, want %v", i, got, want)
		}
	}
}

func frames(fs ...string) [][]byte {
	out := make([][]byte, len(fs))
	for i, f := range fs {
		out[i] = []byte(f)
	}
	return out
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error, "" for nil
	}{
		{"none", Config{}, ""},
		{"unknown mode", Config{Mode: 9, MaxLength: 10}, "unknown mode"},
		{"eof ok", Config{Mode: ModeEOFSplit, EOF: []byte("\r\n"), MaxLength: 10}, ""},
		{"eof 8 bytes", Config{Mode: ModeEOFCheck, EOF: []byte("12345678"), MaxLength: 10}, ""},
		{"eof empty", Config{Mode: ModeEOFSplit, MaxLength: 10}, "package_eof is empty"},
		{"eof 9 bytes", Config{Mode: ModeEOFCheck, EOF: []byte("123456789"), MaxLength: 10}, "at most 8"},
		{"eof max 0", Config{Mode: ModeEOFCheck, EOF: []byte("\n")}, "package_max_length 0"},
		{"length ok", Config{Mode: ModeLength, LengthType: 'N', MaxLength: 10}, ""},
		{"length type unknown", Config{Mode: ModeLength, LengthType: 'x', MaxLength: 10}, "package_length_type 'x'"},
		{"length type zero", Config{Mode: ModeLength, MaxLength: 10}, "package_length_type"},
		{"length offset negative", Config{Mode: ModeLength, LengthType: 'N', LengthOffset: -1, MaxLength: 10}, "package_length_offset -1"},
		{"body offset negative", Config{Mode: ModeLength, LengthType: 'N', BodyOffset: -1, MaxLength: 10}, "package_body_offset -1"},
		{"length max negative", Config{Mode: ModeLength, LengthType: 'N', MaxLength: -5}, "package_max_length -5"},
		{"header above max", Config{Mode: ModeLength, LengthType: 'N', LengthOffset: 7, MaxLength: 10}, "exceeds package_max_length"},
		{"header at max", Config{Mode: ModeLength, LengthType: 'N', LengthOffset: 6, MaxLength: 10}, ""},
		{"body offset above max", Config{Mode: ModeLength, LengthType: 'N', BodyOffset: 11, MaxLength: 10}, "package_body_offset 11 exceeds"},
		{"func ok", Config{Mode: ModeFunc, LengthFunc: func([]byte) int { return 0 }, MaxLength: 10}, ""},
		{"func nil", Config{Mode: ModeFunc, MaxLength: 10}, "package_length_func is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestHeaderLen(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want int
	}{
		{"none", Config{}, 0},
		{"eof", Config{Mode: ModeEOFSplit, EOF: []byte("\n")}, 0},
		{"func", Config{Mode: ModeFunc}, 0},
		{"C", Config{Mode: ModeLength, LengthType: 'C'}, 1},
		{"n at 3", Config{Mode: ModeLength, LengthType: 'n', LengthOffset: 3}, 5},
		{"N at 8", Config{Mode: ModeLength, LengthType: 'N', LengthOffset: 8}, 12},
		{"J", Config{Mode: ModeLength, LengthType: 'J'}, 8},
		{"unknown type", Config{Mode: ModeLength, LengthType: 'z'}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.HeaderLen(); got != tt.want {
				t.Fatalf("HeaderLen() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{ModeNone: "none", ModeEOFCheck: "open_eof_check",
		ModeEOFSplit: "open_eof_split", ModeLength: "open_length_check", ModeFunc: "package_length_func", 7: "Mode(7)"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", m, got, want)
		}
	}
}

// header encodes v as length type typ.
func header(typ byte, v int64) []byte {
	b := make([]byte, lengthSize(typ))
	switch typ {
	case 'c', 'C':
		b[0] = byte(v)
	case 's', 'S':
		binary.NativeEndian.PutUint16(b, uint16(v))
	case 'n':
		binary.BigEndian.PutUint16(b, uint16(v))
	case 'v':
		binary.LittleEndian.PutUint16(b, uint16(v))
	case 'l', 'L':
		binary.NativeEndian.PutUint32(b, uint32(v))
	case 'N':
		binary.BigEndian.PutUint32(b, uint32(v))
	case 'V':
		binary.LittleEndian.PutUint32(b, uint32(v))
	case 'q', 'Q':
		binary.NativeEndian.PutUint64(b, uint64(v))
	case 'J':
		binary.BigEndian.PutUint64(b, uint64(v))
	case 'P':
		binary.LittleEndian.PutUint64(b, uint64(v))
	}
	return b
}

func TestLengthTypes(t *testing.T) {
	tests := []struct {
		name string
		typ  byte
		raw  []byte // the header bytes
		want int    // frame size, or -1 for an error
		err  error
	}{
		{"c", 'c', []byte{5}, 5, nil},
		{"c max", 'c', []byte{127}, 127, nil},
		{"c negative", 'c', []byte{0xff}, -1, ErrMalformed},
		{"c min", 'c', []byte{0x80}, -1, ErrMalformed},
		{"C", 'C', []byte{200}, 200, nil},
		{"C 255", 'C', []byte{0xff}, 255, nil},
		{"s", 's', header('s', 300), 300, nil},
		{"s negative", 's', header('s', -2), -1, ErrMalformed},
		{"S 65535", 'S', header('S', 65535), 65535, nil},
		{"n", 'n', []byte{0x01, 0x02}, 0x0102, nil},
		{"n ffff", 'n', []byte{0xff, 0xff}, 0xffff, nil},
		{"v", 'v', []byte{0x02, 0x01}, 0x0102, nil},
		{"N", 'N', []byte{0, 0, 0x01, 0x02}, 0x0102, nil},
		{"N high bit is unsigned", 'N', []byte{0x80, 0, 0, 0}, -1, ErrTooLarge},
		{"V", 'V', []byte{0x02, 0x01, 0, 0}, 0x0102, nil},
		{"l", 'l', header('l', 70000), 70000, nil},
		{"l negative", 'l', header('l', -70000), -1, ErrMalformed},
		{"l -1", 'l', []byte{0xff, 0xff, 0xff, 0xff}, -1, ErrMalformed},
		{"L", 'L', header('L', 70000), 70000, nil},
		{"L ffffffff", 'L', []byte{0xff, 0xff, 0xff, 0xff}, -1, ErrTooLarge},
		{"q", 'q', header('q', 99), 99, nil},
		{"q negative", 'q', header('q', -1), -1, ErrMalformed},
		{"Q", 'Q', header('Q', 99), 99, nil},
		{"Q all ones", 'Q', header('Q', -1), -1, ErrTooLarge},
		{"J", 'J', []byte{0, 0, 0, 0, 0, 0, 0x01, 0x02}, 0x0102, nil},
		{"J top bit", 'J', []byte{0x80, 0, 0, 0, 0, 0, 0, 0}, -1, ErrTooLarge},
		{"P", 'P', []byte{0x02, 0x01, 0, 0, 0, 0, 0, 0}, 0x0102, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.raw) != lengthSize(tt.typ) {
				t.Fatalf("bad test: %d header bytes for %q", len(tt.raw), tt.typ)
			}
			cfg := &Config{Mode: ModeLength, LengthType: tt.typ, MaxLength: 1 << 20}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			d := NewDecoder(cfg)
			// header only
			n, err := d.Next(tt.raw)
			if tt.err != nil {
				if n != 0 || !errors.Is(err, tt.err) {
					t.Fatalf("Next = %d, %v; want 0, %v", n, err, tt.err)
				}
				return
			}
			if want := 0; tt.want == len(tt.raw) {
				want = tt.want
				if n != want || err != nil {
					t.Fatalf("Next(header) = %d, %v; want %d, nil", n, err, want)
				}
			} else if n != 0 || err != nil || d.Need() != tt.want {
				t.Fatalf("Next(header) = %d, %v, Need %d; want 0, nil, Need %d", n, err, d.Need(), tt.want)
			}
			frame := append(append([]byte(nil), tt.raw...), make([]byte, tt.want-len(tt.raw)+3)...)
			if n, err := d.Next(frame[:tt.want-1]); n != 0 || err != nil {
				t.Fatalf("Next(size-1) = %d, %v; want 0, nil", n, err)
			}
			if n, err := d.Next(frame); n != tt.want || err != nil {
				t.Fatalf("Next(frame+3) = %d, %v; want %d, nil", n, err, tt.want)
			}
			if d.Need() != 0 {
				t.Fatalf("Need() = %d after a complete frame, want 0", d.Need())
			}
		})
	}
}

func TestLengthOffsets(t *testing.T) {
	// Swoole's documented example: 16-byte header type|uid|length|serid, length counts the body.
	swooleHdr := func(body string) []byte {
		b := make([]byte, 16)
		binary.BigEndian.PutUint32(b[0:], 7)
		binary.BigEndian.PutUint32(b[4:], 42)
		binary.BigEndian.PutUint32(b[8:], uint32(len(body)))
		binary.BigEndian.PutUint32(b[12:], 1)
		return append(b, body...)
	}
	tests := []struct {
		name   string
		cfg    Config
		stream []byte
		want   result
	}{
		{
			"body offset = header size (length counts body)",
			Config{Mode: ModeLength, LengthType: 'N', BodyOffset: 4, MaxLength: 100},
			[]byte("\x00\x00\x00\x03abc\x00\x00\x00\x00\x00\x00\x00\x01z"),
			result{frames: frames("\x00\x00\x00\x03abc", "\x00\x00\x00\x00", "\x00\x00\x00\x01z")},
		},
		{
			"body offset 0 (length counts whole frame)",
			Config{Mode: ModeLength, LengthType: 'N', MaxLength: 100},
			[]byte("\x00\x00\x00\x07abc\x00\x00\x00\x04\x00\x00\x00\x05z"),
			result{frames: frames("\x00\x00\x00\x07abc", "\x00\x00\x00\x04", "\x00\x00\x00\x05z")},
		},
		{
			"body offset 0, length smaller than header",
			Config{Mode: ModeLength, LengthType: 'N', MaxLength: 100},
			[]byte("\x00\x00\x00\x05a\x00\x00\x00\x03xyz"),
			result{frames: frames("\x00\x00\x00\x05a"), err: ErrMalformed},
		},
		{
			"body offset 0, length 0",
			Config{Mode: ModeLength, LengthType: 'n', MaxLength: 100},
			[]byte("\x00\x00"),
			result{err: ErrMalformed},
		},
		{
			"length offset 2, body offset 0",
			Config{Mode: ModeLength, LengthType: 'n', LengthOffset: 2, MaxLength: 100},
			[]byte("AB\x00\x05xAB\x00\x04"),
			result{frames: frames("AB\x00\x05x", "AB\x00\x04")},
		},
		{
			"length offset 2, body offset 4",
			Config{Mode: ModeLength, LengthType: 'v', LengthOffset: 2, BodyOffset: 4, MaxLength: 100},
			[]byte("AB\x01\x00xAB\x00\x00AB\x02"),
			result{frames: frames("AB\x01\x00x", "AB\x00\x00"), rest: []byte("AB\x02")},
		},
		{
			"body offset between header and length (length counts part of body)",
			Config{Mode: ModeLength, LengthType: 'C', BodyOffset: 3, MaxLength: 100},
			[]byte("\x02xyab\x00xy"),
			result{frames: frames("\x02xyab", "\x00xy")},
		},
		{
			"swoole example offset 8 body 16",
			Config{Mode: ModeLength, LengthType: 'N', LengthOffset: 8, BodyOffset: 16, MaxLength: 81920},
			append(append(swooleHdr("hello"), swooleHdr("")...), swooleHdr("world!")...),
			result{frames: [][]byte{swooleHdr("hello"), swooleHdr(""), swooleHdr("world!")}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			checkAllSplits(t, &tt.cfg, tt.stream, tt.want)
		})
	}
}

func TestMaxLength(t *testing.T) {
	lenFunc := func(b []byte) int { // one-byte length of the whole frame
		if len(b) < 1 {
			return 0
		}
		return int(b[0])
	}
	body := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name   string
		cfg    Config
		stream string
		want   result
	}{
		{"length at limit", Config{Mode: ModeLength, LengthType: 'C', MaxLength: 10}, "\x0a" + body(9), result{frames: frames("\x0a" + body(9))}},
		{"length one above", Config{Mode: ModeLength, LengthType: 'C', MaxLength: 10}, "\x0b" + body(10), result{err: ErrTooLarge}},
		{"length one above, header only", Config{Mode: ModeLength, LengthType: 'C', MaxLength: 10}, "\x0b", result{err: ErrTooLarge}},
		{"length body offset at limit", Config{Mode: ModeLength, LengthType: 'C', BodyOffset: 1, MaxLength: 10}, "\x09" + body(9), result{frames: frames("\x09" + body(9))}},
		{"length body offset one above", Config{Mode: ModeLength, LengthType: 'C', BodyOffset: 1, MaxLength: 10}, "\x0a", result{err: ErrTooLarge}},
		{"length second frame too large", Config{Mode: ModeLength, LengthType: 'C', MaxLength: 10}, "\x02x\x0b", result{frames: frames("\x02x"), err: ErrTooLarge}},
		{"split at limit", Config{Mode: ModeEOFSplit, EOF: []byte("\r\n"), MaxLength: 10}, body(8) + "\r\n", result{frames: frames(body(8) + "\r\n")}},
		{"split one above", Config{Mode: ModeEOFSplit, EOF: []byte("\r\n"), MaxLength: 10}, body(9) + "\r\n", result{err: ErrTooLarge}},
		{"split no eof below limit", Config{Mode: ModeEOFSplit, EOF: []byte("\r\n"), MaxLength: 10}, body(9), result{rest: []byte(body(9))}},
		{"split no eof at limit", Config{Mode: ModeEOFSplit, EOF: []byte("\r\n"), MaxLength: 10}, body(10), result{err: ErrTooLarge}},
		{"split partial eof at limit", Config{Mode: ModeEOFSplit, EOF: []byte("\r\n"), MaxLength: 10}, body(9) + "\r", result{err: ErrTooLarge}},
		{"split small frames beyond limit", Config{Mode: ModeEOFSplit, EOF: []byte("\n"), MaxLength: 4}, "ab\ncd\nefg\nh", result{frames: frames("ab\n", "cd\n", "efg\n"), rest: []byte("h")}},
		{"check at limit", Config{Mode: ModeEOFCheck, EOF: []byte("\r\n"), MaxLength: 10}, body(8) + "\r\n", result{frames: frames(body(8) + "\r\n")}},
		{"check no eof at limit", Config{Mode: ModeEOFCheck, EOF: []byte("\r\n"), MaxLength: 10}, body(10), result{err: ErrTooLarge}},
		{"check one above", Config{Mode: ModeEOFCheck, EOF: []byte("\r\n"), MaxLength: 10}, body(9) + "\r\n", result{err: ErrTooLarge}},
		{"func at limit", Config{Mode: ModeFunc, LengthFunc: lenFunc, MaxLength: 10}, "\x0a" + body(9), result{frames: frames("\x0a" + body(9))}},
		{"func one above", Config{Mode: ModeFunc, LengthFunc: lenFunc, MaxLength: 10}, "\x0b", result{err: ErrTooLarge}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			checkAllSplits(t, &tt.cfg, []byte(tt.stream), tt.want)
		})
	}
}

// TestThreeFramesEveryBoundary feeds a stream of three frames whole, one byte at a time and
// split at every byte, in every mode.
func TestThreeFramesEveryBoundary(t *testing.T) {
	varint := func(b []byte) int { // uvarint body length + body
		v, k := binary.Uvarint(b)
		if k == 0 {
			return 0
		}
		if k < 0 {
			return -1
		}
		return k + int(v)
	}
	tests := []struct {
		name   string
		cfg    Config
		frames []string
		rest   string
	}{
		{"length N body offset 4", Config{Mode: ModeLength, LengthType: 'N', BodyOffset: 4, MaxLength: 1000},
			[]string{"\x00\x00\x00\x05hello", "\x00\x00\x00\x00", "\x00\x00\x00\x03abc"}, "\x00\x00"},
		{"length c offset 3", Config{Mode: ModeLength, LengthType: 'c', LengthOffset: 3, MaxLength: 1000},
			[]string{"abc\x05x", "abc\x04", "abc\x07xyz"}, "ab"},
		{"length J body offset 8", Config{Mode: ModeLength, LengthType: 'J', BodyOffset: 8, MaxLength: 1000},
			[]string{"\x00\x00\x00\x00\x00\x00\x00\x01!", "\x00\x00\x00\x00\x00\x00\x00\x02!!", "\x00\x00\x00\x00\x00\x00\x00\x00"}, "\x00\x00\x00\x00\x00\x00\x00\x09abc"},
		{"eof split CRLFCRLF", Config{Mode: ModeEOFSplit, EOF: []byte("\r\n\r\n"), MaxLength: 1000},
			[]string{"GET / HTTP/1.1\r\n\r\n", "\r\n\r\r\n\r\n", "a\r\r\n\r\n"}, "b\r\n\r"},
		{"eof split one byte", Config{Mode: ModeEOFSplit, EOF: []byte("\n"), MaxLength: 1000},
			[]string{"line one\n", "\n", "three\n"}, "x"},
		{"eof split self overlapping", Config{Mode: ModeEOFSplit, EOF: []byte("aab"), MaxLength: 1000},
			[]string{"aaab", "xaab", "aaaaab"}, "aa"},
		{"eof split 8 bytes", Config{Mode: ModeEOFSplit, EOF: []byte("--END--\n"), MaxLength: 1000},
			[]string{"one--END--\n", "--END--\n", "t--END-wo--END--\n"}, "--END--"},
		{"func varint", Config{Mode: ModeFunc, LengthFunc: varint, MaxLength: 1000},
			[]string{"\x03abc", "\x00", "\x81\x01" + strings.Repeat("z", 129)}, "\x05ab"},
		{"none", Config{Mode: ModeNone}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			stream := strings.Join(tt.frames, "") + tt.rest
			want := result{frames: frames(tt.frames...), rest: []byte(tt.rest)}
			if tt.cfg.Mode == ModeNone {
				stream = "arbitrary bytes"
				if got := feed(t, &tt.cfg, []byte(stream), 1); len(got.frames) != len(stream) || len(got.rest) != 0 {
					t.Fatalf("none, byte by byte: %v", got)
				}
				want = result{frames: frames(stream)}
				if got := feed(t, &tt.cfg, []byte(stream), len(stream)); !sameResult(got, want) {
					t.Fatalf("none, whole: %v", got)
				}
				return
			}
			checkAllSplits(t, &tt.cfg, []byte(stream), want)
		})
	}
}

func TestEOFCheck(t *testing.T) {
	cfg := &Config{Mode: ModeEOFCheck, EOF: []byte("\r\n"), MaxLength: 100}
	tests := []struct {
		name  string
		sizes []int
		want  result
	}{
		{"whole", []int{100}, result{frames: frames("a\r\nb\r\n")}},
		{"byte by byte", []int{1}, result{frames: frames("a\r\n", "b\r\n")}},
		{"split inside eof", []int{2, 2, 100}, result{frames: frames("a\r\nb\r\n")}},
		{"split after eof", []int{3, 100}, result{frames: frames("a\r\n", "b\r\n")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := feed(t, cfg, []byte("a\r\nb\r\n"), tt.sizes...); !sameResult(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("not at end", func(t *testing.T) {
		d := NewDecoder(cfg)
		if n, err := d.Next([]byte("a\r\nb")); n != 0 || err != nil {
			t.Fatalf("Next = %d, %v; want 0, nil", n, err)
		}
		if n, err := d.Next(nil); n != 0 || err != nil {
			t.Fatalf("Next(nil) = %d, %v; want 0, nil", n, err)
		}
	})
}

func TestManyFramesOneBuffer(t *testing.T) {
	var lengthStream, eofStream []byte
	const count = 1000
	for i := range count {
		body := strings.Repeat("x", i%37)
		lengthStream = append(lengthStream, header('n', int64(len(body)))...)
		lengthStream = append(lengthStream, body...)
		eofStream = append(eofStream, body+"\r\n"...)
	}
	tests := []struct {
		name   string
		cfg    Config
		stream []byte
	}{
		{"length", Config{Mode: ModeLength, LengthType: 'n', BodyOffset: 2, MaxLength: 100}, lengthStream},
		{"eof split", Config{Mode: ModeEOFSplit, EOF: []byte("\r\n"), MaxLength: 100}, eofStream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(&tt.cfg)
			buf := tt.stream
			for i := range count {
				n, err := d.Next(buf)
				if err != nil || n != 2+i%37 {
					t.Fatalf("frame %d: Next = %d, %v; want %d", i, n, err, 2+i%37)
				}
				buf = buf[n:]
			}
			if len(buf) != 0 {
				t.Fatalf("%d bytes left", len(buf))
			}
			if n, err := d.Next(buf); n != 0 || err != nil {
				t.Fatalf("Next(empty) = %d, %v", n, err)
			}
		})
	}
}

func TestGarbage(t *testing.T) {
	garbage := []byte("\xff\xfe\x00\x80garbage\x01\x02\x03\x04\x05\x06\x07\x08\x09 no delimiter here at all ....")
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"length N", Config{Mode: ModeLength, LengthType: 'N', MaxLength: 1 << 20}, ErrTooLarge},
		{"length l negative", Config{Mode: ModeLength, LengthType: 'l', MaxLength: 1 << 30}, ErrMalformed},
		{"length c negative", Config{Mode: ModeLength, LengthType: 'c', MaxLength: 1 << 30}, ErrMalformed},
		{"length C at offset 2 too small", Config{Mode: ModeLength, LengthType: 'C', LengthOffset: 2, MaxLength: 1 << 30}, ErrMalformed},
		{"eof split", Config{Mode: ModeEOFSplit, EOF: []byte("\r\n"), MaxLength: 32}, ErrTooLarge},
		{"eof check", Config{Mode: ModeEOFCheck, EOF: []byte("\r\n"), MaxLength: 32}, ErrTooLarge},
		{"func negative", Config{Mode: ModeFunc, LengthFunc: func([]byte) int { return -1 }, MaxLength: 32}, ErrMalformed},
		{"func never decides", Config{Mode: ModeFunc, LengthFunc: func([]byte) int { return 0 }, MaxLength: 32}, ErrTooLarge},
		{"func huge", Config{Mode: ModeFunc, LengthFunc: func([]byte) int { return 1 << 40 }, MaxLength: 32}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			checkAllSplits(t, &tt.cfg, garbage, result{err: tt.want})
		})
	}
}

func TestNeedAndFuncCaching(t *testing.T) {
	calls := 0
	cfg := &Config{Mode: ModeFunc, MaxLength: 100, LengthFunc: func(b []byte) int {
		calls++
		if len(b) < 2 {
			return 0
		}
		return int(b[0])
	}}
	d := NewDecoder(cfg)
	steps := []struct {
		buf       string
		n, need   int
		wantCalls int
	}{
		{"\x05", 0, 0, 1},
		{"\x05x", 0, 5, 2},
		{"\x05xy", 0, 5, 2},
		{"\x05xyz", 0, 5, 2},
		{"\x05xyzw!", 5, 0, 2},
		{"!", 0, 0, 3},
	}
	for i, s := range steps {
		n, err := d.Next([]byte(s.buf))
		if err != nil || n != s.n || d.Need() != s.need || calls != s.wantCalls {
			t.Fatalf("step %d: Next = %d, %v, Need %d, calls %d; want %d, nil, Need %d, calls %d",
				i, n, err, d.Need(), calls, s.n, s.need, s.wantCalls)
		}
	}
	d.Next([]byte("\x09x"))
	if d.Need() != 9 {
		t.Fatalf("Need = %d, want 9", d.Need())
	}
	d.Reset()
	if d.Need() != 0 {
		t.Fatalf("Need after Reset = %d, want 0", d.Need())
	}

	ld := NewDecoder(&Config{Mode: ModeLength, LengthType: 'n', LengthOffset: 1, MaxLength: 100})
	for _, s := range []struct {
		buf     string
		n, need int
	}{{"", 0, 0}, {"h", 0, 0}, {"h\x00", 0, 0}, {"h\x00\x04", 0, 4}, {"h\x00\x04x", 4, 0}} {
		if n, err := ld.Next([]byte(s.buf)); err != nil || n != s.n || ld.Need() != s.need {
			t.Fatalf("length %q: Next = %d, %v, Need %d; want %d, nil, Need %d", s.buf, n, err, ld.Need(), s.n, s.need)
		}
	}
}

// TestEOFScanResumes checks that a slowly growing buffer is not rescanned from the start.
func TestEOFScanResumes(t *testing.T) {
	cfg := &Config{Mode: ModeEOFSplit, EOF: []byte("\r\n\r\n"), MaxLength: 1 << 20}
	d := NewDecoder(cfg)
	buf := []byte("GET / HTTP/1.1\r\nHost: x\r\n")
	if n, err := d.Next(buf); n != 0 || err != nil {
		t.Fatal(n, err)
	}
	if d.scanned != len(buf) {
		t.Fatalf("scanned = %d, want %d", d.scanned, len(buf))
	}
	buf = append(buf, "\r"...)
	d.Next(buf)
	buf = append(buf, "\nrest"...)
	if n, err := d.Next(buf); n != len(buf)-4 || err != nil {
		t.Fatalf("Next = %d, %v; want %d", n, err, len(buf)-4)
	}
	if d.scanned != 0 {
		t.Fatalf("scanned = %d after a frame, want 0", d.scanned)
	}
	// A buffer that shrank without Reset must not panic.
	d.scanned = 1000
	if n, err := d.Next([]byte("ab\r\n\r\n")); n != 6 || err != nil {
		t.Fatalf("Next after shrink = %d, %v", n, err)
	}
}

func TestZeroDecoder(t *testing.T) {
	var d Decoder
	if n, err := d.Next([]byte("abc")); n != 3 || err != nil {
		t.Fatalf("zero Decoder Next = %d, %v", n, err)
	}
	if d.Config() != nil {
		t.Fatal("zero Decoder has a Config")
	}
	none := NewDecoder(&Config{})
	if n, err := none.Next(nil); n != 0 || err != nil {
		t.Fatalf("ModeNone Next(nil) = %d, %v", n, err)
	}
}

func TestNextAllocs(t *testing.T) {
	lenFunc := func(b []byte) int {
		if len(b) < 1 {
			return 0
		}
		return int(b[0])
	}
	tests := []struct {
		name string
		cfg  Config
		buf  string
	}{
		{"none", Config{}, "abc"},
		{"eof check", Config{Mode: ModeEOFCheck, EOF: []byte("\r\n"), MaxLength: 100}, "abc\r\n"},
		{"eof check partial", Config{Mode: ModeEOFCheck, EOF: []byte("\r\n"), MaxLength: 100}, "abc\r"},
		{"eof split", Config{Mode: ModeEOFSplit, EOF: []byte("\r\n"), MaxLength: 100}, "abc\r\ndef"},
		{"eof split partial", Config{Mode: ModeEOFSplit, EOF: []byte("\r\n"), MaxLength: 100}, "abc\r"},
		{"eof split too large", Config{Mode: ModeEOFSplit, EOF: []byte("\r\n"), MaxLength: 2}, "abc"},
		{"length", Config{Mode: ModeLength, LengthType: 'N', MaxLength: 100}, "\x00\x00\x00\x05xyz"},
		{"length partial", Config{Mode: ModeLength, LengthType: 'N', MaxLength: 100}, "\x00\x00\x00\x09xyz"},
		{"length malformed", Config{Mode: ModeLength, LengthType: 'l', MaxLength: 100}, "\xff\xff\xff\xffxyz"},
		{"func", Config{Mode: ModeFunc, LengthFunc: lenFunc, MaxLength: 100}, "\x02xyz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(&tt.cfg)
			buf := []byte(tt.buf)
			if a := testing.AllocsPerRun(100, func() {
				d.Reset()
				d.Next(buf)
			}); a != 0 {
				t.Fatalf("Next allocates %v times per call", a)
			}
		})
	}
}

func benchStream(frame []byte, count int) []byte {
	return bytes.Repeat(frame, count)
}

func BenchmarkNextLength64(b *testing.B) {
	frame := append(header('N', 60), bytes.Repeat([]byte{'x'}, 60)...)
	stream := benchStream(frame, 1024)
	cfg := &Config{Mode: ModeLength, LengthType: 'N', BodyOffset: 4, MaxLength: 1 << 20}
	d := NewDecoder(cfg)
	b.ReportAllocs()
	b.SetBytes(64)
	buf := stream
	for b.Loop() {
		if len(buf) == 0 {
			buf = stream
		}
		n, err := d.Next(buf)
		if n != 64 || err != nil {
			b.Fatal(n, err)
		}
		buf = buf[n:]
	}
}

func BenchmarkNextEOFSplit64(b *testing.B) {
	frame := append(bytes.Repeat([]byte{'x'}, 62), "\r\n"...)
	stream := benchStream(frame, 1024)
	cfg := &Config{Mode: ModeEOFSplit, EOF: []byte("\r\n"), MaxLength: 1 << 20}
	d := NewDecoder(cfg)
	b.ReportAllocs()
	b.SetBytes(64)
	buf := stream
	for b.Loop() {
		if len(buf) == 0 {
			buf = stream
		}
		n, err := d.Next(buf)
		if n != 64 || err != nil {
			b.Fatal(n, err)
		}
		buf = buf[n:]
	}
}
