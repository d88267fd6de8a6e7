/* http_reply.c - the HTTP server's replies: headers, bodies, JSON, errors, streams */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/http_server_priv.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"

#define STREAM_BLOCK    (16 * 1024)
#define STREAM_BLOCK_MS 1000 /* thread_per_conn: longest wait of a stream's reader */

/* ---- replies ---- */

void dst_http_add_header(struct dst_http_req *req, const char *name, const char *value)
{
    size_t nl = strlen(name) + 1;
    size_t vl = strlen(value) + 1;

    if (req->hdr_more.len == 0 && req->hdr_len + nl + vl <= sizeof(req->hdr)) {
        memcpy(req->hdr + req->hdr_len, name, nl);
        memcpy(req->hdr + req->hdr_len + nl, value, vl);
        req->hdr_len += nl + vl;
        return;
    }
    if (!req->hdr_more.max)
        dst_buf_init(&req->hdr_more, CONN_MEMORY);
    if (dst_buf_append(&req->hdr_more, name, nl) != 0 ||
        dst_buf_append(&req->hdr_more, value, vl) != 0)
        dst_warn("%s: too many response headers; dropped %s", req->srv->name, name);
}

static void apply_headers(struct dst_http_req *req, struct MHD_Response *r, const char *p,
                          size_t len)
{
    const char *end = p + len;

    while (p < end) {
        const char *name = p;
        const char *value = name + strlen(name) + 1;
        if (MHD_add_response_header(r, name, value) != MHD_YES)
            dst_warn("%s: invalid response header %s", req->srv->name, name);
        p = value + strlen(value) + 1;
    }
}

/* Whether req can take a reply; logs the programmer error otherwise. */
static bool reply_ok(struct dst_http_req *req)
{
    if (!req->replied)
        return true;
    dst_error("%s: a second reply to %s %s was dropped", req->srv->name, req->method, req->path);
    return false;
}

/* Adds the headers, queues r and drops our reference to it. */
/* The cross-origin headers of a reply whose handler set none. */
static void cors_headers(const struct dst_http_req *req, struct MHD_Response *r)
{
    const char *origin = dst_http_req_header(req, "Origin");
    bool pub = req->route && (req->route->flags & DST_HTTP_CORS_PUBLIC);
    struct dst_http_cors_answer a = dst_http_cors_decide(&req->srv->cors, origin, req->method, pub);

    if (a.vary)
        MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Origin");
    if (a.allow_origin)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, a.allow_origin);
    if (a.credentials)
        MHD_add_response_header(r, "Access-Control-Allow-Credentials", "true");
}

static int reply_queue(struct dst_http_req *req, int status, const char *ctype,
                       struct MHD_Response *r, uint64_t len)
{
    struct dst_http_server *s = req->srv;
    int rc = 0;

    if (!r) {
        dst_error("%s: cannot create a response (out of memory?)", s->name);
        return DST_EDEP;
    }
    if (ctype)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    apply_headers(req, r, req->hdr, req->hdr_len);
    apply_headers(req, r, req->hdr_more.data, req->hdr_more.len);
    if (s->cors_on && !MHD_get_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN))
        cors_headers(req, r);
    if (atomic_load(&s->stopping))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (!req->conn || MHD_queue_response(req->conn, (unsigned)status, r) != MHD_YES) {
        dst_error("%s: cannot queue the %d reply to %s %s", s->name, status, req->method,
                  req->path);
        rc = DST_EDEP;
    } else {
        req->replied = true;
        req->status = status;
        req->bytes_out = req->head || status == 204 || status == 304 ? 0 : len;
    }
    MHD_destroy_response(r);
    return rc;
}

int dst_http_reply(struct dst_http_req *req, int status, const char *ctype, const void *body,
                   size_t len)
{
    if (!reply_ok(req))
        return DST_EINVAL;
    return reply_queue(req, status, ctype,
                       MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY),
                       len);
}

int dst_http_reply_take(struct dst_http_req *req, int status, const char *ctype, char *body,
                        size_t len)
{
    struct MHD_Response *r = NULL;

    if (!reply_ok(req)) {
        free(body);
        return DST_EINVAL;
    }
    r = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    if (!r)
        free(body);
    return reply_queue(req, status, ctype, r, len);
}

int dst_http_reply_static(struct dst_http_req *req, int status, const char *ctype, const void *body,
                          size_t len)
{
    if (!reply_ok(req))
        return DST_EINVAL;
    return reply_queue(req, status, ctype,
                       MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT),
                       len);
}

int dst_http_reply_shared(struct dst_http_req *req, int status, const char *ctype, const void *body,
                          size_t len, void *owner, void (*release)(void *))
{
    struct MHD_Response *r = NULL;

    if (!reply_ok(req)) {
        release(owner);
        return DST_EINVAL;
    }
    r = MHD_create_response_from_buffer_with_free_callback_cls(len, (void *)body, release, owner);
    if (!r)
        release(owner);
    return reply_queue(req, status, ctype, r, len);
}

int dst_http_reply_iovec(struct dst_http_req *req, int status, const char *ctype,
                         const struct dst_http_iov *iov, unsigned n)
{
    struct MHD_IoVec one = {"", 0};
    struct MHD_IoVec *v = NULL;
    struct MHD_Response *r = NULL;
    uint64_t len = 0;

    if (!reply_ok(req))
        return DST_EINVAL;
    v = n ? dst_xmalloc(n * sizeof(*v)) : &one;
    for (unsigned i = 0; i < n; i++) {
        v[i] = (struct MHD_IoVec){iov[i].base, iov[i].len};
        len += iov[i].len;
    }
    r = MHD_create_response_from_iovec(v, n ? n : 1, NULL, NULL); /* copies v */
    if (v != &one)
        free(v);
    return reply_queue(req, status, ctype, r, len);
}

int dst_http_reply_json(struct dst_http_req *req, int status, const json_t *j)
{
    size_t len = 0;
    char *body = dst_json_dumps(j, &len);

    if (!body) {
        dst_error("%s: cannot encode the JSON reply to %s %s", req->srv->name, req->method,
                  req->path);
        return dst_http_reply_error(req, 500, "internal error: cannot encode JSON");
    }
    return dst_http_reply_take(req, status, "application/json", body, len);
}

int dst_http_reply_error(struct dst_http_req *req, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    json_t *j = NULL;
    int rc = 0;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dst_json_text_fix(msg); /* it may quote raw bytes, or end in half a character */
    j = json_pack("{s:{s:i,s:s}}", "error", req->srv->error_key, status, "message", msg);
    rc = dst_http_reply_json(req, status, j);
    json_decref(j);
    return rc;
}

/* ---- streams ---- */

/*
 * With a thread per connection libmicrohttpd cannot suspend a connection (its resume may then
 * be missed, and the daemon never stops): the connection's own thread waits here instead, for a
 * wake or the end, and asks read again at least every STREAM_BLOCK_MS.
 */
static void stream_block(struct dst_http_stream *st)
{
    struct timespec dl;

    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += STREAM_BLOCK_MS / 1000;
    pthread_mutex_lock(&st->mu);
    while (!st->wake_pending && !st->ended)
        if (pthread_cond_timedwait(&st->cv, &st->mu, &dl) != 0)
            break;
    pthread_mutex_unlock(&st->mu);
}

/* libmicrohttpd's content reader: calls read, and sleeps the connection while it has nothing. */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct dst_http_stream *st = cls;

    (void)pos;
    for (;;) {
        pthread_mutex_lock(&st->mu);
        bool ended = st->ended;
        st->wake_pending = false;
        pthread_mutex_unlock(&st->mu);
        if (ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        long n = st->read(st->ud, buf, max);
        if (n == DST_HTTP_STREAM_ABORT)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (n < 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (n > 0) {
            st->bytes += (uint64_t)n;
            return (ssize_t)n;
        }
        if (st->srv->opts.thread_per_conn) {
            stream_block(st);
            continue;
        }
        /* Nothing yet: sleep unless a wake or the end came in while read ran. */
        pthread_mutex_lock(&st->mu);
        bool again = st->wake_pending || st->ended;
        if (!again) {
            st->suspended = true;
            MHD_suspend_connection(st->conn);
        }
        pthread_mutex_unlock(&st->mu);
        if (!again)
            return 0;
    }
}

/* libmicrohttpd is done with the response: tell the owner, then forget the stream. */
static void stream_on_free(void *cls)
{
    struct dst_http_stream *st = cls;
    struct dst_http_server *s = st->srv;

    pthread_mutex_lock(&st->mu);
    st->finished = true;
    pthread_mutex_unlock(&st->mu);
    st->done(st->ud);
    pthread_mutex_lock(&s->mu);
    if (st->prev)
        st->prev->next = st->next;
    else
        s->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    free(st);
}

int dst_http_reply_stream(struct dst_http_req *req, int status, const char *ctype,
                          dst_http_stream_read_fn read, void (*done)(void *ud), void *ud,
                          struct dst_http_stream **out)
{
    return dst_http_reply_stream_len(req, status, ctype, -1, read, done, ud, out);
}

int dst_http_reply_stream_len(struct dst_http_req *req, int status, const char *ctype, int64_t len,
                              dst_http_stream_read_fn read, void (*done)(void *ud), void *ud,
                              struct dst_http_stream **out)
{
    struct dst_http_server *s = req->srv;
    struct dst_http_stream *st = NULL;
    struct MHD_Response *r = NULL;
    int rc = 0;

    if (!reply_ok(req)) {
        done(ud);
        return DST_EINVAL;
    }
    st = dst_xnew(struct dst_http_stream);
    pthread_mutex_init(&st->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->cv, &ca);
    pthread_condattr_destroy(&ca);
    st->srv = s;
    st->conn = req->conn;
    st->read = read;
    st->done = done;
    st->ud = ud;
    r = MHD_create_response_from_callback(len < 0 ? MHD_SIZE_UNKNOWN : (uint64_t)len, STREAM_BLOCK,
                                          stream_reader, st, stream_on_free);
    if (!r) {
        pthread_mutex_destroy(&st->mu);
        pthread_cond_destroy(&st->cv);
        free(st);
        done(ud);
        return reply_queue(req, status, ctype, NULL, 0);
    }
    pthread_mutex_lock(&s->mu);
    st->ended = atomic_load(&s->stopping);
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    pthread_mutex_unlock(&s->mu);
    rc = reply_queue(req, status, ctype, r, 0); /* on failure, stream_on_free already ran */
    if (rc == 0) {
        req->stream = st;
        if (out)
            *out = st;
    }
    return rc;
}

void dst_http_stream_wake(struct dst_http_stream *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&st->mu);
    if (!st->finished) {
        if (st->suspended) {
            st->suspended = false;
            MHD_resume_connection(st->conn);
        } else {
            st->wake_pending = true;
            pthread_cond_signal(&st->cv);
        }
    }
    pthread_mutex_unlock(&st->mu);
}
