/* engine.h - the probe's measurement engines, chosen by the target URL's scheme */
#ifndef DST_ENGINE_H
#define DST_ENGINE_H

#include <stdbool.h>
#include <stdio.h>

#include "core/result.h"
#include "speedtest/engines/target.h"

/* Progress while a test runs: phase is "ping", "download" or "upload"; bps the current rate. */
typedef void (*engine_progress_fn)(void *ud, const char *phase, double bps);

struct engine_ctx {
    const char *target; /* "dummy:", "speedtest://auto", "iperf3://host", ... */
    int timeout_s;      /* whole test; 0 → 60 */
    FILE *console;      /* the original logger's lines ("Testing download speed"); may be NULL */
    engine_progress_fn progress; /* may be NULL */
    void *ud;
    bool live_line; /* progress draws a live line on console: clear it before each line */
};

/*
 * Runs one test against ctx->target and fills r's measurement fields (speeds, ping, bytes,
 * server, client, engine, target). A test that fails for a reason outside the probe (DNS,
 * refused, busy, timeout, HTTP status, short body) is not an error here: r->status is then
 * DST_RESULT_FAILED and r->error says what happened, and 0 is returned. DST_EINVAL if the
 * target names no known engine.
 */
int engine_run(const struct engine_ctx *ctx, struct dst_result *r);

/* Checks a target URL's form (for --check-config); DST_EINVAL with a reason in err. */
int engine_check_target(const char *target, char *err, size_t errlen);

/*
 * One engine: its scheme, its name (stored in result.engine), an optional check of a parsed
 * target's parameters, and its run function (same contract as engine_run, target parsed).
 */
struct engine_ops {
    const char *scheme;
    const char *name;
    int (*check)(const struct engine_target *t, char *err, size_t errlen);
    int (*run)(const struct engine_ctx *ctx, const struct engine_target *t, struct dst_result *r);
};

extern const struct engine_ops engine_dummy;
extern const struct engine_ops engine_speedtest;
extern const struct engine_ops engine_librespeed;
extern const struct engine_ops engine_librespeeds;
extern const struct engine_ops engine_ookla;
extern const struct engine_ops engine_iperf3;

/* Marks r failed with the reason (printf format); returns 0 (a failed test is a result). */
int engine_fail(struct dst_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports progress if the caller asked for it. */
void engine_progress(const struct engine_ctx *ctx, const char *phase, double bps);

/* Prints one of the original logger's lines ("Testing download speed") if there is a console. */
void engine_say(const struct engine_ctx *ctx, const char *line);

#endif
