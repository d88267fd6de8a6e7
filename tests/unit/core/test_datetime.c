/* test_datetime.c - unit tests of clocks, ISO 8601 formatting and parsing (src/core/datetime.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/datetime.h"
#include "core/err.h"

#define HOUR_MS (3600 * 1000LL)
#define DAY_MS  (24 * HOUR_MS)

/* 2026-11-21T10:15:00Z and 2026-11-21T00:00:00Z. */
#define T_1015 1795256100000LL
#define T_DAY  1795219200000LL

static void set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static int utc(void **state)
{
    (void)state;
    set_tz("UTC");
    return 0;
}

static int oslo(void **state)
{
    (void)state;
    set_tz("Europe/Oslo");
    return 0;
}

static int64_t parse_ok(const char *s)
{
    int64_t ms = -1;
    if (dst_datetime_parse(s, &ms) != 0)
        fail_msg("'%s' did not parse", s);
    return ms;
}

static void zoned_forms(void **state)
{
    static const struct {
        const char *in;
        int64_t ms;
    } cases[] = {
        {"2026-11-21T10:15:00Z", T_1015},
        {"2026-11-21T10:15Z", T_1015},
        {"2026-11-21 10:15:00Z", T_1015},
        {"2026-11-21t10:15:00z", T_1015},
        {"2026-11-21T10:15:00.1Z", T_1015 + 100},
        {"2026-11-21T10:15:00.12Z", T_1015 + 120},
        {"2026-11-21T10:15:00.123Z", T_1015 + 123},
        {"2026-11-21T10:15:00.123999Z", T_1015 + 123}, /* truncated, not rounded */
        {"2026-11-21T10:15:00,5Z", T_1015 + 500},
        {"2026-11-21T11:15:00+01:00", T_1015},
        {"2026-11-21T11:15:00+0100", T_1015},
        {"2026-11-21T07:45:00-02:30", T_1015},
        {"2026-11-21T07:45:00-0230", T_1015},
        {"2026-11-22T00:15:00.000+14:00", T_1015},
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59.999Z", -1},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = parse_ok(cases[i].in);
        if (ms != cases[i].ms)
            fail_msg("'%s': %lld, want %lld", cases[i].in, (long long)ms, (long long)cases[i].ms);
    }
}

static void local_forms_utc(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("2026-11-21"), T_DAY);
    assert_int_equal(parse_ok("2026-11-21T10:15"), T_1015);
    assert_int_equal(parse_ok("2026-11-21 10:15:00.250"), T_1015 + 250);
}

static void invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "2026",
        "2026-11",
        "2026-11-2",
        "26-11-21",
        "2026/11/21",
        " 2026-11-21",
        "2026-02-30",
        "2026-02-29", /* not a leap year */
        "1900-02-29", /* nor is 1900 */
        "2026-04-31",
        "2026-0-10",
        "2026-00-10",
        "2026-13-01",
        "2026-11-00",
        "2026-11-32",
        "0000-01-01",
        "2026-11-21x",
        "2026-11-21Z",
        "2026-11-21T",
        "2026-11-21T10",
        "2026-11-21T10:",
        "2026-11-21T1:15",
        "2026-11-21T24:00",
        "2026-11-21T10:60",
        "2026-11-21T10:15:60",
        "2026-11-21T10:15:00.",
        "2026-11-21T10:15:00Zjunk",
        "2026-11-21T10:15:00 Z",
        "2026-11-21T10:15:00+1",
        "2026-11-21T10:15:00+01:",
        "2026-11-21T10:15:00+01:0",
        "2026-11-21T10:15:00+24:00",
        "2026-11-21T10:15:00+01:60",
        "2026-11-21T10:15:00+01:00:00",
        "2026-11-21T10:15:00EST",
    };
    int64_t ms = 42;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (dst_datetime_parse(bad[i], &ms) != DST_EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
    }
    assert_int_equal(dst_datetime_parse(NULL, &ms), DST_EINVAL);
    assert_int_equal(ms, 42); /* untouched on failure */
}

static void leap_days(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("2024-02-29T00:00Z") - parse_ok("2024-02-28T00:00Z"), DAY_MS);
    assert_int_equal(parse_ok("2000-02-29T00:00Z") - parse_ok("2000-02-28T00:00Z"), DAY_MS);
}

static void format_utc(void **state)
{
    char out[DST_DATETIME_LEN];

    (void)state;
    dst_datetime_format_utc(T_1015 + 7, out);
    assert_string_equal(out, "2026-11-21T10:15:00.007Z");
    dst_datetime_format_utc(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    dst_datetime_format_utc(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
}

static void local_time_oslo(void **state)
{
    char out[DST_DATETIME_LEN];

    (void)state;
    /* Winter +01:00, summer +02:00. */
    assert_int_equal(parse_ok("2026-11-21T11:15"), T_1015);
    assert_int_equal(parse_ok("2026-07-01T12:00"), parse_ok("2026-07-01T10:00Z"));
    dst_datetime_format_local(T_1015 + 5, out);
    assert_string_equal(out, "2026-11-21T11:15:00.005+01:00");
    dst_datetime_format_local(parse_ok("2026-07-01T10:00Z"), out);
    assert_string_equal(out, "2026-07-01T12:00:00.000+02:00");
    /* Spring forward on 2026-03-29 at 02:00: 01:30 is +01:00, 03:30 is +02:00. */
    assert_int_equal(parse_ok("2026-03-29T01:30"), 1774744200000LL);
    assert_int_equal(parse_ok("2026-03-29T03:30"), 1774747800000LL);
    assert_int_equal(parse_ok("2026-03-29T03:30") - parse_ok("2026-03-29T01:30"), HOUR_MS);
    dst_datetime_format_local(1774744200000LL, out);
    assert_string_equal(out, "2026-03-29T01:30:00.000+01:00");
    dst_datetime_format_local(1774747800000LL, out);
    assert_string_equal(out, "2026-03-29T03:30:00.000+02:00");
    /* The date alone is local midnight. */
    assert_int_equal(parse_ok("2026-03-29"), 1774738800000LL);
}

static void local_day_start_oslo(void **state)
{
    (void)state;
    int64_t spring = 1774738800000LL; /* 2026-03-29T00:00+01:00 */
    int64_t autumn = 1792879200000LL; /* 2026-10-25T00:00+02:00 */

    assert_int_equal(dst_datetime_local_day_start(spring), spring);
    assert_int_equal(dst_datetime_local_day_start(spring + 12 * HOUR_MS), spring);
    assert_int_equal(dst_datetime_local_day_start(spring + 23 * HOUR_MS - 1), spring);
    /* That day had 23 hours: the next starts 23 h later. */
    assert_int_equal(dst_datetime_local_day_start(spring + 23 * HOUR_MS), 1774821600000LL);
    /* 2026-10-25 had 25 hours. */
    assert_int_equal(dst_datetime_local_day_start(autumn + 24 * HOUR_MS + 30 * 60000), autumn);
    assert_int_equal(dst_datetime_local_day_start(autumn + 25 * HOUR_MS), 1792969200000LL);
    /* In UTC terms 2026-11-21T10:15Z is in the Oslo day starting 2026-11-20T23:00Z. */
    assert_int_equal(dst_datetime_local_day_start(T_1015), T_DAY - HOUR_MS);
}

static void local_day_start_utc(void **state)
{
    (void)state;
    assert_int_equal(dst_datetime_local_day_start(T_1015), T_DAY);
    assert_int_equal(dst_datetime_local_day_start(T_DAY), T_DAY);
    assert_int_equal(dst_datetime_local_day_start(-1), -DAY_MS);
}

static void round_trips(void **state)
{
    static const char *const zones[] = {"UTC", "Europe/Oslo", "America/St_Johns"};
    static const int64_t times[] = {
        0,
        -1,
        T_1015 + 999,
        1774744200000LL,
        1774747800000LL,
        1792888200000LL,
        1792888200000LL + HOUR_MS, /* the repeated hour of 2026-10-25 */
        253402214399999LL,         /* 9999-12-30T23:59:59.999Z */
    };
    char out[DST_DATETIME_LEN];

    (void)state;
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        set_tz(zones[z]);
        for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
            dst_datetime_format_utc(times[i], out);
            assert_int_equal(parse_ok(out), times[i]);
            dst_datetime_format_local(times[i], out);
            assert_int_equal(parse_ok(out), times[i]);
        }
    }
    set_tz("America/St_Johns");
    dst_datetime_format_local(T_1015, out);
    assert_string_equal(out, "2026-11-21T06:45:00.000-03:30");
}

static int64_t realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void clocks(void **state)
{
    (void)state;
    /* Bounds from CLOCK_REALTIME itself: time(NULL) reads the coarse clock, which can still
     * show the last second just after the precise one has moved to the next. */
    int64_t before = realtime_ms();
    int64_t wall = dst_datetime_now_ms();
    int64_t after = realtime_ms();
    assert_true(wall >= before && wall <= after);
    int64_t m1 = dst_monotonic_ms();
    int64_t u = dst_monotonic_us();
    int64_t m2 = dst_monotonic_ms();
    assert_true(m1 <= m2);
    assert_true(u / 1000 >= m1 && u / 1000 <= m2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(zoned_forms, oslo), /* zoned forms ignore TZ */
        cmocka_unit_test_setup(local_forms_utc, utc),
        cmocka_unit_test_setup(invalid, utc),
        cmocka_unit_test_setup(leap_days, utc),
        cmocka_unit_test_setup(format_utc, oslo),
        cmocka_unit_test_setup(local_time_oslo, oslo),
        cmocka_unit_test_setup(local_day_start_oslo, oslo),
        cmocka_unit_test_setup(local_day_start_utc, utc),
        cmocka_unit_test_setup(round_trips, utc),
        cmocka_unit_test(clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
