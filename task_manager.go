package swoole

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/goswoole/swoole/internal/ipc"
	"github.com/goswoole/swoole/internal/supervisor"
)

// The task workers' side of the process that runs the supervisor.Manager (the ModeBase
// manager today). The process model (manager.go) calls these hooks; they do not depend on
// the mode: task worker i is slot worker_num+i, its pipe is the ipc.w.<worker_num+i> every
// process already gets, and the task workers' extra pipes are made here, next to the
// workers' pipes, so that they outlive every task worker (a replacement inherits them, and
// what was queued for the old one is not lost).

// procSlots is the number of supervised processes with a pipe and a table slot: workers,
// then task workers (global ids 0 … worker_num+task_worker_num−1).
func (s *Server) procSlots() int { return s.eff.WorkerNum + s.eff.TaskWorkerNum }

// slotKind is the role of the process with global id i.
func (s *Server) slotKind(i int) supervisor.Kind {
	if i >= s.eff.WorkerNum {
		return supervisor.KindTaskWorker
	}
	return supervisor.KindWorker
}

// makeTmpdir creates task_tmpdir when it does not exist (its parents 0755, itself 0700) and,
// when the workers drop privileges (user/group, the manager running as root), gives it to
// their user and group, so that they can spill into it; a directory that exists is left as
// it is. The manager then gives the files it spills to that user too (spillOwner), so that
// a task worker can read and remove them.
func (ts *taskState) makeTmpdir() error {
	s := ts.s
	if (s.eff.User != "" || s.eff.Group != "") && os.Geteuid() == 0 {
		cred, err := supervisor.Credential(s.eff.User, s.eff.Group)
		if err != nil {
			return err
		}
		ts.spillOwner = &[2]int{int(cred.Uid), int(cred.Gid)}
	}
	if _, err := os.Lstat(ts.tmpdir); !errors.Is(err, fs.ErrNotExist) {
		return err // nil: it exists
	}
	if err := os.MkdirAll(filepath.Dir(ts.tmpdir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(ts.tmpdir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // created meanwhile by someone else: left as it is
		}
		return err
	}
	if o := ts.spillOwner; o != nil {
		return os.Lchown(ts.tmpdir, o[0], o[1])
	}
	return nil
}

// buildTaskManager prepares, in the manager, what the task workers need: task_tmpdir, each
// worker's result pipe and, in task_ipc_mode 3, the shared queue.
func (s *Server) buildTaskManager() error {
	ts := s.task
	if ts == nil {
		return nil
	}
	ts.spillNm = spillPrefix + strconv.Itoa(os.Getpid()) + "-"
	if err := ts.makeTmpdir(); err != nil {
		return wrapErrno("", err, "cannot create task_tmpdir %q: choose a directory the server may write to", ts.tmpdir)
	}
	for range s.eff.WorkerNum {
		a, b, err := ipc.NewPair()
		if err != nil {
			return wrapErrno("", err, "cannot create the task result pipes")
		}
		ts.resPair = append(ts.resPair, [2]*os.File{a, b})
	}
	if ts.mode == 3 {
		a, b, err := ipc.NewPair()
		if err != nil {
			return wrapErrno("", err, "cannot create the task queue")
		}
		ts.mgrPair = [2]*os.File{a, b}
		cfg := s.ipcConfig()
		cfg.NoPacking = true
		if ts.queue, err = ipc.NewWriter(a, cfg); err != nil {
			return wrapErrno("", err, "cannot create the task queue")
		}
	}
	return s.buildInHand() // task_inhand.go
}

// taskFiles adds to files what the process with global id i inherits for the tasks.
func (s *Server) taskFiles(i int, files supervisor.Files) {
	ts := s.task
	if ts == nil {
		return
	}
	if i < s.eff.WorkerNum {
		files[fileResIn] = ts.resPair[i][1]
		if ts.mode == 3 {
			files[fileTaskQueue] = ts.mgrPair[0]
		}
		return
	}
	for j, p := range ts.resPair {
		files[filePrefixRes+strconv.Itoa(j)] = p[0]
	}
	files[fileInHand] = ts.inHandFile
	if ts.mode == 3 {
		files[fileTaskQueueIn] = ts.mgrPair[1]
	}
}

// cleanupTaskManager closes the task pipes and removes the spill files nobody read (tasks
// and results still queued when the server stopped).
func (s *Server) cleanupTaskManager() {
	ts := s.task
	if ts == nil {
		return
	}
	for _, p := range append(ts.resPair, ts.mgrPair) {
		for _, f := range p {
			if f != nil {
				f.Close()
			}
		}
	}
	if ts.inHandFile != nil {
		ts.inHandFile.Close()
	}
	ts.inHandTab.close()
	if ts.spillNm != "" {
		left, _ := filepath.Glob(filepath.Join(ts.tmpdir, ts.spillNm+"*"))
		for _, f := range left {
			os.Remove(f)
		}
	}
}

// reloadKinds is what a reload restarts: every worker and task worker (SIGUSR1,
// Reload(false)), or the task workers only (SIGUSR2, Reload(true)), which is always done one
// at a time, as in Swoole. ok is false when there is nothing to reload.
func (s *Server) reloadKinds(onlyTask bool) (kinds []supervisor.Kind, rolling, ok bool) {
	if onlyTask {
		return []supervisor.Kind{supervisor.KindTaskWorker}, true, s.eff.TaskWorkerNum > 0
	}
	kinds = []supervisor.Kind{supervisor.KindWorker}
	if s.eff.TaskWorkerNum > 0 {
		kinds = append(kinds, supervisor.KindTaskWorker)
	}
	return kinds, !*s.eff.ReloadAsync, true
}
