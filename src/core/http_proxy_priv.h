/* http_proxy_priv.h - the proxy's shared state: its transfers and its thread (core-internal) */
#ifndef DST_HTTP_PROXY_PRIV_H
#define DST_HTTP_PROXY_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/curl_lib.h"
#include "core/http_proxy.h"

#define DEFAULT_ATTEMPTS   2
#define DEFAULT_CONNECT_MS 1000
#define DEFAULT_HEADER_MS  30000
#define DEFAULT_IDLE_MS    60000
#define DEFAULT_BUFFER     (256u * 1024)
#define MAX_RESP_HEADERS   (64u * 1024)
#define IDLE_POLL_MS       1000
#define SPARE_HANDLES      32
#define KEEP_CONNECTIONS   256
/*
 * One forwarded request. Three owners hold a reference each: the proxy's thread (while the
 * upstream transfer runs), the request (until its done callback) and the reply stream (until
 * libmicrohttpd lets go of it); a queued command holds one more. Fields marked (T) belong to
 * the proxy's thread; the others are under mu.
 */
struct xfer {
    pthread_mutex_t mu;
    int refs;
    struct dst_http_proxy *p; /* not used on the request's side once its answer is in: the
                                 proxy may be freed before the continuation runs */
    char *id_header;          /* the proxy's, copied for that reason */
    struct dst_http_req *req; /* NULL once the request is over */
    struct dst_http_stream *stream;
    /* the request, copied (T reads them while the transfer runs) */
    char *method, *target, *body;
    size_t body_len;
    struct curl_slist *hdrs;
    bool has_key; /* it came with an Idempotency-Key: safe to send twice */
    /* the attempt (T) */
    CURL *e;
    int attempt, id, failed_id;
    int64_t deadline_ms; /* something must arrive by then: the headers (header_timeout_ms),
                            then each piece of the body (idle_timeout_ms); none while paused */
    bool in_multi, headers_done, timed_out, on_ready_list, on_release_list;
    bool event_stream;   /* the answer is text/event-stream */
    char last_fail[300]; /* the last failed attempt's reason */
    char errbuf[CURL_ERROR_SIZE];
    struct xfer *prev, *next, *ready_next, *release_next;
    /* the answer */
    int status;
    int64_t clen;        /* the upstream's Content-Length, -1 if none */
    struct dst_buf rhdr; /* response headers: "name\0value\0"... */
    bool ready;          /* headers in, or a final failure: the request was resumed */
    bool eof, cut;       /* the body is complete / the upstream failed in the middle of it */
    bool paused;         /* the upstream is paused: the buffer is full */
    int err_status;      /* a final failure: 400, 502, 503 or 504 */
    char err[300];
    struct dst_buf out; /* body bytes not yet sent: out.data[off, out.len) */
    size_t off;
    /* a command for the proxy's thread */
    bool queued, want_abort, want_unpause;
    struct xfer *cmd_next;
};

struct dst_http_proxy {
    struct dst_http_proxy_opts opts;
    char *name, *none_message, *id_header;
    struct dst_http_proxy_ops ops;
    void *ud;
    CURLM *multi;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu; /* guards the queues and flags below */
    struct xfer *q_new, *q_cmd;
    bool kick, stopping;
    bool woken; /* a wake-up was sent that the thread has not taken the queues for yet */
    /* (T) */
    bool halting; /* stopping: no new attempts */
    struct xfer *active, *ready, *release;
    int64_t next_deadline;
    CURL *spare[SPARE_HANDLES];
    int nspare;
};

/* Whether a header (name: len bytes) is hop-by-hop (or one the proxy sets itself): not passed on. */
bool proxy_hop(const char *name, size_t len);
/* Drops a reference to x; the last one frees it. */
void proxy_xfer_unref(struct xfer *x);
/* Marks a command for the proxy's thread as queued (under x->mu); false if it already is. */
bool proxy_cmd_queue_locked(struct xfer *x);
/* Queues x's command and wakes the proxy's thread. */
void proxy_cmd_push(struct xfer *x);
/*
 * curl's header callback of a transfer (ud: its struct xfer): reads the upstream's status
 * line, header lines and the blank line, one complete line (with its CRLF) per call, and the
 * trailers of a chunked body after them. Returns n * size, or 0 to fail the attempt.
 */
size_t proxy_on_header(char *data, size_t size, size_t n, void *ud);
/* The proxy's thread: runs the transfers (http_proxy_upstream.c). */
void *proxy_thread_main(void *arg);

#endif
