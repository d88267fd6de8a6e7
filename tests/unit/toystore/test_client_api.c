/* test_client_api.c - unit tests of the client's calls (src/toystore/client_api.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "core/http_client.h"
#include "core/http_server.h"
#include "core/mem.h"
#include "toystore/client_api.h"

/* What the server answers next, and what it saw last. */
static struct {
    pthread_mutex_t mu;
    int status;
    const char *body;
    char uri[512], method[16], seen_body[512];
} canned = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void answer(struct dst_http_req *req, void *ud)
{
    size_t len = 0;
    const char *body = dst_http_req_body(req, &len);

    (void)ud;
    pthread_mutex_lock(&canned.mu);
    snprintf(canned.uri, sizeof(canned.uri), "%s", dst_http_req_uri(req));
    snprintf(canned.method, sizeof(canned.method), "%s", dst_http_req_method(req));
    snprintf(canned.seen_body, sizeof(canned.seen_body), "%s", body);
    int status = canned.status;
    const char *text = canned.body;
    pthread_mutex_unlock(&canned.mu);
    dst_http_reply_static(req, status, "application/json", text, strlen(text));
}

struct fixture {
    struct dst_http_server *srv;
    struct dst_http_client *c;
    const char *base;
};

static int setup(void **state)
{
    struct fixture *f = dst_xnew(struct fixture);
    struct dst_http_server_opts o = {.listen = "127.0.0.1:0", .name = "test", .quiet = true};

    assert_int_equal(dst_http_server_new(&o, &f->srv), 0);
    assert_int_equal(dst_http_server_route(f->srv, "*", "/*", answer, NULL, 0, 0), 0);
    assert_int_equal(dst_http_server_start(f->srv), 0);
    assert_int_equal(dst_http_client_new(&f->c), 0);
    f->base = dst_http_server_url(f->srv);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    dst_http_client_free(f->c);
    dst_http_server_free(f->srv);
    free(f);
    return 0;
}

static void next(int status, const char *body)
{
    pthread_mutex_lock(&canned.mu);
    canned.status = status;
    canned.body = body;
    pthread_mutex_unlock(&canned.mu);
}

static void query_ok_and_name_escaped(void **state)
{
    struct fixture *f = *state;
    struct toyclient_answer a;

    next(200, "{\"data\":{\"name\":\"Lego Set\",\"price\":25.99,\"quantity\":80}}");
    toyclient_query(f->c, f->base, "Lego Set/1", 5000, &a);
    assert_int_equal(a.outcome, TOYCLIENT_OK);
    assert_int_equal(a.quantity, 80);
    assert_true(a.ms >= 0);
    assert_string_equal(canned.method, "GET");
    assert_string_equal(canned.uri, "/products/Lego%20Set%2F1");
}

/* Error answers sort by message first ("out of stock", any code), then by status. */
static void query_and_buy_errors(void **state)
{
    struct fixture *f = *state;
    struct toyclient_answer a;

    next(404, "{\"error\":{\"code\":404,\"message\":\"product not found\"}}");
    toyclient_query(f->c, f->base, "Nope", 5000, &a);
    assert_int_equal(a.outcome, TOYCLIENT_NOT_FOUND);
    assert_non_null(strstr(a.msg, "GET /products/Nope: 404 product not found"));
    next(409, "{\"error\":{\"code\":409,\"message\":\"Out of stock\"}}");
    toyclient_buy(f->c, f->base, "Tux", 3, 5000, &a);
    assert_int_equal(a.outcome, TOYCLIENT_OUT_OF_STOCK);
    next(404, "{\"error\":{\"code\":404,\"message\":\"product out of stock\"}}");
    toyclient_buy(f->c, f->base, "Tux", 3, 5000, &a);
    assert_int_equal(a.outcome, TOYCLIENT_OUT_OF_STOCK);
    next(400, "{\"error\":{\"code\":400,\"message\":\"quantity must be positive\"}}");
    toyclient_buy(f->c, f->base, "Tux", 3, 5000, &a);
    assert_int_equal(a.outcome, TOYCLIENT_REJECTED);
    assert_non_null(strstr(a.msg, "400 quantity must be positive"));
    next(502, "<html>bad gateway</html>");
    toyclient_query(f->c, f->base, "Tux", 5000, &a);
    assert_int_equal(a.outcome, TOYCLIENT_REJECTED);
    assert_non_null(strstr(a.msg, "502 (not the API's error JSON)"));
}

/* A 200 that is not the documented shape is a bad reply, naming what is wrong. */
static void bad_replies(void **state)
{
    struct fixture *f = *state;
    struct toyclient_answer a;
    static const char *const bodies[] = {
        "not json",
        "{\"name\":\"Tux\",\"quantity\":80}",                /* no data wrapper (a student's) */
        "{\"data\":{\"name\":\"Tux\",\"quantity\":\"80\"}}", /* a string */
        "{\"data\":{\"name\":\"Tux\",\"quantity\":8.5}}",    /* not whole */
        "{\"data\":[]}",
    };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        next(200, bodies[i]);
        toyclient_query(f->c, f->base, "Tux", 5000, &a);
        assert_int_equal(a.outcome, TOYCLIENT_BAD_REPLY);
        assert_non_null(strstr(a.msg, "GET /products/Tux: "));
    }
    next(200, "{\"data\":{\"order_num\":2}}"); /* a student's name for it */
    toyclient_buy(f->c, f->base, "Tux", 1, 5000, &a);
    assert_int_equal(a.outcome, TOYCLIENT_BAD_REPLY);
    next(200, "{\"data\":{\"order_number\":-1}}");
    toyclient_buy(f->c, f->base, "Tux", 1, 5000, &a);
    assert_int_equal(a.outcome, TOYCLIENT_BAD_REPLY);
    next(200, "{\"data\":{\"number\":3,\"quantity\":1}}"); /* no name */
    toyclient_order(f->c, f->base, 3, 5000, &a);
    assert_int_equal(a.outcome, TOYCLIENT_BAD_REPLY);
}

static void buy_and_order_ok(void **state)
{
    struct fixture *f = *state;
    struct toyclient_answer a;

    next(200, "{\"data\":{\"order_number\":10}}");
    toyclient_buy(f->c, f->base, "Tux", 2, 5000, &a);
    assert_int_equal(a.outcome, TOYCLIENT_OK);
    assert_int_equal(a.number, 10);
    assert_string_equal(canned.method, "POST");
    assert_string_equal(canned.uri, "/orders");
    assert_string_equal(canned.seen_body, "{\"name\":\"Tux\",\"quantity\":2}");
    next(200, "{\"data\":{\"number\":10,\"name\":\"Tux\",\"quantity\":2}}");
    toyclient_order(f->c, f->base, 10, 5000, &a);
    assert_int_equal(a.outcome, TOYCLIENT_OK);
    assert_int_equal(a.number, 10);
    assert_int_equal(a.quantity, 2);
    assert_string_equal(a.name, "Tux");
    assert_string_equal(canned.uri, "/orders/10");
}

/* Nothing listening: no answer, no latency, curl's reason. */
static void no_answer(void **state)
{
    struct fixture *f = *state;
    struct toyclient_answer a;

    toyclient_query(f->c, "http://127.0.0.1:1", "Tux", 5000, &a);
    assert_int_equal(a.outcome, TOYCLIENT_TRANSPORT);
    assert_true(a.ms < 0);
    assert_non_null(strstr(a.msg, "GET /products/Tux: "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(query_ok_and_name_escaped),
        cmocka_unit_test(query_and_buy_errors),
        cmocka_unit_test(bad_replies),
        cmocka_unit_test(buy_and_order_ok),
        cmocka_unit_test(no_answer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
