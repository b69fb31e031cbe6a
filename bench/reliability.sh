#!/bin/bash
# reliability.sh [TEST_REGEXP]: the reliability suite's long runs (RELIABILITY.md), from the
# repository root's tests (reliability_test.go) with GOSWOOLE_RELIABILITY=long: worker kills
# and reloads for 60 s under 1,000 echoing connections, 100,000 tasks with task workers
# killed, 1,000,000 connect/close cycles. Figures are appended, one JSON line per run, to
# bench/results/reliability-<date>.jsonl. Without -race: these are load runs.
set -eu
cd "$(dirname "$0")/.."
out="bench/results/reliability-$(date -u +%Y-%m-%d).jsonl"
GOSWOOLE_RELIABILITY=long GOSWOOLE_RELIABILITY_OUT="$PWD/$out" \
  go test -count=1 -timeout 60m -run "${1:-^TestReliability}" -v . | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|figures|_test.go'
echo "figures: $out"
