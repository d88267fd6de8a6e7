/* http_server.h - the HTTP server (libmicrohttpd): router, bodies, replies, streams, drain */
#ifndef DST_HTTP_SERVER_H
#define DST_HTTP_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dst_http_server;
struct dst_http_req;
struct dst_http_stream;

/*
 * A handler runs on a server thread once the whole request body is in (keep-alive is kept:
 * the reply is queued on libmicrohttpd's second call). It must send exactly one reply with
 * one of the dst_http_reply* functions; a handler that sends none gets a 500. It may block
 * briefly (a database query) but not for long: it holds one of the server's threads.
 */
typedef void (*dst_http_handler_fn)(struct dst_http_req *req, void *ud);

enum dst_http_route_flags {
    DST_HTTP_BODY_DISCARD = 1 << 0, /* count the body bytes but do not keep them (capped too) */
    DST_HTTP_CORS_PUBLIC = 1 << 1,  /* GETs answer "Access-Control-Allow-Origin: *" to any page */
};

struct dst_http_server_opts {
    const char *listen;    /* "HOST:PORT"; port 0 picks a free port */
    const char *name;      /* component name in log lines, e.g. "api" */
    size_t max_body;       /* default body cap per request in bytes (0 → 1 MiB); 413 beyond */
    unsigned threads;      /* worker threads (0 → 2) */
    unsigned conn_timeout; /* idle keep-alive timeout in seconds (0 → 60) */
    unsigned max_conns;    /* connection limit (0 → 1024) */
    bool access_log;       /* one info line per request: method path status bytes µs */
    /*
     * Cross-origin rules (core/http_cors.h): cors_any answers "Access-Control-Allow-Origin: *"
     * to every origin (public data, no credentials: the test server); cors_origins[0 ..
     * ncors_origins) are origins (each entry one or more, comma-separated, checked with
     * dst_http_cors_origins_check; copied) that may read and write with credentials. Routes
     * flagged DST_HTTP_CORS_PUBLIC answer GETs with "*". Preflights (OPTIONS with Origin and
     * Access-Control-Request-Method) are answered when any of these is in use.
     */
    bool cors_any;
    const char *const *cors_origins;
    size_t ncors_origins;
    bool quiet; /* do not print the "listening on" line (embedded servers) */
    /*
     * poll(2) instead of epoll. libmicrohttpd 0.9.75's epoll mode misses a client's FIN that
     * comes with the last bytes of an unfinished request body: a cut upload then lingers until
     * conn_timeout. poll sees it at once; for servers that take large uploads.
     */
    bool poll;
    /*
     * libmicrohttpd's memory per connection (0 → 64 KiB): headers, and the buffer a request
     * body is read into, so it bounds each recv(2). A server taking uploads at tens of Gbit/s
     * wants more (fewer system calls and callbacks per byte).
     */
    size_t conn_memory;
    /*
     * One thread per connection (libmicrohttpd's thread-per-connection mode) instead of a pool
     * of `threads`: a thread serves a client's whole keep-alive session, so a handler may block
     * on a call to a back end without holding up other clients. max_conns caps the threads.
     * libmicrohttpd cannot suspend a connection in this mode: a stream that has nothing to
     * send blocks its own thread instead (a wake or the end takes it on), and
     * dst_http_req_defer is not for such a server.
     */
    bool thread_per_conn;
    /*
     * The key of the status number in dst_http_reply_error's {"error":{KEY:N,"message":…}}
     * (NULL → "status"); the toy store's handout has "code".
     */
    const char *error_key;
};

/*
 * A cfg check for a cors_origins entry: one or more origins separated by commas, each
 * "http[s]://HOST[:PORT]" with nothing after (no path, no "*"). DST_EINVAL with a reason in err.
 */
int dst_http_cors_origins_check(const char *value, char *err, size_t errlen);

/*
 * A whole small service: creates a server from opts, lets mount(s, ud) add its routes, starts
 * it, serves until SIGTERM or SIGINT (dst_sig_wait), then stops (draining) and frees it.
 * Returns 0, or the first error (logged as "cannot start: ...").
 */
int dst_http_serve(const struct dst_http_server_opts *opts,
                   int (*mount)(struct dst_http_server *s, void *ud), void *ud);

/* Creates a server (not yet listening). DST_EINVAL if opts->listen does not parse. */
int dst_http_server_new(const struct dst_http_server_opts *opts, struct dst_http_server **out);

/*
 * Adds a route. method is "GET", "POST", ... ("GET" also answers HEAD; "*" answers every method).
 * pattern is a path whose segments are literals (matched ignoring ASCII case), "{name}" (one
 * segment, read with dst_http_req_param) or a final "*" (the rest, read with
 * dst_http_req_param(req, "*")). Routes are tried in the order they were added; the first match
 * wins. A path that matches only with other methods gets 405 with an Allow header; no match gets
 * 404. max_body 0 means the server default. Returns DST_EINVAL on a bad pattern. Add all routes
 * before start.
 */
int dst_http_server_route(struct dst_http_server *s, const char *method, const char *pattern,
                          dst_http_handler_fn fn, void *ud, unsigned flags, size_t max_body);

/*
 * Like dst_http_server_route, with begin(req, ud) called on a server thread as soon as a
 * request's headers are in and it took this route, before its body is read (and before a 413
 * for a too-large Content-Length): the place to mark a transfer active and to call
 * dst_http_req_on_done, so that even a request that never reaches fn (an upload the client
 * abandons) is accounted for. begin must not reply; the request's body is not in yet.
 */
int dst_http_server_route_begin(struct dst_http_server *s, const char *method, const char *pattern,
                                dst_http_handler_fn fn, dst_http_handler_fn begin, void *ud,
                                unsigned flags, size_t max_body);

/*
 * Binds and starts the worker threads, then prints "listening on http://HOST:PORT" (unless
 * quiet). DST_EIO if the address cannot be bound (the reason is logged).
 */
int dst_http_server_start(struct dst_http_server *s);

int dst_http_server_port(const struct dst_http_server *s);        /* the bound port, after start */
const char *dst_http_server_url(const struct dst_http_server *s); /* "http://HOST:PORT" */

/*
 * Stops gracefully: stops accepting, ends every open stream, lets requests in flight finish
 * for up to drain_ms, then closes what is left. Safe to call more than once.
 */
void dst_http_server_stop(struct dst_http_server *s, int drain_ms);
/* Stops first if needed (letting requests in flight finish for up to 1 s); NULL is fine. */
void dst_http_server_free(struct dst_http_server *s);

/*
 * Registers fn(p) to run when s is freed (after it has stopped), for data that must live as
 * long as the server, e.g. the ud of a route. Callbacks run in reverse order of registration.
 */
void dst_http_server_on_free(struct dst_http_server *s, void (*fn)(void *), void *p);

/* ---- the request: everything is borrowed and lives until the request completes ---- */

const char *dst_http_req_method(const struct dst_http_req *req);
/* The request target exactly as received (not decoded, with its query), e.g. for forwarding. */
const char *dst_http_req_uri(const struct dst_http_req *req);
/* Calls fn(ud, name, value) for each request header, in the order received. */
typedef void (*dst_http_header_fn)(void *ud, const char *name, const char *value);
void dst_http_req_headers(const struct dst_http_req *req, dst_http_header_fn fn, void *ud);
/* The path with duplicate slashes collapsed and any "scheme://host" prefix removed. */
const char *dst_http_req_path(const struct dst_http_req *req);
/* A "{name}" segment of the route, or "*" for the rest; NULL if the route has none. */
const char *dst_http_req_param(const struct dst_http_req *req, const char *name);
/* The first query argument with that name (ASCII case ignored), decoded; NULL if absent. */
const char *dst_http_req_query(const struct dst_http_req *req, const char *name);
/* The number of query arguments, and the i-th one (for reporting unknown arguments). */
int dst_http_req_query_count(const struct dst_http_req *req);
void dst_http_req_query_at(const struct dst_http_req *req, int i, const char **key,
                           const char **value);
/* A decoded query argument (key and value borrowed from whoever decoded them). */
struct dst_http_qarg {
    const char *key;
    const char *value;
};
/*
 * All the decoded query arguments, in their order, for parsers that work on (key, value) pairs
 * (and can be tested without a request): *args is borrowed like the rest of the request.
 * Returns their count.
 */
int dst_http_req_query_args(const struct dst_http_req *req, const struct dst_http_qarg **args);
/* The value of the first of the n args whose key is name, ASCII case ignored; NULL if none. */
const char *dst_http_query_find(const struct dst_http_qarg *args, int n, const char *name);
/* The raw query string (after '?', undecoded) or "" */
const char *dst_http_req_query_string(const struct dst_http_req *req);
const char *dst_http_req_header(const struct dst_http_req *req, const char *name);
/* The value of the request's cookie name (from its Cookie headers), or NULL. */
const char *dst_http_req_cookie(const struct dst_http_req *req, const char *name);
/* The body, NUL-terminated (len excludes the NUL); "" when there is none or it was discarded. */
const char *dst_http_req_body(const struct dst_http_req *req, size_t *len);
uint64_t dst_http_req_body_bytes(const struct dst_http_req *req); /* counted even if discarded */
const char *dst_http_req_client_ip(const struct dst_http_req *req);
/*
 * The local address the client connected to, as "HOST:PORT" ("[V6]:PORT" for IPv6, an
 * IPv4-mapped IPv6 address as plain IPv4) in buf. Returns 0, or DST_EIO if it is unknown or
 * does not fit in len bytes (buf is then "").
 */
int dst_http_req_local_addr(const struct dst_http_req *req, char *buf, size_t len);
/*
 * Whether a web page of another origin sent req (core/http_cors.h, dst_http_cors_foreign: the
 * Origin and Sec-Fetch-Site headers against the Host and the server's cors_origins). Writes
 * from such a page are to be refused: the browser sends them with the user's cookies.
 */
bool dst_http_req_foreign(const struct dst_http_req *req);
/*
 * Whether a Content-Type value declares JSON: application/json, text/json or application/...+json,
 * with any parameters. A write that demands it cannot come from a plain form or a no-cors fetch
 * of a foreign page: the browser preflights every other type.
 */
bool dst_http_json_ctype(const char *ctype);
/* Per-request scratch pointer for the handler, freed by free_fn when the request completes. */
void dst_http_req_set_data(struct dst_http_req *req, void *data, void (*free_fn)(void *));

/* What became of a request, for dst_http_req_on_done. */
struct dst_http_done {
    int status;        /* the reply's status; 0 if none was queued */
    bool complete;     /* the whole reply was handed to the socket (else aborted or cut) */
    uint64_t body_in;  /* request body bytes read, also discarded ones and those of a cut one */
    uint64_t body_out; /* reply body bytes: all when complete; else what the client's TCP
                          acknowledged during the request (capped at the body; may include
                          up to the reply's header bytes), 0 if that cannot be told */
};
typedef void (*dst_http_done_fn)(void *ud, const struct dst_http_done *d);

/*
 * Calls fn(ud, d) once when the request is over, whether it was answered, cut by the client or
 * ended by a stop; on a server thread, after the reply's last byte went to the socket. Call it
 * (once; a second call replaces the first) before replying: it notes how far the connection's
 * earlier traffic went, to tell how much of a cut reply arrived.
 */
void dst_http_req_on_done(struct dst_http_req *req, dst_http_done_fn fn, void *ud);

/*
 * Answers later, from another thread's event: instead of replying, a handler calls
 * dst_http_req_defer and returns; the connection sleeps (its thread serves others) until
 * dst_http_req_resume(req), which any thread may call; then cont(req, ud) runs on a server
 * thread, and must reply or defer again. cont may also run after a resume that came before the
 * handler returned, or more than once: it checks its own state. When the server stops, a
 * request still deferred after the drain gets a 503 without cont; its done callback
 * (dst_http_req_on_done) tells the owner to forget req, after which resume must not be called.
 */
void dst_http_req_defer(struct dst_http_req *req, dst_http_handler_fn cont, void *ud);
void dst_http_req_resume(struct dst_http_req *req);

/* ---- replies: exactly one per request ---- */

/* Adds a response header to the coming reply (copied). */
void dst_http_add_header(struct dst_http_req *req, const char *name, const char *value);

/* Copies body. ctype NULL → no Content-Type. Returns 0 or DST_EDEP if it could not queue. */
int dst_http_reply(struct dst_http_req *req, int status, const char *ctype, const void *body,
                   size_t len);
/* Takes body (malloc'd by the caller; freed by the server). */
int dst_http_reply_take(struct dst_http_req *req, int status, const char *ctype, char *body,
                        size_t len);
/* body lives for the whole process (embedded assets): no copy. */
int dst_http_reply_static(struct dst_http_req *req, int status, const char *ctype, const void *body,
                          size_t len);
/*
 * body belongs to a shared, reference-counted owner: release(owner) is called once the server
 * no longer needs body (for cached responses). No copy.
 */
int dst_http_reply_shared(struct dst_http_req *req, int status, const char *ctype, const void *body,
                          size_t len, void *owner, void (*release)(void *));
/* One slice of an iovec reply. */
struct dst_http_iov {
    const void *base;
    size_t len;
};
/*
 * The concatenation of n slices (the array is copied, the bytes are not: they must stay valid
 * until the server is freed, like a static body). For large bodies made of shared buffers.
 */
int dst_http_reply_iovec(struct dst_http_req *req, int status, const char *ctype,
                         const struct dst_http_iov *iov, unsigned n);
/* Dumps j (borrowed) as application/json. */
int dst_http_reply_json(struct dst_http_req *req, int status, const json_t *j);
/* {"error":{"status":STATUS,"message":"..."}} as application/json ("status": opts.error_key). */
int dst_http_reply_error(struct dst_http_req *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * A streaming reply of unknown length (chunked), e.g. server-sent events or a CSV export.
 * read(ud, buf, max) returns the number of bytes written into buf (>0), 0 when it has nothing
 * yet (the connection then sleeps until dst_http_stream_wake), or DST_HTTP_STREAM_END to end
 * the reply. done(ud) is called exactly once when the connection is finished with the stream
 * (after which ud is not used), also when this function fails; it must make sure nobody calls
 * dst_http_stream_wake on this stream afterwards. *out (may be NULL) receives the stream handle
 * for waking; it is written only on success.
 */
#define DST_HTTP_STREAM_END (-1)
/* Returned by read instead: the reply is cut (the connection closes without ending the body),
   so that the client can tell an incomplete body from a complete one. */
#define DST_HTTP_STREAM_ABORT (-2)
typedef long (*dst_http_stream_read_fn)(void *ud, char *buf, size_t max);
int dst_http_reply_stream(struct dst_http_req *req, int status, const char *ctype,
                          dst_http_stream_read_fn read, void (*done)(void *ud), void *ud,
                          struct dst_http_stream **out);
/* The same with a known length len (< 0: unknown): sent as Content-Length, not chunked. */
int dst_http_reply_stream_len(struct dst_http_req *req, int status, const char *ctype, int64_t len,
                              dst_http_stream_read_fn read, void (*done)(void *ud), void *ud,
                              struct dst_http_stream **out);
/* Wakes a sleeping stream so that read is called again. Thread-safe. */
void dst_http_stream_wake(struct dst_http_stream *st);

#endif
