package swoole

import (
	"github.com/goswoole/swoole/internal/reactor"
)

type command struct {
	types int
	fn    func(s *Server, data []byte) []byte
}

// AddCommand registers an admin command that Command can run in the processes whose types
// (CommandMaster|CommandManager|CommandEventWorker|CommandTaskWorker) it accepts. A name is
// registered once. Only before Start.
func (s *Server) AddCommand(name string, processTypes int, cb func(s *Server, data []byte) []byte) error {
	const all = CommandMaster | CommandManager | CommandEventWorker | CommandTaskWorker
	switch {
	case s.state.Load() != stateNew:
		return s.fail(newError(ErrRefused, "AddCommand after Start: register commands before calling Start"))
	case name == "":
		return s.fail(newError(ErrInvalidParams, "AddCommand: the name is empty"))
	case cb == nil:
		return s.fail(newError(ErrInvalidParams, "AddCommand(%q): the callback is nil", name))
	case processTypes&all == 0 || processTypes&^all != 0:
		return s.fail(newError(ErrInvalidParams, "AddCommand(%q): process types %d: use CommandMaster, CommandManager, CommandEventWorker and CommandTaskWorker, or'ed", name, processTypes))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.commands == nil {
		s.commands = map[string]command{}
	}
	if _, dup := s.commands[name]; dup {
		return s.fail(newError(ErrRefused, "AddCommand: %q is already registered", name))
	}
	s.commands[name] = command{types: processTypes, fn: cb}
	return nil
}

// Command runs the command name in the process chosen by processType and processID (the
// worker id for CommandEventWorker, the task-worker index for CommandTaskWorker, ignored for
// master and manager) and returns its reply. data ([]byte, string or a codec value) reaches
// the callback as bytes. The callback runs on the target worker's event loop: directly when
// Command is called from one of that worker's callbacks, else posted to it while Command waits.
//
// In a single-process ModeBase server the process is its own master and worker 0; there is no
// manager and there are no task workers, so those targets are errors.
//
// In a ModeBase server of several processes Command works from every process (workers, user
// processes, the manager) and reaches the manager, any worker, the master (worker 0: ModeBase
// has no master, and GetMasterPID names worker 0) and task workers: the request goes over
// the target's pipe and Command waits up to 10 s for the reply (an error with ETIMEDOUT
// after that). A worker that calls it from a callback holds its loop while it waits, but
// applies what arrives on its pipe meanwhile (requests for its connections, pipe messages,
// commands for it), so two workers that ask each other at once both get their answer (see
// command_multi.go). Errors: an unknown name 9012 (also when the target does not know it),
// a process type the command does not accept 507, an id out of range 505.
func (s *Server) Command(name string, processID int, processType int, data any) ([]byte, error) {
	if err := s.running("Command"); err != nil {
		return nil, err
	}
	cmd, ok := s.commands[name]
	if !ok {
		return nil, s.fail(newError(ErrServerInvalidCommand, "Command: unknown command %q: register it with AddCommand", name))
	}
	if cmd.types&processType == 0 || processType&(processType-1) != 0 {
		return nil, s.fail(newError(ErrOperationNotSupport, "Command(%q): process type %d is not one the command accepts (%d)", name, processType, cmd.types))
	}
	payload, err := encode(data)
	if err != nil {
		if data != nil {
			return nil, s.fail(err)
		}
		payload = nil
	}
	return s.run.command(name, cmd, processID, processType, payload)
}

// commandHere runs cmd on this process's worker loop.
func (s *Server) commandHere(name string, cmd command, payload []byte) ([]byte, error) {
	w := s.cur
	if w.loop.OnLoop() {
		return cmd.fn(s, payload), nil
	}
	done := make(chan []byte, 1)
	if !w.loop.Post(reactor.Task{Fn: func() { done <- cmd.fn(s, payload) }}) {
		return nil, s.fail(newError(ErrRefused, "Command(%q): the server is shutting down", name))
	}
	return <-done, nil
}
