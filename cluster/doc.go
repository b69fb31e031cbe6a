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
//	                           session of that node; SendMessage to one of its workers
//	<prefix>.all.<call>        core NATS, every node answers: Broadcast, Stats
//	<prefix>.hb                heartbeats: who is in the cluster
//	<prefix>.task              the JetStream work-queue stream GOSWOOLE_<cluster>_TASKS:
//	                           the node's tasks (Node.Task), consumer "workers"
//	<prefix>.stask             the same stream: the server's own tasks (Config.Tasks =
//	                           TasksCluster), consumer "server"
//	<prefix>.reply.<node>      task results for the node that sent the tasks
//	KV goswoole_<cluster>_uid  uid -> session ("node/fd"), for SendToUID
//
// Faults. A call to a node that is not running answers ErrSessionNotExist (1005: its
// sessions are gone with it); a node that does not answer in RequestTimeout, ETIMEDOUT (110);
// a call before Start or after the shutdown, ENOTCONN (107). With three NATS nodes and
// Replicas 3, the stream and the bucket survive the loss of one: Task and TaskWait retry the
// publish while a new leader is elected (PublishTimeout). A task stored is not lost: it is
// delivered until a handler acknowledges it (at least once: see "Tasks").
//
// A stopped node (its process frozen, SIGSTOP, or a host that stops answering while its TCP
// connections stay open) is not gone: NATS still routes calls to it, and nothing answers.
// With its embedded NATS node stopped too (TestStoppedHost), on the other nodes:
//
//   - Send, Close and ClientInfo on its sessions wait RequestTimeout and answer ETIMEDOUT;
//     Exist answers false after RequestTimeout. SendToUID of a uid bound there finds the
//     entry and answers ETIMEDOUT (the entry stays).
//   - ETIMEDOUT says "no answer", not "not done": the request waits at the stopped node, which
//     runs it when it resumes: a Send arrives late, a Close closes late, a broadcast reaches
//     its connections late (uncounted). That holds while NATS keeps its routes to the node
//     (it drops a route whose pings go unanswered, after a minute or more; what was queued on
//     it is then lost, and its callers had ETIMEDOUT). Retry a Send only where a duplicate is
//     harmless.
//   - Broadcast and Stats wait RequestTimeout for it while it is still heard of (until three
//     heartbeats are missed) and answer the others' count or figures with ETIMEDOUT naming
//     it; then they answer without waiting, and without it (nil error: Peers lists who is in).
//   - Bind, SessionOf, SendToUID, Task, TaskWait and the server's task API go on with the
//     two other NATS nodes: a stream, bucket or consumer the stopped node led elects another
//     leader (nats-server takes 4 to 9 s), each try waits at most RequestTimeout, and the
//     tries go on until PublishTimeout.
//   - A task it had taken is delivered again TaskAckWait after its last progress report
//     (after the consumer's election, if it led the consumer), to a running node; tasks sent
//     meanwhile run on the others. When it resumes, its handlers finish what they held and
//     the senders drop those results (one result per task).
//   - When it resumes, it is heard again within a heartbeat, calls on its sessions work, and
//     its clients' connections are open (those that did not give up meanwhile).
//
// Other partitions (nodes that run but cannot reach each other, a NATS cluster split in two)
// are not tested.
//
// # Tasks
//
// Task and TaskWait publish the task on the cluster's JetStream work-queue stream
// (GOSWOOLE_<cluster>_TASKS, subject goswoole.<cluster>.task) with the task id as
// Nats-Msg-Id, so a publish retried after a lost acknowledgement is stored once (within the
// stream's two-minute duplicate window). Every node with an OnTask handler pulls from one
// durable consumer ("workers"): a task goes to one node, runs the handler on one of the
// node's TaskConcurrency goroutines, its result goes to the sender's reply subject
// (goswoole.<cluster>.reply.<sender>) as a request the sender answers, and only then is the
// task acknowledged: a result lost on the way (or unconfirmed within RequestTimeout) leaves
// the task to run again, one whose sender is gone (no responders) is acknowledged. While the handler
// runs, the node tells JetStream it is in progress every TaskAckWait/2; a node that dies or
// hangs up mid-task stops doing so, and JetStream delivers the task again, to any node,
// TaskAckWait after the last word (at most TaskMaxDeliver times).
//
// So a handler must tolerate running twice for one task id (at least once): a node killed
// after the handler's side effects but before the acknowledgement, or a result lost with
// its node, runs it again elsewhere. Make its effects idempotent by task id (the taskID
// argument is the same on every delivery). The sender sees one result per id: the first
// that arrives; later ones are dropped (Counters().ResultsDropped).
//
// A handler must also tolerate: running on the node's goroutines, not the server's event
// loop, alongside the server's callbacks and TaskConcurrency-1 other handlers (share state
// with a lock; the server's connection methods may be called from any goroutine); a task
// from any node, sent at any time before (a stored task outlives its sender: its result is
// then dropped); and the shutdown, which stops taking tasks in OnBeforeShutdown and waits for
// the running handlers in OnShutdown. A task delivered TaskMaxDeliver times without an
// acknowledgement (a handler that panics each time) is delivered no more and stays in the
// stream, where an operator can see it (nats stream view).
//
// # The server's own tasks
//
// With Config.Tasks = TasksCluster, the server's own task API goes through the cluster:
// Task, TaskWithCallback, TaskWait, TaskWaitMulti and TaskCo publish each task on the stream
// (subject goswoole.<cluster>.stask, consumer "server"), every host whose server has an
// OnTask takes them, and the result comes back to the sending worker: TaskWait and its kin
// get it as with task workers; OnFinish and a TaskWithCallback callback run on the sending
// worker's loop. A host without OnTask only sends. The delivery rules are those of "Tasks"
// above (at least once, acknowledged after the sender confirmed the result, redelivered
// TaskAckWait after a host died, the sender sees one result per task).
//
// What differs from task workers: OnTask runs on the node's goroutines (TaskConcurrency at
// once), not on a task-worker loop, alongside the server's callbacks, with a handle of its
// own: its Finish answers that task (once; a second Finish, or one after OnTask returned, is
// 509), its Task and kin are refused (507, as in a task worker), the rest of the handle is
// the server's (connection methods, timers). taskID is the sender's task id (counted per
// sending process, from 0), srcWorkerID the sending worker's id: on another host the pair
// is not unique, and a task may run twice (redelivery), so OnTask must tolerate both. The
// task worker index of Task and TaskWait must be -1 (any host); another is refused with
// ErrRefused (503). TaskWait's timeout is ErrTaskTimeout (2003), a task whose OnTask
// returned nil and did not call Finish gives ErrWrongOperation (509), a publish that
// fails gives the codes of Node.Task (ETIMEDOUT, ENOTCONN, 2001). A task whose OnTask
// panics is not "lost" at once (2003) as with task workers: it is delivered again, up to
// TaskMaxDeliver times, and its waiter times out if none succeeds. Task and its kin block
// the caller until the stream stored the task (on the loop too: up to PublishTimeout
// while a NATS node is lost); TaskWait on the loop with enable_coroutine serves the loop's
// other events meanwhile, as with task workers. The server's local task workers (ModeThread
// with task_worker_num) get no task from the API while the backend is the cluster.
//
// # Messages
//
// Node.SendMessage(msg, node, workerID) runs the OnPipeMessage of a worker of any node
// (this one too), on that worker's loop, with srcWorkerID -1. It is answered once the host
// queued the message (at most once: a host that dies first loses it); a node not running, a
// worker id it does not have or no OnPipeMessage there is ErrRefused (503).
package cluster
