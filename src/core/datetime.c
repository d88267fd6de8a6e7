/* datetime.c - wall clock, monotonic clock, ISO 8601 formatting and parsing */
#include "core/datetime.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"

/* gmtime/localtime bound every field, so the fixed formats below always fit. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

int64_t dst_datetime_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t dst_monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t dst_monotonic_ms(void)
{
    return dst_monotonic_us() / 1000;
}

/* Floor division for negative times (before 1970). */
static void split_ms(int64_t ms, time_t *sec, int *milli)
{
    int64_t s = ms / 1000;
    int64_t r = ms % 1000;
    if (r < 0) {
        r += 1000;
        s -= 1;
    }
    *sec = (time_t)s;
    *milli = (int)r;
}

void dst_datetime_format_utc(int64_t ms, char out[DST_DATETIME_LEN])
{
    time_t sec;
    int milli;
    struct tm tm;

    split_ms(ms, &sec, &milli);
    gmtime_r(&sec, &tm);
    snprintf(out, DST_DATETIME_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, milli);
}

void dst_datetime_format_local(int64_t ms, char out[DST_DATETIME_LEN])
{
    time_t sec;
    int milli;
    struct tm tm;

    split_ms(ms, &sec, &milli);
    localtime_r(&sec, &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(out, DST_DATETIME_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02ld:%02ld",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, milli,
             sign, off / 60, off % 60);
}

/* Reads exactly n digits at *p into *out and advances; false if they are not all digits. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

/* Parses "hh:mm[:ss[.frac]]" into tm and milliseconds. */
static bool parse_time(const char **p, struct tm *tm, int *milli)
{
    if (!digits(p, 2, &tm->tm_hour) || **p != ':')
        return false;
    (*p)++;
    if (!digits(p, 2, &tm->tm_min))
        return false;
    if (**p == ':') {
        (*p)++;
        if (!digits(p, 2, &tm->tm_sec))
            return false;
        if (**p == '.' || **p == ',') {
            (*p)++;
            int scale = 100, n = 0;
            while (isdigit((unsigned char)**p)) {
                *milli += (**p - '0') * scale;
                scale /= 10;
                (*p)++;
                n++;
            }
            if (n == 0)
                return false;
        }
    }
    return tm->tm_hour < 24 && tm->tm_min < 60 && tm->tm_sec < 60;
}

/* Parses "Z", "±hh:mm", "±hhmm" or "±hh" into seconds east of UTC. */
static bool parse_zone(const char **p, long *off)
{
    int h = 0, m = 0;
    if (**p == 'Z' || **p == 'z') {
        (*p)++;
        *off = 0;
        return true;
    }
    if (**p != '+' && **p != '-')
        return false;
    int sign = **p == '-' ? -1 : 1;
    (*p)++;
    if (!digits(p, 2, &h))
        return false;
    if (**p == ':') {
        (*p)++;
        if (!digits(p, 2, &m)) /* "+01:" alone is not a zone */
            return false;
    } else if (isdigit((unsigned char)**p) && !digits(p, 2, &m)) {
        return false;
    }
    if (h > 23 || m > 59)
        return false;
    *off = sign * (h * 3600L + m * 60L);
    return true;
}

int dst_datetime_parse(const char *s, int64_t *ms_out)
{
    struct tm tm;
    int milli = 0, y = 0, mo = 0, d = 0;
    long off = 0;
    bool zoned = false;
    const char *p = s;

    if (!s)
        return DST_EINVAL;
    memset(&tm, 0, sizeof(tm));
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return DST_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || y < 1)
        return DST_EINVAL;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!parse_time(&p, &tm, &milli))
            return DST_EINVAL;
        if (*p) {
            if (!parse_zone(&p, &off))
                return DST_EINVAL;
            zoned = true;
        }
    }
    if (*p)
        return DST_EINVAL;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    time_t t;
    if (zoned) {
        t = timegm(&tm) - off;
    } else {
        tm.tm_isdst = -1;
        t = mktime(&tm);
    }
    *ms_out = (int64_t)t * 1000 + milli;
    return 0;
}

int64_t dst_datetime_local_day_start(int64_t ms)
{
    time_t sec;
    int milli;
    struct tm tm;

    split_ms(ms, &sec, &milli);
    localtime_r(&sec, &tm);
    tm.tm_hour = 0;
    tm.tm_min = 0;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm) * 1000;
}
