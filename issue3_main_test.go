package swoole_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test of the package leaves a goroutine behind (servers, clients,
// timers). Branch tests carries its own TestMain in testutil_test.go; when the two branches
// meet, keep one of them (this one is the same check without the child-process role).
//
// It also turns the test binary into a process of a multi-process test server when a test
// started it so (mpEnvServer, see multiproc_helpers_test.go): the manager and each of its
// workers then run the named server instead of the tests.
func TestMain(m *testing.M) {
	if name := os.Getenv(mpEnvServer); name != "" {
		os.Exit(runTestServer(name))
	}
	if os.Getenv("GOSWOOLE_ROLE") != "" {
		// A worker of a multi-process server started inside the test process (a test that
		// should have used mpStart): it must not run the tests again.
		fmt.Fprintln(os.Stderr, "swoole_test: started as a server process without", mpEnvServer)
		os.Exit(3)
	}
	goleak.VerifyTestMain(m)
}
