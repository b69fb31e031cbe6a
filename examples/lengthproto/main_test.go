package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/goswoole/swoole"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startServer runs the example's server on a free port and stops it at cleanup.
func startServer(t *testing.T) string {
	t.Helper()
	s, err := newServer("127.0.0.1:0", swoole.Settings{LogLevel: swoole.LogLevelNone, MaxConnection: 256})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Start() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := s.GetWorkerStatus(0); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Start: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not start")
		}
		time.Sleep(time.Millisecond)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(); err != nil {
			t.Error(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Start did not return after Shutdown")
		}
	})
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Ports()[0].Port()))
}

// TestClientServer runs the example's client against its server, in process.
func TestClientServer(t *testing.T) {
	addr := startServer(t)
	var out bytes.Buffer
	msgs := []string{"hello", "", "length-prefixed", string(bytes.Repeat([]byte("x"), 100000))}
	if err := runClient(addr, msgs, &out); err != nil {
		t.Fatal(err)
	}
	want := "HELLO\n\nLENGTH-PREFIXED\n" + string(bytes.Repeat([]byte("X"), 100000)) + "\n"
	if out.String() != want {
		t.Fatalf("client printed %q…, want %q…", out.String()[:min(40, out.Len())], want[:40])
	}
}

// TestOversizedFrame: a frame announcing more than package_max_length closes the connection
// at once; the server goes on serving.
func TestOversizedFrame(t *testing.T) {
	addr := startServer(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hdr := binary.BigEndian.AppendUint32(nil, maxFrame)
	if _, err := c.Write(hdr); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil || (err != io.EOF && !isReset(err)) {
		t.Fatalf("read %d bytes, %v: want the connection closed", n, err)
	}
	var out bytes.Buffer
	if err := runClient(addr, []string{"still here"}, &out); err != nil || out.String() != "STILL HERE\n" {
		t.Fatalf("after the bad peer: %q, %v", out.String(), err)
	}
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }
