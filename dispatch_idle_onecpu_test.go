package swoole_test

import (
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

// TestDispatchIdleReplyAfterIdle: under dispatch_mode 3 and 7 a ModeProcess worker's reply
// reaches its client only once the worker has marked itself idle again, so a client that
// sends its next request as soon as the reply is in finds that worker idle. The tree runs on
// one CPU (taskset), where the master, woken by the reply, takes the CPU from the worker at
// once: a reply sent before the idle mark then leaves the worker marked busy while the next
// request is dispatched. With the other worker held busy in a callback, such a request finds
// no idle worker (9007, logged) and may be queued behind the held one. The test fails at
// the first such warning, and never waits on a held request: the gate opens then.
func TestDispatchIdleReplyAfterIdle(t *testing.T) {
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Skip("no taskset")
	}
	for _, mode := range []string{"3", "7"} {
		t.Run("dispatch_mode "+mode, func(t *testing.T) {
			env := []string{mpEnvMode + "=process", mpEnvDispatch + "=" + mode, mpEnvReactors + "=1"}
			ms := mpStartCommand(t, []string{taskset, "-c", "0", os.Args[0], "-test.run=^$"}, "echo", "managerstart", env...)
			ms.eventually("both workers' workerstart", func() bool { return ms.count("workerstart", nil) >= 2 })
			busy, other := ms.dial(), ms.dial()
			gate := ms.dir + "/gate"
			busy.send("hold " + gate)
			busyID := ms.waitEvent("holding", nil).int(0)
			var gated atomic.Bool
			openGate := func() {
				if gated.CompareAndSwap(false, true) {
					_ = os.WriteFile(gate, nil, 0o644)
				}
			}
			defer openGate()
			for i := range 2000 {
				id, _, _ := other.who()
				if id == busyID || strings.Contains(ms.output(), "no idle worker") {
					openGate()
					t.Fatalf("request %d: a reply reached the client while its worker was marked busy: the next request found no idle worker (answered by %d, held %d)\n%s", i, id, busyID, ms.output())
				}
			}
			openGate()
			if f := busy.read(); len(f) != 1 || f[0] != "held" {
				t.Fatalf("hold: %q", f)
			}
		})
	}
}
