package cluster

import (
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/goswoole/swoole"
)

// Config is how a server joins a cluster (Join).
type Config struct {
	// Cluster names the cluster: every subject, the task stream and the uid bucket carry it,
	// so several clusters can share one NATS. Letters, digits, '_' and '-'; required.
	Cluster string
	// Node names this host in the cluster, unique among its nodes: a Session carries it.
	// Letters, digits, '_' and '-'; required. Join refuses nothing about uniqueness, but the
	// node's start fails when another running node answers to the same name.
	Node string
	// URL is an external NATS server or cluster ("nats://h1:4222,nats://h2:4222"). Empty:
	// the node runs an embedded nats-server (Embedded) in the process.
	URL string
	// Embedded configures the embedded nats-server when URL is empty.
	Embedded Embedded
	// Replicas is the replica count of the task stream and the uid bucket. Default: with an
	// embedded server, 1 without routes and 3 with two routes or more (len(Routes)+1 below
	// that); with URL, 1 (set 3 for a three-node NATS cluster).
	Replicas int
	// RequestTimeout bounds one call to another host (Send, Close, Exist, ClientInfo) and
	// the wait for the answers of Broadcast and Stats. Default 5 s.
	RequestTimeout time.Duration
	// StartTimeout bounds the embedded server's start and the first connection, in the
	// server's OnStart. Default 15 s.
	StartTimeout time.Duration
	// TaskAckWait is how long JetStream waits for word from the host running a task before
	// it delivers the task again (to any host). A running handler reports progress every
	// TaskAckWait/2, so a slow task is not redelivered while its host lives; a host killed
	// mid-task has its task redelivered TaskAckWait after its last report. Default 30 s.
	TaskAckWait time.Duration
	// TaskMaxDeliver is how many times a task is delivered at most (a handler that panics,
	// or hosts that die with it). Default 5; -1: no limit.
	TaskMaxDeliver int
	// TaskConcurrency is how many task handlers run at once on this host. Default 4.
	TaskConcurrency int
	// PublishTimeout bounds how long Task and TaskWait retry publishing a task, and Bind,
	// SessionOf and SendToUID their key-value operation, while the stream or the bucket has
	// no leader (a NATS node lost: an election takes a few seconds). Default 15 s.
	PublishTimeout time.Duration
	// Logger gets the node's warnings and errors, and the embedded nats-server's (its errors
	// at Info, its warnings and notices at Debug). Default: a text logger on stderr at Warn.
	Logger *slog.Logger
	// Tasks chooses where the server's own task API sends its tasks. TasksLocal (the
	// default): to the server's task workers, as without a cluster (the node's Task and
	// TaskWait use the cluster). TasksCluster: Task, TaskWithCallback, TaskWait,
	// TaskWaitMulti and TaskCo put every task on the cluster's stream, the server's OnTask
	// runs the tasks this host takes, and the results come back to the sending worker's
	// OnFinish, callback or waiter (see the package notes, "The server's own tasks").
	Tasks TaskBackend
	// Heartbeat is how often the node tells the others it is alive; a node unheard of for
	// three heartbeats leaves the list Broadcast and Stats wait for. Default 1 s.
	Heartbeat time.Duration
}

// TaskBackend is where a joined server's own task API (Task, TaskWait, ...) sends tasks.
type TaskBackend int

const (
	// TasksLocal keeps the server's task API on its own task workers (the default).
	TasksLocal TaskBackend = iota
	// TasksCluster puts the server's tasks on the cluster's JetStream stream: any host
	// whose server has an OnTask runs them.
	TasksCluster
)

// Embedded configures an embedded nats-server.
type Embedded struct {
	// Host is the address the server's client and route ports listen on. Default 127.0.0.1.
	Host string
	// Port is the client port. 0: a free port the system picks (the node connects to it
	// itself; other clients learn it from Node.ClientURL).
	Port int
	// ClusterPort is the route port other nats-servers connect to. 0 with no Routes: no
	// route port (a NATS of one node); 0 with Routes: a free port.
	ClusterPort int
	// Routes are the route URLs of the other nats-servers ("nats://127.0.0.1:6222"): three
	// embedded servers that name each other form one NATS cluster with JetStream.
	Routes []string
	// StoreDir is JetStream's directory. Default: <os.TempDir()>/goswoole-nats/<cluster>/<node>.
	StoreDir string
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// invalid is a *swoole.Error for a bad argument (505).
func invalid(format string, args ...any) *swoole.Error {
	return errorf(swoole.ErrInvalidParams, format, args...)
}

// withDefaults validates c and fills in the defaults.
func (c Config) withDefaults() (Config, error) {
	if !nameRE.MatchString(c.Cluster) {
		return c, invalid("Config.Cluster %q: give 1-64 letters, digits, '_' or '-'", c.Cluster)
	}
	if !nameRE.MatchString(c.Node) {
		return c, invalid("Config.Node %q: give 1-64 letters, digits, '_' or '-'", c.Node)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"RequestTimeout", &c.RequestTimeout, 5 * time.Second},
		{"StartTimeout", &c.StartTimeout, 15 * time.Second},
		{"TaskAckWait", &c.TaskAckWait, 30 * time.Second},
		{"PublishTimeout", &c.PublishTimeout, 15 * time.Second},
		{"Heartbeat", &c.Heartbeat, time.Second},
	} {
		if *d.v < 0 {
			return c, invalid("Config.%s %v is negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if c.TaskMaxDeliver == 0 {
		c.TaskMaxDeliver = 5
	}
	if c.TaskMaxDeliver < -1 {
		return c, invalid("Config.TaskMaxDeliver %d: give a positive count or -1 (no limit)", c.TaskMaxDeliver)
	}
	if c.TaskConcurrency < 0 || c.TaskConcurrency > 4096 {
		return c, invalid("Config.TaskConcurrency %d: give 1-4096", c.TaskConcurrency)
	}
	if c.TaskConcurrency == 0 {
		c.TaskConcurrency = 4
	}
	if c.Tasks != TasksLocal && c.Tasks != TasksCluster {
		return c, invalid("Config.Tasks %d: give TasksLocal or TasksCluster", c.Tasks)
	}
	e := &c.Embedded
	if c.URL != "" {
		if e.Port != 0 || e.ClusterPort != 0 || len(e.Routes) > 0 || e.StoreDir != "" {
			return c, invalid("Config.URL and Config.Embedded both given: use an external NATS or an embedded one")
		}
	} else {
		if e.Host == "" {
			e.Host = "127.0.0.1"
		}
		if e.Port < 0 || e.Port > 65535 || e.ClusterPort < 0 || e.ClusterPort > 65535 {
			return c, invalid("Config.Embedded ports %d, %d: give 0-65535", e.Port, e.ClusterPort)
		}
		if e.StoreDir == "" {
			e.StoreDir = filepath.Join(os.TempDir(), "goswoole-nats", c.Cluster, c.Node)
		}
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return c, invalid("Config.Replicas %d: give 1-5", c.Replicas)
	}
	if c.Replicas == 0 {
		c.Replicas = 1
		if c.URL == "" {
			c.Replicas = min(3, 1+len(e.Routes))
		}
	}
	return c, nil
}
