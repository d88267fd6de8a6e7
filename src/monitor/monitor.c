/* monitor.c - `dstmc monitor`: health checks, failover to the first backend up, a status page */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assets.h"
#include "core/cfg.h"
#include "core/cfg_check.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/http_proxy.h"
#include "core/http_server.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/ping.h"
#include "core/sig.h"
#include "core/sse.h"
#include "monitor/monitor.h"
#include "monitor/services.h"

#define CONNECT_TIMEOUT_MS 1000
#define HEARTBEAT_MS       15000
#define DRAIN_MS           2000

/*
 * Any request is forwarded to the first backend (in --backend order) whose machine and service
 * are up (the original sent a calculation to S1 while S1 was up, else to S2); a failure or
 * timeout there is retried once on the next backend up; with none up the answer is 503 "No host
 * active". The monitor's own pages live beside the forwarded ones: /status (the original's
 * socket.io payload), /monitor/ (the page), /monitor/status and /monitor/events.
 */

/* ---- routing: the proxy's side ---- */

static bool pick(void *ud, int attempt, int failed, struct dst_http_upstream *out)
{
    struct monitor *m = ud;
    int i = 0;

    pthread_mutex_lock(&m->mu);
    while (i < m->n && (i == failed || !monitor_up_locked(m, i)))
        i++;
    if (i < m->n) {
        out->id = i;
        snprintf(out->base, sizeof(out->base), "%s", m->b[i].url);
        m->b[i].requests++;
        m->retried += attempt > 0;
    } else if (attempt == 0) {
        m->no_host++;
    }
    m->version++;
    pthread_mutex_unlock(&m->mu);
    return i < m->n;
}

/*
 * A transfer to a backend that went down is abandoned; so is an event stream to one that no
 * longer takes traffic (the first came back): its client reconnects to the one that does, the
 * backend that sees the writes.
 */
static bool keep(void *ud, int id, bool event_stream)
{
    struct monitor *m = ud;

    pthread_mutex_lock(&m->mu);
    bool ok = monitor_up_locked(m, id) && (!event_stream || monitor_active_locked(m) == id);
    pthread_mutex_unlock(&m->mu);
    return ok;
}

static void report(void *ud, int id, bool ok, int status, const char *reason)
{
    struct monitor *m = ud;

    (void)status;
    (void)reason;
    if (ok || id < 0 || id >= m->n)
        return;
    pthread_mutex_lock(&m->mu);
    m->b[id].failures++;
    m->version++;
    pthread_mutex_unlock(&m->mu);
}

/* ---- routes ---- */

static void on_forward(struct dst_http_req *req, void *ud)
{
    struct monitor *m = ud;

    pthread_mutex_lock(&m->mu);
    m->requests++;
    pthread_mutex_unlock(&m->mu);
    dst_http_proxy_forward(m->proxy, req);
}

static void reply_status(struct dst_http_req *req, struct monitor *m, bool rich)
{
    json_t *j = monitor_status_json(m, rich);

    dst_http_add_header(req, "Cache-Control", "no-store");
    dst_http_reply_json(req, 200, j);
    json_decref(j);
}

static void on_status(struct dst_http_req *req, void *ud)
{
    reply_status(req, ud, false);
}

static void on_status_rich(struct dst_http_req *req, void *ud)
{
    reply_status(req, ud, true);
}

static void on_events(struct dst_http_req *req, void *ud)
{
    struct monitor *m = ud;

    if (dst_sse_hub_attach(m->hub, req) != 0)
        dst_http_reply_error(req, 503, "cannot open the event stream");
}

static void on_page_redirect(struct dst_http_req *req, void *ud)
{
    (void)ud;
    dst_http_add_header(req, "Location", "/monitor/");
    dst_http_reply_static(req, 301, NULL, NULL, 0);
}

static void on_page(struct dst_http_req *req, void *ud)
{
    const char *file = dst_http_req_param(req, "file");
    char path[128];

    (void)ud;
    int n = snprintf(path, sizeof(path), "/monitor/%s", file && *file ? file : "index.html");
    const struct dst_asset *a = n > 0 && (size_t)n < sizeof(path) ? dst_asset_find(path) : NULL;
    if (!a)
        dst_http_reply_error(req, 404, "no such resource: %s", dst_http_req_path(req));
    else
        dst_assets_reply(req, a);
}

static int mount(struct dst_http_server *srv, struct monitor *m)
{
    int rc = dst_http_server_route(srv, "GET", "/status", on_status, m, 0, 0);
    rc = rc ? rc : dst_http_server_route(srv, "GET", "/monitor", on_page_redirect, m, 0, 0);
    rc = rc ? rc : dst_http_server_route(srv, "GET", "/monitor/", on_page, m, 0, 0);
    rc = rc ? rc : dst_http_server_route(srv, "GET", "/monitor/status", on_status_rich, m, 0, 0);
    rc = rc ? rc : dst_http_server_route(srv, "GET", "/monitor/events", on_events, m, 0, 0);
    rc = rc ? rc : dst_http_server_route(srv, "GET", "/monitor/{file}", on_page, m, 0, 0);
    rc = rc ? rc : dst_http_server_route(srv, "*", "/*", on_forward, m, 0, 0);
    return rc;
}

/* ---- the command ---- */

struct monitor_cfg {
    struct dst_cfg_list backends;
    const char *listen, *ping;
    long request_timeout_ms, idle_timeout_ms, max_body_mib, threads;
    bool access_log, retry_unsafe;
};

static int run(struct monitor *m, const struct monitor_cfg *c)
{
    struct dst_http_server *srv = NULL;
    struct dst_http_server_opts so = {.listen = c->listen,
                                      .name = "monitor",
                                      .access_log = c->access_log,
                                      .threads = (unsigned)c->threads,
                                      .max_body = (size_t)c->max_body_mib << 20};
    struct dst_http_proxy_opts po = {.name = "forward",
                                     .connect_timeout_ms = CONNECT_TIMEOUT_MS,
                                     .header_timeout_ms = (int)c->request_timeout_ms,
                                     .idle_timeout_ms = (int)c->idle_timeout_ms,
                                     .none_message = "No host active",
                                     .id_header = "X-Dstmc-Backend",
                                     .retry_unsafe = c->retry_unsafe};
    struct dst_http_proxy_ops ops = {pick, keep, report};
    int rc = dst_sse_hub_new(HEARTBEAT_MS, 0, &m->hub);

    rc = rc ? rc : dst_http_proxy_new(&po, &ops, m, &m->proxy);
    rc = rc ? rc : monitor_health_start(m);
    rc = rc ? rc : dst_http_server_new(&so, &srv);
    rc = rc ? rc : mount(srv, m);
    rc = rc ? rc : dst_http_server_start(srv);
    if (rc == 0) {
        pthread_mutex_lock(&m->mu);
        int active = monitor_active_locked(m);
        pthread_mutex_unlock(&m->mu);
        if (active < 0)
            dst_warn("no backend is up yet: requests get 503 until one is");
        else
            dst_info("traffic goes to %s (%s)", m->b[active].name, m->b[active].url);
        dst_sig_wait(-1);
    } else {
        dst_error("cannot start: %s", dst_strerror(rc));
    }
    monitor_health_stop(m);
    dst_sse_hub_close(m->hub); /* ends the page streams before the server drains */
    if (srv)
        dst_http_server_stop(srv, DRAIN_MS);
    dst_http_server_free(srv);
    dst_sse_hub_free(m->hub); /* only now: the drain's handlers may publish */
    m->hub = NULL;
    dst_http_proxy_free(m->proxy);
    return rc;
}

int monitor_main(int argc, char **argv)
{
    struct monitor_cfg c = {0};
    struct monitor *m = dst_xnew(struct monitor);
    enum dst_ping_method method = DST_PING_AUTO;
    struct dst_cfg_listener ls = {"listen", NULL, false};
    char err[300];
    struct dst_cfg_opt opts[] = {
        {"backend", DST_CFG_LIST, &c.backends, NULL,
         "a backend's base URL, in priority order (repeat: up to 16)", "URL"},
        {"listen", DST_CFG_STR, &c.listen, "0.0.0.0:3000", "address to listen on", "HOST:PORT",
         .check = dst_cfg_check_hostport},
        {"poll-ms", DST_CFG_INT, &m->poll_ms, "200", "time between two health checks of a backend",
         "MS", 10, 3600000},
        {"timeout-ms", DST_CFG_INT, &m->timeout_ms, "100", "how long an echo or GET /ping may take",
         "MS", 1, 60000},
        {"ping", DST_CFG_STR, &c.ping, "auto",
         "how machines are checked: auto, icmp (unprivileged), icmp-raw, tcp", "METHOD"},
        {"request-timeout-ms", DST_CFG_INT, &c.request_timeout_ms, "30000",
         "how long a backend may take to start answering a forwarded request", "MS", 1, 3600000},
        {"calculate", DST_CFG_BOOL, &m->calculate, "true",
         "show the Calculate form on the page (the backends are `dstmc machine`s)"},
        {"idle-timeout-ms", DST_CFG_INT, &c.idle_timeout_ms, "60000",
         "longest silence of a backend in the middle of an answer (event streams: send "
         "heartbeats)",
         "MS", 1, 86400000},
        {"retry-unsafe", DST_CFG_BOOL, &c.retry_unsafe, "false",
         "retry a POST or PATCH on the next backend even after it reached the first (when the "
         "backends' writes are idempotent)"},
        {"max-body-mib", DST_CFG_INT, &c.max_body_mib, "8", "largest request body forwarded", "MIB",
         1, 1024},
        {"threads", DST_CFG_INT, &c.threads, "2", "HTTP server threads", "N", 1, 64},
        {"access-log", DST_CFG_BOOL, &c.access_log, "false", "log one line per request"},
    };
    struct dst_cfg cfg = {"monitor",
                          "health-checks backends (ping + GET /ping), forwards every request to "
                          "the first one up, serves a live status page",
                          opts, (int)(sizeof(opts) / sizeof(opts[0]))};
    int rc = 0;

    pthread_mutex_init(&m->mu, NULL);
    rc = dst_cfg_parse(&cfg, argc, argv, stdout, stderr);
    if (rc) {
        rc = rc == DST_CFG_EXIT ? 0 : 2;
        goto out;
    }
    rc = 2;
    if (c.backends.n == 0) {
        dst_cfg_fail(&cfg, stderr, "backend", "give at least one backend URL");
        goto out;
    }
    for (int i = 0; i < c.backends.n; i++) {
        if (monitor_backend_init(&m->b[i], i, c.backends.v[i], err, sizeof(err)) != 0) {
            dst_cfg_fail(&cfg, stderr, "backend", "%s", err);
            goto out;
        }
    }
    m->n = c.backends.n;
    if (dst_ping_method_parse(c.ping, &method) != 0) {
        dst_cfg_fail(&cfg, stderr, "ping", "'%s' is not auto, icmp, icmp-raw or tcp", c.ping);
        goto out;
    }
    ls.value = c.listen;
    if (dst_cfg_check_listeners(&cfg, stderr, &ls, 1) != 0)
        goto out;
    if (cfg.check_only) {
        dst_cfg_ok(&cfg, stdout);
        rc = 0;
        goto out;
    }
    if (dst_pinger_new(method, &m->pinger) != 0)
        goto out;
    dst_info("machines are checked by %s every %ld ms (timeout %ld ms)",
             dst_ping_method_name(dst_pinger_method(m->pinger)), m->poll_ms, m->timeout_ms);
    m->started = dst_datetime_now_ms();
    rc = run(m, &c) ? 1 : 0;
out:
    dst_pinger_free(m->pinger);
    pthread_mutex_destroy(&m->mu);
    free(m);
    return rc;
}
