package servers

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
)

// Main is the whole main of the cmd/*echo commands: it starts the named server on -addr,
// prints "NAME echo server listening on HOST:PORT" (the real port for port 0) to stdout, and
// serves until SIGINT or SIGTERM. Every server takes the same flags; those that do not apply
// to it are accepted and ignored (and say so on stderr):
//
//	-addr host:port   where to listen (port 0: any free port, printed)
//	-multicore        gnet: one event loop per CPU the process may run on (runtime.NumCPU,
//	                  which follows the affinity mask: under taskset -c 0, one loop)
//	-nofile           raise the RLIMIT_NOFILE soft limit to the hard limit first (Go's os
//	                  package does this too since Go 1.19; the flag makes it explicit)
//	-maxconn N        goswoole: max_connection (default: the library's, min(soft limit, 100000))
//	-workers N        goswoole: worker_num; above 1, a manager and N worker processes (this
//	                  command started again with the same arguments; each prints its line);
//	                  in ModeThread, worker loops in the one process; procfloor: worker
//	                  processes (socketpair only), a client's messages to worker fd % N
//	-mode base|process|thread goswoole: ModeBase (default), ModeProcess (a master holding
//	                  the connections in its reactor loops, -workers worker processes running
//	                  the callbacks; the master and every worker print the line) or ModeThread
//	                  (one process: -reactors reactor loops holding the connections, -workers
//	                  worker loops, goroutines, running the callbacks)
//	-reactors N       goswoole: reactor_num (ModeProcess, ModeThread; 0: the library's
//	                  default, the usable CPUs capped at worker_num)
//	-tlscert FILE -tlskey FILE  goswoole, netstd: serve TLS with this PEM certificate and
//	                  key (goswoole: SockTCP|SockSSL; netstd: crypto/tls's listener)
//	-cpuprofile FILE  write a CPU profile of the whole run to FILE
//	-memprofile FILE  write a heap profile to FILE on SIGUSR1 and at exit
func Main(name string) {
	addr := flag.String("addr", "127.0.0.1:9501", "host:port to listen on (port 0: any free port, printed)")
	var o Options
	flag.BoolVar(&o.Multicore, "multicore", false, "gnet: an event loop per usable CPU (ignored by the others)")
	flag.IntVar(&o.MaxConn, "maxconn", 0, "goswoole: max_connection (0: the library's default; ignored by the others)")
	flag.IntVar(&o.Workers, "workers", 1, "goswoole: worker_num (above 1: worker processes; in -mode thread, worker loops); procfloor: worker processes (socketpair only); ignored by the others")
	flag.IntVar(&o.FrameTimeout, "frametimeout", 0, "goswoole: close a connection that leaves a frame unfinished this many seconds (frame_timeout; 0: the library's 60 s)")
	flag.IntVar(&o.Idle, "idle", 0, "goswoole: close connections idle this many seconds (heartbeat_idle_time; 0: never)")
	flag.StringVar(&o.TLSCert, "tlscert", "", "goswoole, netstd: serve TLS with this PEM certificate (needs -tlskey)")
	flag.StringVar(&o.TLSKey, "tlskey", "", "goswoole, netstd: the PEM private key of -tlscert")
	flag.BoolVar(&o.Length, "length", false, "goswoole: frame the input with a 4-byte big-endian length header (package_max_length 2 MiB); the header-attack cell")
	mode := flag.String("mode", "base", "goswoole: base (ModeBase), process (ModeProcess: a master and -workers worker processes) or thread (ModeThread: one process, -reactors reactor loops and -workers worker loops); ignored by the others")
	flag.IntVar(&o.Reactors, "reactors", 0, "goswoole: reactor_num (ModeProcess, ModeThread; 0: the library's default); ignored by the others")
	nofile := flag.Bool("nofile", false, "raise the RLIMIT_NOFILE soft limit to the hard limit")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	memprofile := flag.String("memprofile", "", "write a heap profile to this file on SIGUSR1 and at exit")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "%s: no arguments follow the flags\n", name)
		flag.Usage()
		os.Exit(2)
	}
	switch *mode {
	case "base":
	case "process":
		o.Process = true
	case "thread":
		o.Thread = true
	default:
		fmt.Fprintf(os.Stderr, "%s: -mode %q: use base, process or thread\n", name, *mode)
		os.Exit(2)
	}
	if *nofile {
		cur, err := RaiseNofile()
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: raising RLIMIT_NOFILE: %v\n", name, err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "%s: RLIMIT_NOFILE %d\n", name, cur)
	}
	if o.Multicore && name != "gnet" {
		fmt.Fprintf(os.Stderr, "%s: -multicore applies to gnet only; ignored\n", name)
	}
	if o.MaxConn != 0 && name != "goswoole" {
		fmt.Fprintf(os.Stderr, "%s: -maxconn applies to goswoole only; ignored\n", name)
	}
	if o.Workers > 1 && name != "goswoole" && name != "procfloor" {
		fmt.Fprintf(os.Stderr, "%s: -workers applies to goswoole and procfloor only; ignored\n", name)
	}
	if o.Reactors != 0 && name != "goswoole" {
		fmt.Fprintf(os.Stderr, "%s: -reactors applies to goswoole only; ignored\n", name)
	}
	if (o.Process || o.Thread) && name != "goswoole" {
		fmt.Fprintf(os.Stderr, "%s: -mode applies to goswoole only; ignored\n", name)
	}
	// In a goswoole worker process (the command started again), the profiles get the role as
	// a suffix, so that the processes do not write the same file.
	if role := os.Getenv("GOSWOOLE_ROLE"); role != "" {
		for _, p := range []*string{cpuprofile, memprofile} {
			if *p != "" {
				*p += "." + strings.ReplaceAll(role, ":", "")
			}
		}
	}
	fmt.Fprintf(os.Stderr, "%s: GOMAXPROCS %d, NumCPU %d\n", name, runtime.GOMAXPROCS(0), runtime.NumCPU())
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: -cpuprofile: %v\n", name, err)
			os.Exit(1)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	writeHeap := func() {
		if *memprofile == "" {
			return
		}
		runtime.GC()
		f, err := os.Create(*memprofile)
		if err == nil {
			err = pprof.WriteHeapProfile(f)
			f.Close()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: -memprofile: %v\n", name, err)
		}
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)
	s, err := StartWith(name, *addr, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	fmt.Printf("%s echo server listening on %s\n", name, s.Addr())
	for sg := range sig {
		if sg != syscall.SIGUSR1 {
			break
		}
		writeHeap()
	}
	writeHeap()
	if err := s.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: stop: %v\n", name, err)
		os.Exit(1) // (the CPU profile of a failed stop is lost)
	}
}

// RaiseNofile raises this process's RLIMIT_NOFILE soft limit to its hard limit and returns
// the soft limit now in force.
func RaiseNofile() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, err
		}
	}
	return rl.Cur, nil
}
