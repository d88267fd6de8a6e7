/* ping.h - is a host up: ICMP echo (ping socket, else raw socket), else a TCP connect */
#ifndef DST_PING_H
#define DST_PING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * How a probe asks. ICMP: an echo over an unprivileged ICMP datagram socket (Linux "ping
 * socket", allowed when the process's group is inside net.ipv4.ping_group_range); ICMP_RAW: an
 * echo over a raw socket (needs CAP_NET_RAW); TCP: a connect to the backend's port, where a
 * refusal counts as an answer. AUTO is only something to ask for: a pinger resolves it to the
 * first of ICMP, ICMP_RAW, TCP that works.
 */
enum dst_ping_method { DST_PING_AUTO, DST_PING_ICMP, DST_PING_ICMP_RAW, DST_PING_TCP };

struct dst_pinger;

/*
 * want AUTO: the first method whose socket can be opened for AF_INET (tried with a real
 * socket() call and closed); an explicit method that cannot open its socket → DST_EDEP with the
 * reason logged (dst_error from core/log.h, with strerror and a hint e.g. "sysctl
 * net.ipv4.ping_group_range" or "needs CAP_NET_RAW"). DST_EINVAL for a want outside the enum.
 * The pinger belongs to the caller (dst_pinger_free).
 */
int dst_pinger_new(enum dst_ping_method want, struct dst_pinger **out);
/* Frees p; NULL is fine. No probe may be running on it. */
void dst_pinger_free(struct dst_pinger *p);
/*
 * The method p uses: never AUTO. A pinger made with AUTO may still fall back to a later method
 * for one probe whose own socket cannot be opened (e.g. ICMPv6 where only IPv4 is allowed).
 */
enum dst_ping_method dst_pinger_method(const struct dst_pinger *p);

/* "icmp" (unprivileged datagram socket), "icmp-raw", "tcp", "auto"; "?" outside the enum */
const char *dst_ping_method_name(enum dst_ping_method m);
/* the reverse, for a --ping option; DST_EINVAL for anything else */
int dst_ping_method_parse(const char *s, enum dst_ping_method *out);

/*
 * One echo to addr (IPv4 or IPv6, port ignored except by TCP, which connects to tcp_port).
 * 0: the host answered, *rtt_us (may be NULL) = round-trip time in microseconds (at least 1);
 * DST_ETIMEDOUT: no answer within timeout_ms; DST_EIO: unreachable (an ICMP error, EHOSTUNREACH,
 * ENETUNREACH, ...) or a socket failure — err (may be NULL) receives a short human reason either
 * way.
 * DST_EINVAL: addr is not IPv4/IPv6, or TCP is used and tcp_port is not 1-65535.
 * A TCP connect that succeeds is closed with a reset (no TIME_WAIT left behind per probe).
 * Blocks for at most about timeout_ms.
 * Thread-safe: concurrent calls on one pinger are fine (each call opens its own socket; a raw one
 * keeps only the reply to its own echo, so other pings of the same host cannot crowd it out).
 */
int dst_pinger_probe(struct dst_pinger *p, const struct sockaddr *addr, socklen_t addrlen,
                     int tcp_port, int timeout_ms, int64_t *rtt_us, char *err, size_t errlen);

#endif
