/* ookla.c - the ookla engine: the Ookla TCP protocol (ookla://HOST:8080) */
#include "speedtest/engines/engine.h"

/* NEEDSWORK: being written (issue 3); until then a test against it fails with this reason. */
static int ookla_run(const struct engine_ctx *ctx, const struct engine_target *t,
                     struct dst_result *r)
{
    (void)ctx;
    (void)t;
    return engine_fail(r, "the ookla engine is not built yet");
}

const struct engine_ops engine_ookla = {
    .scheme = "ookla",
    .name = "ookla",
    .run = ookla_run,
};
