/* test_compat.c - the compatible face's binders, paging, dates and TestResult reading */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "speedtest/api/compat.h"

static void ints_like_int32_parse(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_true(compat_parse_int("42", &v));
    assert_int_equal(v, 42);
    assert_true(compat_parse_int(" -7 ", &v));
    assert_int_equal(v, -7);
    assert_true(compat_parse_int("2147483647", &v));
    assert_false(compat_parse_int("2147483648", &v));
    assert_false(compat_parse_int("1.5", &v));
    assert_false(compat_parse_int("abc", &v));
    assert_false(compat_parse_int("", &v));
    assert_false(compat_parse_int("12abc", &v));
}

static void doubles_like_invariant_culture(void **state)
{
    (void)state;
    double d = 0;
    assert_true(compat_parse_double("59.913396", &d));
    assert_true(d == 59.913396);
    assert_true(compat_parse_double("1,000.5", &d)); /* AllowThousands */
    assert_true(d == 1000.5);
    assert_true(compat_parse_double("1e3", &d));
    assert_true(d == 1000);
    assert_false(compat_parse_double("north", &d));
    assert_false(compat_parse_double("1e999", &d));
    assert_false(compat_parse_double("", &d));
}

static void paging_is_paginate_cs(void **state)
{
    (void)state;
    int64_t skip = -1, take = -1;
    compat_paginate(false, 0, false, 0, &skip, &take);
    assert_true(skip == 0 && take == 25);
    compat_paginate(false, 0, true, 7, &skip, &take);
    assert_true(skip == 0 && take == 7);
    compat_paginate(false, 0, true, 0, &skip, &take);
    assert_true(skip == 0 && take == 0);
    compat_paginate(true, 10, true, 30, &skip, &take);
    assert_true(skip == 10 && take == 20);
    compat_paginate(true, 30, true, 10, &skip, &take); /* From >= To */
    assert_true(skip == 0 && take == 25);
    compat_paginate(true, -1, true, 10, &skip, &take);
    assert_true(skip == 0 && take == 25);
    compat_paginate(true, 5, false, 0, &skip, &take);
    assert_true(skip == 0 && take == 25);
    compat_paginate(false, 0, true, -3, &skip, &take);
    assert_true(skip == 0 && take == 25);
}

static void dates_as_the_original_web_sends_them(void **state)
{
    (void)state;
    int64_t a = 0, b = 0, c = 0;
    setenv("TZ", "UTC", 1);
    tzset();
    assert_true(compat_parse_date("2026-03-05", &a));
    assert_true(compat_parse_date("2026-3-5", &b)); /* unpadded, as speedtest-web builds it */
    assert_true(compat_parse_date("03/05/2026", &c));
    assert_true(a == b && b == c);
    assert_int_equal(a, 1772668800000LL);
    assert_true(compat_parse_date("2026-03-05T10:00:00Z", &a));
    assert_int_equal(a, 1772668800000LL + 10 * 3600 * 1000LL);
    assert_false(compat_parse_date("2026-0-15", &a)); /* the original's January bug */
    assert_false(compat_parse_date("2026-02-30", &a));
    assert_false(compat_parse_date("2026-13-01", &a));
    assert_false(compat_parse_date("yesterday", &a));
    /* garbage past the 80th character was cut off, and the rest taken for a date */
    char longer[160];
    snprintf(longer, sizeof(longer), "2026-03-05T10:00:00.%0100dZ!", 0);
    assert_false(compat_parse_date(longer, &a));
}

static void dates_are_formatted_like_dotnet(void **state)
{
    (void)state;
    char out[DST_DATETIME_LEN];
    setenv("TZ", "Europe/Oslo", 1);
    tzset();
    compat_format_date(1772668800000LL, out);
    assert_string_equal(out, "2026-03-05T01:00:00+01:00");
    compat_format_date(1772668800120LL, out);
    assert_string_equal(out, "2026-03-05T01:00:00.12+01:00");
    compat_format_date(1785000000000LL, out); /* summer time */
    assert_string_equal(out, "2026-07-25T19:20:00+02:00");
}

/* Reads body and returns the errors object (caller frees) and the result. */
static json_t *read_body(const char *body, struct dst_result *r, int *rc)
{
    json_t *errors = json_object();
    dst_result_init(r);
    *rc = compat_parse_test_result(body, strlen(body), errors, r);
    return errors;
}

#define GOOD                                                                                      \
    "{\"sessionId\":\"6F1C7A52-0A7E-4D55-9C35-1D3C1A4C2B10\",\"user\":\"teodoran\",\"device\":3," \
    "\"testDate\":\"2026-03-05T10:00:00Z\",\"data\":{\"speeds\":{\"download\":85.33,"             \
    "\"upload\":12.4},\"client\":{\"ip\":\"10.0.0.2\",\"latitude\":59.9,\"longitude\":10.7,"      \
    "\"isp\":\"UUNET\",\"country\":\"NO\"},\"server\":{\"host\":\"speedtest.not\","               \
    "\"latitude\":59.9,\"longitude\":10.7,\"country\":\"NO\",\"distance\":2430,\"ping\":12,"      \
    "\"id\":42}}}"

static void reads_a_good_test_result(void **state)
{
    (void)state;
    struct dst_result r;
    int rc = -1;
    json_t *errors = read_body(GOOD, &r, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(json_object_size(errors), 0);
    assert_string_equal(r.id, "6f1c7a52-0a7e-4d55-9c35-1d3c1a4c2b10"); /* lower-cased */
    assert_true(r.download_bps == 85.33 * 1e6);
    assert_true(r.server_distance_m == 2430 && r.ping_ms == 12 && r.server_id == 42);
    assert_string_equal(r.probe, "teodoran");
    json_decref(errors);
    dst_result_release(&r);
}

static void range_converts_to_int32_first(void **state)
{
    (void)state;
    struct dst_result r;
    int rc = -1;
    /* .NET's Range(int, int) rounds the double to an Int32 first: 3000.4 passes, 3000.6 fails */
    char body[1024];
    const char *at = strstr(GOOD, "85.33");
    snprintf(body, sizeof(body), "%.*s3000.4%s", (int)(at - GOOD), GOOD, at + 5);
    json_t *errors = read_body(body, &r, &rc);
    assert_int_equal(rc, 0);
    json_decref(errors);
    dst_result_release(&r);
    snprintf(body, sizeof(body), "%.*s3000.6%s", (int)(at - GOOD), GOOD, at + 5);
    errors = read_body(body, &r, &rc);
    assert_int_equal(rc, DST_EINVAL);
    assert_non_null(json_object_get(errors, "Data.Speeds.Download"));
    json_decref(errors);
    dst_result_release(&r);
}

static void first_type_error_stops_reading(void **state)
{
    (void)state;
    struct dst_result r;
    int rc = -1;
    json_t *errors = read_body("{\"user\":5,\"device\":\"x\"}", &r, &rc);
    assert_int_equal(rc, DST_EINVAL);
    assert_int_equal(json_object_size(errors), 1); /* System.Text.Json stops at the first */
    assert_non_null(json_object_get(errors, "$.user"));
    json_decref(errors);
    dst_result_release(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ints_like_int32_parse),
        cmocka_unit_test(doubles_like_invariant_culture),
        cmocka_unit_test(paging_is_paginate_cs),
        cmocka_unit_test(dates_as_the_original_web_sends_them),
        cmocka_unit_test(dates_are_formatted_like_dotnet),
        cmocka_unit_test(reads_a_good_test_result),
        cmocka_unit_test(range_converts_to_int32_first),
        cmocka_unit_test(first_type_error_stops_reading),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
