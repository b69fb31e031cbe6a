#!/bin/bash
# perframe.sh LOAD MODE RATE ROUNDS NAME=SWOOLEECHO...
# What a server tree spends per message under a paced load, builds taking turns in each
# round: system calls by kind and context switches per message (perf stat on every process
# of the tree, 3 s in the middle of the run), and load's p50, p99 and server CPU per message.
# Server pinned to CPU 0 (`swooleecho -length -idle 5`, MODE base: one process; process:
# ModeProcess with 2 workers), generator to CPU 1: 100 connections, 64-byte frames, RATE
# frames a second each (load -rate; latency from when a frame was due), 6 s after 2 s of
# warm-up. perf stat costs the server some CPU of its own: compare builds within one run.
# Needs perf (linux-perf) and root. One line per run: round name and the figures.
#   cd bench && go build -o /tmp/pf/ ./cmd/swooleecho ./cmd/load
#   ./perframe.sh /tmp/pf/load process 100 2 old=/tmp/old/swooleecho new=/tmp/pf/swooleecho
set -u
L=$1 MODE=$2 RATE=$3 R=$4
shift 4
port=20700
ev=task-clock,context-switches,raw_syscalls:sys_enter
for k in futex epoll_pwait nanosleep sched_yield read write writev sendmsg recvmmsg; do ev=$ev,syscalls:sys_enter_$k; done
echo "# $(date -u '+%F %H:%M UTC') perframe.sh mode=$MODE rate=$RATE rounds=$R; $(uptime | sed 's/.*load/load/')"
for round in $(seq "$R"); do
  for spec in "$@"; do
    name=${spec%%=*} bin=${spec#*=}
    args=""
    [ "$MODE" = process ] && args="-mode process -workers 2"
    port=$((port+1))
    # shellcheck disable=SC2086
    taskset -c 0 "$bin" -addr 127.0.0.1:$port -nofile -maxconn 20000 -length -idle 5 $args >/dev/null 2>&1 &
    pid=$!
    for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
    if [ "$MODE" = process ]; then
      for i in $(seq 100); do [ "$(pgrep -c -P $pid)" -ge 2 ] && break; sleep 0.05; done
    fi
    pids=$(echo $pid $(pgrep -P $pid) | tr ' ' ',')
    out=$(mktemp) st=$(mktemp)
    taskset -c 1 "$L" -mode echo -addr 127.0.0.1:$port -pid $pid -conns 100 -size 64 -framed -rate "$RATE" -duration 6s -warmup 2s -json >"$out" 2>&1 &
    lp=$!
    sleep 3
    perf stat -x, -e "$ev" -p "$pids" -- sleep 3 2>"$st" >/dev/null
    wait $lp
    msgs=$(grep -o '"per_sec":[0-9.]*' "$out" | cut -d: -f2)
    per=$(awk -F, -v m="${msgs:-0}" 'm>0 && $3!="task-clock" {printf "%s=%.2f ", $3, $1/(m*3)}' "$st" | sed 's/syscalls:sys_enter_//g; s/raw_syscalls:sys_enter/syscalls/')
    echo "$round $name $per$(grep -o '"p50_us[^,]*,"p99_us[^,]*\|"server_cpu_us_per[^,]*' "$out" | tr '\n' ' ')"
    rm -f "$out" "$st"
    kill $pid 2>/dev/null
    wait $pid 2>/dev/null
  done
done
