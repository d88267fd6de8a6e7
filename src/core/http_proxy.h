/* http_proxy.h - forwards HTTP requests to upstream servers (libcurl), streaming answers back */
#ifndef DST_HTTP_PROXY_H
#define DST_HTTP_PROXY_H

#include <stdbool.h>
#include <stddef.h>

struct dst_http_req;
struct dst_http_proxy;

/* The upstream of one attempt. */
struct dst_http_upstream {
    int id;         /* the caller's number for it, e.g. a backend's index */
    char base[256]; /* "http://HOST:PORT", no trailing slash */
};

/*
 * The caller's side, called on the proxy's thread (keep them quick; they may take a lock).
 * pick: the upstream for attempt n (0 first) of a request; failed is the id whose attempt just
 * failed (-1 on the first). false: there is none, and the request ends with a 503 (opts
 * none_message) if none was ever tried, else with a 502/504 naming the last failure.
 * keep: false to abandon upstream id's transfer (its upstream went down; or, event_stream, an
 * event stream that should move to another upstream): retried elsewhere while nothing was sent
 * to the client, else the client's reply is cut (an EventSource then reconnects). NULL: keep.
 * report: how an attempt ended, for counters: ok with the upstream's status, or a reason.
 */
struct dst_http_proxy_ops {
    bool (*pick)(void *ud, int attempt, int failed, struct dst_http_upstream *out);
    bool (*keep)(void *ud, int id, bool event_stream);
    void (*report)(void *ud, int id, bool ok, int status, const char *reason);
};

struct dst_http_proxy_opts {
    const char *name;         /* in log lines */
    int attempts;             /* upstreams tried per request (0 → 2: the first and one retry) */
    int connect_timeout_ms;   /* 0 → 1000 */
    int header_timeout_ms;    /* per attempt, until the response headers are in (0 → 30000) */
    int idle_timeout_ms;      /* then the longest silence of the upstream within the body, like
                                 nginx's proxy_read_timeout (0 → 60000); the reply is cut */
    size_t buffer;            /* response bytes held per request before the upstream is paused
                                 (0 → 256 KiB); a complete answer up to this size is sent with
                                 its length, a longer or slower one streams */
    const char *none_message; /* the 503's message when no upstream is up (NULL: a default) */
    const char *id_header;    /* a response header that names the id that answered, or NULL */
    bool retry_unsafe;        /* retry POST and PATCH even after they were sent (a failure then
                                 may come after the upstream carried them out) */
};

/* Starts the proxy's thread (libcurl is loaded then). DST_EDEP when libcurl is missing. */
int dst_http_proxy_new(const struct dst_http_proxy_opts *opts, const struct dst_http_proxy_ops *ops,
                       void *ud, struct dst_http_proxy **out);
/* Abandons what is in flight (clients get a 502 or a cut reply) and stops. NULL is fine. */
void dst_http_proxy_free(struct dst_http_proxy *p);

/*
 * Forwards req: method, request target, headers (minus hop-by-hop ones, plus X-Forwarded-*) and
 * body go to the upstream pick chooses; its status, headers and body come back, streamed as
 * they arrive (server-sent events pass through). Call from a route's handler and return: the
 * request is deferred until the answer is there. A failure or a header timeout before anything
 * was sent to the client is retried on the next upstream, unless the request is a POST or PATCH
 * that reached the upstream (like nginx's proxy_next_upstream; see retry_unsafe) and carries no
 * Idempotency-Key header (with one, its sender says that a second copy does no harm).
 */
void dst_http_proxy_forward(struct dst_http_proxy *p, struct dst_http_req *req);

/* Asks the proxy to call keep() for its transfers now (an upstream's state changed). */
void dst_http_proxy_kick(struct dst_http_proxy *p);

#endif
