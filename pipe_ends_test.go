package swoole_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// snoopPipes runs in a user process standing for a compromised child: until the file stop
// exists, it reads (MSG_DONTWAIT) every AF_UNIX datagram socket it holds, and then reports
// how many it tried and how many datagrams it got ("snooped <sockets> <datagrams>").
func snoopPipes(stop string) {
	mpEvent("snooping")
	tried := map[int]bool{}
	got := 0
	buf := make([]byte, 1<<20)
	for {
		if _, err := os.Stat(stop); err == nil {
			break
		}
		ents, _ := os.ReadDir("/proc/self/fd")
		for _, e := range ents {
			fd, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			dom, err1 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
			typ, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
			if err1 != nil || err2 != nil || dom != unix.AF_UNIX || typ != unix.SOCK_DGRAM {
				continue
			}
			tried[fd] = true
			for {
				n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
				if err != nil || n < 0 {
					break
				}
				got++
			}
		}
		time.Sleep(time.Millisecond) // a poll: the snooper's own pace
	}
	mpEvent("snooped", len(tried), got)
}

// TestChildCannotReadOtherPipes: a child process (here a user process) holds the ends of
// the other processes' pipes that it writes to, and every listener; reading them gets it
// nothing while events, replies and pipe messages flow between the others, because nobody
// ever writes on the far ends of those sockets (each process reads only its own end, which
// no other child holds). In both modes.
func TestChildCannotReadOtherPipes(t *testing.T) {
	for _, mode := range []string{"base", "process"} {
		t.Run(mode, func(t *testing.T) {
			stop := filepath.Join(t.TempDir(), "stop")
			ms := mpStart(t, mpEnvMode+"="+mode, mpEnvSnoop+"="+stop)
			ms.waitEvent("snooping", nil)
			var cs []*mpClient
			for range 6 {
				cs = append(cs, ms.dial())
			}
			for round := range 50 {
				for i, c := range cs {
					msg := fmt.Sprintf("r%d-c%d", round, i)
					if f := c.do("echo " + msg); len(f) != 1 || f[0] != msg {
						t.Fatalf("echo: %q", f)
					}
				}
				// A pipe message from the worker of cs[0] to each worker.
				for dst := range 2 {
					cs[0].do(fmt.Sprintf("msg %d round-%d", dst, round))
				}
			}
			ms.eventually("pipe messages delivered", func() bool { return ms.count("pipemessage", nil) >= 50 })
			if err := os.WriteFile(stop, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			e := ms.waitEvent("snooped", nil)
			if e.int(0) < 3 {
				t.Fatalf("the snooper found only %d pipe ends to read", e.int(0))
			}
			if e.int(1) != 0 {
				t.Fatalf("a child read %d datagrams from pipe ends that are not its own (%d ends)", e.int(1), e.int(0))
			}
		})
	}
}
