/* http_request.c - a request of the HTTP server: routing, body, CORS preflight, deferral, accessors */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/http_server_priv.h"
#include "core/log.h"
#include "core/mem.h"

#define OVERFLOW_DRAIN (8u << 20) /* body bytes read past the cap so the client sees its 413 */
#define CORS_METHODS   "GET, POST, PUT, DELETE, OPTIONS"

/* ---- the request ---- */

static char *arena_alloc(struct dst_http_req *req, size_t n)
{
    char *p = req->arena_pos;
    if ((size_t)(req->arena_end - p) < n)
        abort(); /* sized in hs_req_new from the URI length: a bug if it does not fit */
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
struct dst_http_req *hs_req_new(struct dst_http_server *s, const char *uri)
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

void hs_req_free(struct dst_http_req *req)
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
enum MHD_Result hs_req_begin(struct dst_http_req *req, struct MHD_Connection *conn, const char *url,
                             const char *method)
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
enum MHD_Result hs_req_upload(struct dst_http_req *req, const char *data, size_t n)
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
void hs_deferred_unlink(struct dst_http_req *req)
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
enum MHD_Result hs_req_finish(struct dst_http_req *req)
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
            hs_deferred_unlink(req);
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
void hs_deferred_cancel(struct dst_http_server *s)
{
    for (struct dst_http_req *r = s->deferred; r; r = r->dnext) {
        r->cancelled = true;
        if (r->suspended) {
            r->suspended = false;
            MHD_resume_connection(r->conn);
        }
    }
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
    int fd = hs_req_fd(req);
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

bool dst_http_json_ctype(const char *ctype)
{
    if (!ctype)
        return false;
    size_t n = strcspn(ctype, "; \t");
    if ((n == 16 && strncasecmp(ctype, "application/json", n) == 0) ||
        (n == 9 && strncasecmp(ctype, "text/json", n) == 0))
        return true;
    return n > 17 && strncasecmp(ctype, "application/", 12) == 0 &&
           strncasecmp(ctype + n - 5, "+json", 5) == 0;
}

void dst_http_req_on_done(struct dst_http_req *req, dst_http_done_fn fn, void *ud)
{
    uint64_t acked = 0;

    req->done_fn = fn;
    req->done_ud = ud;
    req->sent_known = hs_tcp_sent(hs_req_fd(req), &acked, &req->sent_before);
}

void dst_http_req_set_data(struct dst_http_req *req, void *data, void (*free_fn)(void *))
{
    if (req->data_free && req->data != data)
        req->data_free(req->data);
    req->data = data;
    req->data_free = free_fn;
}
