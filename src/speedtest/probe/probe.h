/* probe.h - one speed test run the probe's way: engine, original console lines, upload */
#ifndef DST_PROBE_H
#define DST_PROBE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/result.h"

struct dst_http_client;

/*
 * Where results and heartbeats go when they do not go to o->api over HTTP: an API in the same
 * process (`dstmc up`). post returns 0 when r is stored, else a DST_E* code and a reason in err.
 */
struct probe_sink {
    int (*post)(void *ud, struct dst_result *r, char *err, size_t errlen);
    void (*heartbeat)(void *ud, const char *agent, const json_t *state);
    void *ud;
};

struct probe_opts {
    const char *target;   /* engine target URL, e.g. "dummy:" */
    const char *api;      /* API base URL ("http://host:8080"); results go to /api/v1/results */
    const char *token;    /* bearer token for the API; NULL/"" = none */
    const char *agent;    /* probe name */
    const char *location; /* location label; may be NULL */
    const char *user;     /* the original's userId */
    long device;          /* the original's loggerId */
    int timeout_s;        /* per test; 0 → 60 */
    bool upload;          /* the original's uploadResults */
    const struct probe_sink *sink; /* NULL: the API at api, over HTTP */
    /* live progress while a test runs (phase, current bit/s); NULL: none */
    void (*progress)(void *ud, const char *phase, double bps);
    void *progress_ud;
    bool progress_line; /* progress draws a live line on the console (`dstmc run` on a tty) */
};

/*
 * Runs one test against target (NULL: o->target) and fills r (initialised by the caller) with
 * its id, the time, the probe's identity and the engine's measurement. The id is random, or,
 * for a queue request (request_id given), the name-based UUID of "REQUEST_ID/AGENT": a request
 * redelivered after a crash gives the same id, and the API's idempotent ingest keeps one. Prints the original
 * logger's lines to out ("Finding best test servers" ..., "Got download: X Mbps and upload: Y
 * Mbps"; for a failed test "Test failed: REASON"). A failed test is a result too: returns 0
 * unless the target names no engine (DST_EINVAL).
 */
int probe_measure(const struct probe_opts *o, const char *target, const char *request_id, FILE *out,
                  struct dst_result *r);

/*
 * Fills r like probe_measure, without running a test: a failed result whose error is reason
 * (e.g. the --before command failed), printing "Test failed: REASON" to out (may be NULL).
 */
void probe_fail(const struct probe_opts *o, const char *target, const char *request_id,
                const char *reason, FILE *out, struct dst_result *r);

/*
 * Posts r to the API (or the sink) quietly. 0 when stored (or the API had it already);
 * DST_EINVAL when the API rejected it for good (400, 413, 422: retrying cannot help); another
 * code (DST_EDEP: refused, 5xx, other statuses; DST_ETIMEDOUT) for a failure worth retrying.
 * The reason goes to err.
 */
int probe_post(const struct probe_opts *o, struct dst_http_client *hc, struct dst_result *r,
               char *err, size_t errlen);

/*
 * Posts r to the API (unless !o->upload: "Skipping data upload to speedtest API"), printing
 * "Uploading data to speedtest API" then "Speedtest complete!" or the original's failure lines
 * ("Upload failed! Failure response: BODY" / "Upload failed! MESSAGE", then "Speedtest
 * failed!"); a failed test is posted as a failure, between "Uploading the failed test to
 * speedtest API" and "Speedtest failed!". Returns 0 when stored (or skipped), else probe_post's
 * code, with the reason in err (may be NULL).
 */
int probe_upload(const struct probe_opts *o, struct dst_http_client *hc, struct dst_result *r,
                 FILE *out, char *err, size_t errlen);

/* What a heartbeat says besides "alive": all optional (NULL, NAN, 0: not said). */
struct probe_beat {
    const char *state;      /* "idle", "running" */
    const char *request_id; /* the request being run */
    const char *phase;      /* "download" ... */
    double bps;             /* current rate */
    double elapsed_s;       /* since the test started */
    const char *last_id;    /* the last result the API stored */
    int64_t last_ms;        /* its test time */
};

/*
 * Tells the API this probe is alive: POST /api/v1/probes/NAME/heartbeat with b's fields
 * (state, request_id, phase, bps, elapsed_s, last_result_id, last_result_time). Quiet; a failure
 * is only logged at debug level. A beat with a phase (live progress, which the logger sends from
 * a thread of its own while the engine measures: logger/progress.c) waits at most a second for
 * the API.
 */
int probe_heartbeat(const struct probe_opts *o, struct dst_http_client *hc,
                    const struct probe_beat *b);

/* Mbps as the original prints it: bit/s ÷ 10⁶ rounded to 2 decimals, shortest form. */
void probe_format_mbps(double bps, char *out, size_t outlen);

#endif
