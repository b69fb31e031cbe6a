// Package supervisor is goswoole's process tree: roles, re-execution with inherited files,
// and the manager loop that starts, reaps, restarts and reloads children.
//
// # The model
//
// Go cannot fork. A child process is this program started again (the file at the path it
// was started from, see Executable), with the same arguments and environment plus four
// variables: EnvRole says which process it is ("manager", "worker:3", "task:4",
// "process:0"), EnvFDs names the files it inherited ("lifeline=3,pipe=4,listener=5"),
// EnvGen counts the reloads its slot went through, and EnvParentPID lets it check that the
// variables were meant for it. The user's main runs again in the child; the server asks
// Current for the role and enters the child's loop instead of the master's, taking its
// pipes, listeners and shared memory with Inherited.
//
//	test / master (no EnvRole)
//	│   Spawn(Role{KindManager}, Files{...})        (ModeProcess; in ModeBase the master
//	│                                                 process is the manager itself)
//	└── manager   GOSWOOLE_ROLE=manager
//	    │   Manager.Run: one Spawner thread, one owner goroutine, one reaper goroutine per child
//	    ├── worker:0      GOSWOOLE_ROLE=worker:0  GOSWOOLE_FDS=lifeline=3,pipe=4
//	    ├── worker:1      ...
//	    ├── task:2        GOSWOOLE_ROLE=task:2
//	    └── process:0     GOSWOOLE_ROLE=process:0 (a user process)
//
// # No orphans
//
// A child must not outlive its parent. Two mechanisms see to it:
//
//   - Pdeathsig (SpawnOptions.DeathSignal, SIGKILL by default). Linux sends it when the
//     thread that forked the child exits, so a Spawner forks every child from one
//     goroutine locked to its OS thread for the Spawner's whole life: the signal then
//     means that the parent process died.
//   - The lifeline: a pipe whose write end only the spawning process holds; every child
//     inherits the read end as LifelineName, and WatchLifeline turns its end-of-file into
//     an exit. It catches the children that handle or ignore their death signal.
//
// Manager.Shutdown sends SIGTERM to every child, SIGKILL after 2 × MaxWaitTime, and returns
// once every one has been reaped.
//
// # The Manager
//
// One goroutine (the one running Run) owns every slot, child and reload; the exported
// methods are requests to it answered on a channel, children's exits arrive on another,
// and callbacks run in order on a goroutine of their own. Each child is waited for by its
// own goroutine (cmd.Wait on its pid, through a pidfd), never by wait4(-1): a SIGCHLD loop
// reaping any child would steal the exits of processes that other code in the program
// started with os/exec.
//
// Async reload (Reload, Swoole's reload_async), for each slot of the kinds:
//
//	BeforeReload()                      on the caller's goroutine
//	spawn new (gen+1) ───────────────►  new child running, slot's current child
//	SIGTERM old ─────────────────────►  old drains (up to MaxWaitTime, then SIGKILL);
//	                                    old and new share the slot id meanwhile
//	... every old pid of the snapshot reaped ...
//	AfterReload()                       on the callback goroutine
//
// Rolling reload (ReloadRolling, and every task-worker-only reload from SIGUSR2):
//
//	BeforeReload()
//	SIGTERM old 0 → reaped → spawn new 0 → SIGTERM old 1 → reaped → spawn new 1 → ...
//	AfterReload()
//
// A restarted or reloaded child execs the path again, so a new binary renamed over the old
// one is what it runs: replace the file, send SIGUSR1, and the workers run the new code
// (in ModeProcess without dropping a connection, which the master holds).
//
// # Crash loops
//
// A child that exits on its own is started again at once (RestartAlways). After
// CrashLoop.Limit exits in a row each within CrashLoop.Window of its start, the restart
// waits MaxDelay/8, then twice as long each time, up to MaxDelay, and the Manager logs a
// warning. A child that lived longer than the window resets the count.
//
// The package builds on Linux only.
package supervisor
