/*
 * err.h — cairn error codes.
 *
 * Contract: every cairn function that can fail returns 0 (or a count) on
 * success and a negative errno on failure. Conditions that errno cannot name
 * live in one reserved negative range below -CAIRN_ERRBASE:
 *
 *   CAIRN_ECONFLICT     CAS precondition failed (HTTP 412): the entry's
 *                       version vector is no longer the one the caller had.
 *   CAIRN_ENOTMODIFIED  the caller's cached version is current (HTTP 304).
 *   CAIRN_ECORRUPT      stored bytes failed a checksum or structural check.
 *   CAIRN_EPROTO        a peer sent something that is not valid protocol.
 *   CAIRN_EBADVERSION   a record or file has a format version we do not read.
 *   CAIRN_EUNAVAIL      no server could be reached within the retry budget.
 *   CAIRN_EBUSY         the peer is overloaded (HTTP 503), retry later.
 *
 * HTTP status <-> code translation lives here too (one place for the edge),
 * following the table in docs/PROTOCOL.md: ENOENT 404; EEXIST, ENOTEMPTY,
 * EBUSY 409; EPERM, EACCES 403; ENOSPC, EDQUOT 507; EFBIG, E2BIG 413;
 * CAIRN_ECONFLICT 412; CAIRN_ENOTMODIFIED 304; CAIRN_EBUSY and EAGAIN 503;
 * EINVAL, CAIRN_EPROTO, CAIRN_EBADVERSION 400; CAIRN_EUNAVAIL 502; ENOSYS
 * 501; ETIMEDOUT 504; EIO, ENOMEM, CAIRN_ECORRUPT and unknown values 500;
 * every other known errno 422 (its name goes in Cairn-Errno).
 * Thread-safe; nothing to free.
 */
#ifndef CAIRN_ERR_H
#define CAIRN_ERR_H

#define CAIRN_ERRBASE 10000
enum {
    CAIRN_ECONFLICT    = -(CAIRN_ERRBASE + 1),
    CAIRN_ENOTMODIFIED = -(CAIRN_ERRBASE + 2),
    CAIRN_ECORRUPT     = -(CAIRN_ERRBASE + 3),
    CAIRN_EPROTO       = -(CAIRN_ERRBASE + 4),
    CAIRN_EBADVERSION  = -(CAIRN_ERRBASE + 5),
    CAIRN_EUNAVAIL     = -(CAIRN_ERRBASE + 6),
    CAIRN_EBUSY        = -(CAIRN_ERRBASE + 7),
};

/* Text for a negative errno or cairn code (never NULL, static storage). */
const char *cairn_strerror(int err);

/* Symbolic name of a positive errno value ("ENOENT"), or NULL if unknown.
 * Aliases (EWOULDBLOCK, ENOTSUP) print as EAGAIN, EOPNOTSUPP. cairn's own
 * codes are named too: -CAIRN_ECONFLICT -> "CAIRN_ECONFLICT". */
const char *cairn_errno_name(int errnum);
/* Positive errno for a symbolic name (case-insensitive; aliases and the
 * CAIRN_E* names accepted), or 0 if unknown. */
int cairn_errno_from_name(const char *name);

/* The HTTP status a server answers for a negative error code. */
int cairn_err_to_http(int err);
/* The negative code a client reports for an HTTP status (2xx -> 0). When the
 * response carried a Cairn-Errno header, pass its value as errname (else
 * NULL); it takes precedence for 4xx/5xx statuses. */
int cairn_http_to_err(int status, const char *errname);

/* Map a client-side error to what a POSIX caller may see (EIO for cairn's
 * own codes that have no errno, the errno itself otherwise); positive. */
int cairn_err_to_posix(int err);

#endif
