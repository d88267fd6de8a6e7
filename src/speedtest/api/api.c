/* api.c - the API service: wiring, service endpoints (ping, health, metrics), `dstmc api` */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/assets.h"
#include "core/buf.h"
#include "core/cfg.h"
#include "core/cfg_check.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/queue.h"
#include "core/sig.h"
#include "core/sse.h"
#include "core/store.h"
#include "speedtest/api/api_priv.h"
#include "speedtest/services.h"

static const struct {
    const char *name;
    enum dst_metric_type type;
    const char *help;
} metric_defs[] = {
    {"dstmc_build_info", DST_METRIC_GAUGE, "Version of this dstmc binary."},
    {"dstmc_results_ingested_total", DST_METRIC_COUNTER, "Results stored, by API face."},
    {"dstmc_results_duplicate_total", DST_METRIC_COUNTER,
     "Results posted again with an id already stored (idempotent ingest)."},
    {"dstmc_results_rejected_total", DST_METRIC_COUNTER, "Result posts rejected as invalid."},
    {"dstmc_results_deleted_total", DST_METRIC_COUNTER, "Results deleted through the API."},
    {"dstmc_run_requests_total", DST_METRIC_COUNTER, "Run-now requests published."},
    {"dstmc_rollup_days_rolled_total", DST_METRIC_COUNTER,
     "(probe, day)s whose rollups were recomputed after their results changed."},
    {"dstmc_retention_raw_pruned_total", DST_METRIC_COUNTER,
     "Raw results pruned by --retention-raw (their rollups kept)."},
    {"dstmc_retention_rollups_pruned_total", DST_METRIC_COUNTER,
     "Hourly and daily rollups pruned by --retention-rollups."},
    {"dstmc_retention_passes_total", DST_METRIC_COUNTER,
     "Passes of the background roller and pruner."},
    {"dstmc_sse_clients", DST_METRIC_GAUGE, "Connected event-stream clients."},
    {"dstmc_probe_last_download_bps", DST_METRIC_GAUGE, "Last download speed per probe, bit/s."},
    {"dstmc_probe_last_upload_bps", DST_METRIC_GAUGE, "Last upload speed per probe, bit/s."},
    {"dstmc_probe_last_ping_ms", DST_METRIC_GAUGE, "Last ping per probe, ms."},
    {"dstmc_probe_last_result_ok", DST_METRIC_GAUGE, "1 if the probe's last test succeeded."},
    {"dstmc_probe_last_result_timestamp_seconds", DST_METRIC_GAUGE,
     "When the probe's last test ran, Unix time."},
    {"process_resident_memory_bytes", DST_METRIC_GAUGE, "Resident memory size in bytes."},
    {"process_start_time_seconds", DST_METRIC_GAUGE, "Start time of the process, Unix time."},
};

int api_new(const struct api_opts *opts, struct dst_store *store, struct dst_queue *queue,
            struct api **out)
{
    struct api *a = dst_xnew(struct api);
    int rc;

    a->opts = *opts;
    a->store = store;
    a->queue = queue;
    a->started_ms = dst_datetime_now_ms();
    pthread_mutex_init(&a->lock, NULL);
    pthread_mutex_init(&a->sched_lock, NULL);
    a->metrics = dst_metrics_new();
    for (size_t i = 0; i < sizeof(metric_defs) / sizeof(metric_defs[0]); i++)
        dst_metrics_declare(a->metrics, metric_defs[i].name, metric_defs[i].type,
                            metric_defs[i].help);
    dst_metrics_set(a->metrics, "dstmc_build_info", "version=\"" DSTMC_VERSION "\"", 1);
    dst_metrics_set(a->metrics, "process_start_time_seconds", "", (double)a->started_ms / 1000);
    rc = dst_sse_hub_new(0, 0, &a->hub);
    if (rc == 0)
        dst_sse_hub_clock_ids(a->hub); /* replicas behind a monitor: one order of ids */
    rc = rc ? rc : api_cache_new(64, &a->cache);
    rc = rc ? rc : api_auth_new(opts, &a->auth);
    rc = rc ? rc : api_feed_start(a);
    rc = rc ? rc : api_retention_start(a);
    if (rc) {
        api_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void api_shutdown(struct api *a)
{
    if (!a)
        return;
    api_feed_stop(a); /* no more events from the store */
    api_retention_stop(a);
    dst_sse_hub_close(a->hub); /* freed in api_free: the drain's handlers may publish */
}

void api_free(struct api *a)
{
    if (!a)
        return;
    api_feed_stop(a);
    api_retention_stop(a);
    dst_sse_hub_free(a->hub);
    api_cache_free(a->cache);
    api_auth_free(a->auth);
    dst_metrics_free(a->metrics);
    while (a->probes) {
        struct api_probe *p = a->probes;
        a->probes = p->next;
        free(p->name);
        json_decref(p->state);
        free(p);
    }
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->sched_lock);
    free(a);
}

/* Per-probe gauges of the newest stored result. */
static void probe_gauges(struct api *a, const struct dst_result *r)
{
    const char *probe = r->probe ? r->probe : "";
    size_t cap = 2 * strlen(probe) + 1; /* escaping at most doubles it: never cut short */
    char *esc = dst_xmalloc(cap);
    dst_metrics_escape(probe, esc, cap);
    char *labels = dst_xasprintf("probe=\"%s\"", esc);
    dst_metrics_set(a->metrics, "dstmc_probe_last_download_bps", labels, r->download_bps);
    dst_metrics_set(a->metrics, "dstmc_probe_last_upload_bps", labels, r->upload_bps);
    dst_metrics_set(a->metrics, "dstmc_probe_last_ping_ms", labels, r->ping_ms);
    dst_metrics_set(a->metrics, "dstmc_probe_last_result_ok", labels, r->status == DST_RESULT_OK);
    dst_metrics_set(a->metrics, "dstmc_probe_last_result_timestamp_seconds", labels,
                    (double)r->time_ms / 1000);
    free(labels);
    free(esc);
}

void api_results_stored(struct api *a, const struct dst_result *rs, size_t n, const bool *created,
                        const char *face)
{
    char labels[32];
    snprintf(labels, sizeof(labels), "face=\"%s\"", face);
    for (size_t i = 0; i < n; i++) {
        if (!created[i]) {
            dst_metrics_add(a->metrics, "dstmc_results_duplicate_total", labels, 1);
            continue;
        }
        dst_metrics_add(a->metrics, "dstmc_results_ingested_total", labels, 1);
        probe_gauges(a, &rs[i]);
    }
}

/* ---- service endpoints ---- */

static void get_ping(struct dst_http_req *req, void *ud)
{
    (void)ud;
    dst_http_reply_static(req, 200, "text/plain; charset=utf-8", "pong", 4);
}

static void get_healthz(struct dst_http_req *req, void *ud)
{
    (void)ud;
    dst_http_reply_static(req, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

static void get_readyz(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    int s = dst_store_ping(a->store), q = dst_queue_ping(a->queue);
    json_t *j = json_pack("{s:s, s:s, s:s}", "status", s || q ? "not ready" : "ready", "store",
                          s ? dst_strerror(s) : "ok", "queue", q ? dst_strerror(q) : "ok");
    dst_http_reply_json(req, s || q ? 503 : 200, j);
    json_decref(j);
}

/* Resident set size from /proc/self/statm, in bytes (0 if unreadable). */
static double rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return (double)rss * (double)sysconf(_SC_PAGESIZE);
}

static void get_metrics(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    struct dst_buf b;

    dst_metrics_set(a->metrics, "dstmc_sse_clients", "",
                    a->hub ? (double)dst_sse_hub_clients(a->hub) : 0);
    dst_metrics_set(a->metrics, "process_resident_memory_bytes", "", rss_bytes());
    dst_buf_init(&b, 0);
    dst_metrics_render(a->metrics, &b);
    size_t len = 0;
    char *text = dst_buf_detach(&b, &len);
    dst_http_reply_take(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

int api_mount(struct api *a, struct dst_http_server *s)
{
    int rc = api_route(a, s, "GET", "/ping", get_ping, API_OPEN, 0, 0);
    rc = rc ? rc : api_route(a, s, "GET", "/healthz", get_healthz, API_OPEN, 0, 0);
    rc = rc ? rc : api_route(a, s, "GET", "/readyz", get_readyz, API_OPEN, 0, 0);
    rc = rc ? rc : api_route(a, s, "GET", "/metrics", get_metrics, API_READ, 0, 0);
    rc = rc ? rc : api_session_mount(a, s);
    rc = rc ? rc : api_compat_mount(a, s);
    rc = rc ? rc : api_results_mount(a, s);
    rc = rc ? rc : api_results_delete_mount(a, s);
    rc = rc ? rc : api_series_mount(a, s);
    rc = rc ? rc : api_probes_mount(a, s);
    rc = rc ? rc : api_schedules_mount(a, s);
    if (rc == 0 && a->opts.web)
        rc = api_swagger_mount(a, s);
    if (rc == 0 && a->opts.web) {
        json_t *conf = json_pack("{s:s}", "speedTestApiBase",
                                 a->opts.web_api_base ? a->opts.web_api_base : "");
        char *text = dst_json_dumps(conf, NULL);
        rc = dst_assets_mount(s, text);
        free(text);
        json_decref(conf);
    }
    return rc;
}

/* ---- `dstmc api` ---- */

struct api_cfg {
    const char *listen, *db, *queue, *log_level, *base_path;
    struct api_access_cfg access;
    struct api_retention_cfg retention;
    bool web, seed_demo, access_log;
    long max_body, threads;
};

static int check_log_level(const char *v, char *err, size_t errlen)
{
    enum dst_log_level l;
    if (dst_log_level_parse(v, &l) == 0)
        return 0;
    snprintf(err, errlen, "'%s' is not one of debug, info, warn, error", v);
    return DST_EINVAL;
}

/* Checks what the table cannot: the URLs, the database file, the port. */
static int check_cfg(const struct dst_cfg *cfg, const struct api_cfg *c)
{
    struct dst_cfg_listener ls[] = {{"listen", c->listen, false}};
    char err[512];
    if (dst_store_url_check(c->db, err, sizeof(err)) ||
        dst_store_url_check_path(c->db, err, sizeof(err)))
        return dst_cfg_fail(cfg, stderr, "db", "%s", err);
    if (dst_queue_url_check(c->queue, err, sizeof(err)))
        return dst_cfg_fail(cfg, stderr, "queue", "%s", err);
    const char *key = NULL;
    if (api_access_cfg_check(&c->access, &key, err, sizeof(err)))
        return dst_cfg_fail(cfg, stderr, key, "%s", err);
    struct api_opts ao = {0};
    if (api_retention_cfg_apply(&c->retention, &ao, err, sizeof(err)))
        return dst_cfg_fail(cfg, stderr, "retention-rollups", "%s", err);
    return dst_cfg_check_listeners(cfg, stderr, ls, 1);
}

static int serve(const struct api_cfg *c)
{
    struct dst_store *store = NULL;
    struct dst_queue *queue = NULL;
    struct api *a = NULL;
    struct dst_http_server *srv = NULL;
    char *secret = NULL;
    struct api_opts ao = {
        .web = c->web, .web_api_base = "", .base_path = c->base_path, .first_token = true};
    struct dst_http_server_opts so = {.listen = c->listen,
                                      .name = "api",
                                      .max_body = (size_t)c->max_body,
                                      .threads = (unsigned)c->threads,
                                      .access_log = c->access_log};
    char err[256];
    int rc = api_access_cfg_apply(&c->access, &ao, &so, &secret);

    rc = rc ? rc : api_retention_cfg_apply(&c->retention, &ao, err, sizeof(err));
    rc = rc ? rc : dst_store_open(c->db, &store);
    if (rc == 0 && c->seed_demo)
        rc = api_seed_demo(store);
    rc = rc ? rc : dst_queue_open(c->queue, &queue);
    rc = rc ? rc : api_new(&ao, store, queue, &a);
    rc = rc ? rc : dst_http_server_new(&so, &srv);
    rc = rc ? rc : api_mount(a, srv);
    rc = rc ? rc : dst_http_server_start(srv);
    if (rc == 0) {
        api_auth_first_token(a, dst_http_server_url(srv));
        dst_sig_wait(-1);
        dst_info("stopping (signal %d)", dst_sig_last());
    } else {
        dst_error("cannot start: %s", dst_strerror(rc));
    }
    api_shutdown(a);
    dst_http_server_free(srv);
    api_free(a);
    dst_queue_free(queue);
    dst_store_free(store);
    free(secret);
    return rc ? 1 : 0;
}

int api_main(int argc, char **argv)
{
    struct api_cfg c = {0};
    struct dst_cfg_opt opts[] = {
        {"listen", DST_CFG_STR, &c.listen, "0.0.0.0:8080", "address to listen on", "HOST:PORT",
         .check = dst_cfg_check_hostport},
        {"db", DST_CFG_STR, &c.db, "sqlite:./dstmc.db", "results store", "URL",
         .state_def = "sqlite:%s/dstmc.db"},
        {"queue", DST_CFG_STR, &c.queue, "mem:", "queue for test requests", "URL"},
        API_ACCESS_CFG_OPTS(c.access),
        API_RETENTION_CFG_OPTS(c.retention),
        {"web", DST_CFG_BOOL, &c.web, "true", "serve the web UI and Swagger UI (--no-web: not)"},
        {"base-path", DST_CFG_STR, &c.base_path, "/",
         "path prefix a proxy strips before requests reach the API (e.g. /backend): named by "
         "Swagger UI's document and redirect",
         "PATH", .env_alias = "basePath", .check = api_base_path_check},
        {"seed-demo", DST_CFG_BOOL, &c.seed_demo, "false",
         "fill an empty store with the original's 1345 demo results"},
        {"max-body", DST_CFG_INT, &c.max_body, "1048576", "request body limit", "BYTES", 1024,
         1 << 30},
        {"threads", DST_CFG_INT, &c.threads, "2", "HTTP worker threads", "N", 1, 64},
        {"access-log", DST_CFG_BOOL, &c.access_log, "true", "log one line per request"},
        {"log-level", DST_CFG_STR, &c.log_level, "info", "debug, info, warn or error", "LEVEL",
         .check = check_log_level},
    };
    struct dst_cfg cfg = {"api", "stores and serves speed test results (REST, SSE, web UI)", opts,
                          (int)(sizeof(opts) / sizeof(opts[0]))};
    enum dst_log_level lvl;

    int rc = dst_cfg_parse(&cfg, argc, argv, stdout, stderr);
    if (rc == DST_CFG_EXIT)
        return 0;
    if (rc || check_cfg(&cfg, &c))
        return 2;
    if (cfg.check_only) {
        dst_cfg_ok(&cfg, stdout);
        return 0;
    }
    dst_log_level_parse(c.log_level, &lvl);
    dst_log_set_level(lvl);
    return serve(&c);
}
