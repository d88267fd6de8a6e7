/* test_dummy.c - unit tests of the dummy: engine (src/speedtest/engines/dummy.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/sig.h"
#include "speedtest/engines/engine.h"

/* Runs target with the time limit; returns how long it took in ms. */
static int64_t run(const char *target, int timeout_s, struct dst_result *r)
{
    struct engine_ctx ctx = {.target = target, .timeout_s = timeout_s};
    int64_t t0 = dst_monotonic_ms();

    dst_result_init(r);
    assert_int_equal(engine_run(&ctx, r), 0);
    return dst_monotonic_ms() - t0;
}

static void canned_values_at_once(void **state)
{
    struct dst_result r;

    (void)state;
    assert_true(run("dummy:", 5, &r) < 1000); /* less than the shortest delay: seconds=1 */
    assert_int_equal(r.status, DST_RESULT_OK);
    assert_string_equal(r.engine, "dummy");
    assert_true(r.download_bps >= 60e6 && r.download_bps < 100e6);
    assert_string_equal(r.server_host, "speedtest.not");
    dst_result_release(&r);
}

static void seconds_checked(void **state)
{
    char err[256];

    (void)state;
    assert_int_equal(engine_check_target("dummy:?seconds=2", err, sizeof(err)), 0);
    assert_int_equal(engine_check_target("dummy:?seconds=x", err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "seconds"));
    assert_int_equal(engine_check_target("dummy:?seconds=3601", err, sizeof(err)), DST_EINVAL);
    assert_int_equal(engine_check_target("dummy:?seconds=-1", err, sizeof(err)), DST_EINVAL);
    assert_int_equal(engine_check_target("dummy:?secs=1", err, sizeof(err)), DST_EINVAL);
    assert_string_equal(err, "unknown parameter 'secs' (known: seconds)");
}

static void seconds_delay_the_result(void **state)
{
    struct dst_result r;

    (void)state;
    int64_t took = run("dummy:?seconds=1", 60, &r);
    assert_true(took >= 1000 && took < 30000); /* its second, not the 60 s limit */
    assert_int_equal(r.status, DST_RESULT_OK);
    dst_result_release(&r);
}

static void overrun_is_a_failed_result(void **state)
{
    struct dst_result r;

    (void)state;
    int64_t took = run("dummy:?seconds=600", 1, &r);
    assert_true(took >= 1000 && took < 30000); /* cut at the limit, long before its end */
    assert_int_equal(r.status, DST_RESULT_FAILED);
    assert_string_equal(r.error, "timed out after 1 s");
    dst_result_release(&r);
}

/* Last: a stop request cannot be taken back. */
static void stop_cuts_the_delay(void **state)
{
    struct dst_result r;

    (void)state;
    dst_sig_request_stop();
    assert_true(run("dummy:?seconds=600", 900, &r) < 30000); /* not its 10 minutes */
    assert_int_equal(r.status, DST_RESULT_FAILED);
    assert_string_equal(r.error, "stopped before the end of the test");
    dst_result_release(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(canned_values_at_once),    cmocka_unit_test(seconds_checked),
        cmocka_unit_test(seconds_delay_the_result), cmocka_unit_test(overrun_is_a_failed_result),
        cmocka_unit_test(stop_cuts_the_delay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
