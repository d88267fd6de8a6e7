/* net.c - TCP sockets with deadlines: connect, listen, exact reads and writes, capped lines */
#include "core/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/datetime.h"
#include "core/err.h"

#define AGAIN 1 /* internal: the socket has nothing for us yet */

void dst_net_conn_init(struct dst_net_conn *c, int fd)
{
    c->fd = fd;
    c->idle_ms = 0;
    c->sys_errno = 0;
    c->off = c->len = 0;
    if (fd >= 0)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

void dst_net_close(struct dst_net_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->off = c->len = 0;
}

void dst_net_abort(struct dst_net_conn *c)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    if (c->fd >= 0)
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    dst_net_close(c);
}

/* "1.2.3.4:80" or "[::1]:80". */
static void format_addr(const struct sockaddr *sa, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
    }
    bool v6 = sa->sa_family == AF_INET6;
    snprintf(out, outlen, "%s%s%s:%d", v6 ? "[" : "", ip, v6 ? "]" : "", port);
}

void dst_net_peer(const struct dst_net_conn *c, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (c->fd < 0 || getpeername(c->fd, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(out, outlen, "?");
        return;
    }
    format_addr((const struct sockaddr *)&ss, out, outlen);
}

/* The poll timeout until end (ms, -1 none), or DST_ETIMEDOUT when end has passed. */
static int time_left(int64_t end, int *timeout)
{
    if (end < 0) {
        *timeout = -1;
        return 0;
    }
    int64_t left = end - dst_monotonic_ms();
    if (left <= 0)
        return DST_ETIMEDOUT;
    *timeout = left > INT_MAX ? INT_MAX : (int)left;
    return 0;
}

/* Waits for events on c until the deadline, or until idle_ms have passed since since_ms. */
static int wait_ready(struct dst_net_conn *c, short events, int64_t deadline, int64_t since_ms)
{
    int64_t end = deadline;
    int timeout = 0;

    if (c->idle_ms > 0 && (end < 0 || since_ms + c->idle_ms < end))
        end = since_ms + c->idle_ms;
    for (;;) {
        if (time_left(end, &timeout) != 0)
            return DST_ETIMEDOUT;
        struct pollfd pfd = {.fd = c->fd, .events = events};
        int n = poll(&pfd, 1, timeout);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR) {
            c->sys_errno = errno;
            return DST_EIO;
        }
    }
}

/* One recv: 0 with *got > 0, AGAIN, or DST_EIO (sys_errno 0 when the peer closed). */
static int recv_once(struct dst_net_conn *c, void *p, size_t n, size_t *got)
{
    ssize_t r = recv(c->fd, p, n, 0);

    if (r > 0) {
        *got = (size_t)r;
        return 0;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return AGAIN;
    c->sys_errno = r == 0 ? 0 : errno;
    return DST_EIO;
}

int dst_net_read(struct dst_net_conn *c, void *p, size_t n, int64_t deadline_ms, size_t *got)
{
    int64_t since = dst_monotonic_ms();

    *got = 0;
    if (n == 0)
        return 0;
    if (c->off < c->len) { /* read ahead by a line read first */
        size_t k = c->len - c->off < n ? c->len - c->off : n;
        memcpy(p, c->buf + c->off, k);
        c->off += k;
        *got = k;
        return 0;
    }
    for (;;) {
        int rc = recv_once(c, p, n, got);
        if (rc != AGAIN)
            return rc;
        rc = wait_ready(c, POLLIN, deadline_ms, since);
        if (rc)
            return rc;
    }
}

int dst_net_read_exact(struct dst_net_conn *c, void *p, size_t n, int64_t deadline_ms, size_t *got)
{
    size_t done = 0;
    int rc = 0;

    while (done < n) {
        size_t k = 0;
        rc = dst_net_read(c, (char *)p + done, n - done, deadline_ms, &k);
        if (rc)
            break;
        done += k;
    }
    if (got)
        *got = done;
    return rc;
}

/* Takes a complete line out of the read-ahead; false when there is none (yet). */
static bool take_line(struct dst_net_conn *c, char *line, size_t cap, size_t *raw, int *rc)
{
    const char *start = c->buf + c->off;
    const char *nl = memchr(start, '\n', c->len - c->off);
    size_t n = nl ? (size_t)(nl - start) : c->len - c->off;

    if (n >= cap || (!nl && c->len - c->off >= sizeof(c->buf))) {
        *rc = DST_ETOOBIG;
        return true;
    }
    if (!nl)
        return false;
    if (raw)
        *raw = n + 1;
    c->off += n + 1;
    if (n > 0 && start[n - 1] == '\r')
        n--;
    memcpy(line, start, n);
    line[n] = '\0';
    *rc = memchr(start, '\0', n) ? DST_EINVAL : 0;
    return true;
}

int dst_net_read_line(struct dst_net_conn *c, char *line, size_t cap, int64_t deadline_ms,
                      size_t *raw)
{
    int64_t since = dst_monotonic_ms();
    int rc = 0;

    if (cap == 0)
        return DST_ETOOBIG;
    for (;;) {
        if (take_line(c, line, cap, raw, &rc))
            return rc;
        if (c->off > 0) { /* keep the partial line at the start of the buffer */
            memmove(c->buf, c->buf + c->off, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        }
        size_t got = 0;
        rc = recv_once(c, c->buf + c->len, sizeof(c->buf) - c->len, &got);
        if (rc == AGAIN)
            rc = wait_ready(c, POLLIN, deadline_ms, since);
        else if (rc == 0)
            since = dst_monotonic_ms();
        if (rc)
            return rc;
        c->len += got;
    }
}

int dst_net_write(struct dst_net_conn *c, const void *p, size_t n, int64_t deadline_ms, size_t *put)
{
    int64_t since = dst_monotonic_ms();

    *put = 0;
    if (n == 0)
        return 0;
    for (;;) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            *put = (size_t)w;
            return 0;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            c->sys_errno = errno;
            return DST_EIO;
        }
        int rc = wait_ready(c, POLLOUT, deadline_ms, since);
        if (rc)
            return rc;
    }
}

int dst_net_write_all(struct dst_net_conn *c, const void *p, size_t n, int64_t deadline_ms)
{
    while (n > 0) {
        size_t k = 0;
        int rc = dst_net_write(c, p, n, deadline_ms, &k);
        if (rc)
            return rc;
        p = (const char *)p + k;
        n -= k;
    }
    return 0;
}

/* Waits for a non-blocking connect: 0 or its errno, or -1 when the deadline passed. */
static int wait_connected(int fd, int64_t deadline)
{
    int timeout = 0, soerr = 0;
    socklen_t len = sizeof(soerr);

    for (;;) {
        if (time_left(deadline, &timeout) != 0)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int n = poll(&pfd, 1, timeout);
        if (n > 0)
            break;
        if (n < 0 && errno != EINTR)
            return errno;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        return errno;
    return soerr;
}

/* Tries one address; the connected socket in *fd_out, or a reason in err. */
static int connect_one(const struct addrinfo *ai, int64_t deadline, int *fd_out, char *err,
                       size_t errlen)
{
    char addr[INET6_ADDRSTRLEN + 16];
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    int e = 0;

    format_addr(ai->ai_addr, addr, sizeof(addr));
    if (fd < 0) {
        snprintf(err, errlen, "connect: %s: %s", addr, strerror(errno));
        return DST_EDEP;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        e = errno == EINPROGRESS ? wait_connected(fd, deadline) : errno;
    if (e == 0) {
        *fd_out = fd;
        return 0;
    }
    close(fd);
    if (e < 0)
        return DST_ETIMEDOUT;
    if (e == ECONNREFUSED)
        snprintf(err, errlen, "refused: %s", addr);
    else
        snprintf(err, errlen, "connect: %s: %s", addr, strerror(e));
    return DST_EDEP;
}

int dst_net_connect(const char *host, int port, int timeout_ms, struct dst_net_conn *c, char *err,
                    size_t errlen)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char portstr[16];
    int64_t deadline = dst_monotonic_ms() + timeout_ms;
    int fd = -1, rc = DST_EDEP, one = 1;

    dst_net_conn_init(c, -1);
    snprintf(portstr, sizeof(portstr), "%d", port);
    /* NEEDSWORK: getaddrinfo is bounded only by the resolver's own timeouts (resolv.conf) */
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "DNS: cannot resolve '%s': %s", host,
                 gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
        return DST_EDEP;
    }
    for (const struct addrinfo *ai = res; ai && rc != DST_ETIMEDOUT; ai = ai->ai_next) {
        rc = connect_one(ai, deadline, &fd, err, errlen);
        if (rc == 0)
            break;
    }
    freeaddrinfo(res);
    if (rc == DST_ETIMEDOUT)
        snprintf(err, errlen, "timeout: connecting to %s:%d after %d ms", host, port, timeout_ms);
    if (rc)
        return rc;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    dst_net_conn_init(c, fd);
    return 0;
}

/* Binds and listens on one address; the socket, or -1 with errno set. */
static int listen_one(const struct addrinfo *ai, int backlog)
{
    int one = 1;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0)
        return fd;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

int dst_net_listen(const char *host, int port, int backlog, int *fd_out, int *port_out, char *err,
                   size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    const char *node = host && *host ? host : "0.0.0.0";
    char portstr[16];
    int fd = -1, e = 0;

    snprintf(portstr, sizeof(portstr), "%d", port);
    int gai = getaddrinfo(node, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "DNS: cannot resolve '%s': %s", node,
                 gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
        return DST_EDEP;
    }
    for (const struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = listen_one(ai, backlog);
        e = fd < 0 ? errno : 0;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", node, port, strerror(e));
        return e == EADDRINUSE ? DST_ECONFLICT : DST_EIO;
    }
    getsockname(fd, (struct sockaddr *)&ss, &sslen);
    *port_out = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    return 0;
}
