/*
 * metabench — create throughput of a running cairn-metad.
 *
 *   metabench [-t THREADS] [-n CREATES] [-d DIRNAME] HOST:PORT
 *
 * Makes one fresh directory under the root, then THREADS threads each
 * create CREATES files in it (O_EXCL creates over HTTP keep-alive, one
 * connection per thread) as fast as answers come back. Prints the total
 * rate and latency percentiles. Every create is a durable WAL record, so
 * with one thread this measures the fdatasync latency and with many the
 * group commit.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsrec.h"
#include "common/httpc.h"
#include "common/rec.h"
#include "common/util.h"

typedef struct worker {
    int id;
    int n;
    int failed;
    int64_t *lat_ns;
    pthread_t thread;
} worker;

static httpc *g_http;
static char g_url[300];
static uint64_t g_dir;
static pthread_barrier_t g_start;

/* One create; 0 or a negative code. *ino receives the new inode. */
static int create(uint64_t parent, const char *name, uint32_t mode, const char *op, uint64_t *ino)
{
    recw w;
    const uint8_t *body;
    size_t len;
    httpc_resp r;
    recr rr;
    fs_attr a;
    char url[400];
    int rc;

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_PARENT, parent);
    recw_str(&w, FT_NAME, name);
    recw_u64(&w, FT_MODE, mode);
    recw_u64(&w, FT_UID, (uint64_t)getuid());
    recw_u64(&w, FT_GID, (uint64_t)getgid());
    recw_u64(&w, FT_FLAGS, FSC_EXCL);
    body = recw_finish(&w, &len);
    snprintf(url, sizeof(url), "%s/v1/%s", g_url, op);
    rc = httpc_do(g_http, "POST", url, NULL, body, len, 30000, &r);
    recw_free(&w);
    if (rc < 0)
        return rc;
    if (r.status != 200) {
        rc = cairn_http_to_err(r.status, r.errname[0] ? r.errname : NULL);
    } else if (rec_open(&rr, r.body, r.len) < 0 || fsrec_get_attr(&rr, &a) < 0) {
        rc = CAIRN_EPROTO;
    } else if (ino) {
        *ino = a.ino;
    }
    httpc_resp_free(&r);
    return rc;
}

static void *worker_main(void *arg)
{
    worker *wk = arg;
    char name[64];

    pthread_barrier_wait(&g_start);
    for (int i = 0; i < wk->n; i++) {
        int64_t t0 = now_mono_ns();
        int rc;
        snprintf(name, sizeof(name), "w%d-%d", wk->id, i);
        rc = create(g_dir, name, S_IFREG | 0644, "create", NULL);
        if (rc < 0) {
            fprintf(stderr, "metabench: create %s: %s\n", name, cairn_strerror(rc));
            wk->failed = 1;
            break;
        }
        wk->lat_ns[i] = now_mono_ns() - t0;
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static void usage(void)
{
    fprintf(stderr, "usage: metabench [-t THREADS] [-n CREATES_PER_THREAD] [-d DIRNAME] "
                    "HOST:PORT\n");
}

int main(int argc, char **argv)
{
    int threads = 1, n = 1000, opt, rc, failed = 0;
    char dirname[128] = "";
    worker *wk;
    int64_t t0, t1, *all;
    size_t total = 0, k = 0;
    double secs;

    while ((opt = getopt(argc, argv, "t:n:d:h")) != -1) {
        switch (opt) {
        case 't': threads = atoi(optarg); break;
        case 'n': n = atoi(optarg); break;
        case 'd': snprintf(dirname, sizeof(dirname), "%s", optarg); break;
        default: usage(); return 2;
        }
    }
    if (optind != argc - 1 || threads < 1 || threads > 1024 || n < 1) {
        usage();
        return 2;
    }
    snprintf(g_url, sizeof(g_url), "http://%s", argv[optind]);
    if (!dirname[0])
        snprintf(dirname, sizeof(dirname), "metabench-%d-%" PRId64, (int)getpid(),
                 now_realtime_ns());
    g_http = httpc_new(&(httpc_config){.handles = (unsigned)threads + 1});
    rc = create(FS_ROOT_INO, dirname, 0755, "mkdir", &g_dir);
    if (rc < 0) {
        fprintf(stderr, "metabench: mkdir %s: %s\n", dirname, cairn_strerror(rc));
        httpc_free(g_http);
        return 1;
    }
    wk = xcalloc((size_t)threads, sizeof(worker));
    pthread_barrier_init(&g_start, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        wk[i].id = i;
        wk[i].n = n;
        wk[i].lat_ns = xcalloc((size_t)n, sizeof(int64_t));
        if (pthread_create(&wk[i].thread, NULL, worker_main, &wk[i]) != 0) {
            fprintf(stderr, "metabench: cannot start thread\n");
            return 1;
        }
    }
    pthread_barrier_wait(&g_start);
    t0 = now_mono_ns();
    for (int i = 0; i < threads; i++)
        pthread_join(wk[i].thread, NULL);
    t1 = now_mono_ns();
    all = xcalloc((size_t)threads * (size_t)n, sizeof(int64_t));
    for (int i = 0; i < threads; i++) {
        failed |= wk[i].failed;
        for (int j = 0; j < n && wk[i].lat_ns[j]; j++)
            all[k++] = wk[i].lat_ns[j];
        free(wk[i].lat_ns);
    }
    total = k;
    qsort(all, total, sizeof(int64_t), cmp_i64);
    secs = (double)(t1 - t0) / 1e9;
    printf("metabench: %d threads x %d creates: %zu creates in %.3f s = %.0f creates/s; "
           "latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
           threads, n, total, secs, secs > 0 ? (double)total / secs : 0.0,
           total ? (double)all[total / 2] / 1e6 : 0.0,
           total ? (double)all[(total * 99) / 100] / 1e6 : 0.0,
           total ? (double)all[total - 1] / 1e6 : 0.0);
    free(all);
    free(wk);
    pthread_barrier_destroy(&g_start);
    httpc_free(g_http);
    return failed ? 1 : 0;
}
