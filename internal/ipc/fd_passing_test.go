//go:build linux

package ipc

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole/internal/sys"
)

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("read /proc/self/fd: %v", err)
	}
	return len(ents) - 1 // the directory being read
}

// tempFD opens a new temporary file and returns a descriptor of it and its inode.
func tempFD(t *testing.T, name string) (int, uint64) {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(name), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fd, inode(t, fd)
}

func inode(t *testing.T, fd int) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatalf("fstat %d: %v", fd, err)
	}
	return st.Ino
}

// readAll reads until want messages came, calling fn for each.
func readAll(t *testing.T, r *Reader, want int, fn func(Header, []byte)) {
	t.Helper()
	n := want
	if err := readN(r, &n, time.Now().Add(10*time.Second), fn); err != nil {
		t.Fatalf("read: %v", err)
	}
}

// A descriptor written with a message among others packed in one burst reaches that
// message, and only it; the ones the reader takes are the same files, the others are
// closed: no descriptor is left open at either end.
func TestWriteFDTravelsWithItsMessage(t *testing.T) {
	a, b := newPair(t)
	w := newWriter(t, a, Config{})
	r := newReader(t, b, Config{})
	base := openFDs(t)
	fd1, ino1 := tempFD(t, "one")
	fd2, ino2 := tempFD(t, "two")
	fd3, _ := tempFD(t, "three") // not taken by the reader

	w.Hold()
	for i := range 10 {
		var err error
		h := Header{Type: TypeSend, Fd: int64(i)}
		switch i {
		case 3:
			err = w.WriteFD(h, []byte("file one"), fd1)
		case 4:
			err = w.WriteFD(h, nil, fd2)
		case 7:
			err = w.WriteFD(h, []byte("file three"), fd3)
		default:
			err = w.Write(h, []byte("plain"))
		}
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := w.Release(); err != nil {
		t.Fatal(err)
	}
	got := map[int64]uint64{}
	readAll(t, r, 10, func(h Header, p []byte) {
		if h.Fd == 7 {
			return // left to the reader to close
		}
		fd := r.TakeFD()
		if fd < 0 {
			return
		}
		got[h.Fd] = inode(t, fd)
		if r.TakeFD() != -1 {
			t.Errorf("message %d: a second TakeFD returned a descriptor", h.Fd)
		}
		unix.Close(fd)
	})
	if len(got) != 2 || got[3] != ino1 || got[4] != ino2 {
		t.Fatalf("descriptors by message: %v, want 3: inode %d, 4: inode %d", got, ino1, ino2)
	}
	if n := openFDs(t); n != base {
		t.Fatalf("%d descriptors open after the exchange, %d before: a descriptor leaked", n, base)
	}
}

// A descriptor written while the socket is full waits in the queue with its message and
// goes out with it on Flush; Discard closes the ones still queued.
func TestWriteFDQueuedAndDiscarded(t *testing.T) {
	a, b := newPair(t)
	w := newWriter(t, a, Config{})
	r := newReader(t, b, Config{})
	base := openFDs(t)
	big := make([]byte, 60<<10)
	n := 0
	for w.Buffered() == 0 {
		if err := w.Write(Header{Type: TypeData, Fd: int64(n)}, big); err != nil {
			t.Fatal(err)
		}
		n++
		if n > 10000 {
			t.Fatal("the socket never filled")
		}
	}
	fd, ino := tempFD(t, "queued")
	if err := w.WriteFD(Header{Type: TypeSendFile, Fd: -1}, []byte("x"), fd); err != nil {
		t.Fatal(err)
	}
	if openFDs(t) != base+1 {
		t.Fatalf("the queued message does not hold its descriptor")
	}
	var got uint64
	seen := 0
	deadline := time.Now().Add(10 * time.Second)
	for seen < n+1 {
		if _, err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		k, err := r.ReadBatch(func(h Header, p []byte) {
			seen++
			if h.Type == TypeSendFile {
				if seen != n+1 {
					t.Errorf("the message with a descriptor came %d-th, want %d-th", seen, n+1)
				}
				if fd := r.TakeFD(); fd >= 0 {
					got = inode(t, fd)
					unix.Close(fd)
				}
			} else if r.TakeFD() != -1 {
				t.Errorf("message %d brought a descriptor", h.Fd)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 && time.Now().After(deadline) {
			t.Fatalf("read %d of %d messages", seen, n+1)
		}
	}
	if got != ino {
		t.Fatalf("received inode %d, want %d", got, ino)
	}
	if k := openFDs(t); k != base {
		t.Fatalf("%d descriptors open, %d before", k, base)
	}

	// Queued again, then discarded: the descriptor is closed.
	for w.Buffered() == 0 {
		if err := w.Write(Header{Type: TypeData}, big); err != nil {
			t.Fatal(err)
		}
	}
	fd, _ = tempFD(t, "discarded")
	if err := w.WriteFD(Header{Type: TypeSendFile}, nil, fd); err != nil {
		t.Fatal(err)
	}
	w.Discard()
	for { // what the socket took: the reader closes nothing of it but its own
		k, err := r.ReadBatch(func(Header, []byte) {})
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			break
		}
	}
	if k := openFDs(t); k != base {
		t.Fatalf("%d descriptors open after Discard, %d before", k, base)
	}
}

// WriteFD closes the descriptor when it refuses the message.
func TestWriteFDErrorsCloseTheDescriptor(t *testing.T) {
	a, _ := newPair(t)
	w := newWriter(t, a, Config{MaxPayload: 1024})
	base := openFDs(t)
	fd, _ := tempFD(t, "big")
	if err := w.WriteFD(Header{Type: TypeSendFile}, make([]byte, 2048), fd); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("WriteFD of a chunked message: %v, want ErrTooLarge", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
		// fcntl on a closed descriptor fails; the number may have been reused meanwhile,
		// but nothing in this test opens files.
		t.Fatalf("descriptor %d still open after a refused WriteFD", fd)
	}
	if k := openFDs(t); k != base {
		t.Fatalf("%d descriptors open, %d before", k, base)
	}
	if err := w.WriteFD(Header{Type: TypeSendFile}, nil, -1); err == nil {
		t.Fatal("WriteFD accepted descriptor -1")
	}
}

// rawSend sends one datagram with an SCM_RIGHTS message carrying fds, as a forged sender
// could.
func rawSend(t *testing.T, f *os.File, dgram []byte, fds ...int) {
	t.Helper()
	if err := unix.Sendmsg(int(f.Fd()), dgram, unix.UnixRights(fds...), nil, unix.MSG_DONTWAIT); err != nil {
		t.Fatalf("sendmsg: %v", err)
	}
}

// Descriptors on a datagram that cannot carry them (two descriptors, several packed
// records, a chunk) are closed and the datagram dropped; a later message is read as usual.
func TestReaderDropsForgedDescriptors(t *testing.T) {
	a, b := newPair(t)
	var drops []error
	r := newReader(t, b, Config{MaxPayload: 1024, OnDrop: func(_ Header, err error) { drops = append(drops, err) }})
	base := openFDs(t)
	fd1, _ := tempFD(t, "a")
	fd2, _ := tempFD(t, "b")
	whole := func(fd int64) []byte {
		return datagrams(Header{Type: TypeSendFile, Fd: fd}, []byte("payload"), 1024)[0]
	}
	rawSend(t, a, whole(1), fd1, fd2)                                                             // two descriptors
	rawSend(t, a, append(whole(2), whole(3)...), fd1)                                             // packed records
	rawSend(t, a, datagrams(Header{Type: TypeSendFile, Fd: 4}, make([]byte, 3000), 1024)[0], fd1) // a chunk
	rawSend(t, a, whole(5), fd1, fd2, fd1, fd2, fd1, fd2)                                         // more than fit
	unix.Close(fd1)
	unix.Close(fd2)
	rawSend(t, a, whole(6))
	var got []int64
	readAll(t, r, 1, func(h Header, p []byte) {
		got = append(got, h.Fd)
		if fd := r.TakeFD(); fd != -1 {
			t.Errorf("message %d: TakeFD %d, want -1", h.Fd, fd)
		}
	})
	if len(got) != 1 || got[0] != 6 {
		t.Fatalf("delivered %v, want only 6", got)
	}
	if len(drops) != 4 {
		t.Fatalf("%d drops (%v), want 4", len(drops), drops)
	}
	for _, err := range drops {
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("drop reason %v, want ErrMalformed", err)
		}
	}
	if k := openFDs(t); k != base {
		t.Fatalf("%d descriptors open, %d before: a forged descriptor leaked", k, base)
	}
}

// A nested ReadBatch gives the inner messages no descriptor of the outer one, and the outer
// callback still takes its own after; a panic in fn closes the descriptors of the datagrams
// it left unread.
func TestReaderDescriptorsNestedAndPanic(t *testing.T) {
	a, b := newPair(t)
	w := newWriter(t, a, Config{})
	r := newReader(t, b, Config{})
	base := openFDs(t)
	fd, ino := tempFD(t, "outer")
	if err := w.WriteFD(Header{Type: TypeSendFile, Fd: 1}, nil, fd); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(Header{Type: TypeSend, Fd: 2}, []byte("inner")); err != nil {
		t.Fatal(err)
	}
	var outer uint64
	inner := 0
	readAll(t, r, 1, func(h Header, p []byte) {
		if h.Fd != 1 {
			t.Fatalf("first message %d", h.Fd)
		}
		if _, err := r.ReadBatch(func(h Header, p []byte) {
			inner++
			if got := r.TakeFD(); got != -1 {
				t.Errorf("inner message %d got descriptor %d", h.Fd, got)
			}
		}); err != nil {
			t.Fatal(err)
		}
		if got := r.TakeFD(); got >= 0 {
			outer = inode(t, got)
			unix.Close(got)
		}
	})
	if inner != 1 || outer != ino {
		t.Fatalf("inner messages %d, outer inode %d (want 1, %d)", inner, outer, ino)
	}

	for i := range 3 {
		fd, _ := tempFD(t, "panic")
		if err := w.WriteFD(Header{Type: TypeSendFile, Fd: int64(i)}, nil, fd); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.WaitReadable(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() { _ = recover() }()
		_, _ = r.ReadBatch(func(Header, []byte) { panic("callback failed") })
	}()
	for { // datagrams the failed batch did not receive
		k, err := r.ReadBatch(func(Header, []byte) {})
		if err != nil || k == 0 {
			break
		}
	}
	if k := openFDs(t); k != base {
		t.Fatalf("%d descriptors open, %d before", k, base)
	}
}

// The control buffer helpers agree with x/sys/unix.
func TestControlHelpers(t *testing.T) {
	b := make([]byte, sys.RightsSpace(1))
	n := sys.PutRights(b, 7)
	want := unix.UnixRights(7)
	if n != len(want) || string(b[:n]) != string(want) {
		t.Fatalf("PutRights: % x, want % x", b[:n], want)
	}
	c := sys.ParseControl(append(unix.UnixRights(9, 10), unix.UnixCredentials(&unix.Ucred{Pid: 42, Uid: 1, Gid: 2})...))
	if c.NFD != 2 || c.FDs[0] != 9 || c.FDs[1] != 10 || !c.Cred || c.PID != 42 || c.UID != 1 || c.GID != 2 {
		t.Fatalf("ParseControl: %+v", c)
	}
}

const forgerEnv = "GOSWOOLE_IPC_FORGER" // hex of a datagram to send on fd 3

// runForger is the test binary acting as another process that writes one datagram (given
// in hex) on the socket it inherited as fd 3.
func runForger(d string) int {
	b, err := hex.DecodeString(d)
	if err != nil {
		return 2
	}
	if err := unix.Sendmsg(3, b, nil, nil, unix.MSG_DONTWAIT); err != nil {
		fmt.Fprintln(os.Stderr, "forger:", err)
		return 1
	}
	return 0
}

// Every message tells its sender's pid (SO_PASSCRED, set by NewPair), and a chunk that
// another process slips into a message, under the same SrcWorker and MsgID, is dropped
// without breaking the message.
func TestSenderPIDAndForeignChunks(t *testing.T) {
	a, b := newPair(t)
	var drops []error
	cfg := Config{MaxPayload: 1024, OnDrop: func(_ Header, err error) { drops = append(drops, err) }}
	r := newReader(t, b, cfg)
	w := newWriter(t, a, cfg)
	if err := w.Write(Header{Type: TypeSend, Fd: 1}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	pids := map[int64]int32{}
	readAll(t, r, 1, func(h Header, _ []byte) { pids[h.Fd] = r.SenderPID() })
	if pids[1] != int32(os.Getpid()) {
		t.Fatalf("SenderPID %d, want this process's %d", pids[1], os.Getpid())
	}

	h := Header{Type: TypeData, SrcWorker: 5, Fd: 2, MsgID: 77}
	msg := pattern(3, 3000)
	chunks := datagrams(h, msg, 1024)
	if len(chunks) < 3 {
		t.Fatalf("%d chunks", len(chunks))
	}
	send := func(d []byte) {
		t.Helper()
		if err := unix.Sendmsg(int(a.Fd()), d, nil, nil, unix.MSG_DONTWAIT); err != nil {
			t.Fatal(err)
		}
	}
	send(chunks[0])
	// Another process sends the second chunk, with other bytes.
	forged := datagrams(h, pattern(9, 3000), 1024)[1]
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), forgerEnv+"="+hex.EncodeToString(forged))
	cmd.ExtraFiles = []*os.File{a}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("forger: %v\n%s", err, out)
	}
	for _, d := range chunks[1:] {
		send(d)
	}
	var got []byte
	readAll(t, r, 1, func(h Header, p []byte) {
		got = bytes.Clone(p)
		pids[h.Fd] = r.SenderPID()
	})
	if err := checkPattern(got, 3, len(msg)); err != nil {
		t.Fatalf("the message with a foreign chunk in its midst: %v", err)
	}
	if pids[2] != int32(os.Getpid()) {
		t.Fatalf("SenderPID %d, want %d", pids[2], os.Getpid())
	}
	if len(drops) != 1 || !errors.Is(drops[0], ErrMalformed) {
		t.Fatalf("drops %v, want the foreign chunk's", drops)
	}
}
