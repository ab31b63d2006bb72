#!/usr/bin/env bash
# Failover time of a 3-node raftcache cluster with default settings
# (election timeout 300-600 ms, heartbeat 50 ms). Each trial: find the leader
# (INFO replication role:master), kill -9 it and, from the same python
# process (bench/write_probe.py, raw sockets, one SET in flight per surviving
# node, ~1 ms between retries), write until the first +OK; the time is
# kill -> first +OK. Then the killed node is restarted on its dir with
# --join <live node> and the next trial waits until it is back in the
# cluster (cluster_size:3, it knows the leader and has applied the leader's
# commit index). Prints each trial, p50 and max.
# Usage: bench/failover.sh [TRIALS]   (default 10)
# Env: BASE_PORT (default 23100), RAFTCACHE_BIN, KEEP=1.
source "$(dirname "$0")/lib.sh"

TRIALS=${1:-10}
base=${BASE_PORT:-23100}
ports=($((base + 1)) $((base + 2)) $((base + 3)))
for p in "${ports[@]}"; do check_ports "$p" $((p + 10000)); done
setup_bin
PROBE=$BENCH_ROOT/bench/write_probe.py
declare -A NPID

start_node() { # id [join_port]
  local id=$1
  start_rc "$id" "${ports[id - 1]}" "$OUT/n$id" "${2:-}"
  NPID[$id]=$RC_PID
}

find_leader() { # -> node id of the (single) node saying role:master
  local i
  for _ in $(seq 1 200); do
    for i in 1 2 3; do
      if is_leader "${ports[i - 1]}"; then echo "$i"; return 0; fi
    done
    sleep 0.05
  done
  return 1
}

wait_rejoined() { # id leader_id: restarted node is a member again and caught up
  local id=$1 ld=$2 port=${ports[$1 - 1]} lport=${ports[$2 - 1]}
  for _ in $(seq 1 600); do
    local cs lid app com
    cs=$(redis-cli -p "$port" CLUSTER INFO 2>/dev/null | tr -d '\r' | awk -F: '$1 == "cluster_size" { print $2 }')
    lid=$(info_field "$port" raft raft_leader_id)
    app=$(info_field "$port" raft raft_last_applied_index)
    com=$(info_field "$lport" raft raft_committed_index)
    if [[ $cs == 3 && $lid == "$ld" && -n $app && -n $com && $app -ge $com ]]; then return 0; fi
    sleep 0.1
  done
  echo "node $id did not rejoin" >&2
  return 1
}

start_node 1
wait_ping "${ports[0]}"
find_leader >/dev/null
start_node 2 "${ports[0]}"
start_node 3 "${ports[0]}"
for _ in $(seq 1 300); do
  [[ $(redis-cli -p "${ports[0]}" CLUSTER INFO | tr -d '\r' | grep '^cluster_size:') == cluster_size:3 ]] && break
  sleep 0.1
done
ld=$(find_leader)
wait_rejoined 2 "$ld"
wait_rejoined 3 "$ld"
note_cmd "redis-cli -p <port> INFO replication    # leader = role:master"
note_cmd "python3 bench/write_probe.py failover <leader pid> <surviving ports>   # kill -9 + SET until +OK"

# Probe resolution: one SET round trip to a follower (-MOVED, no fsync), and
# the cost of one redis-cli process for comparison.
fport=${ports[$(((ld % 3)))]}
read -r py_mean py_p99 < <(python3 "$PROBE" overhead "$fport" 2000)
t0=$(date +%s%N)
for _ in $(seq 1 50); do redis-cli -p "$fport" SET failover:probe x >/dev/null; done
cli_ms=$(echo "($(date +%s%N) - $t0) / 50 / 1000000" | bc -l)

times=()
echo "| trial | killed node (leader) | new leader (first +OK) | kill -> first +OK ms | non-OK replies before (kinds) |"
echo "|---:|---:|---:|---:|---|"
for t in $(seq 1 "$TRIALS"); do
  ld=$(find_leader)
  survivors=()
  for i in 1 2 3; do [[ $i != "$ld" ]] && survivors+=("${ports[i - 1]}"); done
  read -r ms okport others kinds < <(python3 "$PROBE" failover "${NPID[$ld]}" "${survivors[@]}")
  wait "${NPID[$ld]}" 2>/dev/null || true
  newld=$(find_leader)
  echo "| $t | $ld | $newld (port $okport) | $ms | $others ($kinds) |"
  times+=("$ms")
  # restart the killed node (its dir is not empty: it rejoins with its stored membership)
  alive=${ports[newld - 1]}
  start_node "$ld" "$alive"
  wait_ping "${ports[ld - 1]}"
  wait_rejoined "$ld" "$newld"
  sleep 0.5 # let heartbeats settle before the next kill
done

sorted=$(printf '%s\n' "${times[@]}" | grep -v '^timeout' | sort -n)
cnt=$(echo "$sorted" | grep -c . || true)
p50=$(echo "$sorted" | awk -v n="$cnt" 'NR == int((n + 1) / 2) { print }')
max=$(echo "$sorted" | tail -1)
min=$(echo "$sorted" | head -1)
echo
echo "| trials | min ms | p50 ms | max ms |"
echo "|---:|---:|---:|---:|"
echo "| $cnt/$TRIALS | $min | $p50 | $max |"
echo
printf 'Probe resolution: python raw-socket SET round trip to a follower: mean %s us, p99 %s us (+1 ms sleep between retries on a node that refused);\n' "$py_mean" "$py_p99"
printf 'one `redis-cli SET` process would cost %.1f ms per attempt, so the python probe is used.\n' "$cli_ms"
print_env
print_cmds
