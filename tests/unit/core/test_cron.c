/* test_cron.c - unit tests of cron expressions and their next fire time (src/core/cron.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cron.h"
#include "core/datetime.h"
#include "core/err.h"

static void set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static struct dst_cron parse_ok(const char *expr)
{
    struct dst_cron c;
    char err[256] = "";
    int rc = dst_cron_parse(expr, &c, err, sizeof(err));
    if (rc != 0)
        fail_msg("'%s': %s", expr, err);
    return c;
}

/* Epoch seconds of an ISO 8601 time with its offset. */
static int64_t at(const char *iso)
{
    int64_t ms = 0;
    assert_int_equal(dst_datetime_parse(iso, &ms), 0);
    return ms / 1000;
}

/* The next fire of expr after `after`, as local time with offset, seconds only. */
static const char *next_str(const char *expr, int64_t after, char out[DST_DATETIME_LEN])
{
    struct dst_cron c = parse_ok(expr);
    int64_t t = 0;
    assert_int_equal(dst_cron_next(&c, after, &t), 0);
    assert_true(t > after);
    dst_datetime_format_local(t * 1000, out);
    memmove(out + 19, out + 23, strlen(out + 23) + 1); /* drop ".000" */
    return out;
}

static void expect_next(const char *expr, const char *after, const char *want)
{
    char got[DST_DATETIME_LEN];
    next_str(expr, at(after), got);
    if (strcmp(got, want) != 0)
        fail_msg("'%s' after %s: got %s, want %s", expr, after, got, want);
}

/* Expects the fires of expr after `after` to be want[0], want[1], ... in turn. */
static void expect_seq(const char *expr, const char *after, const char *const *want, int n)
{
    char got[DST_DATETIME_LEN];
    int64_t t = at(after);
    for (int i = 0; i < n; i++) {
        next_str(expr, t, got);
        if (strcmp(got, want[i]) != 0)
            fail_msg("'%s' fire %d after %s: got %s, want %s", expr, i, after, got, want[i]);
        t = at(got);
    }
}

/* Number of fires of expr in [from, to). */
static int count_fires(const char *expr, int64_t from, int64_t to)
{
    struct dst_cron c = parse_ok(expr);
    int64_t t = from - 1;
    int n = 0;
    while (dst_cron_next(&c, t, &t) == 0 && t < to)
        n++;
    return n;
}

/* ---- parsing ---- */

static void test_parse_fields(void **state)
{
    (void)state;
    struct dst_cron c = parse_ok("* * * * *");
    assert_true(c.minute == (1ULL << 60) - 1);
    assert_int_equal(c.hour, (1U << 24) - 1);
    assert_int_equal(c.dom, 0xfffffffeU);
    assert_int_equal(c.month, 0x1ffe);
    assert_int_equal(c.dow, 0x7f);
    assert_true(c.dom_star && c.dow_star && c.wildcard);

    c = parse_ok("*/15 1-10/3 1,15,31 1-3,DEC mon-FRI");
    assert_true(c.minute == (1ULL | 1ULL << 15 | 1ULL << 30 | 1ULL << 45));
    assert_int_equal(c.hour, 1U << 1 | 1U << 4 | 1U << 7 | 1U << 10);
    assert_int_equal(c.dom, 1U << 1 | 1U << 15 | 1U << 31);
    assert_int_equal(c.month, 1U << 1 | 1U << 2 | 1U << 3 | 1U << 12);
    assert_int_equal(c.dow, 0x3e);
    assert_false(c.dom_star || c.dow_star);
    assert_true(c.wildcard);

    c = parse_ok("\t0  12 * jan,Feb 7 ");
    assert_int_equal(c.dow, 1); /* 7 is Sunday */
    assert_int_equal(c.month, 1U << 1 | 1U << 2);
    assert_false(c.wildcard);
    assert_int_equal(parse_ok("0 0 * * 5-7").dow, 1U | 1U << 5 | 1U << 6);
    assert_int_equal(parse_ok("0 0 * * SUN,sat").dow, 1U | 1U << 6);
    assert_int_equal(parse_ok("0 0 * * */2").dow, 1U | 1U << 2 | 1U << 4 | 1U << 6);
    assert_int_equal(parse_ok("0 0 * * 0-7").dow, 0x7f);
    assert_true(parse_ok("0 0 */2 * 1").dom_star); /* begins with '*': Vixie's DOM_STAR */
    assert_true(parse_ok("0 */2 * * *").wildcard);
    assert_true(parse_ok("59 23 31 12 6").minute == 1ULL << 59);
}

static void assert_same(const struct dst_cron *a, const struct dst_cron *b)
{
    assert_true(a->minute == b->minute);
    assert_int_equal(a->hour, b->hour);
    assert_int_equal(a->dom, b->dom);
    assert_int_equal(a->month, b->month);
    assert_int_equal(a->dow, b->dow);
    assert_int_equal(a->dom_star, b->dom_star);
    assert_int_equal(a->dow_star, b->dow_star);
    assert_int_equal(a->wildcard, b->wildcard);
}

static void test_parse_macros(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}, {" @HOURLY ", "0 * * * *"},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        struct dst_cron m = parse_ok(pairs[i][0]), e = parse_ok(pairs[i][1]);
        assert_same(&m, &e);
    }
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"61 * * * *", "minute: '61' is out of 0-59"},
        {"99999999999 * * * *", "minute: '99999999999' is out of 0-59"},
        {"* 24 * * *", "hour: '24' is out of 0-23"},
        {"* * 0 * *", "day-of-month: '0' is out of 1-31"},
        {"* * 32 * *", "day-of-month: '32' is out of 1-31"},
        {"* * * 13 *", "month: '13' is out of 1-12"},
        {"* * * 0 *", "month: '0' is out of 1-12"},
        {"* * * * 8", "day-of-week: '8' is out of 0-7"},
        {"* * * FOO *", "month: 'FOO' is not a number or a month name (JAN-DEC)"},
        {"* * * * FUN", "day-of-week: 'FUN' is not a number or a weekday name (SUN-SAT)"},
        {"* * * JANUARY *", "month: 'JANUARY' is not a number or a month name (JAN-DEC)"},
        {"MON * * * *", "minute: 'MON' is not a number"},
        {"* * MON * *", "day-of-month: 'MON' is not a number"},
        {"*/0 * * * *", "minute: step '0' is not a number in 1-60"},
        {"*/61 * * * *", "minute: step '61' is not a number in 1-60"},
        {"* */x * * *", "hour: step 'x' is not a number in 1-24"},
        {"*/ * * * *", "minute: step '' is not a number in 1-60"},
        {"* * * * */8", "day-of-week: step '8' is not a number in 1-7"},
        {"5/10 * * * *", "minute: '5/10': a step needs '*' or a range before it"},
        {"10-5 * * * *", "minute: '10-5': the range starts after it ends"},
        {"* * * * SAT-SUN", "day-of-week: 'SAT-SUN': the range starts after it ends"},
        {"1,,2 * * * *", "minute: '1,,2' has an empty list item"},
        {"1, * * * *", "minute: '1,' has an empty list item"},
        {"1- * * * *", "minute: '1-' lacks a value"},
        {"-1 * * * *", "minute: '-1' lacks a value"},
        {"*-5 * * * *", "minute: '*' is not a number"},
        {"1-2-3 * * * *", "minute: '2-3' is not a number"},
        {"1.5 * * * *", "minute: '1.5' is not a number"},
        {"* * * *", "expected 5 fields (minute hour day-of-month month day-of-week) or a macro "
                    "such as @hourly, got 4"},
        {"* * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week) or a "
                        "macro such as @hourly, got 6"},
        {"", "expected 5 fields (minute hour day-of-month month day-of-week) or a macro such "
             "as @hourly, got 0"},
        {"@reboot", "'@reboot' is not a macro (@yearly, @annually, @monthly, @weekly, @daily, "
                    "@midnight, @hourly)"},
        {"@daily 5", "a macro stands alone, but '5' follows it"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dst_cron c = {.minute = 42};
        char err[256] = "";
        assert_int_equal(dst_cron_parse(cases[i][0], &c, err, sizeof(err)), DST_EINVAL);
        if (strcmp(err, cases[i][1]) != 0)
            fail_msg("'%s': got \"%s\", want \"%s\"", cases[i][0], err, cases[i][1]);
        assert_true(c.minute == 42); /* untouched on failure */
    }
    char lng[300];
    memset(lng, '1', sizeof(lng) - 1);
    lng[sizeof(lng) - 1] = '\0';
    struct dst_cron c;
    char err[256];
    assert_int_equal(dst_cron_parse(lng, &c, err, sizeof(err)), DST_EINVAL);
    assert_string_equal(err, "expected 5 fields (minute hour day-of-month month day-of-week) or "
                             "a macro such as @hourly, got 1");
    memcpy(lng + 250, " * * * *", 9);
    assert_int_equal(dst_cron_parse(lng, &c, err, sizeof(err)), DST_EINVAL);
    assert_string_equal(err, "minute: longer than 127 characters");
    assert_int_equal(dst_cron_parse("x", &c, NULL, 0), DST_EINVAL); /* no err buffer */
    assert_int_equal(dst_cron_parse(NULL, &c, err, sizeof(err)), DST_EINVAL);
}

/* ---- next fire, UTC ---- */

static void test_next_basic(void **state)
{
    (void)state;
    set_tz("UTC");
    expect_next("*/15 * * * *", "2026-11-21T10:07:30Z", "2026-11-21T10:15:00+00:00");
    expect_next("*/15 * * * *", "2026-11-21T10:15:00Z", "2026-11-21T10:30:00+00:00");
    expect_next("*/15 * * * *", "2026-11-21T23:59:59Z", "2026-11-22T00:00:00+00:00");
    expect_next("* * * * *", "2026-11-21T10:15:00Z", "2026-11-21T10:16:00+00:00");
    expect_next("0 0 1 1 *", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00+00:00");
    expect_next("0 9 * * MON-FRI", "2026-11-20T09:00:00Z", "2026-11-23T09:00:00+00:00");
    expect_next("30 4 1,15 * *", "2026-11-02T00:00:00Z", "2026-11-15T04:30:00+00:00");
    expect_next("0 0 * 2 *", "2026-03-01T00:00:00Z", "2027-02-01T00:00:00+00:00");
}

static void test_next_month_ends_and_leap_years(void **state)
{
    (void)state;
    set_tz("UTC");
    expect_next("0 0 31 * *", "2026-04-01T00:00:00Z", "2026-05-31T00:00:00+00:00");
    expect_next("0 0 31 * *", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00+00:00");
    expect_next("0 0 30 * *", "2026-01-30T00:00:00Z", "2026-03-30T00:00:00+00:00");
    expect_next("59 23 31 12 *", "2026-12-31T23:58:00Z", "2026-12-31T23:59:00+00:00");
    expect_next("0 12 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T12:00:00+00:00");
    expect_next("0 12 29 2 *", "2024-02-28T12:00:00Z", "2024-02-29T12:00:00+00:00");
    expect_next("0 12 29 2 *", "2096-03-01T00:00:00Z", "2104-02-29T12:00:00+00:00"); /* 2100 */
    expect_next("0 0 28-31 2 *", "2027-02-28T00:00:00Z", "2028-02-28T00:00:00+00:00");

    struct dst_cron c = parse_ok("0 0 30 2 *");
    int64_t t = 7;
    assert_int_equal(dst_cron_next(&c, at("2026-01-01T00:00:00Z"), &t), DST_ENOTFOUND);
    assert_int_equal(t, 7);
    c = parse_ok("0 0 31 4,6,9,11 *");
    assert_int_equal(dst_cron_next(&c, at("2026-01-01T00:00:00Z"), &t), DST_ENOTFOUND);
}

static void test_next_vixie_day_rule(void **state)
{
    (void)state;
    set_tz("UTC");
    /* both restricted: the 13th OR a Friday */
    static const char *const either[] = {"2026-11-06T00:00:00+00:00", "2026-11-13T00:00:00+00:00",
                                         "2026-11-20T00:00:00+00:00", "2026-11-27T00:00:00+00:00",
                                         "2026-12-04T00:00:00+00:00", "2026-12-11T00:00:00+00:00",
                                         "2026-12-13T00:00:00+00:00"};
    expect_seq("0 0 13 * 5", "2026-11-01T00:00:00Z", either, 7);
    /* day-of-month begins with '*': both must match (days 1, 11, 21, 31 that are Mondays) */
    expect_next("0 0 */10 * 1", "2026-11-01T00:00:00Z", "2026-12-21T00:00:00+00:00");
    /* day-of-week '*': the day of month alone */
    expect_next("0 0 13 * *", "2026-11-01T00:00:00Z", "2026-11-13T00:00:00+00:00");
    expect_next("0 0 * * SUN", "2026-11-01T00:00:00Z", "2026-11-08T00:00:00+00:00");
    expect_next("0 0 * * 7", "2026-11-01T00:00:00Z", "2026-11-08T00:00:00+00:00");
}

static void test_next_macros(void **state)
{
    (void)state;
    set_tz("UTC");
    const char *after = "2026-11-21T10:15:00Z"; /* a Saturday */
    expect_next("@yearly", after, "2027-01-01T00:00:00+00:00");
    expect_next("@annually", after, "2027-01-01T00:00:00+00:00");
    expect_next("@monthly", after, "2026-12-01T00:00:00+00:00");
    expect_next("@weekly", after, "2026-11-22T00:00:00+00:00");
    expect_next("@daily", after, "2026-11-22T00:00:00+00:00");
    expect_next("@midnight", after, "2026-11-22T00:00:00+00:00");
    expect_next("@hourly", after, "2026-11-21T11:00:00+00:00");
}

/* ---- next fire across daylight saving time ---- */

static void test_oslo_spring_forward(void **state)
{
    (void)state;
    set_tz("Europe/Oslo"); /* 2026-03-29 02:00 CET → 03:00 CEST */
    static const char *const fixed[] = {"2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00",
                                        "2026-03-30T02:30:00+02:00"};
    expect_seq("30 2 * * *", "2026-03-28T00:00:00+01:00", fixed, 3);
    /* two skipped times fire once, at the end of the gap */
    static const char *const two[] = {"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"};
    expect_seq("0,30 2 * * *", "2026-03-29T01:00:00+01:00", two, 2);
    static const char *const quarter[] = {"2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00",
                                          "2026-03-29T03:15:00+02:00"};
    expect_seq("*/15 * * * *", "2026-03-29T01:30:00+01:00", quarter, 3);
    /* a wildcard job keeps its real-time pace: one hour between fires */
    static const char *const half[] = {"2026-03-29T01:30:00+01:00", "2026-03-29T03:30:00+02:00",
                                       "2026-03-29T04:30:00+02:00"};
    expect_seq("30 * * * *", "2026-03-29T01:00:00+01:00", half, 3);
    expect_next("@daily", "2026-03-28T12:00:00+01:00", "2026-03-29T00:00:00+01:00");
    /* the day has 23 hours: 1380 minutes */
    assert_int_equal(
        count_fires("* * * * *", at("2026-03-29T00:00:00+01:00"), at("2026-03-30T00:00:00+02:00")),
        1380);
}

static void test_oslo_fall_back(void **state)
{
    (void)state;
    set_tz("Europe/Oslo"); /* 2026-10-25 03:00 CEST → 02:00 CET: 02:00-02:59 twice */
    static const char *const fixed[] = {"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"};
    expect_seq("30 2 * * *", "2026-10-25T00:00:00+02:00", fixed, 2);
    /* asked during the second 02:xx, after the fixed fire: not again that day */
    expect_next("30 2 * * *", "2026-10-25T02:10:00+01:00", "2026-10-26T02:30:00+01:00");
    static const char *const half[] = {"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00",
                                       "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00",
                                       "2026-10-25T03:00:00+01:00"};
    expect_seq("*/30 * * * *", "2026-10-25T01:45:00+02:00", half, 5);
    static const char *const hourly[] = {"2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00",
                                         "2026-10-25T03:30:00+01:00"};
    expect_seq("30 * * * *", "2026-10-25T01:30:00+02:00", hourly, 3);
    /* minute '*' with a fixed hour is a wildcard job too (cronie's MIN_STAR) */
    expect_next("* 2 * * *", "2026-10-25T02:59:00+02:00", "2026-10-25T02:00:00+01:00");
    /* inside the second hour, a wildcard job continues from there */
    expect_next("*/30 * * * *", "2026-10-25T02:10:00+01:00", "2026-10-25T02:30:00+01:00");
    /* the day has 25 hours: 1500 minutes, and a fixed job fires once */
    int64_t from = at("2026-10-25T00:00:00+02:00"), to = at("2026-10-26T00:00:00+01:00");
    assert_int_equal(count_fires("* * * * *", from, to), 1500);
    assert_int_equal(count_fires("15 2 * * *", from, to), 1);
    assert_int_equal(count_fires("@hourly", from, to), 25);
}

static void test_new_york(void **state)
{
    (void)state;
    set_tz("America/New_York"); /* 2026-03-08 02:00 EST → 03:00 EDT; 2026-11-01 02:00 → 01:00 */
    expect_next("30 2 * * *", "2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00");
    expect_next("30 2 * * *", "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00");
    expect_next("0 3 * * *", "2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00");
    static const char *const fixed[] = {"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"};
    expect_seq("30 1 * * *", "2026-11-01T00:00:00-04:00", fixed, 2);
    static const char *const hourly[] = {"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00",
                                         "2026-11-01T02:00:00-05:00"};
    expect_seq("@hourly", "2026-11-01T00:30:00-04:00", hourly, 3);
    int64_t from = at("2026-11-01T00:00:00-04:00"), to = at("2026-11-02T00:00:00-05:00");
    assert_int_equal(count_fires("@daily", from, to), 1);
    assert_int_equal(count_fires("0,30 1 * * *", from, to), 2);
    assert_int_equal(count_fires("*/10 1 * * *", from, to), 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_parse_macros),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_next_basic),
        cmocka_unit_test(test_next_month_ends_and_leap_years),
        cmocka_unit_test(test_next_vixie_day_rule),
        cmocka_unit_test(test_next_macros),
        cmocka_unit_test(test_oslo_spring_forward),
        cmocka_unit_test(test_oslo_fall_back),
        cmocka_unit_test(test_new_york),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
