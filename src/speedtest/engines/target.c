/* target.c - a test target URL taken apart: scheme, host, port, path, query parameters */
#include "speedtest/engines/target.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* Copies [p, p+n) into out (cap outlen) or fails when it does not fit. */
static bool copy(char *out, size_t outlen, const char *p, size_t n)
{
    if (n >= outlen)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* Decodes %XX and '+' in place. */
static void decode(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2])) {
            char hex[3] = {r[1], r[2], '\0'};
            *w++ = (char)strtol(hex, NULL, 16);
            r += 2;
        } else {
            *w++ = *r == '+' ? ' ' : *r;
        }
    }
    *w = '\0';
}

static int parse_query(const char *q, struct engine_target *t, char *err, size_t errlen)
{
    while (*q) {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        size_t klen = eq ? (size_t)(eq - q) : n;
        if (t->nparams == ENGINE_TARGET_MAX_PARAMS)
            return snprintf(err, errlen, "more than %d parameters", ENGINE_TARGET_MAX_PARAMS),
                   DST_EINVAL;
        if (klen == 0 || !copy(t->keys[t->nparams], sizeof(t->keys[0]), q, klen) ||
            !copy(t->vals[t->nparams], sizeof(t->vals[0]), eq ? eq + 1 : q + n,
                  eq ? n - klen - 1 : 0))
            return snprintf(err, errlen, "bad parameter '%.*s'", (int)n, q), DST_EINVAL;
        decode(t->vals[t->nparams]);
        t->nparams++;
        q += n;
        if (*q == '&')
            q++;
    }
    return 0;
}

/* Parses "host[:port]" or "[v6][:port]" of [p, end). */
static int parse_authority(const char *p, const char *end, struct engine_target *t, char *err,
                           size_t errlen)
{
    const char *port = NULL;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close || !copy(t->host, sizeof(t->host), p + 1, (size_t)(close - p - 1)))
            return snprintf(err, errlen, "bad IPv6 host"), DST_EINVAL;
        port = close + 1 < end && close[1] == ':' ? close + 2 : NULL;
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (!copy(t->host, sizeof(t->host), p, (size_t)((colon ? colon : end) - p)))
            return snprintf(err, errlen, "host too long"), DST_EINVAL;
        port = colon ? colon + 1 : NULL;
    }
    if (!t->host[0])
        return snprintf(err, errlen, "no host"), DST_EINVAL;
    if (port) {
        char *e = NULL;
        long v = strtol(port, &e, 10);
        if (e != end || port == end || v < 1 || v > 65535)
            return snprintf(err, errlen, "bad port '%.*s'", (int)(end - port), port), DST_EINVAL;
        t->port = (int)v;
    }
    return 0;
}

int engine_target_parse(const char *s, struct engine_target *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    const char *colon = s ? strchr(s, ':') : NULL;
    if (!colon || colon == s || !copy(t->scheme, sizeof(t->scheme), s, (size_t)(colon - s)))
        return snprintf(err, errlen, "'%s' is not a URL (scheme:...)", s ? s : ""), DST_EINVAL;
    const char *p = colon + 1;
    if (*p == '?')
        return parse_query(p + 1, t, err, errlen); /* no authority: "dummy:?seconds=5" */
    if (strncmp(p, "//", 2) != 0)
        return *p ? (snprintf(err, errlen, "expected '//' after '%s:'", t->scheme), DST_EINVAL) : 0;
    p += 2;
    const char *end = p + strcspn(p, "/?");
    int rc = parse_authority(p, end, t, err, errlen);
    if (rc)
        return rc;
    const char *q = strchr(end, '?');
    size_t plen = q ? (size_t)(q - end) : strlen(end);
    if (!copy(t->path, sizeof(t->path), end, plen))
        return snprintf(err, errlen, "path too long"), DST_EINVAL;
    return q ? parse_query(q + 1, t, err, errlen) : 0;
}

const char *engine_target_param(const struct engine_target *t, const char *key)
{
    for (int i = 0; i < t->nparams; i++) {
        if (strcmp(t->keys[i], key) == 0)
            return t->vals[i];
    }
    return NULL;
}

int engine_target_int(const struct engine_target *t, const char *key, long def, long min, long max,
                      long *out, char *err, size_t errlen)
{
    const char *v = engine_target_param(t, key);
    char *e = NULL;
    if (!v) {
        *out = def;
        return 0;
    }
    long n = strtol(v, &e, 10);
    if (!*v || *e || n < min || n > max)
        return snprintf(err, errlen, "%s: an integer from %ld to %ld", key, min, max), DST_EINVAL;
    *out = n;
    return 0;
}

void engine_target_hostport(const struct engine_target *t, int default_port, char *out,
                            size_t outlen)
{
    bool v6 = strchr(t->host, ':') != NULL;
    snprintf(out, outlen, "%s%s%s:%d", v6 ? "[" : "", t->host, v6 ? "]" : "",
             t->port ? t->port : default_port);
}
