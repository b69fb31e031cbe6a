#!/usr/bin/env bash
# Runs the benchmark matrix and writes BENCHMARKS.md at the repository root.
#
# Builds the servers (goswoole, in one process, with 2 ModeBase workers and in ModeProcess with 2
# workers; gnet; netstd), the load generator (cmd/load) and the driver
# (cmd/matrix) into bench/bin, then runs every cell -r times for every server (and real Swoole,
# swoole-base and swoole-process, from bench/swoole/echo.php on the extension that
# bench/swoole/build.sh builds; left out with a message where PHP or the extension is absent;
# -swoole-so PATH or $SWOOLE_SO name another build), each run on a
# fresh server process pinned to CPU 0 (taskset -c 0) with the generator on CPU 1:
#   echo    C = 1, 50, 1000 × S = 64, 4096 at P = 1, and C = 50, S = 64, P = 16
#   idle    N = 10,000 and the RLIMIT_NOFILE hard limit less 1000 (19,000 at a 20,000 limit)
#   connect C = 50 (connect, echo 64 B, close)
# The table shows medians with the min–max of the repetitions, goswoole's ratio to each peer,
# and how the bar against gnet stands. bench/BENCHMARKS.notes.md is appended as the notes.
#
# Usage: bench/matrix.sh [-d 3s] [-w 500ms] [-r 3] [-o FILE] [-- more cmd/matrix flags]
#   -d  measured time per echo and connect run     -w  warmup before each
#   -r  repetitions of every cell                  -o  output (default: BENCHMARKS.md at the root)
#   after --: any cmd/matrix flag, e.g. -only 'echo C=50 ' or -servers goswoole,gnet or -idle 10000
# A smoke run: bench/matrix.sh -d 1s -w 200ms -r 1 -o /tmp/BENCHMARKS.md
# The full run (about 35 minutes with the two Swoole rows): bench/matrix.sh -d 5s -r 3
set -euo pipefail

duration=3s warmup=500ms reps=3 out=
while getopts "d:w:r:o:h" opt; do
	case $opt in
	d) duration=$OPTARG ;;
	w) warmup=$OPTARG ;;
	r) reps=$OPTARG ;;
	o) out=$OPTARG ;;
	*) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
cmdline="bench/matrix.sh -d $duration -w $warmup -r $reps${out:+ -o $out}${*:+ -- $*}"

cd "$(dirname "$0")"
root=$(cd .. && pwd)
[ -n "$out" ] || out=$root/BENCHMARKS.md
command -v taskset >/dev/null || { echo "matrix.sh: taskset not found (Debian: apt-get install util-linux)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || echo "matrix.sh: warning: $(nproc) CPU(s): server and generator will share a core" >&2

echo "building into bench/bin ..." >&2
mkdir -p bin
go build -o bin/ ./cmd/load ./cmd/matrix ./cmd/netecho ./cmd/swooleecho ./cmd/gnetecho ./cmd/floorecho ./cmd/uringecho ./cmd/procfloorecho

exec bin/matrix -bin "$PWD/bin" -d "$duration" -w "$warmup" -r "$reps" -out "$out" \
	-raw "$PWD/bin/matrix-raw.jsonl" -notes BENCHMARKS.notes.md -cmdline "$cmdline" "$@"
