/* http_route.h - the HTTP router: patterns, path normalisation, matching (http_server.c only) */
#ifndef DST_HTTP_ROUTE_H
#define DST_HTTP_ROUTE_H

/*
 * Core-internal, like store_backend.h: only http_server.c uses it (and its unit test). It needs
 * no libmicrohttpd. Nothing here allocates per request: matching reads the route table and the
 * path, and hands back pointers into both.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/http_server.h"

#define DST_HTTP_ROUTE_MAX_SEGS    16   /* segments in a route pattern */
#define DST_HTTP_ROUTE_MAX_PARAMS  8    /* "{name}" segments in a route pattern */
#define DST_HTTP_ROUTE_MAX_PATTERN 1024 /* bytes in a route pattern, NUL included */
#define DST_HTTP_ROUTE_MAX_METHOD  15   /* bytes in a method name, NUL excluded */

enum dst_http_seg_kind { DST_HTTP_SEG_LIT, DST_HTTP_SEG_PARAM, DST_HTTP_SEG_WILD };

struct dst_http_seg {
    uint16_t off; /* into the pattern; for a param, the name without braces */
    uint16_t len;
    uint8_t kind;
};

/* One route: method and parsed pattern, and what it leads to (the router only keeps that). */
struct dst_http_route {
    char method[DST_HTTP_ROUTE_MAX_METHOD + 1];
    char *pattern;
    struct dst_http_seg segs[DST_HTTP_ROUTE_MAX_SEGS];
    int nsegs;
    dst_http_handler_fn fn;
    void *ud;
    unsigned flags;
    size_t max_body;
};

/* The routes in the order they were added. Embedded: _init / _release. */
struct dst_http_router {
    struct dst_http_route *routes;
    size_t nroutes;
};

/* A matched "{name}" or "*" segment: pointers into the route's pattern and into the path. */
struct dst_http_route_param {
    const char *name; /* not NUL-terminated: name_len bytes */
    size_t name_len;
    const char *val; /* not NUL-terminated: val_len bytes */
    size_t val_len;
};

struct dst_http_route_match {
    int n;
    struct dst_http_route_param p[DST_HTTP_ROUTE_MAX_PARAMS + 1]; /* and "*" */
};

/* Starts rt empty. */
void dst_http_router_init(struct dst_http_router *rt);

/* Frees the routes' copies of their patterns and the table; rt is empty again. NULL is fine. */
void dst_http_router_release(struct dst_http_router *rt);

/*
 * Appends a route for method ("GET" also answers HEAD; "*" answers every method) and pattern; fn,
 * ud, flags and max_body are copied from *to (its other fields are ignored). pattern is '/' then
 * segments separated by '/': literals (no '{', '}', '*'; empty only as the last, as in "/" or
 * "/a/"), "{name}" (one non-empty path segment) or a final "*" (the rest of the path, possibly
 * empty). At most DST_HTTP_ROUTE_MAX_SEGS segments and DST_HTTP_ROUTE_MAX_PARAMS params, shorter
 * than DST_HTTP_ROUTE_MAX_PATTERN bytes. Returns DST_EINVAL on a bad method (NULL, "", longer than
 * DST_HTTP_ROUTE_MAX_METHOD) or pattern; rt is then unchanged. Copies method and pattern. Not
 * thread-safe: add every route before matching.
 */
int dst_http_router_add(struct dst_http_router *rt, const char *method, const char *pattern,
                        const struct dst_http_route *to);

/*
 * The first route, in the order added, whose pattern matches path (normalised, without query)
 * and whose method is method (a HEAD also takes GET routes). Literals match ignoring ASCII case.
 * On a match, fills *m with the route's params in pattern order (pointing into path, which must
 * outlive their use) and sets *status to 0. Otherwise returns NULL and sets *status to 405 if
 * some route matches path with another method, else to 404. Does not allocate.
 */
const struct dst_http_route *dst_http_router_find(const struct dst_http_router *rt,
                                                  const char *method, const char *path,
                                                  struct dst_http_route_match *m, int *status);

/*
 * Writes the methods of every route matching path into out as "GET, HEAD, PUT" (in route order,
 * each once, HEAD after GET), plus OPTIONS when options is set; "" when none. Methods that would
 * not fit in outlen (> 0) bytes are left out. For the Allow header of a 405.
 */
void dst_http_router_allow(const struct dst_http_router *rt, const char *path, bool options,
                           char *out, size_t outlen);

/*
 * Copies url, the request target's path as libmicrohttpd hands it (query already cut off,
 * %-escapes decoded, so a '?' in it is a decoded %3F and stays), into out: without a
 * case-insensitive "http://host[:port]" or "https://..." prefix (just "/" if the prefix is all
 * there is) and with every run of '/' collapsed to one. A trailing '/' stays. out must hold
 * strlen(url) + 1 bytes: the result is never longer than url. Does not allocate.
 */
void dst_http_route_normalize(const char *url, char *out);

/* The raw query of a request target: what follows its first '?', or "" (uri may be NULL). */
const char *dst_http_route_query_string(const char *uri);

/* The value of the first of the n args whose key equals name ignoring ASCII case; NULL if none. */
const char *dst_http_route_query_find(const struct dst_http_qarg *args, int n, const char *name);

#endif
