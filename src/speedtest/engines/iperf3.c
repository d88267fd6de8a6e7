/* iperf3.c - the iperf3 engine: iperf3 through libiperf (iperf3://HOST[:5201]) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/iperf.h"
#include "core/sig.h"
#include "speedtest/engines/engine.h"

/*
 * iperf3://HOST[:5201][?duration=S&streams=N&omit=S&retries=N] against `iperf3 -s` or
 * `dstmc server`. As the issue asks: upload first (iperf3's normal mode, the probe sends), then
 * download (reverse mode, the server sends), each `duration` seconds (10) on `streams` TCP
 * streams (1). The first `omit` seconds (1) of each are left out, as iperf3 -O does: TCP's
 * start (BBR's startup overshoots a shaped link by thousands of retransmits) makes the first
 * second the noisy one, and the other engines skip their start too (their grace). Speeds and
 * bytes are the receiver's (end.sum_received, the omitted seconds not in them), as iperf3
 * itself reports them.
 *
 * An iperf3 server runs one test at a time and tells others "busy". A busy server is tried again
 * after 1, 2, 4 ... s, each ± 50 % at random (probes started by the same cron minute drift
 * apart), up to `retries` (5) more tries or the test's time budget. A refusal is tried again
 * every 250 ms for up to 2 s, and so is a connection reset at once: a server between two tests
 * has no listener for a moment, or still the last test's, which resets what it had accepted; it
 * ends its side of a test later than its client does. The download phase starts 300 ms after
 * the upload for the same reason.
 */
#define DEFAULT_PORT     DST_IPERF_PORT
#define REFUSED_RETRY_MS 250
#define REFUSED_TRIES    8    /* 2 s: a server ends its side of a test after its client does */
#define PHASE_SLACK_MS   5000 /* a phase's time beyond its duration: connect, exchange, end */
#define EARLY_RESET_MS   1500 /* a reset this soon after the start: no test had begun */
#define BETWEEN_MS       300  /* the pause between upload and download: the server's cleanup */

struct params {
    long duration, streams, omit, retries;
};

static int params(const struct engine_target *t, struct params *p, char *err, size_t errlen)
{
    int rc = engine_target_int(t, "duration", 10, 1, 300, &p->duration, err, errlen);
    rc = rc ? rc : engine_target_int(t, "streams", 1, 1, 128, &p->streams, err, errlen);
    rc = rc ? rc : engine_target_int(t, "omit", 1, 0, 60, &p->omit, err, errlen);
    rc = rc ? rc : engine_target_int(t, "retries", 5, 0, 20, &p->retries, err, errlen);
    return rc;
}

static int iperf3_check(const struct engine_target *t, char *err, size_t errlen)
{
    struct params p;

    if (!t->host[0])
        return snprintf(err, errlen, "iperf3://HOST[:PORT]"), DST_EINVAL;
    if (t->path[0] && strcmp(t->path, "/") != 0)
        return snprintf(err, errlen, "iperf3://HOST[:PORT] takes no path"), DST_EINVAL;
    return params(t, &p, err, errlen);
}

/*
 * A server between two tests: nothing listens (refused), or the last test's listener took the
 * connection and closed (reset, at once). Either is over in a moment.
 */
static bool between_tests(int rc, const char *err, int64_t took_ms)
{
    if (rc == DST_EDEP && strncmp(err, "refused", 7) == 0)
        return true;
    return rc == DST_EIO && strstr(err, "reset by peer") && took_ms < EARLY_RESET_MS;
}

/* The wait after the n-th busy answer: 2^(n-1) s ± 50 %. */
static int64_t backoff_ms(int n, unsigned *seed)
{
    double base = 1000.0 * (double)(1L << (n - 1 < 10 ? n - 1 : 10));
    return (int64_t)(base * (0.5 + (double)rand_r(seed) / RAND_MAX));
}

/*
 * One direction, tried again while the server is busy (or refused for a moment); 0 or a DST_E* code
 * with the reason in err.
 */
static int phase(const struct engine_target *t, const struct params *p, bool reverse,
                 int64_t end_ms, struct dst_iperf_report *rep, char *err, size_t errlen)
{
    struct dst_iperf_opts o = {.host = t->host,
                               .port = t->port ? t->port : DEFAULT_PORT,
                               .duration_s = (int)p->duration,
                               .streams = (int)p->streams,
                               .omit_s = (int)p->omit,
                               .reverse = reverse};
    int64_t need_ms = (p->duration + p->omit) * 1000 + PHASE_SLACK_MS, wait = 0;
    unsigned seed = (unsigned)dst_monotonic_us() ^ (unsigned)getpid();
    int refused = 0;
    int busy = 0, rc = 0;

    for (;;) {
        o.timeout_ms = (int)(end_ms - dst_monotonic_ms());
        if (o.timeout_ms <= 0)
            return snprintf(err, errlen, "timeout: the test's time budget ran out"), DST_ETIMEDOUT;
        int64_t t0 = dst_monotonic_ms();
        rc = dst_iperf_run(&o, rep, err, errlen);
        if (between_tests(rc, err, dst_monotonic_ms() - t0) && ++refused < REFUSED_TRIES) {
            wait = REFUSED_RETRY_MS; /* maybe a server between two tests */
        } else if (rc == DST_EBUSY) {
            wait = backoff_ms(++busy, &seed);
            if (busy > p->retries || dst_monotonic_ms() + wait + need_ms > end_ms)
                return snprintf(err, errlen, "busy: the iperf3 server stayed busy after %d %s",
                                busy, busy == 1 ? "try" : "tries"),
                       rc;
        } else {
            return rc;
        }
        if (dst_sig_wait((int)wait))
            return snprintf(err, errlen, "stopped while waiting for the iperf3 server"),
                   DST_ETIMEDOUT;
    }
}

static void fill_result(const struct engine_target *t, const struct params *p,
                        const struct dst_iperf_report *up, const struct dst_iperf_report *down,
                        struct dst_result *r)
{
    char hostport[300];

    engine_target_hostport(t, DEFAULT_PORT, hostport, sizeof(hostport));
    dst_result_set(&r->server_host, hostport);
    r->upload_bps = up->received.bps;
    r->download_bps = down->received.bps;
    r->bytes_up = (int64_t)up->received.bytes;
    r->bytes_down = (int64_t)down->received.bytes;
    r->duration_s = up->received.seconds + down->received.seconds;
    r->streams = p->streams;
    /*
     * iperf3 sends no pings. Its nearest figure is TCP's smoothed RTT of the upload streams
     * (the probe sends, so the kernel measures it here; end.streams[].sender.mean_rtt, µs),
     * averaged over the test: a round trip under load, queueing included, so on a link with
     * big buffers it is higher than an idle ping. Unknown when the kernel gave none.
     */
    r->ping_ms = isfinite(up->mean_rtt_ms) ? up->mean_rtt_ms : NAN;
}

static int iperf3_run(const struct engine_ctx *ctx, const struct engine_target *t,
                      struct dst_result *r)
{
    struct dst_iperf_report up, down;
    struct params p;
    char err[512];
    int64_t end_ms = dst_monotonic_ms() + (ctx->timeout_s > 0 ? ctx->timeout_s : 60) * 1000L;

    if (params(t, &p, err, sizeof(err)) != 0)
        return engine_fail(r, "%s", err);
    engine_say(ctx, "Testing upload speed");
    if (phase(t, &p, false, end_ms, &up, err, sizeof(err)) != 0)
        return engine_fail(r, "%s", err);
    engine_progress(ctx, "upload", up.received.bps);
    engine_say(ctx, "Testing download speed");
    dst_sig_wait(BETWEEN_MS);
    if (phase(t, &p, true, end_ms, &down, err, sizeof(err)) != 0)
        return engine_fail(r, "%s", err);
    engine_progress(ctx, "download", down.received.bps);
    fill_result(t, &p, &up, &down, r);
    return 0;
}

const struct engine_ops engine_iperf3 = {
    .scheme = "iperf3",
    .name = "iperf3",
    .check = iperf3_check,
    .run = iperf3_run,
};
