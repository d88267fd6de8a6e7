/* test_probe.c - unit tests of a test run the probe's way (src/speedtest/probe/probe.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "speedtest/probe/probe.h"

static const struct probe_opts opts = {
    .target = "dummy:", .agent = "attic", .user = "teodoran", .device = 1};

/* A failed result records its target and request, and is one the API takes. */
static void test_fail(void **state)
{
    struct dst_result r;
    char err[256];

    (void)state;
    dst_result_init(&r);
    probe_fail(&opts, "gopher://x", "req-1", "unknown target", NULL, &r);
    assert_int_equal(dst_result_validate(&r, err, sizeof(err)), 0);
    assert_int_equal(r.status, DST_RESULT_FAILED);
    assert_string_equal(r.target, "gopher://x");
    assert_string_equal(r.request_id, "req-1");
    assert_string_equal(r.probe, "attic");
    dst_result_release(&r);
}

/*
 * A request from the queue may name a target or carry a request id longer than a result
 * holds (500 bytes): the result keeps their first 500 bytes, cut between characters, and the
 * API takes it (before, it refused it and the test was lost).
 */
static void test_fail_long_request(void **state)
{
    char target[700], rid[620], err[256];
    struct dst_result r, same;

    (void)state;
    strcpy(target, "dummy:?x=");
    memset(target + 9, 'a', 490);
    strcpy(target + 499, "\xc3\xa9\xc3\xa9 and more"); /* "é" across the 500th byte */
    memset(rid, 'r', sizeof(rid) - 1);
    rid[sizeof(rid) - 1] = '\0';
    dst_result_init(&r);
    probe_fail(&opts, target, rid, "unknown target", NULL, &r);
    assert_int_equal(dst_result_validate(&r, err, sizeof(err)), 0);
    assert_int_equal(strlen(r.target), 499);
    assert_memory_equal(r.target, target, 499);
    assert_int_equal(strlen(r.request_id), 500);
    dst_result_init(&same); /* the id still comes from the whole request id */
    probe_fail(&opts, target, rid, "unknown target", NULL, &same);
    assert_string_equal(r.id, same.id);
    dst_result_release(&same);
    dst_result_release(&r);
}

/* The dummy engine measures a request's long target the same way. */
static void test_measure_long_target(void **state)
{
    char target[600], err[256];
    struct dst_result r;

    (void)state;
    strcpy(target, "dummy:?seconds="); /* 0 s, in 505 digits */
    memset(target + 15, '0', 505);
    target[520] = '\0';
    dst_result_init(&r);
    assert_int_equal(probe_measure(&opts, target, "req-2", NULL, &r), 0);
    assert_int_equal(dst_result_validate(&r, err, sizeof(err)), 0);
    assert_int_equal(strlen(r.target), 500);
    dst_result_release(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail),
        cmocka_unit_test(test_fail_long_request),
        cmocka_unit_test(test_measure_long_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
