/* test_frontend_cache.c - unit tests of the front end's cache (src/toystore/frontend_cache.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/http_client.h"
#include "core/http_server.h"
#include "core/sse.h"
#include "http_test.h"
#include "toystore/toystore.h"

/* A stand-in catalog: GET /events on an SSE hub the test publishes to. */
struct fake {
    struct dst_http_server *srv;
    struct dst_sse_hub *hub;
    char url[128];
};

static void on_events(struct dst_http_req *req, void *ud)
{
    struct fake *f = ud;
    if (dst_sse_hub_attach(f->hub, req) != 0)
        dst_http_reply_error(req, 503, "no hub");
}

static void fake_start(struct fake *f)
{
    assert_int_equal(dst_sse_hub_new(1000, 0, &f->hub), 0);
    f->srv = ht_server(NULL);
    assert_non_null(f->srv);
    assert_int_equal(dst_http_server_route(f->srv, "GET", "/events", on_events, f, 0, 0), 0);
    assert_int_equal(dst_http_server_start(f->srv), 0);
    snprintf(f->url, sizeof(f->url), "%s", dst_http_server_url(f->srv));
}

static void fake_stop(struct fake *f)
{
    dst_sse_hub_free(f->hub);
    dst_http_server_free(f->srv);
    f->hub = NULL;
    f->srv = NULL;
}

static bool events_up(void *arg)
{
    json_t *j = fe_cache_stats(arg);
    bool up = json_is_true(json_object_get(j, "events"));
    json_decref(j);
    return up;
}

static bool events_down(void *arg)
{
    return !events_up(arg);
}

static bool cached(struct fe_cache *c, const char *name)
{
    struct fe_cache_token t;
    size_t len = 0;
    char *body = fe_cache_get(c, name, &len, &t);
    free(body);
    return body != NULL;
}

struct named {
    struct fe_cache *c;
    const char *name;
};

static bool gone(void *arg)
{
    struct named *n = arg;
    return !cached(n->c, n->name);
}

static void fills_drops_and_the_race(void **state)
{
    struct fake f = {0};
    struct fe_cache *c = NULL;
    struct fe_cache_token t1, t2;
    size_t len = 0;

    (void)state;
    fake_start(&f);
    assert_int_equal(fe_cache_new(f.url, true, &c), 0);
    assert_true(ht_wait(events_up, c, 20000));
    assert_null(fe_cache_get(c, "Tux", &len, &t1));
    fe_cache_put(c, "Tux", "old", 3, &t1);
    char *body = fe_cache_get(c, "Tux", &len, &t2);
    assert_non_null(body);
    assert_int_equal(len, 3);
    assert_memory_equal(body, "old", 3);
    free(body);
    /* a miss whose fetch began before a drop does not put its answer back */
    fe_cache_drop(c, "Tux");
    assert_null(fe_cache_get(c, "Tux", &len, &t2));
    fe_cache_drop(c, "Tux"); /* a buy lands while that fetch is in flight */
    fe_cache_put(c, "Tux", "stale", 5, &t2);
    assert_false(cached(c, "Tux"));
    /* a drop of another name (another bucket, very likely) keeps Whale's put */
    assert_null(fe_cache_get(c, "Whale", &len, &t2));
    fe_cache_put(c, "Whale", "w", 1, &t2);
    assert_true(cached(c, "Whale"));
    /* the catalog's push drops an entry */
    dst_sse_hub_publish(f.hub, "invalidate", "{\"name\":\"Whale\"}");
    struct named n = {c, "Whale"};
    assert_true(ht_wait(gone, &n, 20000));
    /* with the stream lost, nothing is served or kept */
    assert_null(fe_cache_get(c, "Uno", &len, &t2));
    fe_cache_put(c, "Uno", "u", 1, &t2);
    assert_true(cached(c, "Uno"));
    fake_stop(&f);
    assert_true(ht_wait(events_down, c, 30000));
    assert_false(cached(c, "Uno"));
    assert_null(fe_cache_get(c, "Uno", &len, &t2));
    fe_cache_put(c, "Uno", "u", 1, &t2);
    assert_false(cached(c, "Uno"));
    fe_cache_free(c);
}

static void off_never_caches(void **state)
{
    struct fe_cache *c = NULL;
    struct fe_cache_token t;
    size_t len = 0;

    (void)state;
    assert_int_equal(fe_cache_new("http://127.0.0.1:1", false, &c), 0);
    assert_null(fe_cache_get(c, "Tux", &len, &t));
    fe_cache_put(c, "Tux", "x", 1, &t);
    assert_false(cached(c, "Tux"));
    fe_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fills_drops_and_the_race),
        cmocka_unit_test(off_never_caches),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dst_http_client_global_cleanup();
    return rc;
}
