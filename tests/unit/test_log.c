/*
 * test_log.c — level parsing and filtering, the line format, and one line
 * per message whatever the message contains.
 */
#include <errno.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "common/util.h"

static char logpath[] = "/tmp/cairn-test-log-XXXXXX";

static char *log_contents(void)
{
    FILE *f = fopen(logpath, "r");
    char *text = xcalloc(1, 1 << 16);
    size_t n;

    assert_non_null(f);
    n = fread(text, 1, (1 << 16) - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_parse_level(void **state)
{
    enum log_level l = LOG_ERROR;

    (void)state;
    assert_int_equal(log_parse_level("debug", &l), 0);
    assert_int_equal(l, LOG_DEBUG);
    assert_int_equal(log_parse_level("info", &l), 0);
    assert_int_equal(l, LOG_INFO);
    assert_int_equal(log_parse_level("warn", &l), 0);
    assert_int_equal(l, LOG_WARN);
    assert_int_equal(log_parse_level("error", &l), 0);
    assert_int_equal(l, LOG_ERROR);
    assert_int_equal(log_parse_level("loud", &l), -EINVAL);
    assert_int_equal(log_parse_level("", &l), -EINVAL);
    assert_int_equal(l, LOG_ERROR);
}

static void test_format_and_filter(void **state)
{
    regex_t re;
    char *text, *line2;
    int fd;

    (void)state;
    fd = mkstemp(logpath);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(log_open(logpath), 0);
    log_set_component("unit");
    log_set_level(LOG_WARN);
    assert_int_equal(log_get_level(), LOG_WARN);
    log_info("hidden %d", 1);
    log_debug("hidden %d", 2);
    log_warn("shown %d", 3);
    log_error("also shown %s", "x");
    text = log_contents();
    assert_int_equal(count_lines(text), 2);
    assert_null(strstr(text, "hidden"));
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                             "warn unit: shown 3\n",
                             REG_EXTENDED),
                     0);
    assert_int_equal(regexec(&re, text, 0, NULL, 0), 0);
    regfree(&re);
    line2 = strchr(text, '\n') + 1;
    assert_non_null(strstr(line2, " error unit: also shown x\n"));
    free(text);

    log_set_level(LOG_DEBUG);
    log_debug("now %s", "visible");
    text = log_contents();
    assert_int_equal(count_lines(text), 3);
    assert_non_null(strstr(text, " debug unit: now visible\n"));
    free(text);
}

static void test_one_line_per_message(void **state)
{
    char *big = xmalloc(10000), *text;
    size_t before;

    (void)state;
    text = log_contents();
    before = count_lines(text);
    free(text);
    /* Embedded newlines (e.g. from a peer-supplied name) and a trailing one. */
    log_warn("name=%s", "evil\n2026-01-01T00:00:00.000Z error unit: forged");
    log_warn("trailing newline\n");
    memset(big, 'a', 9999);
    big[9999] = '\0';
    log_warn("%s", big);
    text = log_contents();
    assert_int_equal(count_lines(text), before + 3);
    assert_non_null(strstr(text, "name=evil 2026"));
    assert_non_null(strstr(text, "trailing newline\n"));
    assert_non_null(strstr(text, "aaa...\n"));
    free(text);
    free(big);
    unlink(logpath);
}

static void test_errno_preserved(void **state)
{
    (void)state;
    errno = EXDEV;
    log_error("x");
    assert_int_equal(errno, EXDEV);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_level),
        cmocka_unit_test(test_format_and_filter),
        cmocka_unit_test(test_one_line_per_message),
        cmocka_unit_test(test_errno_preserved),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
