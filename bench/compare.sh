#!/usr/bin/env bash
# raftcache (single node, release build) vs redis-server with
# `appendonly yes, appendfsync always`, both started here, same machine, same
# run. Prints ops/s and p50 (ms) for SET and GET at -P 1 and -P 16 and the
# ratio raftcache/redis. Usage: bench/compare.sh [N]   (default N=200000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
out=$(mktemp -d)
cargo build --release --quiet
rc_port=${RC_PORT:-16379}
rd_port=${RD_PORT:-16380}
./target/release/raftcache --port "$rc_port" --bus-port $((rc_port + 1000)) --dir "$out/rc" >"$out/rc.log" 2>&1 &
rc_pid=$!
redis-server --port "$rd_port" --dir "$out" --appendonly yes --appendfsync always --save '' >"$out/redis.log" 2>&1 &
rd_pid=$!
trap 'kill $rc_pid $rd_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$out"' EXIT
for p in "$rc_port" "$rd_port"; do
  for _ in $(seq 1 100); do redis-cli -p "$p" SET warm up >/dev/null 2>&1 && break; sleep 0.1; done
done

run() { # port pipeline -> "set_rps set_p50 get_rps get_p50"
  redis-benchmark -p "$1" -t set,get -n "$N" -r 100000 -d 16 -c 50 -P "$2" --csv 2>/dev/null |
    awk -F'","' 'NR>1 { gsub(/"/,""); printf "%s %s ", $2, $5 }'
}
printf '| setup | pipeline | SET ops/s | SET p50 ms | GET ops/s | GET p50 ms |\n|---|---|---|---|---|---|\n'
for P in 1 16; do
  read -r rc_set rc_setp rc_get rc_getp <<<"$(run "$rc_port" "$P")"
  read -r rd_set rd_setp rd_get rd_getp <<<"$(run "$rd_port" "$P")"
  printf '| raftcache (1 node, fsync) | %s | %s | %s | %s | %s |\n' "$P" "$rc_set" "$rc_setp" "$rc_get" "$rc_getp"
  printf '| redis appendfsync always | %s | %s | %s | %s | %s |\n' "$P" "$rd_set" "$rd_setp" "$rd_get" "$rd_getp"
  printf '| **ratio raftcache/redis** | %s | %.2f | | %.2f | |\n' "$P" \
    "$(echo "$rc_set / $rd_set" | bc -l)" "$(echo "$rc_get / $rd_get" | bc -l)"
done
