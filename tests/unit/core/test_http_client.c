/* test_http_client.c - unit tests of the libcurl client (src/core/http_client.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/http_client.h"

/*
 * A canned HTTP/1.1 server on 127.0.0.1:0, one thread per connection, keep-alive:
 *   /ok      200 "hello" (text/plain; charset=utf-8)
 *   /err     500 "boom"
 *   /echo    200, the request's method, Authorization, Content-Type and body, one per line
 *   /big     200 with a 100000-byte body and its Content-Length
 *   /chunked 200 with a 100000-byte chunked body (no length known up front)
 *   /silent  never answers
 *   /idem    200, the request's Idempotency-Key header ("" if none)
 */
#define MAX_CONNS 32
#define BIG_LEN   100000

struct server {
    int fd;
    int port;
    pthread_t accept_thread;
    pthread_mutex_t lock;
    int conns[MAX_CONNS];
    pthread_t threads[MAX_CONNS];
    int nconns;
    atomic_bool stop;
};

static struct server srv;
static char url[128];

/* Reads one request head and body into buf; false when the peer closed or stop was asked. */
static bool read_request(int fd, char *buf, size_t cap, size_t *head_len, size_t *body_len)
{
    size_t n = 0;
    char *end = NULL;

    while (!(end = memmem(buf, n, "\r\n\r\n", 4))) {
        ssize_t r = n < cap - 1 ? recv(fd, buf + n, cap - 1 - n, 0) : 0;
        if (r <= 0)
            return false;
        n += (size_t)r;
    }
    *head_len = (size_t)(end - buf) + 4;
    buf[*head_len - 2] = '\0'; /* headers as one string */
    *body_len = 0;
    for (char *line = strstr(buf, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
            *body_len = strtoul(line + 17, NULL, 10);
    }
    while (n < *head_len + *body_len) {
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r <= 0)
            return false;
        n += (size_t)r;
    }
    buf[*head_len + *body_len] = '\0';
    return true;
}

/* The value of header name in head ("" if absent), copied into out. */
static void header(const char *head, const char *name, char *out, size_t outlen)
{
    size_t len = strlen(name);
    out[0] = '\0';
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, name, len) == 0 && line[2 + len] == ':') {
            const char *v = line + 3 + len;
            while (*v == ' ')
                v++;
            size_t vlen = strcspn(v, "\r");
            snprintf(out, outlen, "%.*s", (int)vlen, v);
            return;
        }
    }
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void reply(int fd, int status, const char *ctype, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n", status,
                     ctype, len);
    send_all(fd, head, (size_t)n);
    send_all(fd, body, len);
}

static void reply_chunked(int fd)
{
    static char chunk[10000];
    const char *head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    char size[16];

    memset(chunk, 'x', sizeof(chunk));
    send_all(fd, head, strlen(head));
    for (int i = 0; i < BIG_LEN / (int)sizeof(chunk); i++) {
        int n = snprintf(size, sizeof(size), "%zx\r\n", sizeof(chunk));
        send_all(fd, size, (size_t)n);
        send_all(fd, chunk, sizeof(chunk));
        send_all(fd, "\r\n", 2);
    }
    send_all(fd, "0\r\n\r\n", 5);
}

/* Waits for the peer to go away (or the server to stop) without answering. */
static void stay_silent(int fd)
{
    char c;
    while (!atomic_load(&srv.stop)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) > 0 && recv(fd, &c, 1, 0) <= 0)
            return;
    }
}

static void answer(int fd, char *req, size_t head_len)
{
    char path[64] = "", method[16] = "", echo[4096], auth[256], ctype[128], key[128];

    sscanf(req, "%15s %63s", method, path);
    if (strcmp(path, "/ok") == 0) {
        reply(fd, 200, "text/plain; charset=utf-8", "hello", 5);
    } else if (strcmp(path, "/err") == 0) {
        reply(fd, 500, "text/plain", "boom", 4);
    } else if (strcmp(path, "/echo") == 0) {
        header(req, "Authorization", auth, sizeof(auth));
        header(req, "Content-Type", ctype, sizeof(ctype));
        int n = snprintf(echo, sizeof(echo), "%s\n%s\n%s\n%s", method, auth, ctype, req + head_len);
        reply(fd, 200, "text/plain", echo, (size_t)n);
    } else if (strcmp(path, "/big") == 0) {
        char *big = malloc(BIG_LEN);
        memset(big, 'x', BIG_LEN);
        reply(fd, 200, "application/octet-stream", big, BIG_LEN);
        free(big);
    } else if (strcmp(path, "/chunked") == 0) {
        reply_chunked(fd);
    } else if (strcmp(path, "/silent") == 0) {
        stay_silent(fd);
    } else if (strcmp(path, "/idem") == 0) {
        header(req, "Idempotency-Key", key, sizeof(key));
        reply(fd, 200, "text/plain", key, strlen(key));
    } else {
        reply(fd, 404, "text/plain", "", 0);
    }
}

static void *serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    static _Thread_local char req[65536];
    size_t head_len, body_len;

    while (!atomic_load(&srv.stop) && read_request(fd, req, sizeof(req), &head_len, &body_len))
        answer(fd, req, head_len);
    return NULL;
}

static void *accept_loop(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(srv.fd, NULL, NULL);
        if (c < 0)
            return NULL; /* the listener was shut down */
        pthread_mutex_lock(&srv.lock);
        if (atomic_load(&srv.stop) || srv.nconns == MAX_CONNS) {
            pthread_mutex_unlock(&srv.lock);
            close(c);
            continue;
        }
        srv.conns[srv.nconns] = c;
        pthread_create(&srv.threads[srv.nconns], NULL, serve_conn, (void *)(intptr_t)c);
        srv.nconns++;
        pthread_mutex_unlock(&srv.lock);
    }
}

static int accepted(void)
{
    pthread_mutex_lock(&srv.lock);
    int n = srv.nconns;
    pthread_mutex_unlock(&srv.lock);
    return n;
}

static int server_start(void **state)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);

    (void)state;
    memset(&srv, 0, sizeof(srv));
    pthread_mutex_init(&srv.lock, NULL);
    srv.fd = socket(AF_INET, SOCK_STREAM, 0);
    if (srv.fd < 0 || bind(srv.fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(srv.fd, 16) != 0 || getsockname(srv.fd, (struct sockaddr *)&a, &alen) != 0)
        return -1;
    srv.port = ntohs(a.sin_port);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
    return pthread_create(&srv.accept_thread, NULL, accept_loop, NULL) == 0 ? 0 : -1;
}

static int server_stop(void **state)
{
    (void)state;
    atomic_store(&srv.stop, true);
    shutdown(srv.fd, SHUT_RDWR);
    pthread_join(srv.accept_thread, NULL);
    close(srv.fd);
    for (int i = 0; i < srv.nconns; i++) {
        shutdown(srv.conns[i], SHUT_RDWR);
        pthread_join(srv.threads[i], NULL);
        close(srv.conns[i]);
    }
    pthread_mutex_destroy(&srv.lock);
    return 0;
}

/* "http://127.0.0.1:PORT" + path, in a static buffer. */
static const char *at(const char *path)
{
    static char buf[256];
    snprintf(buf, sizeof(buf), "%s%s", url, path);
    return buf;
}

static void get_ok(void **state)
{
    struct dst_http_call call = {.url = at("/ok")};
    struct dst_http_resp resp;

    (void)state;
    assert_int_equal(dst_http_do(&call, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "hello");
    assert_int_equal(resp.len, 5);
    assert_string_equal(resp.ctype, "text/plain; charset=utf-8");
    assert_string_equal(resp.err, "");
    dst_http_resp_release(&resp);
    assert_null(resp.body);
    dst_http_resp_release(&resp); /* twice is fine */
    dst_http_resp_release(NULL);
}

static void status_500_is_a_response(void **state)
{
    struct dst_http_call call = {.url = at("/err")};
    struct dst_http_resp resp;

    (void)state;
    assert_int_equal(dst_http_do(&call, &resp), 0);
    assert_int_equal(resp.status, 500);
    assert_string_equal(resp.body, "boom");
    dst_http_resp_release(&resp);

    call.url = at("/nothing-here");
    assert_int_equal(dst_http_do(&call, &resp), 0);
    assert_int_equal(resp.status, 404);
    assert_non_null(resp.body); /* empty, never NULL */
    assert_string_equal(resp.body, "");
    assert_int_equal(resp.len, 0);
    dst_http_resp_release(&resp);
}

static void refused(void **state)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    char u[64], want[64];
    struct dst_http_resp resp;

    (void)state;
    /* A port that was just free and has no listener. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", ntohs(a.sin_port));
    struct dst_http_call call = {.url = u};
    assert_int_equal(dst_http_do(&call, &resp), DST_EDEP);
    assert_int_equal(resp.status, 0);
    assert_null(resp.body);
    snprintf(want, sizeof(want), "Failed to connect to 127.0.0.1 port %d", ntohs(a.sin_port));
    assert_true(strncmp(resp.err, want, strlen(want)) == 0);
    assert_non_null(strstr(resp.err, "Couldn't connect to server"));
    dst_http_resp_release(&resp);
}

static void other_failures(void **state)
{
    struct dst_http_call call = {.url = "ftp://127.0.0.1/x"};
    struct dst_http_resp resp;

    (void)state;
    assert_int_equal(dst_http_do(&call, &resp), DST_EDEP); /* only http and https */
    assert_string_not_equal(resp.err, "");
    dst_http_resp_release(&resp);

    call.url = "http://[not a url";
    assert_int_equal(dst_http_do(&call, &resp), DST_EDEP);
    assert_string_not_equal(resp.err, "");
    dst_http_resp_release(&resp);

    call.url = NULL;
    assert_int_equal(dst_http_do(&call, &resp), DST_EINVAL);
    assert_string_equal(resp.err, "no URL");
    dst_http_resp_release(&resp);
}

static void timeout(void **state)
{
    struct dst_http_call call = {.url = at("/silent"), .timeout_ms = 300};
    struct dst_http_resp resp;
    int64_t t0 = dst_monotonic_ms();

    (void)state;
    assert_int_equal(dst_http_do(&call, &resp), DST_ETIMEDOUT);
    int64_t took = dst_monotonic_ms() - t0;
    assert_true(took >= 250);
    assert_true(took < 30000); /* the server stays silent until the test ends */
    assert_int_equal(resp.status, 0);
    assert_non_null(strstr(resp.err, "timed out"));
    dst_http_resp_release(&resp);
}

static void body_cap(void **state)
{
    struct dst_http_call call = {.url = at("/big"), .max_body = 1000};
    struct dst_http_resp resp;

    (void)state;
    assert_int_equal(dst_http_do(&call, &resp), DST_ETOOBIG); /* known length */
    assert_string_equal(resp.err, "response body over 1000 bytes");
    assert_null(resp.body);
    dst_http_resp_release(&resp);

    call.url = at("/chunked");
    assert_int_equal(dst_http_do(&call, &resp), DST_ETOOBIG); /* found out while reading */
    assert_string_equal(resp.err, "response body over 1000 bytes");
    dst_http_resp_release(&resp);

    call.max_body = BIG_LEN; /* exactly at the cap is fine */
    assert_int_equal(dst_http_do(&call, &resp), 0);
    assert_int_equal(resp.len, BIG_LEN);
    assert_int_equal(strlen(resp.body), BIG_LEN);
    dst_http_resp_release(&resp);
}

static void methods_bodies_headers(void **state)
{
    struct dst_http_call call = {.url = at("/echo"),
                                 .method = "POST",
                                 .body = "{\"a\":1}",
                                 .content_type = "application/json",
                                 .bearer = "s3cret"};
    struct dst_http_resp resp;

    (void)state;
    assert_int_equal(dst_http_do(&call, &resp), 0);
    assert_string_equal(resp.body, "POST\nBearer s3cret\napplication/json\n{\"a\":1}");
    dst_http_resp_release(&resp);

    call.method = "PUT";
    call.body = "abcdef";
    call.body_len = 3; /* only the first three bytes */
    call.bearer = NULL;
    call.content_type = "text/plain";
    assert_int_equal(dst_http_do(&call, &resp), 0);
    assert_string_equal(resp.body, "PUT\n\ntext/plain\nabc");
    dst_http_resp_release(&resp);

    call = (struct dst_http_call){.url = at("/echo"), .method = "DELETE"};
    assert_int_equal(dst_http_do(&call, &resp), 0);
    assert_string_equal(resp.body, "DELETE\n\n\n");
    dst_http_resp_release(&resp);

    call.method = NULL; /* GET */
    assert_int_equal(dst_http_do(&call, &resp), 0);
    assert_string_equal(resp.body, "GET\n\n\n");
    dst_http_resp_release(&resp);
}

static void connection_reused(void **state)
{
    struct dst_http_client *c = NULL;
    struct dst_http_call call = {.url = at("/ok")};
    struct dst_http_call post = {.url = at("/echo"), .method = "POST", .body = "x"};
    struct dst_http_resp resp;

    (void)state;
    int before = accepted();
    assert_int_equal(dst_http_client_new(&c), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(dst_http_client_do(c, i == 1 ? &post : &call, &resp), 0);
        assert_int_equal(resp.status, 200);
        dst_http_resp_release(&resp);
    }
    assert_int_equal(accepted() - before, 1);
    /* A call's options do not leak into the next one on the same client. */
    assert_int_equal(dst_http_client_do(c, &(struct dst_http_call){.url = at("/echo")}, &resp), 0);
    assert_string_equal(resp.body, "GET\n\n\n");
    dst_http_resp_release(&resp);
    dst_http_client_free(c);
    dst_http_client_free(NULL);

    /* One-shot calls each open their own connection. */
    before = accepted();
    for (int i = 0; i < 2; i++) {
        assert_int_equal(dst_http_do(&call, &resp), 0);
        dst_http_resp_release(&resp);
    }
    assert_int_equal(accepted() - before, 2);
}

static void idempotency_key(void **state)
{
    struct dst_http_call call = {.url = at("/idem"), .method = "POST", .idempotency_key = "k1"};
    struct dst_http_resp resp;

    (void)state;
    assert_int_equal(dst_http_do(&call, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "k1");
    dst_http_resp_release(&resp);
    call.idempotency_key = NULL; /* none: no header */
    assert_int_equal(dst_http_do(&call, &resp), 0);
    assert_string_equal(resp.body, "");
    dst_http_resp_release(&resp);
}

/* What dst_http_client_stream handed over. */
struct taken {
    size_t bytes, calls;
    size_t stop_after; /* bytes; 0: never stop */
};

static bool take(void *ud, const char *p, size_t n)
{
    struct taken *t = ud;

    if (!p)
        return true; /* the once-a-second question: go on */
    t->bytes += n;
    t->calls++;
    return t->stop_after == 0 || t->bytes < t->stop_after;
}

static void stream_calls(void **state)
{
    struct dst_http_client *c = NULL;
    struct dst_http_call call = {.url = at("/chunked"), .idle_ms = 10000};
    struct dst_http_resp resp;
    struct taken t = {0};

    (void)state;
    assert_int_equal(dst_http_client_new(&c), 0);
    assert_int_equal(dst_http_client_stream(c, &call, take, &t, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(t.bytes, BIG_LEN); /* all of it, in pieces, none kept */
    assert_null(resp.body);
    dst_http_resp_release(&resp);
    t = (struct taken){.stop_after = 1};
    assert_int_equal(dst_http_client_stream(c, &call, take, &t, &resp), 0);
    assert_int_equal(t.calls, 1); /* stopped by the callback */
    dst_http_resp_release(&resp);
    t = (struct taken){0};
    call.url = at("/err");
    assert_int_equal(dst_http_client_stream(c, &call, take, &t, &resp), 0);
    assert_int_equal(resp.status, 500);
    assert_int_equal(t.calls, 0); /* not a 200: nothing handed over */
    dst_http_resp_release(&resp);
    dst_http_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_ok),
        cmocka_unit_test(status_500_is_a_response),
        cmocka_unit_test(refused),
        cmocka_unit_test(other_failures),
        cmocka_unit_test(timeout),
        cmocka_unit_test(body_cap),
        cmocka_unit_test(methods_bodies_headers),
        cmocka_unit_test(connection_reused),
        cmocka_unit_test(idempotency_key),
        cmocka_unit_test(stream_calls),
    };
    int rc = cmocka_run_group_tests(tests, server_start, server_stop);
    dst_http_client_global_cleanup();
    return rc;
}
