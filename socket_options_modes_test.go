package swoole_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// serverSockOpt reads a socket option of the server's end of the client connection c, in
// whichever process of the tree rooted at root holds it (the one process, a ModeBase worker,
// a ModeProcess master): it finds the socket's inode in /proc/net/tcp, the descriptor that
// names it in /proc/PID/fd, and takes a copy of that descriptor with pidfd_getfd(2).
func serverSockOpt(t *testing.T, root int, c net.Conn, level, opt int) int {
	t.Helper()
	local := c.LocalAddr().(*net.TCPAddr)
	remote := c.RemoteAddr().(*net.TCPAddr)
	inode := tcpInode(t, remote.Port, local.Port)
	want := "socket:[" + inode + "]"
	for _, pid := range processTree(root) {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); err != nil || l != want {
				continue
			}
			fd, _ := strconv.Atoi(e.Name())
			pidfd, err := unix.PidfdOpen(pid, 0)
			if err != nil {
				t.Fatalf("pidfd_open %d: %v", pid, err)
			}
			dup, err := unix.PidfdGetfd(pidfd, fd, 0)
			unix.Close(pidfd)
			if err != nil {
				t.Fatalf("pidfd_getfd %d/%d: %v", pid, fd, err)
			}
			defer unix.Close(dup)
			v, err := unix.GetsockoptInt(dup, level, opt)
			if err != nil {
				t.Fatalf("getsockopt: %v", err)
			}
			return v
		}
	}
	t.Fatalf("no process of the tree under %d holds the server's end of %v → %v", root, local, remote)
	return 0
}

// tcpInode is the inode of the IPv4 TCP socket from local port lport to remote port rport
// (both on 127.0.0.1), from /proc/net/tcp.
func tcpInode(t *testing.T, lport, rport int) string {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := fmt.Sprintf("0100007F:%04X", lport)
	r := fmt.Sprintf("0100007F:%04X", rport)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 9 && fs[1] == l && fs[2] == r {
			return fs[9]
		}
	}
	t.Fatalf("no socket %s → %s in /proc/net/tcp", l, r)
	return ""
}

// processTree returns root and its descendants (from the parent ids in /proc/*/stat).
func processTree(root int) []int {
	parent := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The fields after the command (in parentheses, which may hold spaces): state, ppid.
		s := string(b)
		fs := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fs) > 1 {
			ppid, _ := strconv.Atoi(fs[1])
			parent[ppid] = append(parent[ppid], pid)
		}
	}
	tree := []int{root}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, parent[tree[i]]...)
	}
	return tree
}

// featureNoDelay: accepted sockets carry open_tcp_nodelay as their port sets it (off on the
// length-framed port, on on the EOF port), read back from the server's own descriptor.
func featureNoDelay(t *testing.T, ms *mpServer, off, on int) {
	for _, p := range []struct {
		port, want int
	}{{off, 0}, {on, 1}} {
		c := featureDial(t, p.port)
		if p.port == off {
			_, _ = c.Write(featureFrame("echo x"))
			if got := featureRead(t, c); got != "x" {
				t.Fatalf("echo: %q", got)
			}
		} else {
			_, _ = c.Write([]byte("x\r\n"))
			if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
				t.Fatal(err)
			}
		}
		if got := serverSockOpt(t, ms.cmd.Process.Pid, c, unix.IPPROTO_TCP, unix.TCP_NODELAY); (got != 0) != (p.want != 0) {
			t.Errorf("port %d: TCP_NODELAY of the accepted socket = %d, want %d", p.port, got, p.want)
		}
	}
}

// featureFlood: thousands of distinct frames written back to back by a client whose receive
// buffer is small, so the server's replies wait in its output queue across many batches:
// every reply comes back whole, in order, with its own bytes (in ModeProcess the master
// queues replies that lie in the batch it read from the worker's pipe by reference, and must
// copy what is left of them before it reads the next batch).
func featureFlood(t *testing.T, port int) {
	d := net.Dialer{Timeout: mpTimeout, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(mpTimeout))
	const frames = 4000
	body := func(i int) string {
		return fmt.Sprintf("%06d:%s", i, strings.Repeat(string(rune('a'+i%26)), 100+i%400))
	}
	werr := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(c, 64<<10)
		for i := range frames {
			if _, err := w.Write(featureFrame("echo " + body(i))); err != nil {
				werr <- err
				return
			}
		}
		werr <- w.Flush()
	}()
	r := bufio.NewReader(c)
	for i := range frames {
		var h [4]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		b := make([]byte, binary.BigEndian.Uint32(h[:]))
		if _, err := io.ReadFull(r, b); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if want := body(i); string(b) != want {
			k := 0
			for k < len(b) && k < len(want) && b[k] == want[k] {
				k++
			}
			t.Fatalf("reply %d (%d bytes, want %d): differs from byte %d: %.20q", i, len(b), len(want), k, b[k:])
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
}
