//go:build linux

package ipc

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	if d := os.Getenv(forgerEnv); d != "" {
		os.Exit(runForger(d))
	}
	goleak.VerifyTestMain(m)
}
