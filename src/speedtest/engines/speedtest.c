/* speedtest.c - the speedtest engine: legacy speedtest.net and Speedtest Mini HTTP servers */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/http_client.h"
#include "core/mem.h"
#include "core/transfer.h"
#include "core/xml.h"
#include "speedtest/engines/engine.h"
#include "speedtest/engines/speedtest_priv.h"

/*
 * speedtest://auto[?config=URL&servers=URL]   as speedtest-cli picks a server: the config
 *     (client location, threadcount, ignoreids, upload ratio), the server list, the 5 servers
 *     nearest to the client (haversine), the one of them with the lowest latency.
 * speedtest://HOST[:PORT][/path][?config=URL]  one legacy or Mini server directly (its files
 *     under <path>/speedtest/); client details only from a config URL.
 * Both take duration=S (each direction, grace included, as speedtest-cli's testlength; 10),
 * grace=S (1), streams=N (8, or the config's threadcount * 2).
 *
 * Latency: GETs of latency.txt on one kept-alive connection, the first only to connect; a
 * sample counts only if the body starts with "test=test". Latency is the mean time to first
 * byte (one round trip; speedtest-cli halves the mean of new connections to get about the
 * same), jitter the mean difference of consecutive samples. Download: random{N}x{N}.jpg for N
 * = 350..4000, 4 of each, ascending, cycled for the duration. Upload: POSTs to upload.php of
 * "content1=" + pattern, the legacy sizes for the ratio (5: 17 * 512 KiB, 1 MiB, 7 MiB),
 * cycled; every answer must be 2xx and "size=N" with N the body's size, so an upload the
 * server refused or cut short fails the test (speedtest-cli counts it as sent). Rates are
 * goodput (body bytes) over the counted window (src/core/transfer.h says what counts).
 */
#define DEFAULT_CONFIG "https://www.speedtest.net/speedtest-config.php"
#define PINGS          4 /* the first one only connects */
#define STEP_MS        10000L
#define DRAIN_MS       2000
#define MIN_PHASE_MS   1000

static const char *const default_lists[] = {
    "https://www.speedtest.net/speedtest-servers-static.php",
    "http://c.speedtest.net/speedtest-servers-static.php",
    "https://www.speedtest.net/speedtest-servers.php",
    "http://c.speedtest.net/speedtest-servers.php",
};
static const int image_sizes[] = {350, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000};
static const uint64_t upload_sizes[] = {32768, 65536, 131072, 262144, 524288, 1048576, 7340032};

struct run {
    const struct engine_ctx *ctx;
    const struct engine_target *t;
    struct dst_result *r;
    long duration, grace, streams;
    int64_t deadline;
    struct config cfg;
    bool have_cfg;
    struct server srv;
};

/* The time left before the test's deadline, in ms (at most cap). */
static long left_ms(const struct run *run, long cap)
{
    int64_t left = run->deadline - dst_monotonic_ms();
    return left < cap ? (long)(left > 0 ? left : 1) : cap;
}

/* GETs an XML document and reads it with the config's (c) or the list's (l) parse. */
static int fetch_xml(struct run *run, const char *url, struct config *c, struct list *l, char *err,
                     size_t errlen)
{
    struct dst_http_call call = {
        .url = url, .timeout_ms = left_ms(run, STEP_MS), .max_body = DST_XML_MAX_INPUT};
    struct dst_http_resp resp;
    char why[256] = "";
    int rc = dst_http_do(&call, &resp);

    if (rc)
        snprintf(err, errlen, "%s: %s", url, resp.err);
    else if (resp.status != 200)
        rc = DST_EDEP, snprintf(err, errlen, "HTTP %ld from %s", resp.status, url);
    else if ((rc = c ? speedtest_config_parse(resp.body, resp.len, c, why, sizeof(why))
                     : speedtest_servers_parse(resp.body, resp.len, l, why, sizeof(why))) != 0)
        snprintf(err, errlen, "%s: %s", url, why);
    dst_http_resp_release(&resp);
    return rc;
}

static int load_config(struct run *run, const char *url, char *err, size_t errlen)
{
    struct config *c = &run->cfg;

    speedtest_config_release(c);
    speedtest_config_init(c);
    if (fetch_xml(run, url, c, NULL, err, errlen) != 0)
        return DST_EDEP;
    run->have_cfg = true;
    if (!engine_target_param(run->t, "streams"))
        run->streams = c->threadcount * 2;
    return 0;
}

/* Measures the latency of s (PINGS GETs of latency.txt beside its upload URL). */
static int measure_latency(struct run *run, struct server *s, char *err, size_t errlen)
{
    char url[DST_TRANSFER_MAX_URL];
    double v[PINGS], sum = 0, diff = 0, prev = NAN;
    int nvalid = 0, n = 0;
    const char *slash = strrchr(s->url, '/');
    struct dst_latency_opts o = {.url = url,
                                 .count = PINGS,
                                 .buster = "x",
                                 .expect_prefix = "test=test",
                                 .timeout_ms = left_ms(run, 5000)};

    snprintf(url, sizeof(url), "%.*s/latency.txt", (int)(slash - s->url), s->url);
    int rc = dst_transfer_latency(&o, v, &nvalid, err, errlen);
    for (int i = 1; rc == 0 && i < PINGS; i++) {
        if (isnan(v[i]))
            continue;
        sum += v[i];
        diff += isnan(prev) ? 0 : fabs(v[i] - prev);
        prev = v[i];
        n++;
    }
    if (rc == 0 && n == 0)
        return snprintf(err, errlen, "%.200s: no answer starts with test=test", url), DST_EDEP;
    s->latency_ms = rc ? NAN : sum / n;
    s->jitter_ms = rc || n < 2 ? NAN : diff / (n - 1);
    return rc;
}

/* speedtest://auto: the config, the list, the nearest servers, the fastest to answer. */
static int pick_server(struct run *run, char *err, size_t errlen)
{
    const char *cfg_url = engine_target_param(run->t, "config");
    const char *list_url = engine_target_param(run->t, "servers");
    struct list l = {.cfg = &run->cfg};
    char url[DST_TRANSFER_MAX_URL], why[512] = "", first[512] = "";
    int rc = load_config(run, cfg_url ? cfg_url : DEFAULT_CONFIG, why, sizeof(why));

    if (rc == 0 && !(isfinite(run->cfg.client.lat) && isfinite(run->cfg.client.lon)))
        rc = DST_EDEP, snprintf(why, sizeof(why), "the config tells no client location");
    if (rc)
        return snprintf(err, errlen, "config: %s", why), rc;
    for (size_t i = 0; l.n == 0 && i < (list_url ? 1 : 4); i++) {
        snprintf(url, sizeof(url), "%s?threads=%ld", default_lists[i], run->streams);
        rc = fetch_xml(run, list_url ? list_url : url, NULL, &l, why, sizeof(why));
    }
    if (l.n == 0)
        return snprintf(err, errlen, "server list: %s", why[0] ? why : "no servers"), DST_EDEP;
    run->srv.latency_ms = NAN;
    for (int i = 0; i < l.n; i++) {
        rc = measure_latency(run, &l.near[i], why, sizeof(why));
        if (rc && !first[0])
            snprintf(first, sizeof(first), "%s", why);
        if (rc == 0 && !(run->srv.latency_ms <= l.near[i].latency_ms))
            run->srv = l.near[i];
    }
    if (!isfinite(run->srv.latency_ms))
        return snprintf(err, errlen, "no server answered: %s", first), DST_EDEP;
    return 0;
}

/* speedtest://HOST:PORT/path: the server's base is the path, or its folder if it names a file. */
static int direct_server(struct run *run, char *err, size_t errlen)
{
    const char *cfg_url = engine_target_param(run->t, "config");
    struct server *s = &run->srv;
    char why[512], hostport[300];
    size_t n = strlen(run->t->path);
    const char *last = strrchr(run->t->path, '/');

    if (last && strchr(last, '.'))
        n = (size_t)(last - run->t->path);
    while (n > 0 && run->t->path[n - 1] == '/')
        n--;
    engine_target_hostport(run->t, 80, hostport, sizeof(hostport));
    *s = (struct server){.id = -1, .lat = NAN, .lon = NAN, .dist_km = NAN};
    snprintf(s->url, sizeof(s->url), "http://%s%.*s/speedtest/upload.php", hostport, (int)n,
             run->t->path);
    snprintf(s->host, sizeof(s->host), "%s", hostport);
    snprintf(s->name, sizeof(s->name), "%s", hostport);
    if (cfg_url && load_config(run, cfg_url, why, sizeof(why)) != 0)
        return snprintf(err, errlen, "config: %.400s", why), DST_EDEP;
    return measure_latency(run, s, err, errlen);
}

/* ---- the transfers ---- */

struct phase {
    struct run *run;
    const char *name;
};

static void on_progress(void *ud, double bps)
{
    struct phase *p = ud;
    engine_progress(p->run->ctx, p->name, bps);
}

/*
 * The server must say it got the whole body: "size=N". reply holds the answer's first 63 bytes:
 * N of at most 20 digits (any uint64) is in them whole; a longer one could be cut to another.
 */
static int check_size(void *ud, uint64_t sent, const char *reply, char *err, size_t errlen)
{
    char *end = NULL;
    const char *digits = reply + 5;
    unsigned long long got = 0;

    (void)ud;
    if (strncmp(reply, "size=", 5) == 0 && *digits >= '0' && *digits <= '9') {
        errno = 0;
        got = strtoull(digits, &end, 10);
    }
    if (!end || end - digits > 20 || errno == ERANGE)
        return snprintf(err, errlen, "upload answer is not size=N: '%.40s'", reply), DST_EDEP;
    if (got != sent)
        return snprintf(err, errlen, "short body: the server got %llu of %llu bytes", got,
                        (unsigned long long)sent),
               DST_EDEP;
    return 0;
}

/* Runs one direction within the time left; DST_ETIMEDOUT in st->error if there is none. */
static int run_phase(struct run *run, struct dst_transfer_opts *o, struct dst_transfer_stats *st)
{
    struct phase p = {run, o->dir == DST_TRANSFER_UPLOAD ? "upload" : "download"};
    /* the time left is shared by the phases still to come (download: both) */
    long phases = o->dir == DST_TRANSFER_DOWNLOAD ? 2 : 1;
    long left = left_ms(run, 3600 * 1000L) / phases - DRAIN_MS;

    o->streams = (int)run->streams;
    o->duration_ms = run->duration * 1000 < left ? run->duration * 1000 : left;
    o->grace_ms = run->grace * 1000 < o->duration_ms / 2 ? run->grace * 1000 : o->duration_ms / 2;
    o->drain_ms = DRAIN_MS;
    o->buster = "x";
    o->progress = on_progress;
    o->progress_ud = &p;
    if (o->duration_ms < MIN_PHASE_MS) {
        memset(st, 0, sizeof(*st));
        snprintf(st->error, sizeof(st->error), "timeout: no time left for the %s", p.name);
        return DST_ETIMEDOUT;
    }
    return dst_transfer_run(o, st);
}

static int download(struct run *run, struct dst_transfer_stats *st)
{
    enum { PER_SIZE = 4, N = 10 * PER_SIZE };
    char urls[N][DST_TRANSFER_MAX_URL];
    const char *ptrs[N];
    const char *slash = strrchr(run->srv.url, '/');
    struct dst_transfer_opts o = {
        .dir = DST_TRANSFER_DOWNLOAD, .urls = ptrs, .nurls = N, .repeat = true};

    for (int i = 0; i < N; i++) {
        int n = image_sizes[i / PER_SIZE];
        snprintf(urls[i], sizeof(urls[i]), "%.*s/random%dx%d.jpg", (int)(slash - run->srv.url),
                 run->srv.url, n, n);
        ptrs[i] = urls[i];
    }
    return run_phase(run, &o, st);
}

static int upload(struct run *run, struct dst_transfer_stats *st)
{
    uint64_t sizes[1000];
    const char *url = run->srv.url;
    size_t first = (size_t)(run->have_cfg ? run->cfg.ratio : 5) - 1, kinds = 7 - first, n = 0;
    long per = ((run->have_cfg ? run->cfg.maxchunkcount : 50) + (long)kinds - 1) / (long)kinds;
    struct dst_transfer_opts o = {.dir = DST_TRANSFER_UPLOAD,
                                  .urls = &url,
                                  .nurls = 1,
                                  .sizes = sizes,
                                  .prefix = "content1=",
                                  .content_type = "application/x-www-form-urlencoded",
                                  .repeat = true,
                                  .check_reply = check_size};

    for (size_t k = first; k < 7; k++) {
        for (long i = 0; i < per && n < sizeof(sizes) / sizeof(sizes[0]); i++)
            sizes[n++] = upload_sizes[k];
    }
    o.nsizes = n;
    return run_phase(run, &o, st);
}

/* ---- the result ---- */

void speedtest_result_place(struct dst_result *r, const struct server *s, const struct config *cfg)
{
    const struct client *c = cfg ? &cfg->client : NULL;

    r->server_id = s->id;
    dst_result_set(&r->server_host, s->host[0] ? s->host : NULL);
    dst_result_set(&r->server_name, s->name[0] ? s->name : NULL);
    dst_result_set(&r->server_sponsor, s->sponsor[0] ? s->sponsor : NULL);
    dst_result_set(&r->server_country, s->cc[0] ? s->cc : s->country[0] ? s->country : NULL);
    r->server_lat = s->lat;
    r->server_lon = s->lon;
    r->server_distance_m = s->dist_km * 1000;
    if (!c)
        return;
    dst_result_set(&r->client_ip, c->ip[0] ? c->ip : NULL);
    dst_result_set(&r->client_isp, c->isp[0] ? c->isp : NULL);
    dst_result_set(&r->client_country, c->country[0] ? c->country : NULL);
    r->client_lat = c->lat;
    r->client_lon = c->lon;
}

static void fill_result(const struct run *run, const struct dst_transfer_stats *down,
                        const struct dst_transfer_stats *up)
{
    struct dst_result *r = run->r;

    r->download_bps = down->bps;
    r->upload_bps = up->bps;
    r->bytes_down = (int64_t)down->bytes_total;
    r->bytes_up = (int64_t)up->bytes_total;
    r->ping_ms = run->srv.latency_ms;
    r->jitter_ms = run->srv.jitter_ms;
    r->streams = run->streams;
    speedtest_result_place(r, &run->srv, run->have_cfg ? &run->cfg : NULL);
}

static int params(const struct engine_target *t, long *duration, long *grace, long *streams,
                  char *err, size_t errlen)
{
    int rc = engine_target_int(t, "duration", 10, 1, 60, duration, err, errlen);
    rc = rc ? rc : engine_target_int(t, "grace", 1, 0, 30, grace, err, errlen);
    rc = rc ? rc : engine_target_int(t, "streams", 8, 1, 32, streams, err, errlen);
    return rc;
}

static int speedtest_check(const struct engine_target *t, char *err, size_t errlen)
{
    long d, g, s;
    bool is_auto = strcmp(t->host, "auto") == 0;

    if (!t->host[0])
        return snprintf(err, errlen, "speedtest://auto or speedtest://HOST:PORT"), DST_EINVAL;
    if (is_auto && (t->port || (t->path[0] && strcmp(t->path, "/") != 0)))
        return snprintf(err, errlen, "speedtest://auto takes no port or path"), DST_EINVAL;
    if (!is_auto && engine_target_param(t, "servers"))
        return snprintf(err, errlen, "servers= is for speedtest://auto"), DST_EINVAL;
    return params(t, &d, &g, &s, err, errlen);
}

/* Picks the server, then measures each way; fills r (failed with the reason on an error). */
static int measure(struct run *run, int64_t t0)
{
    struct dst_transfer_stats down = {0}, up = {0};
    struct dst_result *r = run->r;
    char err[512];

    if (strcmp(run->t->host, "auto") == 0) {
        engine_say(run->ctx, "Finding best test servers");
        if (pick_server(run, err, sizeof(err)) != 0)
            return engine_fail(r, "%s", err);
    } else if (direct_server(run, err, sizeof(err)) != 0) {
        return engine_fail(r, "latency: %s", err);
    }
    engine_say(run->ctx, "Testing download speed");
    if (download(run, &down) != 0)
        return engine_fail(r, "download: %s", down.error);
    engine_say(run->ctx, "Testing upload speed");
    if (upload(run, &up) != 0)
        return engine_fail(r, "upload: %s", up.error);
    fill_result(run, &down, &up);
    r->duration_s = (double)(dst_monotonic_ms() - t0) / 1000;
    return 0;
}

static int speedtest_run(const struct engine_ctx *ctx, const struct engine_target *t,
                         struct dst_result *r)
{
    struct run run = {.ctx = ctx, .t = t, .r = r};
    char err[512];
    int64_t t0 = dst_monotonic_ms();

    if (params(t, &run.duration, &run.grace, &run.streams, err, sizeof(err)) != 0)
        return engine_fail(r, "%s", err);
    run.deadline = t0 + (ctx->timeout_s > 0 ? ctx->timeout_s : 60) * 1000L;
    int rc = measure(&run, t0);
    speedtest_config_release(&run.cfg);
    return rc;
}

const struct engine_ops engine_speedtest = {
    .scheme = "speedtest",
    .name = "speedtest",
    .check = speedtest_check,
    .run = speedtest_run,
};
