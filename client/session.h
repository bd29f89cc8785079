/*
 * session.h — the mount's session with cairn-metad (DESIGN.md §3), which
 * keeps files this client holds open alive on metad after another client
 * (or this one) unlinks them.
 *
 * csession_start opens a session and starts one renew thread that renews it
 * every lease/3. Opens and closes are counted per inode on this client:
 * the first open of an inode is marked on metad by the open request itself
 * (FT_OPEN on map/create, see metaclient.h), and the last close queues the
 * inode, released in the next renew (no extra round trip per open/close).
 * If a renew finds the session expired (metad restarted, or the client was
 * cut off longer than the lease), a new session is opened and every inode
 * still open is held again.
 *
 * If metad does not offer sessions, the client runs without them (logged
 * once): unlinked-but-open files are then not kept alive.
 *
 * Thread-safe. csession_stop ends the session on metad and joins the thread.
 */
#ifndef CAIRN_SESSION_H
#define CAIRN_SESSION_H

#include <stdint.h>

#include "client/metaclient.h"

typedef struct csession csession;

csession *csession_start(mc *m, const char *client_desc);
/* Count an open handle of ino; returns 1 when it is the first one on this
 * client (the caller's open request must then hold it on metad). */
int csession_opened(csession *s, uint64_t ino);
/* Count a closed handle; the last one queues the release. */
void csession_closed(csession *s, uint64_t ino);
/* The queued releases, taken off the queue to travel with an unlink or
 * rename (FT_RELEASED), so that metad does not keep a file this client
 * closed as an orphan, at no round trip of their own: *n of them, NULL when
 * none. Give them back with csession_releases_sent. */
uint64_t *csession_take_releases(csession *s, size_t *n);
/* After that request: delivered (metad answered it) or not; undelivered
 * releases go back on the queue. Frees rel. */
void csession_releases_sent(csession *s, uint64_t *rel, size_t n, int delivered);
/* Whether this client has a handle open on ino. */
int csession_is_open(csession *s, uint64_t ino);
/* Whether a live session exists (open requests then carry FT_OPEN). */
int csession_active(csession *s);
void csession_stop(csession *s);

#endif
