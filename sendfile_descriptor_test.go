package swoole_test

// SendFile for a connection another process holds (the ModeProcess master's, another
// ModeBase worker's): the asking worker opens the file with its own rights and passes the
// descriptor; the owner never opens a name. So a worker that dropped to `user` cannot make
// the master (root) send a file only root may read, neither through SendFile nor by writing
// a forged request straight into the master's pipe, as any child process can.

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goswoole/swoole"
	"github.com/goswoole/swoole/internal/ipc"
)

const sfdEnvUser = "GOSWOOLE_TEST_SFD_USER" // user of the workers ("": no drop)

func init() {
	mpMoreServers["sendfd"] = sfdServerMain
}

// sfdServerMain: a line server (mode from mpEnvMode, two workers, one reactor) whose
// workers run as sfdEnvUser. Each request's answer ends with a line "END <n>":
//
//	file <path>          → SendFile(fd, path, 0, 0); n is its error code (0: sent)
//	forge <path> <size>  → a TypeSendFile request naming path, written as a compromised
//	                       worker would: straight into every AF_UNIX datagram socket this
//	                       process holds (the reactors' pipes among them); n is how many
//	                       took it
//	forgeevent           → a client's data event ("injected") for this session and a
//	                       PipeMessage, both claiming to come from the master, written the
//	                       same way; a worker that runs the first logs the event
//	                       "injected", one that runs the second logs "pipemessage <src>"
func sfdServerMain() int {
	s, err := swoole.NewServer("127.0.0.1", 0, mpMode(), swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	set := swoole.Settings{WorkerNum: 2, ReactorNum: 1, User: os.Getenv(sfdEnvUser), LogLevel: swoole.LogLevelWarning, MaxWaitTime: 3 * time.Second, OpenEOFSplit: true, PackageEOF: "\n"}
	if err := s.Set(set); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		f := strings.Fields(string(data))
		n := -1
		switch {
		case len(f) == 2 && f[0] == "file":
			n = mpCode(s.SendFile(fd, f[1], 0, 0))
		case len(f) == 3 && f[0] == "forge":
			size, _ := strconv.ParseInt(f[2], 10, 64)
			n = sfdForge(int16(s.GetWorkerID()), fd, f[1], size)
		case len(f) == 1 && f[0] == "forgeevent":
			n = sfdSpray(ipc.Header{Type: ipc.TypeData, Flags: ipc.FlagChunkMask, SrcWorker: -1, Fd: fd}, []byte("injected\n"))
			sfdSpray(ipc.Header{Type: ipc.TypePipeMessage, Flags: ipc.FlagChunkMask, SrcWorker: -1}, []byte("forged"))
		case len(f) == 1 && f[0] == "forgepeer":
			// A PipeMessage in the other worker's name, as a compromised worker could write.
			n = sfdSpray(ipc.Header{Type: ipc.TypePipeMessage, Flags: ipc.FlagChunkMask, SrcWorker: int16(1 - s.GetWorkerID())}, []byte("forged"))
		case len(f) == 1 && f[0] == "injected":
			mpEvent("injected")
			return
		}
		_ = s.Send(fd, []byte("END "+strconv.Itoa(n)+"\n"))
	})
	s.OnPipeMessage(func(_ *swoole.Server, src int, _ []byte) { mpEvent("pipemessage", src) })
	s.OnManagerStart(func(*swoole.Server) { mpEvent("managerstart", port) })
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// sfdForge writes a SendFile request for session fd naming path (size bytes from 0), with
// no descriptor, in the name of worker src (the writer's own id: the pid check lets it
// through, so the request meets the SendFile check itself), into every AF_UNIX datagram
// socket of this process, and returns how many took it.
func sfdForge(src int16, fd int64, path string, size int64) int {
	payload := binary.LittleEndian.AppendUint64(nil, 0)
	payload = binary.LittleEndian.AppendUint64(payload, uint64(size))
	payload = append(payload, path...)
	return sfdSpray(ipc.Header{Type: ipc.TypeSendFile, Flags: ipc.FlagChunkMask, SrcWorker: src, Fd: fd}, payload)
}

// sfdSpray writes one message into every AF_UNIX datagram socket of this process, and
// returns how many took it.
func sfdSpray(h ipc.Header, payload []byte) int {
	h.Len = uint32(len(payload))
	dgram := append(h.AppendEncode(nil), payload...)
	ents, _ := os.ReadDir("/proc/self/fd")
	n := 0
	for _, e := range ents {
		sfd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dom, err1 := unix.GetsockoptInt(sfd, unix.SOL_SOCKET, unix.SO_DOMAIN)
		typ, err2 := unix.GetsockoptInt(sfd, unix.SOL_SOCKET, unix.SO_TYPE)
		if err1 != nil || err2 != nil || dom != unix.AF_UNIX || typ != unix.SOCK_DGRAM {
			continue
		}
		if unix.Sendmsg(sfd, dgram, nil, nil, unix.MSG_DONTWAIT) == nil {
			n++
		}
	}
	return n
}

// sfdSetup starts the server in mode (as root: workers as nobody, and a copy of the test
// binary they may run) and returns it with a directory the workers can read.
func sfdSetup(t *testing.T, mode string) (ms *mpServer, public string) {
	t.Helper()
	env := []string{mpEnvMode + "=" + mode}
	bin := os.Args[0]
	public = t.TempDir()
	if os.Geteuid() == 0 {
		var dir string
		dir, bin = pdSetup(t)
		public = dir
		env = append(env, sfdEnvUser+"=nobody")
	} else {
		t.Log("not root: the workers run as this user (the master's rights are the same)")
	}
	ms = mpStartBinary(t, bin, "sendfd", "managerstart", env...)
	if os.Geteuid() == 0 { // the workers (nobody) log events too
		for _, p := range []struct {
			path string
			mode os.FileMode
		}{{filepath.Dir(ms.dir), 0o755}, {ms.dir, 0o777}, {filepath.Join(ms.dir, "events"), 0o666}} {
			if err := os.Chmod(p.path, p.mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	return ms, public
}

// sfdSecret writes a file only its owner (root, when the test runs as root) may read, and
// returns its path and content.
func sfdSecret(t *testing.T) (string, []byte) {
	t.Helper()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	secret := []byte("SECRET-" + hex.EncodeToString(b))
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, secret
}

// sfdRequest sends a line and returns what came before the line "END <n>", and n.
func sfdRequest(t *testing.T, c *mpClient, line string) (before string, n int) {
	t.Helper()
	c.send(line)
	var got strings.Builder
	for {
		l, err := c.readLine()
		if err != nil {
			t.Fatalf("%q: read after %q: %v", line, got.String(), err)
		}
		if i := strings.Index(l, "END "); i >= 0 {
			got.WriteString(l[:i])
			n, _ = strconv.Atoi(strings.TrimSpace(l[i+4:]))
			return got.String(), n
		}
		got.WriteString(l + "\n")
	}
}

// TestSendFileUsesTheWorkersRights: a worker running as nobody asks SendFile of a file only
// root may read: SendFile fails in the worker with 502 (the open's EACCES) and the client
// gets nothing of it. A file nobody may read is sent whole, through the master's reactor in
// ModeProcess (the worker's descriptor travels with the request). Run as root to check the
// refusal (the test says so otherwise).
func TestSendFileUsesTheWorkersRights(t *testing.T) {
	for _, mode := range []string{"process", "base"} {
		t.Run(mode, func(t *testing.T) {
			ms, public := sfdSetup(t, mode)
			secretPath, secret := sfdSecret(t)
			pub := filepath.Join(public, "public")
			content := bytes.Repeat([]byte("public file\n"), 20000)
			if err := os.WriteFile(pub, content, 0o644); err != nil {
				t.Fatal(err)
			}
			c := ms.dial()
			got, code := sfdRequest(t, c, "file "+pub)
			if code != 0 || got != string(content) {
				t.Fatalf("SendFile of a readable file: code %d, %d bytes (want 0, %d)", code, len(got), len(content))
			}
			if os.Geteuid() != 0 {
				t.Skip("the refusal needs a worker running as another user: run the tests as root")
			}
			got, code = sfdRequest(t, c, "file "+secretPath)
			if code != swoole.ErrSystemCallFail {
				t.Errorf("SendFile of a root-only file from a worker running as nobody: code %d, want %d", code, swoole.ErrSystemCallFail)
			}
			if strings.Contains(got, string(secret)) || got != "" {
				t.Fatalf("the client got %q before the answer: the root-only file was sent", got)
			}
		})
	}
}

// TestForgedSendFileRequestSendsNothing: a worker writes a SendFile request naming a file
// only root may read straight into the pipes it holds, as a compromised worker could (no
// descriptor comes with it). The master (root) must not open the name: the client gets
// nothing before the worker's next reply, and the master logs the refusal. Before, the
// master opened the path as root and sent the file.
func TestForgedSendFileRequestSendsNothing(t *testing.T) {
	ms, _ := sfdSetup(t, "process")
	secretPath, secret := sfdSecret(t)
	c := ms.dial()
	got, n := sfdRequest(t, c, fmt.Sprintf("forge %s %d", secretPath, len(secret)))
	if n < 1 {
		t.Fatalf("the worker could write its forged request into no pipe (%d)", n)
	}
	if strings.Contains(got, string(secret)) {
		t.Fatalf("the master sent the root-only file %s to the client on a forged request", secretPath)
	}
	if got != "" {
		t.Fatalf("the client got %q before the worker's answer", got)
	}
	ms.eventually("the master's warning", func() bool {
		return strings.Contains(ms.output(), "SendFile request from another process was refused")
	})
	// The connection still works.
	if got, code := sfdRequest(t, c, "file /nonexistent/file"); got != "" || code != swoole.ErrSystemCallFail {
		t.Fatalf("after the forged request: %q, code %d", got, code)
	}
}

// TestForgedManagerMessagesDropped: a ModeProcess worker writes, into every pipe it holds,
// a client's data event for its own connection and a PipeMessage, both claiming to come
// from the master (SrcWorker -1), as a compromised worker could. The workers tell by the
// sender's pid (SO_PASSCRED) that the master did not send them: OnReceive and OnPipeMessage
// never run for them, and the refusal is logged. Before, a worker ran OnReceive with the
// forged bytes as if the client had sent them.
func TestForgedManagerMessagesDropped(t *testing.T) {
	ms, _ := sfdSetup(t, "process")
	c := ms.dial()
	if _, n := sfdRequest(t, c, "forgeevent"); n < 1 {
		t.Fatalf("the worker could write its forged events into no pipe (%d)", n)
	}
	const warning = "a message that only the manager sends came from another process: dropped"
	ms.eventually("the forged messages' fate", func() bool {
		return ms.count("injected", nil) > 0 || ms.count("pipemessage", nil) > 0 || strings.Count(ms.output(), warning) >= 1
	})
	// The other copies (every pipe got them) are handled by now: a request after them on
	// every worker's pipe goes through the same pipes.
	if got, code := sfdRequest(t, c, "file /nonexistent/file"); got != "" || code != swoole.ErrSystemCallFail {
		t.Fatalf("after the forged events: %q, code %d", got, code)
	}
	if n := ms.count("injected", nil); n > 0 {
		t.Fatalf("a worker ran OnReceive %d times for data the client never sent (a forged event)", n)
	}
	if n := ms.count("pipemessage", nil); n > 0 {
		t.Fatalf("a worker ran OnPipeMessage %d times for a forged message from the master", n)
	}
}

// TestForgedWorkerMessagesDropped: a worker writes a PipeMessage that claims to come from the
// other worker into every pipe it can write to. The readers tell by the sender's pid
// (SO_PASSCRED) against the pid map the manager keeps (pidmap.go), which children cannot
// write, that it is not that worker's: OnPipeMessage never runs for it, and the refusal is
// logged. Before, the message reached OnPipeMessage with the forged source.
func TestForgedWorkerMessagesDropped(t *testing.T) {
	for _, mode := range []string{"base", "process"} {
		t.Run(mode, func(t *testing.T) {
			ms, _ := sfdSetup(t, mode)
			c := ms.dial()
			if _, n := sfdRequest(t, c, "forgepeer"); n < 1 {
				t.Fatalf("the worker could write its forged message into no pipe (%d)", n)
			}
			const warning = "a message came from another process than the worker it names: dropped"
			ms.eventually("the forged message's fate", func() bool {
				return ms.count("pipemessage", nil) > 0 || strings.Count(ms.output(), warning) >= 1
			})
			// Every copy is handled by now: a request after it goes through the same pipes.
			if got, code := sfdRequest(t, c, "file /nonexistent/file"); got != "" || code != swoole.ErrSystemCallFail {
				t.Fatalf("after the forged message: %q, code %d", got, code)
			}
			if n := ms.count("pipemessage", nil); n > 0 {
				t.Fatalf("OnPipeMessage ran %d times for a message in another worker's name", n)
			}
		})
	}
}
