package swoole

import (
	"reflect"
	"strings"
)

// callbacks holds the server-level event handlers, each exactly as registered.
type callbacks struct {
	start          func(s *Server)
	beforeShutdown func(s *Server)
	shutdown       func(s *Server)
	managerStart   func(s *Server)
	managerStop    func(s *Server)
	beforeReload   func(s *Server)
	afterReload    func(s *Server)
	workerStart    func(s *Server, workerID int)
	workerStop     func(s *Server, workerID int)
	workerExit     func(s *Server, workerID int)
	workerError    func(s *Server, workerID, workerPID, exitCode, signal int)
	task           func(s *Server, taskID int, srcWorkerID int, data []byte) any
	finish         func(s *Server, taskID int, data []byte)
	pipeMessage    func(s *Server, srcWorkerID int, data []byte)
	port           portCallbacks
}

// portCallbacks are the handlers a Port may override.
type portCallbacks struct {
	connect     func(s *Server, fd int64, reactorID int)
	receive     func(s *Server, fd int64, reactorID int, data []byte)
	close       func(s *Server, fd int64, reactorID int)
	packet      func(s *Server, data []byte, client ClientAddr)
	bufferFull  func(s *Server, fd int64)
	bufferEmpty func(s *Server, fd int64)
}

// inherit fills every handler p lacks from base.
func (p portCallbacks) inherit(base portCallbacks) portCallbacks {
	if p.connect == nil {
		p.connect = base.connect
	}
	if p.receive == nil {
		p.receive = base.receive
	}
	if p.close == nil {
		p.close = base.close
	}
	if p.packet == nil {
		p.packet = base.packet
	}
	if p.bufferFull == nil {
		p.bufferFull = base.bufferFull
	}
	if p.bufferEmpty == nil {
		p.bufferEmpty = base.bufferEmpty
	}
	return p
}

// portEvent stores cb under a port-level event name. It returns false when the name is not a
// port event, and an error when cb has the wrong type.
func (p *portCallbacks) set(name string, cb any) (bool, error) {
	if _, ok := signatures[name]; !ok || !isPortEvent(name) {
		return false, nil
	}
	if !assign(cb, p.field(name)) {
		return true, badSignature(name, cb)
	}
	return true, nil
}

func isPortEvent(name string) bool {
	switch name {
	case "connect", "receive", "close", "packet", "bufferfull", "bufferempty":
		return true
	}
	return false
}

// field returns a pointer to the handler field for a port event name.
func (p *portCallbacks) field(name string) any {
	switch name {
	case "connect":
		return &p.connect
	case "receive":
		return &p.receive
	case "close":
		return &p.close
	case "packet":
		return &p.packet
	case "bufferfull":
		return &p.bufferFull
	case "bufferempty":
		return &p.bufferEmpty
	}
	return nil
}

// assign stores cb into the handler field ptr (a pointer to a func field) when cb has exactly
// the field's type, or clears it when cb is nil. It returns false, changing nothing, when cb
// has another type.
func assign(cb any, ptr any) bool {
	fv := reflect.ValueOf(ptr).Elem()
	if cb == nil {
		fv.Set(reflect.Zero(fv.Type()))
		return true
	}
	v := reflect.ValueOf(cb)
	if v.Type() != fv.Type() {
		return false
	}
	fv.Set(v)
	return true
}

func (p *portCallbacks) get(name string) (any, bool) {
	switch name {
	case "connect":
		return nilIfNil(p.connect), true
	case "receive":
		return nilIfNil(p.receive), true
	case "close":
		return nilIfNil(p.close), true
	case "packet":
		return nilIfNil(p.packet), true
	case "bufferfull":
		return nilIfNil(p.bufferFull), true
	case "bufferempty":
		return nilIfNil(p.bufferEmpty), true
	}
	return nil, false
}

// signatures gives, for each event name, the Go type a handler must have (for messages).
var signatures = map[string]string{
	"start":          "func(s *swoole.Server)",
	"beforeshutdown": "func(s *swoole.Server)",
	"shutdown":       "func(s *swoole.Server)",
	"managerstart":   "func(s *swoole.Server)",
	"managerstop":    "func(s *swoole.Server)",
	"beforereload":   "func(s *swoole.Server)",
	"afterreload":    "func(s *swoole.Server)",
	"workerstart":    "func(s *swoole.Server, workerID int)",
	"workerstop":     "func(s *swoole.Server, workerID int)",
	"workerexit":     "func(s *swoole.Server, workerID int)",
	"workererror":    "func(s *swoole.Server, workerID, workerPID, exitCode, signal int)",
	"task":           "func(s *swoole.Server, taskID int, srcWorkerID int, data []byte) any",
	"finish":         "func(s *swoole.Server, taskID int, data []byte)",
	"pipemessage":    "func(s *swoole.Server, srcWorkerID int, data []byte)",
	"connect":        "func(s *swoole.Server, fd int64, reactorID int)",
	"receive":        "func(s *swoole.Server, fd int64, reactorID int, data []byte)",
	"close":          "func(s *swoole.Server, fd int64, reactorID int)",
	"packet":         "func(s *swoole.Server, data []byte, client swoole.ClientAddr)",
	"bufferfull":     "func(s *swoole.Server, fd int64)",
	"bufferempty":    "func(s *swoole.Server, fd int64)",
}

func badSignature(name string, cb any) error {
	return newError(ErrInvalidParams, "the %q handler must be a %s, not %T", name, signatures[name], cb)
}

// nilIfNil turns a nil function stored in an interface into an untyped nil.
func nilIfNil(f any) any {
	if v := reflect.ValueOf(f); v.Kind() == reflect.Func && v.IsNil() {
		return nil
	}
	return f
}

// eventName normalises an event name and checks that it exists.
func eventName(name string) (string, error) {
	n := strings.ToLower(name)
	if _, ok := signatures[n]; ok {
		return n, nil
	}
	if strings.HasPrefix(n, "on") {
		if _, ok := signatures[n[2:]]; ok {
			return "", newError(ErrUnknownEvent, "unknown event %q: event names have no \"on\" prefix, use %q", name, n[2:])
		}
	}
	return "", newError(ErrUnknownEvent, "unknown event %q: the events are Start, BeforeShutdown, Shutdown, ManagerStart, ManagerStop, BeforeReload, AfterReload, WorkerStart, WorkerStop, WorkerExit, WorkerError, Connect, Receive, Close, Packet, Task, Finish, PipeMessage, BufferFull, BufferEmpty", name)
}

// set stores cb under a server event name (already normalised). A cb of the wrong type is
// an error and leaves the current handler in place.
func (c *callbacks) set(name string, cb any) error {
	if handled, err := c.port.set(name, cb); handled {
		return err
	}
	var ptr any
	switch name {
	case "start":
		ptr = &c.start
	case "beforeshutdown":
		ptr = &c.beforeShutdown
	case "shutdown":
		ptr = &c.shutdown
	case "managerstart":
		ptr = &c.managerStart
	case "managerstop":
		ptr = &c.managerStop
	case "beforereload":
		ptr = &c.beforeReload
	case "afterreload":
		ptr = &c.afterReload
	case "workerstart":
		ptr = &c.workerStart
	case "workerstop":
		ptr = &c.workerStop
	case "workerexit":
		ptr = &c.workerExit
	case "workererror":
		ptr = &c.workerError
	case "task":
		ptr = &c.task
	case "finish":
		ptr = &c.finish
	case "pipemessage":
		ptr = &c.pipeMessage
	default:
		return nil
	}
	if !assign(cb, ptr) {
		return badSignature(name, cb)
	}
	return nil
}

func (c *callbacks) get(name string) any {
	if v, ok := c.port.get(name); ok {
		return v
	}
	switch name {
	case "start":
		return nilIfNil(c.start)
	case "beforeshutdown":
		return nilIfNil(c.beforeShutdown)
	case "shutdown":
		return nilIfNil(c.shutdown)
	case "managerstart":
		return nilIfNil(c.managerStart)
	case "managerstop":
		return nilIfNil(c.managerStop)
	case "beforereload":
		return nilIfNil(c.beforeReload)
	case "afterreload":
		return nilIfNil(c.afterReload)
	case "workerstart":
		return nilIfNil(c.workerStart)
	case "workerstop":
		return nilIfNil(c.workerStop)
	case "workerexit":
		return nilIfNil(c.workerExit)
	case "workererror":
		return nilIfNil(c.workerError)
	case "task":
		return nilIfNil(c.task)
	case "finish":
		return nilIfNil(c.finish)
	case "pipemessage":
		return nilIfNil(c.pipeMessage)
	}
	return nil
}
