# Shared helpers for the bench/*.sh scripts. Source it; do not run it.
#
# - builds the release binary (or uses $RAFTCACHE_BIN) and copies it into the
#   run's temp dir, so a concurrent `cargo build` cannot swap it mid-run;
# - tracks every process it starts and kills them (and only them) on exit;
# - records every command it runs (`ran ...`) for the "commands" section.
set -euo pipefail

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$BENCH_ROOT"

OUT=$(mktemp -d /tmp/rcbench.XXXXXX)
START_UPTIME=$(uptime)
PIDS=()
CMDS=()

bench_cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept $OUT" >&2; else rm -rf "$OUT"; fi
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
set -E # say where a script stops under set -e instead of exiting silently
trap 'echo "$(basename "$0"): error at line $LINENO: $BASH_COMMAND" >&2' ERR

# ran CMD...: record CMD (as typed) and run it.
ran() { CMDS+=("$*"); "$@"; }
note_cmd() { CMDS+=("$*"); }

print_cmds() {
  echo
  echo "Commands run (\$BIN = $BIN_DESC):"
  echo
  echo '```'
  local c
  for c in "${CMDS[@]}"; do echo "$c"; done | awk '!seen[$0]++'
  echo '```'
}

bench_dirty() {
  if [[ -n $(git -C "$BENCH_ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then
    echo " + uncommitted src changes"
  fi
}

# The binary under test, copied so that rebuilds by others do not affect the run.
setup_bin() {
  if [[ -n ${RAFTCACHE_BIN:-} ]]; then
    cp "$RAFTCACHE_BIN" "$OUT/raftcache"
    BIN_DESC="$RAFTCACHE_BIN (HEAD is $(git rev-parse --short HEAD))"
  else
    cargo build --release --quiet
    cp target/release/raftcache "$OUT/raftcache"
    BIN_DESC="target/release/raftcache built from the working tree at $(git rev-parse --short HEAD)$(bench_dirty)"
  fi
  BIN=$OUT/raftcache
}

port_free() { ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

# check_ports P...: refuse to start if any port is already taken.
check_ports() {
  local p
  for p in "$@"; do
    port_free "$p" || { echo "port $p is in use; set another base port" >&2; exit 1; }
  done
}

wait_ping() { # port [tries of 0.1s]
  local i
  for i in $(seq 1 "${2:-300}"); do
    [[ $(redis-cli -p "$1" PING 2>/dev/null) == PONG ]] && return 0
    sleep 0.1
  done
  echo "port $1 did not answer PING" >&2
  return 1
}

# start_rc ID PORT DIR [JOIN_PORT] -> sets RC_PID; log in DIR.log
start_rc() {
  local id=$1 port=$2 dir=$3 join=${4:-}
  local args=(--node-id "$id" --port "$port" --bus-port $((port + 10000)) --dir "$dir")
  if [[ -n $join ]]; then args+=(--join "127.0.0.1:$join"); else args+=(--cluster-bootstrap yes); fi
  args+=("${RC_EXTRA[@]}")
  note_cmd "\$BIN ${args[*]}"
  "$BIN" "${args[@]}" >>"$dir.log" 2>&1 &
  RC_PID=$!
  PIDS+=("$RC_PID")
}
RC_EXTRA=()

# start_redis PORT DIR ARGS... -> sets RD_PID
start_redis() {
  local port=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  note_cmd "redis-server --port $port --dir $dir $(printf "%q " "$@")"
  redis-server --port "$port" --dir "$dir" "$@" >"$dir.log" 2>&1 &
  RD_PID=$!
  PIDS+=("$RD_PID")
}

is_leader() { redis-cli -p "$1" INFO replication 2>/dev/null | tr -d '\r' | grep -q '^role:master$'; }
info_field() { # port section field
  redis-cli -p "$1" INFO "$2" 2>/dev/null | tr -d '\r' | awk -F: -v f="$3" '$1 == f { print $2 }'
}

# bench_csv PORT ARGS...: one redis-benchmark run; prints "TEST rps p50 p99" lines.
bench_csv() {
  local port=$1
  shift
  note_cmd "redis-benchmark -p $port $* --csv"
  redis-benchmark -p "$port" "$@" --csv 2>/dev/null |
    awk -F, 'NR > 1 { gsub(/"/, ""); print $1, $2, $5, $7 }'
}

ratio() { # a b -> a/b with 2 decimals, "-" when b is 0/empty
  if [[ -z ${2:-} || -z ${1:-} ]] || [[ $(echo "$2 == 0" | bc) == 1 ]]; then echo "-"; else printf '%.2f' "$(echo "$1 / $2" | bc -l)"; fi
}

print_env() {
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%SZ'); host: $(nproc) cores; uptime at start:$START_UPTIME; at end:$(uptime)"
}
