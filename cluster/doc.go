// Package cluster carries a goswoole server beyond one machine on NATS: sessions, uids,
// broadcasts, stats and tasks across hosts.
//
// A server joins with Join before Start; the node connects in the server's OnStart (to an
// external NATS, or to a nats-server embedded in the process, with JetStream) and closes in
// its OnShutdown. A server that does not import this package does not link NATS.
//
// What travels where (the prefix is goswoole.<cluster>):
//
//	<prefix>.n.<node>.<call>   core NATS request/reply: Send, Close, Exist, ClientInfo on a
//	                           session of that node
//	<prefix>.all.<call>        core NATS, every node answers: Broadcast, Stats
//	<prefix>.hb                heartbeats: who is in the cluster
//	<prefix>.task              the JetStream work-queue stream GOSWOOLE_<cluster>_TASKS
//	<prefix>.reply.<node>      task results for the node that sent the tasks
//	KV goswoole_<cluster>_uid  uid -> session ("node/fd"), for SendToUID
//
// Faults. A call to a node that is not running answers ErrSessionNotExist (1005: its
// sessions are gone with it); a node that does not answer in RequestTimeout, ETIMEDOUT (110);
// a call before Start or after the shutdown, ENOTCONN (107). With three NATS nodes and
// Replicas 3, the stream and the bucket survive the loss of one: Task and TaskWait retry the
// publish while a new leader is elected (PublishTimeout). A task stored is not lost: it is
// delivered until a handler acknowledges it (see task.go's notes: at least once).
package cluster
