/* json.c - jansson helpers: bounded parsing, compact dumping, typed and case-insensitive access */
#include "core/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

json_t *dst_json_parse(const char *buf, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!j && err && errlen)
        snprintf(err, errlen, "invalid JSON at line %d, column %d: %s", je.line, je.column,
                 je.text);
    return j;
}

char *dst_json_dumps(const json_t *j, size_t *len_out)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    if (len_out)
        *len_out = s ? strlen(s) : 0;
    return s;
}

json_t *dst_json_iget(const json_t *obj, const char *key)
{
    const char *k;
    json_t *v;

    if (!json_is_object(obj))
        return NULL;
    /* No exact-match shortcut: "Speed" inserted before "speed" must win for "speed". */
    json_object_foreach((json_t *)obj, k, v)
    {
        if (strcasecmp(k, key) == 0)
            return v;
    }
    return NULL;
}

bool dst_json_number(const json_t *j, double *out)
{
    if (json_is_integer(j)) {
        *out = (double)json_integer_value(j);
        return true;
    }
    if (json_is_real(j)) {
        *out = json_real_value(j);
        return true;
    }
    return false;
}

/* The length of the well-formed UTF-8 sequence at p (RFC 3629), or 0 if there is none. */
static size_t utf8_seq(const unsigned char *p)
{
    size_t n = p[0] < 0x80                    ? 1
               : p[0] >= 0xC2 && p[0] <= 0xDF ? 2
               : p[0] >= 0xE0 && p[0] <= 0xEF ? 3
               : p[0] >= 0xF0 && p[0] <= 0xF4 ? 4
                                              : 0;
    unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range */

    if (p[0] == 0xE0)
        lo = 0xA0; /* no overlong forms */
    else if (p[0] == 0xED)
        hi = 0x9F; /* no surrogates */
    else if (p[0] == 0xF0)
        lo = 0x90;
    else if (p[0] == 0xF4)
        hi = 0x8F; /* nothing past U+10FFFF */
    for (size_t i = 1; i < n; i++) {
        if (p[i] < (i == 1 ? lo : 0x80) || p[i] > (i == 1 ? hi : 0xBF))
            return 0; /* also at the NUL of a cut sequence */
    }
    return n;
}

void dst_json_text_fix(char *s)
{
    unsigned char *p = (unsigned char *)s;

    while (p && *p) {
        size_t n = utf8_seq(p);
        if (n == 0)
            *p++ = '?';
        else
            p += n;
    }
}

void dst_json_set_num(json_t *obj, const char *key, double v)
{
    json_object_set_new(obj, key, isfinite(v) ? json_real(v) : json_null());
}

void dst_json_set_str(json_t *obj, const char *key, const char *s)
{
    json_object_set_new(obj, key, s ? json_string(s) : json_null());
}

void dst_json_set_int(json_t *obj, const char *key, int64_t v)
{
    json_object_set_new(obj, key, json_integer((json_int_t)v));
}
