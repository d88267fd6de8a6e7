/* transfer_priv.h - what a phase (transfer.c), its streams and the latency samples share */
#ifndef DST_TRANSFER_PRIV_H
#define DST_TRANSFER_PRIV_H

/*
 * Private to the module: only transfer.c (a phase), transfer_stream.c (one stream of it) and
 * transfer_latency.c include this.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/curl_lib.h"
#include "core/transfer.h"

#define TRANSFER_DEFAULT_CONNECT_MS 5000L
#define TRANSFER_REPLY_MAX          64
#define TRANSFER_USER_AGENT         "dstmc/" DSTMC_VERSION
#define TRANSFER_MAX_SOCKETS        (4 * DST_TRANSFER_MAX_STREAMS)

struct transfer_run;

/* One stream: a curl handle reused for request after request (connections are kept alive). */
struct transfer_xfer {
    CURL *h;
    struct transfer_run *run;
    const char *url;                      /* as asked for: for messages */
    char full[DST_TRANSFER_MAX_URL + 64]; /* with the cache buster */
    uint64_t size;                        /* upload: body length */
    uint64_t moved;                       /* body bytes received, or handed to the socket */
    uint64_t base;                        /* delivered bytes when the window opened */
    uint64_t seen;                        /* the most delivered so far: more is progress */
    int64_t last_ms;                      /* last progress: bytes delivered, answer bytes */
    int fd;                               /* the request's socket, -1 until it is known */
    char reply[TRANSFER_REPLY_MAX];
    size_t reply_len;
    bool busy;
    char errbuf[CURL_ERROR_SIZE];
};

/* One phase (dst_transfer_run) under way. */
struct transfer_run {
    const struct dst_transfer_opts *o;
    struct dst_transfer_stats *st;
    CURLM *m;
    struct transfer_xfer *x;
    struct curl_slist *hdrs;
    uint64_t next;       /* the next request's number: picks its URL and size */
    uint64_t done_bytes; /* moved by requests that ended */
    int64_t t0, grace_end, window_start, window_end, next_tick, stamp; /* monotonic ms */
    int64_t epoch; /* wall-clock ms at the start */
    bool window_open, window_closed;
    int active;
    int rc; /* the first failure */
    /*
     * The phase's open sockets, from curl's open and close callbacks: curl tells a request's
     * local port (CURLOPT_PREREQFUNCTION) but not its socket (CURLINFO_ACTIVESOCKET is only
     * set once a transfer is over), and the kernel's queues are read from the socket.
     */
    int socks[TRANSFER_MAX_SOCKETS];
    int nsocks;
};

/*
 * Options every request of the phase shares, set once per stream on a new handle (x->h).
 * 0, or DST_EDEP when curl has no handle to give.
 */
int transfer_xfer_init(struct transfer_run *r, struct transfer_xfer *x);

/*
 * The bytes of the running request that reached the other end: received plus what waits in
 * the receive queue; or written to the socket (curl's count: what it took from on_send may
 * still sit in its upload buffer) minus what the peer has not acknowledged yet.
 */
uint64_t transfer_delivered(const struct transfer_xfer *x);

/*
 * Turns how a request ended into a code and a text for a person. status is the HTTP status
 * (0: none); a non-2xx status wins over the transport error it may have caused.
 */
int transfer_classify(CURL *h, CURLcode cc, long status, const char *url, const char *errbuf,
                      char *out, size_t outlen);

#endif
