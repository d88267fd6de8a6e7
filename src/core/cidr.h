/* cidr.h - IP networks ("10.0.0.0/8", "::1/128", "192.0.2.7"): parse, and match an address */
#ifndef DST_CIDR_H
#define DST_CIDR_H

#include <stdbool.h>
#include <stddef.h>

struct dst_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned bits;
};

/* A list of networks, e.g. the networks trusted to post results without a credential. */
struct dst_cidr_list {
    struct dst_cidr *v;
    size_t n;
};

/*
 * Parses "ADDR/BITS" or a bare "ADDR" (all bits), IPv4 or IPv6. DST_EINVAL with a reason in err
 * (may be NULL).
 */
int dst_cidr_parse(const char *text, struct dst_cidr *out, char *err, size_t errlen);

/* Whether the address ip (text, as dst_http_req_client_ip gives it) is in c. An IPv4-mapped
   IPv6 address ("::ffff:127.0.0.1") counts as its IPv4 address. */
bool dst_cidr_contains(const struct dst_cidr *c, const char *ip);

/*
 * Adds to l the networks of each texts[i]: one or more, separated by commas; "none" adds
 * nothing. DST_EINVAL with a reason in err on the first bad one (l then holds those before it).
 */
int dst_cidr_list_add(struct dst_cidr_list *l, const char *const *texts, size_t n, char *err,
                      size_t errlen);
bool dst_cidr_list_contains(const struct dst_cidr_list *l, const char *ip);
void dst_cidr_list_release(struct dst_cidr_list *l);

/* A cfg check for an option of such networks (one value). */
int dst_cidr_check(const char *value, char *err, size_t errlen);

#endif
