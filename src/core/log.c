/* log.c - leveled logging to stderr, one write per line */
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/datetime.h"
#include "core/err.h"

static const char *component = "dstmc";
static atomic_int min_level = DST_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void dst_log_init(const char *name, enum dst_log_level min)
{
    component = name ? name : "dstmc";
    atomic_store(&min_level, (int)min);
}

void dst_log_set_level(enum dst_log_level min)
{
    atomic_store(&min_level, (int)min);
}

enum dst_log_level dst_log_get_level(void)
{
    return (enum dst_log_level)atomic_load(&min_level);
}

int dst_log_level_parse(const char *s, enum dst_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (s && strcmp(s, level_names[i]) == 0) {
            *out = (enum dst_log_level)i;
            return 0;
        }
    }
    return DST_EINVAL;
}

/* Writes all of p, retrying short writes; gives up silently on errors (stderr is gone). */
static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

void dst_log(enum dst_log_level lvl, const char *fmt, ...)
{
    char line[2048];
    char ts[DST_DATETIME_LEN];
    va_list ap;

    if ((int)lvl < atomic_load(&min_level))
        return;
    dst_datetime_format_utc(dst_datetime_now_ms(), ts);
    int n = snprintf(line, sizeof(line), "%s %-5s %s: ", ts, level_names[lvl], component);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2; /* a prefix too long for the line: the message is cut */
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2; /* truncated: keep the newline */
    line[len++] = '\n';
    write_all(line, len);
}

void dst_log_listening(const char *scheme, const char *host, int port)
{
    char line[320];
    bool v6 = strchr(host, ':') != NULL;
    int n = snprintf(line, sizeof(line), "listening on %s://%s%s%s:%d\n", scheme, v6 ? "[" : "",
                     host, v6 ? "]" : "", port);
    if (n > 0)
        write_all(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}
