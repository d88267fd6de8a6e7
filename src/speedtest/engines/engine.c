/* engine.c - picks the engine for a target URL by its scheme */
#include "speedtest/engines/engine.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"

static const struct engine_ops *const engines[] = {
    &engine_dummy,
};

/* The engine whose scheme prefixes target ("scheme:" or "scheme://..."), or NULL. */
static const struct engine_ops *find(const char *target)
{
    if (!target)
        return NULL;
    const char *colon = strchr(target, ':');
    if (!colon)
        return NULL;
    size_t n = (size_t)(colon - target);
    for (size_t i = 0; i < sizeof(engines) / sizeof(engines[0]); i++) {
        if (strlen(engines[i]->scheme) == n && strncmp(engines[i]->scheme, target, n) == 0)
            return engines[i];
    }
    return NULL;
}

int engine_check_target(const char *target, char *err, size_t errlen)
{
    if (!find(target)) {
        snprintf(err, errlen, "'%s' names no known engine (known: dummy:)", target ? target : "");
        return DST_EINVAL;
    }
    return 0;
}

int engine_run(const struct engine_ctx *ctx, struct dst_result *r)
{
    const struct engine_ops *e = find(ctx->target);
    if (!e)
        return DST_EINVAL;
    dst_result_set(&r->engine, e->name);
    dst_result_set(&r->target, ctx->target);
    return e->run(ctx, r);
}
