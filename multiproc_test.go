package swoole_test

// Multi-process ModeBase servers (worker_num > 1, max_request), as real process trees: see
// multiproc_helpers_test.go for how a test starts one.

import (
	"testing"
)

func TestMultiProcEcho(t *testing.T) {
	ms := mpStart(t)
	c := ms.dial()
	if f := c.do("echo hello"); len(f) != 1 || f[0] != "hello" {
		t.Fatalf("echo: %q", f)
	}
	id, pid, fd := c.who()
	t.Logf("worker %d pid %d fd %d", id, pid, fd)
}
