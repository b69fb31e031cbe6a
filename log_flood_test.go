package swoole_test

// Warnings a remote peer causes at will are rate-limited: a flood of refused connections,
// broken frames or oversized datagrams writes at most one line per second per kind to
// log_file, and each line counts the events left out before it ("suppressed"), so nothing
// goes unaccounted and the disk does not fill.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

// floodBurst is the number of bad events a flood sends.
const floodBurst = 2000

var floodSuppressed = regexp.MustCompile(`suppressed=(\d+)`)

// floodCount returns the lines of the log at path that contain msg, and the sum of their
// "suppressed" counts.
func floodCount(t testing.TB, path, msg string) (lines int, suppressed int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if !bytes.Contains(l, []byte(msg)) {
			continue
		}
		lines++
		if m := floodSuppressed.FindSubmatch(l); m != nil {
			n, _ := strconv.ParseInt(string(m[1]), 10, 64)
			suppressed += n
		}
	}
	return lines, suppressed
}

// floodLog sends floodBurst bad events with fire (which returns once the server has handled the
// n events it causes), checks that the burst logged at most one line per second (plus one)
// of msg with code, and then sends one more bad event at a time until a line accounts for
// every event: the logged lines plus the suppressed counts add up to the events sent.
func floodLog(t *testing.T, logPath, msg string, code int, fire func(n int)) {
	t.Helper()
	began := time.Now()
	fire(floodBurst)
	took := time.Since(began)
	lines, _ := floodCount(t, logPath, msg)
	if most := int(took/time.Second) + 2; lines == 0 || lines > most {
		t.Fatalf("%d events in %v logged %d lines of %q; want 1 to %d (one per second)", floodBurst, took.Round(time.Millisecond), lines, msg, most)
	}
	b, _ := os.ReadFile(logPath)
	if !bytes.Contains(b, []byte("code="+strconv.Itoa(code))) {
		t.Errorf("the log does not carry code=%d:\n%s", code, b)
	}
	sent := int64(floodBurst)
	deadline := time.Now().Add(3 * ftTimeout)
	for {
		fire(1)
		sent++
		lines, left := floodCount(t, logPath, msg)
		if int64(lines)+left == sent {
			return
		}
		if int64(lines)+left > sent || time.Now().After(deadline) {
			t.Fatalf("after %d events: %d lines of %q with suppressed counts adding to %d; want lines + suppressed = %d", sent, lines, msg, left, sent)
		}
		time.Sleep(100 * time.Millisecond) // poll: the next line comes a second after the last
	}
}

// floodParallel runs one(i) for i in [0, n) on 16 goroutines and waits for them.
func floodParallel(n int, one func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				one(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// floodClosed reads c until the server closes it (EOF or a reset), within ftTimeout.
func floodClosed(c net.Conn) error {
	if err := c.SetReadDeadline(time.Now().Add(ftTimeout)); err != nil {
		return err
	}
	_, err := io.Copy(io.Discard, c)
	if err == nil || errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	return err
}

// TestLogFloodBadFrames: 2,000 connections that each send a length header above
// package_max_length are each closed, and log "closing connection" at most once per second,
// with the count of those left out.
func TestLogFloodBadFrames(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "server.log")
	set := ftSettingsN(1024)
	set.LogFile, set.LogLevel = logPath, swoole.LogLevelWarning
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, set)
	ftEchoServer(s)
	ftStart(t, s)
	network, addr := ftAddr(s.Ports()[0])
	var header [4]byte
	binary.BigEndian.PutUint32(header[:], 5000)
	floodLog(t, logPath, "closing connection", swoole.ErrPackageLengthTooLarge, func(n int) {
		floodParallel(n, func(int) {
			c, err := net.DialTimeout(network, addr, ftTimeout)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer c.Close()
			if _, err := c.Write(header[:]); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			if err := floodClosed(c); err != nil {
				t.Errorf("want the server to close the connection: %v", err)
			}
		})
	})
}

// TestLogFloodRefusedConnections: with max_connection 1 held, 2,000 more connections are
// refused and log "max_connection reached" at most once per second, with the count.
func TestLogFloodRefusedConnections(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "server.log")
	s := ftNew(t, "127.0.0.1", swoole.SockTCP, swoole.Settings{LogFile: logPath, LogLevel: swoole.LogLevelWarning, MaxConnection: 1})
	ftEchoServer(s)
	ftStart(t, s)
	held := ftDial(t, s.Ports()[0])
	ftWrite(t, held, []byte("held"))
	ftReadFull(t, held, 4)
	network, addr := ftAddr(s.Ports()[0])
	floodLog(t, logPath, "max_connection reached", swoole.ErrServerTooManySocket, func(n int) {
		floodParallel(n, func(int) {
			c, err := net.DialTimeout(network, addr, ftTimeout)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer c.Close()
			if err := floodClosed(c); err != nil {
				t.Errorf("want the server to refuse the connection: %v", err)
			}
		})
	})
}

// TestLogFloodOversizedDatagrams: 2,000 unix datagrams larger than the read buffer are
// dropped and log "datagram dropped" at most once per second, with the count.
func TestLogFloodOversizedDatagrams(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "server.log")
	path := filepath.Join(dir, "s.sock")
	s := ftNew(t, path, swoole.SockUnixDgram, swoole.Settings{LogFile: logPath, LogLevel: swoole.LogLevelWarning})
	got := make(chan string, 1)
	s.OnPacket(func(_ *swoole.Server, data []byte, _ swoole.ClientAddr) { got <- string(data) })
	ftStart(t, s)
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	big := make([]byte, 100000)
	if _, err := c.Write(big); err != nil {
		t.Skipf("the kernel refuses a 100000-byte unix datagram here: %v", err)
	}
	mark := func() { // the datagrams before it were handled once it arrives
		if _, err := c.Write([]byte("mark")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(ftTimeout):
			t.Fatal("no OnPacket for the mark")
		}
	}
	mark()
	floodLog(t, logPath, "datagram dropped", swoole.ErrPackageLengthTooLarge, func(n int) {
		if n > 1 {
			n-- // the one above counts
		}
		for range n {
			if err := c.SetWriteDeadline(time.Now().Add(ftTimeout)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(big); err != nil {
				t.Fatal(err)
			}
		}
		mark()
	})
}
