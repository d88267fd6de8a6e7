/* ping.c - is a host up: ICMP echo (datagram or raw socket), else TCP connect */
#include "core/ping.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <linux/filter.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#ifndef ICMP_FILTER
#define ICMP_FILTER 1 /* from <linux/icmp.h>, which clashes with glibc's ICMP headers */
#endif

#define ECHO_LEN  16   /* what we send: the 8-byte echo header, then an 8-byte nonce */
#define RECV_LEN  128  /* enough for our reply with its IP header; longer ones are not ours */
#define DRAIN_MAX 4096 /* packets a new raw socket may have queued before its filter was set */
#define ECHOES    2    /* an echo, and once more when it goes unanswered for a while */
#define RESEND_MS 1000 /* that while (ping(8)'s interval), or half the timeout when shorter */

/* ICMP types (ICMPv4 / ICMPv6) */
#define T4_ECHO_REPLY  0
#define T4_UNREACH     3
#define T4_ECHO        8
#define T4_TIME_EXCEED 11
#define T6_UNREACH     1
#define T6_TIME_EXCEED 3
#define T6_ECHO        128
#define T6_ECHO_REPLY  129

struct dst_pinger {
    enum dst_ping_method method; /* ICMP, ICMP_RAW or TCP */
    bool fallback;   /* made with AUTO: a probe whose socket won't open tries the next */
    atomic_uint seq; /* the sequence number of the next echo (a probe takes ECHOES) */
};

/* One echo, and what its reply must carry back. */
struct echo {
    int family;
    bool raw; /* raw socket: we pick the id and check it; IPv4 replies start with the IP header */
    uint16_t id;          /* network order; left 0 on datagram sockets, where the kernel sets it */
    uint16_t seq[ECHOES]; /* network order: echo k carries seq[k] */
    uint8_t nonce[8];
};

static const char *const method_names[] = {"auto", "icmp", "icmp-raw", "tcp"};

const char *dst_ping_method_name(enum dst_ping_method m)
{
    return m >= DST_PING_AUTO && m <= DST_PING_TCP ? method_names[m] : "?";
}

int dst_ping_method_parse(const char *s, enum dst_ping_method *out)
{
    for (int m = DST_PING_AUTO; s && m <= DST_PING_TCP; m++) {
        if (strcmp(s, method_names[m]) == 0) {
            *out = (enum dst_ping_method)m;
            return 0;
        }
    }
    return DST_EINVAL;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A new socket of method m (never AUTO) for family, or -1 with errno. */
static int open_socket(enum dst_ping_method m, int family)
{
    int flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
    int proto = family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;

    if (m == DST_PING_TCP)
        return socket(family, SOCK_STREAM | flags, 0);
    return socket(family, (m == DST_PING_ICMP ? SOCK_DGRAM : SOCK_RAW) | flags, proto);
}

static const char *method_hint(enum dst_ping_method m)
{
    if (m == DST_PING_ICMP)
        return "allow this group with sysctl net.ipv4.ping_group_range";
    return m == DST_PING_ICMP_RAW ? "needs CAP_NET_RAW" : "TCP sockets unavailable";
}

int dst_pinger_new(enum dst_ping_method want, struct dst_pinger **out)
{
    int m = want == DST_PING_AUTO ? DST_PING_ICMP : (int)want;

    if (want < DST_PING_AUTO || want > DST_PING_TCP)
        return DST_EINVAL;
    for (;; m++) {
        int fd = open_socket((enum dst_ping_method)m, AF_INET);
        if (fd >= 0) {
            close(fd);
            break;
        }
        if (want != DST_PING_AUTO || m == DST_PING_TCP) {
            dst_error("ping: cannot open a socket for method %s: %s (%s)", method_names[m],
                      strerror(errno), method_hint((enum dst_ping_method)m));
            return DST_EDEP;
        }
        dst_debug("ping: method %s unavailable: %s (%s)", method_names[m], strerror(errno),
                  method_hint((enum dst_ping_method)m));
    }
    struct dst_pinger *p = dst_xnew(struct dst_pinger);
    p->method = (enum dst_ping_method)m;
    p->fallback = want == DST_PING_AUTO;
    atomic_init(&p->seq, 0);
    *out = p;
    return 0;
}

void dst_pinger_free(struct dst_pinger *p)
{
    free(p);
}

enum dst_ping_method dst_pinger_method(const struct dst_pinger *p)
{
    return p->method;
}

/* The Internet checksum (RFC 1071) of n bytes, in network order. */
static uint16_t inet_checksum(const uint8_t *b, size_t n)
{
    uint32_t sum = 0;

    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)b[i] << 8 | b[i + 1];
    if (n & 1)
        sum += (uint32_t)b[n - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return htons((uint16_t)~sum);
}

/*
 * Type, code 0, checksum, id, seq, nonce. Only raw IPv4 needs our checksum: the kernel does the
 * others (datagram sockets, and ICMPv6 raw sockets per RFC 3542).
 */
static void build_echo(const struct echo *e, int k, uint8_t pkt[ECHO_LEN])
{
    memset(pkt, 0, ECHO_LEN);
    pkt[0] = e->family == AF_INET ? T4_ECHO : T6_ECHO;
    memcpy(pkt + 4, &e->id, 2);
    memcpy(pkt + 6, &e->seq[k], 2);
    memcpy(pkt + 8, e->nonce, sizeof(e->nonce));
    if (e->raw && e->family == AF_INET) {
        uint16_t sum = inet_checksum(pkt, ECHO_LEN);
        memcpy(pkt + 2, &sum, 2);
    }
}

/*
 * Which of our echoes does the received packet b[0, n) answer: k, or -1 when it is not a reply
 * to ours. ICMP errors never get here: the kernel matches those to our connected socket and
 * queues them as socket errors (IP_RECVERR).
 */
static int reply_to(const struct echo *e, const uint8_t *b, size_t n)
{
    bool v4 = e->family == AF_INET;

    if (v4 && e->raw) { /* skip the IP header */
        size_t ihl = n > 0 ? (size_t)(b[0] & 0x0f) * 4 : 0;
        if (ihl < 20 || n < ihl)
            return -1;
        b += ihl;
        n -= ihl;
    }
    if (n < ECHO_LEN || b[0] != (v4 ? T4_ECHO_REPLY : T6_ECHO_REPLY) ||
        (e->raw && memcmp(b + 4, &e->id, 2) != 0) || memcmp(b + 8, e->nonce, sizeof(e->nonce)))
        return -1;
    for (int k = 0; k < ECHOES; k++) {
        if (memcmp(b + 6, &e->seq[k], 2) == 0)
            return k;
    }
    return -1;
}

/*
 * A raw socket connected to a host gets a copy of every echo reply from it, whoever sent the
 * echo: the other probes of this pinger, other threads and processes pinging that host. Those
 * copies fill its receive buffer while our thread is off the CPU, and the kernel then drops our
 * own reply (silently: only the socket's drop count grows). So the socket keeps only echo
 * replies with our id and one of our sequence numbers, as the kernel does for datagram sockets.
 * The filter sees an IPv4 packet from its IP header, an ICMPv6 one from its ICMPv6 header.
 */
_Static_assert(ECHOES == 2, "attach_filter() checks two sequence numbers");
static void attach_filter(int fd, const struct echo *e)
{
    bool v4 = e->family == AF_INET;
    struct sock_filter code[] = {
        /* X = where the ICMP header starts */
        v4 ? (struct sock_filter)BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0)
           : (struct sock_filter)BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 0),
        BPF_STMT(BPF_LD | BPF_B | BPF_IND, 0), /* type */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, v4 ? T4_ECHO_REPLY : T6_ECHO_REPLY, 0, 6),
        BPF_STMT(BPF_LD | BPF_H | BPF_IND, 4), /* id, in host order */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ntohs(e->id), 0, 4),
        BPF_STMT(BPF_LD | BPF_H | BPF_IND, 6), /* seq */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ntohs(e->seq[0]), 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ntohs(e->seq[1]), 0, 1),
        BPF_STMT(BPF_RET | BPF_K, RECV_LEN), /* ours: keep (at most RECV_LEN bytes) */
        BPF_STMT(BPF_RET | BPF_K, 0),        /* anything else: drop */
    };
    struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};

    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) != 0)
        dst_debug("ping: no socket filter: %s (other replies may crowd ours out)", strerror(errno));
}

/*
 * ICMP errors about our echo as socket errors; on raw sockets, only our echo reply as a packet,
 * and nothing of what came before the filters were set.
 */
static void tune_socket(int fd, const struct echo *e)
{
    int on = 1;

    if (e->family == AF_INET) {
        uint32_t drop = ~(1u << T4_ECHO_REPLY);
        setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof(on));
        if (e->raw)
            setsockopt(fd, SOL_RAW, ICMP_FILTER, &drop, sizeof(drop));
    } else {
        struct icmp6_filter f;
        ICMP6_FILTER_SETBLOCKALL(&f);
        ICMP6_FILTER_SETPASS(T6_ECHO_REPLY, &f);
        setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof(on));
        if (e->raw)
            setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof(f));
    }
    if (!e->raw)
        return;
    attach_filter(fd, e);
    uint8_t junk[RECV_LEN];
    for (int i = 0; i < DRAIN_MAX && recv(fd, junk, sizeof(junk), MSG_DONTWAIT) >= 0; i++)
        continue;
}

/* Waits until fd has events or the clock passes end_us: 0, DST_ETIMEDOUT or DST_EIO (errno). */
static int wait_until(int fd, short events, int64_t end_us)
{
    for (;;) {
        int64_t left = end_us - dst_monotonic_us();
        if (left <= 0)
            return DST_ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, (int)((left + 999) / 1000));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return DST_EIO;
    }
}

static int sys_fail(const char *what, int e, char *err, size_t errlen)
{
    set_err(err, errlen, "%s: %s", what, strerror(e));
    return DST_EIO;
}

/*
 * Takes the ICMP errors queued on fd (IP_RECVERR): DST_EIO when one says our echo cannot arrive
 * (destination unreachable, time exceeded), else 0: a redirect or a "too big" is no answer.
 */
static int take_errors(int fd, char *err, size_t errlen)
{
    char ctl[512];

    for (;;) {
        struct msghdr mh = {.msg_control = ctl, .msg_controllen = sizeof(ctl)};
        if (recvmsg(fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
            return 0; /* none left */
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            struct sock_extended_err ee;
            if (!(c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) &&
                !(c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR))
                continue;
            memcpy(&ee, CMSG_DATA(c), sizeof(ee));
            bool v4 = ee.ee_origin == SO_EE_ORIGIN_ICMP, v6 = ee.ee_origin == SO_EE_ORIGIN_ICMP6;
            if ((v4 && (ee.ee_type == T4_UNREACH || ee.ee_type == T4_TIME_EXCEED)) ||
                (v6 && (ee.ee_type == T6_UNREACH || ee.ee_type == T6_TIME_EXCEED)))
                return sys_fail("unreachable", (int)ee.ee_errno, err, errlen);
        }
    }
}

/* Sends echo k of e over fd; *sent_us = when. */
static int send_echo(int fd, const struct echo *e, int k, int64_t *sent_us, char *err,
                     size_t errlen)
{
    uint8_t pkt[ECHO_LEN];

    build_echo(e, k, pkt);
    *sent_us = dst_monotonic_us();
    if (send(fd, pkt, sizeof(pkt), 0) < 0)
        return sys_fail("send", errno, err, errlen);
    return 0;
}

/*
 * Sends our echo and reads what fd receives until a reply to it or an ICMP error about it comes,
 * or end_us. When nothing has come RESEND_MS after the echo (or half-way to end_us, if sooner),
 * the echo goes once more with the next sequence number, as ping(8) sends one a second: one lost
 * packet on a real network does not make a host down, and a reply to either echo shows it is up.
 * A host that answers neither is down at end_us, as without the second echo. *rtt is measured
 * from the echo that was answered.
 */
static int await_reply(int fd, const struct echo *e, int64_t end_us, int64_t *rtt, char *err,
                       size_t errlen)
{
    uint8_t buf[RECV_LEN];
    int64_t sent[ECHOES] = {0};
    int n = 1; /* echoes sent */
    int rc = send_echo(fd, e, 0, &sent[0], err, errlen);

    if (rc != 0)
        return rc;
    int64_t half = (end_us - sent[0]) / 2, resend = sent[0] + RESEND_MS * 1000;
    if (half < RESEND_MS * 1000)
        resend = sent[0] + half;
    for (;;) {
        bool more = n < ECHOES && resend < end_us;
        rc = wait_until(fd, POLLIN, more ? resend : end_us);
        if (rc == DST_ETIMEDOUT && more) {
            rc = send_echo(fd, e, n, &sent[n], err, errlen);
            n++;
            if (rc != 0)
                return rc;
            continue;
        }
        if (rc == DST_EIO)
            return sys_fail("poll", errno, err, errlen);
        if (rc == 0)
            rc = take_errors(fd, err, errlen);
        if (rc != 0)
            return rc;
        /* fails with the errno of an ICMP error that came since: take_errors judges it next */
        ssize_t got = recv(fd, buf, sizeof(buf), 0);
        int k = got > 0 ? reply_to(e, buf, (size_t)got) : -1;
        if (k >= 0 && k < n) {
            *rtt = dst_monotonic_us() - sent[k];
            return 0;
        }
    }
}

/*
 * One probe over fd, a datagram or raw ICMP socket: an echo with seq (and seq + 1 if resent).
 * Connected, so that a raw socket only takes packets from addr and an ICMP error about our echo
 * becomes a socket error.
 */
static int probe_icmp(int fd, bool raw, const struct sockaddr *addr, socklen_t addrlen,
                      uint16_t seq, int timeout_ms, int64_t *rtt, char *err, size_t errlen)
{
    struct echo e = {.family = addr->sa_family, .raw = raw};

    if (getrandom(e.nonce, sizeof(e.nonce), GRND_NONBLOCK) != (ssize_t)sizeof(e.nonce)) {
        int64_t t = dst_monotonic_us() ^ (int64_t)seq << 48;
        memcpy(e.nonce, &t, sizeof(t));
    }
    if (raw)
        memcpy(&e.id, e.nonce + 6, 2); /* random per probe: concurrent probes stay apart */
    for (int k = 0; k < ECHOES; k++)
        e.seq[k] = htons((uint16_t)(seq + k));
    tune_socket(fd, &e);
    if (connect(fd, addr, addrlen) != 0)
        return sys_fail("connect", errno, err, errlen);
    int rc = await_reply(fd, &e, dst_monotonic_us() + (int64_t)timeout_ms * 1000, rtt, err, errlen);
    if (rc == DST_ETIMEDOUT)
        set_err(err, errlen, "no echo reply within %d ms", timeout_ms);
    return rc;
}

/* A TCP connect to addr:port over fd: an accept or a refusal (a RST) both mean the host is up. */
static int probe_tcp(int fd, const struct sockaddr *addr, socklen_t addrlen, int port,
                     int timeout_ms, int64_t *rtt, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    socklen_t len = sizeof(int);
    int e = 0;

    if (port < 1 || port > 65535) {
        set_err(err, errlen, "no TCP port to connect to (%d)", port);
        return DST_EINVAL;
    }
    memcpy(&ss, addr, addrlen);
    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
    int64_t t0 = dst_monotonic_us();
    if (connect(fd, (struct sockaddr *)&ss, addrlen) != 0)
        e = errno;
    if (e == EINPROGRESS) {
        int rc = wait_until(fd, POLLOUT, t0 + (int64_t)timeout_ms * 1000);
        if (rc == DST_ETIMEDOUT) {
            set_err(err, errlen, "no TCP answer within %d ms", timeout_ms);
            return rc;
        }
        if (rc != 0)
            return sys_fail("poll", errno, err, errlen);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
            e = errno;
    }
    if (e != 0 && e != ECONNREFUSED)
        return sys_fail("connect", e, err, errlen);
    *rtt = dst_monotonic_us() - t0;
    if (e == 0) /* close with a RST: no TIME_WAIT left behind by every probe */
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    return 0;
}

int dst_pinger_probe(struct dst_pinger *p, const struct sockaddr *addr, socklen_t addrlen,
                     int tcp_port, int timeout_ms, int64_t *rtt_us, char *err, size_t errlen)
{
    int family = addr ? addr->sa_family : AF_UNSPEC;
    int64_t rtt = 0;
    int rc = 0;

    if (!((family == AF_INET && addrlen >= sizeof(struct sockaddr_in)) ||
          (family == AF_INET6 && addrlen >= sizeof(struct sockaddr_in6))) ||
        addrlen > sizeof(struct sockaddr_storage)) {
        set_err(err, errlen, "not an IPv4 or IPv6 address");
        return DST_EINVAL;
    }
    if (timeout_ms < 0)
        timeout_ms = 0;
    uint16_t seq = (uint16_t)atomic_fetch_add(&p->seq, ECHOES);
    for (int m = p->method;; m++) {
        int fd = open_socket((enum dst_ping_method)m, family);
        if (fd < 0 && p->fallback && m != DST_PING_TCP)
            continue; /* e.g. ICMPv6 not allowed where ICMP is: the next method, for this call */
        if (fd < 0)
            return sys_fail("socket", errno, err, errlen);
        if (m == DST_PING_TCP)
            rc = probe_tcp(fd, addr, addrlen, tcp_port, timeout_ms, &rtt, err, errlen);
        else
            rc = probe_icmp(fd, m == DST_PING_ICMP_RAW, addr, addrlen, seq, timeout_ms, &rtt, err,
                            errlen);
        close(fd);
        break;
    }
    if (rc == 0 && rtt_us)
        *rtt_us = rtt > 0 ? rtt : 1; /* an answer always took some time */
    return rc;
}
