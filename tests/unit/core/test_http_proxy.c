/* test_http_proxy.c - unit tests of the proxy (src/core/http_proxy*.c) between real servers */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdatomic.h>

#include "core/http_proxy.h"
#include "http_test.h"

#define BIG_LEN   (4u << 20)
#define MAX_SLOW  16
#define NONE_MSG  "nobody is home"
#define CALL_MS   (2L * ST_WAIT_MS) /* a call's own limit: only reached when something is wrong */
#define HEADER_MS 3000              /* the header timeout where a test waits it out */
#define HANG_MS   60000             /* a hanging upstream: answers at the end of the test */
#define STR_(x)   #x
#define STR(x)    STR_(x)
#define ID_HEADER "X-Upstream"

/*
 * One deferred /slow request, resumed by its thread after ms (at once when the test ends) unless
 * the request is gone (its server stopped). Fields under F.mu.
 */
struct slow {
    struct dst_http_req *req;
    int ms;
    bool ready, gone;
    pthread_t thread;
};

/* The fixture: two upstreams (ids 0 and 1), a front that forwards everything, the proxy. */
static struct {
    struct dst_http_server *up[2], *front;
    struct dst_http_proxy *proxy;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char base[2][64]; /* what pick hands out for each id (a test may point 0 elsewhere) */
    atomic_bool up_flag[2];
    atomic_int slow_seen[2]; /* /slow requests each upstream got */
    atomic_int oks, fails;   /* report() */
    char reason[256];        /* the last failure report()ed (under mu) */
    struct slow slow[MAX_SLOW];
    int nslow;
    bool quit;
    bool blocked, unblock; /* the front's /block handler holds its only thread */
    bool first_seen;       /* a client has "data: one" of /sse: its upstream may go on */
    bool sse_released;     /* /sse went on because of first_seen (not its deadline) */
} F = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static const int ids[2] = {0, 1};

/* ---- the upstreams' handlers ---- */

/* "METHOD TARGET\nX-Test\nX-Forwarded-For\nBODY", with an X-Echo header. */
static void h_echo(struct dst_http_req *req, void *ud)
{
    const char *xt = dst_http_req_header(req, "X-Test");
    const char *xff = dst_http_req_header(req, "X-Forwarded-For");
    const char *body = dst_http_req_body(req, NULL);
    char *out = dst_xasprintf("%s %s\n%s\n%s\n%s", dst_http_req_method(req), dst_http_req_uri(req),
                              xt ? xt : "", xff ? xff : "", body);

    dst_http_add_header(req, "X-Echo", *(const int *)ud ? "one" : "zero");
    dst_http_reply_take(req, 200, "text/plain", out, strlen(out));
}

static void *slow_main(void *arg)
{
    struct slow *w = arg;
    struct timespec dl;

    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += w->ms / 1000;
    dl.tv_nsec += (long)(w->ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&F.mu);
    while (!F.quit && pthread_cond_timedwait(&F.cv, &F.mu, &dl) == 0)
        ;
    w->ready = true;
    if (!w->gone)
        dst_http_req_resume(w->req);
    pthread_mutex_unlock(&F.mu);
    return NULL;
}

static void slow_done(void *ud, const struct dst_http_done *d)
{
    struct slow *w = ud;

    (void)d;
    pthread_mutex_lock(&F.mu);
    w->gone = true;
    pthread_mutex_unlock(&F.mu);
}

static void c_slow(struct dst_http_req *req, void *ud)
{
    struct slow *w = ud;

    pthread_mutex_lock(&F.mu);
    bool ready = w->ready;
    pthread_mutex_unlock(&F.mu);
    if (!ready) {
        dst_http_req_defer(req, c_slow, w);
        return;
    }
    dst_http_reply(req, 200, "text/plain", "slow", 4);
}

/* /slow?a=MS&b=MS: upstream 0 answers after a ms, upstream 1 after b (0: at once). */
static void h_slow(struct dst_http_req *req, void *ud)
{
    int id = *(const int *)ud;
    const char *v = dst_http_req_query(req, id ? "b" : "a");
    int ms = v ? atoi(v) : 0;
    struct slow *w = NULL;

    atomic_fetch_add(&F.slow_seen[id], 1);
    pthread_mutex_lock(&F.mu);
    if (ms > 0 && F.nslow < MAX_SLOW) {
        w = &F.slow[F.nslow++];
        *w = (struct slow){.req = req, .ms = ms};
        dst_http_req_on_done(req, slow_done, w);
        dst_http_req_defer(req, c_slow, w);
        pthread_create(&w->thread, NULL, slow_main, w);
    }
    pthread_mutex_unlock(&F.mu);
    if (!w)
        dst_http_reply(req, 200, "text/plain", "slow", 4);
}

static char big_byte(size_t i)
{
    return (char)(i * 7 + i / 65521);
}

static long big_read(void *ud, char *buf, size_t max)
{
    size_t *pos = ud;
    size_t n = BIG_LEN - *pos < max ? BIG_LEN - *pos : max;

    if (n == 0)
        return DST_HTTP_STREAM_END;
    for (size_t i = 0; i < n; i++)
        buf[i] = big_byte(*pos + i);
    *pos += n;
    return (long)n;
}

static void h_big(struct dst_http_req *req, void *ud)
{
    (void)ud;
    dst_http_reply_stream_len(req, 200, "application/octet-stream", BIG_LEN, big_read, free,
                              dst_xnew(size_t), NULL);
}

/*
 * Three events: the first at once, the others only once a client has the first (ST_WAIT_MS at
 * most: F.sse_released says which came first), then the end.
 */
static long sse_read(void *ud, char *buf, size_t max)
{
    static const char *const ev[] = {"data: one\n\n", "data: two\n\n", "data: three\n\n"};
    int *n = ud;

    if (*n == 3)
        return DST_HTTP_STREAM_END;
    if (*n == 1) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += ST_WAIT_MS / 1000;
        pthread_mutex_lock(&F.mu);
        while (!F.first_seen && pthread_cond_timedwait(&F.cv, &F.mu, &dl) == 0)
            ;
        F.sse_released = F.first_seen;
        pthread_mutex_unlock(&F.mu);
    }
    size_t len = strlen(ev[*n]);
    if (len > max)
        return DST_HTTP_STREAM_ABORT;
    memcpy(buf, ev[(*n)++], len);
    return (long)len;
}

static void h_sse(struct dst_http_req *req, void *ud)
{
    (void)ud;
    dst_http_reply_stream(req, 200, "text/event-stream", sse_read, free, dst_xnew(int), NULL);
}

/* The front's: holds its only thread until the test says unblock (ST_WAIT_MS at most). */
static void h_block(struct dst_http_req *req, void *ud)
{
    struct timespec dl;

    (void)ud;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ST_WAIT_MS / 1000;
    pthread_mutex_lock(&F.mu);
    F.blocked = true;
    while (!F.unblock && pthread_cond_timedwait(&F.cv, &F.mu, &dl) == 0)
        ;
    pthread_mutex_unlock(&F.mu);
    dst_http_reply(req, 200, "text/plain", "unblocked", 9);
}

static void h_forward(struct dst_http_req *req, void *ud)
{
    (void)ud;
    dst_http_proxy_forward(F.proxy, req);
}

/* ---- the proxy's ops: the first upstream up that did not just fail ---- */

static bool op_pick(void *ud, int attempt, int failed, struct dst_http_upstream *out)
{
    (void)ud;
    (void)attempt;
    for (int i = 0; i < 2; i++) {
        if (i == failed || !atomic_load(&F.up_flag[i]))
            continue;
        out->id = i;
        pthread_mutex_lock(&F.mu);
        snprintf(out->base, sizeof(out->base), "%s", F.base[i]);
        pthread_mutex_unlock(&F.mu);
        return true;
    }
    return false;
}

static bool op_keep(void *ud, int id, bool event_stream)
{
    (void)ud;
    (void)event_stream;
    return atomic_load(&F.up_flag[id]);
}

static void op_report(void *ud, int id, bool ok, int status, const char *reason)
{
    (void)ud;
    (void)id;
    (void)status;
    if (ok) {
        atomic_fetch_add(&F.oks, 1);
        return;
    }
    pthread_mutex_lock(&F.mu);
    snprintf(F.reason, sizeof(F.reason), "%s", reason ? reason : "");
    pthread_mutex_unlock(&F.mu);
    atomic_fetch_add(&F.fails, 1);
}

/* ---- fixture ---- */

static struct dst_http_server *upstream(int i)
{
    struct dst_http_server *s = ht_server(NULL);

    assert_non_null(s);
    assert_int_equal(dst_http_server_route(s, "*", "/echo/*", h_echo, (void *)&ids[i], 0, 0), 0);
    assert_int_equal(dst_http_server_route(s, "*", "/slow", h_slow, (void *)&ids[i], 0, 0), 0);
    assert_int_equal(dst_http_server_route(s, "*", "/big", h_big, NULL, 0, 0), 0);
    assert_int_equal(dst_http_server_route(s, "*", "/sse", h_sse, NULL, 0, 0), 0);
    assert_int_equal(dst_http_server_start(s), 0);
    snprintf(F.base[i], sizeof(F.base[i]), "%s", dst_http_server_url(s));
    return s;
}

static int fixture_start(int header_timeout_ms)
{
    struct dst_http_proxy_opts o = {.name = "test-proxy",
                                    .header_timeout_ms = header_timeout_ms,
                                    .buffer = 64 * 1024,
                                    .none_message = NONE_MSG,
                                    .id_header = ID_HEADER};
    struct dst_http_proxy_ops ops = {op_pick, op_keep, op_report};

    atomic_store(&F.oks, 0);
    atomic_store(&F.fails, 0);
    F.nslow = 0;
    F.reason[0] = '\0';
    F.quit = F.blocked = F.unblock = F.first_seen = F.sse_released = false;
    for (int i = 0; i < 2; i++) {
        F.up[i] = upstream(i);
        atomic_store(&F.up_flag[i], true);
        atomic_store(&F.slow_seen[i], 0);
    }
    F.front = ht_server(&(struct dst_http_server_opts){.threads = 1});
    assert_int_equal(dst_http_server_route(F.front, "GET", "/block", h_block, NULL, 0, 0), 0);
    assert_int_equal(dst_http_server_route(F.front, "*", "/*", h_forward, NULL, 0, 0), 0);
    assert_int_equal(dst_http_server_start(F.front), 0);
    return dst_http_proxy_new(&o, &ops, NULL, &F.proxy);
}

/* No header timeout to speak of: a busy machine's answers come in time. */
static int setup(void **state)
{
    (void)state;
    return fixture_start(ST_WAIT_MS);
}

/* A header timeout a test waits out (its upstreams hang for HANG_MS, far longer). */
static int setup_hurried(void **state)
{
    (void)state;
    return fixture_start(HEADER_MS);
}

/* Sets *flag (a field of F) under F.mu and wakes every waiter. */
static void set_flag(bool *flag)
{
    pthread_mutex_lock(&F.mu);
    *flag = true;
    pthread_cond_broadcast(&F.cv);
    pthread_mutex_unlock(&F.mu);
}

static int teardown(void **state)
{
    (void)state;
    dst_http_proxy_free(F.proxy);
    F.proxy = NULL;
    set_flag(&F.quit); /* every /slow answers now */
    set_flag(&F.unblock);
    dst_http_server_free(F.front);
    dst_http_server_free(F.up[0]);
    dst_http_server_free(F.up[1]);
    for (int i = 0; i < F.nslow; i++) /* no handler runs any more */
        pthread_join(F.slow[i].thread, NULL);
    return 0;
}

/* ---- the client: libcurl, every call bounded ---- */

struct call {
    const char *method, *path, *body;
    const char *hdr[4];
    struct ht_resp r;
    int64_t t_start, t_first, t_end; /* monotonic ms: start, the first body byte, the end */
    pthread_t thread;
    atomic_bool finished;
};

static size_t call_body(char *data, size_t size, size_t n, void *ud)
{
    struct call *c = ud;

    if (!c->t_first)
        c->t_first = dst_monotonic_ms();
    size_t took = ht_on_body(data, size, n, &c->r);
    if (strcmp(c->path, "/sse") == 0 && strstr(c->r.body, "data: one\n\n"))
        set_flag(&F.first_seen); /* /sse's upstream may go on */
    return took;
}

static void call_run(struct call *c)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hl = NULL;
    char *url = ht_url(F.front, c->path);

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, call_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, ht_on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &c->r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, CALL_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (strcmp(c->method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (strcmp(c->method, "GET") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
    if (c->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(c->body));
    }
    for (int i = 0; i < 4 && c->hdr[i]; i++)
        hl = curl_slist_append(hl, c->hdr[i]);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    c->t_start = dst_monotonic_ms();
    c->r.rc = curl_easy_perform(h);
    c->t_end = dst_monotonic_ms();
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->r.status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
    free(url);
}

static void *call_main(void *arg)
{
    call_run(arg);
    atomic_store(&((struct call *)arg)->finished, true);
    return NULL;
}

static bool call_finished(void *arg)
{
    return atomic_load(&((struct call *)arg)->finished);
}

/* Runs c in a thread; call_join waits (bounded) for it. */
static void call_start(struct call *c)
{
    pthread_create(&c->thread, NULL, call_main, c);
}

static void call_join(struct call *c)
{
    assert_true(ht_wait(call_finished, c, (int)CALL_MS + 2000));
    pthread_join(c->thread, NULL);
}

static void assert_header(const struct call *c, const char *name, const char *want)
{
    char v[256];

    if (!ht_header(&c->r, name, v, sizeof(v)))
        fail_msg("no %s header in:\n%s", name, c->r.headers ? c->r.headers : "");
    assert_string_equal(v, want);
}

/* The last failure report()ed contains needle. */
static void assert_reason(const char *needle)
{
    pthread_mutex_lock(&F.mu);
    bool ok = strstr(F.reason, needle) != NULL;
    if (!ok)
        fprintf(stderr, "last failure: %s\n", F.reason);
    pthread_mutex_unlock(&F.mu);
    assert_true(ok);
}

static bool front_blocked(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&F.mu);
    bool b = F.blocked;
    pthread_mutex_unlock(&F.mu);
    return b;
}

static bool answered_once(void *arg)
{
    (void)arg;
    return atomic_load(&F.oks) == 1;
}

static bool slow_seen(void *arg)
{
    int id = *(const int *)arg;
    return atomic_load(&F.slow_seen[id]) > 0;
}

/* A socket bound to 127.0.0.1:0 in *fd (listening if asked); returns its port. */
static int bound(int *fd, bool listening)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);

    *fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(*fd, (struct sockaddr *)&a, sizeof(a)), 0);
    if (listening)
        assert_int_equal(listen(*fd, 8), 0);
    assert_int_equal(getsockname(*fd, (struct sockaddr *)&a, &alen), 0);
    return ntohs(a.sin_port);
}

/* A port that was free a moment ago and has no listener: connections are refused. */
static int dead_port(void)
{
    int fd = -1;
    int port = bound(&fd, false);

    close(fd);
    return port;
}

/* A listener that reads each request and closes, after sending answer (when not NULL). */
struct dropper {
    int fd;
    pthread_t thread;
    const char *answer;
    size_t answer_len;
};

static void *drop_main(void *arg)
{
    struct dropper *d = arg;
    char buf[4096];

    for (;;) {
        int c = accept(d->fd, NULL, NULL);
        if (c < 0)
            return NULL; /* shut down */
        recv(c, buf, sizeof(buf), 0);
        if (d->answer)
            ht_send_all(c, d->answer, d->answer_len);
        close(c);
    }
}

static int dropper_start(struct dropper *d)
{
    int port = bound(&d->fd, true);

    pthread_create(&d->thread, NULL, drop_main, d);
    return port;
}

static void dropper_stop(struct dropper *d)
{
    shutdown(d->fd, SHUT_RDWR);
    pthread_join(d->thread, NULL);
    close(d->fd);
}

/* Points upstream 0 at 127.0.0.1:port. */
static void base0(int port)
{
    pthread_mutex_lock(&F.mu);
    snprintf(F.base[0], sizeof(F.base[0]), "http://127.0.0.1:%d", port);
    pthread_mutex_unlock(&F.mu);
}

/* ---- tests ---- */

static void test_forward(void **state)
{
    struct call c = {.method = "POST",
                     .path = "/echo/a%20b//c?x=%2F&y=1",
                     .body = "payload",
                     .hdr = {"X-Test: hello", "X-Forwarded-For: 10.0.0.1"}};
    struct call d = {.method = "DELETE", .path = "/echo/d", .hdr = {"X-Test: gone"}};

    (void)state;
    call_run(&c);
    assert_int_equal(c.r.rc, CURLE_OK);
    assert_int_equal(c.r.status, 200);
    assert_string_equal(c.r.body, "POST /echo/a%20b//c?x=%2F&y=1\nhello\n10.0.0.1, 127.0.0.1\n"
                                  "payload");
    assert_header(&c, ID_HEADER, "0");
    assert_header(&c, "X-Echo", "zero");
    assert_header(&c, "Content-Type", "text/plain");
    call_run(&d);
    assert_int_equal(d.r.status, 200);
    assert_string_equal(d.r.body, "DELETE /echo/d\ngone\n127.0.0.1\n"); /* X-Forwarded-For added */
    assert_int_equal(atomic_load(&F.oks), 2);
    assert_int_equal(atomic_load(&F.fails), 0);
    ht_resp_release(&c.r);
    ht_resp_release(&d.r);
}

/* Upstream 0 refuses connections: the second answers; report saw one failure. */
static void test_retry_refused(void **state)
{
    struct call c = {.method = "GET", .path = "/echo/r"};

    (void)state;
    base0(dead_port());
    call_run(&c);
    assert_int_equal(c.r.status, 200);
    assert_header(&c, ID_HEADER, "1");
    assert_header(&c, "X-Echo", "one");
    assert_int_equal(atomic_load(&F.fails), 1);
    assert_int_equal(atomic_load(&F.oks), 1);
    assert_reason("127.0.0.1");
    ht_resp_release(&c.r);
}

/* Upstream 0 reads the request and closes: a GET or a keyed POST moves on, a bare POST not. */
static void test_retry_dropped(void **state)
{
    struct dropper dr = {0};
    struct call get = {.method = "GET", .path = "/echo/g"};
    struct call post = {.method = "POST", .path = "/echo/p", .body = "once"};
    struct call keyed = {
        .method = "POST", .path = "/echo/k", .body = "again", .hdr = {"Idempotency-Key: k1"}};

    (void)state;
    base0(dropper_start(&dr));
    call_run(&get);
    assert_int_equal(get.r.status, 200);
    assert_header(&get, ID_HEADER, "1");
    call_run(&post);
    assert_int_equal(post.r.status, 502);
    assert_non_null(strstr(post.r.body, "not retried"));
    call_run(&keyed);
    assert_int_equal(keyed.r.status, 200);
    assert_header(&keyed, ID_HEADER, "1");
    assert_non_null(strstr(keyed.r.body, "POST /echo/k\n"));
    assert_int_equal(atomic_load(&F.fails), 3);
    dropper_stop(&dr);
    ht_resp_release(&get.r);
    ht_resp_release(&post.r);
    ht_resp_release(&keyed.r);
}

/*
 * Upstream 0 answers with a crafted status line: none reaches the client, each attempt fails
 * and moves on to upstream 1. The status was read with atoi on curl's header bytes, which
 * need not end in a NUL: digits and white space up to the end of them were read past it.
 */
static void test_bad_status_line(void **state)
{
    static const char *const bad[] = {
        "HTTP/1.1 200",             /* no line end, then the connection closes */
        "HTTP/1.1 20",              /* two digits */
        "HTTP/1.1 2000 OK\r\n\r\n", /* four */
        "HTTP/1.1 +20 OK\r\n\r\n",
        "HTTP/1.1 -200 OK\r\n\r\n",
        "HTTP/1.1 099 Early\r\n\r\n",
        "HTTP/1.1 \r\n\r\n",
        "HTTP/1.1 abc\r\n\r\n",
        " HTTP/1.1 200 OK\r\n\r\n",                   /* curl takes leading white space */
        "HTTP 200 OK\r\nContent-Length: 2\r\n\r\nok", /* and NCSA 1.5's line */
        "HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.1  200 OK\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.1 200OK\r\nContent-Length: 2\r\n\r\nok",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct dropper dr = {.answer = bad[i], .answer_len = strlen(bad[i])};
        struct call c = {.method = "GET", .path = "/echo/s"};
        base0(dropper_start(&dr));
        call_run(&c);
        dropper_stop(&dr);
        char id[8] = "";
        ht_header(&c.r, ID_HEADER, id, sizeof(id));
        if (c.r.status != 200 || strcmp(id, "1") != 0)
            fail_msg("status line '%s': %ld from upstream '%s'", bad[i], c.r.status, id);
        ht_resp_release(&c.r);
    }
    assert_int_equal(atomic_load(&F.fails), (int)(sizeof(bad) / sizeof(bad[0])));
}

/* Long header names and values pass whole each way (they were cut at 128 and 1024 bytes). */
static void test_long_headers_pass_whole(void **state)
{
    char name[201], chain[2001], *want = NULL;
    struct call c = {.method = "GET", .path = "/echo/h"};
    struct call d = {.method = "GET", .path = "/echo/h"};

    (void)state;
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    memset(chain, '1', sizeof(chain) - 1);
    chain[sizeof(chain) - 1] = '\0';
    char *xff = dst_xasprintf("X-Forwarded-For: %s", chain);
    c.hdr[0] = xff;
    call_run(&c);
    assert_int_equal(c.r.status, 200);
    want = dst_xasprintf("GET /echo/h\n\n%s, 127.0.0.1\n", chain);
    assert_string_equal(c.r.body, want);
    char *answer =
        dst_xasprintf("HTTP/1.1 200 OK\r\nX-%s: long\r\nContent-Length: 2\r\n\r\nok", name);
    struct dropper dr = {.answer = answer, .answer_len = strlen(answer)};
    base0(dropper_start(&dr));
    call_run(&d);
    dropper_stop(&dr);
    char *hname = dst_xasprintf("X-%s", name);
    assert_int_equal(d.r.status, 200);
    assert_header(&d, hname, "long");
    free(hname);
    free(answer);
    free(want);
    free(xff);
    ht_resp_release(&c.r);
    ht_resp_release(&d.r);
}

static void test_none_up(void **state)
{
    struct call c = {.method = "GET", .path = "/echo/n"};

    (void)state;
    atomic_store(&F.up_flag[0], false);
    atomic_store(&F.up_flag[1], false);
    call_run(&c);
    assert_int_equal(c.r.status, 503);
    assert_non_null(strstr(c.r.body, NONE_MSG));
    assert_int_equal(atomic_load(&F.oks) + atomic_load(&F.fails), 0);
    ht_resp_release(&c.r);
}

/* No headers within HEADER_MS from upstream 0: retried on upstream 1. */
static void test_header_timeout_retried(void **state)
{
    struct call c = {.method = "GET", .path = "/slow?a=" STR(HANG_MS) "&b=0"};

    (void)state;
    call_run(&c);
    assert_int_equal(c.r.status, 200);
    assert_string_equal(c.r.body, "slow");
    assert_header(&c, ID_HEADER, "1");
    assert_true(c.t_end - c.t_start < HANG_MS / 2); /* not upstream 0's answer */
    assert_int_equal(atomic_load(&F.fails), 1);
    assert_reason("no answer within " STR(HEADER_MS) " ms");
    ht_resp_release(&c.r);
}

static void test_both_slow_504(void **state)
{
    struct call c = {.method = "GET", .path = "/slow?a=" STR(HANG_MS) "&b=" STR(HANG_MS)};

    (void)state;
    call_run(&c);
    assert_int_equal(c.r.status, 504);
    assert_int_equal(atomic_load(&F.fails), 2);
    ht_resp_release(&c.r);
}

/* A POST hangs on upstream 0, which then goes down: 502 unless it has an Idempotency-Key. */
static void test_post_upstream_down(void **state)
{
    struct call bare = {.method = "POST", .path = "/slow?a=" STR(HANG_MS) "&b=0", .body = "x"};
    struct call keyed = bare;

    (void)state;
    keyed.hdr[0] = "Idempotency-Key: k2";
    for (int i = 0; i < 2; i++) {
        struct call *c = i ? &keyed : &bare;
        atomic_store(&F.up_flag[0], true);
        atomic_store(&F.slow_seen[0], 0);
        call_start(c);
        assert_true(ht_wait(slow_seen, (void *)&ids[0], (int)CALL_MS));
        atomic_store(&F.up_flag[0], false);
        dst_http_proxy_kick(F.proxy);
        call_join(c);
    }
    assert_int_equal(bare.r.status, 502);
    assert_non_null(strstr(bare.r.body, "not retried"));
    assert_non_null(strstr(bare.r.body, "the upstream went down"));
    assert_int_equal(keyed.r.status, 200);
    assert_string_equal(keyed.r.body, "slow");
    assert_header(&keyed, ID_HEADER, "1");
    ht_resp_release(&bare.r);
    ht_resp_release(&keyed.r);
}

/* 4 MiB through a 64 KiB buffer: the upstream is paused and unpaused; every byte arrives. */
static void test_big(void **state)
{
    struct call c = {.method = "GET", .path = "/big"};

    (void)state;
    call_run(&c);
    assert_int_equal(c.r.rc, CURLE_OK);
    assert_int_equal(c.r.status, 200);
    assert_int_equal(c.r.len, BIG_LEN);
    for (size_t i = 0; i < BIG_LEN; i++) {
        if (c.r.body[i] != big_byte(i))
            fail_msg("byte %zu differs", i);
    }
    assert_header(&c, "Content-Length", "4194304");
    ht_resp_release(&c.r);
}

static void test_head_keeps_length(void **state)
{
    struct call c = {.method = "HEAD", .path = "/big"};

    (void)state;
    call_run(&c);
    assert_int_equal(c.r.rc, CURLE_OK);
    assert_int_equal(c.r.status, 200);
    assert_int_equal(c.r.len, 0);
    assert_header(&c, "Content-Length", "4194304");
    assert_header(&c, ID_HEADER, "0");
    ht_resp_release(&c.r);
}

/* An event stream: the first event reaches the client long before the upstream ends. */
static void test_stream_first_byte_early(void **state)
{
    struct call c = {.method = "GET", .path = "/sse"};

    (void)state;
    call_run(&c);
    assert_int_equal(c.r.rc, CURLE_OK);
    assert_int_equal(c.r.status, 200);
    assert_string_equal(c.r.body, "data: one\n\ndata: two\n\ndata: three\n\n");
    assert_header(&c, "Content-Type", "text/event-stream");
    assert_true(c.t_first > 0);
    /* the first event reached the client while the upstream held back the rest (a proxy that
       kept the answer until its end would have shown nothing before it) */
    assert_true(F.sse_released);
    ht_resp_release(&c.r);
}

/* Freeing the proxy with a request in flight: its client gets a 502, not a hang. */
static void test_free_in_flight(void **state)
{
    struct call c = {.method = "GET", .path = "/slow?a=" STR(HANG_MS) "&b=" STR(HANG_MS)};

    (void)state;
    call_start(&c);
    assert_true(ht_wait(slow_seen, (void *)&ids[0], (int)CALL_MS));
    dst_http_proxy_free(F.proxy);
    F.proxy = NULL;
    call_join(&c);
    assert_int_equal(c.r.rc, CURLE_OK);
    assert_int_equal(c.r.status, 502);
    assert_non_null(strstr(c.r.body, "stopping"));
    ht_resp_release(&c.r);
}

/*
 * The proxy has the whole answer and has resumed the request, but the front's only thread is
 * busy, so the continuation runs after dst_http_proxy_free: it must not touch the freed proxy.
 */
static void test_free_answer_not_handed(void **state)
{
    struct call a = {.method = "GET", .path = "/slow?a=" STR(HANG_MS)};
    struct call b = {.method = "GET", .path = "/block"};

    (void)state;
    call_start(&a);
    assert_true(ht_wait(slow_seen, (void *)&ids[0], (int)CALL_MS));
    call_start(&b);
    assert_true(ht_wait(front_blocked, NULL, (int)CALL_MS));
    set_flag(&F.quit);                                       /* upstream 0 answers a now */
    assert_true(ht_wait(answered_once, NULL, (int)CALL_MS)); /* the proxy has it all */
    dst_http_proxy_free(F.proxy);                            /* after it resumed a */
    F.proxy = NULL;
    set_flag(&F.unblock); /* a's continuation runs now */
    call_join(&b);
    call_join(&a);
    assert_int_equal(b.r.status, 200);
    assert_int_equal(a.r.rc, CURLE_OK);
    assert_true(a.r.status == 200 || a.r.status == 502);
    ht_resp_release(&a.r);
    ht_resp_release(&b.r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_forward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_status_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_headers_pass_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_none_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_timeout_retried, setup_hurried, teardown),
        cmocka_unit_test_setup_teardown(test_both_slow_504, setup_hurried, teardown),
        cmocka_unit_test_setup_teardown(test_post_upstream_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_keeps_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_first_byte_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_answer_not_handed, setup, teardown),
    };

    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
