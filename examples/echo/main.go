// Echo is the smallest goswoole server: every message a client sends comes back as it came.
//
// Run it from the repository root:
//
//	go run ./examples/echo                 # listens on 127.0.0.1:9501
//	go run ./examples/echo -addr :0        # any free port; the real one is printed
//
// and talk to it with any TCP client, for example:
//
//	nc 127.0.0.1 9501
//
// Stop it with Ctrl-C or SIGTERM: the server closes every connection and Start returns.
package main

import (
	"flag"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/goswoole/swoole"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9501", "host:port to listen on")
	flag.Parse()
	host, portStr, err := net.SplitHostPort(*addr)
	if err != nil {
		slog.Error("bad -addr", "addr", *addr, "err", err)
		os.Exit(2)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		slog.Error("bad -addr port", "addr", *addr, "err", err)
		os.Exit(2)
	}
	if host == "" {
		host = "0.0.0.0"
	}

	// NewServer binds at once: a busy port is an error here, not later.
	s, err := swoole.NewServer(host, port, swoole.ModeBase, swoole.SockTCP)
	if err != nil {
		slog.Error("cannot create the server", "err", err)
		os.Exit(1)
	}
	// One worker: a single process whose event loop runs every callback.
	if err := s.Set(swoole.Settings{WorkerNum: 1}); err != nil {
		slog.Error("bad settings", "err", err)
		os.Exit(1)
	}

	s.OnStart(func(s *swoole.Server) {
		p := s.Ports()[0]
		slog.Info("echo server listening", "host", p.Host(), "port", p.Port())
	})
	s.OnConnect(func(s *swoole.Server, fd int64, _ int) {
		slog.Debug("connect", "fd", fd)
	})
	// data is valid only during the call; Send copies what it cannot write at once, so
	// echoing it straight back is safe.
	s.OnReceive(func(s *swoole.Server, fd int64, _ int, data []byte) {
		if err := s.Send(fd, data); err != nil {
			slog.Warn("send failed", "fd", fd, "err", err)
		}
	})
	s.OnClose(func(s *swoole.Server, fd int64, _ int) {
		slog.Debug("close", "fd", fd)
	})

	// The library stops on SIGTERM by itself; Ctrl-C (SIGINT) is ours to turn into Shutdown.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT)
	go func() {
		<-sig
		_ = s.Shutdown()
	}()

	if err := s.Start(); err != nil {
		slog.Error("server stopped with an error", "err", err)
		os.Exit(1)
	}
	slog.Info("echo server stopped")
}
