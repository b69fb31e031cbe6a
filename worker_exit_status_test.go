package swoole_test

// GetWorkerStatus(-1) along a reload of a worker that keeps a tick (Swoole's
// event/worker_exit.phpt, with the "wexit" builder of reload_workers_test.go): idle (2) in
// OnWorkerStart and in the tick, exit (3) in OnWorkerExit, idle again in the replacement's
// OnWorkerStart.

import (
	"strconv"
	"syscall"
	"testing"

	"github.com/goswoole/swoole"
)

// TestWorkerStatusAlongReload: the statuses Swoole's event/worker_exit.phpt expects.
func TestWorkerStatusAlongReload(t *testing.T) {
	ms := mpStartServer(t, "wexit", "managerstart")
	first := ms.waitEvent("ws", nil)
	tick := ms.waitEvent("tick", nil)
	ms.signal(syscall.SIGUSR1)
	ms.eventually("the replacement", func() bool { return ms.count("ws", nil) == 2 })
	exit := ms.waitEvent("wexit", nil)
	var second mpEv
	for _, e := range ms.events() {
		if e.Name == "ws" && e.PID != first.PID {
			second = e
		}
	}
	idle, exiting := strconv.Itoa(swoole.WorkerIdle), strconv.Itoa(swoole.WorkerExit)
	for _, c := range []struct {
		where string
		e     mpEv
		want  string
	}{
		{"OnWorkerStart", first, idle},
		{"the tick", tick, idle},
		{"OnWorkerExit", exit, exiting},
		{"the replacement's OnWorkerStart", second, idle},
	} {
		if len(c.e.Fields) < 2 || c.e.Fields[0] != "0" || c.e.Fields[1] != c.want {
			t.Errorf("%s: worker id and GetWorkerStatus(-1) %v, want 0 %s", c.where, c.e.Fields, c.want)
		}
	}
	if exit.PID != first.PID {
		t.Errorf("OnWorkerExit ran in pid %d, want the reloaded worker %d", exit.PID, first.PID)
	}
}
