/* http_server.c - the HTTP server (libmicrohttpd): the daemon, its callbacks, start, drain, stop */
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

#include "core/cfg.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/http_server_priv.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/sig.h"

#define FREE_DRAIN_MS   1000 /* when free has to stop the server */
#define DEFER_CANCEL_MS 200  /* for deferred requests to send their 503 when the server stops */
#define QUERY_ARG_COST  64 /* libmicrohttpd's pool record per query argument (56 bytes, aligned) */

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
    struct dst_http_req *req = hs_req_new(cls, uri);

    req->conn = conn;
    if (uri && !query_fits(cls, uri)) {
        /*
         * uri points into libmicrohttpd's (writable) read buffer, which it splits at the '?'
         * after this call: ending the string there leaves it no argument to store. The request
         * is answered 414 in its first call (hs_req_begin).
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
        req = hs_req_new(cls, url); /* not reached: on_uri runs first */
        req->conn = conn;
        *con_cls = req;
    }
    if (!req->started)
        return hs_req_begin(req, conn, url, method);
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        return hs_req_upload(req, upload, n);
    }
    return hs_req_finish(req);
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
int hs_req_fd(const struct dst_http_req *req)
{
    const union MHD_ConnectionInfo *ci =
        req->conn ? MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD) : NULL;
    return ci ? (int)ci->connect_fd : -1;
}

/*
 * The bytes of fd's stream its peer acknowledged, and (written not NULL) all written to it so
 * far: acknowledged plus still queued. false if the socket cannot tell (not TCP).
 */
bool hs_tcp_sent(int fd, uint64_t *acked, uint64_t *written)
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
    else if (req->replied && req->sent_known && hs_tcp_sent(hs_req_fd(req), &acked, NULL) &&
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
        hs_deferred_unlink(req);
        pthread_mutex_unlock(&s->mu);
    }
    if (s->opts.access_log)
        access_log(req, toe);
    if (req->done_fn)
        req_done(req, toe);
    hs_req_free(req);
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
    struct MHD_OptionItem o[12];
    int n = 0;
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, s};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    if (!s->opts.thread_per_conn && s->opts.threads > 1) /* size 0 or 1: a warning, no pool */
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, s->opts.threads, NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, s->opts.conn_timeout, NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, s->opts.max_conns, NULL};
    o[n++] = (struct MHD_OptionItem){
        MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (intptr_t)(s->opts.conn_memory ? s->opts.conn_memory : (size_t)CONN_MEMORY), NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, s};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, s};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    s->daemon = MHD_start_daemon(flags, 0, on_accept, s, on_request, s, MHD_OPTION_ARRAY, o,
                                 MHD_OPTION_END);
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
    hs_deferred_cancel(s);
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
