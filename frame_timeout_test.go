package swoole_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// TestFrameTimeout: a peer that sends part of a frame and then dribbles the rest a byte at a
// time (slowloris) is closed once frame_timeout passes, whatever it keeps sending; a peer
// that sends whole frames, however slowly, and one that sends a frame in parts within the
// limit stay open. frame_timeout -1 turns the limit off.
func TestFrameTimeout(t *testing.T) {
	const limit = 400 * time.Millisecond
	s := newServer(t, map[string]any{
		"open_length_check": true, "package_length_type": "N", "package_body_offset": 4,
		"frame_timeout": limit.Seconds(),
	})
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) { _ = s.Send(fd, data) })
	r := start(t, s)
	frame := func(body string) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}

	slow := r.dial(t)
	good := r.dial(t)
	parts := r.dial(t)
	// slowloris: a header claiming 1000 bytes, then a byte every 50 ms.
	if _, err := slow.Write(binary.BigEndian.AppendUint32(nil, 1000)); err != nil {
		t.Fatal(err)
	}
	closed := make(chan time.Duration, 1)
	stopWriting := make(chan struct{})
	defer close(stopWriting)
	began := time.Now()
	go func() {
		for i := 0; i < 1000; i++ {
			if _, err := slow.Write([]byte{'x'}); err != nil {
				return
			}
			select {
			case <-time.After(50 * time.Millisecond):
			case <-stopWriting:
				return
			}
		}
	}()
	go func() {
		_ = slow.SetReadDeadline(time.Now().Add(ioTimeout))
		_, err := slow.Read(make([]byte, 1))
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			closed <- -1
			return
		}
		closed <- time.Since(began)
	}()

	// Meanwhile: whole frames with pauses longer than the limit, and a frame in two parts
	// sent within it, are answered.
	roundTripFrame := func(c net.Conn, msg []byte) {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
			t.Fatalf("echo: %q %v, want %q", got, err, msg)
		}
	}
	for i := range 2 {
		msg := frame(strings.Repeat("g", 10+i))
		if _, err := good.Write(msg); err != nil {
			t.Fatal(err)
		}
		roundTripFrame(good, msg)
		msg = frame("in two parts")
		if _, err := parts.Write(msg[:6]); err != nil {
			t.Fatal(err)
		}
		if _, err := parts.Write(msg[6:]); err != nil {
			t.Fatal(err)
		}
		roundTripFrame(parts, msg)
		// The pause between frames is longer than frame_timeout: a connection between frames
		// is not in one.
		waitFor(t, ioTimeout, "a pause of 1.5 × frame_timeout", func() bool { return time.Since(began) > time.Duration(i+1)*limit*3/2 })
	}
	select {
	case d := <-closed:
		if d < 0 {
			t.Fatal("the slowloris connection was not closed")
		}
		if d < limit {
			t.Fatalf("the slowloris connection was closed after %v, before frame_timeout %v", d, limit)
		}
	case <-time.After(ioTimeout):
		t.Fatal("the slowloris connection was not closed")
	}
	for _, c := range []net.Conn{good, parts} {
		msg := frame("still here")
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		roundTripFrame(c, msg)
	}
}

// TestFrameTimeoutSetting: frame_timeout defaults to 60 s, and -1 (no limit) is accepted.
func TestFrameTimeoutSetting(t *testing.T) {
	s := newServer(t, map[string]any{
		"open_length_check": true, "package_length_type": "N", "package_body_offset": 4,
		"frame_timeout": -1, "max_idle_time": 0,
	})
	if got := s.Setting().FrameTimeout; got >= 0 {
		t.Fatalf("frame_timeout -1 resolved to %v", got)
	}
	if def := newServer(t, nil).Setting().FrameTimeout; def != 60*time.Second {
		t.Fatalf("default frame_timeout %v, want 60s", def)
	}
}
