/* http_test.h - helpers for unit tests that run an HTTP server and drive it with libcurl */
#ifndef DST_HTTP_TEST_H
#define DST_HTTP_TEST_H

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/datetime.h"
#include "core/http_server.h"
#include "core/mem.h"
#include "sys_test.h"

/* ---- waiting for a condition with a deadline (polling, never a bare sleep) ---- */

typedef bool (*ht_cond_fn)(void *arg);

/* Polls cond until it holds (true) or timeout_ms, ST_WAIT_MS at the least, passed (false). */
static inline bool ht_wait(ht_cond_fn cond, void *arg, int timeout_ms)
{
    int64_t end = dst_monotonic_ms() + (timeout_ms > ST_WAIT_MS ? timeout_ms : ST_WAIT_MS);
    struct timespec ts = {0, 2 * 1000 * 1000};

    for (;;) {
        if (cond(arg))
            return true;
        if (dst_monotonic_ms() >= end)
            return false;
        nanosleep(&ts, NULL);
    }
}

/* ---- a server on 127.0.0.1:0 ---- */

static inline struct dst_http_server *ht_server(const struct dst_http_server_opts *base)
{
    struct dst_http_server_opts o = {0};
    struct dst_http_server *s = NULL;

    if (base)
        o = *base;
    o.listen = "127.0.0.1:0";
    o.name = "test";
    o.quiet = true;
    if (dst_http_server_new(&o, &s) != 0)
        return NULL;
    return s;
}

static inline char *ht_url(const struct dst_http_server *s, const char *path)
{
    return dst_xasprintf("%s%s", dst_http_server_url(s), path);
}

/* ---- one request with libcurl ---- */

struct ht_resp {
    long status;
    char *body;
    size_t len;
    char *headers;
    size_t hlen;
    long connects;
    CURLcode rc;
};

static inline size_t ht_append(char **p, size_t *len, const char *data, size_t n)
{
    *p = dst_xrealloc(*p, *len + n + 1);
    memcpy(*p + *len, data, n);
    *len += n;
    (*p)[*len] = '\0';
    return n;
}

static inline size_t ht_on_body(char *data, size_t size, size_t n, void *ud)
{
    struct ht_resp *r = ud;
    return ht_append(&r->body, &r->len, data, size * n);
}

static inline size_t ht_on_header(char *data, size_t size, size_t n, void *ud)
{
    struct ht_resp *r = ud;
    return ht_append(&r->headers, &r->hlen, data, size * n);
}

static inline void ht_resp_release(struct ht_resp *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof(*r));
}

/* The value of a response header (case-insensitive name) copied into out; false if absent. */
static inline bool ht_header(const struct ht_resp *r, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    const char *p = r->headers;

    while (p && *p) {
        const char *eol = strstr(p, "\r\n");
        size_t linelen = eol ? (size_t)(eol - p) : strlen(p);
        if (linelen > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            size_t vl = linelen - (size_t)(v - p);
            if (vl >= outlen)
                vl = outlen - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return true;
        }
        p = eol ? eol + 2 : p + linelen;
    }
    return false;
}

/*
 * Performs METHOD url on h (reused: keep-alive) with an optional body and extra headers
 * (NULL-terminated). The response is in *r (release it with ht_resp_release).
 */
static inline CURLcode ht_fetch(CURL *h, const char *method, const char *url, const char *body,
                                size_t len, const char *const *headers, struct ht_resp *r)
{
    struct curl_slist *hl = NULL;

    memset(r, 0, sizeof(*r));
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, ht_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, ht_on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)ST_WAIT_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
    if (strcmp(method, "HEAD") != 0) {
        if (strcmp(method, "GET") == 0)
            curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") ? method : NULL);
    }
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    for (int i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    r->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->connects);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(hl);
    return r->rc;
}

/* A one-shot request on a fresh handle. */
static inline CURLcode ht_get(const char *method, const char *url, const char *body, size_t len,
                              const char *const *headers, struct ht_resp *r)
{
    CURL *h = curl_easy_init();
    CURLcode rc = ht_fetch(h, method, url, body, len, headers, r);
    curl_easy_cleanup(h);
    return rc;
}

/* ---- a request running in a background thread (streams) ---- */

struct ht_bg {
    pthread_t thread;
    pthread_mutex_t mu;
    char *url;
    const char *header; /* one optional extra request header */
    struct ht_resp r;   /* body and headers under mu */
    bool finished;
};

static inline size_t ht_bg_on_body(char *data, size_t size, size_t n, void *ud)
{
    struct ht_bg *b = ud;
    pthread_mutex_lock(&b->mu);
    ht_append(&b->r.body, &b->r.len, data, size * n);
    pthread_mutex_unlock(&b->mu);
    return size * n;
}

static inline size_t ht_bg_on_header(char *data, size_t size, size_t n, void *ud)
{
    struct ht_bg *b = ud;
    pthread_mutex_lock(&b->mu);
    ht_append(&b->r.headers, &b->r.hlen, data, size * n);
    pthread_mutex_unlock(&b->mu);
    return size * n;
}

static inline void *ht_bg_main(void *arg)
{
    struct ht_bg *b = arg;
    CURL *h = curl_easy_init();
    struct curl_slist *hl = b->header ? curl_slist_append(NULL, b->header) : NULL;
    long status = 0;

    curl_easy_setopt(h, CURLOPT_URL, b->url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, ht_bg_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, ht_bg_on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
    pthread_mutex_lock(&b->mu);
    b->r.rc = rc;
    b->r.status = status;
    b->finished = true;
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static inline struct ht_bg *ht_bg_start(const char *url, const char *header)
{
    struct ht_bg *b = dst_xnew(struct ht_bg);
    pthread_mutex_init(&b->mu, NULL);
    b->url = dst_xstrdup(url);
    b->header = header;
    pthread_create(&b->thread, NULL, ht_bg_main, b);
    return b;
}

static inline bool ht_bg_finished(void *arg)
{
    struct ht_bg *b = arg;
    pthread_mutex_lock(&b->mu);
    bool f = b->finished;
    pthread_mutex_unlock(&b->mu);
    return f;
}

/* Whether the body received so far contains needle. */
static inline bool ht_bg_has(struct ht_bg *b, const char *needle)
{
    pthread_mutex_lock(&b->mu);
    bool f = b->r.body && strstr(b->r.body, needle) != NULL;
    pthread_mutex_unlock(&b->mu);
    return f;
}

struct ht_bg_needle {
    struct ht_bg *b;
    const char *needle;
};

static inline bool ht_bg_has_cond(void *arg)
{
    struct ht_bg_needle *n = arg;
    return ht_bg_has(n->b, n->needle);
}

static inline bool ht_bg_wait_for(struct ht_bg *b, const char *needle, int timeout_ms)
{
    struct ht_bg_needle n = {b, needle};
    return ht_wait(ht_bg_has_cond, &n, timeout_ms);
}

/* Joins the thread (the request must be finished or about to) and frees b. */
static inline void ht_bg_free(struct ht_bg *b)
{
    if (!b)
        return;
    pthread_join(b->thread, NULL);
    pthread_mutex_destroy(&b->mu);
    ht_resp_release(&b->r);
    free(b->url);
    free(b);
}

/* ---- raw sockets, for requests curl will not send ---- */

static inline int ht_connect(int port, int rcvbuf)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {10, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline bool ht_send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads until the peer closes (or the 10 s receive timeout); returns a malloc'd string. */
static inline char *ht_read_all(int fd)
{
    char *out = NULL;
    size_t len = 0;
    char buf[4096];

    ht_append(&out, &len, "", 0);
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            break;
        ht_append(&out, &len, buf, (size_t)n);
    }
    return out;
}

/* Sends a raw request on a new connection and returns everything the server sent back. */
static inline char *ht_raw(int port, const char *request, size_t len)
{
    int fd = ht_connect(port, 0);
    char *out = NULL;

    if (fd < 0)
        return dst_xstrdup("");
    ht_send_all(fd, request, len);
    out = ht_read_all(fd);
    close(fd);
    return out;
}

#endif
