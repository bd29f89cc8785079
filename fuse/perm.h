/*
 * perm.h — the permission checks cairn-mount makes itself when the kernel
 * does not.
 *
 * A mount by root without --allow-other is mounted without the kernel's
 * default_permissions: only root's processes can enter it (FUSE lets no
 * other user in), so the kernel's checks would only ask, before many
 * operations, for a directory's attributes that the mount's own change to
 * it has just invalidated (a GETATTR round trip each). The mount checks
 * instead, from the attributes it holds: mode bits for owner, group
 * (supplementary groups included) and others, then the capabilities that
 * override them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER,
 * CAP_CHOWN, CAP_FSETID), so that a root process that dropped them is
 * refused as on a local file system. Groups and capabilities are read from
 * /proc only when the mode bits alone do not allow the access.
 *
 * What the kernel still checks itself: the sticky bit (check_sticky), the
 * presence of an execute bit for exec, CAP_MKNOD, trusted.* xattrs. What
 * nobody checks: search permission on directories whose names the kernel
 * has cached (a path walk through cached names does not reach the mount),
 * which only matters for a root process without CAP_DAC_READ_SEARCH.
 */
#ifndef CAIRN_FUSE_PERM_H
#define CAIRN_FUSE_PERM_H

#include <stdint.h>
#include <sys/types.h>

enum { PERM_X = 1, PERM_W = 2, PERM_R = 4 };

/* Capability bits (linux/capability.h numbers). */
#define PERM_CAP_CHOWN (1ull << 0)
#define PERM_CAP_DAC_OVERRIDE (1ull << 1)
#define PERM_CAP_DAC_READ_SEARCH (1ull << 2)
#define PERM_CAP_FOWNER (1ull << 3)
#define PERM_CAP_FSETID (1ull << 4)

/* The caller of one request: ids from the request, groups and effective
 * capabilities loaded on first need. */
typedef struct perm_who {
    uint32_t uid, gid;
    pid_t pid;                 /* 0: the kernel itself (all allowed) */
    void *req;                 /* fuse_req_t, for its supplementary groups */
    int groups_loaded, ngroups;
    gid_t groups[64];
    int caps_loaded;
    uint64_t caps;
} perm_who;

/* The decision alone: may a caller with uid (in the file's group or not,
 * with effective capabilities caps) access a file of this mode and owner
 * for mask (PERM_*)? 0 or -EACCES. */
int perm_decide(uint32_t mode, uint32_t fuid, uint32_t uid, int in_group, uint64_t caps,
                int mask);

/* Effective capabilities of a task from the text of /proc/<pid>/status:
 * 0 with *caps, or -EINVAL when there is no CapEff line. */
int perm_parse_caps(const char *status, uint64_t *caps);

void perm_who_init(perm_who *w, void *req, uint32_t uid, uint32_t gid, pid_t pid);
/* Whether the caller is in group gid (primary or supplementary). */
int perm_in_group(perm_who *w, uint32_t gid);
/* Whether the caller has every capability in mask. */
int perm_capable(perm_who *w, uint64_t mask);
/* perm_decide for the caller, loading groups and capabilities as needed. */
int perm_access(perm_who *w, uint32_t mode, uint32_t fuid, uint32_t fgid, int mask);

#endif
