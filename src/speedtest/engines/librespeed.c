/* librespeed.c - the librespeed engine: LibreSpeed HTTP (librespeed://HOST[:PORT]/path) */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/http_client.h"
#include "core/json.h"
#include "core/transfer.h"
#include "speedtest/engines/engine.h"

/*
 * librespeed://HOST[:PORT]/path[?duration=S&streams=N&grace=S] (librespeeds:// for https)
 * against a LibreSpeed back end (PHP, speedtest-go, speedtest-rust, dstmc server) whose
 * garbage.php, empty.php and getIP.php sit under path. Measured as LibreSpeed's
 * speedtest_worker.js does, in its order:
 *
 *   getIP.php?isp=true   the client's address and ISP ({"processedString", "rawIspInfo"} or
 *                        plain text); a back end without it only leaves them unknown
 *   ping + jitter        10 GETs of empty.php on one kept-alive connection; the first only
 *                        primes it. ping = the lowest time to first byte; jitter = the worker's
 *                        EWMA of |ping - previous ping| (the first difference as is, then
 *                        0.3*j + 0.7*d when d > j else 0.8*j + 0.2*d), so spikes weigh more.
 *                        (The worker clamps samples under 1 ms for browsers' coarse clocks;
 *                        curl's µs timings need no clamp.)
 *   download             GET garbage.php?ckSize=100 on 6 streams (streams=N), each restarted
 *                        when it ends; bytes in the first 1.5 s are not counted (grace=S), then
 *                        `duration` seconds (10) are.
 *   upload               POST 4 MiB bodies to empty.php on 3 streams (or N), 3 s of grace
 *                        (or S), then `duration` seconds; every answer must be 2xx.
 *
 * The worker multiplies by overheadCompensationFactor (1.06) to guess line rate from payload;
 * this engine reports goodput (factor 1): the body bytes moved, like every other engine here.
 * Streams start together (the worker staggers them by 300 ms; it only smooths the browser's
 * start). The worker's time_auto shortening is not copied: the duration is fixed.
 */
#define PINGS         10
#define DL_STREAMS    6
#define UL_STREAMS    3
#define DL_GRACE_MS   1500
#define UL_GRACE_MS   3000
#define UPLOAD_BODY   (4u << 20)
#define STEP_MS       10000L
#define DRAIN_MS      2000
#define MIN_WINDOW_MS 1000

struct run {
    const struct engine_ctx *ctx;
    const struct engine_target *t;
    struct dst_result *r;
    char base[DST_TRANSFER_MAX_URL - 64]; /* "http://host:port/path/" */
    long duration, streams, grace;        /* grace in s, -1: each phase's own */
    int64_t deadline;
    double ping_ms, jitter_ms;
};

/* The time left before the test's deadline, in ms (at most cap). */
static long left_ms(const struct run *run, long cap)
{
    int64_t left = run->deadline - dst_monotonic_ms();
    return left < cap ? (long)(left > 0 ? left : 1) : cap;
}

/* ---- getIP ---- */

static void set_str(char **field, const json_t *v)
{
    if (json_is_string(v) && json_string_length(v) > 0)
        dst_result_set(field, json_string_value(v));
}

/* rawIspInfo (ipinfo.io's fields): ip, org ("AS123 Name"), country, loc ("lat,lon"). */
static void raw_isp_info(struct dst_result *r, const json_t *raw)
{
    const char *org = json_string_value(json_object_get(raw, "org"));
    const char *loc = json_string_value(json_object_get(raw, "loc"));
    double lat = NAN, lon = NAN;

    set_str(&r->client_ip, json_object_get(raw, "ip"));
    set_str(&r->client_country, json_object_get(raw, "country"));
    if (org && *org)
        dst_result_set(&r->client_isp, org);
    if (loc && sscanf(loc, "%lf,%lf", &lat, &lon) == 2 && fabs(lat) <= 90 && fabs(lon) <= 180) {
        r->client_lat = lat;
        r->client_lon = lon;
    }
}

/* "IP - ISP, CC (12 km)" or "IP - private IPv4 access": the address and what follows it. */
static void processed_string(struct dst_result *r, const char *s)
{
    const char *dash = strstr(s, " - ");
    size_t iplen = dash ? (size_t)(dash - s) : strcspn(s, " \r\n");
    char ip[64];

    if (iplen == 0 || iplen >= sizeof(ip))
        return;
    snprintf(ip, sizeof(ip), "%.*s", (int)iplen, s);
    if (!r->client_ip)
        dst_result_set(&r->client_ip, ip);
    if (dash && dash[3] && !r->client_isp)
        dst_result_set(&r->client_isp, dash + 3);
}

/* Client details from getIP.php; only a transport failure is an error (as for the worker). */
static int get_ip(struct run *run, char *err, size_t errlen)
{
    char url[DST_TRANSFER_MAX_URL];
    struct dst_http_call call = {
        .url = url, .timeout_ms = left_ms(run, STEP_MS), .max_body = 65536};
    struct dst_http_resp resp;

    snprintf(url, sizeof(url), "%sgetIP.php?isp=true", run->base);
    int rc = dst_http_do(&call, &resp);
    if (rc) {
        snprintf(err, errlen, "%.200s: %s", url, resp.err);
    } else if (resp.status == 200) {
        json_t *j = dst_json_parse(resp.body, resp.len, NULL, 0);
        if (json_is_object(j)) {
            if (json_is_object(json_object_get(j, "rawIspInfo")))
                raw_isp_info(run->r, json_object_get(j, "rawIspInfo"));
            const char *ps = json_string_value(json_object_get(j, "processedString"));
            processed_string(run->r, ps ? ps : "");
        } else {
            processed_string(run->r, resp.body); /* a plain-text address */
        }
        json_decref(j);
    }
    dst_http_resp_release(&resp);
    return rc;
}

/* ---- ping and jitter ---- */

static int ping(struct run *run, char *err, size_t errlen)
{
    char url[DST_TRANSFER_MAX_URL];
    double v[PINGS], best = NAN, jitter = 0, prev = NAN;
    int nvalid = 0, k = 0;
    struct dst_latency_opts o = {
        .url = url, .count = PINGS, .buster = "r", .timeout_ms = left_ms(run, 5000)};

    snprintf(url, sizeof(url), "%sempty.php", run->base);
    int rc = dst_transfer_latency(&o, v, &nvalid, err, errlen);
    for (int i = 1; rc == 0 && i < PINGS; i++, k++) {
        double d = fabs(v[i] - prev);
        best = k == 0 || v[i] < best ? v[i] : best;
        if (k == 1)
            jitter = d;
        else if (k > 1)
            jitter = d > jitter ? jitter * 0.3 + d * 0.7 : jitter * 0.8 + d * 0.2;
        prev = v[i];
    }
    run->ping_ms = best;
    run->jitter_ms = k > 1 ? jitter : NAN;
    return rc;
}

/* ---- download and upload ---- */

struct phase {
    struct run *run;
    const char *name;
};

static void on_progress(void *ud, double bps)
{
    struct phase *p = ud;
    engine_progress(p->run->ctx, p->name, bps);
}

/* Runs one direction: grace, then `duration` counted seconds, or what is left of the time. */
static int run_phase(struct run *run, struct dst_transfer_opts *o, long grace_ms,
                     struct dst_transfer_stats *st)
{
    struct phase p = {run, o->dir == DST_TRANSFER_UPLOAD ? "upload" : "download"};
    /* the time left is shared by the phases still to come (download: both) */
    long phases = o->dir == DST_TRANSFER_DOWNLOAD ? 2 : 1;
    long left = left_ms(run, 3600 * 1000L) / phases - DRAIN_MS;
    long window = run->duration * 1000;

    grace_ms = run->grace >= 0 ? run->grace * 1000 : grace_ms;
    if (grace_ms + window > left) {
        window = left - grace_ms < left / 2 ? left / 2 : left - grace_ms;
        grace_ms = left - window;
    }
    o->duration_ms = grace_ms + window;
    o->grace_ms = grace_ms;
    o->drain_ms = DRAIN_MS;
    o->buster = "r";
    o->repeat = true;
    o->progress = on_progress;
    o->progress_ud = &p;
    if (window < MIN_WINDOW_MS) {
        memset(st, 0, sizeof(*st));
        snprintf(st->error, sizeof(st->error), "timeout: no time left for the %s", p.name);
        return DST_ETIMEDOUT;
    }
    return dst_transfer_run(o, st);
}

static int download(struct run *run, struct dst_transfer_stats *st)
{
    char url[DST_TRANSFER_MAX_URL];
    const char *urls[] = {url};
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_DOWNLOAD,
                                  .urls = urls,
                                  .nurls = 1,
                                  .streams = (int)(run->streams ? run->streams : DL_STREAMS)};

    snprintf(url, sizeof(url), "%sgarbage.php?ckSize=100", run->base);
    return run_phase(run, &o, DL_GRACE_MS, st);
}

static int upload(struct run *run, struct dst_transfer_stats *st)
{
    char url[DST_TRANSFER_MAX_URL];
    const char *urls[] = {url};
    const uint64_t sizes[] = {UPLOAD_BODY};
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_UPLOAD,
                                  .urls = urls,
                                  .nurls = 1,
                                  .sizes = sizes,
                                  .nsizes = 1,
                                  .streams = (int)(run->streams ? run->streams : UL_STREAMS)};

    snprintf(url, sizeof(url), "%sempty.php", run->base);
    return run_phase(run, &o, UL_GRACE_MS, st);
}

/* ---- the engine ---- */

static int params(const struct engine_target *t, long *duration, long *streams, long *grace,
                  char *err, size_t errlen)
{
    int rc = engine_target_int(t, "duration", 10, 1, 60, duration, err, errlen);
    rc = rc ? rc : engine_target_int(t, "streams", 0, 1, 32, streams, err, errlen);
    rc = rc ? rc : engine_target_int(t, "grace", -1, 0, 30, grace, err, errlen);
    return rc;
}

static int librespeed_check(const struct engine_target *t, char *err, size_t errlen)
{
    long d, s, g;

    if (!t->host[0])
        return snprintf(err, errlen, "librespeed://HOST[:PORT]/path"), DST_EINVAL;
    return params(t, &d, &s, &g, err, errlen);
}

static bool tls(const struct engine_target *t)
{
    return strcmp(t->scheme, "librespeeds") == 0;
}

/* "http://host:port/path/": a path naming a file (index.html) stands for its folder. */
static void base_url(struct run *run)
{
    char hostport[300];
    const char *path = run->t->path;
    const char *last = strrchr(path, '/');
    size_t n = last && strchr(last, '.') ? (size_t)(last - path) : strlen(path);

    while (n > 0 && path[n - 1] == '/')
        n--;
    engine_target_hostport(run->t, tls(run->t) ? 443 : 80, hostport, sizeof(hostport));
    snprintf(run->base, sizeof(run->base), "%s://%s%.*s/", tls(run->t) ? "https" : "http", hostport,
             (int)n, path);
}

static void fill_result(struct run *run, const struct dst_transfer_stats *down,
                        const struct dst_transfer_stats *up)
{
    struct dst_result *r = run->r;
    char hostport[300];

    r->download_bps = down->bps;
    r->upload_bps = up->bps;
    r->bytes_down = (int64_t)down->bytes_total;
    r->bytes_up = (int64_t)up->bytes_total;
    r->ping_ms = run->ping_ms;
    r->jitter_ms = run->jitter_ms;
    r->streams = run->streams ? run->streams : DL_STREAMS;
    engine_target_hostport(run->t, tls(run->t) ? 443 : 80, hostport, sizeof(hostport));
    dst_result_set(&r->server_host, hostport);
    dst_result_set(&r->server_name, run->base);
}

static int librespeed_run(const struct engine_ctx *ctx, const struct engine_target *t,
                          struct dst_result *r)
{
    struct run run = {.ctx = ctx, .t = t, .r = r};
    struct dst_transfer_stats down = {0}, up = {0};
    char err[512];
    int64_t t0 = dst_monotonic_ms();

    if (params(t, &run.duration, &run.streams, &run.grace, err, sizeof(err)) != 0)
        return engine_fail(r, "%s", err);
    run.deadline = t0 + (ctx->timeout_s > 0 ? ctx->timeout_s : 60) * 1000L;
    base_url(&run);
    if (get_ip(&run, err, sizeof(err)) != 0)
        return engine_fail(r, "getIP: %s", err);
    if (ping(&run, err, sizeof(err)) != 0)
        return engine_fail(r, "ping: %s", err);
    engine_say(ctx, "Testing download speed");
    if (download(&run, &down) != 0)
        return engine_fail(r, "download: %s", down.error);
    engine_say(ctx, "Testing upload speed");
    if (upload(&run, &up) != 0)
        return engine_fail(r, "upload: %s", up.error);
    fill_result(&run, &down, &up);
    r->duration_s = (double)(dst_monotonic_ms() - t0) / 1000;
    return 0;
}

const struct engine_ops engine_librespeed = {
    .scheme = "librespeed",
    .name = "librespeed",
    .check = librespeed_check,
    .run = librespeed_run,
};

/* The same over https (librespeeds://HOST[:443]/path); engine.c lists the engines it knows. */
const struct engine_ops engine_librespeeds = {
    .scheme = "librespeeds",
    .name = "librespeed",
    .check = librespeed_check,
    .run = librespeed_run,
};
