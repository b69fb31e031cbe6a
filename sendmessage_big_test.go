package swoole_test

// Large pipe messages between the workers of ModeProcess (Swoole's bigPipeMessage.phpt,
// sendMessage_3.phpt).

import (
	"fmt"
	"testing"
)

// TestSendMessageLargeProcessMode: in ModeProcess, SendMessage of 800,000 bytes and of
// 2 MiB + 17 from one worker to the other arrives whole (length and checksum) in the
// target's OnPipeMessage with the sender's id; so does 2 MiB from a user process.
func TestSendMessageLargeProcessMode(t *testing.T) {
	ms := upStart(t, mpEnvMode+"=process")
	ms.upPID(1)
	var conns [2]*mpClient
	for n := 0; conns[0] == nil || conns[1] == nil; n++ {
		if n > 40 {
			t.Fatal("40 connections all went to one worker")
		}
		c := ms.dial()
		id, _, _ := c.who()
		if conns[id] == nil {
			conns[id] = c
		}
	}
	for _, size := range []int{800000, 2<<20 + 17} {
		for from := range 2 {
			f := conns[from].do(fmt.Sprintf("big %d %d", 1-from, size))
			if len(f) != 3 || f[1] != "0" {
				t.Fatalf("big %d bytes from worker %d: %q", size, from, f)
			}
			ms.waitEvent("bigmessage", func(e mpEv) bool {
				return e.int(0) == 1-from && e.int(1) == from && e.int(2) == size && e.Fields[3] == f[2]
			})
		}
	}
	conns[0].do(fmt.Sprintf("up big 1 %d", 2<<20))
	up := ms.waitEvent("up-big", nil)
	if up.int(0) != 0 {
		t.Fatalf("big from the user process: code %d", up.int(0))
	}
	ms.waitEvent("bigmessage", func(e mpEv) bool {
		return e.int(0) == 1 && e.int(1) == 3 && e.int(2) == 2<<20 && e.Fields[3] == up.Fields[1]
	})
}
