#!/usr/bin/env bash
# The ModeProcess paired run: goswoole beside real Swoole 6.2.2, on server CPU per message.
#
# Builds Swoole (bench/swoole/build.sh: outside the repository, about five minutes the first
# time, reused after) and runs the matrix (matrix.sh) on the echo cells C = 1 × 64 B, 1 × 4 KiB,
# 50 × 64 B, 50 × 64 B at depth 16, 1000 × 64 B and 1000 × 4 KiB, each -r times, with the servers
#   goswoole-proc   goswoole ModeProcess, 2 workers        swoole-process  SWOOLE_PROCESS, 2 workers
#   goswoole        goswoole's one-process server          swoole-base     SWOOLE_BASE, 1 worker
#   floor           the least an epoll server can do (not a peer)
#   procfloor-2w    the least a master and two worker processes can do (not a peer either:
#                   ModeProcess's floor in the configuration the two ModeProcess rows run)
# taking turns in every repetition (the first rotating), each run on a fresh server pinned to
# CPU 0 with the generator on CPU 1. The report (markdown) has the medians, min–max, every run,
# and a "Beside Swoole" section with the ModeProcess ratios: goswoole-proc vs swoole-process,
# goswoole-proc vs goswoole, goswoole vs swoole-base, goswoole vs floor, and its bar.
#
# Usage: bench/swoolepair.sh [-d 3s] [-w 500ms] [-r 3] [-o FILE] [-- more cmd/matrix flags]
#   default output: bench/results/DATE-swoole-peer.txt (DATE: today, UTC); the raw runs go to
#   bench/bin/matrix-raw.jsonl. About 11 minutes at the defaults (108 runs), more where other
#   load on the machine makes the matrix repeat runs.
set -euo pipefail

duration=3s warmup=500ms reps=3 out=
while getopts "d:w:r:o:h" opt; do
	case $opt in
	d) duration=$OPTARG ;;
	w) warmup=$OPTARG ;;
	r) reps=$OPTARG ;;
	o) out=$OPTARG ;;
	*) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
cmdline="bench/swoolepair.sh -d $duration -w $warmup -r $reps${out:+ -o $out}${*:+ -- $*}"

cd "$(dirname "$0")"
[ -n "$out" ] || out=$PWD/results/$(date -u +%F)-swoole-peer.txt
so=$(swoole/build.sh)
echo "swoolepair.sh: Swoole extension $so" >&2
exec ./matrix.sh -d "$duration" -w "$warmup" -r "$reps" -o "$out" -- \
	-only '^echo C=(1 S=(64|4096)|50 S=64|1000 S=(64|4096)) ' \
	-servers goswoole-proc,swoole-process,goswoole,swoole-base,floor,procfloor-2w \
	-swoole-so "$so" -notes '' -cmdline "$cmdline" "$@"
