#!/bin/bash
# A compiler cache on a cairn mount: ccache with CCACHE_DIR on the mount
# builds this project's libraries twice from clean build dirs; the second
# build is served entirely from the cache and produces identical objects.
. "$(dirname "$0")/lib.sh"

if ! command -v ccache >/dev/null || ! command -v gcc >/dev/null; then
  skip ccache_first_build "ccache or gcc not installed (make deps installs them)"
  skip ccache_second_build_hits "ccache or gcc not installed"
  skip ccache_objects_identical "ccache or gcc not installed"
  finish
fi

MNT=$T/mnt
COPY=$T/src
start_cluster 2 || bail setup "cluster did not start"
mount_fs "$MNT" "$T/cache" || bail setup "mount failed"

# the sources as committed (a tree that builds), else the working tree
mkdir -p "$COPY"
if git -C "$ROOT" rev-parse --verify -q HEAD >/dev/null 2>&1; then
  git -C "$ROOT" archive HEAD | tar -x -C "$COPY" || bail setup "git archive failed"
else
  (cd "$ROOT" && tar -c --exclude='./build*' --exclude=./.git .) | tar -x -C "$COPY"
fi

export CCACHE_DIR=$MNT/ccache
export CCACHE_CONFIGPATH=$T/ccache.conf
: >"$CCACHE_CONFIGPATH"
unset CCACHE_DISABLE CCACHE_RECACHE CCACHE_READONLY CCACHE_NODIRECT CCACHE_PREFIX
mkdir -p "$CCACHE_DIR"

LIBS=(libcommon.a libmeta.a libchunk.a libcache.a libclient.a libcfuse.a)
build() { # BUILD_DIR_NAME
  local b=$1 t=() l
  for l in "${LIBS[@]}"; do t+=("$b/lib/$l"); done
  make -C "$COPY" -j1 BUILD="$b" CC="ccache gcc" "${t[@]}" >"$T/make-$b.log" 2>&1
}
stat_of() { # ID: a counter of ccache --print-stats
  ccache --print-stats | awk -v k="$1" '$1 == k { print $2 }'
}
hits() { echo $(($(stat_of direct_cache_hit) + $(stat_of preprocessed_cache_hit))); }
objects() { # BUILD_DIR_NAME: the objects compiled from .c files (not stdin)
  (cd "$COPY/$1/obj" && find . -name '*.o' ! -name empty.o | LC_ALL=C sort)
}

ccache -z >/dev/null
t0=$SECONDS
if build b1; then
  n1=$(objects b1 | wc -l)
  miss=$(stat_of cache_miss)
  note "first build: $n1 objects in $((SECONDS - t0))s; ccache: $miss misses, $(hits) hits"
  if [ "$n1" -ge 20 ] && [ "$miss" = "$n1" ]; then
    ok ccache_first_build
  else
    fail ccache_first_build "first build: $n1 objects (expected 20 or more), ccache misses $miss (expected $n1: an empty cache)"
  fi
else
  bail ccache_first_build "make failed: $(tail -n 5 "$T/make-b1.log")"
fi

ccache -z >/dev/null
t0=$SECONDS
if build b2; then
  n2=$(objects b2 | wc -l)
  h=$(hits)
  miss=$(stat_of cache_miss)
  note "second build: $n2 objects in $((SECONDS - t0))s; ccache: $h hits, $miss misses"
  if [ "$h" = "$n2" ] && [ "$n2" = "$n1" ] && [ "$miss" = 0 ]; then
    ok ccache_second_build_hits
  else
    fail ccache_second_build_hits "second build from a clean build dir: expected $n1 hits and 0 misses, got $h hits, $miss misses for $n2 objects
$(ccache --print-stats | awk '$2 != 0' | head -n 12 | tr '\n' ' ')"
  fi
else
  fail ccache_second_build_hits "make failed: $(tail -n 5 "$T/make-b2.log")"
fi

sums() { (cd "$COPY/$1/obj" && objects "$1" | xargs -r sha256sum); }
sums b1 >"$T/obj1.sums"
sums b2 >"$T/obj2.sums"
if [ -s "$T/obj1.sums" ] && cmp -s "$T/obj1.sums" "$T/obj2.sums"; then
  ok ccache_objects_identical
else
  fail ccache_objects_identical "object files of the two builds differ (< compiled, > from the cache on cairn):
$(diff "$T/obj1.sums" "$T/obj2.sums" | head -n 8)"
fi

# the cache really lives on the mount: its files are there and readable
n_cached=$(find "$CCACHE_DIR" -type f -name '*R' | wc -l)
if [ "$n_cached" -ge "$n1" ] && ccache_check=$(find "$CCACHE_DIR" -type f -name '*R' -print0 | xargs -0 cat | wc -c) && [ "$ccache_check" -gt 0 ]; then
  ok ccache_results_on_mount
else
  fail ccache_results_on_mount "expected at least $n1 result files (*R) under $CCACHE_DIR, found $n_cached"
fi

# another client (a fresh mount with an empty chunk cache) shares the cache
umount_fs "$MNT" || fail umount_1 "unmount was not clean"
mount_fs "$MNT" "$T/cache2" || bail remount "fresh mount failed"
ccache -z >/dev/null
if build b3; then
  h=$(hits)
  miss=$(stat_of cache_miss)
  sums b3 >"$T/obj3.sums"
  if [ "$h" = "$n1" ] && [ "$miss" = 0 ] && cmp -s "$T/obj1.sums" "$T/obj3.sums"; then
    ok ccache_hits_fresh_mount
  else
    fail ccache_hits_fresh_mount "third build through a fresh mount: expected $n1 hits, 0 misses and identical objects; got $h hits, $miss misses; object diff:
$(diff "$T/obj1.sums" "$T/obj3.sums" | head -n 6)"
  fi
else
  fail ccache_hits_fresh_mount "make failed: $(tail -n 5 "$T/make-b3.log")"
fi

unset CCACHE_DIR
if umount_fs "$MNT"; then ok umount_clean; else fail umount_clean "unmount was not clean"; fi
finish
