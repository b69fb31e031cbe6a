package ipc

import "sync/atomic"

// Counters count what one or more Writers and Readers did. Every field is updated atomically
// and may be read at any time from any goroutine. Syscalls count every send or receive
// system call made, including those that found the socket full or empty, so
// Syscalls/Messages is the cost per message.
type Counters struct {
	MsgsSent     atomic.Uint64 // messages whose last datagram left
	DgramsSent   atomic.Uint64 // datagrams sent
	SendSyscalls atomic.Uint64 // sendmsg and sendmmsg calls
	MsgsQueued   atomic.Uint64 // messages that went through the send queue (wholly or in part)
	MsgsRecv     atomic.Uint64 // complete messages delivered to ReadBatch's callback
	DgramsRecv   atomic.Uint64 // datagrams received
	RecvSyscalls atomic.Uint64 // recvmmsg calls
	Dropped      atomic.Uint64 // messages or datagrams dropped by a Reader (OnDrop was told)
}

// Stats is a snapshot of [Counters].
type Stats struct {
	MsgsSent, DgramsSent, SendSyscalls, MsgsQueued uint64
	MsgsRecv, DgramsRecv, RecvSyscalls, Dropped    uint64
}

// Load returns a snapshot of the counters. Fields are read one at a time, so a snapshot
// taken while others update them is not a single instant.
func (c *Counters) Load() Stats {
	return Stats{
		MsgsSent: c.MsgsSent.Load(), DgramsSent: c.DgramsSent.Load(),
		SendSyscalls: c.SendSyscalls.Load(), MsgsQueued: c.MsgsQueued.Load(),
		MsgsRecv: c.MsgsRecv.Load(), DgramsRecv: c.DgramsRecv.Load(),
		RecvSyscalls: c.RecvSyscalls.Load(), Dropped: c.Dropped.Load(),
	}
}

// Sub returns s - old, field by field: the counts between two snapshots.
func (s Stats) Sub(old Stats) Stats {
	return Stats{
		MsgsSent: s.MsgsSent - old.MsgsSent, DgramsSent: s.DgramsSent - old.DgramsSent,
		SendSyscalls: s.SendSyscalls - old.SendSyscalls, MsgsQueued: s.MsgsQueued - old.MsgsQueued,
		MsgsRecv: s.MsgsRecv - old.MsgsRecv, DgramsRecv: s.DgramsRecv - old.DgramsRecv,
		RecvSyscalls: s.RecvSyscalls - old.RecvSyscalls, Dropped: s.Dropped - old.Dropped,
	}
}
