#!/usr/bin/env bash
# raftcache (single node, release build, fsync per group commit) vs
# redis-server `--appendonly yes --appendfsync always`, with a plain
# redis-server (no persistence) as a second reference; all started here, same
# machine, same run, loads interleaved. For SET and GET at
#   -c 50 -P 1,  -c 50 -P 16,  -c 1 -P 1 (latency floor)
# prints ops/s, p50 and p99 (ms), and the ratios raftcache/redis-always.
# Usage: bench/compare.sh [N]   (default N=100000; -c 1 runs use C1_N, default 2000)
# Env: BASE_PORT (default 21100), RAFTCACHE_BIN, KEEP=1 keeps the temp dir.
source "$(dirname "$0")/lib.sh"

N=${1:-100000}
base=${BASE_PORT:-21100}
rc_port=$base rd_port=$((base + 1)) rp_port=$((base + 2))
check_ports "$rc_port" $((rc_port + 10000)) "$rd_port" "$rp_port"
setup_bin

start_rc 1 "$rc_port" "$OUT/rc"
start_redis "$rd_port" "$OUT/redis-always" --appendonly yes --appendfsync always --save ''
start_redis "$rp_port" "$OUT/redis-plain" --appendonly no --save ''
for p in "$rc_port" "$rd_port" "$rp_port"; do wait_ping "$p"; done
for _ in $(seq 1 100); do is_leader "$rc_port" && break; sleep 0.1; done

declare -A R # R[setup,load,TEST]="rps p50 p99"
loads=("-c 50 -P 1" "-c 50 -P 16" "-c 1 -P 1")
setups=(rc rd rp)
declare -A PORT=([rc]=$rc_port [rd]=$rd_port [rp]=$rp_port)
declare -A NAME=([rc]="raftcache 1 node (fsync)" [rd]="redis appendfsync always" [rp]="redis no persistence")

for load in "${loads[@]}"; do
  n=$N
  [[ $load == "-c 1 -P 1" ]] && n=${C1_N:-2000}
  for s in "${setups[@]}"; do
    # shellcheck disable=SC2086
    bench_csv "${PORT[$s]}" -t set,get -n "$n" -r 100000 -d 16 $load >"$OUT/b.txt"
    while read -r t rps p50 p99; do
      R[$s,$load,$t]="$rps $p50 $p99"
    done <"$OUT/b.txt"
  done
done

print_env
echo
echo "Keys 16 B values (-d 16), -r 100000 random keys; N=$N (C1_N=${C1_N:-2000} for -c 1)."
echo
echo '| setup | load | SET ops/s | SET p50 ms | SET p99 ms | GET ops/s | GET p50 ms | GET p99 ms |'
echo '|---|---|---:|---:|---:|---:|---:|---:|'
for load in "${loads[@]}"; do
  for s in "${setups[@]}"; do
    read -r sr s50 s99 <<<"${R[$s,$load,SET]:-- - -}"
    read -r gr g50 g99 <<<"${R[$s,$load,GET]:-- - -}"
    echo "| ${NAME[$s]} | $load | $sr | $s50 | $s99 | $gr | $g50 | $g99 |"
  done
  read -r a_sr a_s50 a_s99 <<<"${R[rc,$load,SET]:-- - -}"
  read -r a_gr a_g50 a_g99 <<<"${R[rc,$load,GET]:-- - -}"
  for ref in rd rp; do
    read -r b_sr b_s50 b_s99 <<<"${R[$ref,$load,SET]:-- - -}"
    read -r b_gr b_g50 b_g99 <<<"${R[$ref,$load,GET]:-- - -}"
    echo "| **ratio raftcache / ${NAME[$ref]}** | $load | **$(ratio "$a_sr" "$b_sr")** | $(ratio "$a_s50" "$b_s50") | $(ratio "$a_s99" "$b_s99") | **$(ratio "$a_gr" "$b_gr")** | $(ratio "$a_g50" "$b_g50") | $(ratio "$a_g99" "$b_g99") |"
  done
done
echo
echo "Ratios: ops/s > 1 means raftcache is faster; latency > 1 means raftcache is slower."
echo "raftcache GETs are linearizable (ReadIndex round per batch of reads), its SETs are fsynced before the reply."
print_cmds
