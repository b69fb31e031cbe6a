//go:build linux

package supervisor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Environment variables that carry a child's identity. Spawn sets all four in every child
// and removes any value inherited from its own environment first, so a worker that spawns a
// child of its own never leaks its role to it.
const (
	// EnvRole holds the child's Role as Role.String writes it: "manager", "worker:3", ...
	EnvRole = "GOSWOOLE_ROLE"
	// EnvFDs maps the names of inherited files to descriptor numbers: "lifeline=3,report=4".
	EnvFDs = "GOSWOOLE_FDS"
	// EnvGen holds the slot's reload generation (0 for the first child of a slot, +1 per reload).
	EnvGen = "GOSWOOLE_GEN"
	// EnvParentPID holds the pid of the process that spawned the child. Current only
	// believes EnvRole when it matches the real parent pid, so a grandchild that inherited
	// a copy of the environment (a worker running exec.Command(os.Args[0]) itself) does not
	// take itself for a worker.
	EnvParentPID = "GOSWOOLE_PARENT_PID"
)

// LifelineName is the name under which every spawned child inherits the read end of its
// spawner's lifeline pipe; see WatchLifeline. Files may not use it.
const LifelineName = "lifeline"

// Kind is the kind of process in a server's process tree. The zero Kind is invalid.
type Kind int

// The kinds of process, with the name each has in EnvRole.
const (
	KindMaster      Kind = iota + 1 // "master": holds connections in ModeProcess
	KindManager                     // "manager": spawns, reaps and reloads the others
	KindWorker                      // "worker": an event worker
	KindTaskWorker                  // "task": a task worker
	KindUserProcess                 // "process": a process added with AddProcess
)

var kindNames = [...]string{KindMaster: "master", KindManager: "manager", KindWorker: "worker", KindTaskWorker: "task", KindUserProcess: "process"}

// String returns the kind's name as written in EnvRole ("worker", "task", ...).
func (k Kind) String() string {
	if k >= KindMaster && k <= KindUserProcess {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Role says which process of the tree this is. ID is the number the server gives it (for
// workers and task workers the Swoole worker id, for user processes their index); master
// and manager have no ID and write none.
type Role struct {
	Kind Kind
	ID   int
}

// String encodes the role as EnvRole carries it: "master", "manager", "worker:3", "task:1",
// "process:0".
func (r Role) String() string {
	if r.Kind == KindMaster || r.Kind == KindManager {
		return r.Kind.String()
	}
	return r.Kind.String() + ":" + strconv.Itoa(r.ID)
}

// ParseRole decodes Role.String's output. "manager:0" is accepted as "manager".
func ParseRole(s string) (Role, error) {
	name, id, hasID := strings.Cut(s, ":")
	k := Kind(slices.Index(kindNames[:], name))
	if name == "" || k < KindMaster {
		return Role{}, fmt.Errorf("supervisor: unknown role kind %q in %q", name, s)
	}
	r := Role{Kind: k}
	if hasID {
		n, err := strconv.Atoi(id)
		if err != nil || n < 0 {
			return Role{}, fmt.Errorf("supervisor: bad role id in %q", s)
		}
		r.ID = n
	} else if k != KindMaster && k != KindManager {
		return Role{}, fmt.Errorf("supervisor: role %q needs an id (%s:N)", s, name)
	}
	if k == KindMaster || k == KindManager {
		r.ID = 0
	}
	return r, nil
}

// inheritance is what this process learned from its environment at start.
type inheritance struct {
	role      Role
	isChild   bool
	gen       int
	parentPID int
	fds       map[string]int

	mu      sync.Mutex
	claimed map[string]bool
}

// self is read once, at package initialisation, before the user's main runs: the role and
// the inherited descriptors are facts about this process, fixed when it was exec'ed. In a
// child, init also marks every inherited descriptor close-on-exec, so a child that runs
// programs of its own does not leak its pipes and listeners into them.
var self = readInheritance()

func readInheritance() *inheritance {
	in := &inheritance{claimed: map[string]bool{}}
	rs, ok := os.LookupEnv(EnvRole)
	if !ok {
		return in
	}
	role, err := ParseRole(rs)
	if err != nil {
		return in
	}
	ppid, err := strconv.Atoi(os.Getenv(EnvParentPID))
	if err != nil || ppid != os.Getppid() {
		// A stale copy of a child's environment: not ours.
		return in
	}
	in.role, in.isChild, in.parentPID = role, true, ppid
	in.gen, _ = strconv.Atoi(os.Getenv(EnvGen))
	in.fds = parseFDs(os.Getenv(EnvFDs))
	for _, fd := range in.fds {
		syscall.CloseOnExec(fd)
	}
	return in
}

func parseFDs(s string) map[string]int {
	m := map[string]int{}
	for item := range strings.SplitSeq(s, ",") {
		name, v, ok := strings.Cut(item, "=")
		fd, err := strconv.Atoi(v)
		if !ok || name == "" || err != nil || fd < 3 {
			continue
		}
		m[name] = fd
	}
	return m
}

// Current returns this process's role when it was started by Spawn, and false in a process
// that was not (the master, or a single-process server). The answer is read once, when the
// package is initialised, and never changes.
func Current() (Role, bool) { return self.role, self.isChild }

// Generation returns the reload generation this child was started with (EnvGen): 0 for the
// first child of a slot, one more after each reload. It is 0 outside a child.
func Generation() int { return self.gen }

// ParentPID returns the pid of the process that spawned this child (EnvParentPID), or 0
// outside a child.
func ParentPID() int { return self.parentPID }

// Inherited returns the file the parent passed under name. Each name is handed out once:
// the *os.File owns the descriptor (closing it, or letting it be collected, closes the
// descriptor), so a second call for the same name returns false rather than a second
// owner of the same descriptor. It returns false outside a child and for unknown names.
// Safe for concurrent use.
func Inherited(name string) (*os.File, bool) {
	fd, ok := self.fds[name]
	if !ok {
		return nil, false
	}
	self.mu.Lock()
	defer self.mu.Unlock()
	if self.claimed[name] {
		return nil, false
	}
	self.claimed[name] = true
	return os.NewFile(uintptr(fd), name), true
}

// Files are the files a child inherits, by name. The child finds each with Inherited.
// Names may not be empty, contain '=' or ',' or be LifelineName.
//
// Caveat (os/exec): passing a file calls its Fd method, which puts a descriptor the Go
// poller had made non-blocking back into blocking mode, in this process too. Pass the
// child's ends of pipes and socketpairs, or files this process does not read with deadlines.
type Files map[string]*os.File

// errReservedName is returned by Files.apply for LifelineName.
var errReservedName = errors.New("supervisor: the file name " + LifelineName + " is reserved")

// apply appends the files to cmd.ExtraFiles, sorted by name so that the numbering is
// stable across restarts, and returns the EnvFDs value describing them. Descriptors
// already in cmd.ExtraFiles keep theirs.
func (f Files) apply(cmd *exec.Cmd) (string, error) {
	names := make([]string, 0, len(f))
	for name, file := range f {
		if name == "" || strings.ContainsAny(name, "=,") {
			return "", fmt.Errorf("supervisor: bad inherited file name %q", name)
		}
		if file == nil {
			return "", fmt.Errorf("supervisor: inherited file %q is nil", name)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		fd := 3 + len(cmd.ExtraFiles)
		cmd.ExtraFiles = append(cmd.ExtraFiles, f[name])
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(strconv.Itoa(fd))
	}
	return b.String(), nil
}
