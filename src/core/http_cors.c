/* http_cors.c - an HTTP server's cross-origin rules (CORS): which web origin may read or write */
#include "core/http_cors.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/http_server.h"
#include "core/mem.h"

#define ORIGIN_MAX 255

/* Whether s[0 .. n) is "http[s]://HOST[:PORT]"; a reason in err when not. */
static bool origin_ok(const char *s, size_t n, char *err, size_t errlen)
{
    size_t skip = n >= 7 && strncasecmp(s, "http://", 7) == 0    ? 7
                  : n >= 8 && strncasecmp(s, "https://", 8) == 0 ? 8
                                                                 : 0;
    const char *why = NULL;

    if (n == 0 || n > ORIGIN_MAX)
        why = "is empty or too long";
    else if (!skip)
        why = "must start with http:// or https://";
    else if (skip == n)
        why = "has no host";
    for (size_t i = skip; !why && i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!isalnum(ch) && !strchr(".-:[]", ch))
            why = ch == '/' ? "must not have a path (scheme://host[:port] only)"
                            : "has a character a host or port cannot have";
    }
    if (why && err)
        snprintf(err, errlen, "origin '%.*s' %s", (int)(n > 80 ? 80 : n), s, why);
    return !why;
}

int dst_http_cors_origins_check(const char *value, char *err, size_t errlen)
{
    const char *p = value ? value : "";

    for (;;) {
        size_t n = strcspn(p, ",");
        if (!origin_ok(p, n, err, errlen))
            return DST_EINVAL;
        if (!p[n])
            return 0;
        p += n + 1;
    }
}

void dst_http_cors_init(struct dst_http_cors *c, bool any, const char *const *origins, size_t n)
{
    memset(c, 0, sizeof(*c));
    c->any = any;
    for (size_t i = 0; i < n; i++) {
        for (const char *p = origins[i]; p && *p;) {
            size_t len = strcspn(p, ",");
            if (origin_ok(p, len, NULL, 0)) {
                char *o = dst_xstrndup(p, len);
                for (char *q = o; *q; q++)
                    *q = (char)tolower((unsigned char)*q);
                c->origins = dst_xrealloc(c->origins, (c->norigins + 1) * sizeof(*c->origins));
                c->origins[c->norigins++] = o;
            }
            p += len + (p[len] ? 1 : 0);
        }
    }
}

void dst_http_cors_release(struct dst_http_cors *c)
{
    for (size_t i = 0; i < c->norigins; i++)
        free(c->origins[i]);
    free(c->origins);
    memset(c, 0, sizeof(*c));
}

bool dst_http_cors_listed(const struct dst_http_cors *c, const char *origin)
{
    for (size_t i = 0; origin && i < c->norigins; i++) {
        if (strcasecmp(c->origins[i], origin) == 0)
            return true;
    }
    return false;
}

struct dst_http_cors_answer dst_http_cors_decide(const struct dst_http_cors *c, const char *origin,
                                                 const char *method, bool public_route)
{
    struct dst_http_cors_answer a = {NULL, false, c->norigins > 0};
    bool read = method && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);

    if (origin && dst_http_cors_listed(c, origin)) {
        a.allow_origin = origin;
        a.credentials = true;
    } else if (c->any || (public_route && read)) {
        a.allow_origin = "*";
    }
    return a;
}

/* Whether origin is "http://HOST" or "https://HOST" for the request's Host. */
static bool same_origin(const char *origin, const char *host)
{
    const char *rest = strncasecmp(origin, "http://", 7) == 0    ? origin + 7
                       : strncasecmp(origin, "https://", 8) == 0 ? origin + 8
                                                                 : NULL;
    return rest && host && *host && strcasecmp(rest, host) == 0;
}

bool dst_http_cors_foreign(const struct dst_http_cors *c, const char *origin, const char *host,
                           const char *fetch_site)
{
    if (origin)
        return !same_origin(origin, host) && !dst_http_cors_listed(c, origin);
    return fetch_site &&
           (strcasecmp(fetch_site, "cross-site") == 0 || strcasecmp(fetch_site, "same-site") == 0);
}
