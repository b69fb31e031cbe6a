package main

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tmuxPane drives one tmux session on a tmux server of its own (-L), killed at cleanup.
type tmuxPane struct {
	t      *testing.T
	socket string
	name   string
}

func (p *tmuxPane) tmux(args ...string) (string, error) {
	out, err := exec.Command("tmux", append([]string{"-L", p.socket}, args...)...).CombinedOutput()
	return string(out), err
}

// capture returns what the pane shows now.
func (p *tmuxPane) capture() string {
	out, _ := p.tmux("capture-pane", "-p", "-t", p.name)
	return out
}

// waitScreen polls the pane until cond holds, failing the test after 20 s.
func (p *tmuxPane) waitScreen(what string, cond func(screen string) bool) string {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		screen := p.capture()
		if cond(screen) {
			return screen
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the pane never showed %s; it shows:\n%s", what, screen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTopInTmux runs goswoole top in a 160×40 tmux pane against a real server with two
// workers and an admin server: the view lists the workers' pids, key r reloads them (new
// pids, in the server and on the screen), and key q ends top with status 0.
func TestTopInTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (apt-get install -y tmux): goswoole top's terminal test needs it")
	}
	addr := "ops:pw@127.0.0.1:" + strconv.Itoa(freePort(t))
	c := startChild(t, "serve", "--port", "0", "--workers", "2", "--admin", addr)
	c.line(20 * time.Second)
	var first []int
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, out, _ := cli("stats", "--admin", addr)
		first = workerPIDs(out)
		if len(first) == 2 && !slices.Contains(first, 0) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats --admin never listed 2 running workers:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer func() { // stop the server whatever happened (the child's cleanup kills only its pid)
		cli("stop", "--admin", addr)
		c.exitCode(20 * time.Second)
	}()

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &tmuxPane{t: t, socket: fmt.Sprintf("goswoole-top-test-%d", os.Getpid()), name: "top"}
	// The shell line says how top ended and keeps the pane open to be read.
	line := fmt.Sprintf("env %s=1 %q top --admin %q; echo TOP-EXITED-$?; exec sleep 120", roleEnv, exe, addr)
	if out, err := p.tmux("new-session", "-d", "-s", p.name, "-x", "160", "-y", "40", line); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = p.tmux("kill-server") })

	showsAll := func(pids []int) func(string) bool {
		return func(screen string) bool {
			for _, pid := range pids {
				if !strings.Contains(screen, " "+strconv.Itoa(pid)+" ") {
					return false
				}
			}
			return strings.Contains(screen, "goswoole top")
		}
	}
	screen := p.waitScreen(fmt.Sprintf("the workers' pids %v", first), showsAll(first))
	for _, want := range []string{"PROCESS", "worker-0", "worker-1", "REQUESTS", "DISPATCH", "CPU%", "RSS", "connections", "task queue"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the view has no %q:\n%s", want, screen)
		}
	}

	if out, err := p.tmux("send-keys", "-t", p.name, "r"); err != nil {
		t.Fatalf("tmux send-keys r: %v\n%s", err, out)
	}
	var second []int
	deadline = time.Now().Add(20 * time.Second)
	for {
		_, out, _ := cli("stats", "--admin", addr)
		second = workerPIDs(out)
		if len(second) == 2 && !slices.Contains(second, 0) && !slices.Contains(second, first[0]) && !slices.Contains(second, first[1]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("key r did not reload the workers (were %v, now %v); the pane shows:\n%s", first, second, p.capture())
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.waitScreen(fmt.Sprintf("the new workers' pids %v", second), showsAll(second))

	if out, err := p.tmux("send-keys", "-t", p.name, "q"); err != nil {
		t.Fatalf("tmux send-keys q: %v\n%s", err, out)
	}
	p.waitScreen("top's exit (TOP-EXITED-0)", func(screen string) bool { return strings.Contains(screen, "TOP-EXITED-0") })
}
