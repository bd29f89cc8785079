/* names.c — names and paths: 255-byte names, any byte but '/' and NUL,
 * deep paths, readdir completeness and d_type. */
#include "tests/posix/suite.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Count how often name appears in a listing of dir. */
static int seen(const char *dir, const char *name, unsigned char *type)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, name) == 0) {
            n++;
            if (type)
                *type = e->d_type;
        }
    }
    closedir(d);
    return n;
}

static int name255(pt_ctx *c)
{
    (void)c;
    char n[300];
    memset(n, 'a', 255);
    n[255] = 0;
    OK(pt_write_file(n, "x", 1, 0644));
    EQ(seen(".", n, NULL), 1);
    /* 255 bytes of multibyte UTF-8 (85 x 3 bytes) */
    char u[300] = "";
    for (int i = 0; i < 85; i++)
        strcat(u, "\xe2\x82\xac"); /* EURO SIGN */
    EQ(strlen(u), 255);
    OK(mkdir(u, 0755));
    EQ(seen(".", u, NULL), 1);
    /* one more byte is too long everywhere */
    char l[300];
    memset(l, 'b', 256);
    l[256] = 0;
    struct stat st;
    ERR(stat(l, &st), ENAMETOOLONG);
    ERR(open(l, O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
    ERR(mkdir(l, 0755), ENAMETOOLONG);
    ERR(symlink("x", l), ENAMETOOLONG);
    ERR(mkfifo(l, 0644), ENAMETOOLONG);
    ERR(link(n, l), ENAMETOOLONG);
    ERR(rename(n, l), ENAMETOOLONG);
    ERR(unlink(l), ENAMETOOLONG);
    /* inside a path */
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", u, n);
    OK(pt_write_file(p, "y", 1, 0644));
    OK(stat(p, &st));
    EQ(st.st_size, 1);
    return 0;
}

static int odd_bytes(pt_ctx *c)
{
    (void)c;
    static const char *names[] = {
        "with space", " lead", "trail ", "new\nline", "tab\there", "\x01\x02\x7f",
        "\xff\xfe\x80 latin1 \xe9", "colon:semi;", "back\\slash", "*?[]", "-dash",
        "..dots", "...", ".hidden", "quote'\"", "%s%n", "\xf0\x9f\x98\x80 emoji",
    };
    unsigned k = sizeof(names) / sizeof(names[0]);
    for (unsigned i = 0; i < k; i++)
        OK(pt_write_file(names[i], names[i], strlen(names[i]), 0644));
    for (unsigned i = 0; i < k; i++) {
        unsigned char t = 0;
        CHECK(seen(".", names[i], &t) == 1, "name #%u not listed exactly once", i);
        char got[64];
        ssize_t r = pt_read_file(names[i], got, sizeof(got));
        EQ(r, (ssize_t)strlen(names[i]));
        CHECK(memcmp(got, names[i], (size_t)r) == 0, "name #%u content", i);
    }
    return 0;
}

/* A directory chain whose full path is longer than PATH_MAX: relative
 * operations work at every depth; a too long path is ENAMETOOLONG. */
static int deep(pt_ctx *c)
{
    char comp[201];
    memset(comp, 'p', 200);
    comp[200] = 0;
    int depth = 30; /* ~6000 bytes */
    int start = open(".", O_RDONLY | O_DIRECTORY);
    OK(start);
    for (int i = 0; i < depth; i++) {
        OK(mkdir(comp, 0755));
        OK(chdir(comp));
    }
    OK(pt_write_file("leaf", "deep", 4, 0644));
    struct stat st;
    OK(stat("leaf", &st));
    EQ(st.st_size, 4);
    char *cwd = getcwd(NULL, 0);
    CHECK(cwd && strlen(cwd) > PATH_MAX, "getcwd at depth: %s", cwd ? "short" : pt_errname(errno));
    free(cwd);
    OK(fchdir(start));
    /* an absolute path just below PATH_MAX works */
    char *p = malloc(8192);
    CHECK(p, "malloc");
    int len = snprintf(p, 8192, "%s", c->dir);
    int levels = 0;
    while (len + 201 + 5 < PATH_MAX && levels < depth) {
        len += snprintf(p + len, (size_t)(8192 - len), "/%s", comp);
        levels++;
    }
    OK(stat(p, &st));
    CHECK(S_ISDIR(st.st_mode), "deep directory");
    /* the whole chain as one path is too long */
    len = snprintf(p, 8192, ".");
    for (int i = 0; i < depth; i++)
        len += snprintf(p + len, (size_t)(8192 - len), "/%s", comp);
    snprintf(p + len, (size_t)(8192 - len), "/leaf");
    ERR(stat(p, &st), ENAMETOOLONG);
    /* many short levels */
    for (int i = 0; i < 200; i++) {
        OK(mkdir("s", 0755));
        OK(chdir("s"));
    }
    OK(pt_write_file("leaf", "x", 1, 0644));
    OK(fchdir(start));
    len = snprintf(p, 8192, ".");
    for (int i = 0; i < 200; i++)
        len += snprintf(p + len, (size_t)(8192 - len), "/s");
    snprintf(p + len, (size_t)(8192 - len), "/leaf");
    OK(stat(p, &st));
    EQ(st.st_size, 1);
    free(p);
    close(start);
    return 0;
}

static int readdir_types(pt_ctx *c)
{
    (void)c;
    enum { N = 1000 };
    OK(mkdir("d", 0755));
    for (int i = 0; i < N; i++) {
        char n[64];
        snprintf(n, sizeof(n), "d/entry-%04d", i);
        switch (i % 4) {
        case 0: OK(pt_write_file(n, "", 0, 0644)); break;
        case 1: OK(mkdir(n, 0755)); break;
        case 2: OK(symlink("target", n)); break;
        case 3: OK(mkfifo(n, 0644)); break;
        }
    }
    static unsigned char count[N];
    memset(count, 0, sizeof(count));
    DIR *d = opendir("d");
    CHECK(d, "opendir");
    struct dirent *e;
    int dots = 0;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            dots++;
            CHECK(e->d_type == DT_DIR || e->d_type == DT_UNKNOWN, "%s d_type %d", e->d_name,
                  e->d_type);
            continue;
        }
        int i;
        CHECK(sscanf(e->d_name, "entry-%d", &i) == 1 && i >= 0 && i < N, "stray entry %s",
              e->d_name);
        count[i]++;
        static const unsigned char want[4] = {DT_REG, DT_DIR, DT_LNK, DT_FIFO};
        CHECK(e->d_type == want[i % 4], "%s has d_type %d, expected %d", e->d_name, e->d_type,
              want[i % 4]);
    }
    closedir(d);
    EQ(dots, 2);
    for (int i = 0; i < N; i++)
        CHECK(count[i] == 1, "entry-%04d listed %d times", i, count[i]);
    struct stat st;
    OK(stat("d", &st));
    EQ(st.st_nlink, 2 + N / 4);
    return 0;
}

static int readdir_dot_inodes(pt_ctx *c)
{
    (void)c;
    struct stat self, parent, sub;
    OK(mkdir("a", 0755));
    OK(mkdir("a/b", 0755));
    OK(stat("a", &parent));
    OK(stat("a/b", &self));
    DIR *d = opendir("a/b");
    CHECK(d, "opendir");
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0) {
            EQ(e->d_ino, self.st_ino);
            found++;
        } else if (strcmp(e->d_name, "..") == 0) {
            EQ(e->d_ino, parent.st_ino);
            found++;
        }
    }
    closedir(d);
    EQ(found, 2);
    /* entries carry the inode numbers stat reports */
    OK(pt_write_file("a/f", "x", 1, 0644));
    OK(stat("a/f", &sub));
    d = opendir("a");
    CHECK(d, "opendir");
    while ((e = readdir(d)))
        if (strcmp(e->d_name, "f") == 0)
            EQ(e->d_ino, sub.st_ino);
        else if (strcmp(e->d_name, "b") == 0)
            EQ(e->d_ino, self.st_ino);
    closedir(d);
    return 0;
}

/* Names that exist for the whole listing are returned exactly once, even
 * while other names come and go. */
static int readdir_changing(pt_ctx *c)
{
    (void)c;
    enum { N = 600 };
    OK(mkdir("d", 0755));
    for (int i = 0; i < N; i++) {
        char n[32];
        snprintf(n, sizeof(n), "d/keep-%d", i);
        OK(pt_write_file(n, "", 0, 0644));
        snprintf(n, sizeof(n), "d/gone-%d", i);
        OK(pt_write_file(n, "", 0, 0644));
    }
    static unsigned char count[N];
    memset(count, 0, sizeof(count));
    DIR *d = opendir("d");
    CHECK(d, "opendir");
    struct dirent *e;
    int k = 0;
    while ((e = readdir(d))) {
        int i;
        if (sscanf(e->d_name, "keep-%d", &i) == 1) {
            CHECK(i >= 0 && i < N, "stray %s", e->d_name);
            count[i]++;
        }
        if (++k == 100) {
            for (int j = 0; j < N; j++) {
                char n[32];
                snprintf(n, sizeof(n), "d/gone-%d", j);
                OK(unlink(n));
                snprintf(n, sizeof(n), "d/new-%d", j);
                OK(pt_write_file(n, "", 0, 0644));
            }
        }
    }
    closedir(d);
    for (int i = 0; i < N; i++)
        CHECK(count[i] == 1, "keep-%d listed %d times", i, count[i]);
    return 0;
}

static int long_socket_path(pt_ctx *c)
{
    (void)c;
    /* sockets bound by a relative path in a deep directory */
    OK(mkdir("sockdir", 0755));
    OK(chdir("sockdir"));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memset(sa.sun_path, 'k', sizeof(sa.sun_path) - 1);
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    OK(s);
    OK(bind(s, (struct sockaddr *)&sa, sizeof(sa)));
    close(s);
    struct stat st;
    OK(lstat(sa.sun_path, &st));
    CHECK(S_ISSOCK(st.st_mode), "socket node mode 0%o", st.st_mode);
    return 0;
}

const pt_case pt_names_cases[] = {
    {"names/name_255_bytes", PT_BOTH, NULL, name255},
    {"names/any_byte", PT_BOTH, NULL, odd_bytes},
    {"names/deep_paths", PT_BOTH, NULL, deep},
    {"names/readdir_complete_dtype", PT_BOTH, NULL, readdir_types},
    {"names/readdir_dot_inodes", PT_BOTH, NULL, readdir_dot_inodes},
    {"names/readdir_while_changing", PT_BOTH, NULL, readdir_changing},
    {"names/socket_long_name", PT_BOTH, NULL, long_socket_path},
    {NULL, 0, NULL, NULL},
};
