/* test_http_cors.c - unit tests of the cross-origin rules (src/core/http_cors.c), and of a
   server that applies them */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/http_cors.h"
#include "http_test.h"

static void check_origins(void **state)
{
    char err[160];

    (void)state;
    assert_int_equal(dst_http_cors_origins_check("https://dash.example.net", err, sizeof(err)), 0);
    assert_int_equal(
        dst_http_cors_origins_check("http://a.lan:8081,https://[fd00::1]:443", err, sizeof(err)),
        0);
    static const char *const bad[] = {"",           "*",           "dash.example.net",
                                      "ftp://x",    "https://",    "https://x/path",
                                      "https://x,", "https://a b", NULL};
    for (int i = 0; bad[i]; i++) {
        err[0] = '\0';
        assert_int_equal(dst_http_cors_origins_check(bad[i], err, sizeof(err)), DST_EINVAL);
        assert_true(strlen(err) > 0);
    }
}

static void decide(void **state)
{
    struct dst_http_cors c;
    const char *list[] = {"https://Dash.example.net,http://a.lan:8081"};
    struct dst_http_cors_answer a;

    (void)state;
    dst_http_cors_init(&c, false, list, 1);
    assert_int_equal(c.norigins, 2);
    /* a listed origin: echoed, with credentials, for reads and writes */
    a = dst_http_cors_decide(&c, "https://dash.example.net", "PUT", false);
    assert_string_equal(a.allow_origin, "https://dash.example.net");
    assert_true(a.credentials && a.vary);
    /* another origin: nothing for writes, nor for reads of private routes */
    a = dst_http_cors_decide(&c, "https://evil.example", "POST", true);
    assert_null(a.allow_origin);
    a = dst_http_cors_decide(&c, "https://evil.example", "GET", false);
    assert_null(a.allow_origin);
    /* public routes: "*" for reads only, never with credentials */
    a = dst_http_cors_decide(&c, "https://evil.example", "GET", true);
    assert_string_equal(a.allow_origin, "*");
    assert_false(a.credentials);
    dst_http_cors_release(&c);
    /* "any" (the test server): "*" for everything, still without credentials */
    dst_http_cors_init(&c, true, NULL, 0);
    a = dst_http_cors_decide(&c, "https://evil.example", "POST", false);
    assert_string_equal(a.allow_origin, "*");
    assert_false(a.credentials || a.vary);
    dst_http_cors_release(&c);
}

static void foreign(void **state)
{
    struct dst_http_cors c;
    const char *list[] = {"http://dash.lan:8088"};

    (void)state;
    dst_http_cors_init(&c, false, list, 1);
    /* not a browser, or the page's own origin, or a listed one */
    assert_false(dst_http_cors_foreign(&c, NULL, "api.lan:8080", NULL));
    assert_false(dst_http_cors_foreign(&c, "http://api.lan:8080", "api.lan:8080", "same-origin"));
    assert_false(dst_http_cors_foreign(&c, "https://API.lan:8080", "api.lan:8080", NULL));
    assert_false(dst_http_cors_foreign(&c, "http://dash.lan:8088", "api.lan:8080", "same-site"));
    assert_false(dst_http_cors_foreign(&c, NULL, "api.lan:8080", "same-origin"));
    assert_false(dst_http_cors_foreign(&c, NULL, "api.lan:8080", "none"));
    /* another port is another origin (but the same site: the cookie would go along) */
    assert_true(dst_http_cors_foreign(&c, "http://api.lan:9999", "api.lan:8080", "same-site"));
    assert_true(dst_http_cors_foreign(&c, "http://evil.example", "api.lan:8080", "cross-site"));
    assert_true(dst_http_cors_foreign(&c, "null", "api.lan:8080", NULL));
    assert_true(dst_http_cors_foreign(&c, NULL, "api.lan:8080", "cross-site"));
    assert_true(dst_http_cors_foreign(&c, NULL, "api.lan:8080", "same-site"));
    assert_true(dst_http_cors_foreign(&c, "http://api.lan:8080", NULL, NULL));
    dst_http_cors_release(&c);
}

static void h_ok(struct dst_http_req *req, void *ud)
{
    const char *who = dst_http_req_foreign(req) ? "foreign" : "own";
    (void)ud;
    dst_http_reply(req, 200, "text/plain", who, strlen(who));
}

static void server_applies_them(void **state)
{
    const char *origins[] = {"http://dash.lan:8088"};
    struct dst_http_server_opts o = {.cors_origins = origins, .ncors_origins = 1};
    struct dst_http_server *s = ht_server(&o);
    struct ht_resp r;
    char v[128];

    (void)state;
    assert_non_null(s);
    assert_int_equal(dst_http_server_route(s, "GET", "/pub", h_ok, NULL, DST_HTTP_CORS_PUBLIC, 0),
                     0);
    assert_int_equal(dst_http_server_route(s, "GET", "/priv", h_ok, NULL, 0, 0), 0);
    assert_int_equal(dst_http_server_route(s, "PUT", "/priv", h_ok, NULL, 0, 0), 0);
    assert_int_equal(dst_http_server_start(s), 0);
    char *pub = ht_url(s, "/pub"), *priv = ht_url(s, "/priv");
    const char *evil[] = {"Origin: http://evil.example", NULL};
    const char *dash[] = {"Origin: http://dash.lan:8088", NULL};
    const char *evil_pre[] = {"Origin: http://evil.example", "Access-Control-Request-Method: PUT",
                              "Access-Control-Request-Headers: Content-Type", NULL};
    const char *evil_get_pre[] = {"Origin: http://evil.example",
                                  "Access-Control-Request-Method: GET",
                                  "Access-Control-Request-Headers: X-Foo", NULL};
    const char *dash_pre[] = {"Origin: http://dash.lan:8088", "Access-Control-Request-Method: PUT",
                              NULL};

    assert_int_equal(ht_get("GET", pub, NULL, 0, evil, &r), CURLE_OK);
    assert_true(ht_header(&r, "Access-Control-Allow-Origin", v, sizeof(v)));
    assert_string_equal(v, "*");
    assert_string_equal(r.body, "foreign");
    ht_resp_release(&r);
    assert_int_equal(ht_get("GET", priv, NULL, 0, evil, &r), CURLE_OK);
    assert_false(ht_header(&r, "Access-Control-Allow-Origin", v, sizeof(v)));
    assert_true(ht_header(&r, "Vary", v, sizeof(v)));
    ht_resp_release(&r);
    assert_int_equal(ht_get("GET", priv, NULL, 0, dash, &r), CURLE_OK);
    assert_true(ht_header(&r, "Access-Control-Allow-Origin", v, sizeof(v)));
    assert_string_equal(v, "http://dash.lan:8088");
    assert_true(ht_header(&r, "Access-Control-Allow-Credentials", v, sizeof(v)));
    assert_string_equal(r.body, "own");
    ht_resp_release(&r);
    /* a preflight of a write from another page: answered, but without any allowance */
    assert_int_equal(ht_get("OPTIONS", priv, NULL, 0, evil_pre, &r), CURLE_OK);
    assert_int_equal(r.status, 204);
    assert_false(ht_header(&r, "Access-Control-Allow-Origin", v, sizeof(v)));
    assert_false(ht_header(&r, "Access-Control-Allow-Methods", v, sizeof(v)));
    ht_resp_release(&r);
    /* ... and of a public route: reads only */
    assert_int_equal(ht_get("OPTIONS", pub, NULL, 0, evil_pre, &r), CURLE_OK);
    assert_false(ht_header(&r, "Access-Control-Allow-Methods", v, sizeof(v)));
    ht_resp_release(&r);
    assert_int_equal(ht_get("OPTIONS", pub, NULL, 0, evil_get_pre, &r), CURLE_OK);
    assert_true(ht_header(&r, "Access-Control-Allow-Methods", v, sizeof(v)));
    assert_string_equal(v, "GET, HEAD");
    assert_false(ht_header(&r, "Access-Control-Allow-Credentials", v, sizeof(v)));
    ht_resp_release(&r);
    /* the listed origin may write */
    assert_int_equal(ht_get("OPTIONS", priv, NULL, 0, dash_pre, &r), CURLE_OK);
    assert_int_equal(r.status, 204);
    assert_true(ht_header(&r, "Access-Control-Allow-Methods", v, sizeof(v)));
    assert_non_null(strstr(v, "PUT"));
    assert_true(ht_header(&r, "Access-Control-Allow-Credentials", v, sizeof(v)));
    ht_resp_release(&r);
    free(pub);
    free(priv);
    dst_http_server_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_origins),
        cmocka_unit_test(decide),
        cmocka_unit_test(foreign),
        cmocka_unit_test(server_applies_them),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
