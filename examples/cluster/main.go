// Cluster is a chat room spread over several goswoole hosts joined on NATS (package
// cluster): a user logged in on one host gets messages sent from any other, a broadcast
// reaches every connection of every host, and slow work runs as a task on whichever host
// takes it.
//
// Three hosts on one machine, each with an embedded nats-server routed to the two others
// (ports 9501-9503 for clients, 4221-4223 for NATS clients, 6221-6223 for NATS routes):
//
//	go build -o /tmp/cluster-chat ./examples/cluster
//	for i in 1 2 3; do /tmp/cluster-chat -i $i & done; wait
//
// connect with a few clients (nc 127.0.0.1 9501, nc 127.0.0.1 9503) and type:
//
//	login 7          binds this connection to uid 7, cluster-wide
//	to 7 hello       sends "hello" to uid 7's connection, wherever it is
//	say hello        sends "hello" to every connection of every host
//	stats            every host's connection count
//	work hello       runs a task on some host and waits for its result
//
// kill one host (kill %2) and the others go on: its NATS node is gone too, and the stream
// and the uid bucket (three replicas) keep working on the two left. Ctrl-C stops them.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goswoole/swoole"
	"github.com/goswoole/swoole/cluster"
)

func main() {
	i := flag.Int("i", 1, "this host's number, 1 to -n")
	n := flag.Int("n", 3, "how many hosts")
	flag.Parse()
	if *i < 1 || *i > *n {
		slog.Error("-i must be 1 to -n")
		os.Exit(2)
	}
	name := "host" + strconv.Itoa(*i)
	var routes []string
	for j := 1; j <= *n; j++ {
		if j != *i {
			routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", 6220+j))
		}
	}

	s, err := swoole.NewServer("127.0.0.1", 9500+*i, swoole.ModeBase, swoole.SockTCP)
	if err != nil {
		slog.Error("listen", "err", err)
		os.Exit(1)
	}
	if err := s.Set(swoole.Settings{OpenEOFSplit: true, PackageEOF: "\n"}); err != nil {
		slog.Error("settings", "err", err)
		os.Exit(1)
	}
	var node *cluster.Node
	s.OnConnect(func(h *swoole.Server, fd int64, _ int) {
		_ = h.Send(fd, []byte(fmt.Sprintf("welcome to %s, you are %s\n", name, node.Session(fd))))
	})
	s.OnReceive(func(h *swoole.Server, fd int64, _ int, data []byte) {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
		reply := func(format string, args ...any) { _ = h.Send(fd, []byte(fmt.Sprintf(format, args...)+"\n")) }
		switch cmd {
		case "login":
			uid, err := strconv.ParseUint(arg, 10, 32)
			if err != nil {
				reply("login <uid>")
				return
			}
			if err := node.Bind(fd, uint32(uid)); err != nil {
				reply("login: %v", err)
				return
			}
			reply("logged in as %d on %s", uid, name)
		case "to", "say", "stats", "work":
			// Calls to other hosts wait for NATS: keep them off the event loop.
			go func() {
				switch cmd {
				case "to":
					u, text, _ := strings.Cut(arg, " ")
					uid, _ := strconv.ParseUint(u, 10, 32)
					if err := node.SendToUID(uint32(uid), []byte(fmt.Sprintf("[%s] %s\n", node.Session(fd), text))); err != nil {
						reply("to %s: %v", u, err)
					}
				case "say":
					c, err := node.Broadcast([]byte(fmt.Sprintf("[%s to all] %s\n", node.Session(fd), arg)))
					reply("said to %d connections (%v)", c, err)
				case "stats":
					st, err := node.Stats()
					names := slices.Sorted(func(yield func(string) bool) {
						for k := range st {
							if !yield(k) {
								return
							}
						}
					})
					for _, k := range names {
						reply("%s: %d connections", k, st[k].ConnectionNum)
					}
					if err != nil {
						reply("%v", err)
					}
				case "work":
					r, err := node.TaskWait([]byte(arg), 10*time.Second)
					if err != nil {
						reply("work: %v", err)
						return
					}
					reply("%s", r)
				}
			}()
		default:
			reply("commands: login <uid> | to <uid> <text> | say <text> | stats | work <text>")
		}
	})
	node, err = cluster.Join(s, cluster.Config{
		Cluster: "chat",
		Node:    name,
		Embedded: cluster.Embedded{
			Port:        4220 + *i,
			ClusterPort: 6220 + *i,
			Routes:      routes,
			StoreDir:    filepath.Join(os.TempDir(), "goswoole-cluster-chat", name),
		},
	})
	if err != nil {
		slog.Error("join", "err", err)
		os.Exit(1)
	}
	// A task: idempotent (it only computes), so a redelivery does no harm.
	node.OnTask(func(taskID string, data []byte) []byte {
		return []byte(fmt.Sprintf("%s did %q (task %s)", name, strings.ToUpper(string(data)), taskID))
	})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt)
		<-sig
		_ = s.Shutdown()
	}()
	go func() {
		<-node.Ready()
		fmt.Printf("%s ready: nc 127.0.0.1 %d\n", name, 9500+*i)
	}()
	if err := s.Start(); err != nil {
		slog.Error("start", "err", err)
		os.Exit(1)
	}
	if err := node.Err(); err != nil {
		slog.Error("cluster", "err", err)
		os.Exit(1)
	}
}
