/* http_shared.h - what the test server's two HTTP protocols share (speedtest.c, librespeed.c) */
#ifndef DST_SERVER_HTTP_SHARED_H
#define DST_SERVER_HTTP_SHARED_H

#include <stdbool.h>
#include <stddef.h>

#include "core/http_server.h"

struct server;

/*
 * The random payload: SERVER_PAYLOAD_SIZE incompressible bytes, made once and shared by every
 * download of both protocols, which reply with slices of it, repeated for larger bodies (no
 * copy per request). 1 MiB: a repeat is far beyond any HTTP compressor's window, and the test
 * server inside `dstmc up` stays small (the whole 31.6 MB random4000x4000.jpg took 32 MiB).
 */
#define SERVER_PAYLOAD_SIZE ((size_t)1 << 20)

struct dst_http_req;

/*
 * Replies 200 with size bytes of the payload, repeated as needed (no copy); 503 if the kernel
 * gave no random bytes for it (logged).
 */
int server_payload_reply(struct dst_http_req *req, const char *ctype, size_t size);

/*
 * The payload is made on its first use (from the kernel's random source, a few ms), so a test
 * server that serves no download (inside `dstmc up`, mostly) never holds it. Each protocol that
 * serves it takes a reference when mounted and drops it when freed; the last drop frees it.
 */
void server_payload_acquire(void);
/* The payload (made now if needed); NULL if the kernel gave no random bytes. Thread-safe. */
const unsigned char *server_payload(void);
/* Drops one reference; the argument is ignored (it fits dst_http_server_on_free). */
void server_payload_release(void *unused);

/*
 * One kind of request of an HTTP protocol, the ud of its routes: every request is counted in
 * dstmc_server_requests_total{protocol,kind} when it is over (as kind "error" if it got no
 * 2xx/3xx reply), and keeps the server busy (--idle-exit) from its headers to its end. Its
 * payload counts in dstmc_server_bytes_total: for SERVER_BYTES_IN the request body bytes read
 * (also of a refused or cut upload), for SERVER_BYTES_OUT the reply body bytes sent by a 2xx
 * reply (all of a complete one, what the client's TCP acknowledged of a cut one).
 */
enum server_bytes { SERVER_BYTES_NONE, SERVER_BYTES_IN, SERVER_BYTES_OUT };

struct server_route {
    struct server *s;
    const char *protocol; /* "speedtest" or "librespeed" */
    const char *kind;
    enum server_bytes payload;
    const void *proto; /* the protocol's own state, for its handlers */
};

/* Adds a route with r (which must live as long as h) as its ud. 0, or DST_EINVAL (bad pattern). */
int server_route_add(struct dst_http_server *h, const struct server_route *r, const char *method,
                     const char *pattern, dst_http_handler_fn fn, unsigned flags, size_t max_body);

/*
 * The client's address into buf: the peer's; or, when the peer is a loopback address (a
 * reverse proxy on this host), the first address of X-Forwarded-For, else X-Real-IP, when it
 * is a valid IP address. An IPv4-mapped IPv6 address is written as plain IPv4.
 */
void server_client_ip(const struct dst_http_req *req, char *buf, size_t len);

#endif
