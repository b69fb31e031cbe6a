package swoole_test

// Tasks sent by the master (OnStart), the manager (OnManagerStart) and a user process of a
// ModeProcess server reach OnTask, and Finish there fails (509): nobody waits for their
// result. Swoole's task/task_in_master, task/task_in_manager and task/task_in_user_process.

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/goswoole/swoole"
)

func init() { mpMoreServers["onewayfinish"] = owServer }

// owServer is a ModeProcess server with 1 worker and 2 task workers. OnStart, OnManagerStart
// and a user process each send a task naming themselves ("sent <who> <error code>"); OnTask
// logs "task <who> <Finish's error code>".
func owServer() int {
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeProcess, swoole.SockTCP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewServer:", err)
		return 2
	}
	if err := s.Set(swoole.Settings{WorkerNum: 1, TaskWorkerNum: 2, LogLevel: swoole.LogLevelError, MaxConnection: 1024, MaxWaitTime: 3 * time.Second}); err != nil {
		fmt.Fprintln(os.Stderr, "Set:", err)
		return 2
	}
	port := s.Ports()[0].Port()
	send := func(who string) {
		_, err := s.Task(who, -1)
		mpEvent("sent", who, mpCode(err))
	}
	if _, err := s.AddProcess(swoole.NewProcess(func(*swoole.Process) {
		send("uproc")
		select {}
	})); err != nil {
		fmt.Fprintln(os.Stderr, "AddProcess:", err)
		return 2
	}
	s.OnStart(func(*swoole.Server) { send("master") })
	s.OnManagerStart(func(*swoole.Server) {
		mpEvent("managerstart", port)
		send("manager")
	})
	s.OnTask(func(s *swoole.Server, _ int, _ int, data []byte) any {
		mpEvent("task", string(data), mpCode(s.Finish("OK")))
		return nil
	})
	s.OnFinish(func(*swoole.Server, int, []byte) { mpEvent("onfinish") })
	s.OnReceive(func(*swoole.Server, int64, int, []byte) {})
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 1
	}
	return 0
}

// TestOneWayTaskFinishFails: each task reaches OnTask, where Finish returns 509.
func TestOneWayTaskFinishFails(t *testing.T) {
	ms := mpStartServer(t, "onewayfinish", "managerstart")
	want := strconv.Itoa(swoole.ErrWrongOperation)
	for _, who := range []string{"master", "manager", "uproc"} {
		if e := ms.waitEvent("sent", func(e mpEv) bool { return e.Fields[0] == who }); e.Fields[1] != "0" {
			t.Errorf("Task from the %s: code %s, want 0", who, e.Fields[1])
		}
		e := ms.waitEvent("task", func(e mpEv) bool { return e.Fields[0] == who })
		if e.Fields[1] != want {
			t.Errorf("Finish in the task from the %s: code %s, want %s", who, e.Fields[1], want)
		}
	}
	if n := ms.count("onfinish", nil); n != 0 {
		t.Errorf("OnFinish ran %d times, want never", n)
	}
}
