/*
 * status.c — `cairn status` and `cairn df` (see cli.h, man/cairn.1).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/err.h"
#include "common/fsrec.h"
#include "common/util.h"

static void print_fsinfo(const mc_fsinfo *fs)
{
    char hex[33];
    hex_encode(fs->fsid, sizeof fs->fsid, hex);
    printf("filesystem %s: chunk size %" PRIu64 " KiB, replicas %u (writes need %u), inline "
           "max %u bytes\n",
           hex, fs->chunk_size >> 10, fs->replicas, fs->min_replicas, fs->inline_max);
}

/* "3.2s ago" for a heartbeat time, "-" when unknown. */
static const char *ago(int64_t ns, char *out, size_t len)
{
    if (ns <= 0) {
        snprintf(out, len, "-");
        return out;
    }
    double s = (double)(now_realtime_ns() - ns) / 1e9;
    if (s < 0)
        s = 0;
    if (s < 120)
        snprintf(out, len, "%.1fs", s);
    else if (s < 7200)
        snprintf(out, len, "%.0fm", s / 60);
    else
        snprintf(out, len, "%.0fh", s / 3600);
    return out;
}

int cli_cmd_status(cli *c, int argc, char **argv)
{
    (void)argv;
    if (argc != 0) {
        fprintf(stderr, "usage: cairn status\n");
        return 2;
    }
    mc_fsinfo fs;
    int rc = mc_fsinfo_get(c->meta, &fs);
    if (rc < 0) {
        fprintf(stderr, "cairn: metad %s: fsinfo: %s\n", c->o.meta, cairn_strerror(rc));
        return 2;
    }
    static cli_map map;
    if ((rc = cli_map_get(c, &map)) < 0) {
        fprintf(stderr, "cairn: metad %s: cluster map: %s\n", c->o.meta, cairn_strerror(rc));
        return 2;
    }
    printf("metad %s, cluster map epoch %" PRIu64 "\n", c->o.meta, map.epoch);
    print_fsinfo(&fs);
    unsigned counts[5] = {0};
    uint64_t chunks = 0;
    for (size_t i = 0; i < map.n; i++) {
        if (map.servers[i].state < 5)
            counts[map.servers[i].state]++;
        chunks += map.servers[i].chunks;
    }
    printf("servers %zu: %u up, %u full, %u draining, %u down; %" PRIu64
           " chunk copies\n\n",
           map.n, counts[SERVER_UP], counts[SERVER_FULL], counts[SERVER_DRAINING],
           counts[SERVER_DOWN], chunks);
    printf("%-4s %-22s %-9s %10s %10s %5s %9s %9s\n", "ID", "ADDRESS", "STATE", "CAPACITY",
           "USED", "USE%", "CHUNKS", "SEEN");
    /* In id order, which is stable across calls (the map is not). */
    uint32_t last = 0;
    for (size_t k = 0; k < map.n; k++) {
        const cli_server *s = NULL;
        for (size_t i = 0; i < map.n; i++)
            if (map.servers[i].id > last && (!s || map.servers[i].id < s->id))
                s = &map.servers[i];
        if (!s)
            break;
        last = s->id;
        char cap[32], used[32], seen[32];
        double pct = s->capacity ? 100.0 * (double)s->used / (double)s->capacity : 0;
        printf("%-4u %-22s %-9s %10s %10s %4.0f%% %9" PRIu64 " %9s\n", s->id, s->addr,
               cli_state_name(s->state), cli_size(c, s->capacity, cap, sizeof cap),
               cli_size(c, s->used, used, sizeof used), pct, s->chunks,
               ago(s->last_seen_ns, seen, sizeof seen));
    }
    return 0;
}

int cli_cmd_df(cli *c, int argc, char **argv)
{
    (void)argv;
    if (argc != 0) {
        fprintf(stderr, "usage: cairn df\n");
        return 2;
    }
    mc_fsinfo fs;
    mc_statfs st;
    int rc = mc_fsinfo_get(c->meta, &fs);
    if (rc == 0)
        rc = mc_statfs_get(c->meta, &st);
    if (rc < 0) {
        fprintf(stderr, "cairn: metad %s: %s\n", c->o.meta, cairn_strerror(rc));
        return 2;
    }
    static cli_map map;
    if ((rc = cli_map_get(c, &map)) < 0) {
        fprintf(stderr, "cairn: metad %s: cluster map: %s\n", c->o.meta, cairn_strerror(rc));
        return 2;
    }
    uint64_t raw_cap = 0, raw_used = 0, down_cap = 0;
    for (size_t i = 0; i < map.n; i++) {
        if (map.servers[i].state == SERVER_DOWN) {
            down_cap += map.servers[i].capacity;
            continue;
        }
        raw_cap += map.servers[i].capacity;
        raw_used += map.servers[i].used;
    }
    char a[32], b[32], d[32];
    uint64_t total = st.total, avail = st.free, used = total > avail ? total - avail : 0;
    printf("%-24s %10s %10s %10s %5s %12s %12s\n", "FILESYSTEM", "SIZE", "USED", "AVAIL", "USE%",
           "FILES", "FREE INODES");
    char name[96];
    snprintf(name, sizeof name, "cairn@%s", c->o.meta);
    printf("%-24s %10s %10s %10s %4.0f%% %12" PRIu64 " %12" PRIu64 "\n", name,
           cli_size(c, total, a, sizeof a), cli_size(c, used, b, sizeof b),
           cli_size(c, avail, d, sizeof d), total ? 100.0 * (double)used / (double)total : 0,
           st.files, st.ffree);
    printf("\nraw: %s of %s used on the chunk servers that are not down (each chunk is kept "
           "%u times)",
           cli_size(c, raw_used, a, sizeof a), cli_size(c, raw_cap, b, sizeof b), fs.replicas);
    if (down_cap)
        printf("; %s on servers that are down", cli_size(c, down_cap, d, sizeof d));
    printf("\n");
    return 0;
}
