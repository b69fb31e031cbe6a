package swoole_test

import (
	"fmt"
	"os"
)

func runChild(role string) int {
	fmt.Fprintf(os.Stderr, "unknown %s role %q\n", childEnv, role)
	return 2
}
