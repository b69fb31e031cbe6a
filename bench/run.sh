#!/usr/bin/env bash
# Runs one echo benchmark cell: builds the peer servers and the load generator, then runs each
# server as its own process, one after the other, under the same load from cmd/load -mode echo
# (another process), and prints a table: server, msgs/s, ratio vs netstd, p50, p99, p999, MB/s,
# and the server's own CPU time per message (its process tree's user+system time over the
# measured window, from /proc; it says how much work the server does per echo, and is much
# less disturbed than msgs/s by other load on the machine). For the whole matrix,
# pinned, with repetitions and BENCHMARKS.md, see matrix.sh.
#
# Usage: bench/run.sh [-d 5s] [-c 100] [-s 64] [-p 1] [-w 500ms] [-r 1] [servers...]
#   -d duration measured per server   -c connections   -s message bytes
#   -p pipeline depth                 -w unmeasured warmup per server
#   -r rounds: run the servers in turn this many times; the table shows each server's median
#   servers: any of netstd goswoole gnet (default: all three; netstd is the ratio's base;
#   gnet runs one event loop here: gnetecho without -multicore)
#
# Nothing is pinned to a CPU: on a small machine the load generator shares the cores with the
# server, so compare ratios between servers of one run rather than absolute numbers.
set -euo pipefail

duration=5s conns=100 size=64 depth=1 warmup=500ms rounds=1
while getopts "d:c:s:p:w:r:h" opt; do
	case $opt in
	d) duration=$OPTARG ;;
	c) conns=$OPTARG ;;
	s) size=$OPTARG ;;
	p) depth=$OPTARG ;;
	w) warmup=$OPTARG ;;
	r) rounds=$OPTARG ;;
	*) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(netstd goswoole gnet)

cd "$(dirname "$0")"
work=$(mktemp -d)
pid=
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "building into $work ..." >&2
go build -o "$work/" ./cmd/load ./cmd/netecho ./cmd/swooleecho ./cmd/gnetecho

binary() {
	case $1 in
	netstd) echo netecho ;;
	goswoole) echo swooleecho ;;
	gnet) echo gnetecho ;;
	*) echo "unknown server $1: use netstd, goswoole or gnet" >&2; exit 2 ;;
	esac
}

# median prints the median of its numeric arguments (the lower middle for an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# jfield prints field $1 of the JSON object on stdin (a number).
jfield() { sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p"; }

declare -A rate p50 p99 p999 mbs cpu # space-separated, one value per round
for round in $(seq "$rounds"); do
for srv in "${servers[@]}"; do
	bin=$(binary "$srv")
	"$work/$bin" -addr 127.0.0.1:0 >"$work/$srv.out" 2>"$work/$srv.err" &
	pid=$!
	addr=
	for _ in $(seq 100); do # up to 10 s for the "listening on" line
		addr=$(awk '/listening on/ {print $NF; exit}' "$work/$srv.out")
		[ -n "$addr" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$addr" ]; then
		echo "$srv did not start:" >&2
		cat "$work/$srv.err" >&2
		exit 1
	fi
	echo "round $round/$rounds: $srv on $addr: $conns conns x $size B, depth $depth, $duration (+$warmup warmup) ..." >&2
	line=$("$work/load" -mode echo -addr "$addr" -pid "$pid" -conns "$conns" -size "$size" -depth "$depth" \
		-duration "$duration" -warmup "$warmup" -json)
	r=$(jfield per_sec <<<"$line") m=$(jfield mb_per_sec <<<"$line") a=$(jfield p50_us <<<"$line")
	b=$(jfield p99_us <<<"$line") e=$(jfield p999_us <<<"$line") c=$(jfield server_cpu_us_per <<<"$line")
	echo "  $line" >&2
	rate[$srv]+=" $r" mbs[$srv]+=" $m" p50[$srv]+=" $a" p99[$srv]+=" $b" p999[$srv]+=" $e" cpu[$srv]+=" $c"
	kill -TERM "$pid"
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		echo "$srv did not stop within 10 s of SIGTERM; killing it" >&2
		kill -KILL "$pid"
	fi
	wait "$pid" || echo "$srv exited with status $?" >&2
	pid=
done
done

base=
[ -n "${rate[netstd]:-}" ] && base=$(median ${rate[netstd]})
printf '\n%-10s %12s %10s %10s %10s %10s %8s %14s\n' server msgs/s vs-netstd p50-µs p99-µs p999-µs MB/s srv-cpu-µs/msg
for srv in "${servers[@]}"; do
	r=$(median ${rate[$srv]})
	ratio=-
	[ -n "$base" ] && ratio=$(awk -v a="$r" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
	printf '%-10s %12.0f %10s %10.0f %10.0f %10.0f %8.2f %14.2f\n' "$srv" "$r" "$ratio" \
		"$(median ${p50[$srv]})" "$(median ${p99[$srv]})" "$(median ${p999[$srv]})" "$(median ${mbs[$srv]})" "$(median ${cpu[$srv]})"
done
printf '\n%s conns x %s B, depth %s, %s each, %s round(s) (medians); %s CPUs shared by server and load generator\n' \
	"$conns" "$size" "$depth" "$duration" "$rounds" "$(nproc)"
