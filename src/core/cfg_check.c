/* cfg_check.c - option checks that need more than one value's text: listeners, URLs, paths */
#include "core/cfg_check.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cfg.h"
#include "core/err.h"

#define MAX_LISTENERS 16
#define KEY_MAX       160

/*
 * The default ports of dstmc's services, to name the likely holder of a port in use. No two
 * services that run side by side share one; `up` is api + web UI + test server in one process,
 * on their ports.
 */
static const struct {
    int port;
    const char *who;
} holders[] = {
    {3000, "dstmc monitor"},
    {3001, "dstmc machine"},
    {5060, "dstmc server"},
    {5201, "dstmc server, dstmc up or iperf3 -s"},
    {8080, "dstmc api or dstmc up"},
    {8081, "dstmc server or dstmc up"},
    {8082, "dstmc web"},
    {8100, "dstmc toystore frontend"},
    {8101, "dstmc toystore catalog"},
    {8102, "dstmc toystore order"},
};

/* One listener taken apart. */
struct bound {
    const struct dst_cfg_listener *l;
    struct sockaddr_storage ss;
    socklen_t len;
    int port;
    char host[256];
    bool failed; /* already reported */
};

/* ---- listeners ---- */

static bool is_any(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return IN6_ARE_ADDR_EQUAL(&((const struct sockaddr_in6 *)a)->sin6_addr,
                              &((const struct sockaddr_in6 *)b)->sin6_addr);
}

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address it maps. */
static void unmap(struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in6 v6 = *(struct sockaddr_in6 *)ss;
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;

    if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr))
        return;
    memset(ss, 0, sizeof(*ss));
    v4->sin_family = AF_INET;
    memcpy(&v4->sin_addr, &v6.sin6_addr.s6_addr[12], 4);
    *len = sizeof(*v4);
}

/* The address a server binds for host: a literal as it is, else the name's first address. */
static int resolve(struct bound *b, char *err, size_t errlen)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)&b->ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&b->ss;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *ai = NULL;

    memset(&b->ss, 0, sizeof(b->ss));
    if (inet_pton(AF_INET, b->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        b->len = sizeof(*v4);
    } else if (inet_pton(AF_INET6, b->host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        b->len = sizeof(*v6);
    } else {
        int rc = getaddrinfo(b->host, NULL, &hints, &ai);
        if (rc != 0)
            return dst_errf(DST_EINVAL, err, errlen, "cannot resolve '%s': %s", b->host,
                            rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        memcpy(&b->ss, ai->ai_addr, ai->ai_addrlen);
        b->len = ai->ai_addrlen;
        freeaddrinfo(ai);
    }
    unmap(&b->ss, &b->len);
    if (b->ss.ss_family == AF_INET)
        v4->sin_port = htons((uint16_t)b->port);
    else
        v6->sin6_port = htons((uint16_t)b->port);
    return 0;
}

/*
 * Whether two listeners would want one socket address: the same port (not 0) on the same
 * address, or on a wildcard of the family; :: takes the port for both families, as the servers
 * bind it dual-stack.
 */
static bool overlap(const struct bound *a, const struct bound *b)
{
    if (a->port == 0 || a->port != b->port)
        return false;
    if ((a->ss.ss_family == AF_INET6 && is_any(&a->ss)) ||
        (b->ss.ss_family == AF_INET6 && is_any(&b->ss)))
        return true;
    if (a->ss.ss_family != b->ss.ss_family)
        return false;
    return is_any(&a->ss) || is_any(&b->ss) || same_addr(&a->ss, &b->ss);
}

/* Binds a socket to b's address as a server would (SO_REUSEADDR), closes it; 0 or errno. */
static int try_bind(const struct bound *b)
{
    int one = 1, zero = 0, e = 0;
    int fd = socket(b->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (b->ss.ss_family == AF_INET6 && is_any(&b->ss))
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (bind(fd, (const struct sockaddr *)&b->ss, b->len) != 0)
        e = errno;
    close(fd);
    return e;
}

static const char *holder(int port)
{
    for (size_t i = 0; i < sizeof(holders) / sizeof(holders[0]); i++) {
        if (holders[i].port == port)
            return holders[i].who;
    }
    return NULL;
}

/* Says why b's port cannot be bound (e from bind) and what to do. */
static void report_bind(const struct dst_cfg *cfg, FILE *errf, const struct bound *b, int e)
{
    const char *name = b->l->name;
    const char *off = b->l->off_ok ? " (or off)" : "";
    const char *who = holder(b->port);
    char where[300] = "";

    if (!is_any(&b->ss))
        snprintf(where, sizeof(where), " on %s", b->host);
    if (e == EADDRINUSE && who)
        dst_cfg_fail(cfg, errf, name, "port %d%s is in use: another %s? use --%s%s", b->port, where,
                     who, name, off);
    else if (e == EADDRINUSE)
        dst_cfg_fail(cfg, errf, name, "port %d%s is in use: use --%s%s", b->port, where, name, off);
    else if (e == EACCES && b->port < 1024)
        dst_cfg_fail(cfg, errf, name,
                     "port %d needs privileges (below 1024: root or CAP_NET_BIND_SERVICE): use "
                     "--%s%s",
                     b->port, name, off);
    else if (e == EADDRNOTAVAIL)
        dst_cfg_fail(cfg, errf, name, "%s is not an address of this machine: use --%s%s", b->host,
                     name, off);
    else
        dst_cfg_fail(cfg, errf, name, "cannot bind port %d%s: %s", b->port, where, strerror(e));
}

/* Parses and resolves every listener that is on into bs; reports the ones that fail. */
static int take_apart(const struct dst_cfg *cfg, FILE *errf, const struct dst_cfg_listener *l,
                      int n, struct bound *bs, int *nb)
{
    char err[320];
    int rc = 0;

    *nb = 0;
    for (int i = 0; i < n && *nb < MAX_LISTENERS; i++) {
        struct bound *b = &bs[*nb];
        if (l[i].off_ok && dst_cfg_is_off(l[i].value))
            continue;
        memset(b, 0, sizeof(*b));
        b->l = &l[i];
        if (dst_cfg_split_hostport(l[i].value, b->host, sizeof(b->host), &b->port, err,
                                   sizeof(err)) != 0 ||
            resolve(b, err, sizeof(err)) != 0) {
            rc = dst_cfg_fail(cfg, errf, l[i].name, "%s", err);
            continue;
        }
        (*nb)++;
    }
    return rc;
}

int dst_cfg_check_listeners(const struct dst_cfg *cfg, FILE *errf, const struct dst_cfg_listener *l,
                            int n)
{
    struct bound bs[MAX_LISTENERS];
    char key[KEY_MAX];
    int nb = 0;
    int rc = take_apart(cfg, errf, l, n, bs, &nb);

    for (int i = 1; i < nb; i++) {
        for (int j = 0; j < i && !bs[i].failed; j++) {
            if (!overlap(&bs[j], &bs[i]))
                continue;
            rc = dst_cfg_fail(cfg, errf, bs[i].l->name,
                              "port %d is also taken by %s: %s and %s overlap; give one of them "
                              "another port",
                              bs[i].port, dst_cfg_key(cfg, bs[j].l->name, key, sizeof(key)),
                              bs[j].l->value, bs[i].l->value);
            bs[i].failed = bs[j].failed = true;
        }
    }
    for (int i = 0; i < nb; i++) {
        int e = bs[i].failed || bs[i].port == 0 ? 0 : try_bind(&bs[i]);
        if (e) {
            report_bind(cfg, errf, &bs[i], e);
            rc = DST_EINVAL;
        }
    }
    return rc;
}

/* ---- URLs ---- */

/* The host of an authority, [h, end): "[V6]", or a name or IPv4 address; *after past it. */
static int url_host(const char *url, const char *h, const char *end, const char **after, char *err,
                    size_t errlen)
{
    char v6[INET6_ADDRSTRLEN + 8];
    struct in6_addr a6;

    if (*h == '[') {
        const char *close = memchr(h, ']', (size_t)(end - h));
        size_t n = close ? (size_t)(close - h - 1) : 0;
        if (!close || n == 0 || n >= sizeof(v6))
            return dst_errf(DST_EINVAL, err, errlen, "'%s': the host is not [IPV6]", url);
        memcpy(v6, h + 1, n);
        v6[n] = '\0';
        if (inet_pton(AF_INET6, v6, &a6) != 1)
            return dst_errf(DST_EINVAL, err, errlen, "'%s': '%s' is not an IPv6 address", url, v6);
        *after = close + 1;
        return 0;
    }
    const char *p = h;
    while (p < end && (isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_'))
        p++;
    if (p == h)
        return dst_errf(DST_EINVAL, err, errlen, "'%s' has no host", url);
    if (p < end && *p != ':')
        return dst_errf(DST_EINVAL, err, errlen, "'%s': '%c' cannot be in a host name", url, *p);
    *after = p;
    return 0;
}

int dst_cfg_check_url(const char *v, char *err, size_t errlen)
{
    const char *p = NULL, *end = NULL, *after = NULL;

    if (!v || !*v)
        return dst_errf(DST_EINVAL, err, errlen, "a URL is needed (http://HOST[:PORT][/PATH])");
    for (const char *c = v; *c; c++) {
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return dst_errf(DST_EINVAL, err, errlen,
                            "a URL cannot hold blanks or control characters");
    }
    if (strncasecmp(v, "http://", 7) == 0)
        p = v + 7;
    else if (strncasecmp(v, "https://", 8) == 0)
        p = v + 8;
    else
        return dst_errf(DST_EINVAL, err, errlen, "'%s' is not an http:// or https:// URL", v);
    end = p + strcspn(p, "/?#");
    for (const char *at = p; at < end; at++) {
        if (*at == '@')
            p = at + 1; /* user[:password]@ */
    }
    if (url_host(v, p, end, &after, err, errlen) != 0)
        return DST_EINVAL;
    if (after == end)
        return 0;
    if (*after != ':')
        return dst_errf(DST_EINVAL, err, errlen,
                        "'%s': the host is not followed by :PORT or a path", v);
    const char *d = after + 1;
    size_t digits = (size_t)(end - d);
    long port =
        digits >= 1 && digits <= 5 && strspn(d, "0123456789") >= digits ? strtol(d, NULL, 10) : 0;
    if (port < 1 || port > 65535)
        return dst_errf(DST_EINVAL, err, errlen, "'%s': the port must be a number from 1 to 65535",
                        v);
    return 0;
}

int dst_cfg_check_url_or_empty(const char *v, char *err, size_t errlen)
{
    return v && !*v ? 0 : dst_cfg_check_url(v, err, errlen);
}

/* ---- paths ---- */

/* The directory part of path into dir: "." for a bare name, "/" for "/x". */
static int dir_of(const char *path, char *dir, size_t dirlen, char *err, size_t errlen)
{
    size_t n = strlen(path);

    while (n > 1 && path[n - 1] == '/')
        n--;
    while (n > 0 && path[n - 1] != '/')
        n--;
    while (n > 1 && path[n - 1] == '/')
        n--;
    if (n == 0)
        return snprintf(dir, dirlen, "."), 0;
    if (n >= dirlen)
        return dst_errf(DST_EINVAL, err, errlen, "'%s': the path is too long", path);
    memcpy(dir, path, n);
    dir[n] = '\0';
    return 0;
}

/* path's directory exists (and, with writable, this process can create files in it). */
static int check_parent(const char *path, bool writable, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    struct stat st;

    if (dir_of(path, dir, sizeof(dir), err, errlen) != 0)
        return DST_EINVAL;
    if (stat(dir, &st) != 0)
        return dst_errf(DST_EINVAL, err, errlen, "'%s': the directory %s: %s", path, dir,
                        strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return dst_errf(DST_EINVAL, err, errlen, "'%s': %s is not a directory", path, dir);
    if (writable && access(dir, W_OK | X_OK) != 0)
        return dst_errf(DST_EINVAL, err, errlen, "'%s': cannot create files in %s: %s", path, dir,
                        strerror(errno));
    return 0;
}

int dst_cfg_check_dir(const char *v, char *err, size_t errlen)
{
    struct stat st;

    if (!v || !*v)
        return 0;
    if (stat(v, &st) != 0)
        return errno == ENOENT ? check_parent(v, true, err, errlen)
                               : dst_errf(DST_EINVAL, err, errlen, "'%s': %s", v, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return dst_errf(DST_EINVAL, err, errlen, "'%s' is not a directory", v);
    if (access(v, W_OK | X_OK) != 0)
        return dst_errf(DST_EINVAL, err, errlen, "'%s': cannot write there: %s", v,
                        strerror(errno));
    return 0;
}

int dst_cfg_check_file_rw(const char *v, char *err, size_t errlen)
{
    struct stat st;

    if (!v || !*v)
        return dst_errf(DST_EINVAL, err, errlen, "a file name is needed");
    if (stat(v, &st) == 0) {
        if (!S_ISREG(st.st_mode))
            return dst_errf(DST_EINVAL, err, errlen, "'%s' is not a file", v);
        if (access(v, R_OK | W_OK) != 0)
            return dst_errf(DST_EINVAL, err, errlen, "'%s': cannot read and write it: %s", v,
                            strerror(errno));
    } else if (errno != ENOENT) {
        return dst_errf(DST_EINVAL, err, errlen, "'%s': %s", v, strerror(errno));
    }
    return check_parent(v, true, err, errlen);
}

int dst_cfg_check_file_readable(const char *v, char *err, size_t errlen)
{
    struct stat st;

    if (!v || !*v)
        return dst_errf(DST_EINVAL, err, errlen, "a file name is needed");
    if (stat(v, &st) != 0)
        return dst_errf(DST_EINVAL, err, errlen, "'%s': %s", v, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return dst_errf(DST_EINVAL, err, errlen, "'%s' is not a file", v);
    if (access(v, R_OK) != 0)
        return dst_errf(DST_EINVAL, err, errlen, "'%s': cannot read it: %s", v, strerror(errno));
    return 0;
}

int dst_cfg_check_watched_file(const char *v, char *err, size_t errlen)
{
    struct stat st;

    if (!v || !*v)
        return 0;
    if (stat(v, &st) == 0 && S_ISDIR(st.st_mode))
        return dst_errf(DST_EINVAL, err, errlen, "'%s' is a directory, not a file", v);
    return check_parent(v, false, err, errlen);
}
