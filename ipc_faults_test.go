package swoole_test

import (
	"strconv"
	"strings"
	"testing"
)

// TestIPCCutMessage: a message between two processes cut in the middle (the writer sends
// the first half of its datagrams and never the rest, as a process killed while sending it
// would) is dropped whole by its reader, counted in Stats (lost_message_count) and logged;
// the connection it was for, and every other, goes on. In ModeProcess (a worker's Send
// through the master's reactor) and ModeBase with workers (a Send to another worker's
// connection).
func TestIPCCutMessage(t *testing.T) {
	for _, mode := range []string{"base", "process"} {
		t.Run(mode, func(t *testing.T) {
			ms := mpStart(t, mpEnvMode+"="+mode, mpEnvDispatch+"=2", mpEnvFault+"=cut")
			byWorker := map[int][]*mpClient{}
			for i := 0; i < 40 && (len(byWorker[0]) < 1 || len(byWorker[1]) < 1); i++ {
				c := ms.dial()
				id, _, _ := c.who()
				byWorker[id] = append(byWorker[id], c)
			}
			if len(byWorker[0]) < 1 || len(byWorker[1]) < 1 {
				t.Fatalf("connections per worker: %d and %d", len(byWorker[0]), len(byWorker[1]))
			}
			target, sender := byWorker[0][0], byWorker[1][0]
			_, _, fd := target.who()
			from := sender // ModeBase: another worker's Send crosses a pipe
			if mode == "process" {
				from = target // ModeProcess: every Send crosses the reactor's pipe
			}
			// One 350,000-byte message (cut), then a small one, to the target.
			if f := from.do("flood " + strconv.FormatInt(fd, 10) + " 1 350000"); len(f) != 2 || f[0] != "flooded" {
				t.Fatalf("flood: %q", f)
			}
			if f := sender.do("send " + strconv.FormatInt(fd, 10) + " after-the-cut"); len(f) != 2 || f[1] != "0" {
				t.Fatalf("send: %q", f)
			}
			if f := target.read(); len(f) != 1 || f[0] != "after-the-cut" {
				t.Fatalf("the target got %.60q; want the message after the cut one (the cut one dropped whole)", strings.Join(f, " "))
			}
			ms.eventually("the drop counted", func() bool {
				f := sender.do("lost")
				return len(f) == 2 && atoi(f[1]) >= 1
			})
			ms.eventually("the drop logged", func() bool {
				return strings.Contains(ms.output(), "a message between the server's processes was dropped")
			})
			// Every connection still works.
			for id, cs := range byWorker {
				for _, c := range cs {
					if f := c.do("echo still-here"); len(f) != 1 || f[0] != "still-here" {
						t.Fatalf("worker %d's connection after the cut: %q", id, f)
					}
				}
			}
		})
	}
}
