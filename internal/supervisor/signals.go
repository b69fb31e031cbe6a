//go:build linux

package supervisor

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

// HandleSignals makes the Manager answer the signals Swoole's manager answers:
//
//	SIGTERM  Shutdown
//	SIGUSR1  reload of KindWorker and KindTaskWorker slots: Reload when async, else ReloadRolling
//	SIGUSR2  reload of KindTaskWorker slots, always rolling (as Swoole does)
//
// A reload asked for while one is running is ignored (ErrReloading, logged at debug level).
// It stops listening (signal.Stop) when ctx is done or the Manager's Run has returned, and
// the returned channel is closed once it has. The signals are caught for the whole process
// while it listens: run one HandleSignals per process.
func HandleSignals(ctx context.Context, m *Manager, async bool) <-chan struct{} {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-m.Done():
				return
			case sig := <-ch:
				m.log.Info("signal", "signal", sig.String())
				var err error
				switch sig {
				case syscall.SIGTERM:
					err = m.Shutdown()
				case syscall.SIGUSR1:
					if async {
						err = m.Reload(KindWorker, KindTaskWorker)
					} else {
						err = m.ReloadRolling(KindWorker, KindTaskWorker)
					}
				case syscall.SIGUSR2:
					err = m.ReloadRolling(KindTaskWorker)
				}
				switch {
				case errors.Is(err, ErrReloading):
					m.log.Debug("reload already in progress, signal ignored", "signal", sig.String())
				case err != nil:
					m.log.Warn("handling signal", "signal", sig.String(), "err", err)
				}
			}
		}
	}()
	return done
}
