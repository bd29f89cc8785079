/*
 * test_util.c — parsers, hex, byte order, buffers and file helpers.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>

#include "common/util.h"

static void test_parse_size(void **state)
{
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {
        {"0", 0}, {"4096", 4096}, {"4K", 4096}, {"4k", 4096}, {"4KiB", 4096},
        {"4KB", 4096}, {"64M", 64ULL << 20}, {"64MiB", 64ULL << 20}, {"1G", 1ULL << 30},
        {"2T", 2ULL << 40}, {"3P", 3ULL << 50}, {"15E", 15ULL << 60}, {"512B", 512},
        {"18446744073709551615", UINT64_MAX},
    };
    static const char *const bad[] = {
        "", "K", "-1", "+1", " 1", "1 ", "1.5G", "4X", "4KiBs", "4Ki B", "0x10", "16E",
        "18446744073709551616", "99999999999999999999K", "4iB", "4MM",
    };
    uint64_t v;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = 12345;
        if (parse_size(ok[i].s, &v) != 0)
            fail_msg("parse_size rejected '%s'", ok[i].s);
        assert_true(v == ok[i].v);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 12345;
        if (parse_size(bad[i], &v) != -EINVAL)
            fail_msg("parse_size accepted '%s'", bad[i]);
        assert_true(v == 12345);
    }
    assert_int_equal(parse_size(NULL, &v), -EINVAL);
}

static void test_parse_duration(void **state)
{
    static const struct {
        const char *s;
        uint64_t ms;
    } ok[] = {
        {"250ms", 250}, {"5s", 5000}, {"5", 5000}, {"0", 0}, {"2m", 120000},
        {"1h", 3600000}, {"1d", 86400000}, {"0ms", 0},
    };
    static const char *const bad[] = {
        "", "ms", "s", "-5s", "5 s", "5S", "1.5s", "5sec", "5us", "10x",
        "18446744073709551615s", "99999999999999999999",
    };
    uint64_t v;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = 777;
        if (parse_duration_ms(ok[i].s, &v) != 0)
            fail_msg("parse_duration_ms rejected '%s'", ok[i].s);
        assert_true(v == ok[i].ms);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 777;
        if (parse_duration_ms(bad[i], &v) != -EINVAL)
            fail_msg("parse_duration_ms accepted '%s'", bad[i]);
        assert_true(v == 777);
    }
}

static void test_parse_hostport(void **state)
{
    char host[64];
    uint16_t port = 1;
    static const char *const bad[] = {
        "", "host", "host:", ":80", "host:65536", "host:-1", "host:80x", "host: 80",
        "::1:80", "[::1]80", "[::1", "[]:80", "host:99999999999999999999",
    };
    size_t i;

    (void)state;
    assert_int_equal(parse_hostport("127.0.0.1:8080", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_int_equal(parse_hostport("example.org:0", host, sizeof(host), &port), 0);
    assert_string_equal(host, "example.org");
    assert_int_equal(port, 0);
    assert_int_equal(parse_hostport("h:65535", host, sizeof(host), &port), 0);
    assert_int_equal(port, 65535);
    assert_int_equal(parse_hostport("[::1]:443", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 443);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse_hostport(bad[i], host, sizeof(host), &port) != -EINVAL)
            fail_msg("parse_hostport accepted '%s'", bad[i]);
    /* Host must fit with its NUL. */
    assert_int_equal(parse_hostport("abcd:1", host, 5, &port), 0);
    assert_string_equal(host, "abcd");
    assert_int_equal(parse_hostport("abcde:1", host, 5, &port), -EINVAL);
}

static void test_hex(void **state)
{
    uint8_t in[256], out[256];
    char text[513];
    size_t i;

    (void)state;
    for (i = 0; i < 256; i++)
        in[i] = (uint8_t)i;
    hex_encode(in, 256, text);
    assert_int_equal(strlen(text), 512);
    assert_memory_equal(text, "000102030405060708090a0b0c0d0e0f10", 34);
    assert_string_equal(text + 500, "fafbfcfdfeff");
    assert_int_equal(hex_decode(text, 512, out, 256), 0);
    assert_memory_equal(in, out, 256);
    /* Upper case decodes too. */
    assert_int_equal(hex_decode("DEADbeef", 8, out, 4), 0);
    assert_memory_equal(out, "\xde\xad\xbe\xef", 4);
    hex_encode(in, 0, text);
    assert_string_equal(text, "");
    assert_int_equal(hex_decode("", 0, out, 0), 0);
    /* Wrong length or a non-hex digit. */
    assert_int_equal(hex_decode("abc", 3, out, 2), -EINVAL);
    assert_int_equal(hex_decode("abcd", 4, out, 1), -EINVAL);
    assert_int_equal(hex_decode("abcdef", 6, out, 4), -EINVAL);
    assert_int_equal(hex_decode("0g", 2, out, 1), -EINVAL);
    assert_int_equal(hex_decode("g0", 2, out, 1), -EINVAL);
    assert_int_equal(hex_decode(" 0", 2, out, 1), -EINVAL);
}

static void test_le(void **state)
{
    uint8_t b[8];

    (void)state;
    put_le16(b, 0x1234);
    assert_memory_equal(b, "\x34\x12", 2);
    assert_int_equal(get_le16(b), 0x1234);
    put_le32(b, 0xdeadbeef);
    assert_memory_equal(b, "\xef\xbe\xad\xde", 4);
    assert_int_equal(get_le32(b), 0xdeadbeef);
    put_le64(b, 0x0102030405060708ULL);
    assert_memory_equal(b, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
    assert_true(get_le64(b) == 0x0102030405060708ULL);
    put_le64(b, UINT64_MAX);
    assert_true(get_le64(b) == UINT64_MAX);
}

static void test_buf(void **state)
{
    buf b = {0};
    uint8_t *p;
    size_t len, i;
    char big[1000];

    (void)state;
    buf_append(&b, "ab", 2);
    buf_printf(&b, "%d-%s", 42, "x");
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "ab42-x", 6);
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    buf_printf(&b, "%s!", big);
    assert_int_equal(b.len, 6 + 999 + 1);
    assert_int_equal(b.data[b.len - 1], '!');
    for (i = 0; i < 10000; i++)
        buf_append(&b, "q", 1);
    assert_int_equal(b.len, 11006);
    assert_true(b.cap >= b.len);
    p = buf_steal(&b, &len);
    assert_int_equal(len, 11006);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_memory_equal(p, "ab42-x", 6);
    free(p);
    /* Stealing an empty buffer still yields something to free. */
    p = buf_steal(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 0);
    free(p);
    buf_append(&b, "x", 1);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    buf_free(&b);
}

static void test_clocks(void **state)
{
    int64_t a = now_mono_ns(), b2, r = now_realtime_ns();

    (void)state;
    b2 = now_mono_ns();
    assert_true(b2 >= a);
    /* After 2020-01-01. */
    assert_true(r > 1577836800LL * 1000000000);
    assert_true(now_mono_ms() >= a / 1000000);
}

static char *mktmp(void)
{
    char *d = xstrdup("/tmp/cairn-test-util-XXXXXX");

    assert_non_null(mkdtemp(d));
    return d;
}

static void rmtree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;

    if (!d) {
        unlink(path);
        return;
    }
    while ((e = readdir(d))) {
        char *p;

        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        p = xasprintf("%s/%s", path, e->d_name);
        rmtree(p);
        free(p);
    }
    closedir(d);
    rmdir(path);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    assert_non_null(d);
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void test_write_file_atomic_and_read_file(void **state)
{
    char *dir = mktmp(), *path = xasprintf("%s/f", dir);
    uint8_t *data;
    size_t len;
    struct stat st;

    (void)state;
    assert_int_equal(write_file_atomic(path, "hello", 5), 0);
    assert_int_equal(read_file(path, 100, &data, &len), 0);
    assert_int_equal(len, 5);
    assert_string_equal((char *)data, "hello"); /* NUL-terminated */
    free(data);
    /* Replace; no temp file left behind. */
    assert_int_equal(write_file_atomic(path, "second version", 14), 0);
    assert_int_equal(read_file(path, 14, &data, &len), 0);
    assert_int_equal(len, 14);
    assert_memory_equal(data, "second version", 14);
    free(data);
    assert_int_equal(count_entries(dir), 1);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);

    /* Limits: exactly max is fine, one more is -EFBIG. */
    assert_int_equal(read_file(path, 13, &data, &len), -EFBIG);
    assert_int_equal(read_file(path, 0, &data, &len), -EFBIG);
    /* Empty file. */
    assert_int_equal(write_file_atomic(path, "", 0), 0);
    assert_int_equal(read_file(path, 0, &data, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(data[0], '\0');
    free(data);

    assert_int_equal(read_file(dir, 100, &data, &len), -EISDIR);
    free(path);
    path = xasprintf("%s/missing", dir);
    assert_int_equal(read_file(path, 100, &data, &len), -ENOENT);
    free(path);
    path = xasprintf("%s/nodir/f", dir);
    assert_int_equal(write_file_atomic(path, "x", 1), -ENOENT);
    assert_int_equal(count_entries(dir), 1);
    free(path);
    rmtree(dir);
    free(dir);
}

static void test_read_file_stream_limit(void **state)
{
    uint8_t *data;
    size_t len;

    (void)state;
    /* Not a regular file: the size is unknown up front and the limit is
     * enforced while reading. */
    assert_int_equal(read_file("/dev/zero", 10000, &data, &len), -EFBIG);
    assert_int_equal(read_file("/dev/null", 10, &data, &len), 0);
    assert_int_equal(len, 0);
    free(data);
}

static void test_full_io(void **state)
{
    char *dir = mktmp(), *path = xasprintf("%s/io", dir);
    uint8_t w[10000], r[10000];
    size_t i;
    int fd;

    (void)state;
    for (i = 0; i < sizeof(w); i++)
        w[i] = (uint8_t)(i * 31);
    fd = open(path, O_RDWR | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write_full(fd, w, sizeof(w)), 0);
    assert_int_equal(pwrite_full(fd, "XY", 2, 20000), 0);
    assert_int_equal(pread_full(fd, r, sizeof(w), 0), 0);
    assert_memory_equal(r, w, sizeof(w));
    assert_int_equal(pread_full(fd, r, 2, 20000), 0);
    assert_memory_equal(r, "XY", 2);
    /* Short read at EOF. */
    assert_int_equal(pread_full(fd, r, 3, 20000), -EIO);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(read_full(fd, r, 100), 0);
    assert_memory_equal(r, w, 100);
    assert_int_equal(lseek(fd, 20001, SEEK_SET), 20001);
    assert_int_equal(read_full(fd, r, 2), -EIO);
    close(fd);
    assert_int_equal(write_full(-1, "x", 1), -EBADF);
    free(path);
    rmtree(dir);
    free(dir);
}

static void test_mkdir_p(void **state)
{
    char *dir = mktmp(), *deep = xasprintf("%s/a/b//c/", dir), *file;
    struct stat st;

    (void)state;
    assert_int_equal(mkdir_p(deep, 0755), 0);
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(mkdir_p(deep, 0755), 0); /* exists: fine */
    file = xasprintf("%s/a/file", dir);
    assert_int_equal(write_file_atomic(file, "x", 1), 0);
    assert_int_equal(mkdir_p(file, 0755), -ENOTDIR);
    free(file);
    file = xasprintf("%s/a/file/sub", dir);
    assert_int_equal(mkdir_p(file, 0755), -ENOTDIR);
    assert_int_equal(mkdir_p("", 0755), -EINVAL);
    assert_int_equal(fsync_dir(dir), 0);
    free(file);
    free(deep);
    rmtree(dir);
    free(dir);
}

static void test_xalloc(void **state)
{
    char *s;
    int *z;

    (void)state;
    s = xasprintf("%s-%05d", "id", 42);
    assert_string_equal(s, "id-00042");
    free(s);
    s = xstrndup("abcdef", 3);
    assert_string_equal(s, "abc");
    free(s);
    z = xcalloc(16, sizeof(*z));
    assert_int_equal(z[15], 0);
    z = xrealloc(z, 1000 * sizeof(*z));
    z[999] = 1;
    free(z);
    assert_int_equal(ARRAY_LEN(((int[7]){0})), 7);
    assert_int_equal(MIN(3, 9), 3);
    assert_int_equal(MAX(3, 9), 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_hostport),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_le),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_write_file_atomic_and_read_file),
        cmocka_unit_test(test_read_file_stream_limit),
        cmocka_unit_test(test_full_io),
        cmocka_unit_test(test_mkdir_p),
        cmocka_unit_test(test_xalloc),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
