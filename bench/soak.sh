#!/bin/bash
# soak.sh [DURATION] [MODE]: a soak of the echo server (bench/cmd/swooleecho, ModeProcess with
# 2 workers unless MODE is base) at about half load: 20 connections, one 64-byte message in
# flight each, every reply checked, for DURATION (default 10m). The server's RSS (its whole
# process tree) is sampled every 10 s; the last line says whether it stayed within 5% of
# the first sample taken after a minute of warm-up.
set -eu
cd "$(dirname "$0")"
dur=${1:-10m} mode=${2:-process}
go build -o /tmp/soak-bin/ ./cmd/swooleecho ./cmd/load
args="-mode process -workers 2"; [ "$mode" = base ] && args=""
port=$((20000 + RANDOM % 10000))
/tmp/soak-bin/swooleecho -addr 127.0.0.1:$port $args >/tmp/soak-server.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
rss() { # the server tree's VmRSS in KiB
  local t=0
  for p in $pid $(pgrep -P $pid); do t=$((t + $(awk '/VmRSS/{print $2}' /proc/$p/status 2>/dev/null || echo 0))); done
  echo $t
}
/tmp/soak-bin/load -mode echo -addr 127.0.0.1:$port -pid $pid -conns 20 -size 64 -verify -duration "$dur" -warmup 60s -json > /tmp/soak-load.json &
lpid=$!
while kill -0 $lpid 2>/dev/null; do echo "$(date -u +%H:%M:%S) rss_kib $(rss)"; sleep 10; done | tee /tmp/soak-rss.txt
wait $lpid
cat /tmp/soak-load.json
python3 - <<'PY'
rows=[l.split() for l in open('/tmp/soak-rss.txt') if 'rss_kib' in l]
vals=[int(r[2]) for r in rows]
base=vals[min(6,len(vals)-1)]  # after the first minute
hi,lo=max(vals[6:] or vals),min(vals[6:] or vals)
print(f"soak: {len(vals)} samples, RSS after warm-up {base} KiB, min {lo}, max {hi}: {'flat within 5%' if hi <= base*1.05 and lo >= base*0.95 else 'NOT within 5%'}")
PY
