/* http_shared.c - what the test server's two HTTP protocols share: payload, accounting, client */
#include "speedtest/server/http_shared.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "core/err.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/mem.h"
#include "speedtest/server/server_priv.h"

static pthread_mutex_t payload_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *payload; /* guarded by payload_mu */
static int payload_refs;

/* Fills buf with len bytes from the kernel's random source (urandom). */
static int fill_random(unsigned char *buf, size_t len)
{
    size_t off = 0;

    while (off < len) {
        ssize_t n = getrandom(buf + off, len - off, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            dst_error("server: getrandom: %s", n < 0 ? strerror(errno) : "no bytes");
            return DST_EIO;
        }
        off += (size_t)n;
    }
    return 0;
}

void server_payload_acquire(void)
{
    pthread_mutex_lock(&payload_mu);
    payload_refs++;
    pthread_mutex_unlock(&payload_mu);
}

const unsigned char *server_payload(void)
{
    pthread_mutex_lock(&payload_mu);
    if (!payload && payload_refs > 0) {
        payload = dst_xmalloc(SERVER_PAYLOAD_SIZE);
        if (fill_random(payload, SERVER_PAYLOAD_SIZE) != 0) {
            free(payload);
            payload = NULL;
        }
    }
    const unsigned char *p = payload;
    pthread_mutex_unlock(&payload_mu);
    return p;
}

int server_payload_reply(struct dst_http_req *req, const char *ctype, size_t size)
{
    const unsigned char *buf = server_payload();
    if (!buf)
        return dst_http_reply_error(req, 503, "no random bytes from the kernel for the payload");
    size_t n = (size + SERVER_PAYLOAD_SIZE - 1) / SERVER_PAYLOAD_SIZE;
    struct dst_http_iov *iov = dst_xmalloc((n ? n : 1) * sizeof(*iov));

    for (size_t i = 0; i < n; i++) {
        size_t left = size - i * SERVER_PAYLOAD_SIZE;
        iov[i] =
            (struct dst_http_iov){buf, left < SERVER_PAYLOAD_SIZE ? left : SERVER_PAYLOAD_SIZE};
    }
    int rc = dst_http_reply_iovec(req, 200, ctype, iov, (unsigned)n);
    free(iov);
    return rc;
}

void server_payload_release(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&payload_mu);
    if (payload_refs > 0 && --payload_refs == 0) {
        free(payload);
        payload = NULL;
    }
    pthread_mutex_unlock(&payload_mu);
}

/* ---- accounting ---- */

static void route_done(void *ud, const struct dst_http_done *d)
{
    const struct server_route *r = ud;
    bool ok = d->status >= 200 && d->status < 400;

    server_count_request(r->s, r->protocol, ok ? r->kind : "error");
    if (r->payload == SERVER_BYTES_IN && d->body_in)
        server_count_bytes(r->s, r->protocol, true, d->body_in);
    if (r->payload == SERVER_BYTES_OUT && ok && d->body_out)
        server_count_bytes(r->s, r->protocol, false, d->body_out);
    server_idle(r->s);
}

/* The request's headers are in: the transfer starts now; route_done ends it. */
static void route_begin(struct dst_http_req *req, void *ud)
{
    const struct server_route *r = ud;

    server_busy(r->s);
    dst_http_req_on_done(req, route_done, ud);
}

int server_route_add(struct dst_http_server *h, const struct server_route *r, const char *method,
                     const char *pattern, dst_http_handler_fn fn, unsigned flags, size_t max_body)
{
    return dst_http_server_route_begin(h, method, pattern, fn, route_begin, (void *)r, flags,
                                       max_body);
}

/* ---- the client's address ---- */

static bool is_loopback(const char *ip)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (inet_pton(AF_INET, ip, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, ip, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return false;
}

/* Copies the first comma-separated item of v, trimmed, into buf if it is an IP address. */
static bool first_ip(const char *v, char *buf, size_t len)
{
    char tmp[INET6_ADDRSTRLEN];
    unsigned char any[sizeof(struct in6_addr)];
    size_t n = 0;

    if (!v)
        return false;
    v += strspn(v, " \t");
    n = strcspn(v, ", \t");
    if (n == 0 || n >= sizeof(tmp) || n >= len)
        return false;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    if (inet_pton(AF_INET, tmp, any) != 1 && inet_pton(AF_INET6, tmp, any) != 1)
        return false;
    memcpy(buf, tmp, n + 1);
    return true;
}

void server_client_ip(const struct dst_http_req *req, char *buf, size_t len)
{
    const char *peer = dst_http_req_client_ip(req);

    if (!len)
        return;
    if (!is_loopback(peer) || (!first_ip(dst_http_req_header(req, "X-Forwarded-For"), buf, len) &&
                               !first_ip(dst_http_req_header(req, "X-Real-IP"), buf, len)))
        snprintf(buf, len, "%s", peer);
    if (strncasecmp(buf, "::ffff:", 7) == 0 && strchr(buf + 7, '.'))
        memmove(buf, buf + 7, strlen(buf + 7) + 1);
}
