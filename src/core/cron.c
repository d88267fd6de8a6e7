/* cron.c - five-field cron expressions (Vixie semantics) and their next fire time in local time */
#include "core/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/err.h"

#define DAY_S        86400
#define SLACK_S      (3 * 3600) /* the largest DST shift looked around for (Troll's is 2 h) */
#define HORIZON_DAYS (8 * 366)  /* 8 years: Feb 29 comes at least once (2096 → 2104) */
#define FIELD_MAX    128        /* bytes of one field's text */

struct field {
    const char *name;
    int lo, hi;
    const char *const *names; /* names[i] is the value lo + i; NULL: numbers only */
    const char *hint;         /* " or a month name (JAN-DEC)" */
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
                                          "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

static const struct field fields[5] = {
    {"minute", 0, 59, NULL, ""},
    {"hour", 0, 23, NULL, ""},
    {"day-of-month", 1, 31, NULL, ""},
    {"month", 1, 12, month_names, " or a month name (JAN-DEC)"},
    {"day-of-week", 0, 7, day_names, " or a weekday name (SUN-SAT)"},
};

static const struct {
    const char *name, *expr;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* Reads one value, a number or (where the field has them) a name, from s (NUL-terminated). */
static int parse_value(const struct field *f, const char *s, const char *item, int *out, char *err,
                       size_t errlen)
{
    size_t n = strlen(s), digits = strspn(s, "0123456789");

    if (n == 0)
        return dst_errf(DST_EINVAL, err, errlen, "%s: '%s' lacks a value", f->name, item);
    if (digits == n) {
        int v = n > 4 ? 9999 : atoi(s);
        if (v < f->lo || v > f->hi)
            return dst_errf(DST_EINVAL, err, errlen, "%s: '%s' is out of %d-%d", f->name, s, f->lo,
                            f->hi);
        *out = v;
        return 0;
    }
    for (int i = 0; f->names && f->names[i]; i++) {
        if (strcasecmp(s, f->names[i]) == 0) {
            *out = f->lo + i;
            return 0;
        }
    }
    return dst_errf(DST_EINVAL, err, errlen, "%s: '%s' is not a number%s", f->name, s, f->hint);
}

/* Reads the step after '/' in item: 1 up to the field's width. */
static int parse_step(const struct field *f, const char *s, int *out, char *err, size_t errlen)
{
    size_t n = strlen(s);
    int width = f->hi == 7 ? 7 : f->hi - f->lo + 1; /* weekday 7 repeats 0 */
    int v = n == 0 || n > 4 || strspn(s, "0123456789") != n ? -1 : atoi(s);

    if (v < 1 || v > width)
        return dst_errf(DST_EINVAL, err, errlen, "%s: step '%s' is not a number in 1-%d", f->name,
                        s, width);
    *out = v;
    return 0;
}

/* Parses one list item ("*", "N", "A-B", each with an optional "/STEP") into bits. */
static int parse_item(const struct field *f, char *item, uint64_t *bits, char *err, size_t errlen)
{
    char *slash = strchr(item, '/'), *dash = NULL, whole[FIELD_MAX];
    int a = f->lo, b = f->hi, step = 1, rc = 0;

    snprintf(whole, sizeof(whole), "%s", item);
    if (slash) {
        *slash = '\0';
        rc = parse_step(f, slash + 1, &step, err, errlen);
    }
    if (rc == 0 && strcmp(item, "*") == 0) {
        b = f->hi == 7 ? 6 : f->hi; /* '*' in day-of-week: Sunday once, as 0 */
    } else if (rc == 0) {
        dash = strchr(item, '-');
        if (dash)
            *dash = '\0';
        rc = parse_value(f, item, whole, &a, err, errlen);
        rc = rc ? rc : dash ? parse_value(f, dash + 1, whole, &b, err, errlen) : 0;
        b = dash ? b : a;
    }
    if (rc == 0 && slash && !dash && strcmp(item, "*") != 0)
        return dst_errf(DST_EINVAL, err, errlen, "%s: '%s': a step needs '*' or a range before it",
                        f->name, whole);
    if (rc == 0 && a > b)
        return dst_errf(DST_EINVAL, err, errlen, "%s: '%s': the range starts after it ends",
                        f->name, whole);
    for (int v = a; rc == 0 && v <= b; v += step)
        *bits |= 1ULL << v;
    return rc;
}

/* Parses one field's text (a comma list) into bits; *star when it begins with '*'. */
static int parse_field(const struct field *f, const char *text, size_t len, uint64_t *bits,
                       bool *star, char *err, size_t errlen)
{
    char buf[FIELD_MAX];
    char *item, *save = NULL;
    int rc = 0;

    if (len >= sizeof(buf))
        return dst_errf(DST_EINVAL, err, errlen, "%s: longer than %d characters", f->name,
                        FIELD_MAX - 1);
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (buf[0] == ',' || buf[len - 1] == ',' || strstr(buf, ",,"))
        return dst_errf(DST_EINVAL, err, errlen, "%s: '%s' has an empty list item", f->name, buf);
    *star = buf[0] == '*';
    *bits = 0;
    for (item = strtok_r(buf, ",", &save); item && rc == 0; item = strtok_r(NULL, ",", &save))
        rc = parse_item(f, item, bits, err, errlen);
    if (f->hi == 7 && (*bits & 0x80))
        *bits = (*bits & 0x7f) | 1; /* 7 is Sunday too */
    return rc;
}

/* Splits expr at blanks into at most 6 fields: start and length of each; returns the count. */
static int split(const char *expr, const char *start[6], size_t len[6])
{
    int n = 0;
    const char *p = expr;

    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        size_t l = strcspn(p, " \t");
        if (n < 6) {
            start[n] = p;
            len[n] = l;
        }
        n++;
        p += l;
    }
    return n;
}

static int parse_macro(const char *name, size_t len, struct dst_cron *out, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
        if (strlen(macros[i].name) == len && strncasecmp(name, macros[i].name, len) == 0)
            return dst_cron_parse(macros[i].expr, out, err, errlen);
    }
    return dst_errf(
        DST_EINVAL, err, errlen,
        "'%.*s' is not a macro (@yearly, @annually, @monthly, @weekly, @daily, @midnight, "
        "@hourly)",
        (int)(len > 40 ? 40 : len), name);
}

int dst_cron_parse(const char *expr, struct dst_cron *out, char *err, size_t errlen)
{
    const char *start[6];
    size_t len[6];
    uint64_t bits[5];
    bool star[5];
    int n = split(expr ? expr : "", start, len), rc = 0;

    if (n >= 1 && start[0][0] == '@') {
        if (n > 1)
            return dst_errf(DST_EINVAL, err, errlen, "a macro stands alone, but '%.*s' follows it",
                            (int)len[1], start[1]);
        return parse_macro(start[0], len[0], out, err, errlen);
    }
    if (n != 5)
        return dst_errf(DST_EINVAL, err, errlen,
                        "expected 5 fields (minute hour day-of-month month day-of-week) or a "
                        "macro such as @hourly, got %d",
                        n);
    for (int i = 0; i < 5 && rc == 0; i++)
        rc = parse_field(&fields[i], start[i], len[i], &bits[i], &star[i], err, errlen);
    if (rc)
        return rc;
    *out = (struct dst_cron){.minute = bits[0],
                             .hour = (uint32_t)bits[1],
                             .dom = (uint32_t)bits[2],
                             .month = (uint16_t)bits[3],
                             .dow = (uint8_t)bits[4],
                             .dom_star = star[2],
                             .dow_star = star[4],
                             .wildcard = star[0] || star[1]};
    return 0;
}

/* ---- the calendar (proleptic Gregorian, days since 1970-01-01; H. Hinnant's algorithms) ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool day_matches(const struct dst_cron *c, int64_t day, int mday)
{
    int wday = (int)(floor_div(day + 4, 7) * -7 + day + 4); /* 1970-01-01 was a Thursday */
    bool dom = c->dom >> mday & 1, dow = c->dow >> wday & 1;
    return c->dom_star || c->dow_star ? dom && dow : dom || dow;
}

/* The first allowed hour:minute at or after h:m, false if none is left in the day. */
static bool first_time(const struct dst_cron *c, int h, int m, int *h_out, int *m_out)
{
    for (; h < 24; h++, m = 0) {
        if (!(c->hour >> h & 1))
            continue;
        for (; m < 60; m++) {
            if (c->minute >> m & 1) {
                *h_out = h;
                *m_out = m;
                return true;
            }
        }
    }
    return false;
}

/*
 * The first matching wall-clock time (seconds on the local calendar, as if it were UTC) at or
 * after w (a whole minute), if it is at most limit.
 */
static bool next_wall(const struct dst_cron *c, int64_t w, int64_t limit, int64_t *out)
{
    int64_t day = floor_div(w, DAY_S), y;
    int h = (int)(w - day * DAY_S) / 3600, m = (int)(w - day * DAY_S) % 3600 / 60, mon, mday;

    while (day * DAY_S <= limit) {
        civil_from_days(day, &y, &mon, &mday);
        if (!(c->month >> mon & 1)) {
            day = days_from_civil(mon == 12 ? y + 1 : y, mon == 12 ? 1 : mon + 1, 1);
        } else if (day_matches(c, day, mday) && first_time(c, h, m, &h, &m)) {
            *out = day * DAY_S + h * 3600 + m * 60;
            return *out <= limit;
        } else {
            day++;
        }
        h = m = 0;
    }
    return false;
}

/* ---- local time ---- */

static long offset_at(int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    return localtime_r(&tt, &tm) ? tm.tm_gmtoff : 0;
}

static int64_t wall_of(int64_t t)
{
    return t + offset_at(t);
}

/* The instants whose wall-clock time is w, ascending: 0 (in a gap), 1, or 2 (repeated). */
static int instants(int64_t w, int64_t out[2])
{
    long off[2] = {offset_at(w - DAY_S), offset_at(w + DAY_S)}; /* offsets either side */
    int n = 0;

    for (int i = 0; i < (off[0] == off[1] ? 1 : 2); i++) {
        if (wall_of(w - off[i]) == w)
            out[n++] = w - off[i];
    }
    if (n == 2 && out[0] > out[1]) {
        int64_t t = out[0];
        out[0] = out[1];
        out[1] = t;
    }
    return n;
}

/* The first instant whose wall-clock time is after w: for w in a gap, the end of the gap. */
static int64_t gap_end(int64_t w)
{
    int64_t lo = w - DAY_S, hi = w + DAY_S; /* wall_of(lo) < w < wall_of(hi) */

    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (wall_of(mid) > w)
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

/* True if the UTC offset is the same over [t - SLACK_S, t + ahead]. */
static bool steady(int64_t t, int64_t ahead)
{
    return offset_at(t - SLACK_S) == offset_at(t + ahead);
}

int dst_cron_next(const struct dst_cron *c, int64_t after_s, int64_t *next_out)
{
    int64_t best = 0, best_w = 0, t[2], w;
    bool found = false;

    tzset();
    /* near a fall-back, a later instant can have an earlier wall-clock time: start before */
    w = wall_of(steady(after_s + SLACK_S, 0) ? after_s : after_s - SLACK_S);
    w = floor_div(w, 60) * 60;
    int64_t limit = wall_of(after_s) + (int64_t)HORIZON_DAYS * DAY_S;
    while (next_wall(c, w, limit, &w)) {
        if (found && (w > best_w + SLACK_S || steady(best, 0)))
            break; /* no later wall-clock time can come earlier than best */
        int n = instants(w, t);
        if (n == 0 && !c->wildcard) {
            t[0] = gap_end(w);
            n = 1;
        }
        n = n == 2 && !c->wildcard ? 1 : n;
        for (int i = 0; i < n; i++) {
            if (t[i] > after_s && (!found || t[i] < best)) {
                best_w = found ? best_w : w;
                best = t[i];
                found = true;
            }
        }
        w += 60;
    }
    if (!found)
        return DST_ENOTFOUND;
    *next_out = best;
    return 0;
}
