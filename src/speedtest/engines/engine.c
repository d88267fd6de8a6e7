/* engine.c - picks the engine for a target URL by its scheme */
#include "speedtest/engines/engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"

static const struct engine_ops *const engines[] = {
    &engine_dummy,       &engine_speedtest, &engine_librespeed,
    &engine_librespeeds, &engine_ookla,     &engine_iperf3,
};
#define NENGINES (sizeof(engines) / sizeof(engines[0]))

static const struct engine_ops *find(const char *scheme)
{
    for (size_t i = 0; i < NENGINES; i++) {
        if (strcmp(engines[i]->scheme, scheme) == 0)
            return engines[i];
    }
    return NULL;
}

/* Parses target and finds its engine; DST_EINVAL with a reason in err. */
static int resolve(const char *target, struct engine_target *t, const struct engine_ops **e,
                   char *err, size_t errlen)
{
    int rc = engine_target_parse(target, t, err, errlen);
    if (rc)
        return rc;
    *e = find(t->scheme);
    if (!*e) {
        snprintf(err, errlen,
                 "'%s' names no known engine (known: dummy:, speedtest://, librespeed://, "
                 "ookla://, iperf3://)",
                 target);
        return DST_EINVAL;
    }
    return (*e)->check ? (*e)->check(t, err, errlen) : 0;
}

int engine_check_target(const char *target, char *err, size_t errlen)
{
    struct engine_target t;
    const struct engine_ops *e = NULL;
    return resolve(target, &t, &e, err, errlen);
}

int engine_run(const struct engine_ctx *ctx, struct dst_result *r)
{
    struct engine_target t;
    const struct engine_ops *e = NULL;
    char err[256];

    if (resolve(ctx->target, &t, &e, err, sizeof(err)) != 0)
        return DST_EINVAL;
    dst_result_set(&r->engine, e->name);
    dst_result_set_cut(&r->target, ctx->target, DST_RESULT_TEXT_MAX);
    return e->run(ctx, &t, r);
}

int engine_fail(struct dst_result *r, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dst_json_text_fix(msg); /* a result's error is JSON text: no half character at the end */
    r->status = DST_RESULT_FAILED;
    dst_result_set(&r->error, msg);
    return 0;
}

void engine_progress(const struct engine_ctx *ctx, const char *phase, double bps)
{
    if (ctx->progress)
        ctx->progress(ctx->ud, phase, bps);
}

void engine_say(const struct engine_ctx *ctx, const char *line)
{
    if (ctx->console) {
        /* with a live progress line on the same terminal, clear it first */
        fprintf(ctx->console, "%s%s\n", ctx->live_line ? "\r\033[K" : "", line);
        fflush(ctx->console);
    }
}
