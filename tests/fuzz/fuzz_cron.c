/* fuzz_cron.c - cron expressions and their next fire time (core/cron.c) */
#include <string.h>
#include <time.h>

#include "core/cron.h"
#include "fuzz.h"

/* Zones with a DST shift of an hour (north), of half an hour (Lord Howe, south), and none. */
static const char *const zones[] = {"Europe/Berlin", "Australia/Lord_Howe", "UTC"};

/* Instants just before spring-forward and fall-back changes of those zones, and a plain one. */
static const int64_t afters[] = {
    1774744200, /* 2026-03-29T00:30Z: Berlin jumps from 02:00 to 03:00 at 01:00Z */
    1792888200, /* 2026-10-25T00:30Z: Berlin falls back from 03:00 to 02:00 at 01:00Z */
    1775313000, /* 2026-04-04T14:30Z: Lord Howe falls back from 02:00 to 01:30 at 15:00Z */
    1791039600, /* 2026-10-03T15:00Z: Lord Howe jumps from 02:00 to 02:30 at 15:30Z */
    1767225600, /* 2026-01-01T00:00Z */
};

/* Whether local time t matches c's fields (Vixie's day rule: DOM or DOW when both are set). */
static bool matches(const struct dst_cron *c, int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;

    FUZZ_CHECK(localtime_r(&tt, &tm) != NULL);
    bool dom = c->dom >> tm.tm_mday & 1, dow = c->dow >> tm.tm_wday & 1;
    bool day = c->dom_star || c->dow_star ? dom && dow : dom || dow;
    return tm.tm_sec == 0 && (c->minute >> tm.tm_min & 1) && (c->hour >> tm.tm_hour & 1) &&
           (c->month >> (tm.tm_mon + 1) & 1) && day;
}

/* The UTC offset at t. */
static long offset_at(int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    return localtime_r(&tt, &tm) ? tm.tm_gmtoff : 0;
}

/*
 * An expression as --schedule, the schedules document and the config check take it. Parsed,
 * its next fire time after a few instants near DST changes is later than the instant, and its
 * local time matches the fields, unless it is the end of a gap (a fixed time that the
 * spring-forward skipped fires there).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dst_cron c;
    char err[256] = "";
    char *expr = fuzz_cstr(data, size);

    fuzz_init();
    if (dst_cron_parse(expr, &c, err, sizeof(err)) != 0) {
        FUZZ_CHECK(err[0] != '\0');
        free(expr);
        return 0;
    }
    FUZZ_CHECK(c.minute && c.hour && c.dom && c.month && c.dow);
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        setenv("TZ", zones[z], 1);
        for (size_t i = 0; i < sizeof(afters) / sizeof(afters[0]); i++) {
            int64_t next = 0;
            if (dst_cron_next(&c, afters[i], &next) != 0)
                continue;
            FUZZ_CHECK(next > afters[i]);
            FUZZ_CHECK(matches(&c, next) ||
                       (!c.wildcard && offset_at(next - 1) != offset_at(next)));
        }
    }
    setenv("TZ", "UTC", 1);
    free(expr);
    return 0;
}
