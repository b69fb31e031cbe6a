package swoole_test

// ModeProcess servers as real process trees: a master holding the connections (the test's
// child) and worker processes (its children). See multiproc_helpers_test.go.

import (
	"fmt"
	"strconv"
	"testing"
)

// mpProcStart starts the echo server in ModeProcess with env added.
func mpProcStart(t *testing.T, env ...string) *mpServer {
	t.Helper()
	return mpStart(t, append([]string{mpEnvMode + "=process"}, env...)...)
}

func TestModeProcessEcho(t *testing.T) {
	ms := mpProcStart(t)
	workers := map[int]int{} // worker id → pid
	var cs []*mpClient
	for i := range 8 {
		c := ms.dial()
		cs = append(cs, c)
		msg := fmt.Sprintf("hello-%d", i)
		if f := c.do("echo " + msg); len(f) != 1 || f[0] != msg {
			t.Fatalf("echo: %q, want %q", f, msg)
		}
		id, pid, _ := c.who()
		workers[id] = pid
	}
	if len(workers) != 2 {
		t.Fatalf("8 connections reached workers %v: want both workers", workers)
	}
	for id, pid := range workers {
		if pid == ms.Manager {
			t.Fatalf("worker %d runs in the master (pid %d)", id, pid)
		}
	}
	f := cs[0].do("pids")
	if len(f) != 5 || atoi(f[1]) != ms.Manager || atoi(f[2]) != ms.Manager {
		t.Fatalf("pids %q: want master = manager = %d", f, ms.Manager)
	}
	if f := cs[0].do("stats"); len(f) != 6 || f[1] != "2" || f[2] != "8" {
		t.Fatalf("stats %q: want worker_num 2, connection_num 8", f)
	}
	_, _, fd := cs[1].who()
	if f := cs[0].do("info " + strconv.FormatInt(fd, 10)); len(f) != 3 || f[1] != "0" {
		t.Fatalf("info of session %d: %q, want reactor 0", fd, f)
	}
}
