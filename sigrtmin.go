package swoole

import (
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// rtmin delivers SIGRTMIN to the channels that asked (notifyRTMIN), as os/signal would if
// it could (sigrtmin_linux_amd64.go says why it cannot). The handler and its pipe are set
// up once per process, the first time a server that owns a log_file starts, and stay for
// the process's life (SIGRTMIN never terminates the process after that); the goroutine that
// reads the pipe runs while a channel is registered.
var rtmin struct {
	once    sync.Once
	ok      bool
	r       *os.File // the pipe's read end
	mu      sync.Mutex
	subs    map[chan struct{}]bool
	running bool // the reader goroutine runs
}

// notifyRTMIN sends to ch (without blocking; ch should have room for one) on each SIGRTMIN
// until stopRTMIN(ch). It reports whether SIGRTMIN can be caught on this platform.
func notifyRTMIN(ch chan struct{}) bool {
	rtmin.once.Do(func() {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
			return
		}
		if !rtminInstall(p[1]) {
			unix.Close(p[0])
			unix.Close(p[1])
			return
		}
		rtmin.ok = true
		rtmin.r = os.NewFile(uintptr(p[0]), "sigrtmin") // non-blocking: read through the poller
	})
	if !rtmin.ok {
		return false
	}
	rtmin.mu.Lock()
	defer rtmin.mu.Unlock()
	if rtmin.subs == nil {
		rtmin.subs = map[chan struct{}]bool{}
	}
	rtmin.subs[ch] = true
	if !rtmin.running {
		rtmin.running = true
		_ = rtmin.r.SetReadDeadline(time.Time{})
		go rtminRead()
	}
	return true
}

// rtminRead reads the handler's pipe and notifies the registered channels; it returns once
// none is left (stopRTMIN wakes it with a read deadline).
func rtminRead() {
	buf := make([]byte, 64)
	for {
		_, err := rtmin.r.Read(buf)
		rtmin.mu.Lock()
		if err != nil && (len(rtmin.subs) == 0 || !os.IsTimeout(err)) {
			rtmin.running = false
			rtmin.mu.Unlock()
			return
		}
		if err != nil { // woken by a stopRTMIN, but a channel registered since
			_ = rtmin.r.SetReadDeadline(time.Time{})
		} else {
			for c := range rtmin.subs {
				select {
				case c <- struct{}{}:
				default:
				}
			}
		}
		rtmin.mu.Unlock()
	}
}

// stopRTMIN stops notifyRTMIN's deliveries to ch.
func stopRTMIN(ch chan struct{}) {
	rtmin.mu.Lock()
	defer rtmin.mu.Unlock()
	delete(rtmin.subs, ch)
	if len(rtmin.subs) == 0 && rtmin.running {
		_ = rtmin.r.SetReadDeadline(time.Unix(1, 0)) // wakes rtminRead, which then returns
	}
}
