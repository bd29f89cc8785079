/*
 * persist.c — WAL glue, recovery and snapshots of cairn-metad (persist.h).
 */
#include "server/meta/persist.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "server/meta/snap.h"

#define EXIT_WAL_FAILED 3

struct persist {
    persist_config cfg;
    pthread_mutex_t mu;         /* leaf: guards requested/stop and stats */
    pthread_cond_t cv;
    int requested, stop, running;
    pthread_t thread;
    pthread_mutex_t snap_mu;    /* one snapshot at a time (thread or shutdown) */
    uint64_t since;             /* records logged since the last snapshot (atomic) */
    persist_stats st;
};

/* ---- live path ---- */

static uint64_t log_rec(metad *m, const uint8_t *rec, size_t len, int waited)
{
    persist *p = m->ps;
    uint64_t lsn = waited ? wal_append_waited(m->wal, rec, len) : wal_append(m->wal, rec, len), n;

    if (lsn == 0) {
        log_error("WAL append failed (the log is failed or the record of %zu bytes is too "
                  "large): stopping so that no unlogged change is ever acknowledged", len);
        _exit(EXIT_WAL_FAILED);
    }
    n = __atomic_add_fetch(&p->since, 1, __ATOMIC_RELAXED);
    if (p->cfg.snapshot_every && n % p->cfg.snapshot_every == 0) {
        pthread_mutex_lock(&p->mu);
        p->requested = 1;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    return lsn;
}

uint64_t persist_log(metad *m, const uint8_t *rec, size_t len)
{
    return log_rec(m, rec, len, 0);
}

uint64_t persist_log_waited(metad *m, const uint8_t *rec, size_t len)
{
    return log_rec(m, rec, len, 1);
}

void persist_wait(metad *m, uint64_t lsn)
{
    int rc;

    if (lsn == 0)
        return;
    rc = wal_wait(m->wal, lsn);
    if (rc < 0) {
        log_error("WAL sync failed (%s): stopping, writes can no longer be made durable",
                  cairn_strerror(rc));
        _exit(EXIT_WAL_FAILED);
    }
}

/* ---- recovery ---- */

static int load_snap_rec(const uint8_t *rec, size_t len, void *ctx)
{
    metad *m = ctx;
    recr r;

    if (rec_open(&r, rec, len) < 0)
        return CAIRN_ECORRUPT;
    if (r.type >= FSSNAP_HEADER && r.type <= FSSNAP_DIRENT)
        return fs_snapshot_load(m->fs, rec, len);
    if (r.type == CLSNAP_CLUSTER || r.type == CLSNAP_SERVER)
        return cluster_apply(m->cl, rec, len) < 0 ? CAIRN_ECORRUPT : 0;
    return CAIRN_ECORRUPT;
}

/* One dispatch for live records read back from the WAL. */
static int apply_record(metad *m, const uint8_t *rec, size_t len)
{
    recr r;

    if (rec_open(&r, rec, len) < 0)
        return CAIRN_EPROTO;
    if (r.type >= FSOP_INIT && r.type <= FSOP_LAST)
        return fs_apply(m->fs, rec, len, NULL);
    if (r.type == CLOP_SERVER || r.type == CLOP_REMOVE)
        return cluster_apply(m->cl, rec, len);
    return CAIRN_EPROTO;
}

static int replay_rec(uint64_t lsn, const uint8_t *rec, size_t len, void *ctx)
{
    metad *m = ctx;
    int rc = apply_record(m, rec, len);

    if (rc < 0) {
        log_error("WAL replay: record at lsn %" PRIu64 " (type %u, %zu bytes) does not apply "
                  "to the recovered state: %s; refusing to start on an inconsistent namespace",
                  lsn, len >= REC_HDR_LEN ? rec[3] : 0, len, cairn_strerror(rc));
        return rc;
    }
    m->ps->st.replayed++;
    return 0;
}

static int create_root(metad *m)
{
    fs_op *op = xcalloc(1, sizeof(*op));
    recw w;
    size_t len;
    const uint8_t *p;
    uint64_t lsn;
    int rc;

    op->type = FSOP_INIT;
    op->replica = m->replica;
    op->now = now_realtime_ns();
    op->gen = (uint64_t)op->now;
    op->mode = 0755;
    /* The root belongs to whoever runs the server, as mkfs does. */
    op->uid = (uint32_t)getuid();
    op->gid = (uint32_t)getgid();
    fs_op_encode(op, &w);
    p = recw_finish(&w, &len);
    rc = fs_apply(m->fs, p, len, NULL);
    if (rc == 0) {
        lsn = persist_log_waited(m, p, len);
        persist_wait(m, lsn);
    }
    recw_free(&w);
    free(op);
    return rc;
}

int persist_recover(metad *m, const persist_config *cfg)
{
    persist *p = xcalloc(1, sizeof(*p));
    wal_config wc;
    uint64_t lsn = 0;
    int skipped = 0, rc;
    int64_t t0 = now_mono_ns();

    p->cfg = *cfg;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_mutex_init(&p->snap_mu, NULL);
    m->ps = p;

    if ((rc = mkdir_p(m->wal_dir, 0755)) < 0 || (rc = mkdir_p(m->snap_dir, 0755)) < 0) {
        log_error("cannot create %s or %s: %s", m->wal_dir, m->snap_dir, cairn_strerror(rc));
        return rc;
    }
    rc = snap_load_latest(m->snap_dir, &lsn, &skipped, load_snap_rec, m);
    if (rc == -ENOENT) {
        lsn = 0;
    } else if (rc < 0) {
        log_error("cannot load a snapshot from %s: %s", m->snap_dir, cairn_strerror(rc));
        return rc;
    } else {
        if (skipped)
            log_warn("the newest snapshot was damaged; recovered from the older one (lsn %" PRIu64
                     ")", lsn);
        if ((rc = fs_check(m->fs)) < 0) {
            log_error("snapshot at lsn %" PRIu64 " in %s is inconsistent", lsn, m->snap_dir);
            return rc;
        }
        p->st.last_lsn = lsn;
        log_info("loaded snapshot at lsn %" PRIu64, lsn);
    }
    memset(&wc, 0, sizeof(wc));
    wc.dir = m->wal_dir;
    wc.no_sync = cfg->no_sync;
    wc.truncate_corrupt = cfg->truncate_corrupt;
    rc = wal_open(&wc, lsn, replay_rec, m, &m->wal);
    if (rc < 0) {
        log_error("cannot open or replay the WAL in %s: %s", m->wal_dir, cairn_strerror(rc));
        return rc;
    }
    if ((rc = fs_check(m->fs)) < 0) {
        log_error("namespace inconsistent after WAL replay");
        return rc;
    }
    if (!fs_get(m->fs, FS_ROOT_INO) && (rc = create_root(m)) < 0) {
        log_error("cannot create the root directory: %s", cairn_strerror(rc));
        return rc;
    }
    p->st.recovery_ns = (uint64_t)(now_mono_ns() - t0);
    log_info("recovered: snapshot lsn %" PRIu64 ", %" PRIu64 " WAL records replayed in %.1f ms",
             lsn, p->st.replayed, (double)p->st.recovery_ns / 1e6);
    return 0;
}

/* ---- snapshots ---- */

typedef struct snapbuf {
    buf b;                      /* frames: u32 length | record */
    uint64_t records;
    uint64_t lsn;
    wal *w;
} snapbuf;

static int emit_buf(const uint8_t *rec, size_t len, void *ctx)
{
    snapbuf *sb = ctx;
    uint8_t hdr[4];

    put_le32(hdr, (uint32_t)len);
    buf_append(&sb->b, hdr, 4);
    buf_append(&sb->b, rec, len);
    sb->records++;
    return 0;
}

static void note_lsn(void *ctx)
{
    snapbuf *sb = ctx;

    sb->lsn = wal_last_lsn(sb->w);
}

static int write_file(metad *m, snapbuf *sb)
{
    snap_writer *sw;
    size_t off = 0;
    uint64_t old = 0;
    int rc = snap_begin(m->snap_dir, sb->lsn, &sw);

    if (rc < 0)
        return rc;
    while (off < sb->b.len) {
        uint32_t len = get_le32(sb->b.data + off);
        rc = snap_write(sw, sb->b.data + off + 4, len);
        if (rc < 0) {
            snap_abort(sw);
            return rc;
        }
        off += 4 + (size_t)len;
    }
    if ((rc = snap_commit(sw)) < 0)
        return rc;
    if (snap_oldest_lsn(m->snap_dir, &old) == 0 && old > 0) {
        rc = wal_truncate_before(m->wal, old);
        if (rc < 0)
            log_warn("snapshot: cannot drop old WAL segments: %s", cairn_strerror(rc));
    }
    return 0;
}

int persist_snapshot(metad *m)
{
    persist *p = m->ps;
    snapbuf sb;
    int64_t t0, t1, t2;
    int rc;

    memset(&sb, 0, sizeof(sb));
    sb.w = m->wal;
    pthread_mutex_lock(&p->snap_mu);
    t0 = now_mono_ns();
    pthread_rwlock_rdlock(&m->ns_lock);
    rc = fs_snapshot_write(m->fs, emit_buf, &sb);
    if (rc == 0)
        rc = cluster_snapshot_write(m->cl, emit_buf, note_lsn, &sb);
    __atomic_store_n(&p->since, 0, __ATOMIC_RELAXED);
    pthread_rwlock_unlock(&m->ns_lock);
    t1 = now_mono_ns();
    if (rc < 0)
        goto out;
    /* Later records go to a new segment, so the old ones can be deleted
     * once a newer snapshot covers them. */
    rc = wal_rotate(m->wal, NULL);
    if (rc < 0)
        log_warn("snapshot: WAL rotation failed: %s", cairn_strerror(rc));
    /* The file must never be ahead of the durable log: after a crash the
     * WAL would hand out lsns the snapshot already claims. */
    persist_wait(m, sb.lsn);
    rc = write_file(m, &sb);
    t2 = now_mono_ns();
    pthread_mutex_lock(&p->mu);
    if (rc == 0) {
        p->st.snapshots++;
        p->st.last_lsn = sb.lsn;
        p->st.last_done_ns = now_realtime_ns();
        p->st.last_pause_ns = (uint64_t)(t1 - t0);
        p->st.last_write_ns = (uint64_t)(t2 - t1);
        p->st.last_records = sb.records;
    } else {
        p->st.snapshot_failures++;
    }
    pthread_mutex_unlock(&p->mu);
    if (rc == 0)
        log_info("snapshot at lsn %" PRIu64 ": %" PRIu64 " records, %zu bytes, writers paused "
                 "%.1f ms, written in %.1f ms", sb.lsn, sb.records, sb.b.len,
                 (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6);
out:
    if (rc < 0)
        log_error("snapshot failed: %s (the WAL keeps every change)", cairn_strerror(rc));
    buf_free(&sb.b);
    pthread_mutex_unlock(&p->snap_mu);
    return rc;
}

static void *snap_main(void *arg)
{
    metad *m = arg;
    persist *p = m->ps;

    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        if (!p->requested) {
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        p->requested = 0;
        pthread_mutex_unlock(&p->mu);
        persist_snapshot(m);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int persist_start(metad *m)
{
    persist *p = m->ps;
    int rc = pthread_create(&p->thread, NULL, snap_main, m);

    if (rc != 0)
        return -rc;
    p->running = 1;
    return 0;
}

void persist_stop(metad *m, int final_snapshot)
{
    persist *p = m->ps;

    if (!p)
        return;
    if (p->running) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
        p->running = 0;
    }
    if (m->wal && final_snapshot && __atomic_load_n(&p->since, __ATOMIC_RELAXED) > 0)
        persist_snapshot(m);
    if (m->wal) {
        wal_close(m->wal);
        m->wal = NULL;
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->snap_mu);
    free(p);
    m->ps = NULL;
}

void persist_get_stats(metad *m, persist_stats *out)
{
    persist *p = m->ps;

    pthread_mutex_lock(&p->mu);
    *out = p->st;
    pthread_mutex_unlock(&p->mu);
}
