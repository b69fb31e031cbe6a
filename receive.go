package swoole

import (
	"errors"

	"github.com/goswoole/swoole/internal/buffer"
	"github.com/goswoole/swoole/internal/framing"
	"github.com/goswoole/swoole/internal/reactor"
)

// framingConfig builds the port's framing from its resolved settings.
func (p *Port) framingConfig() (*framing.Config, error) {
	e := p.eff
	cfg := &framing.Config{MaxLength: e.PackageMaxLength}
	switch {
	case e.PackageLengthFunc != nil:
		cfg.Mode, cfg.LengthFunc = framing.ModeFunc, e.PackageLengthFunc
	case e.OpenLengthCheck:
		cfg.Mode = framing.ModeLength
		if e.PackageLengthType != "" {
			cfg.LengthType = e.PackageLengthType[0]
		}
		cfg.LengthOffset, cfg.BodyOffset = e.PackageLengthOffset, e.PackageBodyOffset
	case e.OpenEOFSplit:
		cfg.Mode, cfg.EOF = framing.ModeEOFSplit, []byte(e.PackageEOF)
	case e.OpenEOFCheck:
		cfg.Mode, cfg.EOF = framing.ModeEOFCheck, []byte(e.PackageEOF)
	}
	if err := cfg.Validate(); err != nil {
		return nil, &Error{Code: ErrInvalidParams, Msg: "swoole: port " + p.addr() + ": the framing settings do not fit together", Err: err}
	}
	return cfg, nil
}

// Data delivers received bytes: as they came without framing, else frame by frame. Frames
// are slices of the loop's read buffer or of the connection's pending input, valid during the
// callback.
func (w *worker) Data(rc *reactor.Conn, data []byte) {
	c := rc.Owner.(*conn)
	s := w.s
	now := nanotime()
	c.slot.LastRecv.Store(now)
	s.table.Counters().TotalRecvBytes.Add(int64(len(data)))
	if c.port.frame.Mode == framing.ModeNone {
		w.deliver(c, data, now)
		return
	}
	if len(c.in) == 0 {
		rest, ok := w.frames(c, data, now)
		if ok && len(rest) > 0 {
			c.in = append(buffer.Get(inputSize(len(rest), 0, c.dec.Need(), c.port.frame.MaxLength))[:0], rest...)
			c.frameAt = frameTime(now) // a frame begins (frame_timeout)
		}
	} else {
		if want := len(c.in) + len(data); want > cap(c.in) {
			grown := append(buffer.Get(inputSize(want, cap(c.in), c.dec.Need(), c.port.frame.MaxLength))[:0], c.in...)
			buffer.Put(c.in)
			c.in = grown
		}
		c.in = append(c.in, data...)
		rest, ok := w.frames(c, c.in, now)
		if !ok {
			return
		}
		n := len(rest)
		if n < len(c.in) { // frames were consumed: move the rest to the front
			n = copy(c.in, rest)
			c.in = c.in[:n]
			c.frameAt = frameTime(now) // what is left begins a new frame
		}
		if n == 0 {
			buffer.Put(c.in)
			c.in = nil
			c.frameAt = 0
		}
	}
	// As in Swoole, the input grows to the frame's size, which package_max_length bounds (a
	// length header above it, or EOF-framed input that reaches it without a complete frame,
	// closes the connection with 1201); buffer_input_size does not limit a frame. It grows
	// with the bytes that arrive (inputSize), never to the size a header only claims.
	w.ev.pending(c, len(c.in))
}

// inputStep is the most a connection's pending input is given ahead of the bytes that
// arrived: a frame whose header claims more gets a buffer of this size, and grows by doubling
// as its body comes in.
const inputStep = 64 << 10

// inputSize is the capacity for a connection's pending input that must hold want bytes,
// growing from a buffer of capacity had (0 for none), while the decoder waits for a frame
// of need bytes (0 when unknown; need < want once a frame is complete), package_max_length
// being limit. A peer cannot make the server hold more than max(inputStep, 2*want) bytes
// (rounded up to the pool's power-of-two size class) for a frame it has not sent: a 4-byte
// header that claims package_max_length costs 64 KiB, not package_max_length.
func inputSize(want, had, need, limit int) int {
	size := max(2*had, want) // doubling
	if had == 0 {
		size = max(2*want, 4096)
	}
	if need >= want { // waiting for the rest of a frame of known size
		size = min(need, max(size, inputStep))
	}
	if size > limit {
		// An incomplete frame never needs more than package_max_length bytes.
		size = max(limit, want)
	}
	return size
}

// frames delivers every complete frame at the start of buf and returns what is left. ok is
// false when the connection was closed (by a protocol error or by a callback).
func (w *worker) frames(c *conn, buf []byte, now int64) (rest []byte, ok bool) {
	corked := false
	defer func() {
		if corked {
			c.rc.Uncork()
		}
	}()
	for len(buf) > 0 {
		n, err := c.dec.Next(buf)
		if err != nil {
			code := ErrPackageMalformedData
			if errors.Is(err, framing.ErrTooLarge) {
				code = ErrPackageLengthTooLarge
			}
			w.protocolError(c, &Error{Code: code, Msg: "swoole: bad frame from session " + itoa64(c.id) + " on port " + c.port.addr(), Err: err})
			return nil, false
		}
		if n == 0 {
			return buf, true
		}
		if !corked && n < len(buf) {
			// More frames may follow in this read: gather their replies into one write
			// (a ModeProcess master gathers its events to the workers per round).
			corked = true
			c.rc.Cork()
		}
		w.deliver(c, buf[:n], now)
		buf = buf[n:]
		if c.rc.Closing() {
			w.dropInput(c)
			return nil, false
		}
	}
	return nil, true
}

// deliver passes one frame to the loop's events (the callback, or a worker).
func (w *worker) deliver(c *conn, data []byte, now int64) { w.ev.frame(w, c, data, now) }

// protocolError closes a connection whose peer broke the framing; other connections go on.
func (w *worker) protocolError(c *conn, e *Error) {
	if ok, left := w.s.logLimits[logFraming].allow(); ok {
		w.s.log.Warn("swoole: closing connection: "+e.Error(), "fd", c.id, "code", e.Code, "suppressed", left)
	}
	w.dropInput(c)
	if w.s.table.MarkClosing(c.slot, c.id) {
		c.rc.CloseOnLoop(true) // a handler: on the loop
	}
}

func (w *worker) dropInput(c *conn) {
	if c.in != nil {
		buffer.Put(c.in)
		c.in = nil
	}
	c.frameAt = 0
	c.dec.Reset()
}

func itoa64(v int64) string { return fmtInt(v) }
