/* http_cors.h - an HTTP server's cross-origin rules (CORS): which web origin may read or write */
#ifndef DST_HTTP_CORS_H
#define DST_HTTP_CORS_H

/*
 * Core-internal: http_server.c applies these rules to every reply and answers preflights with
 * them. A browser lets a page of another origin read an answer only if the answer names that
 * origin (or "*"), and sends a write with a non-simple method or content type only after a
 * preflight allowed it. The rules:
 *   - an origin on the server's list may read and write, with credentials (cookies);
 *   - a server made with cors_any answers "*" to everyone (public data, no credentials);
 *   - a route marked DST_HTTP_CORS_PUBLIC answers its GETs with "*" to everyone;
 *   - every other cross-origin request gets no CORS headers, so the browser keeps the answer
 *     from the page and refuses to send preflighted writes.
 */

#include <stdbool.h>
#include <stddef.h>

struct dst_http_cors {
    bool any;
    char **origins; /* exact "scheme://host[:port]", lower case */
    size_t norigins;
};

/*
 * Sets c from the server's options: origins[0 .. n) each hold one or more origins separated by
 * commas (already checked with dst_http_cors_origins_check; others are skipped).
 */
void dst_http_cors_init(struct dst_http_cors *c, bool any, const char *const *origins, size_t n);
void dst_http_cors_release(struct dst_http_cors *c);

/* Whether origin is on the list (exact, ASCII case ignored). */
bool dst_http_cors_listed(const struct dst_http_cors *c, const char *origin);

/* What a reply (or a preflight for method) to a request from origin gets. */
struct dst_http_cors_answer {
    const char *allow_origin; /* Access-Control-Allow-Origin, or NULL for none */
    bool credentials;         /* Access-Control-Allow-Credentials: true */
    bool vary;                /* Vary: Origin (the answer depends on the Origin) */
};
struct dst_http_cors_answer dst_http_cors_decide(const struct dst_http_cors *c, const char *origin,
                                                 const char *method, bool public_route);

/*
 * Whether a request was sent by a page of a foreign origin, from what the browser says of it:
 * origin (the Origin header, may be NULL), host (the Host header the request went to) and
 * fetch_site (Sec-Fetch-Site, may be NULL). A listed origin, or one equal to http(s)://host, is
 * not foreign; "null" and any other origin are; without an Origin, a Sec-Fetch-Site of
 * "cross-site" or "same-site" is. A client that is not a browser sends neither: not foreign.
 */
bool dst_http_cors_foreign(const struct dst_http_cors *c, const char *origin, const char *host,
                           const char *fetch_site);

#endif
