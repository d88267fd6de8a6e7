/* test_speedtest.c - unit tests of the speedtest engine's reading of speedtest.net's documents */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/uuid.h"
#include "speedtest/engines/speedtest_priv.h"

#define CONFIG(lat, lon)                                                                     \
    "<settings><client ip=\"10.0.0.1\" lat=\"" lat "\" lon=\"" lon "\" isp=\"UUNET\" "       \
    "country=\"NO\"/><server-config threadcount=\"6\" ignoreids=\"7\"/><upload ratio=\"3\" " \
    "maxchunkcount=\"20\"/></settings>"

#define SERVER(id, url, lat, lon)                                                           \
    "<server url=\"" url "\" lat=\"" lat "\" lon=\"" lon "\" name=\"n\" cc=\"NO\" id=\"" id \
    "\" host=\"h:8080\"/>"

static void read_config(const char *xml, struct config *c)
{
    char err[256];

    speedtest_config_init(c);
    assert_int_equal(speedtest_config_parse(xml, strlen(xml), c, err, sizeof(err)), 0);
}

static void test_config(void **state)
{
    struct config c;

    (void)state;
    read_config(CONFIG("59.91", "10.75"), &c);
    assert_string_equal(c.client.ip, "10.0.0.1");
    assert_true(c.client.lat == 59.91 && c.client.lon == 10.75);
    assert_int_equal(c.threadcount, 6);
    assert_int_equal(c.ratio, 3);
    assert_int_equal(c.maxchunkcount, 20);
    assert_string_equal(c.ignoreids, "7");
    speedtest_config_release(&c);
}

/* A client location out of range refuses the config, naming the attribute; the ends are in. */
static void test_config_location_out_of_range(void **state)
{
    static const char *const bad[] = {CONFIG("95", "10.75"), CONFIG("59.91", "-180.5"),
                                      CONFIG("nan", "10"), CONFIG("1e999", "10")};
    struct config c;
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        speedtest_config_init(&c);
        assert_int_not_equal(speedtest_config_parse(bad[i], strlen(bad[i]), &c, err, sizeof(err)),
                             0);
        assert_non_null(strstr(err, "<client l"));
        speedtest_config_release(&c);
    }
    read_config(CONFIG("-90", "180"), &c);
    assert_true(c.client.lat == -90 && c.client.lon == 180);
    speedtest_config_release(&c);
}

/* Not XML: the parser's reason, with where. */
static void test_config_not_xml(void **state)
{
    static const char xml[] = "<settings><client></settings>";
    struct config c;
    char err[256];

    (void)state;
    speedtest_config_init(&c);
    assert_int_not_equal(speedtest_config_parse(xml, strlen(xml), &c, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "not XML: "));
    speedtest_config_release(&c);
}

/* The nearest servers with an http URL, sorted, ignoring the config's ignoreids. */
static void test_servers(void **state)
{
    static const char xml[] = "<settings><servers>" SERVER("1", "http://a/u.php", "60", "11")
        SERVER("2", "ftp://b/u.php", "59.9", "10.7") SERVER("7", "http://c/u.php", "59.9", "10.7")
            SERVER("3", "http://d/u.php", "59.92", "10.76") "</servers></settings>";
    struct config c;
    struct list l = {.cfg = &c};
    char err[256];

    (void)state;
    read_config(CONFIG("59.91", "10.75"), &c);
    assert_int_equal(speedtest_servers_parse(xml, strlen(xml), &l, err, sizeof(err)), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.near[0].id, 3);
    assert_int_equal(l.near[1].id, 1);
    assert_true(l.near[0].dist_km < l.near[1].dist_km);
    speedtest_config_release(&c);
}

/* A server whose location is out of range cannot be ranked: it is left out, not kept at a
   distance computed from nonsense, whose result the API would refuse. */
static void test_server_location_out_of_range(void **state)
{
    static const char xml[] = "<settings><servers>" SERVER("1", "http://a/u.php", "95", "11")
        SERVER("2", "http://b/u.php", "59", "190")
            SERVER("3", "http://c/u.php", "59", "11") "</servers></settings>";
    struct config c;
    struct list l = {.cfg = &c};
    struct dst_result r;
    char err[256];

    (void)state;
    read_config(CONFIG("59.91", "10.75"), &c);
    assert_int_equal(speedtest_servers_parse(xml, strlen(xml), &l, err, sizeof(err)), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.near[0].id, 3);
    dst_result_init(&r);
    dst_uuid_from_name("test", r.id);
    dst_result_set(&r.probe, "probe");
    speedtest_result_place(&r, &l.near[0], &c);
    assert_int_equal(dst_result_validate(&r, err, sizeof(err)), 0);
    assert_string_equal(r.server_country, "NO");
    assert_string_equal(r.client_isp, "UUNET");
    dst_result_release(&r);
    speedtest_config_release(&c);
}

/* A server a result could not hold is left out: an id past 2^53 (2^53 is in) or not whole, a
   long text. */
static void test_server_a_result_cannot_hold(void **state)
{
    char xml[2048];
    char sponsor[TEXT_LEN + 1];
    struct config c;
    struct list l = {.cfg = &c};
    char err[256];

    (void)state;
    memset(sponsor, 'a', TEXT_LEN);
    sponsor[TEXT_LEN] = '\0';
    snprintf(xml, sizeof(xml),
             "<settings><servers>" SERVER("33333333333333333", "http://a/u.php", "59", "11") SERVER(
                 "3.5", "http://b/u.php", "59",
                 "11") "<server url=\"http://c/u.php\" lat=\"59\" lon=\"11\" id=\"4\" "
                       "sponsor=\"%s\"/>" SERVER("9007199254740992", "http://d/u.php", "59", "11")
                           SERVER("9007199254740993", "http://e/u.php", "59",
                                  "11") "</servers></settings>",
             sponsor);
    read_config(CONFIG("59.91", "10.75"), &c);
    assert_int_equal(speedtest_servers_parse(xml, strlen(xml), &l, err, sizeof(err)), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.near[0].id, 9007199254740992LL);
    speedtest_config_release(&c);
}

/* Five servers nearer and nearer: the five kept are all of them, sorted (not four and a blank). */
static void test_nearest_five(void **state)
{
    static const char xml[] = "<settings><servers>" SERVER("1", "http://a/u.php", "65", "11")
        SERVER("2", "http://b/u.php", "64", "11") SERVER("3", "http://c/u.php", "63", "11")
            SERVER("4", "http://d/u.php", "62", "11") SERVER("5", "http://e/u.php", "61", "11")
                SERVER("6", "http://f/u.php", "66", "11") "</servers></settings>";
    struct config c;
    struct list l = {.cfg = &c};
    char err[256];

    (void)state;
    read_config(CONFIG("59.91", "10.75"), &c);
    assert_int_equal(speedtest_servers_parse(xml, strlen(xml), &l, err, sizeof(err)), 0);
    assert_int_equal(l.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(l.near[i].id, 5 - i);
        assert_true(strncmp(l.near[i].url, "http://", 7) == 0);
    }
    speedtest_config_release(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_config_location_out_of_range),
        cmocka_unit_test(test_config_not_xml),
        cmocka_unit_test(test_servers),
        cmocka_unit_test(test_server_location_out_of_range),
        cmocka_unit_test(test_server_a_result_cannot_hold),
        cmocka_unit_test(test_nearest_five),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
