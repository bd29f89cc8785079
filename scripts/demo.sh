#!/bin/bash
# make demo / make demo-stop: one cairn-metad and three cairn-chunkd on
# 127.0.0.1 with their data under .demo/, the filesystem mounted at ./mnt.
# Data survives demo-stop + demo. Processes are tracked by pid files.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=${BUILD:-build}/bin
D=$ROOT/.demo
MNT=$ROOT/mnt
NCHUNK=3

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_file() { # file timeout_s
  local i
  for ((i = 0; i < $2 * 10; i++)); do [ -s "$1" ] && return 0; sleep 0.1; done
  return 1
}

stop_pid() { # pidfile
  local f=$1 p i
  [ -f "$f" ] || return 0
  p=$(cat "$f")
  if kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p" 2>/dev/null
    for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  fi
  rm -f "$f"
}

start() {
  mkdir -p "$D" "$MNT"
  if alive "$D/mount.pid" && mountpoint -q "$MNT"; then
    echo "cairn demo is already running: mounted at $MNT (metad $(cat "$D/metad.addr"))"
    echo "stop it with: make demo-stop"
    return 0
  fi
  # A mount left behind by a crashed client answers ENOTCONN; clear it.
  if ! ls "$MNT" >/dev/null 2>&1; then fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null; fi
  if mountpoint -q "$MNT"; then
    echo "demo: $MNT is already a mount point of something else; unmount it first" >&2
    return 1
  fi
  if ! alive "$D/metad.pid"; then
    rm -f "$D/metad.addr"
    # The same port as last time when it is free, so old clients reconnect.
    local listen=127.0.0.1:0
    [ -f "$D/metad.port" ] && listen=127.0.0.1:$(cat "$D/metad.port")
    setsid "$BIN/cairn-metad" --data "$D/meta" --listen "$listen" --addr-file "$D/metad.addr" \
      --format >>"$D/metad.log" 2>&1 < /dev/null &
    echo $! > "$D/metad.pid"
    if ! wait_file "$D/metad.addr" 10 && [ "$listen" != 127.0.0.1:0 ]; then
      stop_pid "$D/metad.pid"
      setsid "$BIN/cairn-metad" --data "$D/meta" --listen 127.0.0.1:0 --addr-file "$D/metad.addr" \
        --format >>"$D/metad.log" 2>&1 < /dev/null &
      echo $! > "$D/metad.pid"
    fi
    if ! wait_file "$D/metad.addr" 10; then
      echo "demo: cairn-metad did not start; see $D/metad.log" >&2
      tail -5 "$D/metad.log" >&2
      return 1
    fi
  fi
  local addr; addr=$(tr -d '\n' < "$D/metad.addr")
  echo "${addr##*:}" > "$D/metad.port"
  for i in $(seq 1 $NCHUNK); do
    alive "$D/chunk$i.pid" && continue
    rm -f "$D/chunk$i.addr"
    setsid "$BIN/cairn-chunkd" --data "$D/chunk$i" --listen 127.0.0.1:0 --addr-file "$D/chunk$i.addr" \
      --meta "$addr" --heartbeat-interval 2s >>"$D/chunk$i.log" 2>&1 < /dev/null &
    echo $! > "$D/chunk$i.pid"
  done
  for i in $(seq 1 $NCHUNK); do
    if ! wait_file "$D/chunk$i.addr" 10; then
      echo "demo: cairn-chunkd $i did not start; see $D/chunk$i.log" >&2
      return 1
    fi
  done
  # Wait until metad lists every chunk server.
  local ok=0
  for ((t = 0; t < 100; t++)); do
    local body n=0; body=$(curl -s --max-time 2 "http://$addr/v1/cluster" | tr '\0' ' ')
    for i in $(seq 1 $NCHUNK); do
      grep -qF "$(tr -d '\n' < "$D/chunk$i.addr")" <<<"$body" && n=$((n + 1))
    done
    [ $n -eq $NCHUNK ] && { ok=1; break; }
    sleep 0.1
  done
  [ $ok = 1 ] || { echo "demo: chunk servers did not register with metad" >&2; return 1; }
  setsid "$BIN/cairn-mount" -f --cache-dir "$D/cache" --log-file "$D/mount.log" "$addr" "$MNT" \
    >>"$D/mount.log" 2>&1 < /dev/null &
  echo $! > "$D/mount.pid"
  for ((t = 0; t < 100; t++)); do mountpoint -q "$MNT" && break; sleep 0.1; done
  if ! mountpoint -q "$MNT"; then
    echo "demo: mount failed; see $D/mount.log" >&2
    tail -5 "$D/mount.log" >&2
    return 1
  fi
  cat <<MSG

cairn is mounted at $MNT
  metadata server: $addr   (also in .demo/metad.addr)
  chunk servers:   $(for i in $(seq 1 $NCHUNK); do tr -d '\n' < "$D/chunk$i.addr"; echo -n " "; done)
  data and logs:   $D/

Try:   cp -a /usr/include $MNT/ && ls $MNT/include | head
Stop:  make demo-stop      (data stays in .demo/; make demo brings it back)
MSG
}

stop() {
  if mountpoint -q "$MNT" 2>/dev/null || ! ls "$MNT" >/dev/null 2>&1; then
    fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
  fi
  stop_pid "$D/mount.pid"
  for i in $(seq 1 $NCHUNK); do stop_pid "$D/chunk$i.pid"; done
  stop_pid "$D/metad.pid"
  echo "cairn demo stopped (data kept in $D)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
