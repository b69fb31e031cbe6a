package swoole

import "github.com/goswoole/swoole/internal/conntable"

// Every call on one session (Send, SendFile, Close, Pause, Resume, Confirm, Protect, Bind,
// SendWait) validates its arguments, then routes the session: either this process holds the
// connection (its loop, or a ModeProcess master's reactors) and acts on it here, or another
// process holds it (another ModeBase worker, or the master's reactor r for every other
// process of a ModeProcess server) and the request goes through that process's pipe
// (forward). Which of the two is read from the shared table and this process's own
// connections, never from the role of the calling process.

// connRoute is where one session lives, seen from this process.
type connRoute struct {
	c     *conn           // the connection, when this process holds it; nil otherwise
	owner int             // the process that holds it (a worker id, or ownerReactor(r)) when c is nil
	slot  *conntable.Slot // the session's slot in the shared table
}

// local reports whether this process holds the connection.
func (r connRoute) local() bool { return r.c != nil }

// closing reports whether the session is closing (Close was called; queued output drains).
func (r connRoute) closing() bool { return r.slot.State.Load() == conntable.StateClosing }

// route finds the open session fd for call, or returns the error call gets: not running
// (503), fd < 1 (503), a ModeProcess worker's call inside the session's own OnClose
// (1003/1004), or no such open session (1005). Inside its own OnClose a connection this
// process holds is still routed for Send, as in Swoole's BASE mode.
func (s *Server) route(call string, fd int64) (connRoute, error) {
	return s.find(call, fd, false)
}

// routeClosing is route for Close: a session that is closing is found too.
func (s *Server) routeClosing(call string, fd int64) (connRoute, error) {
	return s.find(call, fd, true)
}

func (s *Server) find(call string, fd int64, closing bool) (connRoute, error) {
	if err := s.running(call); err != nil {
		return connRoute{}, err
	}
	if fd <= 0 {
		return connRoute{}, s.fail(newError(ErrRefused, "%s: invalid fd %d: session ids start at start_session_id+1", call, fd))
	}
	if err := s.closingInWorker(call, fd); err != nil {
		return connRoute{}, err
	}
	var sl *conntable.Slot
	if closing {
		sl = s.table.Get(fd)
	} else {
		sl = s.table.Lookup(fd)
	}
	if sl != nil {
		if c := s.conns[fd&s.mask].Load(); c != nil && c.id == fd {
			return connRoute{c: c, slot: c.slot}, nil
		}
		if sl.Session.Load() == fd {
			return connRoute{owner: int(sl.Worker.Load()), slot: sl}, nil
		}
	}
	if call == "Send" {
		if c := s.closingConn(fd); c != nil {
			return connRoute{c: c, slot: c.slot}, nil
		}
	}
	return connRoute{}, s.fail(newError(ErrSessionNotExist, "%s: session %d does not exist (never opened, or already closed)", call, fd))
}
