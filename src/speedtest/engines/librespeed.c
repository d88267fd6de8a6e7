/* librespeed.c - the librespeed engine: LibreSpeed HTTP (librespeed://HOST[:PORT]/path) */
#include "speedtest/engines/engine.h"

/* NEEDSWORK: being written (issue 3); until then a test against it fails with this reason. */
static int librespeed_run(const struct engine_ctx *ctx, const struct engine_target *t,
                          struct dst_result *r)
{
    (void)ctx;
    (void)t;
    return engine_fail(r, "the librespeed engine is not built yet");
}

const struct engine_ops engine_librespeed = {
    .scheme = "librespeed",
    .name = "librespeed",
    .run = librespeed_run,
};
