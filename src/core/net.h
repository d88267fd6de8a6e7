/* net.h - TCP sockets with deadlines: connect, listen, exact reads and writes, capped lines */
#ifndef DST_NET_H
#define DST_NET_H

#include <stddef.h>
#include <stdint.h>

#define DST_NET_BUF 4096 /* read-ahead of a connection, for lines */

/*
 * A connected socket (non-blocking, close-on-exec) and the bytes read ahead of the caller.
 * Every operation takes an absolute deadline in dst_monotonic_ms() time (< 0: none) and, when
 * idle_ms > 0, also fails once no byte has moved for idle_ms. A deadline that has already
 * passed still lets an operation take what is ready without waiting, so "deadline = now" is a
 * non-blocking try. Writes never raise SIGPIPE. One thread per connection at a time.
 */
struct dst_net_conn {
    int fd;          /* -1 when closed */
    int idle_ms;     /* 0: no idle limit */
    int sys_errno;   /* errno of the last DST_EIO, 0 when the peer closed the connection */
    size_t off, len; /* read ahead: buf[off, len) */
    char buf[DST_NET_BUF];
};

/* Makes c own fd (made non-blocking); idle_ms 0. */
void dst_net_conn_init(struct dst_net_conn *c, int fd);
/* Closes the socket (if open) and forgets what was read ahead; c may be reused. */
void dst_net_close(struct dst_net_conn *c);
/*
 * Closes at once with a reset (SO_LINGER 0), dropping what is still unsent: for a peer that
 * stalled or misbehaved, whose socket would otherwise linger with its data for minutes.
 */
void dst_net_abort(struct dst_net_conn *c);

/*
 * Connects to host:port (a name, an IPv4 or an IPv6 address; each address getaddrinfo gives is
 * tried in turn) within timeout_ms, and sets TCP_NODELAY. On success initialises *c; on failure
 * leaves it closed (fd -1) and writes the reason into err: DST_EDEP with "DNS: cannot resolve
 * 'HOST': REASON", "refused: ADDR:PORT" or "connect: ADDR:PORT: REASON"; DST_ETIMEDOUT with
 * "timeout: connecting to HOST:PORT after N ms".
 */
int dst_net_connect(const char *host, int port, int timeout_ms, struct dst_net_conn *c, char *err,
                    size_t errlen);

/*
 * Listens on host:port (port 0: a free one; host "" or "0.0.0.0": every IPv4 address, "::":
 * every address) with SO_REUSEADDR. Returns the listening socket (non-blocking, close-on-exec)
 * in *fd_out and the bound port in *port_out. Errors with a reason in err: DST_EDEP (host does
 * not resolve), DST_ECONFLICT (address in use), DST_EIO (any other bind/listen failure).
 */
int dst_net_listen(const char *host, int port, int backlog, int *fd_out, int *port_out, char *err,
                   size_t errlen);

/*
 * Reads what is there, at least 1 and at most n bytes, into p (*got). DST_ETIMEDOUT when
 * nothing came in time; DST_EIO when the peer closed (sys_errno 0) or on a socket error.
 */
int dst_net_read(struct dst_net_conn *c, void *p, size_t n, int64_t deadline_ms, size_t *got);

/*
 * Reads exactly n bytes into p. *got (may be NULL) says how many came before a failure:
 * DST_ETIMEDOUT or DST_EIO (peer closed early: a short read, or a socket error).
 */
int dst_net_read_exact(struct dst_net_conn *c, void *p, size_t n, int64_t deadline_ms, size_t *got);

/*
 * Reads one line ending in "\n" into line (NUL-terminated, without "\n" or a "\r" before it).
 * *raw (may be NULL) gets the bytes the line took on the wire, terminator included. A line of
 * more than cap - 1 bytes (or DST_NET_BUF - 1, the read-ahead) before its "\n" is DST_ETOOBIG;
 * its bytes stay unread, so the caller should close. A line with a NUL byte in it (no text
 * line has one) is taken but gives DST_EINVAL. On DST_ETIMEDOUT a partial line stays buffered
 * for the next call. DST_EIO when the peer closed or on a socket error.
 */
int dst_net_read_line(struct dst_net_conn *c, char *line, size_t cap, int64_t deadline_ms,
                      size_t *raw);

/* Writes at least 1 and at most n bytes of p (*put); DST_ETIMEDOUT or DST_EIO. */
int dst_net_write(struct dst_net_conn *c, const void *p, size_t n, int64_t deadline_ms,
                  size_t *put);

/* Writes all n bytes of p; DST_ETIMEDOUT or DST_EIO (what was written is lost to the caller). */
int dst_net_write_all(struct dst_net_conn *c, const void *p, size_t n, int64_t deadline_ms);

/* "ADDR:PORT" ("[V6]:PORT") of the connection's peer, or "?" when unknown. */
void dst_net_peer(const struct dst_net_conn *c, char *out, size_t outlen);

#endif
