/*
 * perm.c — permission decisions and the caller's groups and capabilities;
 * see perm.h.
 */
#define FUSE_USE_VERSION 312
#include "fuse/perm.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int perm_decide(uint32_t mode, uint32_t fuid, uint32_t uid, int in_group, uint64_t caps,
                int mask)
{
    unsigned bits;
    int isdir = S_ISDIR(mode);

    mask &= PERM_R | PERM_W | PERM_X;
    if (uid == fuid)
        bits = (mode >> 6) & 7;
    else if (in_group)
        bits = (mode >> 3) & 7;
    else
        bits = mode & 7;
    if ((mask & ~bits) == 0)
        return 0;
    /* As generic_permission: DAC_OVERRIDE allows everything but executing
     * a file that nobody may execute; DAC_READ_SEARCH allows reading and
     * searching directories and reading files. */
    if ((caps & PERM_CAP_DAC_OVERRIDE) && (!(mask & PERM_X) || isdir || (mode & 0111)))
        return 0;
    if ((caps & PERM_CAP_DAC_READ_SEARCH) &&
        (mask == PERM_R || (isdir && !(mask & PERM_W))))
        return 0;
    return -EACCES;
}

int perm_parse_caps(const char *status, uint64_t *caps)
{
    const char *p = strstr(status, "\nCapEff:");
    char *end;

    if (!p)
        return -EINVAL;
    p += 8;
    while (*p == ' ' || *p == '\t')
        p++;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 16);
    if (errno || end == p || (*end != '\n' && *end != '\0'))
        return -EINVAL;
    *caps = v;
    return 0;
}

void perm_who_init(perm_who *w, void *req, uint32_t uid, uint32_t gid, pid_t pid)
{
    memset(w, 0, sizeof(*w));
    w->req = req;
    w->uid = uid;
    w->gid = gid;
    w->pid = pid;
}

int perm_in_group(perm_who *w, uint32_t gid)
{
    if (gid == w->gid)
        return 1;
    if (!w->groups_loaded) {
        w->groups_loaded = 1;
        w->ngroups = 0;
        if (w->req && w->pid > 0) {
            int n = fuse_req_getgroups((fuse_req_t)w->req, 64, w->groups);
            /* More groups than room: the first 64 are what we know. */
            w->ngroups = n < 0 ? 0 : (n > 64 ? 64 : n);
        }
    }
    for (int i = 0; i < w->ngroups; i++) {
        if ((uint32_t)w->groups[i] == gid)
            return 1;
    }
    return 0;
}

int perm_capable(perm_who *w, uint64_t mask)
{
    if (w->pid == 0)
        return 1;
    if (!w->caps_loaded) {
        char path[64], buf[4096];
        w->caps_loaded = 1;
        w->caps = 0;
        snprintf(path, sizeof(path), "/proc/%d/status", (int)w->pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t n = read(fd, buf, sizeof(buf) - 1);
            close(fd);
            if (n > 0) {
                buf[n] = '\0';
                if (perm_parse_caps(buf, &w->caps) < 0)
                    w->caps = 0;
            }
        }
        /* A task gone meanwhile, or unreadable: no capabilities. */
    }
    return (w->caps & mask) == mask;
}

int perm_access(perm_who *w, uint32_t mode, uint32_t fuid, uint32_t fgid, int mask)
{
    if (w->pid == 0)
        return 0;
    /* Membership only matters when group and others differ for mask. */
    int in_group = 0;
    if (w->uid != fuid) {
        unsigned g = (mode >> 3) & 7, o = mode & 7;
        if (((mask & ~g) == 0) != ((mask & ~o) == 0))
            in_group = perm_in_group(w, fgid);
    }
    if (perm_decide(mode, fuid, w->uid, in_group, 0, mask) == 0)
        return 0;
    perm_capable(w, 0);
    return perm_decide(mode, fuid, w->uid, in_group, w->caps, mask);
}
