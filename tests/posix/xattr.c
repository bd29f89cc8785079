/* xattr.c — setxattr, getxattr, listxattr, removexattr in the user.,
 * trusted. and security. namespaces; POSIX ACL names. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/xattr.h>
#include <unistd.h>

/* listxattr output contains name exactly once */
static int list_has(const char *list, ssize_t len, const char *name)
{
    int n = 0;
    for (const char *p = list; p < list + len; p += strlen(p) + 1)
        if (strcmp(p, name) == 0)
            n++;
    return n;
}

static int roundtrip(pt_ctx *c)
{
    (void)c;
    char buf[256];
    OK(pt_write_file("f", "x", 1, 0644));
    OK(setxattr("f", "user.color", "blue", 4, 0));
    EQ(getxattr("f", "user.color", NULL, 0), 4);
    EQ(getxattr("f", "user.color", buf, sizeof(buf)), 4);
    CHECK(memcmp(buf, "blue", 4) == 0, "value %.4s", buf);
    /* binary value with NULs */
    const char bin[] = {0, 1, 2, 0, (char)0xff, 0};
    OK(setxattr("f", "user.bin", bin, sizeof(bin), 0));
    EQ(getxattr("f", "user.bin", buf, sizeof(buf)), (ssize_t)sizeof(bin));
    CHECK(memcmp(buf, bin, sizeof(bin)) == 0, "binary value changed");
    /* empty value */
    OK(setxattr("f", "user.empty", "", 0, 0));
    EQ(getxattr("f", "user.empty", buf, sizeof(buf)), 0);
    /* replace with a shorter value */
    OK(setxattr("f", "user.color", "red", 3, 0));
    EQ(getxattr("f", "user.color", buf, sizeof(buf)), 3);
    CHECK(memcmp(buf, "red", 3) == 0, "value %.3s", buf);
    /* through a descriptor */
    int fd = open("f", O_RDONLY);
    OK(fd);
    OK(fsetxattr(fd, "user.fd", "1", 1, 0));
    EQ(fgetxattr(fd, "user.fd", buf, sizeof(buf)), 1);
    close(fd);
    /* a symlink's target, through the link */
    OK(symlink("f", "l"));
    EQ(getxattr("l", "user.fd", buf, sizeof(buf)), 1);
    return 0;
}

static int missing(pt_ctx *c)
{
    (void)c;
    char buf[16];
    OK(pt_write_file("f", "x", 1, 0644));
    ERR(getxattr("f", "user.none", buf, sizeof(buf)), ENODATA);
    ERR(getxattr("f", "user.none", NULL, 0), ENODATA);
    ERR(removexattr("f", "user.none"), ENODATA);
    ERR(getxattr("nope", "user.x", buf, sizeof(buf)), ENOENT);
    OK(setxattr("f", "user.a", "1", 1, 0));
    OK(removexattr("f", "user.a"));
    ERR(getxattr("f", "user.a", buf, sizeof(buf)), ENODATA);
    ERR(removexattr("f", "user.a"), ENODATA);
    return 0;
}

static int erange(pt_ctx *c)
{
    (void)c;
    char buf[64];
    OK(pt_write_file("f", "x", 1, 0644));
    OK(setxattr("f", "user.long", "0123456789", 10, 0));
    ERR(getxattr("f", "user.long", buf, 9), ERANGE);
    ERR(getxattr("f", "user.long", buf, 1), ERANGE);
    EQ(getxattr("f", "user.long", buf, 10), 10);
    ssize_t n = listxattr("f", NULL, 0);
    CHECK(n >= (ssize_t)sizeof("user.long"), "listxattr size %zd", n);
    ERR(listxattr("f", buf, (size_t)n - 1), ERANGE);
    EQ(listxattr("f", buf, sizeof(buf)), n);
    return 0;
}

static int create_replace(pt_ctx *c)
{
    (void)c;
    char buf[16];
    OK(pt_write_file("f", "x", 1, 0644));
    ERR(setxattr("f", "user.k", "v", 1, XATTR_REPLACE), ENODATA);
    OK(setxattr("f", "user.k", "v1", 2, XATTR_CREATE));
    ERR(setxattr("f", "user.k", "v2", 2, XATTR_CREATE), EEXIST);
    EQ(getxattr("f", "user.k", buf, sizeof(buf)), 2);
    CHECK(memcmp(buf, "v1", 2) == 0, "value after failed CREATE: %.2s", buf);
    OK(setxattr("f", "user.k", "v3", 2, XATTR_REPLACE));
    EQ(getxattr("f", "user.k", buf, sizeof(buf)), 2);
    CHECK(memcmp(buf, "v3", 2) == 0, "value after REPLACE: %.2s", buf);
    ERR(setxattr("f", "user.k", "v", 1, 4), EINVAL);
    return 0;
}

static int list(pt_ctx *c)
{
    char buf[8192];
    OK(pt_write_file("f", "x", 1, 0644));
    ssize_t n0 = listxattr("f", buf, sizeof(buf));
    OK(n0);
    /* a fresh file lists no user. attributes */
    for (const char *p = buf; p < buf + n0; p += strlen(p) + 1)
        CHECK(strncmp(p, "user.", 5) != 0, "fresh file lists %s", p);
    for (int i = 0; i < 100; i++) {
        char n[32], v[32];
        snprintf(n, sizeof(n), "user.attr%03d", i);
        snprintf(v, sizeof(v), "value-%d", i * 7);
        OK(setxattr("f", n, v, strlen(v), 0));
    }
    if (!c->user)
        OK(setxattr("f", "trusted.t", "t", 1, 0));
    ssize_t n = listxattr("f", buf, sizeof(buf));
    OK(n);
    EQ(listxattr("f", NULL, 0), n);
    for (int i = 0; i < 100; i++) {
        char nm[32], v[32], got[32];
        snprintf(nm, sizeof(nm), "user.attr%03d", i);
        snprintf(v, sizeof(v), "value-%d", i * 7);
        EQ(list_has(buf, n, nm), 1);
        EQ(getxattr("f", nm, got, sizeof(got)), (ssize_t)strlen(v));
        CHECK(memcmp(got, v, strlen(v)) == 0, "%s = %.*s", nm, (int)strlen(v), got);
    }
    if (!c->user)
        EQ(list_has(buf, n, "trusted.t"), 1);
    for (int i = 0; i < 100; i += 2) {
        char nm[32];
        snprintf(nm, sizeof(nm), "user.attr%03d", i);
        OK(removexattr("f", nm));
    }
    n = listxattr("f", buf, sizeof(buf));
    for (int i = 0; i < 100; i++) {
        char nm[32];
        snprintf(nm, sizeof(nm), "user.attr%03d", i);
        EQ(list_has(buf, n, nm), i % 2);
    }
    return 0;
}

static int sizes(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("f", "x", 1, 0644));
    char *v = malloc(70000), *got = malloc(70000);
    CHECK(v && got, "malloc");
    pt_fill(v, 70000, 9, 0);
    OK(setxattr("f", "user.big", v, 3000, 0));
    EQ(getxattr("f", "user.big", got, 70000), 3000);
    CHECK(pt_check_fill(got, 3000, 9, 0) < 0, "3000-byte value changed");
    ERR(setxattr("f", "user.toobig", v, 65537, 0), E2BIG);
    ERR(getxattr("f", "user.toobig", got, 70000), ENODATA);
    /* name length: 255 bytes with the prefix is the limit */
    char name[300];
    memcpy(name, "user.", 5);
    memset(name + 5, 'n', 250);
    name[255] = 0;
    OK(setxattr("f", name, "v", 1, 0));
    EQ(getxattr("f", name, got, 16), 1);
    name[255] = 'n';
    name[256] = 0;
    ERR(setxattr("f", name, "v", 1, 0), ERANGE);
    ERR(getxattr("f", name, got, 16), ERANGE);
    ERR(setxattr("f", "user.", "v", 1, 0), EINVAL);
    ERR(setxattr("f", "", "v", 1, 0), ERANGE);
    ERR(setxattr("f", "nonamespace", "v", 1, 0), EOPNOTSUPP);
    free(v);
    free(got);
    return 0;
}

static int big_value(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("f", "x", 1, 0644));
    char *v = malloc(65536), *got = malloc(65536);
    CHECK(v && got, "malloc");
    pt_fill(v, 65536, 10, 0);
    /* a file system may have less room for attributes (ext4: one block) */
    errno = 0;
    if (setxattr("f", "user.max", v, 65536, 0) != 0) {
        CHECK(errno == ENOSPC, "64 KiB value: %s, expected success or ENOSPC",
              pt_errname(errno));
        free(v);
        free(got);
        return 0;
    }
    EQ(getxattr("f", "user.max", got, 65536), 65536);
    CHECK(pt_check_fill(got, 65536, 10, 0) < 0, "64 KiB value changed");
    free(v);
    free(got);
    return 0;
}

static int on_dir_and_special(pt_ctx *c)
{
    (void)c;
    char buf[16];
    OK(mkdir("d", 0755));
    OK(setxattr("d", "user.dir", "D", 1, 0));
    EQ(getxattr("d", "user.dir", buf, sizeof(buf)), 1);
    /* user.* exists only on regular files and directories */
    OK(symlink("d", "l"));
    ERR(lsetxattr("l", "user.x", "v", 1, 0), EPERM);
    ERR(lgetxattr("l", "user.x", buf, sizeof(buf)), ENODATA);
    OK(mkfifo("p", 0644));
    ERR(setxattr("p", "user.x", "v", 1, 0), EPERM);
    return 0;
}

static int trusted_security_root(pt_ctx *c)
{
    (void)c;
    char buf[16];
    OK(pt_write_file("f", "x", 1, 0644));
    OK(setxattr("f", "trusted.t", "T", 1, 0));
    EQ(getxattr("f", "trusted.t", buf, sizeof(buf)), 1);
    OK(setxattr("f", "security.s", "S", 1, 0));
    EQ(getxattr("f", "security.s", buf, sizeof(buf)), 1);
    CHECK(buf[0] == 'S', "security value %c", buf[0]);
    OK(removexattr("f", "trusted.t"));
    ERR(getxattr("f", "trusted.t", buf, sizeof(buf)), ENODATA);
    OK(removexattr("f", "security.s"));
    ERR(getxattr("f", "security.s", buf, sizeof(buf)), ENODATA);
    /* trusted.* works on symlinks, unlike user.* */
    OK(symlink("f", "l"));
    OK(lsetxattr("l", "trusted.l", "L", 1, 0));
    EQ(lgetxattr("l", "trusted.l", buf, sizeof(buf)), 1);
    return 0;
}

static int setup_trusted(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("f", "x", 1, 0666));
    OK(chmod("f", 0666));
    OK(setxattr("f", "trusted.t", "T", 1, 0));
    OK(setxattr("f", "user.u", "U", 1, 0));
    OK(pt_write_file("secret", "x", 1, 0600));
    OK(setxattr("secret", "user.u", "U", 1, 0));
    OK(pt_write_file("ro", "x", 1, 0644));
    OK(setxattr("ro", "user.u", "U", 1, 0));
    OK(mkdir("sticky", 0777));
    OK(chmod("sticky", 01777));
    return 0;
}

static int user_namespaces(pt_ctx *c)
{
    (void)c;
    char buf[256];
    /* trusted.* is invisible and unwritable without CAP_SYS_ADMIN */
    ERR(getxattr("f", "trusted.t", buf, sizeof(buf)), ENODATA);
    ERR(setxattr("f", "trusted.x", "v", 1, 0), EPERM);
    ssize_t n = listxattr("f", buf, sizeof(buf));
    OK(n);
    EQ(list_has(buf, n, "trusted.t"), 0);
    EQ(list_has(buf, n, "user.u"), 1);
    /* security.* needs CAP_SYS_ADMIN to set */
    ERR(setxattr("f", "security.x", "v", 1, 0), EPERM);
    /* user.* follows the file's permission bits */
    OK(setxattr("f", "user.mine", "m", 1, 0));
    ERR(getxattr("secret", "user.u", buf, sizeof(buf)), EACCES);
    EQ(getxattr("ro", "user.u", buf, sizeof(buf)), 1);
    ERR(setxattr("ro", "user.u", "v", 1, 0), EACCES);
    ERR(removexattr("ro", "user.u"), EACCES);
    /* a sticky directory's user.* is the owner's */
    ERR(setxattr("sticky", "user.x", "v", 1, 0), EPERM);
    return 0;
}

/* POSIX ACLs either work (and then really are ACLs) or are refused
 * cleanly with EOPNOTSUPP; they are never stored as opaque blobs. */
static int acl(pt_ctx *c)
{
    (void)c;
    char buf[256];
    OK(pt_write_file("f", "x", 1, 0640));
    /* user::rw- user:54321:r-- group::r-- mask::r-- other::--- */
    struct {
        uint16_t tag, perm;
        uint32_t id;
    } __attribute__((packed)) ents[] = {
        {0x01, 6, 0xffffffff}, {0x02, 4, 54321}, {0x04, 4, 0xffffffff},
        {0x10, 4, 0xffffffff}, {0x20, 0, 0xffffffff},
    };
    char blob[4 + sizeof(ents)];
    uint32_t ver = 2;
    memcpy(blob, &ver, 4);
    memcpy(blob + 4, ents, sizeof(ents));
    errno = 0;
    int r = setxattr("f", "system.posix_acl_access", blob, sizeof(blob), 0);
    if (r != 0) {
        CHECK(errno == EOPNOTSUPP, "setting an ACL: %s, expected success or EOPNOTSUPP",
              pt_errname(errno));
        errno = 0;
        ssize_t g = getxattr("f", "system.posix_acl_access", buf, sizeof(buf));
        CHECK(g < 0 && (errno == EOPNOTSUPP || errno == ENODATA),
              "reading the ACL after a refused set: %zd %s", g, pt_errname(errno));
        OK(mkdir("d", 0755));
        ERR(setxattr("d", "system.posix_acl_default", blob, sizeof(blob), 0), EOPNOTSUPP);
        ssize_t n = listxattr("f", buf, sizeof(buf));
        OK(n);
        EQ(list_has(buf, n, "system.posix_acl_access"), 0);
        struct stat st;
        OK(stat("f", &st));
        EQ_MODE(st.st_mode, S_IFREG | 0640);
        return 0;
    }
    ssize_t g = getxattr("f", "system.posix_acl_access", buf, sizeof(buf));
    EQ(g, (ssize_t)sizeof(blob));
    CHECK(memcmp(buf, blob, sizeof(blob)) == 0, "ACL read back differs");
    struct stat st;
    OK(stat("f", &st));
    /* the group class bits show the mask */
    EQ_MODE(st.st_mode, S_IFREG | 0640);
    return 0;
}

static int xattr_survives_rename_link(pt_ctx *c)
{
    (void)c;
    char buf[16];
    OK(pt_write_file("f", "x", 1, 0644));
    OK(setxattr("f", "user.k", "kept", 4, 0));
    OK(rename("f", "g"));
    EQ(getxattr("g", "user.k", buf, sizeof(buf)), 4);
    OK(link("g", "h"));
    OK(setxattr("h", "user.k2", "two", 3, 0));
    EQ(getxattr("g", "user.k2", buf, sizeof(buf)), 3);
    /* O_TRUNC and writes keep attributes */
    OK(pt_write_file("g", "new content", 11, 0644));
    EQ(getxattr("g", "user.k", buf, sizeof(buf)), 4);
    return 0;
}

const pt_case pt_xattr_cases[] = {
    {"xattr/user_roundtrip", PT_BOTH, NULL, roundtrip},
    {"xattr/enodata", PT_BOTH, NULL, missing},
    {"xattr/erange", PT_BOTH, NULL, erange},
    {"xattr/create_replace", PT_BOTH, NULL, create_replace},
    {"xattr/list", PT_BOTH, NULL, list},
    {"xattr/sizes_e2big_erange", PT_BOTH, NULL, sizes},
    {"xattr/value_64k", PT_BOTH, NULL, big_value},
    {"xattr/dir_and_special_files", PT_BOTH, NULL, on_dir_and_special},
    {"xattr/trusted_security_root", PT_ROOT, NULL, trusted_security_root},
    {"xattr/user_namespaces", PT_USER, setup_trusted, user_namespaces},
    {"xattr/posix_acl", PT_BOTH, NULL, acl},
    {"xattr/survive_rename_link_trunc", PT_BOTH, NULL, xattr_survives_rename_link},
    {NULL, 0, NULL, NULL},
};
