/*
 * ops_i.h — what cairn-metad's handler files share: ops.c (namespace
 * routes, the route table, /metrics), ops_session.c (sessions, holds,
 * orphans and the thread that frees them) and ops_cluster.c (cluster map
 * and its administration). Not for use outside server/meta/ops*.c.
 *
 * Handlers run on httpd connection threads with ctx = the metad. The lock
 * order is metad.h's.
 */
#ifndef CAIRN_META_OPS_I_H
#define CAIRN_META_OPS_I_H

#include <stdint.h>

#include "common/httpd.h"
#include "common/rec.h"
#include "common/vv.h"
#include "server/meta/fs.h"
#include "server/meta/metad.h"

#define BODY_SMALL (64u << 10)                       /* namespace requests */
#define BODY_LIST (4u << 20)                         /* id or ino lists */

/* ---- ops.c ---- */

/* Answer a finished record (ownership of its bytes moves to httpd). */
void ops_reply_rec(httpd_req *rq, int status, recw *w, const vv *etag);
/* Open the request body as a record of the given type: 0 or -EINVAL. */
int ops_open_body(httpd_req *rq, recr *r, uint8_t type);
/* Required / optional u64 fields: 0 or -EINVAL. */
int ops_need_u64(const recr *r, uint16_t tag, uint64_t *out);
int ops_opt_u64(const recr *r, uint16_t tag, uint64_t *out, uint64_t def);
/* Caller holds ns_lock exclusive: fill in replica and clock, apply op and
 * log it. *lsn is what to wait for after unlocking (0: nothing). */
int ops_mutate(metad *m, fs_op *op, fs_result *res, uint64_t *lsn);

/* ---- ops_session.c ---- */

void ops_session_new(httpd_req *rq, void *ctx);
void ops_session_renew(httpd_req *rq, void *ctx);
void ops_session_hold(httpd_req *rq, void *ctx);
void ops_session_end(httpd_req *rq, void *ctx);

/* The session a request names in its Cairn-Session header, 0 when none
 * or malformed (the change feed's origin of what it changes). */
uint64_t ops_origin(httpd_req *rq);
/* Whether a request asks to hold its inode open: FT_OPEN 1 in the body
 * and a Cairn-Session header. 0 with *sid (0 = no hold asked), or -EINVAL
 * for FT_OPEN with a malformed or missing header value. Call before
 * locking. */
int ops_open_request(httpd_req *rq, const recr *r, uint64_t *sid);
/* FT_RELEASED of an unlink or rename: the holds the requesting session
 * (Cairn-Session header) gives up, sent along instead of in a renew of
 * their own. 0 with *sid (0 when there are none), or -EINVAL for a bad
 * value or header. Call before locking: a bad request changes nothing. */
int ops_released_request(httpd_req *rq, const recr *r, uint64_t *sid);
/* With ns_lock exclusive: drop session sid's holds named by FT_RELEASED
 * and free those inodes that are orphans nobody holds any more. Returns
 * the lsn to wait for, or 0. */
uint64_t ops_released_apply(metad *m, const recr *r, uint64_t sid);
/* With ns_lock held (either mode): hold ino for session sid if it is a
 * regular file. An unknown or expired session is ignored: the client
 * learns it at its next renew (404) and holds everything again. */
void ops_hold(metad *m, uint64_t sid, const fs_inode *ip);
/* With ns_lock exclusive, before an unlink or a rename over ip: the ino to
 * put into the op's FT_OP_KEEP (ip's own when some session holds it or
 * the restart grace period runs), or 0. */
uint64_t ops_keep(metad *m, const fs_inode *ip);

/* ---- ops_cluster.c ---- */

void ops_cluster_get(httpd_req *rq, void *ctx);
void ops_register(httpd_req *rq, void *ctx);
void ops_heartbeat(httpd_req *rq, void *ctx);
void ops_cluster_drain(httpd_req *rq, void *ctx);
void ops_cluster_undrain(httpd_req *rq, void *ctx);
void ops_cluster_remove(httpd_req *rq, void *ctx);

#endif
