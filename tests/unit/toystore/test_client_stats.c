/* test_client_stats.c - unit tests of the client's tallies (src/toystore/client_stats.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "toystore/client_stats.h"

static void fill(struct toyclient_lat *l, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        toyclient_lat_add(l, v[i]);
}

static void empty_is_nan(void **state)
{
    struct toyclient_lat l = {0};

    (void)state;
    assert_true(isnan(toyclient_lat_mean(&l)));
    assert_true(isnan(toyclient_lat_percentile(&l, 50)));
    toyclient_lat_release(&l);
}

/* Nearest rank over unsorted input: every answer is one of the samples. */
static void percentiles_exact(void **state)
{
    const double v[] = {7, 3, 9, 1, 5, 10, 2, 8, 4, 6};
    struct toyclient_lat l = {0};

    (void)state;
    fill(&l, v, 10);
    assert_true(toyclient_lat_percentile(&l, 0) == 1);
    assert_true(toyclient_lat_percentile(&l, 10) == 1);
    assert_true(toyclient_lat_percentile(&l, 11) == 2);
    assert_true(toyclient_lat_percentile(&l, 50) == 5);
    assert_true(toyclient_lat_percentile(&l, 51) == 6);
    assert_true(toyclient_lat_percentile(&l, 90) == 9);
    assert_true(toyclient_lat_percentile(&l, 99) == 10);
    assert_true(toyclient_lat_percentile(&l, 100) == 10);
    assert_true(toyclient_lat_mean(&l) == 5.5);
    toyclient_lat_release(&l);
}

/* p99 of 1000 samples 1..1000 is the 990th; of 100 it is the 99th; one sample is every rank. */
static void percentiles_large_and_single(void **state)
{
    struct toyclient_lat l = {0}, one = {0};

    (void)state;
    for (int i = 1000; i >= 1; i--)
        toyclient_lat_add(&l, i);
    assert_true(toyclient_lat_percentile(&l, 99) == 990);
    assert_true(toyclient_lat_percentile(&l, 99.9) == 999);
    assert_true(toyclient_lat_percentile(&l, 50) == 500);
    toyclient_lat_release(&l);
    for (int i = 100; i >= 1; i--)
        toyclient_lat_add(&l, i / 10.0);
    assert_true(toyclient_lat_percentile(&l, 99) == 9.9);
    assert_true(toyclient_lat_percentile(&l, 50) == 5.0);
    toyclient_lat_release(&l);
    toyclient_lat_add(&one, 0.25);
    assert_true(toyclient_lat_percentile(&one, 0) == 0.25);
    assert_true(toyclient_lat_percentile(&one, 99) == 0.25);
    toyclient_lat_release(&one);
}

/* Counts per outcome, the first message of each, samples only for answered requests. */
static void tally_counts_and_merges(void **state)
{
    struct toyclient_tally a, b;

    (void)state;
    toyclient_tally_init(&a, "buy");
    toyclient_tally_init(&b, "buy");
    toyclient_tally_add(&a, TOYCLIENT_OK, 1.0, NULL);
    toyclient_tally_add(&a, TOYCLIENT_OUT_OF_STOCK, 2.0, "first oos");
    toyclient_tally_add(&a, TOYCLIENT_OUT_OF_STOCK, 3.0, "second oos");
    toyclient_tally_add(&b, TOYCLIENT_TRANSPORT, -1, "refused");
    toyclient_tally_add(&b, TOYCLIENT_OK, 4.0, NULL);
    toyclient_tally_merge(&a, &b);
    assert_int_equal(toyclient_tally_count(&a), 5);
    assert_int_equal(toyclient_tally_errors(&a), 3);
    assert_int_equal(a.n[TOYCLIENT_OUT_OF_STOCK], 2);
    assert_string_equal(a.first[TOYCLIENT_OUT_OF_STOCK], "first oos");
    assert_string_equal(a.first[TOYCLIENT_TRANSPORT], "refused");
    assert_int_equal(a.lat.n, 4); /* the transport failure has no latency */
    assert_true(toyclient_lat_percentile(&a.lat, 100) == 4.0);
    toyclient_tally_release(&a);
    toyclient_tally_release(&b);
}

static void tally_json(void **state)
{
    struct toyclient_tally t;

    (void)state;
    toyclient_tally_init(&t, "query");
    json_t *j = toyclient_tally_json(&t);
    assert_int_equal(json_integer_value(json_object_get(j, "count")), 0);
    assert_true(json_is_null(json_object_get(j, "p99_ms")));
    json_decref(j);
    toyclient_tally_add(&t, TOYCLIENT_OK, 2.0, NULL);
    toyclient_tally_add(&t, TOYCLIENT_NOT_FOUND, 4.0, "GET /products/Nope: 404");
    j = toyclient_tally_json(&t);
    assert_int_equal(json_integer_value(json_object_get(j, "count")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "errors")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "not_found")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "transport")), 0);
    assert_true(json_number_value(json_object_get(j, "mean_ms")) == 3.0);
    assert_true(json_number_value(json_object_get(j, "p50_ms")) == 2.0);
    assert_true(json_number_value(json_object_get(j, "p99_ms")) == 4.0);
    json_decref(j);
    toyclient_tally_release(&t);
}

static void outcome_names(void **state)
{
    (void)state;
    assert_string_equal(toyclient_outcome_name(TOYCLIENT_OUT_OF_STOCK), "out_of_stock");
    assert_string_equal(toyclient_outcome_name(TOYCLIENT_NOUTCOMES), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_is_nan),
        cmocka_unit_test(percentiles_exact),
        cmocka_unit_test(percentiles_large_and_single),
        cmocka_unit_test(tally_counts_and_merges),
        cmocka_unit_test(tally_json),
        cmocka_unit_test(outcome_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
