#!/bin/bash
# threadpair.sh SWOOLEECHO GNETECHO LOAD [ROUNDS]
# Paired runs of goswoole's ModeThread against its other modes and gnet, the servers taking
# turns within each round (the first server of a round rotates from round to round): server
# pinned to CPU 0, generator (bench/cmd/load) to CPU 1. Servers:
#   base     swooleecho                                   ModeBase, one process, one loop
#   thread   swooleecho -mode thread -reactors 1 -workers 2   ModeThread: one reactor loop
#            holding the connections, two worker loops (goroutines) running OnReceive
#   process  swooleecho -mode process -workers 2          ModeProcess: a master and 2 worker
#            processes (all three pinned to CPU 0; CPU and memory summed over the tree)
#   gnet     gnetecho                                     gnet v2, one loop (pinned: one CPU)
# Cells: echo at 1, 50 and 1,000 connections x 64 B, depth 1 (3 s after 0.5 s warmup; the
# server's CPU per message from load -pid), idle memory at 10,000 connections (a fresh server
# per run). One JSON line per run, prefixed "<server> <cell>"; a "# round N" line with the
# load average starts each round, and one ends the run.
# Build: (cd bench && go build -o /tmp/thb/ ./cmd/swooleecho ./cmd/gnetecho ./cmd/load)
# Results of 2026-12-07: ../BENCHMARKS.md, "## ModeThread"; raw lines in results/2026-12-07-thread.txt.
set -u
SW=$1 GN=$2 L=$3 R=${4:-3}
port=19701
servers=(base thread process gnet)
run() { # server cell
  local bin=$SW args=""
  case $1 in
  thread) args="-mode thread -reactors 1 -workers 2" ;;
  process) args="-mode process -workers 2" ;;
  gnet) bin=$GN ;;
  esac
  port=$((port+1))
  # shellcheck disable=SC2086
  taskset -c 0 "$bin" -addr 127.0.0.1:$port -nofile -maxconn 20000 $args >/dev/null 2>&1 &
  local pid=$!
  for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  # ModeProcess: the master listens before its workers are forked; wait for the two.
  if [ "$1" = process ]; then
    for i in $(seq 100); do [ "$(pgrep -c -P $pid)" -ge 2 ] && break; sleep 0.05; done
  fi
  local out
  case $2 in
  echo1) out=$(taskset -c 1 "$L" -mode echo -addr 127.0.0.1:$port -pid $pid -conns 1 -size 64 -duration 3s -warmup 500ms -json) ;;
  echo50) out=$(taskset -c 1 "$L" -mode echo -addr 127.0.0.1:$port -pid $pid -conns 50 -size 64 -duration 3s -warmup 500ms -json) ;;
  echo1000) out=$(taskset -c 1 "$L" -mode echo -addr 127.0.0.1:$port -pid $pid -conns 1000 -size 64 -duration 3s -warmup 500ms -json) ;;
  idle) out=$(taskset -c 1 "$L" -mode idle -addr 127.0.0.1:$port -pid $pid -conns 10000 -json) ;;
  esac
  echo "$1 $2 $out"
  kill $pid; wait $pid 2>/dev/null
}
for r in $(seq "$R"); do
  echo "# round $r load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  for cell in echo1 echo50 echo1000 idle; do
    for k in 0 1 2 3; do
      run "${servers[$(( (r-1+k) % 4 ))]}" $cell
    done
  done
done
echo "# end load average: $(cut -d' ' -f1-3 /proc/loadavg)"
