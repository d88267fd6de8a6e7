/* test_err.c - unit tests of the error codes, their texts and HTTP statuses (src/core/err.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/err.h"

static const struct {
    int code;
    const char *text;
    int status;
} table[] = {
    {DST_OK, "ok", 200},
    {DST_ENOMEM, "out of memory", 500},
    {DST_EINVAL, "invalid input", 400},
    {DST_ENOTFOUND, "not found", 404},
    {DST_ECONFLICT, "conflict", 409},
    {DST_ETIMEDOUT, "timed out", 504},
    {DST_EDEP, "dependency failed", 503},
    {DST_EIO, "i/o error", 500},
    {DST_ETOOBIG, "too big", 413},
    {DST_EBUSY, "busy", 503},
    {DST_EPERM, "not authorised", 401},
    {DST_ENOSPC, "disk full", 507},
};

#define N (sizeof(table) / sizeof(table[0]))

static void texts(void **state)
{
    (void)state;
    for (size_t i = 0; i < N; i++)
        assert_string_equal(dst_strerror(table[i].code), table[i].text);
    /* Every code has its own text. */
    for (size_t i = 0; i < N; i++) {
        for (size_t j = i + 1; j < N; j++)
            assert_string_not_equal(dst_strerror(table[i].code), dst_strerror(table[j].code));
    }
}

static void codes_are_negative_and_distinct(void **state)
{
    (void)state;
    for (size_t i = 1; i < N; i++) {
        assert_true(table[i].code < 0);
        assert_int_equal(table[i].code, -(int)i);
    }
}

static void unknown_codes(void **state)
{
    (void)state;
    assert_string_equal(dst_strerror(-999), "unknown error");
    assert_string_equal(dst_strerror(1), "unknown error");
    assert_int_equal(dst_err_http_status(-999), 500);
    assert_int_equal(dst_err_http_status(7), 500);
}

static void http_statuses(void **state)
{
    (void)state;
    for (size_t i = 0; i < N; i++)
        assert_int_equal(dst_err_http_status(table[i].code), table[i].status);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(texts),
        cmocka_unit_test(codes_are_negative_and_distinct),
        cmocka_unit_test(unknown_codes),
        cmocka_unit_test(http_statuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
