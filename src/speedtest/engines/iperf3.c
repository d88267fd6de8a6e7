/* iperf3.c - the iperf3 engine: iperf3 through libiperf (iperf3://HOST[:5201]) */
#include "speedtest/engines/engine.h"

/* NEEDSWORK: being written (issue 3); until then a test against it fails with this reason. */
static int iperf3_run(const struct engine_ctx *ctx, const struct engine_target *t,
                      struct dst_result *r)
{
    (void)ctx;
    (void)t;
    return engine_fail(r, "the iperf3 engine is not built yet");
}

const struct engine_ops engine_iperf3 = {
    .scheme = "iperf3",
    .name = "iperf3",
    .run = iperf3_run,
};
