/* http_client.h - HTTP client calls (libcurl) with deadlines and body caps */
#ifndef DST_HTTP_CLIENT_H
#define DST_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

struct dst_http_client;

/* What came back. body is NUL-terminated (len excludes it); err names a transport failure. */
struct dst_http_resp {
    long status; /* 0 when no response arrived */
    char *body;
    size_t len;
    char ctype[128];
    char err[256];
};

struct dst_http_call {
    const char *method; /* "GET" (default when NULL), "POST", "PUT", "DELETE" */
    const char *url;
    const char *body;            /* NULL: none */
    size_t body_len;             /* 0 with a body: strlen(body) */
    const char *content_type;    /* e.g. "application/json" */
    const char *bearer;          /* Authorization: Bearer ...; NULL: none */
    const char *idempotency_key; /* Idempotency-Key: sending it twice does no harm (a proxy may
                                    then retry it elsewhere); NULL: none */
    long timeout_ms;             /* whole call; 0 → 10000 */
    long connect_timeout_ms;     /* 0 → min(timeout, 5000) */
    size_t max_body;             /* response cap; 0 → 16 MiB; DST_ETOOBIG beyond */
    long idle_ms;                /* dst_http_client_stream only: see there */
};

/*
 * libcurl is initialised on the first dst_http_client_new (thread-safe), so processes that
 * never call out do not pay for it. Cleanup at exit, after every client is freed (optional).
 */
void dst_http_client_global_cleanup(void);

/* A client keeps its connections alive between calls. One thread at a time per client. */
int dst_http_client_new(struct dst_http_client **out);
void dst_http_client_free(struct dst_http_client *c);

/*
 * Makes one call. Returns 0 when an HTTP response arrived (whatever its status: check
 * resp->status), DST_ETIMEDOUT on a deadline, DST_ETOOBIG past max_body, DST_EDEP for any
 * other transport failure (DNS, refused, reset, TLS); resp->err then holds curl's message,
 * e.g. "Failed to connect to 127.0.0.1 port 9 after 0 ms: Couldn't connect to server".
 * resp must be released with dst_http_resp_release in every case.
 */
int dst_http_client_do(struct dst_http_client *c, const struct dst_http_call *call,
                       struct dst_http_resp *resp);

/*
 * A call whose response body is handed to fn(ud, p, n) piece by piece as it arrives (an event
 * stream) instead of being collected, when the status is 200 (any other status ends the call
 * at once: resp->status tells it). fn returns false to end the call; fn(ud, NULL, 0) is also
 * called about once a second, to ask whether to go on. call->timeout_ms 0 means no deadline
 * for the whole call; call->idle_ms (0: none) ends it after that long without a byte.
 * Returns 0 when the server ended the body or fn said stop, else as dst_http_client_do.
 * Blocks for as long as the stream lasts. resp is released with dst_http_resp_release.
 */
typedef bool (*dst_http_data_fn)(void *ud, const char *p, size_t n);
int dst_http_client_stream(struct dst_http_client *c, const struct dst_http_call *call,
                           dst_http_data_fn fn, void *ud, struct dst_http_resp *resp);

/* One-shot call on a temporary client. */
int dst_http_do(const struct dst_http_call *call, struct dst_http_resp *resp);

void dst_http_resp_release(struct dst_http_resp *resp);

#endif
