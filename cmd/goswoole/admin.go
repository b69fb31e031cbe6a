package main

// The operator's commands: reload, stop and stats of a running server, found through its
// pid_file (goswoole serve --pid-file F, or the pid_file setting of any goswoole server) or,
// without one, through its admin server (--admin ADDR: the admin_server setting,
// "[user:secret@]host:port", also read from $GOSWOOLE_ADMIN so that the secret stays out of
// the process list). With a pid file, reload and stop are signals to the pid in the file (the
// manager of a server of several processes) and stats asks the admin socket the manager
// serves beside the pid file (swoole.AdminSocketPath). With --admin they are the admin
// server's server_reload, server_shutdown and get_process_list (adminhttp.go).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/goswoole/swoole"
	"github.com/goswoole/swoole/internal/pidfile"
)

// adminError is a failure of an admin command, already worded for the operator.
type adminError string

func (e adminError) Error() string { return string(e) }

// admin runs reload, stop or stats with their flags; it returns the exit code.
func admin(name string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("goswoole "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	pidFile := fs.String("pid-file", "", "the server's pid_file")
	adminAddr := fs.String("admin", os.Getenv("GOSWOOLE_ADMIN"), "without --pid-file: the server's admin_server, [user:secret@]host:port (default $GOSWOOLE_ADMIN)")
	var onlyTask, asJSON bool
	var timeout time.Duration
	switch name {
	case "reload":
		fs.BoolVar(&onlyTask, "only-task", false, "reload the task workers only (SIGUSR2)")
	case "stop":
		fs.DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the server to exit")
	case "stats":
		fs.BoolVar(&asJSON, "json", false, "print the admin socket's JSON answer as it is")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: goswoole %s --pid-file F | --admin [user:secret@]host:port [flags]\n\n%s\n\nFlags:\n", name, adminHelp[name])
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if (*pidFile == "" && *adminAddr == "") || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "goswoole %s: give the server's pid file: goswoole %s --pid-file F (or its admin server: --admin [user:secret@]host:port)\n", name, name)
		return exitUsage
	}
	var err error
	if *pidFile == "" {
		switch name {
		case "reload":
			err = reloadOverHTTP(*adminAddr, onlyTask, stdout)
		case "stop":
			err = stopOverHTTP(*adminAddr, timeout, stdout)
		case "stats":
			err = statsOverHTTP(*adminAddr, asJSON, stdout)
		}
		if err != nil {
			fmt.Fprintf(stderr, "goswoole %s: %v\n", name, err)
			return exitError
		}
		return exitOK
	}
	switch name {
	case "reload":
		err = reloadServer(*pidFile, onlyTask, stdout)
	case "stop":
		err = stopServer(*pidFile, timeout, stdout)
	case "stats":
		err = printStats(*pidFile, asJSON, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "goswoole %s: %v\n", name, err)
		return exitError
	}
	return exitOK
}

var adminHelp = map[string]string{
	"reload": "Restarts the server's workers (SIGUSR1 to the manager; SIGUSR2 with --only-task) with\nthe executable now on disk. User processes are not reloaded.",
	"stop":   "Shuts the server down (SIGTERM to the manager) and waits until it has exited.",
	"stats":  "Prints the server's counters and processes, asked over its admin socket (pid file + \".d/admin.sock\")\nor its admin server (--admin). --json prints them as JSON.",
}

// serverPID reads the pid file and checks that the process runs.
func serverPID(pidFile string) (int, error) {
	pid, err := pidfile.Owner(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return 0, adminError(fmt.Sprintf("the server is not running: there is no pid file %s (is it the pid_file the server was started with? goswoole serve --pid-file F)", pidFile))
	}
	if errors.Is(err, pidfile.ErrStale) {
		// No server holds the file: its pid may belong to another process by now.
		return 0, adminError(fmt.Sprintf("the server is not running: no server holds %s any more; the pid file is stale", pidFile))
	}
	if err != nil {
		return 0, adminError(fmt.Sprintf("cannot read the pid file %s: %v", pidFile, err))
	}
	if !alive(pid) {
		return 0, adminError(fmt.Sprintf("the server is not running: pid %d (from %s) is gone; the pid file is stale", pid, pidFile))
	}
	return pid, nil
}

// alive reports whether pid runs (a zombie, exited but not reaped, does not).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

func signalServer(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil {
		if errors.Is(err, syscall.EPERM) {
			return adminError(fmt.Sprintf("cannot signal pid %d: permission denied (run this as the server's user)", pid))
		}
		return adminError(fmt.Sprintf("cannot signal pid %d: %v", pid, err))
	}
	return nil
}

func reloadServer(pidFile string, onlyTask bool, stdout io.Writer) error {
	pid, err := serverPID(pidFile)
	if err != nil {
		return err
	}
	sig, what := syscall.SIGUSR1, "workers"
	if onlyTask {
		sig, what = syscall.SIGUSR2, "task workers"
	}
	if err := signalServer(pid, sig); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "goswoole: reload of the %s requested (%v to pid %d)\n", what, sig, pid)
	return nil
}

func stopServer(pidFile string, timeout time.Duration, stdout io.Writer) error {
	pid, err := serverPID(pidFile)
	if err != nil {
		return err
	}
	if err := signalServer(pid, syscall.SIGTERM); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			return adminError(fmt.Sprintf("pid %d still runs %v after SIGTERM (it may be waiting for max_wait_time; try again, or kill it)", pid, timeout))
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Fprintf(stdout, "goswoole: server stopped (pid %d)\n", pid)
	return nil
}

// askAdmin sends one request to the admin socket and returns the JSON answer.
func askAdmin(pidFile, req string) ([]byte, error) {
	pid, err := serverPID(pidFile)
	if err != nil {
		return nil, err
	}
	path := swoole.AdminSocketPath(pidFile)
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, adminError(fmt.Sprintf("the server (pid %d) serves no admin socket at %s: only a server with a manager (worker_num > 1, or user processes) serves one", pid, path))
		}
		return nil, adminError(fmt.Sprintf("cannot reach the admin socket %s: %v", path, err))
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req+"\n"); err != nil {
		return nil, adminError(fmt.Sprintf("admin socket %s: %v", path, err))
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return nil, adminError(fmt.Sprintf("admin socket %s: no answer: %v", path, err))
	}
	var e struct{ Error string }
	if json.Unmarshal(line, &e) == nil && e.Error != "" {
		return nil, adminError("the server says: " + e.Error)
	}
	return line, nil
}

func printStats(pidFile string, asJSON bool, stdout io.Writer) error {
	b, err := askAdmin(pidFile, "stats")
	if err != nil {
		return err
	}
	if asJSON {
		_, err = stdout.Write(b)
		return err
	}
	var st swoole.AdminStats
	if err := json.Unmarshal(b, &st); err != nil {
		return adminError(fmt.Sprintf("the admin socket's answer is not stats: %v", err))
	}
	writeStats(stdout, st)
	return nil
}

// writeStats prints stats as "key: value" lines and a table of the processes.
func writeStats(stdout io.Writer, st swoole.AdminStats) {
	fmt.Fprintf(stdout, "manager_pid: %d\nmaster_pid: %d\n", st.ManagerPID, st.MasterPID)
	v := reflect.ValueOf(st.Stats)
	for i := range v.NumField() {
		key, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		fmt.Fprintf(stdout, "%s: %v\n", key, v.Field(i).Interface())
	}
	fmt.Fprintf(stdout, "processes:\n  %-4s %-8s %-8s %s\n", "id", "kind", "pid", "status")
	for _, p := range st.Processes {
		fmt.Fprintf(stdout, "  %-4d %-8s %-8d %s\n", p.ID, p.Kind, p.PID, statusName(p.Status))
	}
}

func statusName(st int) string {
	switch st {
	case swoole.WorkerBusy:
		return "busy"
	case swoole.WorkerIdle:
		return "idle"
	case swoole.WorkerExit:
		return "exit"
	}
	return "starting"
}
