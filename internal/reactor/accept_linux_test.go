//go:build linux

package reactor

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listenerFD returns a dup of ln's descriptor, blocking, for accept4 in tests.
func listenerFD(t *testing.T, ln net.Listener) int {
	t.Helper()
	f, err := ln.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

// TestAccept4 checks the allocation-free accept4 against what unix.Accept4 reports.
func TestAccept4(t *testing.T) {
	l, err := New(nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sock := filepath.Join(t.TempDir(), "a-unix-socket-path-longer-than-16.sock")
	tests := []struct {
		network, addr string
		bindClient    string // unix: the client's own path ("" = unnamed)
	}{
		{"tcp4", "127.0.0.1:0", ""},
		{"tcp6", "[::1]:0", ""},
		{"unix", sock, ""},
		{"unix", sock + "2", sock + ".client"},
	}
	for _, tc := range tests {
		name := tc.network
		if tc.bindClient != "" {
			name += " named client"
		}
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen(tc.network, tc.addr)
			if err != nil {
				t.Skipf("listen %s: %v", tc.network, err)
			}
			defer ln.Close()
			fd := listenerFD(t, ln)
			var c net.Conn
			if tc.bindClient != "" {
				d := net.Dialer{LocalAddr: &net.UnixAddr{Name: tc.bindClient, Net: "unix"}}
				c, err = d.Dial(tc.network, ln.Addr().String())
			} else {
				c, err = net.DialTimeout(tc.network, ln.Addr().String(), 5*time.Second)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			nfd, sa, err := l.accept4(fd, unix.SOCK_CLOEXEC)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(nfd)
			want, err := unix.Getpeername(nfd)
			if err != nil {
				t.Fatal(err)
			}
			switch w := want.(type) {
			case *unix.SockaddrInet4:
				g, ok := sa.(*unix.SockaddrInet4)
				if !ok || g.Port != w.Port || g.Addr != w.Addr || g.Port != c.LocalAddr().(*net.TCPAddr).Port {
					t.Errorf("got %#v, want %#v", sa, w)
				}
			case *unix.SockaddrInet6:
				g, ok := sa.(*unix.SockaddrInet6)
				if !ok || g.Port != w.Port || g.Addr != w.Addr || g.ZoneId != w.ZoneId {
					t.Errorf("got %#v, want %#v", sa, w)
				}
			case *unix.SockaddrUnix:
				g, ok := sa.(*unix.SockaddrUnix)
				wantName := tc.bindClient
				if wantName == "" {
					wantName = "@" // unnamed, as unix.Accept4 shows it
				}
				if !ok || g.Name != wantName {
					t.Errorf("got %#v, want name %q", sa, wantName)
				}
			default:
				t.Fatalf("peer %T", want)
			}
		})
	}
	// Nothing pending on a non-blocking listener: EAGAIN, no descriptor.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fd := listenerFD(t, ln)
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	if nfd, sa, err := l.accept4(fd, 0); err != unix.EAGAIN || nfd != -1 || sa != nil {
		t.Errorf("accept4 on an empty listener = %d, %v, %v; want EAGAIN", nfd, sa, err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _, _ = l.accept4(fd, 0) }); n != 0 {
		t.Errorf("accept4 allocates %.1f times per call", n)
	}
}
