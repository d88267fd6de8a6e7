/* test_http_route.c - unit tests of the HTTP router (src/core/http_route.c), no server */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/http_route.h"
#include "core/mem.h"

static void h_none(struct dst_http_req *req, void *ud)
{
    (void)req;
    (void)ud;
}

/* Adds method pattern with ud = label; asserts it is accepted. */
static void add(struct dst_http_router *rt, const char *method, const char *pattern,
                const char *label)
{
    struct dst_http_route to = {.fn = h_none, .ud = (void *)label};

    assert_int_equal(dst_http_router_add(rt, method, pattern, &to), 0);
}

/* The label of the route method path finds, or "404" / "405"; the match goes to *m. */
static const char *find(const struct dst_http_router *rt, const char *method, const char *path,
                        struct dst_http_route_match *m)
{
    struct dst_http_route_match scratch;
    int status = -1;
    const struct dst_http_route *r =
        dst_http_router_find(rt, method, path, m ? m : &scratch, &status);

    if (r) {
        assert_int_equal(status, 0);
        return r->ud;
    }
    assert_true(status == 404 || status == 405);
    return status == 404 ? "404" : "405";
}

/* Parameter i of m as a NUL-terminated name and value (static buffers). */
static void param(const struct dst_http_route_match *m, int i, const char **name,
                  const char **value)
{
    static char nb[64];
    static char vb[256];

    assert_true(i < m->n);
    assert_true(m->p[i].name_len < sizeof(nb) && m->p[i].val_len < sizeof(vb));
    memcpy(nb, m->p[i].name, m->p[i].name_len);
    nb[m->p[i].name_len] = '\0';
    memcpy(vb, m->p[i].val, m->p[i].val_len);
    vb[m->p[i].val_len] = '\0';
    *name = nb;
    *value = vb;
}

static void assert_param(const struct dst_http_route_match *m, int i, const char *name,
                         const char *value)
{
    const char *n = NULL;
    const char *v = NULL;

    param(m, i, &n, &v);
    assert_string_equal(n, name);
    assert_string_equal(v, value);
}

/* dst_http_route_normalize into a buffer of exactly strlen(url) + 1 bytes (ASan sees overruns). */
static char *norm(const char *url)
{
    char *out = dst_xmalloc(strlen(url) + 1);

    dst_http_route_normalize(url, out);
    return out;
}

static void assert_norm(const char *url, const char *want)
{
    char *got = norm(url);

    assert_string_equal(got, want);
    free(got);
}

/* "/" + n segments "s0/s1/..." of the form s<i>, or "{p<i>}" when braces. */
static char *segments(int n, bool braces)
{
    struct dst_buf b;

    dst_buf_init(&b, 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(dst_buf_printf(&b, braces ? "/{p%d}" : "/s%d", i), 0);
    return dst_buf_detach(&b, NULL);
}

/* ---- patterns ---- */

static void test_add_rejects_bad_patterns(void **state)
{
    const char *bad[] = {"",      "x",      "a/b",     "/a/*/b", "/{}",   "/a{b}",
                         "/a//b", "/*x",    "/{a}{b}", "/a*",    "/a}",   "/{a",
                         "//",    "/{a/b}", "/**",     "/{{a}}", "/{a}}", "/x/{}/y"};
    struct dst_http_route to = {.fn = h_none};
    struct dst_http_router rt;

    (void)state;
    dst_http_router_init(&rt);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (dst_http_router_add(&rt, "GET", bad[i], &to) != DST_EINVAL)
            fail_msg("pattern '%s' was accepted", bad[i]);
    }
    assert_int_equal(dst_http_router_add(&rt, "GET", NULL, &to), DST_EINVAL);
    assert_int_equal(rt.nroutes, 0); /* a failed add leaves the table alone */
    assert_null(rt.routes);
    dst_http_router_release(&rt);
}

static void test_add_accepts_good_patterns(void **state)
{
    const char *good[] = {"/", "/a/", "/ok/{a}/*", "/*", "/{id}", "/a.b-c_d~e", "/{a}/{b}/x"};
    struct dst_http_router rt;

    (void)state;
    dst_http_router_init(&rt);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        add(&rt, "GET", good[i], good[i]);
    assert_int_equal(rt.nroutes, sizeof(good) / sizeof(good[0]));
    assert_string_equal(rt.routes[2].pattern, "/ok/{a}/*");
    assert_int_equal(rt.routes[2].nsegs, 3);
    assert_int_equal(rt.routes[2].segs[0].kind, DST_HTTP_SEG_LIT);
    assert_int_equal(rt.routes[2].segs[1].kind, DST_HTTP_SEG_PARAM);
    assert_int_equal(rt.routes[2].segs[2].kind, DST_HTTP_SEG_WILD);
    dst_http_router_release(&rt);
    assert_int_equal(rt.nroutes, 0);
    dst_http_router_release(&rt); /* twice is fine */
    dst_http_router_release(NULL);
}

static void test_add_rejects_bad_methods(void **state)
{
    struct dst_http_route to = {.fn = h_none};
    struct dst_http_router rt;
    char longest[DST_HTTP_ROUTE_MAX_METHOD + 2];

    (void)state;
    dst_http_router_init(&rt);
    assert_int_equal(dst_http_router_add(&rt, NULL, "/", &to), DST_EINVAL);
    assert_int_equal(dst_http_router_add(&rt, "", "/", &to), DST_EINVAL);
    memset(longest, 'M', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0'; /* one byte too long */
    assert_int_equal(dst_http_router_add(&rt, longest, "/", &to), DST_EINVAL);
    longest[sizeof(longest) - 2] = '\0';
    assert_int_equal(dst_http_router_add(&rt, longest, "/", &to), 0);
    assert_string_equal(rt.routes[0].method, longest);
    dst_http_router_release(&rt);
}

static void test_add_limits(void **state)
{
    struct dst_http_route to = {.fn = h_none};
    struct dst_http_router rt;
    char *p = NULL;

    (void)state;
    dst_http_router_init(&rt);
    p = segments(DST_HTTP_ROUTE_MAX_SEGS, false);
    assert_int_equal(dst_http_router_add(&rt, "GET", p, &to), 0);
    free(p);
    p = segments(DST_HTTP_ROUTE_MAX_SEGS + 1, false);
    assert_int_equal(dst_http_router_add(&rt, "GET", p, &to), DST_EINVAL);
    free(p);
    p = segments(DST_HTTP_ROUTE_MAX_PARAMS, true);
    assert_int_equal(dst_http_router_add(&rt, "GET", p, &to), 0);
    free(p);
    p = segments(DST_HTTP_ROUTE_MAX_PARAMS + 1, true);
    assert_int_equal(dst_http_router_add(&rt, "GET", p, &to), DST_EINVAL);
    free(p);
    /* a pattern just under the byte limit is fine, one at it is not */
    p = dst_xmalloc(DST_HTTP_ROUTE_MAX_PATTERN + 1);
    p[0] = '/';
    memset(p + 1, 'a', DST_HTTP_ROUTE_MAX_PATTERN - 2);
    p[DST_HTTP_ROUTE_MAX_PATTERN - 1] = '\0';
    assert_int_equal(dst_http_router_add(&rt, "GET", p, &to), 0);
    p[DST_HTTP_ROUTE_MAX_PATTERN - 1] = 'a';
    p[DST_HTTP_ROUTE_MAX_PATTERN] = '\0';
    assert_int_equal(dst_http_router_add(&rt, "GET", p, &to), DST_EINVAL);
    free(p);
    assert_int_equal(rt.nroutes, 3);
    dst_http_router_release(&rt);
}

static void test_add_copies(void **state)
{
    struct dst_http_route to = {.fn = h_none, .ud = &to, .flags = 5, .max_body = 77};
    struct dst_http_router rt;
    char method[] = "POST";
    char pattern[] = "/up/{id}";
    struct dst_http_route_match m;
    int status = -1;

    (void)state;
    dst_http_router_init(&rt);
    assert_int_equal(dst_http_router_add(&rt, method, pattern, &to), 0);
    memset(method, 'x', 4); /* the router keeps its own copies */
    memset(pattern, 'x', sizeof(pattern) - 1);
    const struct dst_http_route *r = dst_http_router_find(&rt, "POST", "/up/9", &m, &status);
    assert_non_null(r);
    assert_true(r->fn == h_none);
    assert_ptr_equal(r->ud, &to);
    assert_int_equal(r->flags, 5);
    assert_int_equal(r->max_body, 77);
    assert_param(&m, 0, "id", "9");
    dst_http_router_release(&rt);
}

/* ---- matching ---- */

static void test_params(void **state)
{
    struct dst_http_router rt;
    struct dst_http_route_match m;

    (void)state;
    dst_http_router_init(&rt);
    add(&rt, "GET", "/api/items/{id}/parts/{part}", "parts");
    add(&rt, "GET", "/plain", "plain");
    assert_string_equal(find(&rt, "GET", "/api/items/42/parts/wheel", &m), "parts");
    assert_int_equal(m.n, 2);
    assert_param(&m, 0, "id", "42");
    assert_param(&m, 1, "part", "wheel");
    assert_string_equal(find(&rt, "GET", "/plain", &m), "plain");
    assert_int_equal(m.n, 0);
    /* a {param} takes one non-empty segment */
    assert_string_equal(find(&rt, "GET", "/api/items//parts/x", NULL), "404");
    assert_string_equal(find(&rt, "GET", "/api/items/a/b/parts/x", NULL), "404");
    assert_string_equal(find(&rt, "GET", "/api/items/1/parts/", NULL), "404");
    dst_http_router_release(&rt);
}

static void test_wildcard_rest(void **state)
{
    struct dst_http_router rt;
    struct dst_http_route_match m;

    (void)state;
    dst_http_router_init(&rt);
    add(&rt, "GET", "/files/{vol}/*", "files");
    add(&rt, "GET", "/*", "all");
    assert_string_equal(find(&rt, "GET", "/files/v1/a/b/c.txt", &m), "files");
    assert_int_equal(m.n, 2);
    assert_param(&m, 0, "vol", "v1");
    assert_param(&m, 1, "*", "a/b/c.txt");
    assert_string_equal(find(&rt, "GET", "/files/v1/", &m), "files");
    assert_param(&m, 1, "*", "");
    /* "/files/v1" has no '/' for the wildcard: it falls through to the catch-all */
    assert_string_equal(find(&rt, "GET", "/files/v1", &m), "all");
    assert_param(&m, 0, "*", "files/v1");
    assert_string_equal(find(&rt, "GET", "/", &m), "all");
    assert_int_equal(m.n, 1);
    assert_param(&m, 0, "*", "");
    assert_string_equal(find(&rt, "GET", "", NULL), "404"); /* not even a '/' */
    dst_http_router_release(&rt);
}

static void test_case_insensitive_literals(void **state)
{
    struct dst_http_router rt;
    struct dst_http_route_match m;

    (void)state;
    dst_http_router_init(&rt);
    add(&rt, "GET", "/api/Items/{id}", "items");
    add(&rt, "GET", "/x@[", "punct");
    add(&rt, "GET", "/caf\xc3\xa9", "utf8");
    assert_string_equal(find(&rt, "GET", "/API/items/AbC", &m), "items");
    assert_param(&m, 0, "id", "AbC"); /* values keep their case */
    assert_string_equal(find(&rt, "GET", "/X@[", NULL), "punct");
    /* only A-Z fold: '`' is not '@' and '{' is not '[' */
    assert_string_equal(find(&rt, "GET", "/x`[", NULL), "404");
    assert_string_equal(find(&rt, "GET", "/x@{", NULL), "404");
    assert_string_equal(find(&rt, "GET", "/CAF\xc3\xa9", NULL), "utf8");
    assert_string_equal(find(&rt, "GET", "/caf\xc3\x89", NULL), "404"); /* no Unicode folding */
    /* methods are compared exactly */
    assert_string_equal(find(&rt, "get", "/api/items/1", NULL), "405");
    dst_http_router_release(&rt);
}

static void test_first_match_wins(void **state)
{
    struct dst_http_router rt;
    struct dst_http_route_match m;

    (void)state;
    dst_http_router_init(&rt);
    add(&rt, "GET", "/x/special", "special");
    add(&rt, "GET", "/x/{id}", "x-id");
    add(&rt, "GET", "/x/{other}", "x-other");
    add(&rt, "GET", "/", "root");
    assert_string_equal(find(&rt, "GET", "/x/special", NULL), "special");
    assert_string_equal(find(&rt, "GET", "/x/Special", NULL), "special");
    assert_string_equal(find(&rt, "GET", "/x/other", &m), "x-id");
    assert_param(&m, 0, "id", "other");
    assert_string_equal(find(&rt, "GET", "/", NULL), "root");
    dst_http_router_release(&rt);
    /* the other way round the parameter shadows the literal */
    dst_http_router_init(&rt);
    add(&rt, "GET", "/x/{id}", "x-id");
    add(&rt, "GET", "/x/special", "special");
    assert_string_equal(find(&rt, "GET", "/x/special", &m), "x-id");
    assert_param(&m, 0, "id", "special");
    dst_http_router_release(&rt);
}

/* A "*" route answers every method; an earlier route for one method still wins for it. */
static void test_any_method(void **state)
{
    const char *methods[] = {"GET", "POST", "DELETE", "HEAD", "PATCH"};
    struct dst_http_router rt;
    struct dst_http_route_match m;

    (void)state;
    dst_http_router_init(&rt);
    add(&rt, "PUT", "/x/special", "put-special");
    add(&rt, "*", "/x/*", "any");
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        assert_string_equal(find(&rt, methods[i], "/x/special", NULL), "any");
    assert_string_equal(find(&rt, "PUT", "/x/special", NULL), "put-special");
    assert_string_equal(find(&rt, "PUT", "/x/other", &m), "any");
    assert_param(&m, 0, "*", "other");
    assert_string_equal(find(&rt, "GET", "/y", NULL), "404");
    dst_http_router_release(&rt);
}

static void test_method_then_path(void **state)
{
    struct dst_http_router rt;
    struct dst_http_route_match m;

    (void)state;
    dst_http_router_init(&rt);
    add(&rt, "GET", "/x/{id}", "x-get");
    add(&rt, "PUT", "/x/{key}", "x-put");
    add(&rt, "POST", "/only-post", "post");
    assert_string_equal(find(&rt, "PUT", "/x/7", &m), "x-put");
    assert_int_equal(m.n, 1);
    assert_param(&m, 0, "key", "7"); /* the params of the route that took it */
    assert_string_equal(find(&rt, "HEAD", "/x/7", NULL), "x-get"); /* GET answers HEAD */
    assert_string_equal(find(&rt, "HEAD", "/only-post", NULL), "405");
    assert_string_equal(find(&rt, "DELETE", "/x/7", NULL), "405");
    assert_string_equal(find(&rt, "GET", "/only-post", NULL), "405");
    dst_http_router_release(&rt);
}

static void test_404(void **state)
{
    struct dst_http_router rt;

    (void)state;
    dst_http_router_init(&rt);
    assert_string_equal(find(&rt, "GET", "/", NULL), "404"); /* no routes at all */
    add(&rt, "GET", "/x/special", "special");
    add(&rt, "GET", "/x/{id}", "x-id");
    add(&rt, "GET", "/dir/", "dir");
    assert_string_equal(find(&rt, "GET", "/nope/at/all", NULL), "404");
    assert_string_equal(find(&rt, "DELETE", "/nope", NULL), "404"); /* 404 beats 405 */
    /* a {param} never matches an empty segment; a trailing slash is a different path */
    assert_string_equal(find(&rt, "GET", "/x/", NULL), "404");
    assert_string_equal(find(&rt, "GET", "/x/special/", NULL), "404");
    assert_string_equal(find(&rt, "GET", "/x", NULL), "404");
    assert_string_equal(find(&rt, "GET", "/dir/", NULL), "dir");
    assert_string_equal(find(&rt, "GET", "/dir", NULL), "404");
    assert_string_equal(find(&rt, "GET", "/x/special/more", NULL), "404");
    dst_http_router_release(&rt);
}

static void test_allow(void **state)
{
    struct dst_http_router rt;
    char allow[128];

    (void)state;
    dst_http_router_init(&rt);
    add(&rt, "GET", "/x/{id}", "x-get");
    add(&rt, "PUT", "/x/{id}", "x-put");
    add(&rt, "GET", "/x/*", "x-rest"); /* GET again: listed once */
    add(&rt, "DELETE", "/y", "y-del");
    add(&rt, "POST", "/x/special", "x-post");
    dst_http_router_allow(&rt, "/x/7", false, allow, sizeof(allow));
    assert_string_equal(allow, "GET, HEAD, PUT");
    dst_http_router_allow(&rt, "/x/7", true, allow, sizeof(allow));
    assert_string_equal(allow, "GET, HEAD, PUT, OPTIONS");
    dst_http_router_allow(&rt, "/x/special", false, allow, sizeof(allow));
    assert_string_equal(allow, "GET, HEAD, PUT, POST");
    dst_http_router_allow(&rt, "/y", false, allow, sizeof(allow));
    assert_string_equal(allow, "DELETE");
    dst_http_router_allow(&rt, "/nope", false, allow, sizeof(allow));
    assert_string_equal(allow, "");
    dst_http_router_allow(&rt, "/nope", true, allow, sizeof(allow));
    assert_string_equal(allow, "OPTIONS");
    add(&rt, "OPTIONS", "/y", "y-options"); /* an OPTIONS route: still listed once */
    dst_http_router_allow(&rt, "/y", true, allow, sizeof(allow));
    assert_string_equal(allow, "DELETE, OPTIONS");
    dst_http_router_release(&rt);
}

static void test_allow_bounded(void **state)
{
    struct dst_http_router rt;
    char allow[32];

    (void)state;
    dst_http_router_init(&rt);
    add(&rt, "GET", "/x", "get");
    add(&rt, "PUT", "/x", "put");
    add(&rt, "DELETE", "/x", "delete");
    memset(allow, '#', sizeof(allow));
    dst_http_router_allow(&rt, "/x", false, allow, 10);
    assert_string_equal(allow, "GET"); /* "HEAD, " and the rest do not fit */
    assert_int_equal(allow[10], '#');  /* nothing written past outlen */
    dst_http_router_allow(&rt, "/x", false, allow, 12);
    assert_string_equal(allow, "GET, HEAD");
    dst_http_router_allow(&rt, "/x", true, allow, 12);
    assert_string_equal(allow, "GET, HEAD");
    dst_http_router_allow(&rt, "/x", false, allow, 1);
    assert_string_equal(allow, "");
    dst_http_router_release(&rt);
}

/* ---- the request target ---- */

static void test_normalize(void **state)
{
    (void)state;
    assert_norm("/a/b", "/a/b");
    assert_norm("//a///b", "/a/b");
    assert_norm("//", "/");
    assert_norm("/a/", "/a/"); /* a trailing slash stays */
    assert_norm("/a//", "/a/");
    assert_norm("", "");
    assert_norm("http://example.com:8080/api/x", "/api/x");
    assert_norm("HTTPS://example.com//api//x/", "/api/x/");
    assert_norm("hTTp://example.com", "/");
    assert_norm("https://example.com", "/");
    assert_norm("http://", "/");
    /* not the absolute form: only duplicate slashes go */
    assert_norm("ftp://example.com/x", "ftp:/example.com/x");
    assert_norm("http:/x", "http:/x");
    assert_norm("/http://example.com/x", "/http:/example.com/x");
    /* the query is cut off before (libmicrohttpd does): a '?' left is a decoded %3F */
    assert_norm("/a?b//c", "/a?b/c");
}

static void test_query_string(void **state)
{
    (void)state;
    assert_string_equal(dst_http_route_query_string("/q?a=1&b=2"), "a=1&b=2");
    assert_string_equal(dst_http_route_query_string("/q?a=1?b"), "a=1?b");
    assert_string_equal(dst_http_route_query_string("/q?"), "");
    assert_string_equal(dst_http_route_query_string("/q"), "");
    assert_string_equal(dst_http_route_query_string("http://h/q?x"), "x");
    assert_string_equal(dst_http_route_query_string(NULL), "");
}

static void test_query_find(void **state)
{
    const struct dst_http_qarg args[] = {
        {"Name", "first"}, {"name", "second"}, {"flag", ""}, {"na", "short"}, {"x@", "at"}};
    int n = (int)(sizeof(args) / sizeof(args[0]));

    (void)state;
    assert_string_equal(dst_http_route_query_find(args, n, "name"), "first");
    assert_string_equal(dst_http_route_query_find(args, n, "NAME"), "first");
    assert_string_equal(dst_http_route_query_find(args, n, "flag"), "");
    assert_string_equal(dst_http_route_query_find(args, n, "NA"), "short");
    assert_null(dst_http_route_query_find(args, n, "nam"));   /* no prefixes */
    assert_null(dst_http_route_query_find(args, n, "names")); /* nor longer names */
    assert_null(dst_http_route_query_find(args, n, "x`"));
    assert_null(dst_http_route_query_find(args, n, "missing"));
    assert_null(dst_http_route_query_find(args, 0, "name"));
}

/* ---- big inputs: bounded, no overflow ---- */

static void test_long_paths(void **state)
{
    size_t n = 256 * 1024;
    char *path = dst_xmalloc(n + 1);
    char *out = NULL;
    struct dst_http_router rt;
    struct dst_http_route_match m;

    (void)state;
    dst_http_router_init(&rt);
    add(&rt, "GET", "/{id}", "id");
    add(&rt, "GET", "/f/*", "rest");
    /* one huge segment: the value keeps its full length */
    path[0] = '/';
    memset(path + 1, 'v', n - 1);
    path[n] = '\0';
    assert_string_equal(find(&rt, "GET", path, &m), "id");
    assert_int_equal(m.p[0].val_len, n - 1);
    assert_ptr_equal(m.p[0].val, path + 1);
    /* a huge rest */
    memcpy(path, "/f/", 3);
    assert_string_equal(find(&rt, "GET", path, &m), "rest");
    assert_int_equal(m.p[0].val_len, n - 3);
    /* nothing but slashes collapses to one, in a buffer just big enough */
    memset(path, '/', n);
    out = norm(path);
    assert_string_equal(out, "/");
    free(out);
    dst_http_router_release(&rt);
    free(path);
}

static void test_many_segments(void **state)
{
    char *path = segments(20000, false);
    char *route = segments(DST_HTTP_ROUTE_MAX_SEGS, false);
    char *params = segments(DST_HTTP_ROUTE_MAX_PARAMS, true);
    char *out = NULL;
    struct dst_http_router rt;
    struct dst_http_route_match m;

    (void)state;
    dst_http_router_init(&rt);
    add(&rt, "GET", route, "max-segs");
    add(&rt, "GET", params, "max-params");
    add(&rt, "GET", "/s0/*", "rest");
    assert_string_equal(find(&rt, "GET", route, &m), "max-segs");
    assert_int_equal(m.n, 0);
    assert_string_equal(find(&rt, "GET", path, &m), "rest"); /* too long for the others */
    assert_int_equal(m.n, 1);
    assert_int_equal(m.p[0].val_len, strlen(path) - 4);
    path[strlen(route)] = '\0'; /* cut to the route's 16 segments */
    assert_string_equal(find(&rt, "GET", path, NULL), "max-segs");
    assert_string_equal(find(&rt, "POST", path, NULL), "405");
    free(path);
    path = segments(DST_HTTP_ROUTE_MAX_PARAMS, false);
    path[1] = 'x'; /* not "/s0": only the all-params route takes it */
    assert_string_equal(find(&rt, "GET", path, &m), "max-params");
    assert_int_equal(m.n, DST_HTTP_ROUTE_MAX_PARAMS);
    assert_param(&m, DST_HTTP_ROUTE_MAX_PARAMS - 1, "p7", "s7");
    out = norm(path);
    assert_string_equal(out, path);
    free(out);
    dst_http_router_release(&rt);
    free(params);
    free(route);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_rejects_bad_patterns),
        cmocka_unit_test(test_add_accepts_good_patterns),
        cmocka_unit_test(test_add_rejects_bad_methods),
        cmocka_unit_test(test_add_limits),
        cmocka_unit_test(test_add_copies),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_wildcard_rest),
        cmocka_unit_test(test_case_insensitive_literals),
        cmocka_unit_test(test_first_match_wins),
        cmocka_unit_test(test_method_then_path),
        cmocka_unit_test(test_any_method),
        cmocka_unit_test(test_404),
        cmocka_unit_test(test_allow),
        cmocka_unit_test(test_allow_bounded),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_query_string),
        cmocka_unit_test(test_query_find),
        cmocka_unit_test(test_long_paths),
        cmocka_unit_test(test_many_segments),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
