#!/bin/bash
# remount.sh PIDFILE MNT LOG [--wipe DIR] -- MOUNT_CMD...
#
# fsx --remount-cmd helper (fsx runs it with system(), in a new shell, so
# everything it needs comes in its arguments): unmount MNT, wait for the
# cairn-mount whose pid is in PIDFILE to exit, optionally empty a cache
# directory, start MOUNT_CMD (a foreground cairn-mount) in the background
# with its output appended to LOG, write its pid to PIDFILE and wait until
# MNT is a mountpoint again. Every wait is bounded; exit status 0 only when
# the new mount is up.
set -u
if [ $# -lt 5 ]; then
  echo "usage: remount.sh PIDFILE MNT LOG [--wipe DIR] -- MOUNT_CMD..." >&2
  exit 2
fi
PIDFILE=$1 MNT=$2 LOG=$3
shift 3
WIPE=
if [ "$1" = --wipe ]; then
  WIPE=$2
  shift 2
fi
[ "$1" = -- ] && shift

alive() { # a zombie counts as gone
  local st
  [ -r "/proc/$1/stat" ] || return 1
  st=$(cut -d')' -f2 "/proc/$1/stat" 2>/dev/null | awk '{print $1}')
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# poll CMD... every 0.1 s for at most LIMIT seconds
poll() {
  local limit=$1
  shift
  local end=$((SECONDS + limit))
  until "$@"; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.1
  done
}

old=$(cat "$PIDFILE" 2>/dev/null)
if mountpoint -q "$MNT"; then
  # "busy" just after the last close can be transient
  if ! poll 10 fusermount3 -u "$MNT" 2>/dev/null; then
    echo "remount.sh: fusermount3 -u $MNT failed: $(fusermount3 -u "$MNT" 2>&1)" >&2
    exit 1
  fi
fi
if [ -n "$old" ] && ! poll 60 eval '! alive '"$old"; then
  echo "remount.sh: cairn-mount (pid $old) still running 60 s after unmount" >&2
  exit 1
fi
if [ -n "$WIPE" ]; then
  rm -rf "$WIPE"
  mkdir -p "$WIPE"
fi
"$@" </dev/null >>"$LOG" 2>&1 &
new=$!
echo "$new" >"$PIDFILE"
if ! poll 20 eval 'mountpoint -q "$MNT" || ! alive '"$new"; then
  echo "remount.sh: $MNT not mounted 20 s after starting cairn-mount (pid $new)" >&2
  exit 1
fi
if ! mountpoint -q "$MNT"; then
  echo "remount.sh: cairn-mount (pid $new) exited before mounting $MNT: $(tail -n 3 "$LOG")" >&2
  exit 1
fi
exit 0
