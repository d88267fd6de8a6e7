/* test_sse.c - unit tests of the server-sent events hub over a real HTTP server */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/sse.h"
#include "http_test.h"

struct fix {
    struct dst_http_server *s;
    struct dst_sse_hub *hub;
    char *url;
};

static void h_events(struct dst_http_req *req, void *ud)
{
    dst_sse_hub_attach(ud, req);
}

static struct fix *fix_new(int heartbeat_ms, size_t max_buffer)
{
    struct fix *f = dst_xnew(struct fix);

    assert_int_equal(dst_sse_hub_new(heartbeat_ms, max_buffer, &f->hub), 0);
    f->s = ht_server(NULL);
    assert_non_null(f->s);
    assert_int_equal(dst_http_server_route(f->s, "GET", "/events", h_events, f->hub, 0, 0), 0);
    assert_int_equal(dst_http_server_start(f->s), 0);
    f->url = ht_url(f->s, "/events");
    return f;
}

/* Free the hub, then the server (services close the hub first and free it last). */
static void fix_free(struct fix *f)
{
    dst_sse_hub_free(f->hub);
    dst_http_server_free(f->s);
    free(f->url);
    free(f);
}

struct nclients {
    struct dst_sse_hub *hub;
    size_t n;
};

static bool has_clients(void *arg)
{
    struct nclients *c = arg;
    return dst_sse_hub_clients(c->hub) == c->n;
}

static bool wait_clients(struct dst_sse_hub *hub, size_t n)
{
    struct nclients c = {hub, n};
    return ht_wait(has_clients, &c, 5000);
}

static void test_new_rejects_negative_heartbeat(void **state)
{
    struct dst_sse_hub *hub = NULL;

    (void)state;
    assert_int_equal(dst_sse_hub_new(-1, 0, &hub), DST_EINVAL);
    assert_null(hub);
    dst_sse_hub_free(NULL);
}

static void test_publish_without_clients(void **state)
{
    struct dst_sse_hub *hub = NULL;

    (void)state;
    assert_int_equal(dst_sse_hub_new(0, 0, &hub), 0);
    assert_int_equal(dst_sse_hub_clients(hub), 0);
    assert_int_equal(dst_sse_hub_publish(hub, "a", "1"), 1);
    assert_int_equal(dst_sse_hub_publish(hub, "a", "2"), 2);
    for (int i = 0; i < 3 * DST_SSE_REPLAY; i++) /* the ring wraps without leaking */
        dst_sse_hub_publish(hub, NULL, NULL);
    dst_sse_hub_free(hub);
}

static void test_attach_publish_receive(void **state)
{
    struct fix *f = fix_new(0, 0);
    struct ht_bg *b = ht_bg_start(f->url, NULL);
    char v[64];

    (void)state;
    assert_true(wait_clients(f->hub, 1));
    assert_true(ht_bg_wait_for(b, "retry: 2000\n\n", 5000));
    assert_int_equal(dst_sse_hub_publish(f->hub, "result", "{\"a\":1}\nline2\r\nline3"), 1);
    assert_true(ht_bg_wait_for(
        b, "id: 1\nevent: result\ndata: {\"a\":1}\ndata: line2\ndata: line3\n\n", 5000));
    assert_int_equal(dst_sse_hub_publish(f->hub, "bad\nname", ""), 2);
    assert_true(ht_bg_wait_for(b, "id: 2\nevent: bad\ndata: \n\n", 5000));
    pthread_mutex_lock(&b->mu);
    assert_int_equal(strncmp(b->r.body, "retry: 2000\n\n", 13), 0); /* retry comes first */
    assert_true(ht_header(&b->r, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, "text/event-stream");
    assert_true(ht_header(&b->r, "Cache-Control", v, sizeof(v)));
    assert_string_equal(v, "no-cache");
    assert_true(ht_header(&b->r, "X-Accel-Buffering", v, sizeof(v)));
    assert_string_equal(v, "no");
    pthread_mutex_unlock(&b->mu);
    /* freeing the hub ends the stream cleanly */
    dst_sse_hub_free(f->hub);
    assert_true(ht_wait(ht_bg_finished, b, 5000));
    assert_int_equal(b->r.rc, CURLE_OK);
    assert_int_equal(b->r.status, 200);
    f->hub = NULL;
    ht_bg_free(b);
    fix_free(f);
}

static void test_two_clients(void **state)
{
    struct fix *f = fix_new(0, 0);
    struct ht_bg *a = ht_bg_start(f->url, NULL);
    struct ht_bg *b = ht_bg_start(f->url, NULL);

    (void)state;
    assert_true(wait_clients(f->hub, 2));
    dst_sse_hub_publish(f->hub, "e", "both");
    assert_true(ht_bg_wait_for(a, "data: both\n\n", 5000));
    assert_true(ht_bg_wait_for(b, "data: both\n\n", 5000));
    fix_free(f);
    ht_bg_free(a);
    ht_bg_free(b);
}

static void test_last_event_id_replay(void **state)
{
    struct fix *f = fix_new(0, 0);

    (void)state;
    for (int i = 1; i <= 3; i++)
        dst_sse_hub_publish(f->hub, "e", i == 1 ? "one" : i == 2 ? "two" : "three");
    struct ht_bg *b = ht_bg_start(f->url, "Last-Event-ID: 1");
    assert_true(wait_clients(f->hub, 1));
    assert_true(ht_bg_wait_for(b, "id: 3\nevent: e\ndata: three\n\n", 5000));
    assert_true(ht_bg_has(b, "id: 2\nevent: e\ndata: two\n\n"));
    assert_false(ht_bg_has(b, "data: one"));
    dst_sse_hub_publish(f->hub, "e", "four");
    assert_true(ht_bg_wait_for(b, "id: 4\n", 5000));
    /* without the header: nothing from the past */
    struct ht_bg *c = ht_bg_start(f->url, NULL);
    assert_true(wait_clients(f->hub, 2));
    dst_sse_hub_publish(f->hub, "e", "five");
    assert_true(ht_bg_wait_for(c, "id: 5\n", 5000));
    assert_false(ht_bg_has(c, "id: 4\n"));
    fix_free(f);
    ht_bg_free(b);
    ht_bg_free(c);
}

static void test_replay_keeps_only_the_last_events(void **state)
{
    struct fix *f = fix_new(0, 0);
    char want[64];

    (void)state;
    for (int i = 1; i <= DST_SSE_REPLAY + 6; i++)
        dst_sse_hub_publish(f->hub, "n", "x");
    struct ht_bg *b = ht_bg_start(f->url, "Last-Event-ID: 0");
    snprintf(want, sizeof(want), "id: %d\n", DST_SSE_REPLAY + 6);
    assert_true(ht_bg_wait_for(b, want, 5000));
    assert_true(ht_bg_has(b, "retry: 2000\n\nid: 7\n")); /* 7..70: the oldest kept first */
    assert_false(ht_bg_has(b, "id: 6\n"));
    fix_free(f);
    ht_bg_free(b);
}

/* Clock ids: a Last-Event-ID from another replica's hub (an earlier wall-clock id) replays this
   hub's events after it, in order. */
static void test_clock_ids_across_hubs(void **state)
{
    struct fix *f = fix_new(0, 0);
    struct dst_sse_hub *other = NULL;
    char hdr[64], want[64];

    (void)state;
    assert_int_equal(dst_sse_hub_new(0, 0, &other), 0);
    dst_sse_hub_clock_ids(other);
    dst_sse_hub_clock_ids(f->hub);
    uint64_t seen = dst_sse_hub_publish(other, "e", "on the first replica");
    assert_true(seen > 1600000000000000ull); /* microseconds since 1970 */
    uint64_t a = dst_sse_hub_publish(f->hub, "e", "one");
    uint64_t b = dst_sse_hub_publish(f->hub, "e", "two");
    assert_true(a > seen && b > a);
    snprintf(hdr, sizeof(hdr), "Last-Event-ID: %llu", (unsigned long long)seen);
    struct ht_bg *c = ht_bg_start(f->url, hdr);
    snprintf(want, sizeof(want), "id: %llu\nevent: e\ndata: two\n\n", (unsigned long long)b);
    assert_true(ht_bg_wait_for(c, want, 5000));
    snprintf(want, sizeof(want), "id: %llu\nevent: e\ndata: one\n\n", (unsigned long long)a);
    assert_true(ht_bg_has(c, want));
    dst_sse_hub_free(other);
    fix_free(f);
    ht_bg_free(c);
}

static void test_heartbeat(void **state)
{
    struct fix *f = fix_new(30, 0);
    struct ht_bg *b = ht_bg_start(f->url, NULL);

    (void)state;
    assert_true(wait_clients(f->hub, 1));
    assert_true(ht_bg_wait_for(b, "\n\n: ping\n\n", 5000));
    fix_free(f);
    ht_bg_free(b);
}

static void test_dead_client_noticed(void **state)
{
    struct fix *f = fix_new(20, 0);
    const char *req = "GET /events HTTP/1.1\r\nHost: x\r\n\r\n";
    int fd = ht_connect(dst_http_server_port(f->s), 0);
    char buf[256];

    (void)state;
    assert_true(ht_send_all(fd, req, strlen(req)));
    assert_true(wait_clients(f->hub, 1));
    assert_true(recv(fd, buf, sizeof(buf), 0) > 0);
    close(fd);
    /* the heartbeat wakes the stream; the write fails; the client leaves the hub */
    assert_true(wait_clients(f->hub, 0));
    fix_free(f);
}

struct slow {
    struct dst_sse_hub *hub;
    struct ht_bg *fast;
    uint64_t id;
};

static bool fast_got(void *arg)
{
    struct slow *s = arg;
    char want[48];
    snprintf(want, sizeof(want), "id: %llu\n", (unsigned long long)s->id);
    return ht_bg_has(s->fast, want);
}

static void test_slow_client_dropped(void **state)
{
    struct fix *f = fix_new(0, 64 * 1024);
    const char *req = "GET /events HTTP/1.1\r\nHost: x\r\n\r\n";
    int fd = ht_connect(dst_http_server_port(f->s), 4096); /* it never reads */
    struct slow s = {.hub = f->hub};
    char *data = dst_xmalloc(8192);

    (void)state;
    memset(data, 'd', 8191);
    data[8191] = '\0';
    assert_true(ht_send_all(fd, req, strlen(req)));
    assert_true(wait_clients(f->hub, 1));
    s.fast = ht_bg_start(f->url, NULL);
    assert_true(wait_clients(f->hub, 2));
    /* paced by the fast client, until the slow one is 64 KiB behind (kernel buffers first) */
    for (int i = 0; i < 20000 && dst_sse_hub_clients(f->hub) == 2; i++) {
        int64_t t0 = dst_monotonic_ms();
        s.id = dst_sse_hub_publish(f->hub, "big", data);
        /* publish never blocks: a wait for the slow client, which never reads, would not end */
        assert_true(dst_monotonic_ms() - t0 < ST_WAIT_MS);
        assert_true(ht_wait(fast_got, &s, ST_WAIT_MS));
    }
    assert_int_equal(dst_sse_hub_clients(f->hub), 1); /* only the slow one went */
    assert_false(ht_bg_finished(s.fast));
    close(fd);
    fix_free(f);
    assert_int_equal(s.fast->r.rc, CURLE_OK);
    ht_bg_free(s.fast);
    free(data);
}

static void test_server_stop_ends_clients(void **state)
{
    struct fix *f = fix_new(0, 0);
    struct ht_bg *b = ht_bg_start(f->url, NULL);

    (void)state;
    assert_true(wait_clients(f->hub, 1));
    dst_http_server_stop(f->s, 5000); /* the other order works too */
    assert_true(ht_wait(ht_bg_finished, b, 5000));
    assert_int_equal(dst_sse_hub_clients(f->hub), 0);
    dst_sse_hub_publish(f->hub, "after", "stop"); /* nobody to wake: no crash */
    fix_free(f);
    ht_bg_free(b);
}

/*
 * The services' order: close the hub, stop the server (its drain's handlers may still
 * publish), then free the hub. A closed hub ends its streams, refuses new ones with 503, and
 * takes publishes without a client.
 */
static void test_close_then_stop_then_free(void **state)
{
    struct fix *f = fix_new(0, 0);
    struct ht_bg *b = ht_bg_start(f->url, NULL);
    struct ht_resp r = {0};

    (void)state;
    assert_true(wait_clients(f->hub, 1));
    dst_sse_hub_close(f->hub);
    assert_true(ht_wait(ht_bg_finished, b, 5000));
    assert_int_equal(b->r.rc, CURLE_OK);
    assert_int_equal(ht_get("GET", f->url, NULL, 0, NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 503);
    ht_resp_release(&r);
    assert_int_equal(dst_sse_hub_publish(f->hub, "after", "close"), 1);
    dst_sse_hub_close(f->hub); /* again: nothing */
    dst_http_server_stop(f->s, 5000);
    assert_int_equal(dst_sse_hub_publish(f->hub, "after", "stop"), 2);
    fix_free(f);
    ht_bg_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_rejects_negative_heartbeat),
        cmocka_unit_test(test_publish_without_clients),
        cmocka_unit_test(test_attach_publish_receive),
        cmocka_unit_test(test_two_clients),
        cmocka_unit_test(test_last_event_id_replay),
        cmocka_unit_test(test_replay_keeps_only_the_last_events),
        cmocka_unit_test(test_clock_ids_across_hubs),
        cmocka_unit_test(test_heartbeat),
        cmocka_unit_test(test_dead_client_noticed),
        cmocka_unit_test(test_slow_client_dropped),
        cmocka_unit_test(test_server_stop_ends_clients),
        cmocka_unit_test(test_close_then_stop_then_free),
    };

    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
