//go:build linux

package reactor

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// roundLog records the rounds and where each readiness report fell.
type roundLog struct {
	in     bool
	starts int
	ends   int
	inside int // readiness reports handled inside a round
	out    int // ... outside one
}

func (r *roundLog) RoundStart() {
	if r.in {
		panic("RoundStart inside a round")
	}
	r.in = true
	r.starts++
}

func (r *roundLog) RoundEnd() {
	if !r.in {
		panic("RoundEnd outside a round")
	}
	r.in = false
	r.ends++
}

// TestRounds: every event the loop dispatches falls between a RoundStart and its RoundEnd;
// posted tasks run outside rounds.
func TestRounds(t *testing.T) {
	rl := &roundLog{}
	l, err := New(nopHandler{}, Config{Rounds: rl})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var pipes [3][2]int
	readers := make([]*countFD, 3)
	for i := range pipes {
		if err := unix.Pipe2(pipes[i][:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(pipes[i][0])
		defer unix.Close(pipes[i][1])
		readers[i] = &countFD{fd: pipes[i][0], rl: rl}
		if err := l.AddFD(pipes[i][0], readers[i], Readable); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- l.Run() }()
	for round := range 5 {
		for i := range pipes {
			if _, err := unix.Write(pipes[i][1], []byte{byte(round)}); err != nil {
				t.Fatal(err)
			}
		}
		// Wait until the loop has read all three (bounded).
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := make(chan int, 1)
			l.Post(Task{Fn: func() {
				if rl.in {
					panic("a posted task ran inside a round")
				}
				got <- readers[0].n + readers[1].n + readers[2].n
			}})
			if <-got == 3*(round+1) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the loop did not read the pipes", round)
			}
			time.Sleep(time.Millisecond)
		}
	}
	l.Post(Task{Fn: l.Stop}) // Stop from the loop goroutine
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if rl.out != 0 || rl.inside != 15 || rl.starts != rl.ends || rl.starts == 0 {
		t.Fatalf("rounds: %+v; want every one of 15 reads inside a round", *rl)
	}
}

// countFD reads a pipe and notes whether the read happened inside a round.
type countFD struct {
	fd int
	n  int
	rl *roundLog
}

func (c *countFD) Readable() {
	var b [16]byte
	if n, err := unix.Read(c.fd, b[:]); err == nil {
		c.n += n
		if c.rl.in {
			c.rl.inside += n
		} else {
			c.rl.out += n
		}
	}
}
func (c *countFD) Writable() {}
