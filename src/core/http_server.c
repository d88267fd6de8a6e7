/* http_server.c - the HTTP server (libmicrohttpd): requests, bodies, replies, streams, drain */
#include "core/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include <linux/sockios.h> /* SIOCOUTQ */
#include <linux/tcp.h>     /* struct tcp_info with tcpi_bytes_acked (glibc's lacks it) */
#include <microhttpd.h>

#include "core/buf.h"
#include "core/cfg.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/http_cors.h"
#include "core/http_route.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/sig.h"

#define CONN_MEMORY     (64 * 1024) /* libmicrohttpd's per-connection pool: headers, buffers */
#define OVERFLOW_DRAIN  (8u << 20)  /* body bytes read past the cap so the client sees its 413 */
#define STREAM_BLOCK    (16 * 1024)
#define STREAM_BLOCK_MS 1000 /* thread_per_conn: longest wait of a stream's reader */
#define FREE_DRAIN_MS   1000 /* when free has to stop the server */
#define DEFER_CANCEL_MS 200  /* for deferred requests to send their 503 when the server stops */
#define HDR_INLINE      256
#define QUERY_ARG_COST  64 /* libmicrohttpd's pool record per query argument (56 bytes, aligned) */
#define QUERY_INLINE    8
#define CORS_METHODS    "GET, POST, PUT, DELETE, OPTIONS"

struct on_free {
    void (*fn)(void *);
    void *p;
    struct on_free *next;
};

struct dst_http_server {
    struct dst_http_server_opts opts;
    char *listen;
    char *name;
    char *error_key; /* dst_http_reply_error's key of the status: "status" or opts.error_key */
    char host[256];
    int port;
    char url[300];
    struct dst_http_router router;
    struct dst_http_cors cors;
    bool cors_on;                /* any cross-origin rule in use: preflights are answered */
    dst_http_handler_fn *begins; /* per route (by index), from dst_http_server_route_begin */
    size_t nbegins;
    struct MHD_Daemon *daemon;
    atomic_int conns;     /* open connections */
    atomic_long inflight; /* requests between their request line and their completion */
    atomic_bool stopping;
    pthread_mutex_t mu; /* guards streams; with cv, the drain wait */
    pthread_cond_t cv;
    struct dst_http_stream *streams;
    struct dst_http_req *deferred; /* requests waiting for dst_http_req_resume */
    struct on_free *on_free;
};

struct dst_http_stream {
    pthread_mutex_t mu; /* guards the flags below */
    pthread_cond_t cv;  /* thread_per_conn: the reader's wait for a wake or the end */
    struct dst_http_server *srv;
    struct MHD_Connection *conn;
    dst_http_stream_read_fn read;
    void (*done)(void *ud);
    void *ud;
    uint64_t bytes;    /* only touched on the connection's thread */
    bool suspended;    /* we suspended the connection and nobody resumed it yet */
    bool wake_pending; /* a wake came while read was running */
    bool ended;        /* the server is stopping: end the reply */
    bool finished;     /* libmicrohttpd released the response: no more resume */
    struct dst_http_stream *prev, *next;
};

struct param {
    const char *name;
    size_t name_len;
    const char *value;
};

struct dst_http_req {
    struct dst_http_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    char *path;
    char *query_raw;
    const struct dst_http_route *route;
    int err_status;     /* 404 or 405 when no route takes the request */
    bool query_too_big; /* answered 414 in the first call: see query_fits */
    int nparams;
    struct param params[DST_HTTP_ROUTE_MAX_PARAMS + 1]; /* and "*" */
    int nquery;                                         /* -1 until collected */
    int query_cap;
    struct dst_http_qarg *query;
    struct dst_http_qarg query_inline[QUERY_INLINE];
    struct dst_buf body;
    uint64_t body_bytes;
    size_t max_body;
    bool started, keep_body, too_big, handled, replied, head;
    int status;
    uint64_t bytes_out;
    struct dst_http_stream *stream;
    char *uri; /* the request target as received: raw, with its query */
    /* dst_http_req_defer: the continuation, and its state (under srv->mu) */
    dst_http_handler_fn defer_fn;
    void *defer_ud;
    bool deferred, suspended, resume_pending, cancelled, listed;
    struct dst_http_req *dprev, *dnext; /* the server's list of deferred requests */
    int64_t start_us;
    void *data;
    void (*data_free)(void *);
    dst_http_done_fn done_fn;
    void *done_ud;
    uint64_t sent_before; /* bytes written to the socket before this request (done_fn only) */
    bool sent_known;
    char ip[INET6_ADDRSTRLEN];
    size_t hdr_len;
    char hdr[HDR_INLINE]; /* pending response headers: "name\0value\0"..., then hdr_more */
    struct dst_buf hdr_more;
    char *arena_pos; /* path, raw query and parameter values */
    char *arena_end;
    char arena[];
};

/* ---- the request ---- */

static char *arena_alloc(struct dst_http_req *req, size_t n)
{
    char *p = req->arena_pos;
    if ((size_t)(req->arena_end - p) < n)
        abort(); /* sized in req_new from the URI length: a bug if it does not fit */
    req->arena_pos += n;
    return p;
}

/* Picks the first route that takes the request and copies its parameters, or decides 404/405. */
static void route_find(struct dst_http_req *req)
{
    struct dst_http_route_match m;

    req->route =
        dst_http_router_find(&req->srv->router, req->method, req->path, &m, &req->err_status);
    if (!req->route)
        return;
    for (int k = 0; k < m.n; k++) {
        char *v = arena_alloc(req, m.p[k].val_len + 1);
        memcpy(v, m.p[k].val, m.p[k].val_len);
        v[m.p[k].val_len] = '\0';
        req->params[k] = (struct param){m.p[k].name, m.p[k].name_len, v};
    }
    req->nparams = m.n;
}

/* Runs the begin hook of the request's route, if it has one (dst_http_server_route_begin). */
static void route_begin(struct dst_http_req *req)
{
    const struct dst_http_server *s = req->srv;
    size_t i = req->route ? (size_t)(req->route - s->router.routes) : s->nbegins;

    if (i < s->nbegins && s->begins[i])
        s->begins[i](req, req->route->ud);
}

/* The request state, sized so that the path, the query and the parameters fit its arena. */
static struct dst_http_req *req_new(struct dst_http_server *s, const char *uri)
{
    size_t len = uri ? strlen(uri) : 0;
    size_t arena = 4 * (len + 1) + DST_HTTP_ROUTE_MAX_PARAMS + 8;
    struct dst_http_req *req = dst_xcalloc(1, sizeof(*req) + arena);
    const char *q = dst_http_route_query_string(uri);

    req->srv = s;
    req->nquery = -1;
    req->arena_pos = req->arena;
    req->arena_end = req->arena + arena;
    req->query_raw = arena_alloc(req, strlen(q) + 1);
    strcpy(req->query_raw, q);
    req->uri = arena_alloc(req, len + 1);
    memcpy(req->uri, uri ? uri : "", len + 1);
    if (s->opts.access_log)
        req->start_us = dst_monotonic_us();
    atomic_fetch_add(&s->inflight, 1);
    return req;
}

static void req_free(struct dst_http_req *req)
{
    if (req->data_free)
        req->data_free(req->data);
    dst_buf_release(&req->body);
    dst_buf_release(&req->hdr_more);
    if (req->query != req->query_inline)
        free(req->query);
    free(req);
}

/* A Content-Length value; UINT64_MAX when it overflows. */
static uint64_t content_length(const char *v)
{
    uint64_t n = 0;

    for (; *v >= '0' && *v <= '9'; v++) {
        if (n > (UINT64_MAX - 9) / 10)
            return UINT64_MAX;
        n = n * 10 + (uint64_t)(*v - '0');
    }
    return n;
}

static int reply_too_big(struct dst_http_req *req)
{
    dst_http_add_header(req, "Connection", "close");
    return dst_http_reply_error(req, 413, "the request body exceeds %zu bytes", req->max_body);
}

static int reply_query_too_big(struct dst_http_req *req)
{
    dst_http_add_header(req, "Connection", "close");
    return dst_http_reply_error(req, 414, "the query has too many arguments or is too long");
}

/* First call: the headers are in. Routes the request and checks the announced body size. */
static enum MHD_Result req_begin(struct dst_http_req *req, struct MHD_Connection *conn,
                                 const char *url, const char *method)
{
    struct dst_http_server *s = req->srv;
    const char *cl = NULL;
    const char *expect = NULL;
    uint64_t len = 0;

    req->started = true;
    req->conn = conn;
    req->method = method;
    req->head = strcmp(method, "HEAD") == 0;
    req->path = arena_alloc(req, strlen(url) + 2);
    dst_http_route_normalize(url, req->path);
    if (req->query_too_big) {
        req->handled = true;
        return reply_query_too_big(req) == 0 ? MHD_YES : MHD_NO;
    }
    route_find(req);
    route_begin(req);
    req->max_body = req->route && req->route->max_body ? req->route->max_body : s->opts.max_body;
    req->keep_body = req->route && !(req->route->flags & DST_HTTP_BODY_DISCARD);
    dst_buf_init(&req->body, req->max_body);
    cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    len = cl ? content_length(cl) : 0;
    if (len <= req->max_body)
        return MHD_YES;
    req->too_big = true;
    expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
    if (!expect && len - req->max_body <= OVERFLOW_DRAIN)
        return MHD_YES; /* the client sends the body anyway: read it, then answer 413 */
    /*
     * Answered now, in the first call: libmicrohttpd then sends 413 instead of "100 Continue",
     * skips the body and closes the connection. It makes no call between the headers and the
     * body, so a later answer would mean reading the whole oversized body first.
     */
    req->handled = true;
    return reply_too_big(req) == 0 ? MHD_YES : MHD_NO;
}

/* Upload call: keeps or counts the body; over the cap, drains a little so a 413 can follow. */
static enum MHD_Result req_upload(struct dst_http_req *req, const char *data, size_t n)
{
    req->body_bytes += n;
    if (req->too_big) /* past the drain allowance, give up: close without an answer */
        return req->body_bytes > (uint64_t)req->max_body + OVERFLOW_DRAIN ? MHD_NO : MHD_YES;
    if (req->body_bytes > req->max_body) {
        req->too_big = true;
        dst_buf_release(&req->body);
        return MHD_YES;
    }
    if (req->keep_body && dst_buf_append(&req->body, data, n) != 0) {
        req->too_big = true;
        dst_buf_release(&req->body);
    }
    return MHD_YES;
}

/* Whether the GET route of path is marked DST_HTTP_CORS_PUBLIC. */
static bool public_path(const struct dst_http_server *s, const char *path)
{
    struct dst_http_route_match m;
    int status = 0;
    const struct dst_http_route *r = dst_http_router_find(&s->router, "GET", path, &m, &status);
    return r && (r->flags & DST_HTTP_CORS_PUBLIC);
}

/* Whether req is a CORS preflight this server answers itself. */
static bool is_preflight(const struct dst_http_req *req)
{
    if (!req->srv->cors_on || strcmp(req->method, "OPTIONS") != 0)
        return false;
    return req->srv->cors.any || (dst_http_req_header(req, "Origin") &&
                                  dst_http_req_header(req, "Access-Control-Request-Method"));
}

/* A preflight: allowed (the methods the path takes) or not (no CORS headers at all). */
static void reply_preflight(struct dst_http_req *req)
{
    const struct dst_http_server *s = req->srv;
    const char *want = dst_http_req_header(req, "Access-Control-Request-Headers");
    const char *origin = dst_http_req_header(req, "Origin");
    const char *method = dst_http_req_header(req, "Access-Control-Request-Method");
    bool pub = public_path(s, req->path);
    struct dst_http_cors_answer a = dst_http_cors_decide(&s->cors, origin, method, pub);
    char allow[128];

    if (a.vary)
        dst_http_add_header(req, "Vary", "Origin");
    if (a.allow_origin) {
        if (s->cors.any)
            snprintf(allow, sizeof(allow), "%s", CORS_METHODS);
        else if (!a.credentials)
            snprintf(allow, sizeof(allow), "GET, HEAD");
        else
            dst_http_router_allow(&s->router, req->path, true, allow, sizeof(allow));
        dst_http_add_header(req, "Access-Control-Allow-Origin", a.allow_origin);
        if (a.credentials)
            dst_http_add_header(req, "Access-Control-Allow-Credentials", "true");
        dst_http_add_header(req, "Access-Control-Allow-Methods", allow);
        dst_http_add_header(req, "Access-Control-Allow-Headers", want && *want ? want : "*");
        dst_http_add_header(req, "Access-Control-Max-Age", "600");
    }
    dst_http_reply(req, 204, NULL, NULL, 0);
}

static enum MHD_Result req_settle(struct dst_http_req *req);

/* Takes req off its server's list of deferred requests; under srv->mu. */
static void deferred_unlink(struct dst_http_req *req)
{
    struct dst_http_server *s = req->srv;

    if (!req->listed)
        return;
    if (req->dprev)
        req->dprev->dnext = req->dnext;
    else
        s->deferred = req->dnext;
    if (req->dnext)
        req->dnext->dprev = req->dprev;
    req->listed = false;
    req->dprev = req->dnext = NULL;
}

/* Final call: the whole request is in. Answers it; MHD_NO closes the connection. */
static enum MHD_Result req_finish(struct dst_http_req *req)
{
    const struct dst_http_server *s = req->srv;

    if (req->listed)
        return req_settle(req); /* a deferred request was resumed (or cancelled) */
    if (req->handled)
        return MHD_NO; /* no reply could be queued: do not get called again */
    req->handled = true;
    if (req->too_big) {
        dst_http_reply_error(req, 413, "the request body exceeds %zu bytes", req->max_body);
    } else if (is_preflight(req) && (s->cors.any || req->err_status != 404)) {
        reply_preflight(req);
    } else if (req->err_status == 404) {
        dst_http_reply_error(req, 404, "no such resource: %s", req->path);
    } else if (req->err_status == 405) {
        char allow[128];
        dst_http_router_allow(&s->router, req->path, s->cors_on, allow, sizeof(allow));
        dst_http_add_header(req, "Allow", allow);
        dst_http_reply_error(req, 405, "method %s not allowed; allowed: %s", req->method, allow);
    } else {
        req->route->fn(req, req->route->ud);
        return req_settle(req);
    }
    return req->replied ? MHD_YES : MHD_NO;
}

/*
 * After a handler or a continuation ran: a deferred request goes to sleep (or runs its
 * continuation again at once if it was resumed meanwhile); one without a reply gets a 500.
 */
static enum MHD_Result req_settle(struct dst_http_req *req)
{
    struct dst_http_server *s = req->srv;

    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool run = false, cancel = req->cancelled;
        if (req->listed && (!req->deferred || req->resume_pending || cancel)) {
            /* leaving the list: resumed, cancelled, or the continuation replied */
            deferred_unlink(req);
            run = req->deferred;
        } else if (req->deferred && !req->listed && (req->resume_pending || cancel)) {
            run = true; /* resumed before it could sleep */
        } else if (req->deferred) {
            if (!req->listed) {
                req->dnext = s->deferred;
                if (s->deferred)
                    s->deferred->dprev = req;
                s->deferred = req;
                req->listed = true;
            }
            req->suspended = true;
            MHD_suspend_connection(req->conn);
            pthread_mutex_unlock(&s->mu);
            return MHD_YES;
        }
        req->resume_pending = false;
        req->deferred = false;
        pthread_mutex_unlock(&s->mu);
        if (!run)
            break;
        if (cancel) {
            dst_http_add_header(req, "Connection", "close");
            dst_http_reply_error(req, 503, "the server is stopping");
            break;
        }
        req->defer_fn(req, req->defer_ud);
    }
    if (!req->replied) {
        dst_error("%s: the handler of %s %s sent no reply", s->name, req->method, req->path);
        req->hdr_len = 0;
        dst_buf_reset(&req->hdr_more);
        dst_http_reply_error(req, 500, "internal error: no reply");
    }
    return req->replied ? MHD_YES : MHD_NO;
}

void dst_http_req_defer(struct dst_http_req *req, dst_http_handler_fn cont, void *ud)
{
    req->defer_fn = cont;
    req->defer_ud = ud;
    req->deferred = true;
}

void dst_http_req_resume(struct dst_http_req *req)
{
    struct dst_http_server *s = req->srv;

    pthread_mutex_lock(&s->mu);
    if (req->suspended) {
        req->suspended = false;
        req->resume_pending = true;
        MHD_resume_connection(req->conn);
    } else {
        req->resume_pending = true;
    }
    pthread_mutex_unlock(&s->mu);
}

/* Wakes every deferred request with a 503 (the server stops); under s->mu. */
static void deferred_cancel(struct dst_http_server *s)
{
    for (struct dst_http_req *r = s->deferred; r; r = r->dnext) {
        r->cancelled = true;
        if (r->suspended) {
            r->suspended = false;
            MHD_resume_connection(r->conn);
        }
    }
}

/* ---- libmicrohttpd callbacks ---- */

/*
 * Whether libmicrohttpd can hold the query's arguments. Right after on_uri it stores a record
 * per argument in the connection's memory pool, beside the request line and the read buffer;
 * when the pool runs out, 0.9.75 queues a 431 and then loses it (its request-line state
 * overwrites the error), so the connection hangs unanswered and its request never completes.
 * A target whose length plus QUERY_ARG_COST per argument fits half the pool cannot run it out:
 * the read buffer takes at most the other half.
 */
static bool query_fits(const struct dst_http_server *s, const char *uri)
{
    size_t pool = s->opts.conn_memory ? s->opts.conn_memory : (size_t)CONN_MEMORY;
    const char *q = strchr(uri, '?');
    size_t args = 1;

    if (!q)
        return true;
    for (const char *p = q + 1; *p; p++)
        args += *p == '&';
    return strlen(uri) + args * QUERY_ARG_COST <= pool / 2;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct dst_http_req *req = req_new(cls, uri);

    req->conn = conn;
    if (uri && !query_fits(cls, uri)) {
        /*
         * uri points into libmicrohttpd's (writable) read buffer, which it splits at the '?'
         * after this call: ending the string there leaves it no argument to store. The request
         * is answered 414 in its first call (req_begin).
         */
        char *q = (char *)strchr(uri, '?');
        q[1] = '\0';
        req->query_too_big = true;
    }
    return req;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct dst_http_req *req = *con_cls;

    (void)version;
    if (!req) {
        req = req_new(cls, url); /* not reached: on_uri runs first */
        req->conn = conn;
        *con_cls = req;
    }
    if (!req->started)
        return req_begin(req, conn, url, method);
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        return req_upload(req, upload, n);
    }
    return req_finish(req);
}

static void access_log(struct dst_http_req *req, enum MHD_RequestTerminationCode toe)
{
    int status = req->status;
    uint64_t bytes = req->stream ? req->stream->bytes : req->bytes_out;

    if (!status) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_HTTP_STATUS);
        status = ci ? (int)ci->http_status : 0;
    }
    dst_info("%s: %s %s %d %" PRIu64 " %" PRId64 " client=%s%s", req->srv->name,
             req->method ? req->method : "-", req->path ? req->path : "-", status, bytes,
             dst_monotonic_us() - req->start_us, dst_http_req_client_ip(req),
             toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted");
}

/* The connection's socket, or -1. */
static int req_fd(const struct dst_http_req *req)
{
    const union MHD_ConnectionInfo *ci =
        req->conn ? MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD) : NULL;
    return ci ? (int)ci->connect_fd : -1;
}

/*
 * The bytes of fd's stream its peer acknowledged, and (written not NULL) all written to it so
 * far: acknowledged plus still queued. false if the socket cannot tell (not TCP).
 */
static bool tcp_sent(int fd, uint64_t *acked, uint64_t *written)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    int queued = 0;

    memset(&ti, 0, sizeof(ti));
    if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked))
        return false;
    *acked = ti.tcpi_bytes_acked;
    if (written && ioctl(fd, SIOCOUTQ, &queued) != 0)
        return false;
    if (written)
        *written = *acked + (uint64_t)(queued > 0 ? queued : 0);
    return true;
}

/* Tells the request's done callback what became of it. */
static void req_done(struct dst_http_req *req, enum MHD_RequestTerminationCode toe)
{
    uint64_t total = req->stream ? req->stream->bytes : req->bytes_out;
    struct dst_http_done d = {.status = req->replied ? req->status : 0,
                              .complete =
                                  req->replied && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK,
                              .body_in = req->body_bytes};
    uint64_t acked = 0;

    if (d.complete)
        d.body_out = total;
    else if (req->replied && req->sent_known && tcp_sent(req_fd(req), &acked, NULL) &&
             acked > req->sent_before)
        d.body_out = acked - req->sent_before < total ? acked - req->sent_before : total;
    req->done_fn(req->done_ud, &d);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct dst_http_server *s = cls;
    struct dst_http_req *req = *con_cls;

    (void)conn;
    if (!req)
        return;
    *con_cls = NULL;
    if (req->listed) { /* closed while deferred (the server stopped) */
        pthread_mutex_lock(&s->mu);
        deferred_unlink(req);
        pthread_mutex_unlock(&s->mu);
    }
    if (s->opts.access_log)
        access_log(req, toe);
    if (req->done_fn)
        req_done(req, toe);
    req_free(req);
    if (atomic_fetch_sub(&s->inflight, 1) == 1 && atomic_load(&s->stopping)) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

/*
 * New connections are refused (closed at once) while stopping. MHD_quiesce_daemon is not used:
 * in libmicrohttpd 0.9.75 with a thread pool on epoll it races with the workers, which remove
 * the listen socket from their epoll sets themselves, and aborts ("Failed to remove listen FD
 * from epoll set"); the unit tests hit it.
 */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    const struct dst_http_server *s = cls;

    (void)addr;
    (void)len;
    return atomic_load(&s->stopping) ? MHD_NO : MHD_YES;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct dst_http_server *s = cls;

    (void)conn;
    (void)socket_context;
    atomic_fetch_add(&s->conns, toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
}

/* libmicrohttpd's messages about one misbehaving or vanished client: debug, not warn. */
static const char *const client_noise[] = {
    "Error processing request",  "Failed to send",
    "Failed to receive",         "Connection was closed",
    "Socket has been disc",      "Connection socket is closed",
    "Application reported",      "Closing connection",
    "Received HTTP/1.1 request", "Failed to parse `Content-L",
    "Too large value of",        "Processing thread terminating",
    "Failed to forward",         "Too late",
};

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    const struct dst_http_server *s = cls;
    enum dst_log_level lvl = DST_LOG_WARN;
    char msg[512];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\r\n")] = '\0';
    for (size_t i = 0; i < sizeof(client_noise) / sizeof(client_noise[0]); i++) {
        if (strncmp(msg, client_noise[i], strlen(client_noise[i])) == 0)
            lvl = DST_LOG_DEBUG;
    }
    dst_log(lvl, "%s: libmicrohttpd: %s", s->name, msg);
}

/* ---- the server ---- */

int dst_http_server_new(const struct dst_http_server_opts *opts, struct dst_http_server **out)
{
    struct dst_http_server *s = NULL;
    pthread_condattr_t ca;
    char host[256];
    char err[160];
    int port = 0;

    if (!opts ||
        dst_cfg_split_hostport(opts->listen, host, sizeof(host), &port, err, sizeof(err)) != 0) {
        dst_error("http server: %s", opts ? err : "no options");
        return DST_EINVAL;
    }
    s = dst_xnew(struct dst_http_server);
    s->opts = *opts;
    dst_http_router_init(&s->router);
    dst_http_cors_init(&s->cors, opts->cors_any, opts->cors_origins, opts->ncors_origins);
    s->cors_on = s->cors.any || s->cors.norigins > 0;
    s->opts.cors_origins = NULL; /* copied into s->cors */
    s->opts.ncors_origins = 0;
    s->listen = dst_xstrdup(opts->listen);
    s->name = dst_xstrdup(opts->name ? opts->name : "http");
    s->opts.listen = s->listen;
    s->opts.name = s->name;
    s->opts.max_body = opts->max_body ? opts->max_body : 1024 * 1024;
    s->opts.threads = opts->threads ? opts->threads : 2;
    s->opts.conn_timeout = opts->conn_timeout ? opts->conn_timeout : 60;
    s->opts.max_conns = opts->max_conns ? opts->max_conns : 1024;
    s->opts.error_key = NULL; /* opts may not outlive s; see error_key() */
    s->error_key = dst_xstrdup(opts->error_key ? opts->error_key : "status");
    memcpy(s->host, host, sizeof(host));
    s->port = port;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = s;
    return 0;
}

int dst_http_server_route(struct dst_http_server *s, const char *method, const char *pattern,
                          dst_http_handler_fn fn, void *ud, unsigned flags, size_t max_body)
{
    struct dst_http_route to = {.fn = fn, .ud = ud, .flags = flags, .max_body = max_body};

    if (!method || !*method || strlen(method) > DST_HTTP_ROUTE_MAX_METHOD || !pattern || !fn ||
        s->daemon)
        return DST_EINVAL;
    if (dst_http_router_add(&s->router, method, pattern, &to) != 0) {
        dst_error("%s: bad route pattern '%s'", s->name, pattern);
        return DST_EINVAL;
    }
    s->cors_on = s->cors_on || (flags & DST_HTTP_CORS_PUBLIC);
    return 0;
}

int dst_http_server_route_begin(struct dst_http_server *s, const char *method, const char *pattern,
                                dst_http_handler_fn fn, dst_http_handler_fn begin, void *ud,
                                unsigned flags, size_t max_body)
{
    int rc = dst_http_server_route(s, method, pattern, fn, ud, flags, max_body);

    if (rc != 0)
        return rc;
    s->begins = dst_xrealloc(s->begins, s->router.nroutes * sizeof(*s->begins));
    while (s->nbegins < s->router.nroutes)
        s->begins[s->nbegins++] = NULL;
    s->begins[s->nbegins - 1] = begin;
    return 0;
}

/* Fills ss with host (an IPv4 or IPv6 literal, or a name) and port; DST_EIO if unresolvable. */
static int resolve(const struct dst_http_server *s, struct sockaddr_storage *ss, bool *any6)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *ai = NULL;

    memset(ss, 0, sizeof(*ss));
    *any6 = false;
    if (inet_pton(AF_INET, s->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
    } else if (inet_pton(AF_INET6, s->host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        *any6 = IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr);
    } else {
        int rc = getaddrinfo(s->host, NULL, &hints, &ai);
        if (rc != 0) {
            dst_error("%s: cannot resolve %s: %s", s->name, s->host, gai_strerror(rc));
            return DST_EIO;
        }
        memcpy(ss, ai->ai_addr, ai->ai_addrlen);
        freeaddrinfo(ai);
    }
    if (ss->ss_family == AF_INET)
        v4->sin_port = htons((uint16_t)s->port);
    else
        v6->sin6_port = htons((uint16_t)s->port);
    return 0;
}

int dst_http_server_start(struct dst_http_server *s)
{
    unsigned flags = MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    struct sockaddr_storage ss;
    bool any6 = false;
    const union MHD_DaemonInfo *di = NULL;

    if (s->daemon)
        return DST_EINVAL;
    if (resolve(s, &ss, &any6) != 0)
        return DST_EIO;
    if (s->opts.thread_per_conn)
        flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                 (s->opts.poll ? MHD_USE_POLL : MHD_USE_AUTO);
    else
        flags |= s->opts.poll ? MHD_USE_POLL_INTERNAL_THREAD : MHD_USE_AUTO_INTERNAL_THREAD;
    if (ss.ss_family == AF_INET6)
        flags |= any6 ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
    atomic_store(&s->stopping, false);
    s->daemon = MHD_start_daemon(
        flags, 0, on_accept, s, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        /* no pool with a thread per connection (libmicrohttpd warns of a size 0): the slot
           then repeats the timeout, an option of the same type (unsigned int) */
        s->opts.thread_per_conn ? MHD_OPTION_CONNECTION_TIMEOUT : MHD_OPTION_THREAD_POOL_SIZE,
        s->opts.thread_per_conn ? s->opts.conn_timeout
                                : (s->opts.threads > 1 ? s->opts.threads : 0u),
        MHD_OPTION_CONNECTION_TIMEOUT, s->opts.conn_timeout, MHD_OPTION_CONNECTION_LIMIT,
        s->opts.max_conns, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        s->opts.conn_memory ? s->opts.conn_memory : (size_t)CONN_MEMORY,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_END);
    if (!s->daemon) {
        dst_error("%s: cannot listen on %s (see the libmicrohttpd message above)", s->name,
                  s->listen);
        return DST_EIO;
    }
    di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (di && di->port)
        s->port = di->port;
    snprintf(s->url, sizeof(s->url), "http://%s%s%s:%d", strchr(s->host, ':') ? "[" : "", s->host,
             strchr(s->host, ':') ? "]" : "", s->port);
    if (!s->opts.quiet)
        dst_log_listening("http", s->host, s->port);
    return 0;
}

int dst_http_server_port(const struct dst_http_server *s)
{
    return s->port;
}

const char *dst_http_server_url(const struct dst_http_server *s)
{
    return s->url;
}

static void stream_end(struct dst_http_stream *st)
{
    pthread_mutex_lock(&st->mu);
    st->ended = true;
    pthread_cond_signal(&st->cv);
    if (st->suspended && !st->finished) {
        st->suspended = false;
        MHD_resume_connection(st->conn);
    }
    pthread_mutex_unlock(&st->mu);
}

/* Waits until no request is in flight or drain_ms passed. */
static void drain_wait(struct dst_http_server *s, int drain_ms)
{
    struct timespec dl;

    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += drain_ms / 1000;
    dl.tv_nsec += (long)(drain_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (atomic_load(&s->inflight) > 0) {
        if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&s->mu);
}

void dst_http_server_stop(struct dst_http_server *s, int drain_ms)
{
    long left = 0;

    if (!s || !s->daemon)
        return;
    atomic_store(&s->stopping, true); /* on_accept refuses new connections from now on */
    pthread_mutex_lock(&s->mu);
    for (struct dst_http_stream *st = s->streams; st; st = st->next)
        stream_end(st);
    pthread_mutex_unlock(&s->mu);
    if (drain_ms > 0)
        drain_wait(s, drain_ms);
    pthread_mutex_lock(&s->mu);
    bool any = s->deferred != NULL;
    deferred_cancel(s);
    pthread_mutex_unlock(&s->mu);
    if (any)
        drain_wait(s, DEFER_CANCEL_MS);
    left = atomic_load(&s->inflight);
    if (left > 0)
        dst_warn("%s: closing %ld unfinished requests", s->name, left);
    dst_debug("%s: closing %d connections", s->name, atomic_load(&s->conns));
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
}

int dst_http_serve(const struct dst_http_server_opts *opts,
                   int (*mount)(struct dst_http_server *s, void *ud), void *ud)
{
    struct dst_http_server *s = NULL;
    int rc = dst_http_server_new(opts, &s);

    rc = rc ? rc : mount(s, ud);
    rc = rc ? rc : dst_http_server_start(s);
    if (rc == 0)
        dst_sig_wait(-1);
    else
        dst_error("cannot start: %s", dst_strerror(rc));
    dst_http_server_free(s);
    return rc;
}

void dst_http_server_on_free(struct dst_http_server *s, void (*fn)(void *), void *p)
{
    struct on_free *f = dst_xnew(struct on_free);

    f->fn = fn;
    f->p = p;
    f->next = s->on_free;
    s->on_free = f;
}

void dst_http_server_free(struct dst_http_server *s)
{
    if (!s)
        return;
    dst_http_server_stop(s, FREE_DRAIN_MS);
    while (s->on_free) {
        struct on_free *f = s->on_free;
        s->on_free = f->next;
        f->fn(f->p);
        free(f);
    }
    dst_http_router_release(&s->router);
    dst_http_cors_release(&s->cors);
    free(s->begins);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->listen);
    free(s->name);
    free(s->error_key);
    free(s);
}

/* ---- request accessors ---- */

const char *dst_http_req_method(const struct dst_http_req *req)
{
    return req->method;
}

const char *dst_http_req_uri(const struct dst_http_req *req)
{
    return req->uri;
}

struct header_walk {
    dst_http_header_fn fn;
    void *ud;
};

static enum MHD_Result header_each(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    const struct header_walk *w = cls;

    (void)kind;
    w->fn(w->ud, key, value ? value : "");
    return MHD_YES;
}

void dst_http_req_headers(const struct dst_http_req *req, dst_http_header_fn fn, void *ud)
{
    struct header_walk w = {fn, ud};

    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, header_each, &w);
}

const char *dst_http_req_path(const struct dst_http_req *req)
{
    return req->path;
}

const char *dst_http_req_param(const struct dst_http_req *req, const char *name)
{
    size_t n = strlen(name);

    for (int i = 0; i < req->nparams; i++) {
        const struct param *p = &req->params[i];
        if (p->name_len == n && memcmp(p->name, name, n) == 0)
            return p->value;
    }
    return NULL;
}

static enum MHD_Result query_collect(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct dst_http_req *req = cls;

    (void)kind;
    if (req->nquery == req->query_cap) {
        int cap = req->query_cap * 2;
        struct dst_http_qarg *q = dst_xmalloc((size_t)cap * sizeof(*q));
        memcpy(q, req->query, (size_t)req->nquery * sizeof(*q));
        if (req->query != req->query_inline)
            free(req->query);
        req->query = q;
        req->query_cap = cap;
    }
    req->query[req->nquery++] = (struct dst_http_qarg){key, value ? value : ""};
    return MHD_YES;
}

/* Collects the decoded query arguments once, in their order. */
static void query_load(struct dst_http_req *r)
{
    if (r->nquery >= 0)
        return;
    r->nquery = 0;
    r->query = r->query_inline;
    r->query_cap = QUERY_INLINE;
    if (r->conn && r->query_raw[0])
        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_collect, r);
}

const char *dst_http_req_query(const struct dst_http_req *req, const char *name)
{
    query_load((struct dst_http_req *)req);
    return dst_http_route_query_find(req->query, req->nquery, name);
}

int dst_http_req_query_count(const struct dst_http_req *req)
{
    query_load((struct dst_http_req *)req);
    return req->nquery;
}

void dst_http_req_query_at(const struct dst_http_req *req, int i, const char **key,
                           const char **value)
{
    query_load((struct dst_http_req *)req);
    *key = i >= 0 && i < req->nquery ? req->query[i].key : NULL;
    *value = i >= 0 && i < req->nquery ? req->query[i].value : NULL;
}

int dst_http_req_query_args(const struct dst_http_req *req, const struct dst_http_qarg **args)
{
    query_load((struct dst_http_req *)req);
    *args = req->query;
    return req->nquery;
}

const char *dst_http_query_find(const struct dst_http_qarg *args, int n, const char *name)
{
    return dst_http_route_query_find(args, n, name);
}

const char *dst_http_req_query_string(const struct dst_http_req *req)
{
    return req->query_raw;
}

const char *dst_http_req_header(const struct dst_http_req *req, const char *name)
{
    return req->conn ? MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name) : NULL;
}

const char *dst_http_req_cookie(const struct dst_http_req *req, const char *name)
{
    return req->conn ? MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, name) : NULL;
}

const char *dst_http_req_body(const struct dst_http_req *req, size_t *len)
{
    if (len)
        *len = req->body.data ? req->body.len : 0;
    return req->body.data ? req->body.data : "";
}

uint64_t dst_http_req_body_bytes(const struct dst_http_req *req)
{
    return req->body_bytes;
}

const char *dst_http_req_client_ip(const struct dst_http_req *req)
{
    struct dst_http_req *r = (struct dst_http_req *)req;
    const union MHD_ConnectionInfo *ci = NULL;
    const struct sockaddr *sa = NULL;

    if (r->ip[0] || !r->conn)
        return r->ip;
    ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->ip, sizeof(r->ip));
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->ip, sizeof(r->ip));
    return r->ip;
}

bool dst_http_req_foreign(const struct dst_http_req *req)
{
    return dst_http_cors_foreign(&req->srv->cors, dst_http_req_header(req, "Origin"),
                                 dst_http_req_header(req, "Host"),
                                 dst_http_req_header(req, "Sec-Fetch-Site"));
}

int dst_http_req_local_addr(const struct dst_http_req *req, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&ss;
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)&ss;
    int fd = req_fd(req);
    char host[INET6_ADDRSTRLEN] = "";
    int n = -1;

    if (len)
        buf[0] = '\0';
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return DST_EIO;
    if (ss.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
        inet_ntop(AF_INET, &v6->sin6_addr.s6_addr[12], host, sizeof(host));
        n = snprintf(buf, len, "%s:%u", host, ntohs(v6->sin6_port));
    } else if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
        n = snprintf(buf, len, "[%s]:%u", host, ntohs(v6->sin6_port));
    } else if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
        n = snprintf(buf, len, "%s:%u", host, ntohs(v4->sin_port));
    }
    if (n < 0 || (size_t)n >= len) {
        if (len)
            buf[0] = '\0';
        return DST_EIO;
    }
    return 0;
}

void dst_http_req_on_done(struct dst_http_req *req, dst_http_done_fn fn, void *ud)
{
    uint64_t acked = 0;

    req->done_fn = fn;
    req->done_ud = ud;
    req->sent_known = tcp_sent(req_fd(req), &acked, &req->sent_before);
}

void dst_http_req_set_data(struct dst_http_req *req, void *data, void (*free_fn)(void *))
{
    if (req->data_free && req->data != data)
        req->data_free(req->data);
    req->data = data;
    req->data_free = free_fn;
}

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
