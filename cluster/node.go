package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/goswoole/swoole"
	"github.com/goswoole/swoole/internal/taskbackend"
)

// Node is a server's membership of a cluster: Join returns it, the server's start connects
// it, the server's shutdown closes it. Its methods may be called from any goroutine, inside
// or outside the server's callbacks, once the server started; before that (and after the
// shutdown) they return an error with code ENOTCONN (107).
//
// A call that reaches another host (Send, Close, Exist, ClientInfo on a remote session,
// Broadcast, Stats, Bind, SendToUID, Task, TaskWait) waits for NATS: up to RequestTimeout
// (PublishTimeout for a task's publish, the given timeout for TaskWait). In a callback, run
// it on a goroutine of its own if the event loop must not wait that long (the examples do).
// The node's own goroutines never wait for the event loop: the server's connection methods
// they call do not.
type Node struct {
	s   *swoole.Server
	cfg Config
	log *slog.Logger
	pre string // subject prefix: "goswoole.<cluster>"

	mu       sync.Mutex
	ns       *server.Server // the embedded server, or nil
	nc       *nats.Conn
	js       jetstream.JetStream
	kv       jetstream.KeyValue // uid -> session; set once ready
	stream   jetstream.Stream   // the task stream; set once ready
	subs     []*nats.Subscription
	peers    map[string]time.Time // node name -> last heartbeat
	binds    map[int64]binding    // this host's bound connections
	pending  map[string]*pendingTask
	onTask   func(taskID string, data []byte) []byte
	onFinish func(taskID string, result []byte)
	err      error                               // why the start failed
	cons     map[string]jetstream.ConsumeContext // by durable name: "workers", "server"
	runner   taskbackend.Runner                  // the server's OnTask (Config.Tasks = TasksCluster), or nil
	boot     string                              // this run of the node: in the ids of the server's tasks
	sem      chan struct{}                       // TaskConcurrency handlers at once, both kinds of task

	ready    chan struct{} // closed once the stream, the bucket and the consumer exist
	stop     chan struct{} // closed at shutdown
	stopOnce sync.Once
	wg       sync.WaitGroup // the node's goroutines
	tasks    sync.WaitGroup // running task handlers
	unbinds  chan binding   // uid entries to remove (connections that closed)
	counters counters
	quit     chan struct{} // closed when the node leaves (OnBeforeShutdown)
	quitOnce sync.Once
	leaving  bool
}

// binding is one Bind of this host: the key-value entry's revision, so that its removal
// leaves a later Bind of the same uid (on any host) alone.
type binding struct {
	uid uint32
	rev uint64
}

// Join makes s a node of the cluster cfg names. Call it before s.Start and after the
// server's OnStart, OnBeforeShutdown, OnShutdown and OnClose handlers are registered: Join
// wraps them (the node connects in OnStart, before the user's handler runs; leaves in
// OnBeforeShutdown; closes in OnShutdown, after the user's handler; drops a closed
// connection's uid entry in OnClose). A handler registered after Join replaces the wrapper,
// and the node never connects. A port's own OnClose is not wrapped: SendToUID then removes
// the stale entry when it finds the session gone.
//
// Only a server whose connections live in one process can join: ModeBase with worker_num 1
// and no manager (no task workers, user processes, max_request, user or group), or
// ModeThread. Any other is refused with code ErrOperationNotSupport (507); a bad Config with
// ErrInvalidParams (505).
func Join(s *swoole.Server, cfg Config) (*Node, error) {
	if s == nil {
		return nil, invalid("Join: the server is nil")
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := oneProcess(s, s.Setting()); err != nil {
		return nil, err
	}
	if _, dup := joined.LoadOrStore(s, true); dup {
		return nil, errorf(swoole.ErrRefused, "Join: this server joined a cluster already: a server is one node")
	}
	n := &Node{
		s: s, cfg: c, pre: "goswoole." + c.Cluster,
		log:     c.Logger.With("cluster", c.Cluster, "node", c.Node),
		peers:   map[string]time.Time{},
		binds:   map[int64]binding{},
		pending: map[string]*pendingTask{},
		quit:    make(chan struct{}),
		ready:   make(chan struct{}),
		stop:    make(chan struct{}),
		unbinds: make(chan binding, 4096),
		cons:    map[string]jetstream.ConsumeContext{},
		boot:    nuid.Next(),
		sem:     make(chan struct{}, c.TaskConcurrency),
	}
	if c.Tasks == TasksCluster {
		r, err := taskbackend.Attach(s, serverTasks{n})
		if err != nil {
			joined.Delete(s)
			return nil, err
		}
		n.runner = r
	}
	if err := n.wrap(); err != nil {
		joined.Delete(s)
		return nil, err
	}
	return n, nil
}

// joined holds the servers that joined (until their node closes): a second Join is refused.
var joined sync.Map

// oneProcess refuses a server whose connections may live in several processes; st is its
// settings (before Start, Setting() resolves worker_num as Start will).
func oneProcess(s *swoole.Server, st swoole.Settings) error {
	mode := s.Mode()
	switch mode {
	case swoole.ModeThread:
		return nil
	case swoole.ModeProcess:
		return errorf(swoole.ErrOperationNotSupport, "Join: a ModeProcess server's callbacks run in worker processes, and a node lives in one process: use ModeThread (several worker loops in one process) or ModeBase with worker_num 1")
	}
	switch {
	case st.WorkerNum > 1:
		return errorf(swoole.ErrOperationNotSupport, "Join: a ModeBase server with worker_num %d holds its connections in %d processes, and a node lives in one: use ModeThread for several workers, or worker_num 1", st.WorkerNum, st.WorkerNum)
	case st.TaskWorkerNum > 0, st.MaxRequest > 0, st.User != "", st.Group != "":
		return errorf(swoole.ErrOperationNotSupport, "Join: task_worker_num, max_request, user and group make a ModeBase server a manager and child processes, and a node lives in one process: use ModeThread, or the node's own tasks (Node.Task)")
	}
	return nil
}

// errorf builds a *swoole.Error; the message is prefixed "swoole: cluster: ".
func errorf(code int, format string, args ...any) *swoole.Error {
	return &swoole.Error{Code: code, Msg: "swoole: cluster: " + fmt.Sprintf(format, args...)}
}

// wrap chains the node's work into the server's callbacks.
func (n *Node) wrap() error {
	s := n.s
	prevStart, _ := s.GetCallback("start").(func(*swoole.Server))
	prevBefore, _ := s.GetCallback("beforeshutdown").(func(*swoole.Server))
	prevShutdown, _ := s.GetCallback("shutdown").(func(*swoole.Server))
	prevClose, _ := s.GetCallback("close").(func(*swoole.Server, int64, int))
	if err := s.On("start", func(h *swoole.Server) {
		n.start(h)
		if prevStart != nil {
			prevStart(h)
		}
	}); err != nil {
		return err
	}
	if err := s.On("beforeshutdown", func(h *swoole.Server) {
		n.leave()
		if prevBefore != nil {
			prevBefore(h)
		}
	}); err != nil {
		return err
	}
	if err := s.On("shutdown", func(h *swoole.Server) {
		if prevShutdown != nil {
			prevShutdown(h)
		}
		n.close()
	}); err != nil {
		return err
	}
	return s.On("close", func(h *swoole.Server, fd int64, reactorID int) {
		n.closed(fd)
		if prevClose != nil {
			prevClose(h, fd, reactorID)
		}
	})
}

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Node }

// Err is why the node could not join when the server started (the server then shuts down),
// or nil.
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// Ready is closed once the node is connected and the task stream, the uid bucket and (with
// OnTask) the task consumer exist: in a three-node NATS that needs the others' servers up.
// Calls that need them (Task, TaskWait, Bind, SendToUID) wait for it within their timeouts.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// ClientURL is the embedded nats-server's client URL ("" with an external NATS, or before
// the server started).
func (n *Node) ClientURL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ns == nil {
		return ""
	}
	return n.ns.ClientURL()
}

// conn returns the connection, or ENOTCONN before the start and after the shutdown.
func (n *Node) conn(call string) (*nats.Conn, error) {
	n.mu.Lock()
	nc := n.nc
	n.mu.Unlock()
	select {
	case <-n.stop:
		return nil, errorf(int(syscall.ENOTCONN), "%s: the node left the cluster (server shut down)", call)
	default:
	}
	if nc == nil {
		return nil, errorf(int(syscall.ENOTCONN), "%s: the node is not connected: the server has not started, or Join was called before an On* registration that replaced its handlers", call)
	}
	return nc, nil
}

// waitReady waits for Ready until the deadline.
func (n *Node) waitReady(call string, deadline time.Time) error {
	if _, err := n.conn(call); err != nil {
		return err
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-n.ready:
		return nil
	case <-n.stop:
		return errorf(int(syscall.ENOTCONN), "%s: the node left the cluster (server shut down)", call)
	case <-t.C:
		return errorf(int(syscall.ETIMEDOUT), "%s: the task stream and uid bucket are not ready (are the other NATS nodes up?)", call)
	}
}

// start runs in OnStart: the embedded server, the connection, the subscriptions, then (in
// the background) the stream, the bucket and the consumer.
func (n *Node) start(h *swoole.Server) {
	err := n.connect()
	if err == nil {
		err = oneProcess(n.s, h.Setting())
	}
	if err == nil {
		err = n.subscribe()
	}
	if err != nil {
		n.mu.Lock()
		n.err = err
		n.mu.Unlock()
		n.log.Error("swoole: cluster: the node cannot join; the server shuts down", "err", err)
		n.close()
		_ = h.Shutdown()
		return
	}
	n.wg.Add(3)
	go n.setup()
	go n.heartbeats()
	go n.unbinder()
}

// connect starts the embedded server (unless URL) and connects to NATS.
func (n *Node) connect() error {
	c := n.cfg
	opts := []nats.Option{
		nats.Name("goswoole " + c.Cluster + "/" + c.Node),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(c.StartTimeout),
	}
	url := c.URL
	if url == "" {
		ns, err := n.embedded()
		if err != nil {
			return err
		}
		n.mu.Lock()
		n.ns = ns
		n.mu.Unlock()
		url = ns.ClientURL()
	} else {
		opts = append(opts, nats.RetryOnFailedConnect(true))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		e := errorf(int(syscall.ECONNREFUSED), "cannot connect to NATS at %s", url)
		e.Err = err
		return e
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return errorf(swoole.ErrSystemCallFail, "JetStream: %v", err)
	}
	// Another running node with this name answers its ping: refuse to shadow it.
	if _, err := nc.Request(n.pre+".n."+c.Node+".ping", nil, 500*time.Millisecond); err == nil {
		nc.Close()
		return errorf(swoole.ErrInvalidParams, "another running node of cluster %q is named %q: give each node its own name", c.Cluster, c.Node)
	}
	n.mu.Lock()
	n.nc, n.js = nc, js
	n.mu.Unlock()
	return nil
}

// setup creates the stream, the bucket and the consumer, retrying until they exist (a
// replicated stream needs its NATS nodes up) or the node stops.
func (n *Node) setup() {
	defer n.wg.Done()
	for attempt := 0; ; attempt++ {
		err := n.setupOnce()
		if err == nil {
			close(n.ready)
			n.mu.Lock()
			var kinds []taskKind
			for _, k := range n.taskKinds() {
				if n.cons[k.durable] != nil {
					kinds = append(kinds, k)
				}
			}
			n.mu.Unlock()
			var wg sync.WaitGroup
			for _, k := range kinds {
				wg.Go(func() { n.keepConsuming(k) })
			}
			wg.Wait()
			return
		}
		if attempt == 20 {
			n.log.Warn("swoole: cluster: the task stream and uid bucket are not ready yet; retrying", "err", err)
		}
		select {
		case <-n.stop:
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (n *Node) setupOnce() error {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	c := n.cfg
	st, err := n.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        n.streamName(),
		Description: "goswoole cluster tasks",
		Subjects:    []string{n.pre + ".task", n.pre + ".stask"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("task stream: %w", err)
	}
	kv, err := n.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      n.bucket(),
		Description: "goswoole cluster: uid -> session",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
	})
	if err != nil {
		return fmt.Errorf("uid bucket: %w", err)
	}
	n.mu.Lock()
	n.kv, n.stream = kv, st
	kinds := n.taskKinds()
	n.mu.Unlock()
	for _, k := range kinds {
		n.mu.Lock()
		started := n.cons[k.durable] != nil
		n.mu.Unlock()
		if started {
			continue // an earlier attempt started it
		}
		if err := n.consume(ctx, st, k); err != nil {
			return fmt.Errorf("task consumer %s: %w", k.durable, err)
		}
	}
	return nil
}

// keepConsuming starts the task consumer again when it ends on its own (the consumer was
// deleted, or the server refused a pull), until the node leaves.
func (n *Node) keepConsuming(k taskKind) {
	for {
		n.mu.Lock()
		cc, st := n.cons[k.durable], n.stream
		n.mu.Unlock()
		if cc == nil {
			return // no handler, or leaving
		}
		select {
		case <-n.quit:
			return
		case <-cc.Closed():
		}
		n.log.Warn("swoole: cluster: the task consumer ended; starting it again", "consumer", k.durable)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
			err := n.consume(ctx, st, k)
			cancel()
			if err == nil {
				break
			}
			select {
			case <-n.quit:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
}

func (n *Node) bucket() string { return "goswoole_" + n.cfg.Cluster + "_uid" }

func (n *Node) streamName() string { return "GOSWOOLE_" + n.cfg.Cluster + "_TASKS" }

// subscribe sets up the node's subjects: its own calls, the broadcast, the stats, the
// heartbeat and its task results.
func (n *Node) subscribe() error {
	nc := n.nc
	for _, sub := range []struct {
		subj string
		fn   nats.MsgHandler
	}{
		{n.pre + ".n." + n.cfg.Node + ".*", n.serveCall},
		{n.pre + ".all.*", n.serveAll},
		{n.pre + ".hb", n.heard},
		{n.pre + ".reply." + n.cfg.Node, n.result},
	} {
		s, err := nc.Subscribe(sub.subj, sub.fn)
		if err != nil {
			return errorf(swoole.ErrSystemCallFail, "subscribe %s: %v", sub.subj, err)
		}
		n.mu.Lock()
		n.subs = append(n.subs, s)
		n.mu.Unlock()
	}
	if err := nc.Flush(); err != nil {
		return errorf(int(syscall.ENOTCONN), "subscribe: %v", err)
	}
	return nil
}

// leave runs in OnBeforeShutdown: no more tasks are taken; the others forget this node.
func (n *Node) leave() {
	n.quitOnce.Do(func() { close(n.quit) })
	n.mu.Lock()
	cons, nc := n.cons, n.nc
	n.cons = map[string]jetstream.ConsumeContext{}
	n.leaving = true
	n.mu.Unlock()
	for _, cc := range cons {
		cc.Stop()
		<-cc.Closed()
	}
	if nc != nil {
		m := nats.NewMsg(n.pre + ".hb")
		m.Header.Set(hdrNode, n.cfg.Node)
		m.Header.Set(hdrBye, "1")
		_ = nc.PublishMsg(m)
		_ = nc.FlushTimeout(time.Second)
	}
}

// close runs in OnShutdown (and when the start failed): the node's goroutines end, the
// connection closes, the embedded server shuts down. Nothing of the node runs afterwards.
func (n *Node) close() {
	n.leave()
	n.stopOnce.Do(func() { close(n.stop) })
	n.wg.Wait()    // setup, heartbeats, unbinder (which removes the entries still queued)
	n.tasks.Wait() // handlers still running
	n.mu.Lock()
	nc, ns, subs := n.nc, n.ns, n.subs
	n.subs, n.ns = nil, nil
	for id, p := range n.pending {
		delete(n.pending, id)
		if p.ch != nil {
			close(p.ch)
		}
	}
	n.mu.Unlock()
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
	if nc != nil {
		nc.Close()
	}
	if ns != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
	joined.Delete(n.s)
}

// natsErr turns a NATS error into a *swoole.Error.
// The NATS error is the *swoole.Error's Err (errors.Is(err, nats.ErrTimeout) holds).
func natsErr(call string, err error) *swoole.Error {
	var e *swoole.Error
	switch {
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		e = errorf(int(syscall.ETIMEDOUT), "%s: no answer in time", call)
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		e = errorf(int(syscall.ETIMEDOUT), "%s: no leader answered in time (a NATS node lost?)", call)
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining), errors.Is(err, nats.ErrConnectionReconnecting):
		e = errorf(int(syscall.ENOTCONN), "%s: not connected to NATS", call)
	default:
		e = errorf(swoole.ErrSystemCallFail, "%s: NATS failed", call)
	}
	e.Err = err
	return e
}

// Header names.
const (
	hdrNode  = "Goswoole-Node"
	hdrBye   = "Goswoole-Bye"
	hdrFD    = "Goswoole-Fd"
	hdrCode  = "Goswoole-Code"
	hdrMsg   = "Goswoole-Msg"
	hdrTask  = "Goswoole-Task"
	hdrReply = "Goswoole-Reply"
	// The server's own tasks (TasksCluster).
	hdrID       = "Goswoole-Task-Id"   // the sender's task id (OnTask's taskID)
	hdrSrc      = "Goswoole-Src"       // the sending worker (OnTask's srcWorkerID)
	hdrOneWay   = "Goswoole-One-Way"   // "1": the sender takes no result (Finish refused)
	hdrNoResult = "Goswoole-No-Result" // on a result: OnTask gave none
)
