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

/* Waits the test's seconds; a failed result if it overruns the time limit or a stop comes. */
static int delay(const struct engine_ctx *ctx, const struct engine_target *t, struct dst_result *r)
{
    char err[128];
    long s = 0;
    long limit = ctx->timeout_s > 0 ? ctx->timeout_s : 60;

    if (engine_target_int(t, "seconds", 0, 0, 3600, &s, err, sizeof(err)) != 0)
        return engine_fail(r, "%s", err);
    if (s == 0)
        return 0;
    if (dst_sig_wait((int)(s < limit ? s : limit) * 1000))
        return engine_fail(r, "stopped before the end of the test");
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
    delay(ctx, t, r);
    if (r->status == DST_RESULT_FAILED)
        return 0;
    r->download_bps = next(60, 100) * 1e6;
    r->upload_bps = next(60, 100) * 1e6;
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
    engine_progress(ctx, "download", r->download_bps);
    engine_progress(ctx, "upload", r->upload_bps);
    return 0;
}

const struct engine_ops engine_dummy = {
    .scheme = "dummy",
    .name = "dummy",
    .check = dummy_check,
    .run = dummy_run,
};
