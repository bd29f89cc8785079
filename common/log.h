/*
 * log.h — one log module with levels (CONVENTIONS.md 18).
 *
 * Lines go to stderr (or a file set with log_open) as
 *   2026-01-02T03:04:05.678Z <level> <component>: message
 * Thread-safe: each line is written with one write(2). Counters belong in
 * /metrics, not here. log_set_level/log_open are called once at startup,
 * before threads exist.
 */
#ifndef CAIRN_LOG_H
#define CAIRN_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* Parse "error|warn|info|debug"; returns 0 or -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
/* Component name printed on every line (e.g. "metad"); static string. */
void log_set_component(const char *name);
/* Redirect to a file (append); returns 0 or -errno. */
int log_open(const char *path);

void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_get_level() >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
