/* http_server_priv.h - what the HTTP server's files (http_server.c, http_request.c, http_reply.c) share */
#ifndef DST_HTTP_SERVER_PRIV_H
#define DST_HTTP_SERVER_PRIV_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

#include "core/buf.h"
#include "core/http_cors.h"
#include "core/http_route.h"
#include "core/http_server.h"

#define CONN_MEMORY  (64 * 1024) /* libmicrohttpd's per-connection pool: headers, buffers */
#define HDR_INLINE   256
#define QUERY_INLINE 8

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

/* http_request.c: a request's life, from its first line to its reply */
struct dst_http_req *hs_req_new(struct dst_http_server *s, const char *uri);
void hs_req_free(struct dst_http_req *req);
enum MHD_Result hs_req_begin(struct dst_http_req *req, struct MHD_Connection *conn, const char *url,
                             const char *method);
enum MHD_Result hs_req_upload(struct dst_http_req *req, const char *data, size_t n);
enum MHD_Result hs_req_finish(struct dst_http_req *req);
void hs_deferred_cancel(struct dst_http_server *s);
void hs_deferred_unlink(struct dst_http_req *req); /* under srv->mu */

/* http_server.c: the connection under a request */
int hs_req_fd(const struct dst_http_req *req);
bool hs_tcp_sent(int fd, uint64_t *acked, uint64_t *written);

#endif
