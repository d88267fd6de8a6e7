/* http_route.c - the HTTP router: route patterns, path normalisation, matching (no MHD) */
#include "core/http_route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool ascii_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    }
    return true;
}

/* ---- patterns ---- */

/* Parses pattern into r->segs (r->nsegs starts at 0); DST_EINVAL on a bad pattern. */
static int route_parse(struct dst_http_route *r, const char *pattern)
{
    const char *p = pattern;
    int nparams = 0;

    if (*p != '/' || strlen(pattern) >= DST_HTTP_ROUTE_MAX_PATTERN)
        return DST_EINVAL;
    while (*p == '/') {
        p++;
        const char *e = strchrnul(p, '/');
        size_t n = (size_t)(e - p);
        if (r->nsegs == DST_HTTP_ROUTE_MAX_SEGS)
            return DST_EINVAL;
        struct dst_http_seg *g = &r->segs[r->nsegs++];
        g->off = (uint16_t)(p - pattern);
        g->len = (uint16_t)n;
        g->kind = DST_HTTP_SEG_LIT;
        if (n == 1 && *p == '*') {
            if (*e)
                return DST_EINVAL; /* "*" only at the end */
            g->kind = DST_HTTP_SEG_WILD;
        } else if (n >= 3 && p[0] == '{' && p[n - 1] == '}') {
            if (memchr(p + 1, '{', n - 2) || memchr(p + 1, '}', n - 2) ||
                ++nparams > DST_HTTP_ROUTE_MAX_PARAMS)
                return DST_EINVAL;
            g->kind = DST_HTTP_SEG_PARAM;
            g->off++;
            g->len -= 2;
        } else if (memchr(p, '{', n) || memchr(p, '}', n) || memchr(p, '*', n) || (n == 0 && *e)) {
            return DST_EINVAL;
        }
        p = e;
    }
    return 0;
}

void dst_http_router_init(struct dst_http_router *rt)
{
    rt->routes = NULL;
    rt->nroutes = 0;
}

void dst_http_router_release(struct dst_http_router *rt)
{
    if (!rt)
        return;
    for (size_t i = 0; i < rt->nroutes; i++)
        free(rt->routes[i].pattern);
    free(rt->routes);
    dst_http_router_init(rt);
}

int dst_http_router_add(struct dst_http_router *rt, const char *method, const char *pattern,
                        const struct dst_http_route *to)
{
    struct dst_http_route r = {
        .fn = to->fn, .ud = to->ud, .flags = to->flags, .max_body = to->max_body};

    if (!method || !*method || strlen(method) >= sizeof(r.method) || !pattern)
        return DST_EINVAL;
    if (route_parse(&r, pattern) != 0)
        return DST_EINVAL;
    strcpy(r.method, method);
    r.pattern = dst_xstrdup(pattern);
    rt->routes = dst_xrealloc(rt->routes, (rt->nroutes + 1) * sizeof(*rt->routes));
    rt->routes[rt->nroutes++] = r;
    return 0;
}

/* ---- matching: no allocation, this runs for every request ---- */

/* Matches path against r; records the parameters in m when not NULL. */
static bool route_match(const struct dst_http_route *r, const char *path,
                        struct dst_http_route_match *m)
{
    const char *p = path;
    int n = 0;

    for (int i = 0; i < r->nsegs; i++) {
        const struct dst_http_seg *g = &r->segs[i];
        const char *name = r->pattern + g->off;
        if (*p != '/')
            return false;
        p++;
        if (g->kind == DST_HTTP_SEG_WILD) {
            if (m)
                m->p[n++] = (struct dst_http_route_param){"*", 1, p, strlen(p)};
            break;
        }
        const char *e = strchrnul(p, '/');
        size_t len = (size_t)(e - p);
        if (g->kind == DST_HTTP_SEG_PARAM) {
            if (len == 0)
                return false;
            if (m)
                m->p[n++] = (struct dst_http_route_param){name, g->len, p, len};
        } else if (len != g->len || !ascii_ieq(p, name, len)) {
            return false;
        }
        p = e;
        if (i == r->nsegs - 1 && *p)
            return false;
    }
    if (m)
        m->n = n;
    return true;
}

const struct dst_http_route *dst_http_router_find(const struct dst_http_router *rt,
                                                  const char *method, const char *path,
                                                  struct dst_http_route_match *m, int *status)
{
    bool head = strcmp(method, "HEAD") == 0;
    bool path_known = false;

    for (size_t i = 0; i < rt->nroutes; i++) {
        const struct dst_http_route *r = &rt->routes[i];
        if (!route_match(r, path, m))
            continue;
        path_known = true;
        if (strcmp(r->method, method) != 0 && strcmp(r->method, "*") != 0 &&
            !(head && strcmp(r->method, "GET") == 0))
            continue;
        *status = 0;
        return r;
    }
    *status = path_known ? 405 : 404;
    return NULL;
}

void dst_http_router_allow(const struct dst_http_router *rt, const char *path, bool options,
                           char *out, size_t outlen)
{
    size_t n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < rt->nroutes; i++) {
        const struct dst_http_route *r = &rt->routes[i];
        const char *ms[2] = {r->method, strcmp(r->method, "GET") == 0 ? "HEAD" : NULL};
        if (!route_match(r, path, NULL))
            continue;
        for (int k = 0; k < 2 && ms[k]; k++) {
            char item[24];
            snprintf(item, sizeof(item), "%s, ", ms[k]);
            if (strstr(out, item) || n + strlen(item) >= outlen)
                continue;
            memcpy(out + n, item, strlen(item) + 1);
            n += strlen(item);
        }
    }
    if (options && !strstr(out, "OPTIONS, ") && n + 10 < outlen)
        n += (size_t)sprintf(out + n, "OPTIONS, ");
    if (n >= 2)
        out[n - 2] = '\0';
}

/* ---- the request target ---- */

void dst_http_route_normalize(const char *url, char *out)
{
    const char *p = url;
    char *o = out;

    if (ascii_ieq(p, "http://", 7) || ascii_ieq(p, "https://", 8)) {
        p = strchrnul(p + (p[4] == ':' ? 7 : 8), '/');
        if (!*p)
            p = "/";
    }
    for (; *p; p++) {
        if (*p == '/' && o > out && o[-1] == '/')
            continue;
        *o++ = *p;
    }
    *o = '\0';
}

const char *dst_http_route_query_string(const char *uri)
{
    const char *q = uri ? strchr(uri, '?') : NULL;

    return q ? q + 1 : "";
}

const char *dst_http_route_query_find(const struct dst_http_qarg *args, int n, const char *name)
{
    size_t len = strlen(name);

    for (int i = 0; i < n; i++) {
        if (strlen(args[i].key) == len && ascii_ieq(args[i].key, name, len))
            return args[i].value;
    }
    return NULL;
}
