#!/usr/bin/env bash
# Single raftcache node with ~1M keys (16-byte keys, 32-byte values):
#  1. load with redis-benchmark, report the real DBSIZE, RSS per key;
#  2. a first RAFTCACHE SNAPSHOT with no load: build time (`snapshot built
#     ... cloned_ms total_ms bytes` log line) and file size;
#  3. steady write load (bench/latency_probe.py: one connection, one SET in
#     flight, every request timed) for SECONDS; RAFTCACHE SNAPSHOT is sent
#     after a third of it; p50/p99/p99.9/max before, during and after;
#  4. kill -9, restart, time until GET of a known key answers its value;
#  5. redis-server (no persistence) loaded the same way: used_memory and RSS
#     per key, for the memory comparison in the same run.
# Automatic snapshots are pushed out of the way (--snapshot-logs-since-last
# 1000000000) so that the only snapshots are the two we trigger; with the
# default (10000) a node under write load snapshots every 10000 log entries.
# Usage: bench/snapshot_latency.sh [SECONDS]   (default 15)
# Env: BASE_PORT (default 24100), KEYS_N (default 1005000 requests, ~1M
# distinct keys), RAFTCACHE_BIN, KEEP=1.
source "$(dirname "$0")/lib.sh"

SECS=${1:-15}
KEYS_N=${KEYS_N:-1005000}
base=${BASE_PORT:-24100}
port=$((base + 1)) rport=$((base + 2))
check_ports "$port" $((port + 10000)) "$rport"
setup_bin
PROBE=$BENCH_ROOT/bench/latency_probe.py
LOG=$OUT/rc.log
RC_EXTRA=(--snapshot-logs-since-last 1000000000)

strip() { sed 's/\x1b\[[0-9;]*m//g' "$LOG"; }
built_lines() { strip | grep -c 'snapshot built' || true; }
wait_built() { # count_before -> the new `snapshot built` line
  for _ in $(seq 1 1200); do
    if (($(built_lines) > $1)); then strip | grep 'snapshot built' | tail -1; return 0; fi
    sleep 0.05
  done
  echo "no snapshot built" >&2
  return 1
}
kv() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p"; } # field from a log line
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
anon_kb() { awk '/^RssAnon/ { print $2 }' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
log_ts() { # ISO timestamp at the start of a log line -> epoch seconds
  date -u -d "$(echo "$1" | awk '{ print $1 }')" +%s.%N
}

start_rc 1 "$port" "$OUT/rc"
rc_pid=$RC_PID
wait_ping "$port"
for _ in $(seq 1 100); do is_leader "$port" && break; sleep 0.1; done
rc_rss0=$(rss_kb "$rc_pid") rc_anon0=$(anon_kb "$rc_pid")

# 1. load
t0=$(date +%s.%N)
ran redis-benchmark -p "$port" -t set -n "$KEYS_N" -r 100000000 -d 32 -P 64 -c 20 -q >"$OUT/load.txt" 2>&1
load_s=$(echo "$(date +%s.%N) - $t0" | bc)
redis-cli -p "$port" SET bench:known 0123456789abcdef0123456789abcdef >/dev/null
dbsize=$(redis-cli -p "$port" DBSIZE)
sleep 1
rc_rss=$(rss_kb "$rc_pid") rc_anon=$(anon_kb "$rc_pid")
rc_used=$(info_field "$port" memory used_memory)

# 2. snapshot with no load
n=$(built_lines)
t_trig=$(date +%s.%N)
ran redis-cli -p "$port" RAFTCACHE SNAPSHOT >/dev/null
line1=$(wait_built "$n")
idle_total=$(echo "$line1" | kv total_ms) idle_clone=$(echo "$line1" | kv cloned_ms) idle_bytes=$(echo "$line1" | kv bytes)
sleep 1
rc_hwm=$(hwm_kb "$rc_pid")
snapfile=$(ls -t "$OUT/rc/snapshots/" | head -1)
snapbytes=$(stat -c %s "$OUT/rc/snapshots/$snapfile")

# 3. write load with a snapshot in the middle
note_cmd "python3 bench/latency_probe.py record $port $SECS lat.txt   # one SET in flight, every request timed"
python3 "$PROBE" record "$port" "$SECS" "$OUT/lat.txt" &
probe_pid=$!
PIDS+=("$probe_pid")
sleep "$(echo "$SECS / 3" | bc -l)"
n=$(built_lines)
t_trig=$(date +%s.%N)
redis-cli -p "$port" RAFTCACHE SNAPSHOT >/dev/null
note_cmd "redis-cli -p $port RAFTCACHE SNAPSHOT   # at SECONDS/3"
line2=$(wait_built "$n")
load_total=$(echo "$line2" | kv total_ms) load_clone=$(echo "$line2" | kv cloned_ms)
t_built=$(log_ts "$line2")
wait "$probe_pid"
# keep the raw latencies for bench/plot.py (bench/out is gitignored)
mkdir -p "$BENCH_ROOT/bench/out"
{ echo "# trigger $t_trig built $t_built clone_ms $load_clone total_ms $load_total"; cat "$OUT/lat.txt"; } >"$BENCH_ROOT/bench/out/snapshot_lat.txt"
rc_hwm2=$(hwm_kb "$rc_pid")

# 4. restart
raft_before=$(redis-cli -p "$port" INFO raft | tr -d '\r' | grep -E '^raft_(last_log|snapshot)_index' | paste -sd' ')
kill -9 "$rc_pid"
wait "$rc_pid" 2>/dev/null || true
t0=$(date +%s%N)
start_rc 1 "$port" "$OUT/rc"
rc_pid=$RC_PID
note_cmd "kill -9 <pid>; \$BIN <same flags>; python3 bench/write_probe.py waitget $port bench:known <value>   # GET every 2 ms until it answers"
t1=$(python3 "$BENCH_ROOT/bench/write_probe.py" waitget "$port" bench:known 0123456789abcdef0123456789abcdef)
restart_ms=$(((t1 - t0) / 1000000))
dbsize2=$(redis-cli -p "$port" DBSIZE)
rc_rss2=$(rss_kb "$rc_pid") rc_anon2=$(anon_kb "$rc_pid")

# 5. redis-server, same load
start_redis "$rport" "$OUT/redis" --appendonly no --save ''
wait_ping "$rport"
rd_rss0=$(rss_kb "$RD_PID") rd_anon0=$(anon_kb "$RD_PID")
ran redis-benchmark -p "$rport" -t set -n "$KEYS_N" -r 100000000 -d 32 -P 64 -c 20 -q >/dev/null 2>&1
sleep 1
rd_db=$(redis-cli -p "$rport" DBSIZE)
rd_used=$(info_field "$rport" memory used_memory)
rd_rss=$(rss_kb "$RD_PID") rd_anon=$(anon_kb "$RD_PID")

per() { echo "$1 / $2" | bc; }
print_env
echo
echo "Load: $KEYS_N SETs in ${load_s%.*} s ($(tr '\r' '\n' <"$OUT/load.txt" | grep -o 'SET: [0-9.]* requests per second' | tail -1))"
echo
echo "| memory | keys (DBSIZE) | used_memory | VmRSS (empty process) | RssAnon (empty) | used_memory B/key | VmRSS B/key | (RSS - empty) B/key | (RssAnon - empty) B/key |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
echo "| raftcache after load | $dbsize | $rc_used | $((rc_rss * 1024)) ($((rc_rss0 * 1024))) | $((rc_anon * 1024)) ($((rc_anon0 * 1024))) | $(per "$rc_used" "$dbsize") | $(per $((rc_rss * 1024)) "$dbsize") | $(per $(((rc_rss - rc_rss0) * 1024)) "$dbsize") | $(per $(((rc_anon - rc_anon0) * 1024)) "$dbsize") |"
echo "| raftcache peak VmRSS (VmHWM) after the idle snapshot | $dbsize | | $((rc_hwm * 1024)) | | | $(per $((rc_hwm * 1024)) "$dbsize") | $(per $(((rc_hwm - rc_rss0) * 1024)) "$dbsize") | |"
echo "| raftcache after restart (kill -9) | $dbsize2 | | $((rc_rss2 * 1024)) | $((rc_anon2 * 1024)) | | $(per $((rc_rss2 * 1024)) "$dbsize2") | $(per $(((rc_rss2 - rc_rss0) * 1024)) "$dbsize2") | $(per $(((rc_anon2 - rc_anon0) * 1024)) "$dbsize2") |"
echo "| redis-server 7 (no persistence) | $rd_db | $rd_used | $((rd_rss * 1024)) ($((rd_rss0 * 1024))) | $((rd_anon * 1024)) ($((rd_anon0 * 1024))) | $(per "$rd_used" "$rd_db") | $(per $((rd_rss * 1024)) "$rd_db") | $(per $(((rd_rss - rd_rss0) * 1024)) "$rd_db") | $(per $(((rd_anon - rd_anon0) * 1024)) "$rd_db") |"
echo "RssAnon excludes file-backed pages (the LMDB raft log is mmapped: its pages count in VmRSS as RssFile)."
echo
echo "| snapshot of $dbsize keys | clone ms (writes blocked) | total build ms | file bytes | bytes/key |"
echo "|---|---:|---:|---:|---:|"
echo "| idle | $idle_clone | $idle_total | $idle_bytes | $(per "$idle_bytes" "$dbsize") |"
echo "| under the write load below | $load_clone | $load_total | | |"
echo
echo "Snapshot file on disk: $snapfile, $snapbytes bytes. Peak RSS (VmHWM) at the end of the write load: $((rc_hwm2 * 1024)) B."
echo
echo "Write latency, one connection, one SET in flight (like redis-benchmark -c 1 -P 1), RAFTCACHE SNAPSHOT sent at ${SECS}/3 s:"
echo
python3 "$PROBE" report "$OUT/lat.txt" "$t_trig" "$t_built"
echo
echo "| restart with $dbsize keys | before kill -9 | kill -9 -> GET answers | keys after |"
echo "|---|---|---:|---:|"
echo "| raftcache | $raft_before | ${restart_ms} ms | $dbsize2 |"
print_cmds
