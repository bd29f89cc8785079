/*
 * fsck.c — `cairn fsck`: walk the namespace (readdir + map from metad) and
 * check that every chunk a file references has its R copies on the chunk
 * servers (one POST /chunks/query per server per batch of ids).
 *
 * Per distinct chunk the copies held by the servers that answered are
 * counted, and compared with its placement (the first R servers that are
 * UP or FULL in weighted HRW order, as the client and the chunk servers'
 * repair pass rank them):
 *   ok                exactly R copies, on its R target servers
 *   under-replicated  1..R-1 copies
 *   missing           no copy at all (reads of it fail): exit status 1
 *   misplaced         R or more copies, but some target lacks one (repair
 *                     moves it)
 *   extra             its targets hold it and so does some other server
 *                     (repair drops the extra copy)
 * --strict makes anything but ok fail. DOWN servers are not asked (their
 * copies are not readable); a server that does not answer is reported and
 * its copies are not counted.
 *
 * The walk is not a snapshot: files written during it may show chunks
 * that are still being uploaded or repaired. Memory: one hash entry per
 * distinct chunk id (about 100 bytes) and per hard-linked inode, the queue
 * of directories still to list, and one batch of ids with its file paths.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uthash.h>

#include "cli/cli.h"
#include "common/err.h"
#include "common/fsrec.h"
#include "common/util.h"

#define FSCK_BATCH 4096
#define FSCK_EXAMPLES 10

enum { K_OK, K_UNDER, K_MISSING, K_MISPLACED, K_EXTRA, K_N };
static const char *const kind_names[K_N] = {"ok", "under-replicated", "missing", "misplaced",
                                            "extra"};

typedef struct seen_id {
    uint8_t id[CHUNK_ID_LEN];
    UT_hash_handle hh;
} seen_id;

typedef struct seen_ino {
    uint64_t ino;
    UT_hash_handle hh;
} seen_ino;

typedef struct pending {
    uint8_t id[CHUNK_ID_LEN];
    size_t path;              /* index into fsck.paths */
    uint64_t slot;
} pending;

typedef struct fsck {
    cli *c;
    mc_fsinfo fs;
    cli_map *map;
    uint8_t asked[CLI_MAX_SERVERS];     /* server i is queried */
    uint8_t failed[CLI_MAX_SERVERS];    /* server i did not answer */
    seen_id *ids;
    seen_ino *inos;
    pending batch[FSCK_BATCH];
    size_t nbatch;
    char **paths;
    size_t npaths, cap_paths;
    uint64_t dirs, files, chunks, errors;
    uint64_t kinds[K_N];
    int64_t last_progress_ms;
} fsck;

static void progress(fsck *f, int final)
{
    if (f->c->o.quiet)
        return;
    int64_t now = now_mono_ms();
    if (!final && now - f->last_progress_ms < 1000)
        return;
    f->last_progress_ms = now;
    int tty = isatty(2);
    fprintf(stderr, "%sfsck: %" PRIu64 " directories, %" PRIu64 " files, %" PRIu64
                    " chunks checked%s",
            tty ? "\r" : "", f->dirs, f->files, f->chunks - f->nbatch,
            tty && !final ? "" : "\n");
    fflush(stderr);
}

static void report(fsck *f, int kind, const pending *p, unsigned copies)
{
    f->kinds[kind]++;
    if (kind == K_OK || (f->kinds[kind] > FSCK_EXAMPLES && kind != K_MISSING))
        return;
    char hex[CHUNK_ID_HEX + 1];
    chunk_id_hex(p->id, hex);
    if (!f->c->o.quiet && isatty(2))
        fputs("\r\033[K", stderr);
    printf("%s chunk %s (%u of %u copies) in %s at offset %" PRIu64 "\n", kind_names[kind], hex,
           copies, f->fs.replicas, f->paths[p->path], p->slot * f->fs.chunk_size);
}

/* Ask every server about the batch and classify each chunk. */
static void check_batch(fsck *f)
{
    if (!f->nbatch)
        return;
    size_t n = f->nbatch;
    uint8_t (*ids)[CHUNK_ID_LEN] = xmalloc(n * CHUNK_ID_LEN);
    for (size_t i = 0; i < n; i++)
        memcpy(ids[i], f->batch[i].id, CHUNK_ID_LEN);
    uint8_t *held = xcalloc(n * f->map->n, 1);   /* held[i * nservers + s] */
    uint8_t *bits = xmalloc(n);
    for (size_t s = 0; s < f->map->n; s++) {
        if (!f->asked[s] || f->failed[s])
            continue;
        const cli_server *sv = &f->map->servers[s];
        int rc = cli_query(f->c, sv->addr, (const uint8_t(*)[CHUNK_ID_LEN])ids, n, bits);
        if (rc < 0) {
            fprintf(stderr, "cairn: server %" PRIu32 " (%s) does not answer queries: %s; its "
                            "copies are not counted\n",
                    sv->id, sv->addr, cairn_strerror(rc));
            f->failed[s] = 1;
            continue;
        }
        for (size_t i = 0; i < n; i++)
            held[i * f->map->n + s] = bits[i] == 1;
    }
    unsigned R = f->fs.replicas;
    for (size_t i = 0; i < n; i++) {
        size_t order[CLI_MAX_SERVERS];
        size_t nt = cli_rank(f->map, ids[i],
                             CLI_STATE(SERVER_UP) | CLI_STATE(SERVER_FULL), order);
        nt = MIN(nt, (size_t)R);
        unsigned copies = 0, on_target = 0;
        for (size_t s = 0; s < f->map->n; s++)
            copies += held[i * f->map->n + s];
        for (size_t t = 0; t < nt; t++)
            on_target += held[i * f->map->n + order[t]];
        int kind;
        if (copies == 0)
            kind = K_MISSING;
        else if (copies < R)
            kind = K_UNDER;
        else if (on_target < nt || nt < R)
            kind = K_MISPLACED;
        else if (copies > on_target)
            kind = K_EXTRA;
        else
            kind = K_OK;
        report(f, kind, &f->batch[i], copies);
    }
    free(bits);
    free(held);
    free(ids);
    for (size_t i = 0; i < f->npaths; i++)
        free(f->paths[i]);
    f->npaths = 0;
    f->nbatch = 0;
    progress(f, 0);
}

static size_t add_path(fsck *f, const char *path)
{
    if (f->npaths == f->cap_paths) {
        f->cap_paths = f->cap_paths ? f->cap_paths * 2 : 64;
        f->paths = xrealloc(f->paths, f->cap_paths * sizeof *f->paths);
    }
    f->paths[f->npaths] = xstrdup(path);
    return f->npaths++;
}

static void check_file(fsck *f, uint64_t ino, uint32_t nlink, const char *path)
{
    if (nlink > 1) {
        seen_ino *si;
        HASH_FIND(hh, f->inos, &ino, sizeof ino, si);
        if (si)
            return;
        si = xcalloc(1, sizeof *si);
        si->ino = ino;
        HASH_ADD(hh, f->inos, ino, sizeof ino, si);
    }
    mc_inode in;
    memset(&in, 0, sizeof in);
    int rc = mc_map(f->c->meta, ino, NULL, &in);
    if (rc < 0) {
        if (rc != -ENOENT) {
            fprintf(stderr, "cairn: %s: map: %s\n", path, cairn_strerror(rc));
            f->errors++;
        }
        return;
    }
    f->files++;
    size_t pidx = (size_t)-1;
    for (size_t i = 0; i < in.nslots; i++) {
        seen_id *s;
        HASH_FIND(hh, f->ids, in.slots[i].id, CHUNK_ID_LEN, s);
        if (s)
            continue;
        s = xmalloc(sizeof *s);
        memcpy(s->id, in.slots[i].id, CHUNK_ID_LEN);
        HASH_ADD(hh, f->ids, id, CHUNK_ID_LEN, s);
        f->chunks++;
        if (pidx == (size_t)-1)
            pidx = add_path(f, path);
        pending *p = &f->batch[f->nbatch++];
        memcpy(p->id, s->id, CHUNK_ID_LEN);
        p->path = pidx;
        p->slot = in.slots[i].index;
        if (f->nbatch == FSCK_BATCH) {
            check_batch(f);
            pidx = (size_t)-1;
        }
    }
    mc_inode_clear(&in);
}

typedef struct dir_item {
    uint64_t ino;
    char *path;
} dir_item;

/* Breadth-first walk from the root. */
static void walk(fsck *f)
{
    size_t cap = 64, head = 0, tail = 0;
    dir_item *q = xmalloc(cap * sizeof *q);
    q[tail++] = (dir_item){FS_ROOT_INO, xstrdup("")};
    while (head < tail) {
        dir_item d = q[head++];
        f->dirs++;
        uint64_t cursor = 0;
        int eof = 0;
        while (!eof) {
            mc_dirent *ents;
            size_t n;
            uint64_t next;
            int rc = mc_readdir(f->c->meta, d.ino, cursor, 1024, &ents, &n, &next, &eof);
            if (rc < 0) {
                if (rc != -ENOENT) {
                    fprintf(stderr, "cairn: %s/: readdir: %s\n", d.path, cairn_strerror(rc));
                    f->errors++;
                }
                break;
            }
            for (size_t i = 0; i < n; i++) {
                char *p = xasprintf("%s/%s", d.path, ents[i].name);
                if (S_ISDIR(ents[i].a.mode)) {
                    if (tail == cap) {
                        /* Reuse the consumed front before growing. */
                        memmove(q, q + head, (tail - head) * sizeof *q);
                        tail -= head;
                        head = 0;
                        if (tail == cap) {
                            cap *= 2;
                            q = xrealloc(q, cap * sizeof *q);
                        }
                    }
                    q[tail++] = (dir_item){ents[i].a.ino, p};
                    continue;
                }
                if (S_ISREG(ents[i].a.mode))
                    check_file(f, ents[i].a.ino, ents[i].a.nlink, p);
                free(p);
            }
            mc_dirents_free(ents, n);
            if (n == 0 && !eof && next == cursor)
                break; /* no progress: do not spin */
            cursor = next;
            progress(f, 0);
        }
        free(d.path);
    }
    free(q);
}

int cli_cmd_fsck(cli *c, int argc, char **argv)
{
    (void)argv;
    if (argc != 0) {
        fprintf(stderr, "usage: cairn fsck [--strict] [--quiet]\n");
        return 2;
    }
    fsck *f = xcalloc(1, sizeof *f);
    f->c = c;
    int rc = mc_fsinfo_get(c->meta, &f->fs);
    int status = 2;
    if (rc < 0) {
        fprintf(stderr, "cairn: metad %s: fsinfo: %s\n", c->o.meta, cairn_strerror(rc));
        goto out;
    }
    f->map = xcalloc(1, sizeof *f->map);
    if ((rc = cli_map_get(c, f->map)) < 0) {
        fprintf(stderr, "cairn: metad %s: cluster map: %s\n", c->o.meta, cairn_strerror(rc));
        goto out;
    }
    unsigned down = 0;
    for (size_t s = 0; s < f->map->n; s++) {
        f->asked[s] = f->map->servers[s].state != SERVER_DOWN;
        down += !f->asked[s];
    }
    if (down)
        fprintf(stderr, "cairn: %u server(s) down; their copies are not counted\n", down);
    walk(f);
    check_batch(f);
    progress(f, 1);

    printf("files %" PRIu64 ", distinct chunks %" PRIu64 ", replicas %u\n", f->files, f->chunks,
           f->fs.replicas);
    for (int k = 0; k < K_N; k++) {
        printf("%-17s %" PRIu64, kind_names[k], f->kinds[k]);
        if (k != K_OK && k != K_MISSING && f->kinds[k] > FSCK_EXAMPLES)
            printf(" (first %d listed)", FSCK_EXAMPLES);
        printf("\n");
    }
    unsigned unreachable = 0;
    for (size_t s = 0; s < f->map->n; s++)
        unreachable += f->failed[s];
    if (unreachable)
        printf("servers not answering: %u\n", unreachable);
    if (f->errors)
        printf("namespace errors: %" PRIu64 "\n", f->errors);
    int bad = f->kinds[K_MISSING] > 0 || f->errors > 0;
    if (c->o.strict)
        bad |= f->kinds[K_UNDER] + f->kinds[K_MISPLACED] + f->kinds[K_EXTRA] > 0 ||
               unreachable > 0;
    printf("%s\n", bad ? "FAILED" : "OK");
    status = bad ? 1 : 0;
out:
    {
        seen_id *s, *tmp;
        HASH_ITER(hh, f->ids, s, tmp) {
            HASH_DEL(f->ids, s);
            free(s);
        }
        seen_ino *si, *tmpi;
        HASH_ITER(hh, f->inos, si, tmpi) {
            HASH_DEL(f->inos, si);
            free(si);
        }
    }
    for (size_t i = 0; i < f->npaths; i++)
        free(f->paths[i]);
    free(f->paths);
    free(f->map);
    free(f);
    return status;
}
