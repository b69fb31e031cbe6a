package ipc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		h    Header
	}{
		{name: "zeroes but type", h: Header{Type: TypeData}},
		{name: "all set", h: Header{Type: TypeSend, Flags: FlagChunkMask | 0x80, SrcWorker: -1, ReactorID: 7, Aux: 0xbeef, Fd: 1<<62 + 5, MsgID: 0xdeadbeef, Len: 3}},
		{name: "negative fd", h: Header{Type: TypeUser + 3, SrcWorker: 32767, ReactorID: -32768, Fd: -9, Len: 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.h.AppendEncode(nil)
			if len(b) != HeaderSize {
				t.Fatalf("encoded %d bytes", len(b))
			}
			dgram := append(b, make([]byte, tc.h.Len)...)
			got, err := DecodeHeader(dgram)
			if err != nil {
				t.Fatalf("DecodeHeader: %v", err)
			}
			if got != tc.h {
				t.Fatalf("got %+v, want %+v", got, tc.h)
			}
		})
	}
}

func TestHeaderLayout(t *testing.T) {
	h := Header{Type: 1, Flags: 2, SrcWorker: 0x0403, ReactorID: 0x0605, Aux: 0x0807,
		Fd: 0x100f0e0d0c0b0a09, MsgID: 0x14131211, Len: 0x18171615}
	b := h.AppendEncode(nil)
	for i := range HeaderSize {
		if b[i] != byte(i+1) {
			t.Fatalf("byte %d = %#x, want %#x (layout % x)", i, b[i], i+1, b)
		}
	}
}

func TestDecodeHeaderErrors(t *testing.T) {
	valid := (&Header{Type: TypeData, Flags: FlagChunkMask, Len: 2}).AppendEncode(nil)
	valid = append(valid, 'h', 'i')
	tests := []struct {
		name         string
		dgram        []byte
		datagramOnly bool
	}{
		{name: "empty", dgram: nil},
		{name: "short", dgram: valid[:HeaderSize-1]},
		{name: "len too big", dgram: valid[:HeaderSize+1]},
		{name: "invalid type", dgram: append([]byte{0}, valid[1:]...)},
		// DecodeHeader accepts these (the first record fits); the datagram check does not.
		{name: "trailing byte", dgram: append(bytes.Clone(valid), 'x'), datagramOnly: true},
		{name: "trailing record with bad type", dgram: append(bytes.Clone(valid), make([]byte, HeaderSize)...), datagramOnly: true},
		{name: "chunk packed after a message", datagramOnly: true,
			dgram: append(bytes.Clone(valid), (&Header{Type: TypeData, Flags: FlagChunkEnd}).AppendEncode(nil)...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeHeader(tc.dgram)
			if tc.datagramOnly && err != nil {
				t.Fatalf("DecodeHeader: %v", err)
			}
			if !tc.datagramOnly && !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeHeader err = %v, want ErrMalformed", err)
			}
			if _, _, err := checkDatagram(tc.dgram); !errors.Is(err, ErrMalformed) {
				t.Fatalf("checkDatagram err = %v, want ErrMalformed", err)
			}
		})
	}
	if _, err := DecodeHeader(valid); err != nil {
		t.Fatalf("valid: %v", err)
	}
	packed := append(bytes.Clone(valid), valid...)
	if n, _, err := checkDatagram(packed); n != 2 || err != nil {
		t.Fatalf("two packed records: %d, %v", n, err)
	}
}

func TestTypeString(t *testing.T) {
	if TypeCommandReply.String() != "CommandReply" || TypeUser.String() != "Type(128)" {
		t.Fatalf("got %q, %q", TypeCommandReply, TypeUser)
	}
	for ty := TypeInvalid; ty < typeLast; ty++ {
		if typeNames[ty] == "" {
			t.Errorf("type %d has no name", ty)
		}
	}
}

func TestChunkGeometry(t *testing.T) {
	const maxP = 100
	for _, n := range []int{0, 1, maxP, maxP + 1, 2*maxP - 4, 2*maxP - 3, 10*maxP + 7} {
		k := chunkCount(n, maxP)
		var got []byte
		next := 0
		for i := range k {
			s, e := chunkRange(n, maxP, i, k)
			if s != next || e < s || e-s > maxP || (i > 0 && e == s) {
				t.Fatalf("n=%d chunk %d/%d = [%d,%d)", n, i, k, s, e)
			}
			next = e
			d := appendChunk(nil, Header{Type: TypeData}, pattern(n, n), maxP, i, k)
			if len(d) > HeaderSize+maxP {
				t.Fatalf("n=%d datagram %d is %d bytes", n, i, len(d))
			}
			got = append(got, d...)
		}
		if next != n {
			t.Fatalf("n=%d chunks end at %d", n, next)
		}
		if size := queuedSize(n, maxP); size != len(got) {
			t.Fatalf("n=%d queuedSize %d, datagrams %d", n, size, len(got))
		}
	}
}

func FuzzHeader(f *testing.F) {
	f.Add((&Header{Type: TypeData, Flags: FlagChunkMask, Fd: 1, Len: 0}).AppendEncode(nil))
	f.Add(append((&Header{Type: TypeSend, SrcWorker: 3, Fd: -1, MsgID: 9, Len: 3}).AppendEncode(nil), "abc"...))
	f.Add([]byte{})
	f.Add(make([]byte, HeaderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if int(h.Len) > len(b)-HeaderSize || h.Type == TypeInvalid {
			t.Fatalf("accepted %+v for %d bytes", h, len(b))
		}
		enc := h.AppendEncode(nil)
		if !bytes.Equal(enc, b[:HeaderSize]) {
			t.Fatalf("encode(decode(x)) = % x, want % x", enc, b[:HeaderSize])
		}
		h2, err := DecodeHeader(append(enc, b[HeaderSize:]...))
		if err != nil || h2 != h {
			t.Fatalf("second decode %+v, %v; want %+v", h2, err, h)
		}
		// A datagram that checks out is records that tile it exactly, each re-encoding to
		// itself.
		if n, _, err := checkDatagram(b); err == nil {
			off := 0
			for range n {
				rh, err := DecodeHeader(b[off:])
				if err != nil || !bytes.Equal(rh.AppendEncode(nil), b[off:off+HeaderSize]) {
					t.Fatalf("record at %d: %+v, %v", off, rh, err)
				}
				off += HeaderSize + int(rh.Len)
			}
			if off != len(b) {
				t.Fatalf("%d records end at %d of %d", n, off, len(b))
			}
		}
		// Fed to a reassembler whole, a header never makes it panic or deliver more than the
		// datagram promised.
		r := newReassembler(Config{MaxPayload: 1024, MaxMessage: 4096, MaxPending: 8192, Counters: new(Counters)})
		r.feed(b, func(mh Header, p []byte) {
			if int(mh.Len) != len(p) || len(p) > len(b) {
				t.Fatalf("delivered Len %d with %d bytes from %d", mh.Len, len(p), len(b))
			}
		})
		r.close()
	})
}

// FuzzReassembly sends one message of a random size in chunks, in order, with garbage
// datagrams between them, and checks that it comes out exactly once and intact.
func FuzzReassembly(f *testing.F) {
	f.Add(uint32(0), uint16(0), uint64(1), []byte("garbage"))
	f.Add(uint32(5000), uint16(100), uint64(2), []byte{})
	f.Add(uint32(70000), uint16(4000), uint64(3), (&Header{Type: TypeData, Flags: FlagChunkBegin, Len: 0}).AppendEncode(nil))
	f.Add(uint32(999), uint16(60), uint64(4), append((&Header{Type: TypeData, Len: 2}).AppendEncode(nil), 1, 2))
	f.Fuzz(func(t *testing.T, size uint32, maxP uint16, seed uint64, garbage []byte) {
		const maxMessage = 256 << 10
		const src = 5
		maxPayload := MinMaxPayload + int(maxP)%8192
		n := int(size) % maxMessage
		rng := rand.New(rand.NewPCG(seed, seed>>7))
		payload := pattern(int(seed), n)
		h := Header{Type: TypeData, Flags: 0x40, SrcWorker: src, ReactorID: 2, Aux: 3, Fd: 77, MsgID: 123, Len: 999}
		dgrams := datagrams(h, payload, maxPayload)

		cfg := Config{MaxPayload: maxPayload, MaxMessage: maxMessage, MaxPending: 64 * maxMessage, Counters: new(Counters)}
		r := newReassembler(cfg)
		defer r.close()
		var got []delivered
		fn := collector(&got)
		junk := func() {
			g := garbage
			if len(garbage) > 0 {
				g = garbage[:rng.IntN(len(garbage)+1)]
			}
			switch rng.IntN(3) {
			case 0: // the fuzzer's bytes; if they decode, they come from another sender
				if len(g) >= HeaderSize {
					if gh, err := DecodeHeader(g); err == nil && gh.SrcWorker == src {
						g = bytes.Clone(g)
						binary.LittleEndian.PutUint16(g[2:], src+1)
					}
				}
				r.feed(g, fn)
			case 1: // a real datagram of ours with its length field broken
				d := bytes.Clone(dgrams[rng.IntN(len(dgrams))])
				binary.LittleEndian.PutUint32(d[20:], uint32(len(d))) // never len-HeaderSize
				r.feed(d, fn)
			case 2: // nothing
			}
		}
		for _, d := range dgrams {
			junk()
			r.feed(d, fn)
			junk()
		}
		var mine []delivered
		for _, d := range got {
			if d.h.SrcWorker == src {
				mine = append(mine, d)
			}
		}
		if len(mine) != 1 {
			t.Fatalf("%d messages from our sender, want 1 (%d datagrams, maxPayload %d, n %d)", len(mine), len(dgrams), maxPayload, n)
		}
		m := mine[0]
		want := h
		want.Flags = 0x40 | FlagChunkMask
		want.Len = uint32(n)
		if m.h != want {
			t.Fatalf("header %+v, want %+v", m.h, want)
		}
		if err := checkPattern(m.payload, int(seed), n); err != nil {
			t.Fatal(err)
		}
	})
}

func TestReassemblyDrops(t *testing.T) {
	const maxP = 100
	msg := func(src int16, id uint32, n int) [][]byte {
		return datagrams(Header{Type: TypeTask, SrcWorker: src, Fd: int64(id), MsgID: id}, pattern(int(id), n), maxP)
	}
	cat := func(parts ...[][]byte) (out [][]byte) {
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	big := msg(1, 1, 350)
	tests := []struct {
		name      string
		dgrams    [][]byte
		maxMsg    int
		maxPend   int
		wantIDs   []int64 // Fd of the messages delivered, in order
		wantDrops []error
	}{
		{name: "whole", dgrams: big, wantIDs: []int64{1}},
		{name: "orphan middle and end", dgrams: cat(big[1:], msg(1, 2, 10)),
			wantIDs: []int64{2}, wantDrops: []error{ErrMalformed, ErrMalformed, ErrMalformed}},
		{name: "restart before end", dgrams: cat(big[:2], msg(1, 2, 300)),
			wantIDs: []int64{2}, wantDrops: []error{ErrIncomplete}},
		{name: "single after torn", dgrams: cat(big[:1], msg(1, 2, 5)),
			wantIDs: []int64{2}, wantDrops: []error{ErrIncomplete}},
		{name: "interleaved senders", dgrams: [][]byte{big[0], msg(2, 5, 150)[0], big[1], msg(2, 5, 150)[1], big[2], big[3]},
			wantIDs: []int64{5, 1}},
		{name: "too large skipped", dgrams: cat(msg(1, 1, 300), msg(1, 2, 20)), maxMsg: 200,
			wantIDs: []int64{2}, wantDrops: []error{ErrTooLarge}},
		{name: "pending limit", dgrams: [][]byte{big[0], msg(2, 5, 350)[0], big[1], big[2], big[3]}, maxMsg: 350, maxPend: 400,
			wantIDs: []int64{1}, wantDrops: []error{ErrReassemblyFull}},
		{name: "wrong msgid", dgrams: [][]byte{big[0], msg(1, 9, 350)[1], big[1]},
			wantDrops: []error{ErrIncomplete, ErrMalformed, ErrMalformed}},
		{name: "short end", dgrams: [][]byte{big[0], big[1], big[3]},
			wantDrops: []error{ErrMalformed}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var drops []error
			cfg := Config{MaxPayload: maxP, MaxMessage: 1 << 20, MaxPending: 4 << 20, Counters: new(Counters),
				OnDrop: func(_ Header, err error) { drops = append(drops, err) }}
			if tc.maxMsg != 0 {
				cfg.MaxMessage = tc.maxMsg
			}
			if tc.maxPend != 0 {
				cfg.MaxPending = tc.maxPend
			}
			r := newReassembler(cfg)
			var got []delivered
			for _, d := range tc.dgrams {
				r.feed(d, collector(&got))
			}
			var ids []int64
			for _, m := range got {
				ids = append(ids, m.h.Fd)
				if err := checkPattern(m.payload, int(m.h.Fd), int(m.h.Len)); err != nil {
					t.Errorf("message %d: %v", m.h.Fd, err)
				}
			}
			if !equalInts(ids, tc.wantIDs) {
				t.Errorf("delivered %v, want %v", ids, tc.wantIDs)
			}
			if len(drops) != len(tc.wantDrops) {
				t.Fatalf("drops %v, want %v", drops, tc.wantDrops)
			}
			for i := range drops {
				if !errors.Is(drops[i], tc.wantDrops[i]) {
					t.Errorf("drop %d = %v, want %v", i, drops[i], tc.wantDrops[i])
				}
			}
			if got := cfg.Counters.Dropped.Load(); got != uint64(len(tc.wantDrops)) {
				t.Errorf("Dropped counter %d", got)
			}
			r.close()
			if r.pending != 0 || r.active != 0 {
				t.Errorf("after close: pending %d, active %d", r.pending, r.active)
			}
		})
	}
}

func TestReassemblyPacked(t *testing.T) {
	rec := func(src int16, id int64, n int) []byte {
		return appendChunk(nil, Header{Type: TypePipeMessage, SrcWorker: src, Fd: id}, pattern(int(id), n), 100, 0, 1)
	}
	chunks := datagrams(Header{Type: TypeTask, SrcWorker: 1, Fd: 10}, pattern(10, 250), 100)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	var drops []error
	r := newReassembler(Config{MaxPayload: 100, MaxMessage: 1000, MaxPending: 1000, Counters: new(Counters),
		OnDrop: func(_ Header, err error) { drops = append(drops, err) }})
	defer r.close()
	var got []delivered
	fn := collector(&got)
	r.feed(chunks[0], fn)
	r.feed(cat(rec(2, 1, 5), rec(3, 2, 0), rec(2, 3, 60)), fn) // other senders, packed
	r.feed(chunks[1], fn)
	r.feed(chunks[2], fn)
	r.feed(cat(rec(1, 4, 1), chunks[0]), fn)               // a chunk packed: dropped whole
	r.feed(cat(rec(1, 5, 1), rec(1, 6, 2), []byte{9}), fn) // trailing garbage: dropped whole
	var ids []int64
	for _, m := range got {
		ids = append(ids, m.h.Fd)
		if err := checkPattern(m.payload, int(m.h.Fd), int(m.h.Len)); err != nil {
			t.Errorf("message %d: %v", m.h.Fd, err)
		}
	}
	if !equalInts(ids, []int64{1, 2, 3, 10}) {
		t.Errorf("delivered %v", ids)
	}
	if len(drops) != 2 || !errors.Is(drops[0], ErrMalformed) || !errors.Is(drops[1], ErrMalformed) {
		t.Errorf("drops %v", drops)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{name: "zero", cfg: Config{}, ok: true},
		{name: "small payload", cfg: Config{MaxPayload: 10}},
		{name: "huge payload", cfg: Config{MaxPayload: 2 << 20}},
		{name: "negative message", cfg: Config{MaxMessage: -1}},
		{name: "batch too big", cfg: Config{Batch: MaxBatch + 1}},
		{name: "buffered below message", cfg: Config{MaxMessage: 1 << 20, MaxBuffered: 1 << 20}},
		{name: "pending below message", cfg: Config{MaxMessage: 1 << 20, MaxPending: 1 << 10}},
		{name: "tight but fine", cfg: Config{MaxPayload: 64, MaxMessage: 1000, MaxBuffered: queuedSize(1000, 64), MaxPending: 1000, Batch: 1}, ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cfg.withDefaults()
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
