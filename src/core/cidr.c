/* cidr.c - IP networks ("10.0.0.0/8", "::1/128", "192.0.2.7"): parse, and match an address */
#include "core/cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"

#define TEXT_MAX 64

int dst_cidr_parse(const char *text, struct dst_cidr *out, char *err, size_t errlen)
{
    char addr[TEXT_MAX];
    struct dst_cidr c = {0};
    const char *slash = text ? strchr(text, '/') : NULL;
    size_t n = text ? (slash ? (size_t)(slash - text) : strlen(text)) : 0;
    const char *why = NULL;

    if (n == 0 || n >= sizeof(addr)) {
        why = "is not an address";
    } else {
        memcpy(addr, text, n);
        addr[n] = '\0';
        c.family = strchr(addr, ':') ? AF_INET6 : AF_INET;
        if (inet_pton(c.family, addr, c.addr) != 1)
            why = "is not an IPv4 or IPv6 address";
    }
    unsigned max = c.family == AF_INET6 ? 128 : 32;
    c.bits = max;
    if (!why && slash) {
        char *end = NULL;
        unsigned long b = strtoul(slash + 1, &end, 10);
        if (end == slash + 1 || *end || b > max || slash[1] == '-' || slash[1] == '+')
            why = "has a prefix length out of range";
        c.bits = (unsigned)b;
    }
    if (why) {
        if (err && errlen)
            snprintf(err, errlen, "'%.*s' %s", TEXT_MAX, text ? text : "", why);
        return DST_EINVAL;
    }
    *out = c;
    return 0;
}

/* Whether the first bits bits of a and b agree. */
static bool prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (!rest)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

bool dst_cidr_contains(const struct dst_cidr *c, const char *ip)
{
    unsigned char a[16];
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (!ip || !*ip)
        return false;
    if (inet_pton(AF_INET, ip, a) == 1)
        return c->family == AF_INET && prefix_equal(a, c->addr, c->bits);
    if (inet_pton(AF_INET6, ip, a) != 1)
        return false;
    if (c->family == AF_INET6)
        return prefix_equal(a, c->addr, c->bits);
    return memcmp(a, mapped, sizeof(mapped)) == 0 && prefix_equal(a + 12, c->addr, c->bits);
}

int dst_cidr_list_add(struct dst_cidr_list *l, const char *const *texts, size_t n, char *err,
                      size_t errlen)
{
    char one[TEXT_MAX + 1];

    for (size_t i = 0; i < n; i++) {
        for (const char *p = texts[i]; p && *p;) {
            size_t len = strcspn(p, ",");
            struct dst_cidr c;
            snprintf(one, sizeof(one), "%.*s", (int)(len < TEXT_MAX ? len : TEXT_MAX), p);
            p += len + (p[len] ? 1 : 0);
            if (strcmp(one, "none") == 0)
                continue;
            if (len > TEXT_MAX || dst_cidr_parse(one, &c, err, errlen) != 0) {
                if (len > TEXT_MAX && err)
                    snprintf(err, errlen, "'%.20s...' is not an address", one);
                return DST_EINVAL;
            }
            l->v = dst_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
            l->v[l->n++] = c;
        }
    }
    return 0;
}

bool dst_cidr_list_contains(const struct dst_cidr_list *l, const char *ip)
{
    for (size_t i = 0; i < l->n; i++) {
        if (dst_cidr_contains(&l->v[i], ip))
            return true;
    }
    return false;
}

void dst_cidr_list_release(struct dst_cidr_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int dst_cidr_check(const char *value, char *err, size_t errlen)
{
    struct dst_cidr_list l = {0};
    int rc = dst_cidr_list_add(&l, &value, 1, err, errlen);
    dst_cidr_list_release(&l);
    return rc;
}
