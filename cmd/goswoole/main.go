// Command goswoole runs goswoole's demo servers.
//
// Usage:
//
//	goswoole serve [--host 127.0.0.1] [--port 9501] [--mode base|process|thread] [--workers N] [--task-workers M] [--pid-file F] [--admin ADDR] [--ssl-cert F --ssl-key F]
//	goswoole reload --pid-file F | --admin ADDR [--only-task]
//	goswoole stop --pid-file F | --admin ADDR [--timeout 30s]
//	goswoole stats --pid-file F | --admin ADDR [--json]
//	goswoole top --admin ADDR [--token T]
//	goswoole help
//
// "serve" runs an echo server: every message a client sends comes back as it came. It prints
// the address it listens on (the real port when --port is 0) and serves until SIGINT (Ctrl-C)
// or SIGTERM, then shuts down cleanly and exits 0. SIGHUP upgrades a server of one process
// without refusing a connection (the library's Upgrade): the executable on disk is started
// again with the listening sockets, and once it serves this process stops accepting, serves
// its open connections until they close (max_wait_time at most), prints the stop line and
// exits 0. The outcome is logged on stderr; a failed upgrade leaves this process serving.
//
// With --workers N above 1 the server runs as a manager (this process) and N worker processes
// (this program started again, see the library's Start). Settings the library does not
// support are refused with the library's own message and exit code 2, as is a malformed
// flag. --mode thread runs ModeThread: one process, --workers worker loops.
//
// reload, stop and stats act on a running server (any goswoole server started with a
// pid_file, not only the demo): reload sends SIGUSR1 (SIGUSR2 with --only-task) to the pid in
// the file, stop sends SIGTERM and waits until that process has exited, stats asks the admin
// socket the server's manager serves beside the pid file (F + ".d/admin.sock"; a server of one
// process has none) and prints the counters and every process. When the server is not
// running (no pid file, a stale one) they say so and exit 1. Without a pid file they use the
// server's admin server instead (--admin [user:secret@]host:port, or $GOSWOOLE_ADMIN: the
// server's admin_server setting; serve --admin ADDR sets it).
//
// top shows a live view of a server through its admin server, refreshed each second: every
// process (pid, status, requests, dispatch count, CPU, resident memory), the connections and
// the task queue. Key r reloads the workers, q quits.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/goswoole/swoole"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the server failed while running, or could not bind
	exitUsage = 2 // bad command line, or settings the library refuses
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `Usage:
  goswoole serve [flags]           run a demo echo server until SIGINT or SIGTERM
  goswoole reload --pid-file F     reload the workers of a running server
  goswoole stop --pid-file F       stop a running server and wait for it to exit
  goswoole stats --pid-file F      print a running server's stats and processes (--json)
  goswoole top --admin ADDR        a live view of a server's processes (r: reload, q: quit)
                                   (reload, stop, stats: --admin ADDR instead of a pid file
                                   uses the server's admin_server)
  goswoole help                    show this help

Run "goswoole serve -h" for the flags of serve.
`

// run is the whole command: args without the program name. It returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "reload", "stop", "stats":
		return admin(args[0], args[1:], stdout, stderr)
	case "top":
		return top(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "goswoole: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// serveConfig is what the serve flags say.
type serveConfig struct {
	host        string
	port        int
	mode        swoole.Mode
	workers     int
	taskWorkers int
	pidFile     string
	admin       string
	sslCert     string // --ssl-cert: serve TLS with this PEM certificate (needs sslKey)
	sslKey      string
}

// valueError is a flag value parseServe rejects (the flag package reports its own errors).
type valueError string

func (e valueError) Error() string { return string(e) }

func badValue(format string, args ...any) error { return valueError(fmt.Sprintf(format, args...)) }

// parseServe checks the flags' syntax and ranges. Whether the library supports a value is not
// checked here: the library says so when the server is built.
func parseServe(args []string, stderr io.Writer) (serveConfig, error) {
	var c serveConfig
	fs := flag.NewFlagSet("goswoole serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.host, "host", "127.0.0.1", "address to listen on")
	fs.IntVar(&c.port, "port", 9501, "TCP port to listen on (0: any free port; the real one is printed)")
	mode := fs.String("mode", "base", "server mode: base, process or thread")
	fs.IntVar(&c.workers, "workers", 1, "event workers (worker_num), at least 1")
	fs.IntVar(&c.taskWorkers, "task-workers", 0, "task workers (task_worker_num), 0 or more")
	fs.StringVar(&c.pidFile, "pid-file", "", "write the server's pid here (pid_file), for goswoole reload|stop|stats")
	fs.StringVar(&c.admin, "admin", "", "serve the admin API and /metrics here (admin_server: [user:secret@]host:port)")
	fs.StringVar(&c.sslCert, "ssl-cert", "", "serve TLS (SockSSL) with this PEM certificate (ssl_cert_file); needs --ssl-key")
	fs.StringVar(&c.sslKey, "ssl-key", "", "the PEM private key of --ssl-cert (ssl_key_file)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: goswoole serve [flags]\n\nRuns an echo server until SIGINT or SIGTERM.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, badValue("unexpected argument %q: serve takes only flags", fs.Arg(0))
	}
	switch strings.ToLower(*mode) {
	case "base":
		c.mode = swoole.ModeBase
	case "process":
		c.mode = swoole.ModeProcess
	case "thread":
		c.mode = swoole.ModeThread
	default:
		return c, badValue("invalid --mode %q: use base, process or thread", *mode)
	}
	if c.port < 0 || c.port > 65535 {
		return c, badValue("invalid --port %d: use 0 (any free port) to 65535", c.port)
	}
	if c.workers < 1 {
		return c, badValue("invalid --workers %d: at least 1 worker is needed", c.workers)
	}
	if c.taskWorkers < 0 {
		return c, badValue("invalid --task-workers %d: use 0 (none) or more", c.taskWorkers)
	}
	if (c.sslCert == "") != (c.sslKey == "") {
		return c, badValue("--ssl-cert and --ssl-key go together: give the certificate and its key")
	}
	return c, nil
}

func serve(args []string, stdout, stderr io.Writer) int {
	c, err := parseServe(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		// The flag package prints its own parse errors with the usage; print ours.
		var ve valueError
		if errors.As(err, &ve) {
			fmt.Fprintf(stderr, "goswoole serve: %v\n(run \"goswoole serve -h\" for the flags)\n", err)
		}
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	// Signals are watched before the server exists, so that an early Ctrl-C is not lost. A stop
	// asked before Start releases the port (Start then fails: we exit 0); one asked while Start
	// is starting the server is refused by the library, and OnStart acts on it.
	sigCh := make(chan os.Signal, 1)
	signal.Notify(sigCh, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigCh)
	hupCh := make(chan os.Signal, 1) // SIGHUP: Upgrade, below
	signal.Notify(hupCh, syscall.SIGHUP)
	defer signal.Stop(hupCh)

	s, err := newEchoServer(c)
	if err != nil {
		return fail(stderr, err)
	}

	var stopAsked atomic.Bool
	stop := func(why string) {
		log.Info("goswoole: shutting down", "signal", why)
		stopAsked.Store(true) // before Shutdown: OnStart must see it if Shutdown is refused
		_ = s.Shutdown()
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case sig := <-sigCh:
			stop(sig.String())
		case <-done:
		}
	}()
	// SIGHUP: hand the listeners to the binary on disk (one process only; the library says
	// why not otherwise: a server of several processes reloads with SIGUSR1).
	go func() {
		for {
			select {
			case <-hupCh:
				log.Info("goswoole: SIGHUP: upgrading to the executable on disk")
				if err := s.Upgrade(); err != nil {
					log.Error("goswoole: upgrade failed: this process keeps serving", "err", err)
				} else {
					log.Info("goswoole: upgraded: the new process serves; this one drains its connections and exits")
				}
			case <-done:
				return
			}
		}
	}()

	workers := "1 worker"
	if c.workers != 1 {
		workers = fmt.Sprintf("%d workers", c.workers)
	}
	s.OnStart(func(s *swoole.Server) {
		p := s.Ports()[0]
		tlsNote := ""
		if c.sslCert != "" {
			tlsNote = ", TLS"
		}
		fmt.Fprintf(stdout, "goswoole: echo server listening on %s:%d (mode %v, %s%s)\n", p.Host(), p.Port(), c.mode, workers, tlsNote)
		if stopAsked.Load() {
			_ = s.Shutdown()
		}
	})
	if testHookBeforeStart != nil {
		testHookBeforeStart(stop)
	}
	if err := s.Start(); err != nil {
		if stopAsked.Load() {
			fmt.Fprintln(stdout, "goswoole: stopped before the server started")
			return exitOK
		}
		return fail(stderr, err)
	}
	fmt.Fprintln(stdout, "goswoole: echo server stopped")
	return exitOK
}

// testHookBeforeStart, when set by a test, runs just before Start with the function a signal
// calls.
var testHookBeforeStart func(stop func(why string))

// newEchoServer builds the echo server c describes. The library refuses what it does not
// support (mode, worker counts) here or in Start.
func newEchoServer(c serveConfig) (*swoole.Server, error) {
	sock := swoole.SockTCP
	if c.sslCert != "" {
		sock |= swoole.SockSSL
	}
	s, err := swoole.NewServer(c.host, c.port, c.mode, sock)
	if err != nil {
		return nil, err
	}
	if err := s.Set(swoole.Settings{WorkerNum: c.workers, TaskWorkerNum: c.taskWorkers, PidFile: c.pidFile, AdminServer: c.admin, SSLCertFile: c.sslCert, SSLKeyFile: c.sslKey}); err != nil {
		_ = s.Shutdown() // before Start: releases the port (and says so with an error)
		return nil, err
	}
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		_ = s.Send(fd, data) // fails when the peer is gone (OnClose follows) or does not read (1008)
	})
	if c.taskWorkers > 0 {
		// Task workers need a Task handler; the demo's echoes the task back as its result.
		s.OnTask(func(_ *swoole.Server, _ int, _ int, data []byte) any { return data })
	}
	return s, nil
}

// fail reports err and returns the exit code for it: settings the library refuses (not
// supported yet, invalid) are a usage error, anything else a failure.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "goswoole serve: %v\n", err)
	var e *swoole.Error
	if errors.As(err, &e) {
		switch e.Code {
		case swoole.ErrOperationNotSupport, swoole.ErrInvalidParams, swoole.ErrBadHostAddr, swoole.ErrBadPort:
			return exitUsage
		}
	}
	return exitError
}
