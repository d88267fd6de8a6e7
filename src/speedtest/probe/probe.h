/* probe.h - one speed test run the probe's way: engine, original console lines, upload */
#ifndef DST_PROBE_H
#define DST_PROBE_H

#include <stdbool.h>
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
};

/*
 * Runs one test against target (NULL: o->target) and fills r (initialised by the caller) with a
 * new id, the time, the probe's identity and the engine's measurement. Prints the original
 * logger's lines to out ("Finding best test servers" ..., "Got download: X Mbps and upload: Y
 * Mbps"; for a failed test "Test failed: REASON"). A failed test is a result too: returns 0
 * unless the target names no engine (DST_EINVAL).
 */
int probe_measure(const struct probe_opts *o, const char *target, const char *request_id, FILE *out,
                  struct dst_result *r);

/*
 * Posts r to the API (unless !o->upload: "Skipping data upload to speedtest API"), printing
 * "Uploading data to speedtest API" then "Speedtest complete!" or the original's failure lines
 * ("Upload failed! Failure response: BODY" / "Upload failed! MESSAGE", then "Speedtest
 * failed!"). Returns 0 when stored (or skipped), DST_EDEP/DST_ETIMEDOUT/DST_EINVAL otherwise.
 */
int probe_upload(const struct probe_opts *o, struct dst_http_client *hc, struct dst_result *r,
                 FILE *out);

/*
 * Tells the API this probe is alive: POST /api/v1/probes/NAME/heartbeat with state ("idle",
 * "running"), and optionally the request id, phase and current bit/s (NAN: none). Quiet; a
 * failure is only logged at debug level.
 */
int probe_heartbeat(const struct probe_opts *o, struct dst_http_client *hc, const char *state,
                    const char *request_id, const char *phase, double bps);

/* Mbps as the original prints it: bit/s ÷ 10⁶ rounded to 2 decimals, shortest form. */
void probe_format_mbps(double bps, char *out, size_t outlen);

#endif
