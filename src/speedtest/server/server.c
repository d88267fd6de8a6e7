/* server.c - `dstmc server`: the test server for every protocol the probe speaks */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "core/buf.h"
#include "core/cfg.h"
#include "core/cfg_check.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/sig.h"
#include "speedtest/server/server_priv.h"
#include "speedtest/services.h"

extern char **environ;

void server_busy(struct server *s)
{
    atomic_fetch_add(&s->active, 1);
    atomic_store(&s->last_ms, dst_monotonic_ms());
}

void server_idle(struct server *s)
{
    atomic_fetch_sub(&s->active, 1);
    atomic_store(&s->last_ms, dst_monotonic_ms());
}

void server_count_bytes(struct server *s, const char *protocol, bool in, uint64_t bytes)
{
    char labels[96];
    snprintf(labels, sizeof(labels), "protocol=\"%s\",direction=\"%s\"", protocol,
             in ? "in" : "out");
    dst_metrics_add(s->metrics, "dstmc_server_bytes_total", labels, (double)bytes);
}

void server_count_request(struct server *s, const char *protocol, const char *kind)
{
    char labels[128];
    snprintf(labels, sizeof(labels), "protocol=\"%s\",kind=\"%s\"", protocol, kind);
    dst_metrics_add(s->metrics, "dstmc_server_requests_total", labels, 1);
}

static void get_metrics(struct dst_http_req *req, void *ud)
{
    struct server *s = ud;
    struct dst_buf b;
    size_t len = 0;

    dst_metrics_set(s->metrics, "dstmc_server_tests_active", "", atomic_load(&s->active));
    dst_buf_init(&b, 0);
    dst_metrics_render(s->metrics, &b);
    char *text = dst_buf_detach(&b, &len);
    dst_http_reply_take(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

static void get_ping(struct dst_http_req *req, void *ud)
{
    (void)ud;
    dst_http_reply_static(req, 200, "text/plain; charset=utf-8", "pong", 4);
}

static bool enabled(const char *listen)
{
    return !dst_cfg_is_off(listen);
}

/* Per HTTP connection: uploads are read in pieces of up to about this size. */
#define CONN_MEMORY (256 * 1024)

/* Starts the HTTP listener with both HTTP protocols, /metrics and /ping. */
static int start_http(struct server *s, struct dst_http_server **out)
{
    struct dst_http_server_opts o = {.listen = s->cfg.http,
                                     .name = "server",
                                     .threads = (unsigned)s->cfg.threads,
                                     .max_conns = (unsigned)s->cfg.max_streams * 4,
                                     .access_log = s->cfg.access_log,
                                     .cors_any = true,
                                     .poll = true, /* cut uploads end at once (see poll) */
                                     .conn_memory = CONN_MEMORY};
    struct dst_http_server *h = NULL;
    int rc = dst_http_server_new(&o, &h);
    rc = rc ? rc : dst_http_server_route(h, "GET", "/metrics", get_metrics, s, 0, 0);
    rc = rc ? rc : dst_http_server_route(h, "GET", "/ping", get_ping, s, 0, 0);
    rc = rc ? rc : server_librespeed_mount(s, h);
    rc = rc ? rc : server_speedtest_mount(s, h); /* last: it answers "/" */
    rc = rc ? rc : dst_http_server_start(h);
    if (rc) {
        dst_http_server_free(h);
        return rc;
    }
    s->http_port = dst_http_server_port(h);
    *out = h;
    return 0;
}

/* Runs the --on-idle command with /bin/sh and waits for it. */
static void run_on_idle(const char *cmd)
{
    char *argv[] = {"sh", "-c", (char *)cmd, NULL};
    pid_t pid;
    int status = 0;

    if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) != 0) {
        dst_error("--on-idle: cannot start /bin/sh");
        return;
    }
    waitpid(pid, &status, 0);
    if (WIFEXITED(status))
        dst_info("--on-idle: '%s' exited with %d", cmd, WEXITSTATUS(status));
    else
        dst_warn("--on-idle: '%s' ended by signal %d", cmd, WTERMSIG(status));
}

/* Waits for a stop signal, or for --idle-exit seconds without a test (then runs --on-idle). */
static void wait_until_done(struct server *s)
{
    while (!dst_sig_wait(500)) {
        int64_t idle_ms = dst_monotonic_ms() - atomic_load(&s->last_ms);
        if (s->cfg.idle_exit <= 0 || atomic_load(&s->active) > 0 ||
            idle_ms < s->cfg.idle_exit * 1000)
            continue;
        dst_info("no test for %ld s: exiting%s", s->cfg.idle_exit,
                 *s->cfg.on_idle ? " after --on-idle" : "");
        if (*s->cfg.on_idle)
            run_on_idle(s->cfg.on_idle);
        return;
    }
    dst_info("stopping (signal %d)", dst_sig_last());
}

static const struct {
    const char *name;
    enum dst_metric_type type;
    const char *help;
} metric_defs[] = {
    {"dstmc_server_bytes_total", DST_METRIC_COUNTER, "Test payload bytes, by protocol and way."},
    {"dstmc_server_requests_total", DST_METRIC_COUNTER, "Requests and commands, by protocol."},
    {"dstmc_server_tests_active", DST_METRIC_GAUGE, "Transfers or tests in progress."},
};

void server_cfg_init(struct server_cfg *c)
{
    *c = (struct server_cfg){.http = "0.0.0.0:8081",
                             .ookla = "0.0.0.0:5060",
                             .iperf3 = "0.0.0.0:5201",
                             .on_idle = "",
                             .name = "dstmc",
                             .sponsor = "dstmc",
                             .country = "Norway",
                             .cc = "NO",
                             .public_url = "",
                             .isp = "dstmc test network",
                             .log_level = "info",
                             .lat = 59.9139,
                             .lon = 10.7522,
                             .client_lat = 59.9139,
                             .client_lon = 10.7522,
                             .id = 1,
                             .max_streams = 64,
                             .max_bytes = 1073741824,
                             .threads = 4};
}

int server_start(const struct server_cfg *c, struct server **out)
{
    struct server *s = dst_xnew(struct server);
    int rc = 0;

    s->cfg = *c;
    s->metrics = dst_metrics_new();
    for (size_t i = 0; i < sizeof(metric_defs) / sizeof(metric_defs[0]); i++)
        dst_metrics_declare(s->metrics, metric_defs[i].name, metric_defs[i].type,
                            metric_defs[i].help);
    atomic_store(&s->last_ms, dst_monotonic_ms());
    if (enabled(c->http))
        rc = start_http(s, &s->http);
    if (rc == 0 && enabled(c->ookla))
        rc = server_ookla_start(s, &s->ookla);
    if (rc == 0 && enabled(c->iperf3))
        rc = server_iperf3_start(s, &s->iperf3);
    if (rc) {
        server_stop(s);
        return rc;
    }
    *out = s;
    return 0;
}

void server_stop(struct server *s)
{
    if (!s)
        return;
    server_iperf3_stop(s->iperf3);
    server_ookla_stop(s->ookla);
    dst_http_server_free(s->http);
    dst_metrics_free(s->metrics);
    free(s);
}

/* Checks the listeners together: no two on one port, each port free. */
static int check_listeners(const struct dst_cfg *cfg, const struct server_cfg *c)
{
    struct dst_cfg_listener ls[] = {
        {"http", c->http, true}, {"ookla", c->ookla, true}, {"iperf3", c->iperf3, true}};

    return dst_cfg_check_listeners(cfg, stderr, ls, 3);
}

int server_main(int argc, char **argv)
{
    struct server_cfg cfgv = {0}, *c = &cfgv;
    struct server *s = NULL;
    enum dst_log_level lvl;
    struct dst_cfg_opt opts[] = {
        {"http", DST_CFG_STR, &c->http, "0.0.0.0:8081",
         "speedtest.net legacy/Mini and LibreSpeed HTTP (\"off\": none)", "HOST:PORT",
         .check = dst_cfg_check_hostport_or_off},
        {"ookla", DST_CFG_STR, &c->ookla, "0.0.0.0:5060",
         "Ookla TCP protocol (\"off\": none; Ookla's servers use 5060 and 8080, the API's here)",
         "HOST:PORT", .check = dst_cfg_check_hostport_or_off},
        {"iperf3", DST_CFG_STR, &c->iperf3, "0.0.0.0:5201", "iperf3 (\"off\": none)", "HOST:PORT",
         .check = dst_cfg_check_hostport_or_off},
        {"idle-exit", DST_CFG_INT, &c->idle_exit, "0",
         "exit after this long without a test (0: never)", "SECONDS", 0, 31536000},
        {"on-idle", DST_CFG_STR, &c->on_idle, "",
         "shell command to run before an idle exit (e.g. poweroff)", "CMD"},
        {"name", DST_CFG_STR, &c->name, "dstmc", "server name in the server list", "NAME"},
        {"sponsor", DST_CFG_STR, &c->sponsor, "dstmc", "sponsor in the server list", "TEXT"},
        {"country", DST_CFG_STR, &c->country, "Norway", "country in the server list", "NAME"},
        {"cc", DST_CFG_STR, &c->cc, "NO", "country code in the server list", "CC"},
        {"id", DST_CFG_INT, &c->id, "1", "server id in the server list", "N", 0, 2147483647},
        {"lat", DST_CFG_DOUBLE, &c->lat, "59.9139", "this server's latitude", "DEG", -90, 90},
        {"lon", DST_CFG_DOUBLE, &c->lon, "10.7522", "this server's longitude", "DEG", -180, 180},
        {"client-lat", DST_CFG_DOUBLE, &c->client_lat, "59.9139",
         "latitude told to clients in speedtest-config.php", "DEG", -90, 90},
        {"client-lon", DST_CFG_DOUBLE, &c->client_lon, "10.7522",
         "longitude told to clients in speedtest-config.php", "DEG", -180, 180},
        {"isp", DST_CFG_STR, &c->isp, "dstmc test network", "ISP told to clients", "TEXT"},
        {"public-url", DST_CFG_STR, &c->public_url, "",
         "URL clients reach the HTTP listener at (default: the address they connected to)", "URL",
         .check = dst_cfg_check_url_or_empty},
        {"max-streams", DST_CFG_INT, &c->max_streams, "64",
         "concurrent connections per raw protocol", "N", 1, 4096},
        {"max-bytes", DST_CFG_INT, &c->max_bytes, "1073741824", "largest single download or upload",
         "BYTES", 1048576, 68719476736.0},
        {"threads", DST_CFG_INT, &c->threads, "4", "HTTP worker threads", "N", 1, 64},
        {"access-log", DST_CFG_BOOL, &c->access_log, "false", "log one line per HTTP request"},
        {"log-level", DST_CFG_STR, &c->log_level, "info", "debug, info, warn or error", "LEVEL"},
    };
    struct dst_cfg cfg = {"server",
                          "the test server: speedtest.net legacy/Mini and LibreSpeed over HTTP, "
                          "Ookla TCP, iperf3; listeners print their lines in that order",
                          opts, (int)(sizeof(opts) / sizeof(opts[0]))};

    int rc = dst_cfg_parse(&cfg, argc, argv, stdout, stderr);
    if (rc == DST_CFG_EXIT)
        return 0;
    if (rc || check_listeners(&cfg, c))
        return 2;
    if (dst_log_level_parse(c->log_level, &lvl))
        return dst_cfg_fail(&cfg, stderr, "log-level",
                            "'%s' is not one of debug, info, warn, "
                            "error",
                            c->log_level),
               2;
    if (cfg.check_only) {
        dst_cfg_ok(&cfg, stdout);
        return 0;
    }
    dst_log_set_level(lvl);
    rc = server_start(c, &s);
    if (rc) {
        dst_error("cannot start: %s", dst_strerror(rc));
        return 1;
    }
    wait_until_done(s);
    server_stop(s);
    return 0;
}
