/*
 * test_opts.c — the option table: flags, short options, booleans, config
 * file, precedence, errors, --help/--version and the man page list.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "common/opts.h"
#include "common/util.h"

static struct {
    char *data;
    char *listen;
    int64_t replicas;
    uint64_t chunk_size;
    uint64_t timeout_ms;
    int verbose;
    int fsync;
    enum log_level level;
} o;

static const opt_def defs[] = {
    {"data", 'd', OPT_STR, &o.data, NULL, "DIR", "data directory", 0, 0},
    {"listen", 'l', OPT_STR, &o.listen, "127.0.0.1:7000", "HOST:PORT", "address to listen on",
     0, 0},
    {"replicas", 'r', OPT_INT, &o.replicas, "2", "N", "copies of each chunk", 1, 16},
    {"chunk-size", 0, OPT_SIZE, &o.chunk_size, "4M", "SIZE", "chunk size", 4096, 1 << 30},
    {"timeout", 't', OPT_MS, &o.timeout_ms, "5s", "DURATION", "request timeout", 0, 0},
    {"verbose", 'v', OPT_BOOL, &o.verbose, "false", NULL, "more output", 0, 0},
    {"fsync", 0, OPT_BOOL, &o.fsync, "true", NULL, "sync writes", 0, 0},
    {"log-level", 0, OPT_LEVEL, &o.level, "info", "LEVEL", "log verbosity", 0, 0},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0},
};

static const opts_spec spec = {
    .prog = "cairn-test",
    .usage = "[OPTIONS] FILE...",
    .summary = "Exercises the option parser.",
    .defs = defs,
};

static char *tmpdir;

static int setup(void **state)
{
    (void)state;
    memset(&o, 0, sizeof(o));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    opts_free(&spec);
    return 0;
}

/* Run opts_parse on a NULL-terminated list; argv is kept for inspection. */
#define MAXARGS 32
static char *argv_buf[MAXARGS];
static int run(const char *first, ...)
{
    va_list ap;
    const char *a;
    int argc = 0;

    argv_buf[argc++] = (char *)"cairn-test";
    va_start(ap, first);
    for (a = first; a; a = va_arg(ap, const char *)) {
        assert_true(argc < MAXARGS - 1);
        argv_buf[argc++] = (char *)a;
    }
    va_end(ap);
    argv_buf[argc] = NULL;
    return opts_parse(&spec, argc, argv_buf);
}

/* Capture what fd 1 or 2 receives while parsing. */
struct capture {
    int fd, saved;
    FILE *tmp;
};

static void capture_begin(struct capture *c, int fd)
{
    fflush(fd == 1 ? stdout : stderr);
    c->fd = fd;
    c->tmp = tmpfile();
    assert_non_null(c->tmp);
    c->saved = dup(fd);
    assert_true(c->saved >= 0);
    assert_true(dup2(fileno(c->tmp), fd) >= 0);
}

static char *capture_end(struct capture *c)
{
    char *out;
    long n;

    fflush(c->fd == 1 ? stdout : stderr);
    assert_true(dup2(c->saved, c->fd) >= 0);
    close(c->saved);
    n = ftell(c->tmp);
    assert_true(n >= 0);
    out = xcalloc(1, (size_t)n + 1);
    rewind(c->tmp);
    assert_int_equal(fread(out, 1, (size_t)n, c->tmp), (size_t)n);
    fclose(c->tmp);
    return out;
}

/* Expect a parse failure whose stderr line mentions what. */
static void expect_error(int want_rc, const char *what, const char *first, ...)
{
    struct capture c;
    va_list ap;
    const char *a;
    char *err;
    int argc = 0, rc;

    argv_buf[argc++] = (char *)"cairn-test";
    va_start(ap, first);
    for (a = first; a; a = va_arg(ap, const char *))
        argv_buf[argc++] = (char *)a;
    va_end(ap);
    argv_buf[argc] = NULL;
    capture_begin(&c, 2);
    rc = opts_parse(&spec, argc, argv_buf);
    err = capture_end(&c);
    if (rc != want_rc || !strstr(err, what) || !strchr(err, '\n'))
        fail_msg("rc %d (want %d), stderr '%s' (want it to mention '%s')", rc, want_rc, err,
                 what);
    free(err);
}

static char *write_conf(const char *text)
{
    char *path = xasprintf("%s/conf-%d", tmpdir, rand());

    assert_int_equal(write_file_atomic(path, text, strlen(text)), 0);
    return path;
}

static void test_defaults(void **state)
{
    (void)state;
    assert_int_equal(run(NULL), 1);
    assert_null(o.data);
    assert_string_equal(o.listen, "127.0.0.1:7000");
    assert_int_equal(o.replicas, 2);
    assert_int_equal(o.chunk_size, 4 << 20);
    assert_int_equal(o.timeout_ms, 5000);
    assert_int_equal(o.verbose, 0);
    assert_int_equal(o.fsync, 1);
    assert_int_equal(o.level, LOG_INFO);
}

static void test_long_forms(void **state)
{
    (void)state;
    assert_int_equal(run("--data", "/srv/x", "--replicas=3", "--chunk-size", "1M",
                         "--timeout=250ms", "--log-level", "debug", "--listen=[::1]:80",
                         NULL),
                     10);
    assert_string_equal(o.data, "/srv/x");
    assert_int_equal(o.replicas, 3);
    assert_int_equal(o.chunk_size, 1 << 20);
    assert_int_equal(o.timeout_ms, 250);
    assert_int_equal(o.level, LOG_DEBUG);
    assert_string_equal(o.listen, "[::1]:80");
    /* A later value replaces an earlier one (and the earlier string is freed:
     * ASan would report the leak otherwise). */
    assert_int_equal(run("--data", "a", "--data", "b", "--data=c", NULL), 6);
    assert_string_equal(o.data, "c");
    /* A value that starts with '-' is still a value. */
    assert_int_equal(run("--data", "-weird", NULL), 3);
    assert_string_equal(o.data, "-weird");
    assert_int_equal(run("--data=", NULL), 2);
    assert_string_equal(o.data, "");
}

static void test_short_forms(void **state)
{
    (void)state;
    assert_int_equal(run("-d", "/d", "-r", "4", "-t2m", NULL), 6);
    assert_string_equal(o.data, "/d");
    assert_int_equal(o.replicas, 4);
    assert_int_equal(o.timeout_ms, 120000);
    /* Grouped flags with a trailing option that takes the next argument. */
    assert_int_equal(run("-vr", "5", NULL), 3);
    assert_int_equal(o.verbose, 1);
    assert_int_equal(o.replicas, 5);
    assert_int_equal(run("-vr6", NULL), 2);
    assert_int_equal(o.replicas, 6);
}

static void test_booleans(void **state)
{
    (void)state;
    assert_int_equal(run("--verbose", "--no-fsync", NULL), 3);
    assert_int_equal(o.verbose, 1);
    assert_int_equal(o.fsync, 0);
    assert_int_equal(run("--no-verbose", "--fsync", NULL), 3);
    assert_int_equal(o.verbose, 0);
    assert_int_equal(o.fsync, 1);
    assert_int_equal(run("--verbose=yes", "--fsync=0", NULL), 3);
    assert_int_equal(o.verbose, 1);
    assert_int_equal(o.fsync, 0);
    expect_error(-EINVAL, "verbose", "--verbose=maybe", NULL);
    expect_error(-EINVAL, "no-verbose", "--no-verbose=1", NULL);
    /* --no- only exists for booleans. */
    expect_error(-EINVAL, "no-data", "--no-data", NULL);
}

static void test_positionals_permuted(void **state)
{
    int rc;

    (void)state;
    rc = run("one", "--data", "/d", "two", "-v", "three", NULL);
    assert_int_equal(rc, 4);
    assert_string_equal(argv_buf[0], "cairn-test");
    assert_string_equal(argv_buf[rc], "one");
    assert_string_equal(argv_buf[rc + 1], "two");
    assert_string_equal(argv_buf[rc + 2], "three");
    assert_string_equal(o.data, "/d");
    assert_int_equal(o.verbose, 1);
    /* After "--" everything is positional; a lone "-" is positional. */
    rc = run("-", "--", "--verbose", "-x", NULL);
    assert_int_equal(rc, 2);
    assert_string_equal(argv_buf[rc], "-");
    assert_string_equal(argv_buf[rc + 1], "--verbose");
    assert_string_equal(argv_buf[rc + 2], "-x");
    assert_int_equal(o.verbose, 0);
}

static void test_config_file(void **state)
{
    char *path = write_conf("# a comment\n"
                            "\n"
                            "data = /from/file\n"
                            "  replicas=7  \n"
                            "chunk-size = 64K\n"
                            "verbose = yes\n"
                            "fsync = false\n"
                            "listen = \" spaced \"\n"
                            "log-level = warn\n");
    char *arg = xasprintf("--config=%s", path);

    (void)state;
    assert_int_equal(run("--config", path, NULL), 3);
    assert_string_equal(o.data, "/from/file");
    assert_int_equal(o.replicas, 7);
    assert_int_equal(o.chunk_size, 64 << 10);
    assert_int_equal(o.verbose, 1);
    assert_int_equal(o.fsync, 0);
    assert_string_equal(o.listen, " spaced ");
    assert_int_equal(o.level, LOG_WARN);
    /* Defaults still apply to what the file does not set. */
    assert_int_equal(o.timeout_ms, 5000);

    /* The command line overrides the file, wherever --config appears. */
    assert_int_equal(run("--replicas", "3", arg, "--no-verbose", "-d", "/cli", NULL), 7);
    assert_int_equal(o.replicas, 3);
    assert_int_equal(o.verbose, 0);
    assert_string_equal(o.data, "/cli");
    assert_int_equal(o.chunk_size, 64 << 10);
    free(arg);
    free(path);
}

static void test_config_file_errors(void **state)
{
    char *p;

    (void)state;
    p = write_conf("data = x\nbogus = 1\n");
    expect_error(-EINVAL, ":2: unknown option 'bogus'", "--config", p, NULL);
    free(p);
    p = write_conf("replicas = 99\n");
    expect_error(-ERANGE, "replicas", "--config", p, NULL);
    free(p);
    p = write_conf("just words\n");
    expect_error(-EINVAL, ":1:", "--config", p, NULL);
    free(p);
    p = write_conf("verbose = perhaps\n");
    expect_error(-EINVAL, "verbose", "--config", p, NULL);
    free(p);
    p = xasprintf("%s/does-not-exist", tmpdir);
    expect_error(-ENOENT, "does-not-exist", "--config", p, NULL);
    free(p);
    expect_error(-EINVAL, "config", "--config", NULL);
}

static void test_rejections(void **state)
{
    (void)state;
    expect_error(-EINVAL, "--bogus", "--bogus", NULL);
    expect_error(-EINVAL, "-x", "-x", NULL);
    expect_error(-EINVAL, "data", "--data", NULL);
    expect_error(-EINVAL, "-d", "-d", NULL);
    expect_error(-ERANGE, "replicas", "--replicas", "0", NULL);
    expect_error(-ERANGE, "replicas", "--replicas=17", NULL);
    expect_error(-EINVAL, "replicas", "--replicas", "two", NULL);
    expect_error(-EINVAL, "replicas", "--replicas", "2x", NULL);
    expect_error(-ERANGE, "chunk-size", "--chunk-size", "1K", NULL);
    expect_error(-ERANGE, "chunk-size", "--chunk-size", "2G", NULL);
    expect_error(-EINVAL, "chunk-size", "--chunk-size", "lots", NULL);
    expect_error(-EINVAL, "timeout", "--timeout", "soon", NULL);
    expect_error(-EINVAL, "log-level", "--log-level", "loud", NULL);
    /* Range ends are inclusive. */
    assert_int_equal(run("--replicas", "16", "--chunk-size", "4096", NULL), 5);
    assert_int_equal(o.replicas, 16);
    assert_int_equal(o.chunk_size, 4096);
}

static void test_help_and_version(void **state)
{
    struct capture c;
    char *out;
    int rc;

    (void)state;
    capture_begin(&c, 1);
    rc = run("--data", "/d", "--help", NULL);
    out = capture_end(&c);
    assert_int_equal(rc, OPTS_HELP);
    assert_non_null(strstr(out, "Usage: cairn-test [OPTIONS] FILE..."));
    assert_non_null(strstr(out, "Exercises the option parser."));
    assert_non_null(strstr(out, "-d, --data DIR"));
    assert_non_null(strstr(out, "--chunk-size SIZE"));
    assert_non_null(strstr(out, "(default: 4M)"));
    assert_non_null(strstr(out, "--[no-]fsync"));
    assert_non_null(strstr(out, "--config FILE"));
    free(out);

    capture_begin(&c, 1);
    rc = run("-h", NULL);
    out = capture_end(&c);
    assert_int_equal(rc, OPTS_HELP);
    assert_non_null(strstr(out, "--log-level LEVEL"));
    free(out);

    capture_begin(&c, 1);
    rc = run("--version", NULL);
    out = capture_end(&c);
    assert_int_equal(rc, OPTS_VERSION);
    assert_string_equal(out, "cairn-test " CAIRN_VERSION "\n");
    free(out);
}

static void test_man(void **state)
{
    FILE *f = tmpfile();
    char text[8192];
    size_t n;

    (void)state;
    assert_non_null(f);
    opts_print_man(&spec, f);
    rewind(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    assert_non_null(strstr(text, ".TP\n\\fB\\-d\\fR, \\fB\\-\\-data\\fR \\fIDIR\\fR\n"));
    assert_non_null(strstr(text, "\\-\\-chunk\\-size"));
    assert_non_null(strstr(text, "Default: \\fB4M\\fR."));
    assert_non_null(strstr(text, "\\-\\-config"));
    assert_non_null(strstr(text, "\\-\\-help"));
}

static int group_setup(void **state)
{
    (void)state;
    tmpdir = xstrdup("/tmp/cairn-test-opts-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    int rc;

    (void)state;
    rc = system(cmd);
    free(cmd);
    free(tmpdir);
    return rc == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_booleans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_positionals_permuted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help_and_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_man, setup, teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
