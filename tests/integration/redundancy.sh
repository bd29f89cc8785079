# Helpers for the redundancy tests (t_degraded, t_repair, t_scrub, t_gc,
# t_full, t_overload). Source after lib.sh:
#   . "$(dirname "$0")/lib.sh"; . "$(dirname "$0")/redundancy.sh"
# (tests/run.sh only runs t_*.sh, so this file is never run on its own.)
#
#   CHUNKD_ARGS          extra cairn-chunkd flags for start_chunkd_x (array)
#   start_chunkd_x I [PORT] [ARGS...]   like lib.sh's start_chunkd, plus
#                        "${CHUNKD_ARGS[@]}" and ARGS
#   start_cluster_x N [METAD ARGS...]   like start_cluster, with start_chunkd_x
#   cairn ARGS...        the admin CLI against this test's metad
#   maint I PASS         POST /maint/run on chunk server I; body on stdout
#   maint_all PASS       the same on every running chunk server
#   chunk_metric I NAME  one sample of chunk server I's /metrics
#   chunk_files I        chunk files in server I's data directory
#   chunk_files_total    the same over every server
#   server_id I          metad's id for chunk server I
#   server_state I       its state in the cluster map (up, down, ...)
#   converge SECONDS     repair passes on every server until cairn fsck
#                        --strict passes (R copies, on their top-R servers)

CAIRN_BIN=$BIN/cairn
declare -a CHUNKD_ARGS=()

start_chunkd_x() { # I [PORT] [extra args...]
  local i=$1 port=${2:-0}
  shift
  [ $# -gt 0 ] && shift
  mkdir -p "$T/chunk$i"
  CHUNK_N[$i]=$(( ${CHUNK_N[$i]:-0} + 1 ))
  local af=$T/chunk$i.addr.${CHUNK_N[$i]}
  rm -f "$af"
  "$CHUNKD_BIN" --data "$T/chunk$i" --listen "127.0.0.1:$port" --addr-file "$af" \
    --meta "$METAD_ADDR" --heartbeat-interval 1s "${CHUNKD_ARGS[@]}" "$@" \
    >>"$T/logs/chunkd$i.log" 2>&1 &
  CHUNK_PIDS[$i]=$!
  OWN_PIDS+=("${CHUNK_PIDS[$i]}")
  _await_addr "$af" "${CHUNK_PIDS[$i]}" "cairn-chunkd $i" || return 1
  CHUNK_ADDRS[$i]=$(head -n1 "$af")
  if [ "$port" != 0 ] && [ "$(addr_port "${CHUNK_ADDRS[$i]}")" != "$port" ]; then
    note "cairn-chunkd $i restarted on ${CHUNK_ADDRS[$i]}, expected port $port"
    return 1
  fi
  CHUNK_PORTS[$i]=$(addr_port "${CHUNK_ADDRS[$i]}")
}

start_cluster_x() { # N [metad args...]
  local n=$1 i
  shift
  start_metad --format "$@" || return 1
  for ((i = 1; i <= n; i++)); do
    start_chunkd_x "$i" || return 1
  done
  wait_cluster "$n"
}

# kill -9 a chunk server (a crash: no clean shutdown)
kill_chunkd() { # I
  local pid=${CHUNK_PIDS[$1]:-}
  CHUNK_PIDS[$1]=
  [ -n "$pid" ] || return 0
  kill -KILL "$pid" 2>/dev/null
  wait_until 10 pid_dead "$pid"
  wait "$pid" 2>/dev/null
  return 0
}

cairn() { "$CAIRN_BIN" --meta "$METAD_ADDR" "$@"; }

maint() { # I PASS
  curl -sS --max-time 300 -X POST "http://${CHUNK_ADDRS[$1]}/maint/run?pass=$2" -o "$T/.maint.$1" \
    -w '%{http_code}' >"$T/.maint.code.$1" 2>&1
  cat "$T/.maint.$1" 2>/dev/null
  [ "$(cat "$T/.maint.code.$1")" = 200 ]
}

maint_all() { # PASS
  local i rc=0
  for i in "${!CHUNK_PIDS[@]}"; do
    [ -n "${CHUNK_PIDS[$i]}" ] || continue
    maint "$i" "$1" >/dev/null || rc=1
  done
  return $rc
}

# value of KEY in the last maint report of server I
maint_val() { # I KEY
  awk -v k="$2" '$1 == k { print $2; exit }' "$T/.maint.$1"
}

chunk_metric() { # I NAME
  curl -s --max-time 5 "http://${CHUNK_ADDRS[$1]}/metrics" | awk -v n="$2" '$1 == n { print $2; exit }'
}

chunk_files() { # I
  find "$T/chunk$1/chunks" -type f 2>/dev/null | wc -l
}

chunk_files_total() {
  local i sum=0
  for i in "${!CHUNK_ADDRS[@]}"; do sum=$((sum + $(chunk_files "$i"))); done
  echo "$sum"
}

server_id() { # I
  cat "$T/chunk$1/server.id" 2>/dev/null
}

server_state() { # I
  cairn status 2>/dev/null | awk -v id="$(server_id "$1")" '$1 == id { print $3; exit }'
}

_converged() {
  maint_all repair
  cairn --quiet --strict fsck >"$T/.fsck.out" 2>&1
}

converge() { # SECONDS
  if wait_until "$1" _converged; then return 0; fi
  note "cluster did not converge within ${1}s; last fsck:
$(tail -n 12 "$T/.fsck.out")"
  return 1
}

[ -x "$CAIRN_BIN" ] || { echo "# $CAIRN_BIN missing: run make first"; echo "not ok setup"; exit 1; }
