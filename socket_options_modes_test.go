package swoole_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

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
