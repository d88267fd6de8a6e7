/* test_assets.c - unit tests of the embedded files and the web UI routes */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/assets.h"
#include "core/err.h"
#include "http_test.h"

/* A service route, added before the mount: it must keep working. */
static void h_service(struct dst_http_req *req, void *ud)
{
    (void)ud;
    dst_http_reply(req, 200, "text/plain", "service", 7);
}

/* GET /raw/...: dst_assets_reply for the asset named by the rest of the path. */
static void h_raw(struct dst_http_req *req, void *ud)
{
    char *path = dst_xasprintf("/%s", dst_http_req_param(req, "*"));
    const struct dst_asset *a = dst_asset_find(path);

    (void)ud;
    free(path);
    if (a)
        dst_assets_reply(req, a);
    else
        dst_http_reply_error(req, 404, "no asset");
}

static int setup(void **state)
{
    struct dst_http_server *s = ht_server(NULL);

    assert_non_null(s);
    assert_int_equal(dst_http_server_route(s, "GET", "/api/v1/thing", h_service, NULL, 0, 0), 0);
    assert_int_equal(dst_http_server_route(s, "GET", "/raw/*", h_raw, NULL, 0, 0), 0);
    assert_int_equal(dst_assets_mount(s, "{\"apiUrl\":\"http://api:8080\"}"), 0);
    assert_int_equal(dst_http_server_start(s), 0);
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    dst_http_server_free(*state);
    return 0;
}

static void fetch(struct dst_http_server *s, const char *method, const char *path,
                  const char *header, struct ht_resp *r)
{
    const char *hl[] = {header, NULL};
    char *url = ht_url(s, path);

    assert_int_equal(ht_get(method, url, NULL, 0, header ? hl : NULL, r), CURLE_OK);
    free(url);
}

static void assert_serves(const struct ht_resp *r, const struct dst_asset *a)
{
    char v[128];

    assert_int_equal(r->status, 200);
    assert_int_equal(r->len, a->len);
    if (a->len)
        assert_memory_equal(r->body, a->data, a->len);
    assert_true(ht_header(r, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, a->ctype);
    assert_true(ht_header(r, "ETag", v, sizeof(v)));
    assert_string_equal(v, a->etag);
    assert_true(ht_header(r, "Cache-Control", v, sizeof(v)));
    assert_string_equal(v, "no-cache");
}

static void test_find(void **state)
{
    size_t n = 0;
    const struct dst_asset *all = dst_assets_all(&n);

    (void)state;
    assert_true(n >= 2);
    for (size_t i = 0; i < n; i++) {
        assert_ptr_equal(dst_asset_find(all[i].path), &all[i]);
        assert_int_equal(all[i].path[0], '/');
        assert_non_null(all[i].ctype);
        assert_true(all[i].etag[0] == '"' && all[i].etag[strlen(all[i].etag) - 1] == '"');
    }
    assert_non_null(dst_asset_find("/index.html"));
    assert_non_null(dst_asset_find("/swagger/index.html"));
    assert_string_equal(dst_asset_find("/index.html")->ctype, "text/html; charset=utf-8");
    assert_null(dst_asset_find("/nope.html"));
    assert_null(dst_asset_find("index.html"));
    assert_null(dst_asset_find("/INDEX.HTML"));
    assert_null(dst_asset_find(""));
    assert_null(dst_asset_find(NULL));
}

static void test_reply_every_asset(void **state)
{
    size_t n = 0;
    const struct dst_asset *all = dst_assets_all(&n);

    for (size_t i = 0; i < n; i++) {
        struct ht_resp r;
        char *path = dst_xasprintf("/raw%s", all[i].path);
        fetch(*state, "GET", path, NULL, &r);
        assert_serves(&r, &all[i]);
        ht_resp_release(&r);
        free(path);
    }
}

static void test_not_modified(void **state)
{
    const struct dst_asset *a = dst_asset_find("/index.html");
    char *exact = dst_xasprintf("If-None-Match: %s", a->etag);
    char *listed = dst_xasprintf("If-None-Match: \"other\", W/%s", a->etag);
    const char *star = "If-None-Match: *";
    const char *other = "If-None-Match: \"0000000000000000\"";
    const char *matching[] = {exact, listed, star};
    struct ht_resp r;
    char v[64];

    for (int i = 0; i < 3; i++) {
        fetch(*state, "GET", "/raw/index.html", matching[i], &r);
        assert_int_equal(r.status, 304);
        assert_int_equal(r.len, 0);
        assert_true(ht_header(&r, "ETag", v, sizeof(v)));
        assert_string_equal(v, a->etag);
        ht_resp_release(&r);
    }
    fetch(*state, "GET", "/raw/index.html", other, &r);
    assert_serves(&r, a);
    ht_resp_release(&r);
    free(exact);
    free(listed);
}

static void test_head(void **state)
{
    const struct dst_asset *a = dst_asset_find("/vendor/uPlot.min.css");
    struct ht_resp r;
    char v[32];

    assert_non_null(a);
    fetch(*state, "HEAD", "/raw/vendor/uPlot.min.css", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    assert_true(ht_header(&r, "Content-Length", v, sizeof(v)));
    assert_int_equal(strtoul(v, NULL, 10), a->len);
    ht_resp_release(&r);
}

static void test_mount_index_and_assets(void **state)
{
    struct ht_resp r;

    fetch(*state, "GET", "/", NULL, &r);
    assert_serves(&r, dst_asset_find("/index.html"));
    ht_resp_release(&r);
    fetch(*state, "GET", "/index.html", NULL, &r);
    assert_serves(&r, dst_asset_find("/index.html"));
    ht_resp_release(&r);
    fetch(*state, "GET", "/vendor/uPlot.iife.min.js", NULL, &r);
    assert_serves(&r, dst_asset_find("/vendor/uPlot.iife.min.js"));
    ht_resp_release(&r);
    fetch(*state, "GET", "/api/v1/openapi.json", NULL, &r);
    assert_serves(&r, dst_asset_find("/api/v1/openapi.json"));
    ht_resp_release(&r);
}

static void test_mount_configuration(void **state)
{
    struct ht_resp r;
    char v[64];

    fetch(*state, "GET", "/configuration.json", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"apiUrl\":\"http://api:8080\"}");
    assert_true(ht_header(&r, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, "application/json");
    ht_resp_release(&r);
}

static void test_mount_swagger(void **state)
{
    struct ht_resp r;
    char v[64];

    fetch(*state, "GET", "/swagger", NULL, &r);
    assert_int_equal(r.status, 301);
    assert_true(ht_header(&r, "Location", v, sizeof(v)));
    assert_string_equal(v, "/swagger/");
    ht_resp_release(&r);
    fetch(*state, "GET", "/swagger/", NULL, &r);
    assert_serves(&r, dst_asset_find("/swagger/index.html"));
    ht_resp_release(&r);
    fetch(*state, "GET", "/swagger/swagger-ui.css", NULL, &r);
    assert_serves(&r, dst_asset_find("/swagger/swagger-ui.css"));
    ht_resp_release(&r);
}

static void test_mount_misses_and_service_routes(void **state)
{
    struct ht_resp r;
    char v[64];

    fetch(*state, "GET", "/nope.js", NULL, &r);
    assert_int_equal(r.status, 404);
    assert_true(ht_header(&r, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, "application/json");
    assert_non_null(strstr(r.body, "\"status\":404"));
    ht_resp_release(&r);
    fetch(*state, "GET", "/api/v1/thing", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "service");
    ht_resp_release(&r);
    fetch(*state, "POST", "/index.html", NULL, &r);
    assert_int_equal(r.status, 405);
    ht_resp_release(&r);
}

static void test_mount_default_configuration(void **state)
{
    struct dst_http_server *s = ht_server(NULL);
    struct ht_resp r;

    (void)state;
    assert_int_equal(dst_assets_mount(s, NULL), 0);
    assert_int_equal(dst_http_server_start(s), 0);
    fetch(s, "GET", "/configuration.json", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{}");
    ht_resp_release(&r);
    dst_http_server_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test_setup_teardown(test_reply_every_asset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_modified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mount_index_and_assets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mount_configuration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mount_swagger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mount_misses_and_service_routes, setup, teardown),
        cmocka_unit_test(test_mount_default_configuration),
    };

    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
