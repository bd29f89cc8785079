/*
 * mount.cairn — the helper mount(8) runs for "mount -t cairn" and fstab
 * lines of type cairn:
 *
 *   mount.cairn METAD_HOST:PORT MOUNTPOINT [-sfnv] [-o OPTIONS]
 *
 * It runs cairn-mount (found next to this program, else in PATH) with the
 * same options; cairn-mount mounts, detaches and returns, as mount(8)
 * expects. Single-threaded; no state.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *spec = NULL, *dir = NULL, *opts = NULL;
    int fake = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            opts = argv[++i];
        } else if (strncmp(argv[i], "-o", 2) == 0 && argv[i][2]) {
            opts = argv[i] + 2;
        } else if (argv[i][0] == '-') {
            /* -s sloppy, -n no mtab, -v verbose: nothing to do; -f fake. */
            if (strchr(argv[i], 'f'))
                fake = 1;
        } else if (!spec) {
            spec = argv[i];
        } else if (!dir) {
            dir = argv[i];
        } else {
            fprintf(stderr, "mount.cairn: unexpected argument '%s'\n", argv[i]);
            return 1;
        }
    }
    if (!spec || !dir) {
        fprintf(stderr, "usage: mount.cairn METAD_HOST:PORT MOUNTPOINT [-o OPTIONS]\n");
        return 1;
    }
    if (fake)
        return 0;
    char prog[PATH_MAX + 16];
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    const char *path = "cairn-mount";
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            snprintf(prog, sizeof(prog), "%s/cairn-mount", self);
            if (access(prog, X_OK) == 0)
                path = prog;
        }
    }
    char *args[8];
    int k = 0;
    args[k++] = "cairn-mount";
    if (opts && opts[0]) {
        args[k++] = "-o";
        args[k++] = (char *)opts;
    }
    args[k++] = (char *)spec;
    args[k++] = (char *)dir;
    args[k] = NULL;
    if (strchr(path, '/'))
        execv(path, args);
    else
        execvp(path, args);
    fprintf(stderr, "mount.cairn: cannot run %s: %s\n", path, strerror(errno));
    return 1;
}
