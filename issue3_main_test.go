package swoole_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test of the package leaves a goroutine behind (servers, clients,
// timers). Branch tests carries its own TestMain in testutil_test.go; when the two branches
// meet, keep one of them (this one is the same check without the child-process role).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
