package swoole_test

// dispatch_mode 7 (stream) in ModeProcess and ModeThread (Swoole's dispatch_mode_7.phpt).

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestDispatchStream: with dispatch_mode 7 a request written in small pieces is framed and
// answered whole, a busy worker does not hold other connections back (an idle worker takes
// their packets), and every connection is served.
func TestDispatchStream(t *testing.T) {
	forReactorModes(t, testDispatchStream)
}

func testDispatchStream(t *testing.T, mode string) {
	ms := mpModeStart(t, mode, mpEnvDispatch+"=7")
	c := ms.dial()
	// An 8-24 KiB request line written 2 KiB at a time.
	body := strings.Repeat("A", 8192*3)
	line := []byte("echo " + body + "\n")
	for off := 0; off < len(line); off += 2048 {
		end := min(off+2048, len(line))
		_ = c.c.SetWriteDeadline(time.Now().Add(mpTimeout))
		if _, err := c.c.Write(line[off:end]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // separate segments
	}
	if l, err := c.readLine(); err != nil || l != body {
		t.Fatalf("the chunked request: %d bytes back, %v", len(l), err)
	}
	// One worker busy for a while: the others' requests are answered meanwhile.
	busy := ms.dial()
	gate := ms.dir + "/gate"
	busy.send("hold " + gate) // until the others were answered, however long that takes
	ms.waitEvent("holding", nil)
	for i := range 6 {
		o := ms.dial()
		msg := fmt.Sprintf("m%d", i)
		if f := o.do("echo " + msg); len(f) != 1 || f[0] != msg {
			t.Fatalf("echo %s while a worker is busy: %q", msg, f)
		}
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if f := busy.read(); len(f) != 1 || f[0] != "held" {
		t.Fatalf("the busy connection: %q", f)
	}
}
