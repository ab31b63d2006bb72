#!/usr/bin/env bash
# Runs the four benchmarks one after the other against one frozen binary and
# keeps each one's Markdown output in bench/out/<name>.md (the raw material
# of bench/RESULTS.md). Usage: bench/run_all.sh   (RAFTCACHE_BIN overrides
# the binary; default: committed HEAD built by bench/build_head.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
export RAFTCACHE_BIN=${RAFTCACHE_BIN:-$(bench/build_head.sh)}
mkdir -p bench/out
for s in compare cluster_compare failover snapshot_latency; do
  echo "== $s ($(date -u +%H:%M:%S), uptime:$(uptime))" >&2
  bench/$s.sh | tee "bench/out/$s.md" || echo "== $s FAILED" >&2
done
