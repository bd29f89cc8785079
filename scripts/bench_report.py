#!/usr/bin/env python3
"""Helpers of the cairn benchmark (scripts/bench.sh).

  bench_report.py fio FILE
      Reads fio --output-format=json output of a one-job run and prints
      "MiB/s IOPS p99_us" of the direction that did I/O (p99 of completion
      latency; 0 when fio reported none).

  bench_report.py stats FILE
      Reads `ccache --print-stats` output and prints "hits misses".

  bench_report.py report RESULTS [DOC]
      RESULTS holds "figure<TAB>target<TAB>rep<TAB>value" lines. Prints one
      line per figure: the median of each target over the repetitions, the
      ratios cairn/passthrough and cairn/local, and the target verdict (OK or
      MISSED). With DOC, also writes the Markdown report there.

The run's parameters come from the environment set by bench.sh (BR_*).
"""
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

TARGETS = ("local", "passthrough", "cairn")


def env(name, default=""):
    return os.environ.get(name, default)


def figures():
    """(id, label, unit, higher_is_better, kind, threshold, moosefs, note).

    kind: "pt" compares cairn with passthrough, "local" with the local disk,
    "abs" compares cairn's own value with the threshold, None has no target.
    For higher-is-better figures the target is ratio >= threshold, otherwise
    ratio <= threshold (times, memory)."""
    seq = env("BR_SEQ", "1GiB")
    rnd = env("BR_RAND", "1GiB")
    big = env("BR_BIG", "4GiB")
    nf = env("BR_NFILES", "5000")
    src = env("BR_SRC", "/usr/include")
    rss_limit = 256 + int(env("BR_CACHE_MEM_MIB", "64"))
    return [
        ("seqwrite", "seq write %s" % seq, "MiB/s", True, "pt", 0.80, 0.57,
         "fio write, bs=1M, psync, end_fsync=1 (the fsync is part of the time)"),
        ("seqread_cold", "seq read %s cold" % seq, "MiB/s", True, "pt", 0.75, 0.54,
         "fio read, bs=1M, after drop_caches and a fresh mount (cairn: empty cache dir)"),
        ("seqread_warm", "seq read %s warm" % seq, "MiB/s", True, None, None, None,
         "the same read again right after, the page cache kept (fio --invalidate=0)"),
        ("randread", "rand read 4KiB", "IOPS", True, "pt", 0.30, 0.15,
         "fio randread, bs=4k, psync, iodepth 1, %s s on a %s file laid out beforehand; "
         "fio first drops the file's page cache on the target (its default invalidate=1), "
         "so local reads start from the disk while passthrough_ll reads its backing "
         "file's page cache and cairn its chunk cache" % (env("BR_RUNTIME", "20"), rnd)),
        ("randread_p99", "rand read 4KiB p99", "us", False, None, None, None,
         "99th percentile completion latency of that run"),
        ("randwrite", "rand write 4KiB", "IOPS", True, "pt", 0.40, 0.16,
         "fio randwrite, bs=4k, psync, %s s on the same file, end_fsync=1 (counted)"
         % env("BR_RUNTIME", "20")),
        ("sf_create", "small files create", "files/s", True, "pt", 0.70, 0.10,
         "%s files of 4 KiB in 256 dirs, each written to a temp name and renamed" % nf),
        ("sf_stat_cold", "small files stat cold", "ops/s", True, "pt", 0.60, 0.53,
         "lstat of every file after drop_caches and a fresh mount"),
        ("sf_stat_warm", "small files stat warm", "ops/s", True, "pt", 0.50, 0.02,
         "the same stats again right after"),
        ("sf_read_cold", "small files read cold", "ops/s", True, "pt", 0.50, 0.23,
         "open+read+close of every file after drop_caches and a fresh mount"),
        ("sf_delete", "small files delete", "ops/s", True, "pt", 0.40, 0.26,
         "unlink of every file"),
        ("cp", "cp -a %s" % src, "s", False, "pt", 2.0, 4.2,
         "seconds; the source tree is in the page cache"),
        ("diff", "diff -r %s" % src, "s", False, None, None, None,
         "seconds; diff -r --no-dereference of the copy against the source"),
        ("rm", "rm -rf %s copy" % os.path.basename(src.rstrip("/")), "s", False, None, None, None,
         "seconds"),
        ("ccache_cold", "ccache cold build", "s", False, None, None, None,
         "seconds; make -j%s of cairn with CC=\"ccache gcc\", empty CCACHE_DIR on the target"
         % env("BR_JOBS", "2")),
        ("ccache_warm", "ccache warm build", "s", False, "local", 1.15, 1.22,
         "seconds; the same build from a clean build dir, cache filled by the cold build"),
        ("ccache_hits", "ccache warm hit rate", "%", True, None, None, None,
         "hits / (hits + misses) of the warm build"),
        ("rss_seq", "client RSS %s write" % seq, "MiB", False, "abs", float(rss_limit), 363,
         "VmHWM of cairn-mount, mounted just before the seq write; limit 256 MiB + --cache-mem"),
        ("rss_big", "client RSS %s write" % big, "MiB", False, "abs", float(rss_limit), 363,
         "VmHWM of cairn-mount, mounted just before a %s fio write (bs=1M, end_fsync=1)" % big),
    ]


# ---------------------------------------------------------------- fio / ccache

def cmd_fio(path):
    with open(path) as f:
        text = f.read()
    # fio may print notes before the JSON document
    j = json.loads(text[text.index("{"):])
    job = j["jobs"][0]
    if job.get("error"):
        sys.stderr.write("fio reported error %s\n" % job["error"])
        return 1
    for ddir in ("write", "read"):
        d = job[ddir]
        if d["io_bytes"] > 0:
            p99 = 0.0
            pct = d.get("clat_ns", {}).get("percentile") or {}
            if "99.000000" in pct:
                p99 = pct["99.000000"] / 1000.0
            print("%.3f %.3f %.3f" % (d["bw_bytes"] / 1048576.0, d["iops"], p99))
            return 0
    sys.stderr.write("fio did no I/O\n")
    return 1


def cmd_stats(path):
    vals = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                vals[parts[0]] = parts[1]

    def num(k):
        try:
            return int(vals.get(k, 0))
        except ValueError:
            return 0
    hits = num("direct_cache_hit") + num("preprocessed_cache_hit")
    print("%d %d" % (hits, num("cache_miss")))
    return 0


# ---------------------------------------------------------------- report

def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1000:
        return "%.0f" % v
    if a >= 100:
        return "%.1f" % v
    if a >= 10:
        return "%.2f" % v
    return "%.3f" % v


def load(path):
    data = {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 4:
                continue
            fig, target, _rep, value = parts
            data.setdefault((fig, target), []).append(float(value))
    return data


def evaluate(data):
    rows = []
    for fid, label, unit, hib, kind, thr, mfs, note in figures():
        med = {}
        n = {}
        for t in TARGETS:
            vals = data.get((fid, t))
            if vals:
                med[t] = statistics.median(vals)
                n[t] = len(vals)
        if not med:
            continue
        c = med.get("cairn")
        r_pt = c / med["passthrough"] if c is not None and med.get("passthrough") else None
        r_loc = c / med["local"] if c is not None and med.get("local") else None
        verdict, tdesc = None, ""
        if kind is not None:
            op = ">=" if hib else "<="
            if kind == "abs":
                tdesc = "%s %.0f %s" % (op, thr, unit)
                val = c
            elif kind == "pt":
                tdesc = "cairn/pt %s %.2f" % (op, thr)
                val = r_pt
            else:
                tdesc = "cairn/local %s %.2f" % (op, thr)
                val = r_loc
            if val is None:
                verdict = "NO DATA"
            else:
                ok = val >= thr if hib else val <= thr
                verdict = "OK" if ok else "MISSED"
        rows.append(dict(id=fid, label=label, unit=unit, hib=hib, kind=kind, thr=thr,
                         mfs=mfs, note=note, med=med, n=n, r_pt=r_pt, r_loc=r_loc,
                         verdict=verdict, tdesc=tdesc))
    return rows


def line_of(r):
    s = "%-26s" % r["label"]
    first = True
    for t in TARGETS:
        if t in r["med"]:
            v = fmt(r["med"][t])
            if first:
                v += " " + r["unit"]
                first = False
            s += "  %s %-10s" % (t, v)
    if r["kind"] == "abs":
        s += "  (target %s %s)" % (r["tdesc"], r["verdict"])
        return s.rstrip()
    if r["id"] == "ccache_hits":
        return s.rstrip()
    if r["r_pt"] is not None:
        s += "  cairn/pt %.2f" % r["r_pt"]
        if r["kind"] == "pt":
            s += " (target %s %.2f %s)" % (">=" if r["hib"] else "<=", r["thr"], r["verdict"])
    if r["r_loc"] is not None:
        s += "  cairn/local %.2f" % r["r_loc"]
        if r["kind"] == "local":
            s += " (target %s %.2f %s)" % (">=" if r["hib"] else "<=", r["thr"], r["verdict"])
    return s.rstrip()


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=20).stdout.strip()
    except Exception:
        return ""


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    work = env("BR_WORK", "/var/tmp")
    src = sh("findmnt -no SOURCE -T %s" % work)
    fstype = sh("findmnt -no FSTYPE -T %s" % work)
    dev = os.path.basename(src)
    disk = sh("lsblk -dno NAME,SIZE,ROTA,TYPE /dev/%s" % dev) if dev else ""
    parts = disk.split()
    if len(parts) >= 3:
        kind = "rotational" if parts[2] == "1" else "non-rotational"
        drv = os.path.basename(os.path.realpath("/sys/block/%s/device/driver" % parts[0]))
        disk = "%s, %s%s, reported %s" % (parts[0], parts[1],
                                         ", %s" % drv if drv and drv != "driver" else "", kind)
    virt = sh("systemd-detect-virt 2>/dev/null")
    try:
        osname = platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except Exception:
        osname = ""
    return [
        ("CPU", "%s x %s%s" % (os.cpu_count(), model or "?",
                               " (%s guest)" % virt if virt and virt != "none" else "")),
        ("Memory", "%.1f GiB" % (mem_kb / 1048576.0)),
        ("Disk", "%s; %s file system, work dir under %s" % (disk or src or "?", fstype or "?",
                                                             os.path.dirname(work) or work)),
        ("Kernel", platform.release()),
        ("OS", osname or "?"),
        ("Tools", "%s, %s, %s, libfuse %s" % (sh("fio --version"),
                                              sh("ccache --version | head -n1"),
                                              sh("gcc --version | head -n1"),
                                              sh("pkg-config --modversion fuse3"))),
        ("cairn commit", sh("git -C %s rev-parse --short HEAD" % env("BR_ROOT", ".")) or "?"),
        ("Date", datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")),
    ]


def write_doc(path, rows, missing, data):
    reps = env("BR_REPS", "3")
    cmd = env("BR_CMD", "make bench")
    out = []
    w = out.append
    w("# cairn benchmarks")
    w("")
    w("Produced by `make bench` (scripts/bench.sh); this file is rewritten by every full run.")
    w("Each figure is the median of %s repetitions. Within a repetition every test runs" % reps)
    w("against the three targets in turn (local, passthrough, cairn):")
    w("")
    w("- **local**: a plain directory on the same disk and file system;")
    w("- **passthrough**: libfuse's `passthrough_ll` example (Debian's libfuse3-dev, built at")
    w("  bench time, default caching options) exporting such a directory: the FUSE limit;")
    w("- **cairn**: a fresh local cluster, 1 cairn-metad and 3 cairn-chunkd on 127.0.0.1,")
    w("  two replicas per chunk, 4 MiB chunks, mounted by cairn-mount with %s." % env(
        "BR_MOUNT_OPTS", "its default options"))
    w("")
    w("All three, the cluster's data and the client's cache dir share one disk, and the")
    w("servers, the client and the load share the CPUs, so cairn pays for both replicas'")
    w("writes and for the servers' CPU time. Writes go to the chunk servers over HTTP;")
    w("reads of chunks not cached take the chunk servers' files on this machine directly")
    w("(cairn-mount --local-reads, the default; see README), as they would on any client")
    w("that runs beside a chunk server.")
    w("")
    w("## Machine")
    w("")
    for k, v in machine():
        w("- %s: %s" % (k, v))
    w("")
    w("## Command")
    w("")
    w("```sh")
    w(cmd)
    w("```")
    w("")
    w("## Results")
    w("")
    w("Ratios are cairn's median over the other target's median: for rates higher is")
    w("better, for times and memory lower is better. The MooseFS column is MooseFS's")
    w("ratio in the same comparison, given in the issue that set the targets.")
    w("")
    w("| figure | unit | local | passthrough | cairn | cairn/pt | cairn/local | target | MooseFS | verdict |")
    w("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |")
    for r in rows:
        med = r["med"]
        mfs = ""
        if r["mfs"] is not None:
            mfs = ("%.0f MiB" % r["mfs"]) if r["kind"] == "abs" else "%.2f" % r["mfs"]
        w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["label"], r["unit"],
            fmt(med.get("local")), fmt(med.get("passthrough")), fmt(med.get("cairn")),
            "%.2f" % r["r_pt"] if r["r_pt"] is not None and r["id"] != "ccache_hits" else "",
            "%.2f" % r["r_loc"] if r["r_loc"] is not None and r["id"] != "ccache_hits" else "",
            r["tdesc"], mfs, r["verdict"] or ""))
    w("")
    ok = sum(1 for r in rows if r["verdict"] == "OK")
    bad = [r["label"] for r in rows if r["verdict"] in ("MISSED", "NO DATA")]
    w("Targets met: %d of %d.%s" % (ok, ok + len(bad),
                                   (" Missed: " + "; ".join(bad) + ".") if bad else ""))
    if missing:
        w("")
        w("Runs that failed:")
        w("")
        for m in missing:
            w("- " + m)
    w("")
    w("## What each figure measures")
    w("")
    for r in rows:
        w("- **%s** (%s): %s." % (r["label"], r["unit"], r["note"]))
    w("")
    w("## Every repetition")
    w("")
    w("| figure | unit | local | passthrough | cairn |")
    w("| --- | --- | --- | --- | --- |")
    for r in rows:
        cells = []
        for t in TARGETS:
            vals = data.get((r["id"], t), [])
            cells.append(", ".join(fmt(v) for v in vals) if vals else "-")
        w("| %s | %s | %s |" % (r["label"], r["unit"], " | ".join(cells)))
    w("")
    w("## How")
    w("")
    w("fio runs use `--ioengine=psync --direct=0 --numjobs=1 --fallocate=none`. \"Fresh mount\"")
    w("means: unmount, empty cairn's cache dir, `sync; echo 3 > /proc/sys/vm/drop_caches`,")
    w("mount again (passthrough is remounted too, which closes the descriptors it holds).")
    w("")
    with open(path, "w") as f:
        f.write("\n".join(out))


def cmd_report(results, doc=None):
    data = load(results)
    rows = evaluate(data)
    missing = [e for e in env("BR_ERRORS").split("\n") if e.strip()]
    for r in rows:
        print(line_of(r))
    ok = sum(1 for r in rows if r["verdict"] == "OK")
    bad = [r["label"] for r in rows if r["verdict"] in ("MISSED", "NO DATA")]
    print("targets: %d met, %d missed%s" % (ok, len(bad), (": " + "; ".join(bad)) if bad else ""))
    if doc:
        write_doc(doc, rows, missing, data)
        print("wrote %s" % doc)
    return 0


def main():
    a = sys.argv[1:]
    if len(a) == 2 and a[0] == "fio":
        return cmd_fio(a[1])
    if len(a) == 2 and a[0] == "stats":
        return cmd_stats(a[1])
    if len(a) in (2, 3) and a[0] == "report":
        return cmd_report(a[1], a[2] if len(a) == 3 else None)
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
