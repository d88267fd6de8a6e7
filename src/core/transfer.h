/* transfer.h - parallel HTTP transfers for speed tests (libcurl multi): phases and latency */
#ifndef DST_TRANSFER_H
#define DST_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DST_TRANSFER_MAX_STREAMS 64
#define DST_TRANSFER_MAX_URL     1024

enum dst_transfer_dir {
    DST_TRANSFER_DOWNLOAD, /* GET each URL, count the body bytes received (never stored) */
    DST_TRANSFER_UPLOAD,   /* POST bodies of the given sizes, count what the server took */
};

/* The phase's rate so far (bit/s over the counted window; during the grace period, since start). */
typedef void (*dst_transfer_progress_fn)(void *ud, double bps);

/*
 * Checks the server's answer to one upload of sent bytes: reply holds its first bytes
 * (NUL-terminated, at most 63). 0 accepts; anything else fails the phase with err's text.
 */
typedef int (*dst_transfer_reply_fn)(void *ud, uint64_t sent, const char *reply, char *err,
                                     size_t errlen);

/* One phase. Pointers are borrowed for the call. */
struct dst_transfer_opts {
    enum dst_transfer_dir dir;
    const char *const *urls; /* requests go to urls[0], urls[1], ... (cycled) */
    size_t nurls;
    const uint64_t *sizes; /* upload: body sizes, cycled along with the URLs */
    size_t nsizes;
    const char *prefix;       /* upload: the body starts with this (e.g. "content1="); in size */
    const char *content_type; /* upload; NULL: application/octet-stream */
    const char *buster;       /* query key of a cache buster added to each URL ("x"); NULL: none */
    bool repeat;              /* start over after the last request, until the duration is over */
    int streams;              /* concurrent requests, 1..DST_TRANSFER_MAX_STREAMS */
    int64_t duration_ms;      /* the phase, grace included; then it stops (> 0) */
    int64_t grace_ms;         /* bytes moved in the first grace_ms are not counted */
    int64_t drain_ms;         /* after the duration, let requests in flight finish (see below) */
    uint64_t max_bytes;       /* stop once this many bytes moved; 0: no budget */
    long connect_timeout_ms;  /* 0 → 5000 */
    long stall_ms;            /* no byte delivered this long: a stall (below); 0 → 5000 */
    dst_transfer_reply_fn check_reply; /* upload; NULL: any 2xx answer is fine */
    void *reply_ud;
    dst_transfer_progress_fn progress; /* ~5 times a second; may be NULL */
    void *progress_ud;
};

struct dst_transfer_stats {
    uint64_t bytes;       /* counted: moved inside the window */
    double seconds;       /* the window: from the end of the grace period to the stop */
    double bps;           /* bytes * 8 / seconds; 0 if nothing was counted */
    uint64_t bytes_total; /* moved by the whole phase (grace, window, drain, requests cut off) */
    int requests;         /* started */
    int completed;        /* answered 2xx (and accepted by check_reply) */
    int failed;           /* transport failure, non-2xx status, rejected reply, stall */
    int aborted;          /* still in flight when the phase ended */
    long status;          /* the HTTP status of the first failure (0: none, or no answer) */
    char error[256];      /* the first failure, e.g. "HTTP 413 from http://..." */
};

/*
 * Runs one phase: o->streams requests at a time, each new one started as soon as one ends,
 * until o->duration_ms (or the list ends without o->repeat, or o->max_bytes moved, or a
 * failure, or a stop signal). Blocks for about the duration (+ drain).
 *
 * What counts: bytes moved between the end of the grace period and the stop, by requests that
 * were answered 2xx or were still in flight at the stop. A download's bytes are the body bytes
 * received. An upload's are the body bytes the server's TCP has acknowledged: bytes handed to
 * the socket minus those still in its send queue (SIOCOUTQ), so a full send buffer at the
 * deadline is not mistaken for speed. A request that ends in a failure counts nothing, and any
 * failure fails the phase: an upload the server rejects (413) can never look fast. Requests in
 * flight at the deadline were not answered yet; their bytes up to the deadline count (decided:
 * otherwise large bodies on slow links would count nothing), and they are cut off then, unless
 * drain_ms allows them to finish: when they can, at the measured rate, within drain_ms, they
 * run on (uncounted for the rate, but in bytes_total, and failures still fail the phase), so
 * the bytes both ends saw agree. If the phase ends inside the grace period, all bytes count.
 * A request stalls when, for stall_ms, none of its bytes reached the other end (counted as
 * above: an upload's bytes handed to curl or queued in the socket are not progress yet) and no
 * byte of its answer came.
 *
 * Returns 0; DST_EINVAL for bad options (st->error says which); DST_EDEP if libcurl cannot be
 * loaded; on a failure of the test itself, DST_ETIMEDOUT (stall, connect timeout) or DST_EDEP
 * (DNS, refused, HTTP status, short body, rejected reply), with st->error:
 *   "DNS: cannot resolve 'host'", "refused: 127.0.0.1:9", "timeout: no data for 5.0 s from URL",
 *   "HTTP 404 from URL", "short body: N of M bytes from URL", "empty reply from URL".
 * st is filled in every case.
 */
int dst_transfer_run(const struct dst_transfer_opts *o, struct dst_transfer_stats *st);

struct dst_latency_opts {
    const char *url;
    int count;                 /* requests, one after the other on one kept-alive connection */
    const char *buster;        /* as above; NULL: none */
    const char *expect_prefix; /* a sample is valid only if the body starts with this; NULL: any */
    long timeout_ms;           /* per request; 0 → 5000 */
};

/*
 * Times count GETs of a small URL: each sample is the time from sending the request to the
 * first byte of the answer (connection set-up excluded), in ms, or NAN when the body did not
 * start with expect_prefix. samples holds count values. *nvalid gets the number of valid ones.
 * Returns 0, or stops at the first transport failure or non-2xx answer and returns
 * DST_ETIMEDOUT/DST_EDEP with the same texts as dst_transfer_run in err; DST_EINVAL for bad
 * options. Blocks.
 */
int dst_transfer_latency(const struct dst_latency_opts *o, double *samples, int *nvalid, char *err,
                         size_t errlen);

#endif
