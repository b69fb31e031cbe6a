// Package framing splits a stream socket's input into messages the way Swoole's
// open_eof_check, open_eof_split, open_length_check and package_length_func options do.
//
// The package is pure: no system calls, no goroutines, and Decoder.Next does not allocate.
// A connection keeps one Decoder (by value) and a buffer of unconsumed input that always
// starts at a frame boundary. After each read it calls Next in a loop:
//
//	for {
//		n, err := d.Next(buf)
//		if err != nil { /* close the connection */ }
//		if n == 0 { break } // need more input; d.Need() may tell how much in total
//		deliver(buf[:n])
//		buf = buf[n:]
//	}
//
// MaxLength bounds memory: in the EOF modes Next reports ErrTooLarge as soon as the buffer
// holds MaxLength bytes that cannot end a frame, so a read buffer capped at MaxLength bytes
// is always enough; in the length modes it reports ErrTooLarge as soon as the header says
// the frame is too big, before the body arrives.
package framing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Mode selects how input is split into frames.
type Mode uint8

// The framing modes.
const (
	// ModeNone: no framing; every Next returns the whole buffer (Swoole's default: arbitrary chunks).
	ModeNone Mode = iota
	// ModeEOFCheck (open_eof_check): deliver the whole buffer once it ends with EOF. One
	// delivery may hold several messages; the application splits them.
	ModeEOFCheck
	// ModeEOFSplit (open_eof_split): deliver exactly one message per frame, up to and
	// including the first EOF.
	ModeEOFSplit
	// ModeLength (open_length_check): a fixed header holds the length of the frame.
	ModeLength
	// ModeFunc (package_length_func): a user function reads the frame length.
	ModeFunc
)

// String returns the Swoole option that selects the mode.
func (m Mode) String() string {
	switch m {
	case ModeNone:
		return "none"
	case ModeEOFCheck:
		return "open_eof_check"
	case ModeEOFSplit:
		return "open_eof_split"
	case ModeLength:
		return "open_length_check"
	case ModeFunc:
		return "package_length_func"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// MaxEOFLen is the longest package_eof Swoole accepts.
const MaxEOFLen = 8

// Config describes one port's framing. Call Validate before using it; Next assumes a valid
// Config (it never panics on an invalid one, but its results are then unspecified). A Config
// must not change while decoders use it.
type Config struct {
	// Mode selects the framing.
	Mode Mode
	// EOF is package_eof, 1 to 8 bytes, used by the EOF modes.
	EOF []byte
	// LengthType is package_length_type, a PHP pack() character: c C s S n N l L q Q J P v V.
	// s S l L q Q use the host byte order, n N J big endian, v V P little endian;
	// c s l q are signed.
	LengthType byte
	// LengthOffset is package_length_offset: where the length field starts.
	LengthOffset int
	// BodyOffset is package_body_offset: the frame size is the length value plus BodyOffset
	// (0 when the length counts the whole frame, the header size when it counts only the body).
	BodyOffset int
	// MaxLength is package_max_length: the largest frame accepted, in bytes. In the EOF modes
	// it also bounds a buffer that does not yet hold a complete frame.
	MaxLength int
	// LengthFunc is package_length_func for ModeFunc. Given the unconsumed input (starting at
	// a frame boundary) it returns the total frame length (> 0), 0 when it needs more data, or
	// a negative number for bad data. It must not retain data. It sees at most MaxLength
	// bytes. Once it has returned a length larger than the buffer, it is not called again
	// until that frame is complete.
	LengthFunc func(data []byte) int
}

// ErrTooLarge means a frame is larger than Config.MaxLength (Swoole's 1201
// PACKAGE_LENGTH_TOO_LARGE): close the connection.
var ErrTooLarge = errors.New("framing: package larger than package_max_length")

// ErrMalformed means the input cannot be framed: a negative length, a frame size smaller than
// its header, or a LengthFunc that returned a negative number. Close the connection.
var ErrMalformed = errors.New("framing: malformed package header")

// lengthSize returns the size in bytes of a pack() length type, or 0 if t is unknown.
func lengthSize(t byte) int {
	switch t {
	case 'c', 'C':
		return 1
	case 's', 'S', 'n', 'v':
		return 2
	case 'l', 'L', 'N', 'V':
		return 4
	case 'q', 'Q', 'J', 'P':
		return 8
	}
	return 0
}

// Validate reports the first problem with c, in words that say which option to fix.
func (c *Config) Validate() error {
	switch c.Mode {
	case ModeNone:
		return nil
	case ModeEOFCheck, ModeEOFSplit:
		if len(c.EOF) == 0 {
			return errors.New("framing: package_eof is empty; set 1 to 8 bytes")
		}
		if len(c.EOF) > MaxEOFLen {
			return fmt.Errorf("framing: package_eof is %d bytes; at most %d are allowed", len(c.EOF), MaxEOFLen)
		}
	case ModeLength:
		if lengthSize(c.LengthType) == 0 {
			return fmt.Errorf("framing: package_length_type %q is unknown; use one of c C s S n N l L q Q J P v V", c.LengthType)
		}
		if c.LengthOffset < 0 {
			return fmt.Errorf("framing: package_length_offset %d is negative", c.LengthOffset)
		}
		if c.BodyOffset < 0 {
			return fmt.Errorf("framing: package_body_offset %d is negative", c.BodyOffset)
		}
	case ModeFunc:
		if c.LengthFunc == nil {
			return errors.New("framing: package_length_func is nil")
		}
	default:
		return fmt.Errorf("framing: unknown mode %d", uint8(c.Mode))
	}
	if c.MaxLength < 1 {
		return fmt.Errorf("framing: package_max_length %d must be at least 1", c.MaxLength)
	}
	if c.Mode == ModeLength {
		if c.LengthOffset > c.MaxLength-lengthSize(c.LengthType) {
			return fmt.Errorf("framing: header of %d bytes (package_length_offset %d + %d-byte %q) exceeds package_max_length %d",
				c.LengthOffset+lengthSize(c.LengthType), c.LengthOffset, lengthSize(c.LengthType), c.LengthType, c.MaxLength)
		}
		if c.BodyOffset > c.MaxLength {
			return fmt.Errorf("framing: package_body_offset %d exceeds package_max_length %d", c.BodyOffset, c.MaxLength)
		}
	}
	return nil
}

// HeaderLen returns how many bytes ModeLength needs before it can read the length
// (LengthOffset plus the size of LengthType); 0 in the other modes.
func (c *Config) HeaderLen() int {
	if c.Mode != ModeLength {
		return 0
	}
	s := lengthSize(c.LengthType)
	if s == 0 || c.LengthOffset < 0 || c.LengthOffset > math.MaxInt-s {
		return 0
	}
	return c.LengthOffset + s
}

// Decoder is the per-connection framing state. Embed it by value; it does not allocate.
// It remembers how far the EOF search got, so a slowly growing buffer is scanned once in
// total, and the size of a frame whose header has been read. A Decoder is not safe for
// concurrent use. The zero Decoder behaves as ModeNone.
type Decoder struct {
	cfg     *Config
	scanned int // EOF modes: bytes of the current buffer already searched
	need    int // length modes: total size of the frame being assembled, 0 if unknown
}

// NewDecoder returns a decoder for cfg, which must stay valid and unchanged while it is used.
func NewDecoder(cfg *Config) Decoder {
	return Decoder{cfg: cfg}
}

// Config returns the configuration the decoder was made with (nil for the zero Decoder).
func (d *Decoder) Config() *Config { return d.cfg }

// Reset forgets the progress on the current frame. Call it when the buffer is discarded
// or no longer starts at a frame boundary.
func (d *Decoder) Reset() {
	d.scanned = 0
	d.need = 0
}

// Need returns, after Next returned 0 in ModeLength or ModeFunc, the total size of the
// frame being assembled once its header has been read, else 0. The caller can use it to
// grow its buffer once.
func (d *Decoder) Need() int {
	return d.need
}

// Next looks at buf, the unconsumed input starting at a frame boundary, and returns n > 0
// when buf[:n] is a complete frame, 0 when more input is needed, or an error, after which
// the connection must be closed. n never exceeds len(buf). The caller consumes buf[:n]
// and calls Next again on the rest (with the same Decoder), or appends input to buf and
// calls Next again.
//
//   - ModeNone returns len(buf).
//   - ModeEOFCheck returns len(buf) when buf ends with EOF and len(buf) <= MaxLength. It
//     returns ErrTooLarge when len(buf) >= MaxLength and that is not the case, since the
//     frame can then only end beyond MaxLength. Read at most MaxLength bytes into the buffer.
//   - ModeEOFSplit returns the index of the first EOF plus len(EOF): the frame includes the
//     delimiter, as Swoole's does. ErrTooLarge when that frame is longer than MaxLength, or
//     when buf holds MaxLength bytes or more without a complete EOF.
//   - ModeLength needs HeaderLen bytes, reads the length and computes the frame size as
//     length + BodyOffset. ErrMalformed when the length is negative or the size is smaller
//     than HeaderLen; ErrTooLarge when the size is above MaxLength, as soon as the header
//     has arrived. Otherwise the size once buf holds it.
//   - ModeFunc calls LengthFunc(buf[:min(len(buf), MaxLength)]): a negative result gives ErrMalformed, a result above
//     MaxLength ErrTooLarge (as Swoole does for package_length_func), and 0 with
//     len(buf) >= MaxLength ErrTooLarge.
func (d *Decoder) Next(buf []byte) (int, error) {
	c := d.cfg
	if c == nil {
		return len(buf), nil
	}
	switch c.Mode {
	case ModeEOFSplit:
		return d.nextEOFSplit(c, buf)
	case ModeEOFCheck:
		return d.nextEOFCheck(c, buf)
	case ModeLength:
		return d.nextLength(c, buf)
	case ModeFunc:
		return d.nextFunc(c, buf)
	}
	return len(buf), nil
}

func (d *Decoder) nextEOFSplit(c *Config, buf []byte) (int, error) {
	eof := c.EOF
	if len(eof) == 0 {
		return len(buf), nil
	}
	// Resume where the last search stopped, backing up len(eof)-1 bytes so that a
	// delimiter split across reads is found.
	start := d.scanned - (len(eof) - 1)
	if start < 0 || start > len(buf) {
		start = 0
	}
	i := bytes.Index(buf[start:], eof)
	if i < 0 {
		if len(buf) >= c.MaxLength {
			d.scanned = 0
			return 0, ErrTooLarge
		}
		d.scanned = len(buf)
		return 0, nil
	}
	d.scanned = 0
	n := start + i + len(eof)
	if n > c.MaxLength {
		return 0, ErrTooLarge
	}
	return n, nil
}

func (d *Decoder) nextEOFCheck(c *Config, buf []byte) (int, error) {
	if len(c.EOF) == 0 {
		return len(buf), nil
	}
	if len(buf) <= c.MaxLength && bytes.HasSuffix(buf, c.EOF) {
		return len(buf), nil
	}
	if len(buf) >= c.MaxLength {
		return 0, ErrTooLarge
	}
	return 0, nil
}

func (d *Decoder) nextLength(c *Config, buf []byte) (int, error) {
	size := lengthSize(c.LengthType)
	off := c.LengthOffset
	if size == 0 || off < 0 || c.BodyOffset < 0 {
		return 0, ErrMalformed
	}
	if len(buf)-size < off { // fewer than HeaderLen bytes, without overflow
		d.need = 0
		return 0, nil
	}
	h := buf[off : off+size]
	var v uint64
	neg := false
	switch c.LengthType {
	case 'c':
		x := int8(h[0])
		neg, v = x < 0, uint64(x)
	case 'C':
		v = uint64(h[0])
	case 's':
		x := int16(binary.NativeEndian.Uint16(h))
		neg, v = x < 0, uint64(x)
	case 'S':
		v = uint64(binary.NativeEndian.Uint16(h))
	case 'n':
		v = uint64(binary.BigEndian.Uint16(h))
	case 'v':
		v = uint64(binary.LittleEndian.Uint16(h))
	case 'l':
		x := int32(binary.NativeEndian.Uint32(h))
		neg, v = x < 0, uint64(x)
	case 'L':
		v = uint64(binary.NativeEndian.Uint32(h))
	case 'N':
		v = uint64(binary.BigEndian.Uint32(h))
	case 'V':
		v = uint64(binary.LittleEndian.Uint32(h))
	case 'q':
		x := int64(binary.NativeEndian.Uint64(h))
		neg, v = x < 0, uint64(x)
	case 'Q':
		v = binary.NativeEndian.Uint64(h)
	case 'J':
		v = binary.BigEndian.Uint64(h)
	case 'P':
		v = binary.LittleEndian.Uint64(h)
	}
	d.need = 0
	if neg {
		return 0, ErrMalformed
	}
	// size = v + BodyOffset; compare without overflow.
	room := c.MaxLength - c.BodyOffset
	if room < 0 || v > uint64(room) {
		return 0, ErrTooLarge
	}
	total := int(v) + c.BodyOffset
	if total < off+size {
		return 0, ErrMalformed
	}
	if len(buf) < total {
		d.need = total
		return 0, nil
	}
	return total, nil
}

func (d *Decoder) nextFunc(c *Config, buf []byte) (int, error) {
	if d.need > 0 {
		if len(buf) < d.need {
			return 0, nil
		}
		n := d.need
		d.need = 0
		return n, nil
	}
	if c.LengthFunc == nil {
		return len(buf), nil
	}
	// Show the function at most MaxLength bytes, as Swoole's buffer never holds more: its
	// verdict then does not depend on how much input happened to arrive at once.
	if len(buf) > c.MaxLength && c.MaxLength > 0 {
		buf = buf[:c.MaxLength]
	}
	n := c.LengthFunc(buf)
	switch {
	case n < 0:
		return 0, ErrMalformed
	case n == 0:
		if len(buf) >= c.MaxLength {
			return 0, ErrTooLarge
		}
		return 0, nil
	case n > c.MaxLength:
		return 0, ErrTooLarge
	case n > len(buf):
		d.need = n
		return 0, nil
	}
	return n, nil
}
