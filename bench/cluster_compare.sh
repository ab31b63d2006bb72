#!/usr/bin/env bash
# A 3-node raftcache cluster (benchmark against the leader; writes acked after
# a quorum fsync) vs a redis-server primary with two replicas (`replicaof`,
# primary `--appendonly yes --appendfsync everysec`; replication is async, a
# write is acked before any replica has it). All six processes run on this
# machine (2 cores): the cluster's followers compete with the leader and
# redis-benchmark for CPU. Loads: SET,GET at -c 50 -P 1, -c 50 -P 16 and
# -c 1 -P 1 (latency floor); ops/s, p50, p99, ratios raftcache/redis.
# Usage: bench/cluster_compare.sh [N]   (default N=100000; -c 1 runs use C1_N, default 2000)
# Env: BASE_PORT (default 22100), RAFTCACHE_BIN, KEEP=1.
source "$(dirname "$0")/lib.sh"

N=${1:-100000}
base=${BASE_PORT:-22100}
rc=($((base + 1)) $((base + 2)) $((base + 3)))
rd=($((base + 11)) $((base + 12)) $((base + 13)))
for p in "${rc[@]}"; do check_ports "$p" $((p + 10000)); done
check_ports "${rd[@]}"
setup_bin

# raftcache: node 1 bootstraps, 2 and 3 join through it.
start_rc 1 "${rc[0]}" "$OUT/rc1"
wait_ping "${rc[0]}"
start_rc 2 "${rc[1]}" "$OUT/rc2" "${rc[0]}"
start_rc 3 "${rc[2]}" "$OUT/rc3" "${rc[0]}"
# redis: primary + 2 replicas (no RDB saves, so only replication and AOF run).
start_redis "${rd[0]}" "$OUT/rd1" --appendonly yes --appendfsync everysec --save ''
start_redis "${rd[1]}" "$OUT/rd2" --replicaof 127.0.0.1 "${rd[0]}" --save ''
start_redis "${rd[2]}" "$OUT/rd3" --replicaof 127.0.0.1 "${rd[0]}" --save ''
for p in "${rc[@]}" "${rd[@]}"; do wait_ping "$p"; done

for _ in $(seq 1 300); do
  [[ $(redis-cli -p "${rc[0]}" CLUSTER INFO | tr -d '\r' | grep '^cluster_size:') == cluster_size:3 ]] &&
    [[ $(redis-cli -p "${rc[0]}" INFO raft | tr -d '\r' | grep '^raft_learners:') == "raft_learners:" ]] && break
  sleep 0.1
done
for _ in $(seq 1 300); do
  [[ $(redis-cli -p "${rd[0]}" INFO replication | grep -c 'state=online') == 2 ]] && break
  sleep 0.1
done
leader=""
for _ in $(seq 1 100); do
  for p in "${rc[@]}"; do is_leader "$p" && leader=$p; done
  [[ -n $leader ]] && break
  sleep 0.1
done
[[ -n $leader ]] || { echo "no raftcache leader" >&2; exit 1; }
echo "raftcache: $(redis-cli -p "$leader" CLUSTER INFO | tr -d '\r' | grep cluster_size), leader on port $leader;" \
  "redis: $(redis-cli -p "${rd[0]}" INFO replication | tr -d '\r' | grep -c 'state=online') replicas online"

declare -A R
loads=("-c 50 -P 1" "-c 50 -P 16" "-c 1 -P 1")
for load in "${loads[@]}"; do
  n=$N
  [[ $load == "-c 1 -P 1" ]] && n=${C1_N:-2000}
  for s in rc rd; do
    port=$leader
    [[ $s == rd ]] && port=${rd[0]}
    # shellcheck disable=SC2086
    bench_csv "$port" -t set,get -n "$n" -r 100000 -d 16 $load >"$OUT/b.txt"
    while read -r t rps p50 p99; do R[$s,$load,$t]="$rps $p50 $p99"; done <"$OUT/b.txt"
  done
done
# Replicas really got the data? (DBSIZE on every node after the run.)
sizes_rc=$(for p in "${rc[@]}"; do redis-cli -p "$p" DBSIZE; done | paste -sd/)
sizes_rd=$(for p in "${rd[@]}"; do redis-cli -p "$p" DBSIZE; done | paste -sd/)

print_env
echo
echo "Keys 16 B values (-d 16), -r 100000; N=$N (C1_N=${C1_N:-2000} for -c 1). DBSIZE after the run: raftcache $sizes_rc (leader port $leader), redis $sizes_rd."
echo
echo '| setup | load | SET ops/s | SET p50 ms | SET p99 ms | GET ops/s | GET p50 ms | GET p99 ms |'
echo '|---|---|---:|---:|---:|---:|---:|---:|'
for load in "${loads[@]}"; do
  read -r a_sr a_s50 a_s99 <<<"${R[rc,$load,SET]:-- - -}"
  read -r a_gr a_g50 a_g99 <<<"${R[rc,$load,GET]:-- - -}"
  read -r b_sr b_s50 b_s99 <<<"${R[rd,$load,SET]:-- - -}"
  read -r b_gr b_g50 b_g99 <<<"${R[rd,$load,GET]:-- - -}"
  echo "| raftcache 3 nodes (leader) | $load | $a_sr | $a_s50 | $a_s99 | $a_gr | $a_g50 | $a_g99 |"
  echo "| redis primary + 2 replicas (everysec) | $load | $b_sr | $b_s50 | $b_s99 | $b_gr | $b_g50 | $b_g99 |"
  echo "| **ratio raftcache/redis** | $load | **$(ratio "$a_sr" "$b_sr")** | $(ratio "$a_s50" "$b_s50") | $(ratio "$a_s99" "$b_s99") | **$(ratio "$a_gr" "$b_gr")** | $(ratio "$a_g50" "$b_g50") | $(ratio "$a_g99" "$b_g99") |"
done
echo
echo "Ratios: ops/s > 1 means raftcache is faster; latency > 1 means raftcache is slower."
print_cmds
