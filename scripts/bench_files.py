#!/usr/bin/env python3
"""Small-file phases of the cairn benchmark (scripts/bench.sh).

A build-cache pattern: N files of 4 KiB spread over 256 fan-out directories
named 00..ff (as ccache and similar caches lay them out). Each phase is timed
inside this process (interpreter start-up is not counted) and prints one line:

    OPS SECONDS

Phases (DIR is the root of the tree, N the number of files):
  create DIR N   make the 256 directories (not timed), then write every file
                 to a temporary name in its directory and rename it into place
  stat DIR N     lstat every file
  read DIR N     open, read and close every file (contents checked after the
                 timed loop)
  delete DIR N   unlink every file (the directories are removed, not timed)

Any error, or a file whose contents differ from what was written, ends the
program with a message naming the file and exit status 1.
"""
import os
import random
import sys
import time

SIZE = 4096
FANOUT = 256


def path_of(root, i):
    return os.path.join(root, "%02x" % (i % FANOUT), "f%06d" % i)


def content(i):
    # Distinct, reproducible contents per file (no two files are equal).
    return random.Random(i).randbytes(SIZE)


def create(root, n):
    for d in range(FANOUT):
        os.makedirs(os.path.join(root, "%02x" % d), exist_ok=True)
    data = [content(i) for i in range(n)]
    pid = os.getpid()
    t0 = time.perf_counter()
    for i in range(n):
        final = path_of(root, i)
        tmp = "%s.tmp.%d" % (final, pid)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            if os.write(fd, data[i]) != SIZE:
                raise OSError("short write to %s" % tmp)
        finally:
            os.close(fd)
        os.rename(tmp, final)
    return time.perf_counter() - t0


def stat(root, n):
    t0 = time.perf_counter()
    for i in range(n):
        st = os.lstat(path_of(root, i))
        if st.st_size != SIZE:
            raise OSError("%s: size %d, expected %d" % (path_of(root, i), st.st_size, SIZE))
    return time.perf_counter() - t0


def read(root, n):
    got = [None] * n
    t0 = time.perf_counter()
    for i in range(n):
        fd = os.open(path_of(root, i), os.O_RDONLY)
        try:
            got[i] = os.read(fd, SIZE + 1)
        finally:
            os.close(fd)
    dt = time.perf_counter() - t0
    for i in range(n):
        if got[i] != content(i):
            raise OSError("%s: contents differ from what was written (%d bytes read)"
                          % (path_of(root, i), len(got[i])))
    return dt


def delete(root, n):
    t0 = time.perf_counter()
    for i in range(n):
        os.unlink(path_of(root, i))
    dt = time.perf_counter() - t0
    for d in range(FANOUT):
        os.rmdir(os.path.join(root, "%02x" % d))
    return dt


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("create", "stat", "read", "delete"):
        sys.stderr.write("usage: bench_files.py create|stat|read|delete DIR N\n")
        return 2
    phase, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    try:
        dt = globals()[phase](root, n)
    except OSError as e:
        sys.stderr.write("bench_files.py %s: %s\n" % (phase, e))
        return 1
    print("%d %.6f" % (n, dt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
