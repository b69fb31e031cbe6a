package servers

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Main is the whole main of the cmd/*echo commands: it starts the named server on -addr,
// prints "NAME echo server listening on HOST:PORT" (the real port for port 0) to stdout, and
// serves until SIGINT or SIGTERM.
func Main(name string) {
	addr := flag.String("addr", "127.0.0.1:9501", "host:port to listen on (port 0: any free port, printed)")
	flag.Parse()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	s, err := Start(name, *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	fmt.Printf("%s echo server listening on %s\n", name, s.Addr())
	<-sig
	if err := s.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: stop: %v\n", name, err)
		os.Exit(1)
	}
}
