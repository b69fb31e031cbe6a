#!/bin/bash
# pairbuilds.sh OLD_SWOOLEECHO NEW_SWOOLEECHO LOAD [ROUNDS]
# Paired runs of two builds of goswoole's echo server, taking turns within each round: server
# pinned to CPU 0, generator (bench/cmd/load) to CPU 1. Echo at 50 connections x 64 B, 3 s
# (ModeBase one process, and ModeProcess with 2 workers), then idle memory at 10,000
# connections. One JSON line per run, prefixed "<old|new> <base|process> <echo|idle>".
# Build the old one from a worktree of the commit to compare:
#   git worktree add /tmp/old COMMIT && (cd /tmp/old/bench && go build -o /tmp/old/bin/ ./cmd/swooleecho ./cmd/load)
set -u
OLD=$1 NEW=$2 L=$3 R=${4:-3}
port=19501
run() { # build mode what
  local bin=$OLD args=""
  [ "$1" = new ] && bin=$NEW
  [ "$2" = process ] && args="-mode process -workers 2"
  port=$((port+1))
  taskset -c 0 "$bin" -addr 127.0.0.1:$port -nofile -maxconn 20000 $args >/dev/null 2>&1 &
  local pid=$!
  for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  if [ "$3" = echo ]; then
    out=$(taskset -c 1 "$L" -mode echo -addr 127.0.0.1:$port -pid $pid -conns 50 -size 64 -duration 3s -json)
  else
    out=$(taskset -c 1 "$L" -mode idle -addr 127.0.0.1:$port -pid $pid -conns 10000 -json)
  fi
  echo "$1 $2 $3 $out"
  kill $pid; wait $pid 2>/dev/null
}
for r in $(seq "$R"); do
  for what in echo idle; do
    for mode in base process; do
      run old $mode $what; run new $mode $what
    done
  done
done
