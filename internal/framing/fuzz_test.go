package framing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

const lengthTypes = "cCsSnNlLqQJPvV"

// checkSameSplits feeds stream whole, in two halves and byte by byte and fails unless all
// three give the same frames, the same error and the same unconsumed rest.
func checkSameSplits(t *testing.T, cfg *Config, stream []byte) result {
	whole := feed(t, cfg, stream, len(stream))
	halves := feed(t, cfg, stream, len(stream)/2, len(stream))
	bytewise := feed(t, cfg, stream, 1)
	if !sameResult(whole, halves) {
		t.Fatalf("whole %v\nhalves %v", whole, halves)
	}
	if !sameResult(whole, bytewise) {
		t.Fatalf("whole %v\nbyte by byte %v", whole, bytewise)
	}
	checkFrameInvariants(t, cfg, stream, whole)
	return whole
}

// checkFrameInvariants: frames are non-empty, at most MaxLength, and together a prefix of
// the stream; the rest is the remaining input.
func checkFrameInvariants(t *testing.T, cfg *Config, stream []byte, r result) {
	off := 0
	for i, f := range r.frames {
		if len(f) == 0 || (cfg.Mode != ModeNone && len(f) > cfg.MaxLength) {
			t.Fatalf("frame %d has length %d (max %d)", i, len(f), cfg.MaxLength)
		}
		if !bytes.HasPrefix(stream[off:], f) {
			t.Fatalf("frame %d %q is not the next part of the stream", i, f)
		}
		off += len(f)
	}
	if r.err == nil && !bytes.Equal(stream[off:], r.rest) {
		t.Fatalf("rest %q, want %q", r.rest, stream[off:])
	}
}

func FuzzLength(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x05hello\x00\x00\x00\x00"), byte('N'), uint8(0), uint8(4), uint16(64))
	f.Add([]byte("AB\x05\x00xyzAB\xff\xff"), byte('v'), uint8(2), uint8(0), uint16(100))
	f.Add([]byte("\xff\x01\x02"), byte('c'), uint8(0), uint8(1), uint16(10))
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x03abc"), byte('J'), uint8(0), uint8(8), uint16(1000))
	f.Fuzz(func(t *testing.T, stream []byte, typ byte, off, body uint8, maxLen uint16) {
		cfg := &Config{
			Mode:         ModeLength,
			LengthType:   lengthTypes[int(typ)%len(lengthTypes)],
			LengthOffset: int(off % 8),
			BodyOffset:   int(body % 24),
			MaxLength:    int(maxLen%512) + 1,
		}
		if cfg.Validate() != nil {
			return
		}
		r := checkSameSplits(t, cfg, stream)
		for i, fr := range r.frames {
			if len(fr) < cfg.HeaderLen() {
				t.Fatalf("frame %d shorter than the header", i)
			}
		}
	})
}

// eofFromBytes makes a 1..8 byte delimiter from fuzz input (nil if it cannot).
func eofFromBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b[:min(len(b), MaxEOFLen)]
}

func FuzzEOFSplit(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n\r\n\r\r\n\r\nrest"), []byte("\r\n\r\n"), uint16(100))
	f.Add([]byte("aaabxaabaaaaab"), []byte("aab"), uint16(5))
	f.Add([]byte("line\nline\n\n"), []byte("\n"), uint16(4))
	f.Fuzz(func(t *testing.T, stream, eof []byte, maxLen uint16) {
		eof = eofFromBytes(eof)
		cfg := &Config{Mode: ModeEOFSplit, EOF: eof, MaxLength: int(maxLen%512) + 1}
		if cfg.Validate() != nil {
			return
		}
		r := checkSameSplits(t, cfg, stream)
		for i, fr := range r.frames {
			if !bytes.HasSuffix(fr, eof) || bytes.Index(fr, eof) != len(fr)-len(eof) {
				t.Fatalf("frame %d %q does not end at the first %q", i, fr, eof)
			}
		}
		if r.err == nil && (bytes.Contains(r.rest, eof) || len(r.rest) >= cfg.MaxLength) {
			t.Fatalf("rest %q holds a delimiter or reached max %d", r.rest, cfg.MaxLength)
		}
	})
}

// FuzzEOFCheck: open_eof_check delivers whatever is buffered when it ends with EOF, so the
// frames legitimately depend on how the input was split. The property is instead that each
// chunking agrees with a direct model of the rule, and the invariants hold.
func FuzzEOFCheck(f *testing.F) {
	f.Add([]byte("a\r\nb\r\nc"), []byte("\r\n"), uint16(100), uint8(3))
	f.Add([]byte("aaa"), []byte("aa"), uint16(2), uint8(1))
	f.Add([]byte("no delimiter at all"), []byte("\n"), uint16(8), uint8(5))
	f.Fuzz(func(t *testing.T, stream, eof []byte, maxLen uint16, chunk uint8) {
		eof = eofFromBytes(eof)
		cfg := &Config{Mode: ModeEOFCheck, EOF: eof, MaxLength: int(maxLen%512) + 1}
		if cfg.Validate() != nil {
			return
		}
		for _, sizes := range [][]int{{len(stream)}, {len(stream) / 2, len(stream)}, {1}, {int(chunk%16) + 1}} {
			got := feed(t, cfg, stream, sizes...)
			checkFrameInvariants(t, cfg, stream, got)
			if want := modelEOFCheck(cfg, stream, sizes); !sameResult(got, want) {
				t.Fatalf("sizes %v: got %v, want %v", sizes, got, want)
			}
			for i, fr := range got.frames {
				if !bytes.HasSuffix(fr, eof) {
					t.Fatalf("frame %d %q does not end with %q", i, fr, eof)
				}
			}
		}
	})
}

// modelEOFCheck is the open_eof_check rule written out directly.
func modelEOFCheck(cfg *Config, stream []byte, sizes []int) result {
	var r result
	var buf []byte
	for si := 0; len(stream) > 0; si++ {
		sz := min(max(sizes[min(si, len(sizes)-1)], 1), len(stream))
		buf = append(buf, stream[:sz]...)
		stream = stream[sz:]
		switch {
		case len(buf) <= cfg.MaxLength && bytes.HasSuffix(buf, cfg.EOF):
			r.frames = append(r.frames, buf)
			buf = nil
		case len(buf) >= cfg.MaxLength:
			r.err = ErrTooLarge
			return r
		}
	}
	r.rest = buf
	return r
}

// uvarintLength is a prefix-consistent LengthFunc: a uvarint body length, then the body.
func uvarintLength(b []byte) int {
	v, k := binary.Uvarint(b)
	switch {
	case k == 0:
		return 0
	case k < 0:
		return -1
	case v > 1<<20:
		return 1 << 30
	}
	return k + int(v)
}

func FuzzFunc(f *testing.F) {
	f.Add([]byte("\x03abc\x00\x81\x01"), uint16(200))
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"), uint16(100))
	f.Add([]byte("\x05abc"), uint16(3))
	f.Fuzz(func(t *testing.T, stream []byte, maxLen uint16) {
		cfg := &Config{Mode: ModeFunc, LengthFunc: uvarintLength, MaxLength: int(maxLen%512) + 1}
		if cfg.Validate() != nil {
			return
		}
		r := checkSameSplits(t, cfg, stream)
		if r.err != nil && !errors.Is(r.err, ErrTooLarge) && !errors.Is(r.err, ErrMalformed) {
			t.Fatalf("unexpected error %v", r.err)
		}
	})
}
