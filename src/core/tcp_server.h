/* tcp_server.h - a TCP listener for raw protocols: a thread per connection, capped, idle-timed */
#ifndef DST_TCP_SERVER_H
#define DST_TCP_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/net.h"

struct dst_tcp_server;

/*
 * Serves one connection on its own thread, until it returns; the server then closes c. c is
 * borrowed (c->idle_ms is the server's idle timeout, so every dst_net_* call on c fails once
 * the peer has been silent or stalled that long). peer is "ADDR:PORT". When the server stops,
 * c is shut down, so blocked calls return DST_EIO; the handler should then return soon.
 */
typedef void (*dst_tcp_handler_fn)(void *ud, struct dst_net_conn *c, const char *peer);

struct dst_tcp_server_opts {
    const char *listen; /* "HOST:PORT" ("[V6]:PORT", ":PORT"); port 0 picks a free port */
    const char *name;   /* component name in log lines, e.g. "ookla" */
    unsigned max_conns; /* concurrent connections (0 → 64); one more is closed at once */
    int idle_ms;        /* per connection (0 → 30000) */
    dst_tcp_handler_fn handler;
    void (*on_reject)(void *ud); /* optional: a connection over max_conns was closed */
    void *ud;                    /* for handler and on_reject */
    bool quiet;                  /* do not print the "listening on" line */
};

/* Creates a server (not yet listening). DST_EINVAL if listen does not parse or no handler. */
int dst_tcp_server_new(const struct dst_tcp_server_opts *opts, struct dst_tcp_server **out);

/*
 * Binds and starts accepting on a thread of its own, then prints "listening on tcp://HOST:PORT"
 * (unless quiet). DST_ECONFLICT (address in use), DST_EDEP or DST_EIO if it cannot listen (the
 * reason is logged).
 */
int dst_tcp_server_start(struct dst_tcp_server *s);

int dst_tcp_server_port(const struct dst_tcp_server *s); /* the bound port, after start */

/* Connections being served now, and those closed at once for being over max_conns so far. */
unsigned dst_tcp_server_active(struct dst_tcp_server *s);
uint64_t dst_tcp_server_rejected(struct dst_tcp_server *s);

/*
 * Stops: no more accepts, every live connection shut down (both ways), every thread joined.
 * Safe to call more than once, and before start.
 */
void dst_tcp_server_stop(struct dst_tcp_server *s);
/* Stops first if needed; NULL is fine. */
void dst_tcp_server_free(struct dst_tcp_server *s);

#endif
