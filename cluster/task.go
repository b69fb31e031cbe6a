package cluster

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/goswoole/swoole"
	"github.com/goswoole/swoole/internal/taskbackend"
)

// pendingTask is a task whose sender waits for its result.
type pendingTask struct {
	ch chan []byte                        // TaskWait; nil for a Task with OnFinish
	fn func(result []byte, noResult bool) // a task of the server's own API (serverTasks)
	at time.Time
}

// Counters are the node's task figures since it started.
type Counters struct {
	TasksSent       int64 // tasks this node published
	TasksHandled    int64 // handler runs on this node (a redelivered task counts again)
	TasksRedone     int64 // of those, runs of a task delivered before (to any node)
	TasksFailed     int64 // handler panics on this node (the task is delivered again)
	ResultsReceived int64 // results that reached a waiting TaskWait or OnFinish
	ResultsDropped  int64 // results nobody waited for any more: duplicates, late ones
}

type counters struct {
	sent, handled, redone, failed, received, dropped atomic.Int64
}

// Counters returns the node's task figures.
func (n *Node) Counters() Counters {
	c := &n.counters
	return Counters{c.sent.Load(), c.handled.Load(), c.redone.Load(), c.failed.Load(), c.received.Load(), c.dropped.Load()}
}

// OnTask registers the handler that runs the cluster's tasks on this node; its return value
// is the task's result (nil: an empty one). A node without a handler takes no tasks. It runs
// on the node's own goroutines (TaskConcurrency at once), not on the server's event loop: use
// the server's methods that may be called from any goroutine. A panic is logged and the task
// delivered again (see the package notes on redelivery). Only before the server starts.
func (n *Node) OnTask(handler func(taskID string, data []byte) []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onTask = handler
}

// OnFinish registers the handler that gets the result of a Task this node sent; it runs on a
// NATS goroutine of the node, once per task id. Without it Task asks for no result.
func (n *Node) OnFinish(handler func(taskID string, result []byte)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onFinish = handler
}

// Task sends a task to the cluster and returns its id once the stream stored it (on a
// replicated stream: on a quorum of its NATS nodes). While the stream has no leader it
// retries up to PublishTimeout, then fails with ETIMEDOUT. Data larger than the NATS
// max_payload is an error with code ErrTaskPackageTooBig (2001).
func (n *Node) Task(data []byte) (string, error) {
	id := n.cfg.Node + "-" + nuid.Next()
	n.mu.Lock()
	wantResult := n.onFinish != nil
	if wantResult {
		n.pending[id] = &pendingTask{at: time.Now()}
	}
	n.mu.Unlock()
	if err := n.publish("Task", n.taskMsg(".task", id, data, wantResult), id, time.Now().Add(n.cfg.PublishTimeout)); err != nil {
		n.forget(id)
		return "", err
	}
	return id, nil
}

// TaskWait sends a task to the cluster and waits for its result up to timeout (which
// includes the publish): no result in time is an error with code ErrTaskTimeout (2003), and
// a result that comes later is dropped. The task may still run (and may have run): see the
// package notes.
func (n *Node) TaskWait(data []byte, timeout time.Duration) ([]byte, error) {
	if timeout <= 0 {
		return nil, invalid("TaskWait: timeout %v: give a positive duration", timeout)
	}
	deadline := time.Now().Add(timeout)
	id := n.cfg.Node + "-" + nuid.Next()
	p := &pendingTask{ch: make(chan []byte, 1), at: time.Now()}
	n.mu.Lock()
	n.pending[id] = p
	n.mu.Unlock()
	defer n.forget(id)
	if err := n.publish("TaskWait", n.taskMsg(".task", id, data, true), id, deadline); err != nil {
		return nil, err
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case r, ok := <-p.ch:
		if !ok {
			return nil, errorf(int(syscall.ENOTCONN), "TaskWait %s: the node left the cluster", id)
		}
		return r, nil
	case <-t.C:
		return nil, errorf(swoole.ErrTaskTimeout, "TaskWait %s: no result within %v", id, timeout)
	}
}

func (n *Node) forget(id string) {
	n.mu.Lock()
	delete(n.pending, id)
	n.mu.Unlock()
}

// taskMsg is a task's message on subject n.pre+sub.
func (n *Node) taskMsg(sub, id string, data []byte, wantResult bool) *nats.Msg {
	m := nats.NewMsg(n.pre + sub)
	m.Data = data
	m.Header.Set(hdrTask, id)
	if wantResult {
		m.Header.Set(hdrReply, n.pre+".reply."+n.cfg.Node)
	}
	return m
}

// publish stores the task m (id) on the stream, retrying until the deadline.
func (n *Node) publish(call string, m *nats.Msg, id string, deadline time.Time) error {
	if err := n.waitReady(call, deadline); err != nil {
		return err
	}
	data := m.Data
	for {
		attempt := time.Now().Add(n.cfg.RequestTimeout)
		if deadline.Before(attempt) {
			attempt = deadline
		}
		ctx, cancel := context.WithDeadline(context.Background(), attempt)
		_, err := n.js.PublishMsg(ctx, m, jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			n.counters.sent.Add(1)
			return nil
		}
		if errors.Is(err, nats.ErrMaxPayload) {
			return errorf(swoole.ErrTaskPackageTooBig, "%s: %d bytes is more than NATS takes in one message", call, len(data))
		}
		if _, cerr := n.conn(call); cerr != nil {
			return cerr
		}
		if time.Now().After(deadline) {
			return errorf(int(syscall.ETIMEDOUT), "%s: the task stream did not store the task in time: %v", call, err)
		}
		select {
		case <-n.stop:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// result takes a task's result off the node's reply subject.
func (n *Node) result(m *nats.Msg) {
	_ = m.Respond(nil) // taken (or dropped): the handler's node may acknowledge the task
	id := m.Header.Get(hdrTask)
	n.mu.Lock()
	p := n.pending[id]
	delete(n.pending, id)
	finish := n.onFinish
	n.mu.Unlock()
	if p == nil {
		n.counters.dropped.Add(1)
		return
	}
	n.counters.received.Add(1)
	if p.fn != nil {
		p.fn(m.Data, m.Header.Get(hdrNoResult) != "")
		return
	}
	if p.ch != nil {
		p.ch <- m.Data
		return
	}
	if finish != nil {
		finish(id, m.Data)
	}
}

// sweep drops the waits for Task results that can no longer come.
func (n *Node) sweep() {
	keep := time.Hour
	if n.cfg.TaskMaxDeliver > 0 {
		keep = n.cfg.PublishTimeout + time.Duration(n.cfg.TaskMaxDeliver+1)*n.cfg.TaskAckWait
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, p := range n.pending {
		if p.ch == nil && time.Since(p.at) > keep {
			delete(n.pending, id)
		}
	}
}

// pullExpiry is how long one pull request of the consumer lasts; the server's heartbeats
// come every half of it. A pull request lost with a NATS node (the consumer's leader moved)
// is noticed after two missed heartbeats: with the client's default (30 s) the hosts would
// take no task for half a minute after losing a NATS node, or after a pull request sent
// while the consumer's leader was being elected.
const pullExpiry = 2 * time.Second

// taskKind is one kind of task on the stream: the node's own (Node.Task, subject .task,
// consumer "workers", run by Node.OnTask's handler) or the server's (Server.Task with
// TasksCluster, subject .stask, consumer "server", run by the server's OnTask).
type taskKind struct {
	durable, subject string
	run              func(n *Node, msg jetstream.Msg) (result []byte, noResult, ok bool)
}

// taskKinds are the kinds this node takes (n.mu held).
func (n *Node) taskKinds() []taskKind {
	var ks []taskKind
	if n.onTask != nil {
		ks = append(ks, taskKind{"workers", n.pre + ".task", (*Node).runNodeTask})
	}
	if n.runner != nil && n.runner.HasHandler() {
		ks = append(ks, taskKind{"server", n.pre + ".stask", (*Node).runServerTask})
	}
	return ks
}

// consume starts taking tasks of kind k from the stream's durable consumer.
func (n *Node) consume(ctx context.Context, st jetstream.Stream, k taskKind) error {
	c := n.cfg
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       k.durable,
		FilterSubject: k.subject,
		Description:   "goswoole cluster task handlers",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.TaskAckWait,
		MaxDeliver:    c.TaskMaxDeliver,
		MaxAckPending: 10000,
		Replicas:      c.Replicas,
	})
	if err != nil {
		return err
	}
	sem := n.sem
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		select {
		case sem <- struct{}{}:
		case <-n.quit:
			_ = msg.Nak()
			return
		}
		n.mu.Lock()
		if n.leaving {
			n.mu.Unlock()
			<-sem
			_ = msg.Nak()
			return
		}
		n.tasks.Add(1)
		n.mu.Unlock()
		go func() {
			defer n.tasks.Done()
			defer func() { <-sem }()
			n.run(msg, k)
		}()
	}, jetstream.PullMaxMessages(c.TaskConcurrency), jetstream.PullExpiry(pullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			n.log.Warn("swoole: cluster: task consumer", "err", err)
		}))
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.leaving {
		cc.Stop()
		return errors.New("the node is leaving")
	}
	n.cons[k.durable] = cc
	return nil
}

// run runs the handler on one delivery, publishes the result, acknowledges the task.
func (n *Node) run(msg jetstream.Msg, k taskKind) {
	h := msg.Headers()
	id, reply := h.Get(hdrTask), h.Get(hdrReply)
	done := make(chan struct{})
	go func() { // in progress while the handler runs
		t := time.NewTicker(n.cfg.TaskAckWait / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	result, noResult, ok := k.run(n, msg)
	close(done)
	n.counters.handled.Add(1)
	if md, err := msg.Metadata(); err == nil && md.NumDelivered > 1 {
		n.counters.redone.Add(1)
	}
	if !ok {
		n.counters.failed.Add(1)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if reply != "" {
		// The sender confirms the result before the task is acknowledged: a result lost on
		// the way (its node killed between the two) leaves the task to run again.
		r := nats.NewMsg(reply)
		r.Header.Set(hdrTask, id)
		r.Header.Set(hdrNode, n.cfg.Node)
		if noResult {
			r.Header.Set(hdrNoResult, "1")
		}
		r.Data = result
		_, err := n.nc.RequestMsg(r, n.cfg.RequestTimeout)
		if err != nil && !errors.Is(err, nats.ErrNoResponders) { // no responders: the sender is gone
			_ = msg.NakWithDelay(time.Second)
			return
		}
	}
	_ = msg.Ack()
}

// runNodeTask runs Node.OnTask's handler on a task of Node.Task, recovering a panic.
func (n *Node) runNodeTask(msg jetstream.Msg) (result []byte, noResult, ok bool) {
	id := msg.Headers().Get(hdrTask)
	n.mu.Lock()
	handler := n.onTask
	n.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			n.log.Error("swoole: cluster: a task handler panicked; the task is delivered again", "task", id, "panic", r)
			ok = false
		}
	}()
	return handler(id, msg.Data()), false, true
}

// serverTasks is the task backend of a server joined with TasksCluster: its Task,
// TaskWithCallback, TaskWait, TaskWaitMulti and TaskCo publish here.
type serverTasks struct{ n *Node }

// Send publishes one task of the server's API; done gets its result (taskbackend.Backend).
func (b serverTasks) Send(call string, t taskbackend.Task, done func([]byte, bool)) error {
	n := b.n
	id := n.cfg.Node + "-" + n.boot + "-" + strconv.FormatInt(t.ID, 10)
	if done != nil {
		n.mu.Lock()
		n.pending[id] = &pendingTask{fn: done, at: time.Now()}
		n.mu.Unlock()
	}
	m := n.taskMsg(".stask", id, t.Data, done != nil)
	m.Header.Set(hdrSrc, strconv.Itoa(t.Src))
	m.Header.Set(hdrID, strconv.FormatInt(t.ID, 10))
	if !t.Reply {
		m.Header.Set(hdrOneWay, "1")
	}
	if err := n.publish(call, m, id, time.Now().Add(n.cfg.PublishTimeout)); err != nil {
		if done != nil {
			n.forget(id)
		}
		return err
	}
	return nil
}

// runServerTask runs the server's OnTask on a task of the server's API, recovering a
// panic (the task is delivered again).
func (n *Node) runServerTask(msg jetstream.Msg) (result []byte, noResult, ok bool) {
	h := msg.Headers()
	id := h.Get(hdrTask)
	tid, err1 := strconv.ParseInt(h.Get(hdrID), 10, 64)
	src, err2 := strconv.Atoi(h.Get(hdrSrc))
	if err1 != nil || err2 != nil {
		n.log.Error("swoole: cluster: a server task without its id or source: dropped", "task", id)
		return nil, true, true
	}
	defer func() {
		if r := recover(); r != nil {
			n.log.Error("swoole: cluster: the server's OnTask panicked; the task is delivered again", "task", id, "panic", r)
			ok = false
		}
	}()
	t := taskbackend.Task{ID: tid, Src: src, Data: msg.Data(), Reply: h.Get(hdrOneWay) == ""}
	result, noResult, err := n.runner.Run(t)
	if err != nil {
		n.log.Error("swoole: cluster: the result of OnTask cannot be encoded: the sender gets none", "task", id, "err", err)
	}
	return result, noResult, true
}
