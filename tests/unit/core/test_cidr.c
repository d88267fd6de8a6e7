/* test_cidr.c - unit tests of IP networks: parse and match (src/core/cidr.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/cidr.h"
#include "core/err.h"

static bool in(const char *net, const char *ip)
{
    struct dst_cidr c;
    assert_int_equal(dst_cidr_parse(net, &c, NULL, 0), 0);
    return dst_cidr_contains(&c, ip);
}

static void matches(void **state)
{
    (void)state;
    assert_true(in("127.0.0.0/8", "127.0.0.1"));
    assert_true(in("127.0.0.0/8", "127.255.3.4"));
    assert_false(in("127.0.0.0/8", "128.0.0.1"));
    assert_true(in("10.1.2.0/23", "10.1.3.255"));
    assert_false(in("10.1.2.0/23", "10.1.4.0"));
    assert_true(in("192.0.2.7", "192.0.2.7")); /* a bare address: all bits */
    assert_false(in("192.0.2.7", "192.0.2.8"));
    assert_true(in("0.0.0.0/0", "203.0.113.9"));
    assert_true(in("::1", "::1"));
    assert_false(in("::1", "::2"));
    assert_true(in("fd00::/8", "fd12:3456::1"));
    assert_false(in("fd00::/8", "fe80::1"));
    /* an IPv4-mapped IPv6 client is its IPv4 address */
    assert_true(in("127.0.0.0/8", "::ffff:127.0.0.1"));
    assert_false(in("127.0.0.0/8", "::ffff:10.0.0.1"));
    /* families never mix otherwise; garbage never matches */
    assert_false(in("::/0", "127.0.0.1"));
    assert_false(in("0.0.0.0/0", "::1"));
    assert_false(in("0.0.0.0/0", ""));
    assert_false(in("0.0.0.0/0", "not an address"));
}

static void bad_input(void **state)
{
    struct dst_cidr c;
    char err[128];
    static const char *const bad[] = {"",          "/8",          "127.0.0.1/33", "::1/129",
                                      "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8",  "10.0.0/8",
                                      "host.name", "1.2.3.4/8x",  "1.2.3.4 /8",   NULL};

    (void)state;
    for (int i = 0; bad[i]; i++) {
        err[0] = '\0';
        assert_int_equal(dst_cidr_parse(bad[i], &c, err, sizeof(err)), DST_EINVAL);
        assert_true(strlen(err) > 0);
    }
    assert_int_equal(dst_cidr_parse(NULL, &c, err, sizeof(err)), DST_EINVAL);
    assert_int_equal(dst_cidr_parse("1.2.3.4/32", &c, err, sizeof(err)), 0);
}

static void lists(void **state)
{
    struct dst_cidr_list l = {0};
    const char *texts[] = {"127.0.0.0/8,::1", "10.0.0.0/8"};
    const char *none[] = {"none"};
    const char *bad[] = {"10.0.0.0/8,nope"};
    char err[128];

    (void)state;
    assert_int_equal(dst_cidr_list_add(&l, texts, 2, err, sizeof(err)), 0);
    assert_int_equal(l.n, 3);
    assert_true(dst_cidr_list_contains(&l, "::1"));
    assert_true(dst_cidr_list_contains(&l, "10.9.9.9"));
    assert_false(dst_cidr_list_contains(&l, "192.168.1.1"));
    dst_cidr_list_release(&l);
    assert_int_equal(dst_cidr_list_add(&l, none, 1, err, sizeof(err)), 0);
    assert_int_equal(l.n, 0);
    assert_false(dst_cidr_list_contains(&l, "127.0.0.1"));
    assert_int_equal(dst_cidr_list_add(&l, bad, 1, err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "nope"));
    dst_cidr_list_release(&l);
    assert_int_equal(dst_cidr_check("127.0.0.0/8,::1", err, sizeof(err)), 0);
    assert_int_equal(dst_cidr_check("127.0.0.0/99", err, sizeof(err)), DST_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
