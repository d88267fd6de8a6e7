/* test_uuid.c - unit tests of random and name-based UUIDs (src/core/uuid.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <string.h>

#include "core/err.h"
#include "core/uuid.h"

static void new_is_v4_lower(void **state)
{
    char a[DST_UUID_LEN + 1], b[DST_UUID_LEN + 1];

    (void)state;
    dst_uuid_new(a);
    dst_uuid_new(b);
    assert_int_equal(strlen(a), DST_UUID_LEN);
    assert_true(dst_uuid_valid(a));
    assert_string_not_equal(a, b);
    for (int i = 0; i < DST_UUID_LEN; i++)
        assert_false(isupper((unsigned char)a[i]));
    assert_int_equal(a[14], '4');           /* version 4 */
    assert_non_null(strchr("89ab", a[19])); /* RFC 4122 variant */
}

static void from_name_is_stable_v5(void **state)
{
    char a[DST_UUID_LEN + 1], b[DST_UUID_LEN + 1], c[DST_UUID_LEN + 1];

    (void)state;
    dst_uuid_from_name("req-1/probe-a", a);
    dst_uuid_from_name("req-1/probe-a", b);
    dst_uuid_from_name("req-1/probe-b", c);
    assert_string_equal(a, b);     /* same name, same id */
    assert_string_not_equal(a, c); /* another probe, another id */
    /* RFC 4122 v5: Python's uuid.uuid5(UUID(namespace), "req-1/probe-a") gives the same. */
    assert_string_equal(a, "3094138c-f080-5cf1-aae4-75eb9dffdd9e");
    assert_true(dst_uuid_valid(a));
    dst_uuid_from_name("", c); /* an empty name is still a name */
    assert_true(dst_uuid_valid(c));
    assert_int_equal(c[14], '5');
}

static void valid(void **state)
{
    (void)state;
    assert_true(dst_uuid_valid("123e4567-e89b-42d3-a456-426614174000"));
    assert_true(dst_uuid_valid("123E4567-E89B-42D3-A456-426614174000"));
    assert_true(dst_uuid_valid("00000000-0000-0000-0000-000000000000"));
    assert_false(dst_uuid_valid(NULL));
    assert_false(dst_uuid_valid(""));
    assert_false(dst_uuid_valid("123e4567-e89b-42d3-a456-42661417400"));   /* short */
    assert_false(dst_uuid_valid("123e4567-e89b-42d3-a456-4266141740000")); /* long */
    assert_false(dst_uuid_valid("123e4567e-89b-42d3-a456-426614174000"));  /* dash moved */
    assert_false(dst_uuid_valid("123e4567-e89b-42d3-a456-42661417400g"));  /* not hex */
    assert_false(dst_uuid_valid("123e4567_e89b_42d3_a456_426614174000"));
    assert_false(dst_uuid_valid("{23e4567-e89b-42d3-a456-426614174000}"));
}

static void normalize(void **state)
{
    char out[DST_UUID_LEN + 1] = "untouched";

    (void)state;
    assert_int_equal(dst_uuid_normalize("123E4567-E89B-42D3-A456-426614174ABC", out), 0);
    assert_string_equal(out, "123e4567-e89b-42d3-a456-426614174abc");
    strcpy(out, "untouched");
    assert_int_equal(dst_uuid_normalize("not-a-uuid", out), DST_EINVAL);
    assert_string_equal(out, "untouched");
    assert_int_equal(dst_uuid_normalize(NULL, out), DST_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_is_v4_lower),
        cmocka_unit_test(from_name_is_stable_v5),
        cmocka_unit_test(valid),
        cmocka_unit_test(normalize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
