//go:build linux

package supervisor

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// executable is the path of this program's file, read from /proc/self/exe when the package
// is initialised, before anything could have replaced or removed the file. Spawn execs this
// path every time rather than the open inode, so a new file renamed over the old one is what
// a restarted or reloaded child runs: replacing the binary and reloading upgrades the code.
var executable, executableErr = os.Executable()

// Executable returns the path Spawn execs by default: this program's file as it was named
// when the process started.
func Executable() (string, error) { return executable, executableErr }

// ErrSpawnerClosed is returned by Spawn on a closed Spawner.
var ErrSpawnerClosed = errors.New("supervisor: spawner closed")

// SpawnOptions tune one Spawn. The zero value runs Executable() with this process's
// arguments, environment, working directory and standard files.
type SpawnOptions struct {
	// Path of the program to run; "" is Executable(). The child gets os.Args unchanged.
	Path string
	// Env is appended to this process's environment (a later KEY=value wins).
	Env []string
	// Gen is passed as EnvGen. The Manager sets it.
	Gen int
	// Stdin, Stdout and Stderr replace os.Stdin, os.Stdout and os.Stderr (for log_file or
	// daemonize). nil inherits this process's.
	Stdin, Stdout, Stderr *os.File
	// User and Group name the credentials the child runs with (Swoole's user/group
	// settings). Only root may set them. With only Group set the user stays the same, and
	// the supplementary groups become that group alone.
	// Names are looked up with os/user; numeric ids are accepted too.
	User, Group string
	// DeathSignal is the signal the child receives when this process dies (Pdeathsig).
	// 0 means SIGKILL. A child that handles or ignores a gentler signal still dies when it
	// sees its lifeline close, if it calls WatchLifeline.
	DeathSignal syscall.Signal

	// onExit, set by the Manager, is called from the reaping goroutine after Done closed.
	onExit func(*Child)
}

// ExitStatus is how a child ended.
type ExitStatus struct {
	Code   int            // exit code; 0 when a signal killed the child (as WEXITSTATUS)
	Signal syscall.Signal // the signal that killed it; 0 when it exited
	Err    error          // set only when waiting for the child failed
}

// String reads "exit 0", "signal killed" or the wait error.
func (e ExitStatus) String() string {
	switch {
	case e.Err != nil:
		return "wait: " + e.Err.Error()
	case e.Signal != 0:
		return "signal " + e.Signal.String()
	default:
		return "exit " + strconv.Itoa(e.Code)
	}
}

// Child is a process started by Spawn. Its methods are safe for concurrent use.
type Child struct {
	role    Role
	gen     int
	cmd     *exec.Cmd
	pid     int
	started time.Time
	done    chan struct{}
	status  ExitStatus
}

// Role returns the role the child was started with.
func (c *Child) Role() Role { return c.role }

// PID returns the child's process id.
func (c *Child) PID() int { return c.pid }

// Gen returns the reload generation the child was started with.
func (c *Child) Gen() int { return c.gen }

// Started returns when the child was started.
func (c *Child) Started() time.Time { return c.started }

// Signal sends sig to the child. Once the child has been reaped it returns
// os.ErrProcessDone and signals nothing: the process handle (a pidfd on Linux) never
// reaches a process that reused the pid.
func (c *Child) Signal(sig os.Signal) error { return c.cmd.Process.Signal(sig) }

// Done is closed once the child has exited and been reaped.
func (c *Child) Done() <-chan struct{} { return c.done }

// Wait blocks until the child has been reaped and returns how it ended.
func (c *Child) Wait() ExitStatus {
	<-c.done
	return c.status
}

// reap runs on a goroutine of its own per child: it waits for this pid only (never
// wait4(-1), which would steal the exit of processes that other code in this program started
// with os/exec), records the status and wakes whoever watches.
func (c *Child) reap(onExit func(*Child)) {
	err := c.cmd.Wait()
	st := ExitStatus{}
	if ps := c.cmd.ProcessState; ps != nil {
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			st.Signal = ws.Signal()
		} else {
			st.Code = ps.ExitCode()
		}
	} else {
		st.Err = err
	}
	c.status = st
	close(c.done)
	if onExit != nil {
		onExit(c)
	}
}

// Spawner starts children from one OS thread that lives as long as the Spawner, and owns
// the lifeline pipe those children inherit.
//
// Why a thread: Linux sends a child its Pdeathsig when the *thread* that forked it exits,
// not the process. Go moves goroutines between threads and ends idle ones, so a child
// forked from an arbitrary goroutine could be killed while its parent is alive and well.
// Spawner forks from one goroutine that calls runtime.LockOSThread and never unlocks:
// that thread ends only when the Spawner is closed (the goroutine exits locked, so the
// runtime destroys the thread) or the process dies, which makes the death signal mean
// "the parent died", as intended.
type Spawner struct {
	reqs  chan spawnReq
	done  chan struct{}
	lifeR *os.File // the children's end
	lifeW *os.File // held, never written: its close (our death) is the children's EOF

	mu     sync.RWMutex // guards closed and the send on reqs
	closed bool
}

type spawnReq struct {
	cmd   *exec.Cmd
	reply chan error
}

// NewSpawner starts the spawning thread and creates the lifeline pipe.
func NewSpawner() (*Spawner, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("supervisor: lifeline pipe: %w", err)
	}
	sp := &Spawner{reqs: make(chan spawnReq), done: make(chan struct{}), lifeR: r, lifeW: w}
	go sp.loop()
	return sp, nil
}

func (sp *Spawner) loop() {
	// Never unlocked: see the type's doc.
	runtime.LockOSThread()
	defer close(sp.done)
	for req := range sp.reqs {
		req.reply <- req.cmd.Start()
	}
}

// Close ends the spawning thread and closes the lifeline. Children of this Spawner that are
// still running then get their death signal and see their lifeline close, so close it only
// once they have been reaped (the Manager does). Close is idempotent.
func (sp *Spawner) Close() error {
	sp.mu.Lock()
	if sp.closed {
		sp.mu.Unlock()
		return nil
	}
	sp.closed = true
	close(sp.reqs)
	sp.mu.Unlock()
	<-sp.done
	return errors.Join(sp.lifeW.Close(), sp.lifeR.Close())
}

var (
	defaultSpawnerOnce sync.Once
	defaultSpawner     *Spawner
	defaultSpawnerErr  error
)

// Spawn starts a child with the process-wide default Spawner, created on first use and
// never closed (its thread and lifeline live as long as the process, which is what the
// children's death signal refers to). See (*Spawner).Spawn.
func Spawn(role Role, files Files, opts SpawnOptions) (*Child, error) {
	defaultSpawnerOnce.Do(func() { defaultSpawner, defaultSpawnerErr = NewSpawner() })
	if defaultSpawnerErr != nil {
		return nil, defaultSpawnerErr
	}
	return defaultSpawner.Spawn(role, files, opts)
}

// Spawn re-executes the program (opts.Path, by default Executable(): the file now at the
// path this process was started from) with the same arguments, the same environment plus
// opts.Env and the role variables, the standard files of this process and files as
// inherited files (plus LifelineName). The child stays in this process's process group
// (Ctrl-C in a terminal reaches the whole tree, as in Swoole) and gets opts.DeathSignal
// (SIGKILL) if this process dies. Spawn returns once the child has been exec'ed; a
// goroutine then waits for it: see Child.Done and Child.Wait.
func (sp *Spawner) Spawn(role Role, files Files, opts SpawnOptions) (*Child, error) {
	if _, ok := files[LifelineName]; ok {
		return nil, errReservedName
	}
	path := opts.Path
	if path == "" {
		if executableErr != nil {
			return nil, fmt.Errorf("supervisor: cannot find this program's file: %w", executableErr)
		}
		path = executable
	}
	cmd := &exec.Cmd{
		Path:   path,
		Args:   append([]string(nil), os.Args...),
		Stdin:  orFile(opts.Stdin, os.Stdin),
		Stdout: orFile(opts.Stdout, os.Stdout),
		Stderr: orFile(opts.Stderr, os.Stderr),
	}
	all := maps.Clone(files)
	if all == nil {
		all = Files{}
	}
	all[LifelineName] = sp.lifeR
	fds, err := all.apply(cmd)
	if err != nil {
		return nil, err
	}
	cmd.Env = childEnv(os.Environ(), opts.Env,
		EnvRole+"="+role.String(),
		EnvFDs+"="+fds,
		EnvGen+"="+strconv.Itoa(opts.Gen),
		EnvParentPID+"="+strconv.Itoa(os.Getpid()))
	sig := opts.DeathSignal
	if sig == 0 {
		sig = syscall.SIGKILL
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: sig, Setpgid: false}
	if opts.User != "" || opts.Group != "" {
		cred, err := credential(opts.User, opts.Group)
		if err != nil {
			return nil, err
		}
		cmd.SysProcAttr.Credential = cred
	}

	if err := sp.start(cmd); err != nil {
		return nil, fmt.Errorf("supervisor: spawn %s: %w", role, err)
	}
	c := &Child{role: role, gen: opts.Gen, cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), done: make(chan struct{})}
	go c.reap(opts.onExit)
	return c, nil
}

// start runs cmd.Start on the spawning thread.
func (sp *Spawner) start(cmd *exec.Cmd) error {
	sp.mu.RLock()
	defer sp.mu.RUnlock()
	if sp.closed {
		return ErrSpawnerClosed
	}
	reply := make(chan error, 1)
	sp.reqs <- spawnReq{cmd: cmd, reply: reply}
	return <-reply
}

func orFile(f, def *os.File) io.ReadWriter {
	if f != nil {
		return f
	}
	return def
}

// childEnv is base without the role variables, then extra, then roleVars (which win).
func childEnv(base, extra []string, roleVars ...string) []string {
	env := make([]string, 0, len(base)+len(extra)+len(roleVars))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case EnvRole, EnvFDs, EnvGen, EnvParentPID:
			continue
		}
		env = append(env, kv)
	}
	env = append(env, extra...)
	return append(env, roleVars...)
}

// Credential resolves user and group names (or numbers) to the credentials a child spawned
// with SpawnOptions{User: userName, Group: groupName} runs with: uid, gid and supplementary
// groups.
func Credential(userName, groupName string) (*syscall.Credential, error) {
	return credential(userName, groupName)
}

// credential resolves user and group names (or numbers) to a SysProcAttr.Credential.
// The supplementary groups are never root's: with a user they are the user's, with only a
// group (when root) that group alone.
func credential(userName, groupName string) (*syscall.Credential, error) {
	cred := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()), NoSetGroups: true}
	if userName != "" {
		u, err := user.Lookup(userName)
		if err != nil {
			if u, err = user.LookupId(userName); err != nil {
				return nil, fmt.Errorf("supervisor: user %q: %w", userName, err)
			}
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("supervisor: user %q: %w", userName, err)
		}
		cred.Uid, cred.Gid, cred.NoSetGroups = uint32(uid), uint32(gid), false
		if ids, err := u.GroupIds(); err == nil {
			for _, s := range ids {
				if g, err := strconv.ParseUint(s, 10, 32); err == nil {
					cred.Groups = append(cred.Groups, uint32(g))
				}
			}
		}
	}
	if groupName != "" {
		g, err := user.LookupGroup(groupName)
		if err != nil {
			if g, err = user.LookupGroupId(groupName); err != nil {
				return nil, fmt.Errorf("supervisor: group %q: %w", groupName, err)
			}
		}
		gid, err := strconv.ParseUint(g.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("supervisor: group %q: %w", groupName, err)
		}
		cred.Gid = uint32(gid)
		if userName == "" && os.Geteuid() == 0 {
			// The uid stays (only the group was asked for), but root's supplementary groups
			// (root's group 0 among them) must not: setgroups to the group alone.
			cred.Groups, cred.NoSetGroups = []uint32{uint32(gid)}, false
		}
	}
	return cred, nil
}

// ErrNoLifeline is returned by WatchLifeline in a process that inherited no lifeline (one
// not started by Spawn), or when the lifeline was already claimed.
var ErrNoLifeline = errors.New("supervisor: no lifeline inherited")

// WatchLifeline is for the child: it starts a goroutine that reads the inherited lifeline
// until it returns end-of-file, which happens when the spawning process has died (every
// holder of the write end is gone), and then calls fn; a nil fn exits the process with
// status 1. It backs up the death signal for children that handle or ignore it, and for
// cases the kernel clears it (exec of a set-uid program). Call it once, early.
func WatchLifeline(fn func()) error {
	f, ok := Inherited(LifelineName)
	if !ok {
		return ErrNoLifeline
	}
	if fn == nil {
		fn = func() { os.Exit(1) }
	}
	go func() {
		var b [1]byte
		for {
			if _, err := f.Read(b[:]); err != nil {
				break
			}
		}
		fn()
	}()
	return nil
}
