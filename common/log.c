/*
 * log.c — leveled log lines, one write(2) each (see log.h).
 */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Set once at startup before threads exist (log.h), read by every thread. */
static enum log_level cur_level = LOG_INFO;
static const char *component = "cairn";
static int log_fd = STDERR_FILENO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* Longer messages are cut: a log line is for a human, and one bounded
 * buffer keeps a line to one write(2) without allocating. */
#define LOG_LINE_MAX 4096

void log_set_level(enum log_level lvl)
{
    if (lvl > LOG_DEBUG)
        lvl = LOG_DEBUG;
    cur_level = lvl;
}

enum log_level log_get_level(void)
{
    return cur_level;
}

int log_parse_level(const char *s, enum log_level *out)
{
    size_t i;

    if (!s)
        return -EINVAL;
    for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -EINVAL;
}

void log_set_component(const char *name)
{
    component = name ? name : "cairn";
}

int log_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

    if (fd < 0)
        return -errno;
    if (log_fd != STDERR_FILENO)
        close(log_fd);
    log_fd = fd;
    return 0;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    size_t len, i, start;
    int n, saved_errno = errno;

    if (lvl > cur_level)
        return;
    if (lvl > LOG_DEBUG)
        lvl = LOG_DEBUG;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, ts.tv_nsec / 1000000, level_names[lvl], component);
    if (n < 0)
        goto out;
    start = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;

    va_start(ap, fmt);
    n = vsnprintf(line + start, sizeof(line) - start, fmt, ap);
    va_end(ap);
    if (n < 0)
        goto out;
    len = start + (size_t)n;
    if (len > sizeof(line) - 2) {
        len = sizeof(line) - 2;
        memcpy(line + len - 3, "...", 3);
    }
    while (len > start && line[len - 1] == '\n')
        len--;
    /* Messages quote peer-supplied text (names, paths); keep one entry per
     * line so that logs stay greppable and cannot be forged. */
    for (i = start; i < len; i++)
        if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
            line[i] = ' ';
    line[len++] = '\n';
    while (write(log_fd, line, len) < 0 && errno == EINTR)
        ;
out:
    errno = saved_errno;
}
