package swoole

import (
	"time"

	"github.com/goswoole/swoole/internal/conntable"
	"github.com/goswoole/swoole/internal/framing"
)

// heartbeatInterval is how often the automatic check runs: heartbeat_check_interval, or,
// when only ports set heartbeat_idle_time, half the smallest idle time (at least 1 s).
func (s *Server) heartbeatInterval() time.Duration {
	if s.eff.HeartbeatCheckInterval > 0 {
		return s.eff.HeartbeatCheckInterval
	}
	var iv time.Duration
	for _, p := range s.ports {
		if idle := p.eff.HeartbeatIdleTime; idle > 0 {
			if d := max(idle/2, time.Second); iv == 0 || d < iv {
				iv = d
			}
		}
	}
	return iv
}

// idleCheckInterval is how often the loop scans for idle connections: the heartbeat
// interval, or more often when a port sets max_idle_time or frame_timeout (half of it, at
// least 100 ms).
func (s *Server) idleCheckInterval() time.Duration {
	iv := s.heartbeatInterval()
	for _, p := range s.ports {
		for _, idle := range []time.Duration{p.eff.MaxIdleTime, p.frameTimeout()} {
			if idle > 0 {
				if d := max(idle/2, 100*time.Millisecond); iv == 0 || d < iv {
					iv = d
				}
			}
		}
	}
	return iv
}

// Heartbeat returns the connections of this worker that have received nothing for longer
// than their port's heartbeat_idle_time (connections marked with Protect are skipped); with
// closeConns it also closes them (OnClose gets reactorID -1). Without heartbeat_check_interval
// or heartbeat_idle_time it is an error.
func (s *Server) Heartbeat(closeConns bool) ([]int64, error) {
	if err := s.running("Heartbeat"); err != nil {
		return nil, err
	}
	if s.heartbeatInterval() == 0 {
		return nil, s.fail(newError(ErrRefused, "Heartbeat: no heartbeat is configured: set heartbeat_check_interval or heartbeat_idle_time"))
	}
	return s.run.heartbeat(closeConns)
}

// idleConns scans this worker's connections for idle ones — nothing received for the port's
// heartbeat_idle_time — and returns them, closing them when asked. The automatic scan
// (closeConns without byApp) also closes connections idle in both directions for the port's
// max_idle_time.
func (w *worker) idleConns(closeConns, byApp bool) []int64 {
	s := w.s
	now := nanotime()
	idle := []int64{}
	page := make([]int64, 0, 100)
	var after int64
	owner := w.ev.owner(w)
	for {
		page = s.table.ListWorker(after, 100, owner, page[:0])
		for _, id := range page {
			c := s.conns[id&s.mask].Load()
			if c == nil || c.id != id || c.slot.HasFlag(conntable.FlagProtected) {
				continue
			}
			if !byApp && c.frameAt != 0 {
				if ft := c.port.frameTimeout(); ft > 0 && c.frameAt.since(now) > ft && s.table.MarkClosing(c.slot, id) {
					// A frame begun and not finished in time: a slow (or slowloris) peer.
					if ok, left := s.logLimits[logFrameSlow].allow(); ok {
						s.log.Warn("swoole: closing connection: a frame was not finished within frame_timeout", "fd", id, "frame_timeout", ft, "port", c.port.addr(), "code", ErrPackageMalformedData, "suppressed", left)
					}
					c.rc.Close(true)
					continue
				}
			}
			last := max(c.slot.LastRecv.Load(), c.openedAt)
			if limit := c.port.eff.HeartbeatIdleTime; limit <= 0 || time.Duration(now-last) < limit {
				if maxIdle := c.port.eff.MaxIdleTime; byApp || maxIdle <= 0 ||
					time.Duration(now-max(last, c.slot.LastSend.Load())) < maxIdle {
					continue
				}
				last = max(last, c.slot.LastSend.Load())
			}
			idle = append(idle, id)
			if closeConns && s.table.MarkClosing(c.slot, id) {
				if byApp {
					c.markAppClose()
				}
				s.log.Info("swoole: closing idle connection", "fd", id, "idle", time.Duration(now-last))
				c.rc.Close(false)
			}
		}
		if len(page) < 100 {
			return idle
		}
		after = page[len(page)-1]
	}
}

// frameTimeout is the port's frame_timeout in force: none (0) without framing or when
// turned off.
func (p *Port) frameTimeout() time.Duration {
	if p.frame == nil || p.frame.Mode == framing.ModeNone || p.eff.FrameTimeout < 0 || !p.sock.isStream() {
		return 0
	}
	return p.eff.FrameTimeout
}

// frameClock is a time in milliseconds, modulo 2³², kept in 4 bytes (a connection's struct
// stays in its size class): enough to measure a frame's age up to 49 days. 0 means none.
type frameClock uint32

// frameTime turns nanotime's now into a frameClock (never 0).
func frameTime(now int64) frameClock { return frameClock(uint32(now/int64(time.Millisecond)) | 1) }

// since is the time from t to now (nanotime).
func (t frameClock) since(now int64) time.Duration {
	return time.Duration(uint32(frameTime(now))-uint32(t)) * time.Millisecond
}
