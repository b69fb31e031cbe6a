#!/bin/bash
# tlspair.sh SWOOLEECHO NETECHO LOAD [ROUNDS]
# Paired TLS runs, goswoole (ModeBase, one process, SockTCP|SockSSL) against netstd (Go's net
# with crypto/tls's listener, a goroutine per connection), the two servers taking turns within
# each round: server pinned to CPU 0, generator (bench/cmd/load) to CPU 1. Cells: TLS echo at
# 50 and at 1,000 connections x 64 B (3 s after 0.5 s warmup; handshakes done before), TLS
# connect (a full handshake per connection, then with -resume a resumed one; 50 workers, 3 s),
# idle memory at 10,000 TLS connections. A self-signed ECDSA P-256 certificate is generated
# into a temporary directory first (load -gencert). One JSON line per run, prefixed
# "<goswoole|netstd> <cell>".
# Build: (cd bench && go build -o /tmp/tlsb/ ./cmd/swooleecho ./cmd/netecho ./cmd/load)
set -u
SW=$1 NE=$2 L=$3 R=${4:-3}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
read -r cert key < <("$L" -gencert "$dir")
port=19601
run() { # server cell
  local bin=$SW
  [ "$1" = netstd ] && bin=$NE
  port=$((port+1))
  taskset -c 0 "$bin" -addr 127.0.0.1:$port -nofile -maxconn 20000 -tlscert "$cert" -tlskey "$key" >/dev/null 2>&1 &
  local pid=$!
  for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  local out
  case $2 in
  echo50) out=$(taskset -c 1 "$L" -tls -mode echo -addr 127.0.0.1:$port -pid $pid -conns 50 -size 64 -duration 3s -json) ;;
  echo1000) out=$(taskset -c 1 "$L" -tls -mode echo -addr 127.0.0.1:$port -pid $pid -conns 1000 -size 64 -duration 3s -json) ;;
  connect) out=$(taskset -c 1 "$L" -tls -mode connect -addr 127.0.0.1:$port -pid $pid -conns 50 -size 64 -duration 3s -json) ;;
  resume) out=$(taskset -c 1 "$L" -tls -resume -mode connect -addr 127.0.0.1:$port -pid $pid -conns 50 -size 64 -duration 3s -json) ;;
  idle) out=$(taskset -c 1 "$L" -tls -mode idle -addr 127.0.0.1:$port -pid $pid -conns 10000 -json) ;;
  esac
  echo "$1 $2 $out"
  kill $pid; wait $pid 2>/dev/null
}
for r in $(seq "$R"); do
  for cell in echo50 echo1000 connect resume idle; do
    run goswoole $cell; run netstd $cell
  done
done
