package swoole

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/goswoole/swoole/internal/conntable"
	"github.com/goswoole/swoole/internal/taskbackend"
)

// Server states.
const (
	stateNew int32 = iota
	stateStarting
	stateRunning
	stateStopping
	stateStopped
)

// Server is a Swoole-style event-driven server: listeners, a connection table, workers that
// run the callbacks, and the API that acts on connections by session id.
//
// Create it with NewServer (which binds at once), add ports with AddListener, configure it with
// Set or SetOptions and register callbacks with the On* methods, all before Start. Start
// blocks until the server shuts down.
//
// Concurrency: callbacks of one worker run one at a time on that worker's event loop, so state
// they share needs no lock. Every method that acts on a connection (Send, Close, Exist,
// GetClientInfo, ...) may be called from any goroutine, inside or outside callbacks.
type Server struct {
	*serverCore             // what every handle of the server shares
	run         roleRuntime // the role this handle answers for, chosen once at Start (role.go); read it through rt() or after running()
	cur         *worker     // the event loop this handle's callbacks run on (single-process ModeBase: the only one; nil in a manager)
	lastErr     atomic.Int64
}

// serverCore is the server itself. A Server value is a handle on it: the one NewServer
// returns, and in ModeThread one per worker, task-worker and user-process loop (thread.go),
// which answers GetWorkerID, timers, Finish and the like for its loop.
type serverCore struct {
	mu    sync.Mutex // guards configuration before Start
	mode  Mode
	given Settings // what Set and SetOptions gave
	eff   Settings // resolved at Start
	cb    callbacks
	ports []*Port

	state         atomic.Int32
	stopRequested atomic.Bool // Shutdown called while Start was preparing
	log           *slog.Logger
	logFile       *os.File
	logCtl        *logControl        // log_file's reopen and rotation, in the process that opened it (logfile.go)
	logLimits     [logKinds]logLimit // warnings a peer can cause, once per second per kind (loglimit.go)

	table   *conntable.Table
	conns   []atomic.Pointer[conn] // this process's connections, by session id & mask
	mask    int64
	workers []*worker
	mp      *multi     // set at Start when the server runs as several processes (manager.go)
	task    *taskState // set at Start when task_worker_num > 0 (task.go)
	thr     *threads   // set at Start in ModeThread (thread.go)
	// taskBackend, set before Start (task_backend.go), carries the task API's tasks.
	taskBackend taskbackend.Backend

	timerLoop *worker       // the timers of a ModeBase manager or a user process (timers.go)
	timerDone chan struct{} // closed when timerLoop's Run returned

	sigDone  chan struct{}
	commands map[string]command
	procs    []*Process   // user processes, by AddProcess index (userproc.go)
	admin    *adminServer // the admin_server of the process that serves it (admin_server.go)
	// upgrade is set when Upgrade starts a new process, cleared if that fails, kept once the
	// listeners are handed over (the server then drains, and a second Upgrade is refused)
	// until Start returns (handover.go).
	upgrade atomic.Pointer[upgradeState]
}

// NewServer creates a server and binds its first port at once, as Swoole's constructor does:
// a busy port or a bad address is an error carrying the errno. Port 0 picks a free port;
// s.Ports()[0].Port() tells which. For SockUnixStream and SockUnixDgram, host is the socket's
// path and port is ignored.
//
// Modes: ModeBase is built, in one process (worker_num 1) or as a manager and worker
// processes (worker_num > 1: in a worker process NewServer adopts the manager's socket
// instead of binding, see Start). ModeProcess runs a master that holds every connection and
// worker processes that run the callbacks (see master.go and docs/process-model.md).
// ModeThread runs in one process: reactor loops hold the connections, worker and
// task-worker loops run the callbacks, each with a *Server handle of its own (thread.go).
func NewServer(host string, port int, mode Mode, sock SockType) (*Server, error) {
	switch mode {
	case ModeBase, ModeProcess, ModeThread:
	default:
		return nil, newError(ErrInvalidParams, "unknown mode %d: use ModeBase, ModeProcess or ModeThread", int(mode))
	}
	s := &Server{serverCore: &serverCore{mode: mode, log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}}
	p, err := s.bindPort(host, port, sock)
	if err != nil {
		return nil, err
	}
	s.ports = append(s.ports, p)
	return s, nil
}

// AddListener binds one more port (Swoole's addListener / listen). The port inherits the
// server's settings and callbacks until it sets its own. Only before Start.
func (s *Server) AddListener(host string, port int, sock SockType) (*Port, error) {
	if s.state.Load() != stateNew {
		return nil, s.fail(newError(ErrRefused, "AddListener after Start: add every port before calling Start"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.bindPort(host, port, sock)
	if err != nil {
		return nil, s.fail(err)
	}
	p.index = len(s.ports)
	s.ports = append(s.ports, p)
	return p, nil
}

// Ports returns the listening ports; the first is the one NewServer bound.
func (s *Server) Ports() []*Port {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Port(nil), s.ports...)
}

// Set merges settings into the server's (Swoole's set): each non-zero field replaces the
// current value; zero fields leave it alone (use SetOptions to set a value back to zero).
// Invalid values are an error and change nothing. Only before Start.
func (s *Server) Set(settings Settings) error {
	if s.state.Load() != stateNew {
		return s.fail(newError(ErrRefused, "Set after Start: settings are fixed once the server runs"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.given.merge(settings)
	if err := next.withDefaults().validate(); err != nil {
		return s.fail(err)
	}
	s.given = next
	return nil
}

// SetOptions sets options by Swoole's key names ("worker_num", "package_eof", ...). An
// unknown key or a value of the wrong type is an error naming it, and changes nothing.
// Only before Start.
func (s *Server) SetOptions(opts map[string]any) error {
	if s.state.Load() != stateNew {
		return s.fail(newError(ErrRefused, "SetOptions after Start: settings are fixed once the server runs"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.given
	if err := applyOptions(&next, opts, false); err != nil {
		return s.fail(err)
	}
	if err := next.withDefaults().validate(); err != nil {
		return s.fail(err)
	}
	s.given = next
	return nil
}

// Setting returns the settings in force: after Start the resolved values (defaults filled
// in); before Start what Set and SetOptions gave, with defaults filled in as Start will fill
// them (an unset worker_num is 1 in ModeBase and ModeThread, the CPU count in ModeProcess).
func (s *Server) Setting() Settings {
	if st := s.state.Load(); st >= stateRunning {
		return s.eff
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.given
	if g.WorkerNum == 0 && s.mode != ModeProcess {
		g.WorkerNum = 1 // as prepare resolves it
	}
	return g.withDefaults()
}

// Mode returns the mode the server was created with (NewServer's mode argument).
func (s *Server) Mode() Mode { return s.mode }

// On registers cb for the event name (case-insensitive, without the "on" prefix: "receive",
// "Connect", "WorkerStart"). It replaces an earlier handler; a nil cb removes it. An unknown
// name or a cb of the wrong function type is an error. Only before Start.
func (s *Server) On(name string, cb any) error {
	n, err := eventName(name)
	if err != nil {
		return s.fail(err)
	}
	if s.state.Load() != stateNew {
		return s.fail(newError(ErrRefused, "On(%q) after Start: register callbacks before calling Start", name))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cb.set(n, cb); err != nil {
		return s.fail(err)
	}
	return nil
}

// GetCallback returns the handler registered for the event name, exactly as it was given (so
// GetCallback("Receive").(func(*Server, int64, int, []byte)) works), or nil when there is none
// or the name is unknown.
func (s *Server) GetCallback(name string) any {
	n, err := eventName(name)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cb.get(n)
}

func (s *Server) setCB(name string, cb any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Load() != stateNew {
		s.log.Warn("swoole: a callback registered after Start is ignored", "event", name)
		return
	}
	_ = s.cb.set(name, cb)
}

// OnStart registers the Start handler: it runs once when the server starts (in worker 0 for
// ModeBase, before its OnWorkerStart; in the master for ModeProcess). A single-process server
// runs it before any connection is accepted. In a server of several
// processes it runs once every worker, task worker and user process has started, so that
// GetWorkerPID and Command reach them (a process that cannot start is not waited for; the
// wait is bounded), in parallel with OnManagerStart in ModeBase and before it in ModeProcess.
func (s *Server) OnStart(cb func(s *Server)) { s.setCB("start", cb) }

// OnBeforeShutdown registers the handler that runs when shutdown begins, while the event loop
// still works.
func (s *Server) OnBeforeShutdown(cb func(s *Server)) { s.setCB("beforeshutdown", cb) }

// OnShutdown registers the last handler of a server's life: listeners and workers are gone.
func (s *Server) OnShutdown(cb func(s *Server)) { s.setCB("shutdown", cb) }

// OnManagerStart registers the handler that runs in the manager process when it starts.
func (s *Server) OnManagerStart(cb func(s *Server)) { s.setCB("managerstart", cb) }

// OnManagerStop registers the handler that runs in the manager when it stops.
func (s *Server) OnManagerStop(cb func(s *Server)) { s.setCB("managerstop", cb) }

// OnBeforeReload registers the handler the manager runs before a reload.
func (s *Server) OnBeforeReload(cb func(s *Server)) { s.setCB("beforereload", cb) }

// OnAfterReload registers the handler the manager runs after a reload.
func (s *Server) OnAfterReload(cb func(s *Server)) { s.setCB("afterreload", cb) }

// OnWorkerStart registers the handler each worker runs when it starts, on its event loop.
// Per-process state belongs here.
func (s *Server) OnWorkerStart(cb func(s *Server, workerID int)) { s.setCB("workerstart", cb) }

// OnWorkerStop registers the handler a worker runs when it stops normally.
func (s *Server) OnWorkerStop(cb func(s *Server, workerID int)) { s.setCB("workerstop", cb) }

// OnWorkerExit registers the handler a worker runs repeatedly while it drains during an
// asynchronous reload.
func (s *Server) OnWorkerExit(cb func(s *Server, workerID int)) { s.setCB("workerexit", cb) }

// OnWorkerError registers the handler the manager runs when a worker dies abnormally.
func (s *Server) OnWorkerError(cb func(s *Server, workerID, workerPID, exitCode, signal int)) {
	s.setCB("workererror", cb)
}

// OnConnect registers the handler for a new connection on a stream port.
func (s *Server) OnConnect(cb func(s *Server, fd int64, reactorID int)) { s.setCB("connect", cb) }

// OnReceive registers the handler for data from a stream connection. data is valid only during
// the call: copy it (bytes.Clone) to keep it.
func (s *Server) OnReceive(cb func(s *Server, fd int64, reactorID int, data []byte)) {
	s.setCB("receive", cb)
}

// OnClose registers the handler that runs once per connection when it closes, whoever closed
// it. reactorID is -1 when the application closed it.
func (s *Server) OnClose(cb func(s *Server, fd int64, reactorID int)) { s.setCB("close", cb) }

// OnPacket registers the handler for datagrams on UDP and unix-dgram ports. data is valid only
// during the call.
func (s *Server) OnPacket(cb func(s *Server, data []byte, client ClientAddr)) {
	s.setCB("packet", cb)
}

// OnTask registers the task workers' handler; a non-nil return value is sent back as Finish.
func (s *Server) OnTask(cb func(s *Server, taskID int, srcWorkerID int, data []byte) any) {
	s.setCB("task", cb)
}

// OnFinish registers the handler for task results, in the worker that sent the task.
func (s *Server) OnFinish(cb func(s *Server, taskID int, data []byte)) { s.setCB("finish", cb) }

// OnPipeMessage registers the handler for SendMessage deliveries.
func (s *Server) OnPipeMessage(cb func(s *Server, srcWorkerID int, data []byte)) {
	s.setCB("pipemessage", cb)
}

// OnBufferFull registers the handler for a connection whose queued output reached
// buffer_high_watermark (or socket_buffer_size when no watermark is set): stop producing for it.
func (s *Server) OnBufferFull(cb func(s *Server, fd int64)) { s.setCB("bufferfull", cb) }

// OnBufferEmpty registers the handler for a connection whose queued output fell back to
// buffer_low_watermark after OnBufferFull: producing may resume.
func (s *Server) OnBufferEmpty(cb func(s *Server, fd int64)) { s.setCB("bufferempty", cb) }

// GetLastError returns the code of the last error a call on this server returned in this
// process (0 if none).
func (s *Server) GetLastError() int { return int(s.lastErr.Load()) }

// fail records e's code as the last error and returns e.
func (s *Server) fail(err error) error {
	if e, ok := err.(*Error); ok {
		s.lastErr.Store(int64(e.Code))
	}
	return err
}

// running returns an error unless the server is serving.
func (s *Server) running(call string) error {
	switch s.state.Load() {
	case stateRunning, stateStopping:
		// While stopping, the loop still works until WorkerStop: BeforeShutdown and the
		// OnClose calls of the shutdown may use every connection method.
		return nil
	case stateNew:
		return s.fail(newError(ErrRefused, "%s before Start: the server is not running yet", call))
	}
	return s.fail(newError(ErrRefused, "%s after shutdown: the server is not running", call))
}

// writeStatsFile writes Stats() to stats_file: JSON when the name ends in .json, else one
// "key: value" line per field (Swoole's formats, minus PHP's).
func (s *Server) writeStatsFile() {
	st := s.Stats()
	var out []byte
	if strings.HasSuffix(s.eff.StatsFile, ".json") {
		out, _ = json.Marshal(st)
	} else {
		v := reflect.ValueOf(st)
		for i := 0; i < v.NumField(); i++ {
			out = fmt.Appendf(out, "%s: %v\n", strings.Split(v.Type().Field(i).Tag.Get("json"), ",")[0], v.Field(i).Interface())
		}
	}
	if _, err := replaceFile(s.eff.StatsFile, out, 0o644, false); err != nil {
		s.log.Warn("swoole: cannot write stats_file", "path", s.eff.StatsFile, "err", err)
	}
}

// newLogger builds the server's logger from log_file and log_level.
func (s *Server) newLogger() error {
	var w io.Writer = os.Stderr
	if s.eff.LogFile != "" {
		f, err := s.logFileOpen()
		if err != nil {
			return wrapErrno("open", err, "cannot open log_file %q: check the path and its permissions (a symbolic link another user owns is refused, and so is what is neither a regular file nor a character device)", s.eff.LogFile)
		}
		s.logFile = f
		w = f
	}
	level := slog.LevelInfo
	switch sl := s.eff.LogLevel.SwooleLevel(); {
	case sl <= 1:
		level = slog.LevelDebug
	case sl == 2:
		level = slog.LevelInfo
	case sl <= 4:
		level = slog.LevelWarn
	case sl == 5:
		level = slog.LevelError
	default:
		level = slog.LevelError + 100
	}
	s.log = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	return nil
}
