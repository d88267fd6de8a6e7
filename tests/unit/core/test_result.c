/* test_result.c - unit tests of result.c: the model, its native JSON form and validation */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/json.h"
#include "core/result.h"

#define ID "6f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5b"

/* The example of docs/api.md, with every field known but packet_loss_pct and a few strings. */
static const char full_json[] =
    "{\"id\":\"" ID "\",\"seq\":12,\"time\":\"2026-11-21T10:00:00.000Z\",\"status\":\"ok\","
    "\"error\":null,\"probe\":\"home\",\"location\":\"living room\",\"user\":\"teodoran\","
    "\"device\":3,\"engine\":\"dummy\",\"target\":\"dummy:\",\"request_id\":null,"
    "\"download_bps\":85000000,\"upload_bps\":12000000,\"ping_ms\":12,\"jitter_ms\":1.5,"
    "\"packet_loss_pct\":null,\"bytes_down\":106250000,\"bytes_up\":15000000,"
    "\"duration_s\":20.1,\"streams\":4,"
    "\"server\":{\"id\":42,\"host\":\"speedtest.not\",\"name\":null,\"sponsor\":null,"
    "\"country\":\"NO\",\"lat\":59.902138,\"lon\":10.771267,\"distance_m\":2430},"
    "\"client\":{\"ip\":\"127.0.0.1\",\"isp\":\"UUNET\",\"country\":\"NO\",\"lat\":59.913396,"
    "\"lon\":10.74133}}";

static json_t *parse(const char *text)
{
    char err[200];
    json_t *j = dst_json_parse(text, strlen(text), err, sizeof(err));
    if (!j)
        fail_msg("bad test JSON %s: %s", text, err);
    return j;
}

/* Parses text as a result; returns from_json's code and leaves its message in err. */
static int from_text(const char *text, struct dst_result *r, char *err, size_t errlen)
{
    json_t *j = parse(text);
    int rc = dst_result_from_json(j, r, err, errlen);
    json_decref(j);
    return rc;
}

static char *dump(const struct dst_result *r)
{
    json_t *j = dst_result_to_json(r);
    char *s = dst_json_dumps(j, NULL);
    json_decref(j);
    return s;
}

static void test_init_is_unknown(void **state)
{
    (void)state;
    struct dst_result r;
    dst_result_init(&r);
    assert_string_equal(r.id, "");
    assert_int_equal(r.seq, 0);
    assert_int_equal(r.status, DST_RESULT_OK);
    assert_true(isnan(r.download_bps) && isnan(r.loss_pct) && isnan(r.server_distance_m));
    assert_true(isnan(r.client_lon));
    assert_int_equal(r.device, -1);
    assert_int_equal(r.bytes_up, -1);
    assert_int_equal(r.streams, -1);
    assert_int_equal(r.server_id, -1);
    assert_null(r.probe);
    assert_null(r.client_country);
    dst_result_release(&r);
    dst_result_release(NULL);
}

static void test_set_copy_release(void **state)
{
    (void)state;
    struct dst_result a, b;
    dst_result_init(&a);
    dst_result_set(&a.probe, "home");
    dst_result_set(&a.probe, "away"); /* replaces, frees the old one */
    dst_result_set(&a.server_sponsor, "ACME");
    dst_result_set(&a.client_isp, "UUNET");
    dst_result_set(&a.location, "x");
    dst_result_set(&a.location, NULL);
    a.download_bps = 1e6;
    dst_result_copy(&b, &a);
    assert_ptr_not_equal(a.probe, b.probe);
    assert_string_equal(b.probe, "away");
    assert_string_equal(b.server_sponsor, "ACME");
    assert_string_equal(b.client_isp, "UUNET");
    assert_null(b.location);
    assert_true(b.download_bps == 1e6);
    dst_result_release(&a);
    assert_string_equal(b.client_isp, "UUNET"); /* the copy is deep */
    dst_result_release(&b);
    assert_null(b.probe);
}

static void test_status_names(void **state)
{
    (void)state;
    enum dst_result_status s;
    assert_string_equal(dst_result_status_name(DST_RESULT_OK), "ok");
    assert_string_equal(dst_result_status_name(DST_RESULT_FAILED), "failed");
    assert_int_equal(dst_result_status_parse("failed", &s), 0);
    assert_int_equal(s, DST_RESULT_FAILED);
    assert_int_equal(dst_result_status_parse("ok", &s), 0);
    assert_int_equal(s, DST_RESULT_OK);
    assert_int_equal(dst_result_status_parse("OK", &s), DST_EINVAL);
    assert_int_equal(dst_result_status_parse(NULL, &s), DST_EINVAL);
}

static void test_to_json_shape(void **state)
{
    (void)state;
    struct dst_result r;
    char err[200] = "";

    dst_result_init(&r);
    assert_int_equal(from_text(full_json, &r, err, sizeof(err)), 0);
    r.seq = 12; /* a posted seq is ignored; a stored one is shown */
    char *s = dump(&r);
    assert_string_equal(s, full_json);
    free(s);
    dst_result_release(&r);
}

static void test_to_json_unknowns_are_null(void **state)
{
    (void)state;
    struct dst_result r;
    dst_result_init(&r);
    snprintf(r.id, sizeof(r.id), "%s", ID);
    r.status = DST_RESULT_FAILED;
    dst_result_set(&r.error, "timeout");
    char *s = dump(&r);
    assert_string_equal(
        s, "{\"id\":\"" ID "\",\"seq\":null,\"time\":\"1970-01-01T00:00:00.000Z\","
           "\"status\":\"failed\",\"error\":\"timeout\",\"probe\":null,\"location\":null,"
           "\"user\":null,\"device\":null,\"engine\":null,\"target\":null,\"request_id\":null,"
           "\"download_bps\":null,\"upload_bps\":null,\"ping_ms\":null,\"jitter_ms\":null,"
           "\"packet_loss_pct\":null,\"bytes_down\":null,\"bytes_up\":null,\"duration_s\":null,"
           "\"streams\":null,\"server\":{\"id\":null,\"host\":null,\"name\":null,"
           "\"sponsor\":null,\"country\":null,\"lat\":null,\"lon\":null,\"distance_m\":null},"
           "\"client\":{\"ip\":null,\"isp\":null,\"country\":null,\"lat\":null,\"lon\":null}}");
    free(s);
    dst_result_release(&r);
}

/* demo and excluded: shown only when true (a probe's result reads as before), read back */
static void test_flags(void **state)
{
    (void)state;
    struct dst_result r;
    char err[200] = "";

    dst_result_init(&r);
    snprintf(r.id, sizeof(r.id), "%s", ID);
    char *s = dump(&r);
    assert_null(strstr(s, "demo"));
    assert_null(strstr(s, "excluded"));
    free(s);
    r.demo = r.excluded = true;
    s = dump(&r);
    assert_non_null(strstr(s, "\"client\":{\"ip\":null,\"isp\":null,\"country\":null,\"lat\":null,"
                              "\"lon\":null},\"demo\":true,\"excluded\":true}"));
    free(s);
    dst_result_release(&r);
    dst_result_init(&r);
    assert_int_equal(from_text("{\"demo\":true,\"excluded\":false}", &r, err, sizeof(err)), 0);
    assert_true(r.demo);
    assert_false(r.excluded);
    dst_result_release(&r);
    dst_result_init(&r);
    assert_int_equal(from_text("{\"excluded\":1}", &r, err, sizeof(err)), DST_EINVAL);
    assert_string_equal(err, "excluded: must be true or false");
    dst_result_release(&r);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct dst_result a, b;
    char err[200] = "";

    dst_result_init(&a);
    dst_result_init(&b);
    assert_int_equal(from_text(full_json, &a, err, sizeof(err)), 0);
    a.loss_pct = 0.25;
    a.server_lat = -33.8688197;
    a.download_bps = 123456789.125;
    json_t *j = dst_result_to_json(&a);
    assert_int_equal(dst_result_from_json(j, &b, err, sizeof(err)), 0);
    json_decref(j);
    char *sa = dump(&a), *sb = dump(&b);
    assert_string_equal(sa, sb);
    assert_true(b.server_lat == a.server_lat && b.download_bps == a.download_bps);
    assert_int_equal(b.time_ms, a.time_ms);
    free(sa);
    free(sb);
    dst_result_release(&a);
    dst_result_release(&b);
}

static void test_from_json_defaults(void **state)
{
    (void)state;
    struct dst_result r;
    char err[200] = "";
    int64_t before = dst_datetime_now_ms();

    dst_result_init(&r);
    assert_int_equal(from_text("{}", &r, err, sizeof(err)), 0);
    assert_true(dst_uuid_valid(r.id));
    assert_true(r.time_ms >= before && r.time_ms <= dst_datetime_now_ms());
    assert_string_equal(r.probe, "default");
    assert_int_equal(r.status, DST_RESULT_OK);
    dst_result_release(&r);

    /* probe falls back to user; nulls are unknowns; seq is ignored; time in ms */
    assert_int_equal(from_text("{\"user\":\"teodoran\",\"seq\":7,\"download_bps\":null,"
                               "\"server\":null,\"time\":1700000000123}",
                               &r, err, sizeof(err)),
                     0);
    assert_string_equal(r.probe, "teodoran");
    assert_int_equal(r.seq, 0);
    assert_true(isnan(r.download_bps));
    assert_int_equal(r.time_ms, 1700000000123);
    dst_result_release(&r);

    /* an upper-case id is normalised; ISO time with an offset; integral reals as integers */
    assert_int_equal(from_text("{\"id\":\"6F1C2A3B-4D5E-4F60-8A9B-0C1D2E3F4A5B\","
                               "\"time\":\"2026-11-21T11:00:00.5+01:00\",\"probe\":\"p\","
                               "\"bytes_down\":1000.0,\"status\":\"failed\",\"error\":\"dns\"}",
                               &r, err, sizeof(err)),
                     0);
    assert_string_equal(r.id, ID);
    assert_int_equal(r.time_ms, 1795255200500);
    assert_int_equal(r.bytes_down, 1000);
    assert_int_equal(r.status, DST_RESULT_FAILED);
    dst_result_release(&r);
}

/* Every rejected input and the exact message it gets. */
static const struct {
    const char *json, *msg;
} bad[] = {
    {"[]", "result: must be a JSON object"},
    {"{\"foo\":1}", "foo: unknown field"},
    {"{\"Probe\":\"x\"}", "Probe: unknown field"},
    {"{\"server\":{\"foo\":1}}", "server.foo: unknown field"},
    {"{\"client\":{\"id\":1}}", "client.id: unknown field"},
    {"{\"server\":1}", "server: must be an object or null"},
    {"{\"client\":[]}", "client: must be an object or null"},
    {"{\"probe\":1}", "probe: must be a string"},
    {"{\"server\":{\"host\":true}}", "server.host: must be a string"},
    {"{\"download_bps\":\"1\"}", "download_bps: must be a number from 0 to 1e13"},
    {"{\"download_bps\":-1}", "download_bps: must be a number from 0 to 1e13"},
    {"{\"download_bps\":1.0000001e13}", "download_bps: must be a number from 0 to 1e13"},
    {"{\"upload_bps\":2e13}", "upload_bps: must be a number from 0 to 1e13"},
    {"{\"ping_ms\":3600001}", "ping_ms: must be a number from 0 to 3.6e6"},
    {"{\"jitter_ms\":-0.5}", "jitter_ms: must be a number from 0 to 3.6e6"},
    {"{\"packet_loss_pct\":100.5}", "packet_loss_pct: must be a number from 0 to 100"},
    {"{\"bytes_down\":-1}", "bytes_down: must be an integer from 0 to 2^53"},
    {"{\"bytes_up\":9007199254740993}", "bytes_up: must be an integer from 0 to 2^53"},
    {"{\"bytes_up\":1.5}", "bytes_up: must be an integer from 0 to 2^53"},
    {"{\"bytes_up\":\"5\"}", "bytes_up: must be an integer from 0 to 2^53"},
    {"{\"duration_s\":86400.5}", "duration_s: must be a number from 0 to 86400"},
    {"{\"streams\":1025}", "streams: must be an integer from 0 to 1024"},
    {"{\"device\":-1}", "device: must be an integer from 0 to 2^31-1"},
    {"{\"device\":2147483648}", "device: must be an integer from 0 to 2^31-1"},
    {"{\"server\":{\"id\":-1}}", "server.id: must be an integer from 0 to 2^53"},
    {"{\"server\":{\"lat\":90.1}}", "server.lat: must be a number from -90 to 90"},
    {"{\"server\":{\"lon\":-180.5}}", "server.lon: must be a number from -180 to 180"},
    {"{\"server\":{\"distance_m\":21000001}}",
     "server.distance_m: must be a number from 0 to 2.1e7"},
    {"{\"client\":{\"lat\":-91}}", "client.lat: must be a number from -90 to 90"},
    {"{\"client\":{\"lon\":181}}", "client.lon: must be a number from -180 to 180"},
    {"{\"server\":{\"country\":\"\"}}", "server.country: must be a string of 1 to 64 characters"},
    {"{\"client\":{\"country\":\"0123456789012345678901234567890123456789012345678901234567890123"
     "4\"}}",
     "client.country: must be a string of 1 to 64 characters"},
    {"{\"probe\":\"\"}", "probe: must be a string of 1 to 128 characters"},
    {"{\"id\":\"not-a-uuid\"}", "id: must be a UUID"},
    {"{\"id\":\"6f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5\"}", "id: must be a UUID"},
    {"{\"id\":42}", "id: must be a UUID"},
    {"{\"time\":\"yesterday\"}", "time: not an ISO 8601 date-time"},
    {"{\"time\":\"2026-02-30\"}", "time: not an ISO 8601 date-time"},
    {"{\"time\":1.5}", "time: must be an ISO 8601 date-time or integer milliseconds"},
    {"{\"time\":-62135596800001}", "time: must be between 0001-01-01 and 9999-12-31"},
    {"{\"time\":253402300800000}", "time: must be between 0001-01-01 and 9999-12-31"},
    {"{\"status\":\"bad\"}", "status: must be \"ok\" or \"failed\""},
    {"{\"status\":0}", "status: must be \"ok\" or \"failed\""},
    {"{\"status\":\"failed\"}", "error: required when status is \"failed\""},
    {"{\"status\":\"failed\",\"error\":\"\"}", "error: required when status is \"failed\""},
    {"{\"seq\":\"x\"}", "seq: must be an integer"},
};

static void test_from_json_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct dst_result r;
        char err[200] = "";
        dst_result_init(&r);
        int rc = from_text(bad[i].json, &r, err, sizeof(err));
        if (rc != DST_EINVAL || strcmp(err, bad[i].msg) != 0)
            fail_msg("%s: got %d \"%s\", want \"%s\"", bad[i].json, rc, err, bad[i].msg);
        dst_result_release(&r);
    }
}

/* Builds {"KEY":"xxx...x"} with n bytes of c. */
static char *long_string(const char *key, const char *c, size_t n)
{
    size_t cl = strlen(c), len = strlen(key) + n * cl + 16;
    char *s = malloc(len), *p = s;
    p += sprintf(p, "{\"%s\":\"", key);
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s", c);
    sprintf(p, "\"}");
    return s;
}

static void test_string_lengths(void **state)
{
    (void)state;
    static const struct {
        const char *key, *c;
        size_t ok, too_long;
        const char *msg;
    } t[] = {
        {"location", "x", 500, 501, "location: must be a string of at most 500 bytes"},
        {"target", "\xc3\xa6", 250, 251, "target: must be a string of at most 500 bytes"},
        {"error", "x", 2000, 2001, "error: must be a string of at most 2000 bytes"},
        {"probe", "x", 128, 129, "probe: must be a string of 1 to 128 characters"},
        {"probe", "\xc3\xa6", 128, 129, "probe: must be a string of 1 to 128 characters"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct dst_result r;
        char err[200] = "";
        char *ok = long_string(t[i].key, t[i].c, t[i].ok);
        char *no = long_string(t[i].key, t[i].c, t[i].too_long);
        dst_result_init(&r);
        assert_int_equal(from_text(ok, &r, err, sizeof(err)), 0);
        dst_result_release(&r);
        assert_int_equal(from_text(no, &r, err, sizeof(err)), DST_EINVAL);
        assert_string_equal(err, t[i].msg);
        dst_result_release(&r);
        free(ok);
        free(no);
    }
    /* countries count characters: 64 two-byte characters are fine */
    struct dst_result r;
    char err[200] = "", text[400] = "{\"client\":{\"country\":\"";
    for (int i = 0; i < 64; i++)
        strcat(text, "\xc3\xa6");
    strcat(text, "\"}}");
    dst_result_init(&r);
    assert_int_equal(from_text(text, &r, err, sizeof(err)), 0);
    assert_int_equal(strlen(r.client_country), 128);
    dst_result_release(&r);
}

static void test_error_buffer_optional(void **state)
{
    (void)state;
    struct dst_result r;
    char err[12];
    dst_result_init(&r);
    assert_int_equal(from_text("{\"foo\":1}", &r, NULL, 0), DST_EINVAL);
    assert_int_equal(from_text("{\"download_bps\":-5}", &r, err, sizeof(err)), DST_EINVAL);
    assert_string_equal(err, "download_bp"); /* truncated, terminated */
    dst_result_release(&r);
}

static void valid(struct dst_result *r)
{
    dst_result_init(r);
    snprintf(r->id, sizeof(r->id), "%s", ID);
    dst_result_set(&r->probe, "home");
    r->time_ms = 1700000000000;
}

static void expect_invalid(struct dst_result *r, const char *msg)
{
    char err[200] = "";
    assert_int_equal(dst_result_validate(r, err, sizeof(err)), DST_EINVAL);
    assert_string_equal(err, msg);
    dst_result_release(r);
}

static void test_validate(void **state)
{
    (void)state;
    struct dst_result r;
    char err[200] = "";

    valid(&r);
    assert_int_equal(dst_result_validate(&r, err, sizeof(err)), 0);
    r.download_bps = NAN; /* unknown is fine */
    r.time_ms = 253402300799999;
    assert_int_equal(dst_result_validate(&r, err, sizeof(err)), 0);
    dst_result_release(&r);

    valid(&r);
    r.download_bps = INFINITY;
    expect_invalid(&r, "download_bps: must be a number from 0 to 1e13");
    valid(&r);
    r.client_lat = -INFINITY;
    expect_invalid(&r, "client.lat: must be a number from -90 to 90");
    valid(&r);
    r.streams = -2;
    expect_invalid(&r, "streams: must be an integer from 0 to 1024");
    valid(&r);
    r.id[0] = 'F';
    expect_invalid(&r, "id: must be a lower-case UUID");
    valid(&r);
    r.id[0] = '\0';
    expect_invalid(&r, "id: must be a lower-case UUID");
    valid(&r);
    dst_result_set(&r.probe, NULL);
    expect_invalid(&r, "probe: must be a string of 1 to 128 characters");
    valid(&r);
    r.status = (enum dst_result_status)7;
    expect_invalid(&r, "status: must be \"ok\" or \"failed\"");
    valid(&r);
    r.time_ms = -62135596800001LL;
    expect_invalid(&r, "time: must be between 0001-01-01 and 9999-12-31");
    valid(&r);
    r.status = DST_RESULT_FAILED;
    expect_invalid(&r, "error: required when status is \"failed\"");
}

/* dst_result_set_cut keeps at most max bytes, never half a character. */
static void test_set_cut(void **state)
{
    char *f = NULL;

    (void)state;
    dst_result_set_cut(&f, "abc", 3);
    assert_string_equal(f, "abc");
    dst_result_set_cut(&f, "abcd", 3);
    assert_string_equal(f, "abc");
    dst_result_set_cut(&f,
                       "a\xc3\xa9"
                       "b",
                       2); /* "é" would be cut in two: left out */
    assert_string_equal(f, "a");
    dst_result_set_cut(&f, "\xf0\x9f\x98\x80x", 3);
    assert_string_equal(f, "");
    dst_result_set_cut(&f, NULL, 3);
    assert_null(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_is_unknown),
        cmocka_unit_test(test_set_copy_release),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_to_json_shape),
        cmocka_unit_test(test_to_json_unknowns_are_null),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_from_json_defaults),
        cmocka_unit_test(test_from_json_errors),
        cmocka_unit_test(test_string_lengths),
        cmocka_unit_test(test_error_buffer_optional),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_set_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
