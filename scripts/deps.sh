#!/bin/bash
# Checks the Debian packages cairn needs to build and test; as root installs
# the missing ones with apt-get, otherwise prints the command to run.
set -u
QUIET=0
[ "${1:-}" = "--quiet" ] && QUIET=1

# pkg-config module or header path -> Debian package
LIBS=(
  "pc:fuse3:libfuse3-dev"
  "pc:libcurl:libcurl4-openssl-dev"
  "pc:libmicrohttpd:libmicrohttpd-dev"
  "pc:libcrypto:libssl-dev"
  "pc:libzstd:libzstd-dev"
  "pc:cmocka:libcmocka-dev"
  "h:/usr/include/uthash.h:uthash-dev"
  "h:/usr/include/isa-l/crc.h:libisal-dev"
)
# command -> Debian package (tools the build and tests run)
TOOLS=(
  "pkg-config:pkg-config"
  "gcc:gcc"
  "make:make"
  "fusermount3:fuse3"
  "curl:curl"
  "rsync:rsync"
  "fio:fio"
  "ccache:ccache"
  "sqlite3:sqlite3"
  "git:git"
  "setfattr:attr"
  "python3:python3"
  "tar:tar"
  "diff:diffutils"
  "sha256sum:coreutils"
  "timeout:coreutils"
  "ps:procps"
  "mountpoint:util-linux"
)

missing=()
for e in "${LIBS[@]}"; do
  kind=${e%%:*}; rest=${e#*:}; what=${rest%%:*}; pkg=${rest#*:}
  if [ "$kind" = pc ]; then
    pkg-config --exists "$what" 2>/dev/null || missing+=("$pkg")
  else
    [ -f "$what" ] || missing+=("$pkg")
  fi
done
for e in "${TOOLS[@]}"; do
  cmd=${e%%:*}; pkg=${e#*:}
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
# pkg-config itself may be what is missing; then every pc probe failed.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk 'NF && !seen[$0]++')

if [ ${#missing[@]} -eq 0 ]; then
  [ $QUIET = 1 ] || echo "deps: all present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q "${missing[@]}" >/tmp/cairn-deps.log 2>&1; then
  apt-get update -q >>/tmp/cairn-deps.log 2>&1
  if ! apt-get install -y -q "${missing[@]}" >>/tmp/cairn-deps.log 2>&1; then
    echo "deps: apt-get install failed; see /tmp/cairn-deps.log" >&2
    tail -20 /tmp/cairn-deps.log >&2
    exit 1
  fi
fi
echo "deps: installed ${missing[*]}"
