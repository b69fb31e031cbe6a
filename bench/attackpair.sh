#!/bin/bash
# attackpair.sh SWOOLEECHO LOAD [ROUNDS] [RATE]
# The bad-peer cells of RELIABILITY.md ("Bad peers"), quiet and under attack taking turns
# within each round, in ModeBase (one process) and ModeProcess (2 workers): server pinned to
# CPU 0 (`swooleecho -length -idle 5`), generator and attackers (one bench/cmd/load process)
# to CPU 1. 100 good clients send 64-byte frames, one in flight each, for 10 s after 3 s of
# warm-up; the attack adds 5,000 slowloris connections (a frame one byte a second) and 1,000
# bad connections a second (half garbage bytes, half a header claiming 64 MiB), from a load
# process of their own at nice 19 on the same core: in the good clients' process (one Go
# runtime on one core) thousands of attacker goroutines would delay the good ones' reads, which
# is the generator's latency, not the server's; the attackers' counts show they kept their rate.
# RATE (default 100): each good client's messages a second on a fixed schedule (load -rate;
# latency from when a message was due), so the good clients do not saturate the generator's
# core and their p99 shows the server's delay rather than the generator's own queue; 0 runs
# them closed-loop (as fast as the echoes come back), as the first runs did.
# One line per run: round mode kind rss_kb (the server's VmRSS at the end) warn (WARN lines
# the server wrote) and load's JSON. A "# round N" line with the load average starts each round.
# Build: (cd bench && go build -o /tmp/atk/ ./cmd/swooleecho ./cmd/load)
# With SWOOLE_SO set (the path bench/swoole/build.sh prints) and php on PATH, each round also
# runs real Swoole 6.2.2 (bench/swoole/echo.php -length -idle 5, the same settings) in PROCESS
# (2 workers) and BASE, as modes swoole-process and swoole-base.
set -u
SW=$1 L=$2 R=${3:-2} RATE=${4:-100}
modes="process base"
if [ -n "${SWOOLE_SO:-}" ]; then
  command -v php >/dev/null || { echo "attackpair.sh: SWOOLE_SO is set but php is not on PATH" >&2; exit 2; }
  modes="process swoole-process base swoole-base"
fi
here=$(cd "$(dirname "$0")" && pwd)
port=19801
echo "# $(date -u '+%F %H:%M UTC') attackpair.sh rounds=$R rate=$RATE; $(uptime | sed 's/.*load/load/')"
for round in $(seq "$R"); do
  echo "# round $round: $(uptime | sed 's/.*load/load/')"
  for mode in $modes; do
    for kind in quiet attack; do
      args="" want=1
      case $mode in *process) args="-mode process -workers 2" want=2 ;; esac
      port=$((port+1))
      log=$(mktemp)
      if [ "${mode#swoole-}" != "$mode" ]; then
        # shellcheck disable=SC2086
        taskset -c 0 php -d extension="$SWOOLE_SO" "$here/swoole/echo.php" -addr 127.0.0.1:$port -nofile -maxconn 20000 -length -idle 5 $args >"$log" 2>&1 &
        pid=$!
        # Every Swoole worker prints a "listening" line once it has started.
        for i in $(seq 200); do [ "$(grep -c 'echo server listening' "$log")" -ge $want ] && break; sleep 0.05; done
      else
        # shellcheck disable=SC2086
        taskset -c 0 "$SW" -addr 127.0.0.1:$port -nofile -maxconn 20000 -length -idle 5 $args >"$log" 2>&1 &
        pid=$!
        for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
        if [ $want = 2 ]; then
          for i in $(seq 100); do [ "$(pgrep -c -P $pid)" -ge 2 ] && break; sleep 0.05; done
        fi
      fi
      apid="" afile=$(mktemp)
      if [ $kind = attack ]; then
        # The attackers: a load process of their own (one paced good connection beside
        # them), at nice 19 on the generator's core, started first and ended last.
        nice -n 19 taskset -c 1 "$L" -mode echo -addr 127.0.0.1:$port -conns 1 -size 64 -framed -rate 10 -duration 15s -warmup 0s -slowloris 5000 -badrate 1000 -json >"$afile" 2>&1 &
        apid=$!
        sleep 1
      fi
      out=$(taskset -c 1 "$L" -mode echo -addr 127.0.0.1:$port -pid $pid -conns 100 -size 64 -framed -rate "$RATE" -duration 10s -warmup 3s -json 2>&1)
      if [ -n "$apid" ]; then
        wait $apid
        out="$out attackers=$(grep -o '"attack":{[^}]*}' "$afile")"
      fi
      rm -f "$afile"
      rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null)
      kill $pid 2>/dev/null
      wait $pid 2>/dev/null
      echo "$round $mode $kind rss_kb=${rss:-0} warn=$(grep -c 'WARN\|WARNING' "$log") $out"
      rm -f "$log"
    done
  done
done
echo "# end: $(uptime | sed 's/.*load/load/')"
