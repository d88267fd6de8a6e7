/* test_crypto.c - unit tests of hashes, random secrets and comparison (src/core/crypto.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <string.h>

#include "core/crypto.h"

static void sha256_known_answers(void **state)
{
    char h[DST_SHA256_HEX];

    (void)state;
    dst_sha256_hex("", 0, h); /* FIPS 180-2 test vectors */
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    dst_sha256_hex("abc", 3, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void hmac_known_answer(void **state)
{
    char h[DST_SHA256_HEX];

    (void)state;
    /* RFC 4231, test case 2 */
    dst_hmac_sha256_hex("Jefe", "what do ya want for nothing?", h);
    assert_string_equal(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void random_hex_is_hex_and_fresh(void **state)
{
    char a[65], b[65];

    (void)state;
    assert_int_equal(dst_random_hex(32, a), 0);
    assert_int_equal(dst_random_hex(32, b), 0);
    assert_int_equal(strlen(a), 64);
    for (int i = 0; i < 64; i++)
        assert_true(isxdigit((unsigned char)a[i]) && !isupper((unsigned char)a[i]));
    assert_string_not_equal(a, b);
    assert_int_not_equal(dst_random_hex(65, a), 0); /* more than it can make */
    assert_string_equal(a, "");
}

static void secret_equal(void **state)
{
    (void)state;
    assert_true(dst_secret_equal("abc", "abc"));
    assert_true(dst_secret_equal("", ""));
    assert_false(dst_secret_equal("abc", "abd"));
    assert_false(dst_secret_equal("abc", "abcd"));
    assert_false(dst_secret_equal("abcd", "abc"));
    assert_false(dst_secret_equal("", "a"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_known_answers),
        cmocka_unit_test(hmac_known_answer),
        cmocka_unit_test(random_hex_is_hex_and_fresh),
        cmocka_unit_test(secret_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
