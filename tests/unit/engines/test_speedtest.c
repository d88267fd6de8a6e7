/* test_speedtest.c - unit tests of the speedtest engine's reading of speedtest.net's documents */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
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
}

/* A client location out of range is no location: the engine then says the config has none. */
static void test_config_location_out_of_range(void **state)
{
    struct config c;

    (void)state;
    read_config(CONFIG("95", "10.75"), &c);
    assert_true(isnan(c.client.lat));
    read_config(CONFIG("59.91", "-180.5"), &c);
    assert_true(isnan(c.client.lon));
    read_config(CONFIG("-90", "180"), &c);
    assert_true(c.client.lat == -90 && c.client.lon == 180);
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
}

/* What a result cannot hold of a server is left out: an id past 2^53, half a character. */
static void test_result_holds_what_it_can(void **state)
{
    static const char xml[] =
        "<settings><servers><server url=\"http://a/u.php\" lat=\"59\" lon=\"11\" "
        "id=\"33333333333333333.3\" sponsor=\""
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\"/></servers></settings>";
    struct config c;
    struct list l = {.cfg = &c};
    struct dst_result r;
    char err[256];

    (void)state;
    read_config(CONFIG("59.91", "10.75"), &c);
    assert_int_equal(speedtest_servers_parse(xml, strlen(xml), &l, err, sizeof(err)), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(strlen(l.near[0].sponsor), 126); /* not 127: the "\xc3" of a cut "\xc3\xa9" */
    dst_result_init(&r);
    dst_uuid_from_name("test", r.id);
    dst_result_set(&r.probe, "probe");
    speedtest_result_place(&r, &l.near[0], &c);
    assert_int_equal(dst_result_validate(&r, err, sizeof(err)), 0);
    assert_int_equal(r.server_id, -1);
    dst_result_release(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_config_location_out_of_range),
        cmocka_unit_test(test_servers),
        cmocka_unit_test(test_server_location_out_of_range),
        cmocka_unit_test(test_result_holds_what_it_can),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
