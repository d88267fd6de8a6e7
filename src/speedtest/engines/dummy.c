/* dummy.c - the "dummy:" engine: canned values, as the original logger's useDummyData */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/sig.h"
#include "speedtest/engines/engine.h"

/* The original's Random.Next(lo, hi): an integer in [lo, hi). */
static int next(int lo, int hi)
{
    return lo + (int)(drand48() * (hi - lo));
}

/* "dummy:?seconds=N": the test takes N seconds (0..3600), like a real one would. */
static int dummy_check(const struct engine_target *t, char *err, size_t errlen)
{
    long s;

    for (int i = 0; i < t->nparams; i++) {
        if (strcmp(t->keys[i], "seconds") != 0)
            return snprintf(err, errlen, "unknown parameter '%s' (known: seconds)", t->keys[i]),
                   DST_EINVAL;
    }
    return engine_target_int(t, "seconds", 0, 0, 3600, &s, err, errlen);
}

#define TICK_MS 250 /* progress about four times a second while a test waits */

/*
 * Waits the test's seconds in three phases (latency, download, upload), reporting progress
 * towards the canned speeds as it goes; a failed result if it overruns the time limit or a
 * stop comes.
 */
static int delay(const struct engine_ctx *ctx, const struct engine_target *t, struct dst_result *r,
                 double down_bps, double up_bps)
{
    static const char *const phases[] = {"latency", "download", "upload"};
    char err[128];
    long s = 0;
    long limit = ctx->timeout_s > 0 ? ctx->timeout_s : 60;

    if (engine_target_int(t, "seconds", 0, 0, 3600, &s, err, sizeof(err)) != 0)
        return engine_fail(r, "%s", err);
    if (s == 0)
        return 0;
    int64_t total = (s < limit ? s : limit) * 1000, waited = 0;
    while (waited < total) {
        int64_t step = total - waited < TICK_MS ? total - waited : TICK_MS;
        if (dst_sig_wait((int)step))
            return engine_fail(r, "stopped before the end of the test");
        waited += step;
        int ph = (int)(waited * 3 / (total + 1));
        double frac = (double)(waited - ph * total / 3) / ((double)total / 3);
        double ramp = 0.5 + 0.5 * frac; /* TCP's start, roughly */
        double bps = ph == 1 ? down_bps * ramp : ph == 2 ? up_bps * ramp : 0;
        engine_progress(ctx, phases[ph], bps);
    }
    if (s > limit)
        return engine_fail(r, "timed out after %ld s", limit);
    return 0;
}

static int dummy_run(const struct engine_ctx *ctx, const struct engine_target *t,
                     struct dst_result *r)
{
    static int seeded;

    if (!seeded) {
        srand48(dst_monotonic_us());
        seeded = 1;
    }
    engine_say(ctx, "Returning dummy data");
    double down = next(60, 100) * 1e6, up = next(60, 100) * 1e6;
    delay(ctx, t, r, down, up);
    if (r->status == DST_RESULT_FAILED)
        return 0;
    r->download_bps = down;
    r->upload_bps = up;
    r->ping_ms = next(6, 20);
    r->duration_s = 0;
    r->streams = 1;
    dst_result_set(&r->client_ip, "127.0.0.1");
    dst_result_set(&r->client_isp, "UUNET");
    dst_result_set(&r->client_country, "NO");
    r->client_lat = 59.913396;
    r->client_lon = 10.741330;
    dst_result_set(&r->server_host, "speedtest.not");
    dst_result_set(&r->server_country, "NO");
    r->server_lat = 59.902138;
    r->server_lon = 10.771267;
    r->server_distance_m = 2430;
    r->server_id = 42;
    long s = 0;
    if (engine_target_int(t, "seconds", 0, 0, 3600, &s, NULL, 0) == 0 && s == 0) {
        engine_progress(ctx, "download", r->download_bps); /* no wait: the rates at once */
        engine_progress(ctx, "upload", r->upload_bps);
    }
    return 0;
}

const struct engine_ops engine_dummy = {
    .scheme = "dummy",
    .name = "dummy",
    .check = dummy_check,
    .run = dummy_run,
};
