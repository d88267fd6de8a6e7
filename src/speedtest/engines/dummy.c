/* dummy.c - the "dummy:" engine: canned values, as the original logger's useDummyData */
#include <stdlib.h>

#include "core/datetime.h"
#include "speedtest/engines/engine.h"

/* The original's Random.Next(lo, hi): an integer in [lo, hi). */
static int next(int lo, int hi)
{
    return lo + (int)(drand48() * (hi - lo));
}

static int dummy_run(const struct engine_ctx *ctx, const struct engine_target *t,
                     struct dst_result *r)
{
    static int seeded;

    (void)t;
    if (!seeded) {
        srand48(dst_monotonic_us());
        seeded = 1;
    }
    engine_say(ctx, "Returning dummy data");
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
    .run = dummy_run,
};
