package swoole

import (
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/goswoole/swoole/internal/ipc"
)

// Command between the processes of a ModeBase server of several processes.
//
// The caller writes a request to the target's pipe (the manager's, or the pipe of the global
// id: worker, task worker): ipc.TypeCommand, Fd = a request id, Aux = the process type asked
// for, payload = uint16 name length, name, data. The target runs the command and writes
// ipc.TypeCommandReply with the same request id to the caller's pipe (SrcWorker says whose:
// -1 the manager), Aux = a status, payload = the command's answer. The caller waits up to
// commandTimeout.
//
// How the caller waits:
//   - the manager and user processes have a goroutine that reads their pipe: it hands the
//     reply to the waiting call over a channel. The manager runs each command it is asked
//     for on a goroutine of its own, so its reader is never held up by one.
//   - a worker calling from a goroutine of its own: the worker's loop reads its pipe and hands
//     the reply over the same way.
//   - a worker calling from its own loop (a callback: the usual case) cannot wait for the
//     loop. It reads its own pipe itself until the reply comes (poll + ReadBatch), and
//     applies every other message it reads there at once, as the loop would: requests for
//     its connections, OnPipeMessage, and commands other processes ask it for (so two
//     workers that Command each other at the same moment both get their answer). Its
//     connections and timers wait until the call returns, as with any blocking call made
//     in a callback. When Command is called inside a callback that is itself run by a read
//     of the pipe (OnPipeMessage, a command's callback, a ModeProcess worker's events), that
//     read is still in progress: the wait reads through the same Reader, which first
//     delivers the rest of the interrupted batch, in order, then reads on (ipc.Reader
//     nests), so a message of several datagrams is never split between two readers.

// commandTimeout bounds how long Command waits for another process's reply.
const commandTimeout = 10 * time.Second

// Statuses of a command reply (Aux).
const (
	cmdOK          = 0
	cmdUnknown     = 1 // the target has no command of that name
	cmdNotAccepted = 2 // the command does not accept the target's process type
	cmdNoTarget    = 3 // the target runs no commands (a user process)
	cmdBadRequest  = 4
)

// cmdWaits are the Command calls of this process that wait for a reply.
type cmdWaits struct {
	mu      sync.Mutex
	next    uint32
	pending map[int64]chan cmdReply
}

type cmdReply struct {
	status uint16
	data   []byte
}

// register returns a new request id (this process's pid in the high half, so that a reply
// meant for a process that died is never taken by its successor) and the reply's channel.
func (c *cmdWaits) register() (int64, chan cmdReply) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending = map[int64]chan cmdReply{}
	}
	c.next++
	id := int64(os.Getpid())<<32 | int64(c.next)
	ch := make(chan cmdReply, 1)
	c.pending[id] = ch
	return id, ch
}

func (c *cmdWaits) cancel(id int64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// deliver hands a reply to the call waiting for it; a reply nobody waits for (it timed out,
// or was meant for a process that died) is dropped.
func (c *cmdWaits) deliver(h ipc.Header, payload []byte) {
	c.mu.Lock()
	ch := c.pending[h.Fd]
	delete(c.pending, h.Fd)
	c.mu.Unlock()
	if ch != nil {
		ch <- cmdReply{status: h.Aux, data: append([]byte(nil), payload...)}
	}
}

// commandCross is Command in a ModeBase server of several processes (the runtimes of every process but the single one call it).
func (s *Server) commandCross(name string, cmd command, processID, processType int, payload []byte) ([]byte, error) {
	target, what, err := s.commandTarget(name, processID, processType)
	if err != nil {
		return nil, err
	}
	if target == s.run.selfID() && !s.inUserProcess() {
		if s.cur != nil {
			return s.commandHere(name, cmd, payload)
		}
		return cmd.fn(s, payload), nil // the manager
	}
	return s.commandRemote(name, target, what, processType, payload)
}

// commandTarget returns the global id of the process that runs a command of processType
// (managerSrcID for the manager) and its name for messages.
func (s *Server) commandTarget(name string, processID, processType int) (int, string, error) {
	switch processType {
	case CommandEventWorker:
		if processID < 0 || processID >= s.eff.WorkerNum {
			return 0, "", s.fail(newError(ErrInvalidParams, "Command(%q): no worker %d: ids are 0 to %d", name, processID, s.eff.WorkerNum-1))
		}
		return processID, "worker " + strconv.Itoa(processID), nil
	case CommandTaskWorker:
		if processID < 0 || processID >= s.eff.TaskWorkerNum {
			return 0, "", s.fail(newError(ErrInvalidParams, "Command(%q): no task worker %d: the server has %d (task_worker_num); the id is the task worker's index", name, processID, s.eff.TaskWorkerNum))
		}
		return s.eff.WorkerNum + processID, "task worker " + strconv.Itoa(processID), nil
	case CommandManager:
		return managerSrcID, "the manager", nil
	case CommandMaster:
		if s.mode == ModeProcess {
			return managerSrcID, "the master", nil // the master does the manager's work too
		}
		// A ModeBase server has no master: as GetMasterPID says, Swoole's BASE mode counts
		// worker 0 as the master.
		return 0, "the master (worker 0 in ModeBase)", nil
	}
	return 0, "", s.fail(newError(ErrInvalidParams, "Command(%q): process type %d: use one of CommandMaster, CommandManager, CommandEventWorker, CommandTaskWorker", name, processType))
}

// writerTo returns the pipe that reaches the process with global id (managerSrcID: the
// manager), or nil.
func (s *Server) writerTo(id int) *ipc.Writer {
	mp := s.mp
	if id == managerSrcID {
		return mp.toMgr // nil in the manager itself
	}
	if id >= 0 && id < len(mp.toWorker) {
		return mp.toWorker[id]
	}
	return nil
}

// commandRemote sends a command request to target and waits for its reply.
func (s *Server) commandRemote(name string, target int, what string, processType int, payload []byte) ([]byte, error) {
	mp := s.mp
	wr := s.writerTo(target)
	if wr == nil {
		return nil, s.fail(newError(ErrInvalidParams, "Command(%q): %s cannot be reached from this process", name, what))
	}
	if len(name) > 0xffff {
		return nil, s.fail(newError(ErrInvalidParams, "Command: the name is %d bytes long: at most 65535", len(name)))
	}
	req := make([]byte, 2, 2+len(name)+len(payload))
	binary.LittleEndian.PutUint16(req, uint16(len(name)))
	req = append(append(req, name...), payload...)

	id, ch := mp.ext.cmds.register()
	defer mp.ext.cmds.cancel(id)
	h := ipc.Header{Type: ipc.TypeCommand, SrcWorker: mp.src, Fd: id, Aux: uint16(processType)}
	deadline := time.Now().Add(commandTimeout)
	onLoop := s.cur != nil && s.cur.loop.OnLoop()
	var err error
	if s.cur != nil && !onLoop {
		err = wr.Write(h, req) // the loop flushes what the pipe does not take at once
	} else {
		err = wr.WriteBlocking(h, req, deadline)
	}
	switch {
	case err == nil:
	case errors.Is(err, ipc.ErrTooLarge):
		return nil, s.fail(newError(ErrDataLengthTooLarge, "Command(%q): %d bytes of data: a message to another process carries at most %d bytes", name, len(payload), ipc.DefaultMaxMessage))
	case errors.Is(err, ipc.ErrQueueFull), errors.Is(err, ipc.ErrTimeout):
		return nil, s.fail(newError(ErrOutputBufferOverflow, "Command(%q): the pipe to %s is full (it does not keep up): try again later", name, what))
	default:
		return nil, s.fail(wrapErrno("", err, "Command(%q): cannot write to %s", name, what))
	}

	var rep cmdReply
	var ok bool
	if onLoop {
		rep, ok = s.waitOnLoop(ch, deadline)
	} else {
		t := time.NewTimer(time.Until(deadline))
		select {
		case rep = <-ch:
			ok = true
		case <-t.C:
		}
		t.Stop()
	}
	if !ok {
		return nil, s.fail(&Error{Code: int(syscall.ETIMEDOUT), Msg: "swoole: Command(" + strconv.Quote(name) + "): no reply from " + what + " within " + commandTimeout.String() + " (is it stuck in a callback?)", Err: syscall.ETIMEDOUT})
	}
	switch rep.status {
	case cmdOK:
		return rep.data, nil
	case cmdUnknown:
		return nil, s.fail(newError(ErrServerInvalidCommand, "Command: %s has no command %q: register it with AddCommand before Start, in every process", what, name))
	case cmdNotAccepted:
		return nil, s.fail(newError(ErrOperationNotSupport, "Command(%q): %s does not accept process type %d", name, what, processType))
	}
	return nil, s.fail(newError(ErrOperationNotSupport, "Command(%q): %s runs no commands", name, what))
}

// waitOnLoop waits for ch on the worker's loop goroutine, reading the worker's pipe itself
// (see the top of this file).
func (s *Server) waitOnLoop(ch chan cmdReply, deadline time.Time) (cmdReply, bool) {
	mp := s.mp
	ext := &mp.ext
	w := s.cur
	ext.waiting++
	defer func() { ext.waiting-- }()
	s.flushReplies() // replies made before this wait do not wait with it
	r := mp.reader   // one Reader per socket, even inside its own ReadBatch (see ipc.Reader)
	handle := w.pipeMessage
	if mp.pin != nil {
		handle = mp.pin.fn // an event worker's own handler (in ModeProcess, the master's events first)
	}
	for {
		select {
		case rep := <-ch:
			return rep, true
		default:
		}
		now := time.Now()
		if !now.Before(deadline) {
			return cmdReply{}, false
		}
		if r.Pending() == 0 {
			if err := r.WaitReadable(minTime(deadline, now.Add(20*time.Millisecond))); err != nil {
				continue // ErrTimeout: look again
			}
		}
		ext.inRead++
		_, err := r.ReadBatch(handle)
		ext.inRead--
		if err != nil {
			s.log.Warn("swoole: reading the worker's pipe", "worker", w.id, "err", err)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// commandMessage handles a command request or reply read from this process's pipe (a
// worker's loop, the manager's or a user process's reader).
func (s *Server) commandMessage(h ipc.Header, payload []byte) {
	if h.Type == ipc.TypeCommandReply {
		s.mp.ext.cmds.deliver(h, payload)
		return
	}
	if s.cur == nil && !s.inUserProcess() {
		// The manager: the command may take its time; the reader goes on.
		payload = append([]byte(nil), payload...)
		go s.serveCommand(h, payload)
		return
	}
	s.serveCommand(h, payload)
}

// serveCommand runs a command another process asked for and replies.
func (s *Server) serveCommand(h ipc.Header, payload []byte) {
	status, reply := uint16(cmdOK), []byte(nil)
	switch {
	case s.inUserProcess():
		status = cmdNoTarget
	case len(payload) < 2 || len(payload) < 2+int(binary.LittleEndian.Uint16(payload)):
		status = cmdBadRequest
	default:
		n := int(binary.LittleEndian.Uint16(payload))
		name, data := string(payload[2:2+n]), payload[2+n:]
		cmd, ok := s.commands[name]
		switch {
		case !ok:
			status = cmdUnknown
		case cmd.types&int(h.Aux) == 0:
			status = cmdNotAccepted
		default:
			if w := s.cur; w != nil {
				w.slot.Status.Store(WorkerBusy)
				reply = cmd.fn(s, data)
				w.slot.Status.Store(WorkerIdle)
			} else {
				reply = cmd.fn(s, data)
			}
		}
	}
	src := int(h.SrcWorker)
	wr := s.writerTo(src)
	if wr == nil {
		s.log.Warn("swoole: a command's reply has nowhere to go", "to", src)
		return
	}
	rh := ipc.Header{Type: ipc.TypeCommandReply, SrcWorker: s.mp.src, Fd: h.Fd, Aux: status}
	var err error
	if s.cur != nil && s.mp.ext.waiting == 0 {
		err = wr.Write(rh, reply) // the loop flushes the rest
	} else {
		// No loop, or the loop is held by a Command wait: send now.
		err = wr.WriteBlocking(rh, reply, time.Now().Add(time.Second))
	}
	if err != nil {
		s.log.Warn("swoole: cannot send a command's reply", "to", src, "err", err)
	}
}
