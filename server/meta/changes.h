/*
 * changes.h — the change feed: a bounded log of recent namespace changes
 * that mounts follow (POST /v1/changes, docs/PROTOCOL.md) to drop what
 * their kernel and their own caches hold about names and inodes another
 * client changed, so that they can cache both for long while the feed is
 * up instead of asking metad again after a short timeout.
 *
 * A record says either "the name NAME in directory PARENT may now refer to
 * something else" (CHG_ENTRY) or "inode INO's attributes or contents
 * changed" (CHG_INODE), with the session that made the change (0: none,
 * e.g. the orphan reaper). Records are numbered from 1 in the order the
 * namespace applied them. The log keeps the last `cap` records; a reader
 * asking for records older than that, or for a feed id other than this
 * process's (metad restarted), is told so (a gap) and must drop
 * everything it caches.
 *
 * A reader waits for a record not made by its own session, up to a time it
 * chooses; an append wakes only readers of other sessions, so a client's
 * own changes cost it no wake-up. Thread-safe (one mutex, a leaf lock: taken
 * under ns_lock by appends, never held while taking another).
 */
#ifndef CAIRN_META_CHANGES_H
#define CAIRN_META_CHANGES_H

#include <stddef.h>
#include <stdint.h>

#include "common/rec.h"

typedef struct changes changes;

enum { CHG_ENTRY = 1, CHG_INODE = 2 };

/* Records a reader is sent at most per answer. */
#define CHANGES_PER_ANSWER 1024u

/* A log of the last cap records (cap >= 16). */
changes *changes_new(size_t cap);
void changes_free(changes *c);

/* This process's feed id (random, never 0). */
uint64_t changes_feed_id(const changes *c);

/* Append one record. name is copied (CHG_ENTRY only; NULL otherwise). */
void changes_add(changes *c, uint64_t origin, int kind, uint64_t ino, const char *name);

/*
 * Answer a reader at position `since` of feed `feed`, session sid (0: none):
 * puts into w (an FSREC_REPLY being built) FT_FEED, FT_SEQ (where to go on
 * from) and either FT_GAP 1 (records the reader needs are gone, or the feed
 * is not this one: since 0 always is) or up to CHANGES_PER_ANSWER FT_CHANGE
 * records made by other sessions, waiting up to wait_ms for the first.
 * Returns the number of records put.
 */
size_t changes_read(changes *c, uint64_t feed, uint64_t since, uint64_t sid, int64_t wait_ms,
                    recw *w);

/* Answer session sid's waiting readers now (its client is going away). */
void changes_kick(changes *c, uint64_t sid);

/* Wake every waiting reader and answer later ones without waiting (at
 * shutdown, before the HTTP server stops). */
void changes_shutdown(changes *c);

typedef struct changes_stats {
    uint64_t appended, gaps, answers, waiting;
} changes_stats;
void changes_get_stats(changes *c, changes_stats *out);

#endif
