/*
 * session.h — client sessions of cairn-metad (DESIGN.md §3, PROTOCOL.md
 * "Sessions and open files"): each mount opens a session with a lease and
 * tells metad which inodes it holds open, so that a file unlinked while
 * open stays alive (an orphan, fs.h) until no live session holds it.
 *
 * Sessions live in memory only; nothing here is logged. A session that is
 * not renewed within the lease expires: it disappears with all its holds.
 * Expiry is checked lazily by every call (a session past its lease is gone
 * for renew, hold and sessions_held alike, whether or not the expiry
 * thread has run yet) and by sessions_expire, which the caller's thread
 * runs periodically to learn that holds went away.
 *
 * Holds are a set per session: holding an inode twice counts once, and
 * one release drops it (the client counts its own opens). An inode is
 * held while at least one live session holds it.
 *
 * Grace: after a restart no session exists, yet clients may still have
 * files open from before. sessions_new(lease, grace) starts a grace period
 * during which sessions_in_grace() is 1: the caller then keeps every file
 * that loses its last link and frees no orphan, so that clients have time
 * to see their renew fail (404), open a new session and hold again.
 *
 * Session ids are random 64-bit numbers (never 0), so an id from before a
 * restart is unknown afterwards (its renew answers -ENOENT) instead of
 * naming someone else's new session.
 *
 * Threads: every function may be called from any thread; one internal
 * mutex guards the tables and is a leaf (nothing else is locked while it
 * is held). Callers that combine holds with namespace decisions hold the
 * namespace lock around the calls (metad.h lock order: ns_lock first).
 *
 * Errors: -ENOENT (no such session, or it expired), -ENOSPC (too many
 * sessions, or too many holds in one session).
 */
#ifndef CAIRN_META_SESSION_H
#define CAIRN_META_SESSION_H

#include <stddef.h>
#include <stdint.h>

typedef struct sessions sessions;

#define SESSIONS_MAX 65536               /* live sessions */
#define SESSION_HOLDS_MAX (1u << 20)     /* inodes held by one session */
#define SESSION_CLIENT_MAX 255           /* FT_CLIENT description, bytes */

/* lease_ms: a session not renewed for this long expires. grace_ms: length
 * of the grace period starting now (0 = none, e.g. a fresh filesystem). */
sessions *sessions_new(uint64_t lease_ms, uint64_t grace_ms);
void sessions_free(sessions *s);

/* Tests: replace the monotonic millisecond clock (NULL = now_mono_ms). */
void sessions_set_clock(sessions *s, int64_t (*now_ms)(void));

uint64_t sessions_lease_ms(const sessions *s);

/* Open a session for a client described by client (truncated to
 * SESSION_CLIENT_MAX; only logged). 0 with *id, or -ENOSPC. */
int sessions_open(sessions *s, const char *client, uint64_t *id);
/* Extend the lease by a full lease from now. 0 or -ENOENT. */
int sessions_renew(sessions *s, uint64_t id);
/* Add ino to the session's holds. 0, -ENOENT, -ENOSPC. */
int sessions_hold(sessions *s, uint64_t id, uint64_t ino);
/* Drop ino from the session's holds (0 also if it did not hold it). 0 or
 * -ENOENT. */
int sessions_release(sessions *s, uint64_t id, uint64_t ino);
/* Close a session and drop its holds. 0 or -ENOENT. */
int sessions_end(sessions *s, uint64_t id);

/* 1 if some live session holds ino. */
int sessions_held(sessions *s, uint64_t ino);
/* 1 during the grace period after a restart. */
int sessions_in_grace(sessions *s);

/* Expire sessions whose lease ran out; returns how many expired since
 * the previous call (including those found expired lazily by the other
 * calls), so the caller knows holds went away. */
size_t sessions_expire(sessions *s);

typedef struct sessions_stats {
    uint64_t live, holds;               /* now */
    uint64_t opened, ended, expired;    /* since start */
} sessions_stats;
void sessions_get_stats(sessions *s, sessions_stats *out);

#endif
