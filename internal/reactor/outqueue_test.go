//go:build linux

package reactor

import (
	"testing"

	"golang.org/x/sys/unix"
)

// queueRound queues k messages of p on c and takes them off again as writes of w bytes do:
// the output queue's work for a connection whose socket was full while a burst of replies
// was sent, then drained.
func queueRound(c *Conn, p []byte, k, w int) {
	c.mu.Lock()
	for range k {
		c.enqueueLocked(p)
	}
	for c.queued > 0 {
		c.consumeLocked(min(w, c.queued))
	}
	c.mu.Unlock()
}

// TestOutputQueueAllocs: once a connection has queued output before, queueing and draining
// more allocates nothing (the queue and its chunks are reused through the buffer pool).
func TestOutputQueueAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop what is put back")
	}
	c := NewConn(-1, nil, ConnOptions{})
	p := make([]byte, 64)
	big := make([]byte, 20<<10) // more than a chunk: a chunk of its own size
	queueRound(c, p, 300, 4096)
	queueRound(c, big, 2, 8192)
	if n := testing.AllocsPerRun(200, func() { queueRound(c, p, 300, 4096) }); n != 0 {
		t.Errorf("queueing 300 × 64 B and draining them: %.1f allocations, want 0", n)
	}
	if c.queued != 0 || len(c.q.out) != 0 || c.q.outOff != 0 {
		t.Errorf("after draining: queued %d, %d items, offset %d; want all 0", c.queued, len(c.q.out), c.q.outOff)
	}
}

// TestOutputQueueOrder: bytes come off the queue in the order they were queued, across chunk
// boundaries and partial writes.
func TestOutputQueueOrder(t *testing.T) {
	c := NewConn(-1, nil, ConnOptions{})
	var want []byte
	c.mu.Lock()
	for i := range 1000 {
		p := make([]byte, 1+i%97)
		for j := range p {
			p[j] = byte(i + j)
		}
		want = append(want, p...)
		c.enqueueLocked(p)
	}
	var got []byte
	for c.queued > 0 {
		head := c.q.out[0].buf[c.q.outOff:]
		n := min(len(head), 1+len(got)%777)
		got = append(got, head[:n]...)
		c.consumeLocked(n)
	}
	c.mu.Unlock()
	if string(got) != string(want) {
		t.Fatalf("drained %d bytes that differ from the %d queued", len(got), len(want))
	}
}

// BenchmarkOutputQueue64: a burst of 16 × 64 B replies queued behind a full socket, then
// drained by one write.
func BenchmarkOutputQueue64(b *testing.B) {
	c := NewConn(-1, nil, ConnOptions{})
	p := make([]byte, 64)
	b.ReportAllocs()
	b.SetBytes(16 * 64)
	for b.Loop() {
		queueRound(c, p, 16, 16*64)
	}
}

// BenchmarkSendDirect: Send on a connection with nothing queued writes straight to the socket
// (a socketpair here, drained by the benchmark): the path every echo reply takes.
func BenchmarkSendDirect(b *testing.B) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	c := NewConn(fds[0], nil, ConnOptions{})
	p := make([]byte, 64)
	sink := make([]byte, 64<<10)
	b.ReportAllocs()
	b.SetBytes(64)
	i := 0
	for b.Loop() {
		if err := c.Send(p); err != nil {
			b.Fatal(err)
		}
		if i++; i%256 == 0 {
			for {
				if n, _ := unix.Read(fds[1], sink); n <= 0 {
					break
				}
			}
		}
	}
}
