/* speedtest.c - the speedtest engine: legacy speedtest.net / Speedtest Mini HTTP (speedtest://auto, speedtest://HOST:PORT/path) */
#include "speedtest/engines/engine.h"

/* NEEDSWORK: being written (issue 3); until then a test against it fails with this reason. */
static int speedtest_run(const struct engine_ctx *ctx, const struct engine_target *t,
                         struct dst_result *r)
{
    (void)ctx;
    (void)t;
    return engine_fail(r, "the speedtest engine is not built yet");
}

const struct engine_ops engine_speedtest = {
    .scheme = "speedtest",
    .name = "speedtest",
    .run = speedtest_run,
};
