package cluster_test

import "os"

const envRole = "GOSWOOLE_CLUSTER_TEST_ROLE"

func runHostProcess() int { _ = os.Getenv(envRole); return 3 }
