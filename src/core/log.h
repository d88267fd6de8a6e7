/* log.h - leveled logging to stderr, one write per line */
#ifndef DST_LOG_H
#define DST_LOG_H

enum dst_log_level {
    DST_LOG_DEBUG,
    DST_LOG_INFO,
    DST_LOG_WARN,
    DST_LOG_ERROR,
};

/*
 * Lines look like "2026-11-21T10:00:00.123Z info  api: message" and go to stderr in one
 * write(2), so lines of concurrent threads never interleave. Thread-safe.
 * dst_log_init sets the component name and the minimum level (default "dstmc", info).
 */
void dst_log_init(const char *component, enum dst_log_level min);
void dst_log_set_level(enum dst_log_level min);
enum dst_log_level dst_log_get_level(void);

/* Parses "debug", "info", "warn", "error"; DST_EINVAL otherwise. */
int dst_log_level_parse(const char *s, enum dst_log_level *out);

void dst_log(enum dst_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define dst_debug(...) dst_log(DST_LOG_DEBUG, __VA_ARGS__)
#define dst_info(...)  dst_log(DST_LOG_INFO, __VA_ARGS__)
#define dst_warn(...)  dst_log(DST_LOG_WARN, __VA_ARGS__)
#define dst_error(...) dst_log(DST_LOG_ERROR, __VA_ARGS__)

/*
 * Prints exactly "listening on SCHEME://HOST:PORT" (IPv6 hosts in brackets) to stderr and
 * flushes, whatever the level: scripts and tests wait for this line.
 */
void dst_log_listening(const char *scheme, const char *host, int port);

#endif
