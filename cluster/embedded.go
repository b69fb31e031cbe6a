package cluster

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"syscall"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/goswoole/swoole"
)

// embedded starts the embedded nats-server.
func (n *Node) embedded() (*server.Server, error) {
	c, e := n.cfg, n.cfg.Embedded
	o := &server.Options{
		ServerName: c.Node,
		Host:       e.Host,
		Port:       e.Port,
		JetStream:  true,
		StoreDir:   e.StoreDir,
		NoSigs:     true,
	}
	if o.Port == 0 {
		o.Port = server.RANDOM_PORT
	}
	if e.ClusterPort != 0 || len(e.Routes) > 0 {
		o.Cluster = server.ClusterOpts{Name: c.Cluster, Host: e.Host, Port: e.ClusterPort}
		if o.Cluster.Port == 0 {
			o.Cluster.Port = server.RANDOM_PORT
		}
		for _, r := range e.Routes {
			u, err := url.Parse(r)
			if err != nil || u.Host == "" {
				return nil, invalid("Config.Embedded.Routes: %q is not a route URL (nats://host:port)", r)
			}
			o.Routes = append(o.Routes, u)
		}
	}
	if err := os.MkdirAll(e.StoreDir, 0o700); err != nil {
		return nil, errorf(swoole.ErrSystemCallFail, "cannot create the JetStream store %s: %v", e.StoreDir, err)
	}
	ns, err := server.NewServer(o)
	if err != nil {
		return nil, errorf(swoole.ErrInvalidParams, "embedded nats-server: %v", err)
	}
	ns.SetLoggerV2(natsLogger{n.log.With("nats", "server")}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(c.StartTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errorf(int(syscall.ETIMEDOUT), "the embedded nats-server did not accept connections within %v (is port %d or %d taken?)", c.StartTimeout, e.Port, e.ClusterPort)
	}
	return ns, nil
}

// natsLogger passes the embedded server's fatal errors to the node's log (Error), its errors
// at Info, its warnings and notices at Debug: a NATS node's routine (a peer not up yet or
// gone, an election) stays below the default level unless asked for.
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Errorf(format string, v ...any)  { l.log.Info(fmt.Sprintf(format, v...)) }
func (l natsLogger) Debugf(format string, v ...any)  {}
func (l natsLogger) Tracef(format string, v ...any)  {}
