/* up.c - `dstmc up`: the whole speed test system in one process (api, web UI, probe) */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/queue.h"
#include "core/sig.h"
#include "core/store.h"
#include "speedtest/api/api.h"
#include "speedtest/engines/engine.h"
#include "speedtest/logger/logger.h"
#include "speedtest/services.h"

/*
 * `up` is the composition root, like main.c: the one place that starts several services in one
 * process. They share the store and an in-process queue; the probe hands its results and
 * heartbeats to the API directly (a remote probe posts the same over HTTP).
 */
struct up_cfg {
    const char *listen, *db, *target, *agent, *location, *token, *log_level;
    bool seed_demo, access_log;
};

static int check_target(const char *v, char *err, size_t errlen)
{
    return engine_check_target(v, err, errlen);
}

/* The probe's results and heartbeats go straight to the API of this process. */
static int sink_post(void *ud, struct dst_result *r, char *err, size_t errlen)
{
    return api_ingest(ud, r, err, errlen);
}

static void sink_heartbeat(void *ud, const char *agent, const json_t *state)
{
    api_heartbeat(ud, agent, state);
}

static int up_run(const struct up_cfg *c)
{
    struct dst_store *store = NULL;
    struct dst_queue *queue = NULL;
    struct api *a = NULL;
    struct dst_http_server *srv = NULL;
    struct logger *lg = NULL;

    int rc = dst_store_open(c->db, &store);
    if (rc == 0 && c->seed_demo)
        rc = api_seed_demo(store);
    rc = rc ? rc : dst_queue_open("mem:", &queue);
    struct api_opts ao = {.token = c->token, .web = true, .web_api_base = ""};
    rc = rc ? rc : api_new(&ao, store, queue, &a);
    struct dst_http_server_opts so = {
        .listen = c->listen, .name = "api", .access_log = c->access_log, .cors = true};
    rc = rc ? rc : dst_http_server_new(&so, &srv);
    rc = rc ? rc : api_mount(a, srv);
    rc = rc ? rc : dst_http_server_start(srv);
    if (rc == 0) {
        struct probe_sink sink = {.post = sink_post, .heartbeat = sink_heartbeat, .ud = a};
        struct probe_opts po = {.target = c->target,
                                .sink = &sink,
                                .agent = c->agent,
                                .location = *c->location ? c->location : NULL,
                                .user = c->agent,
                                .device = 1,
                                .upload = true};
        rc = logger_start(&po, NULL, queue, &lg);
        if (rc == 0) {
            dst_info("web UI and API on port %d, probe '%s' testing %s", dst_http_server_port(srv),
                     c->agent, c->target);
            dst_sig_wait(-1);
            dst_info("stopping (signal %d)", dst_sig_last());
        }
        logger_stop(lg); /* po lives until here */
    }
    if (rc)
        dst_error("cannot start: %s", dst_strerror(rc));
    api_shutdown(a);
    dst_http_server_free(srv);
    api_free(a);
    dst_queue_free(queue);
    dst_store_free(store);
    return rc ? 1 : 0;
}

int up_main(int argc, char **argv)
{
    struct up_cfg c = {0};
    char host[65] = "probe", err[256], h[256];
    int port;
    enum dst_log_level lvl;
    gethostname(host, sizeof(host) - 1);
    struct dst_cfg_opt opts[] = {
        {"listen", DST_CFG_STR, &c.listen, "0.0.0.0:8080", "address of the API and web UI",
         "HOST:PORT"},
        {"db", DST_CFG_STR, &c.db, "sqlite:./dstmc.db", "results store", "URL"},
        {"target", DST_CFG_STR, &c.target, "dummy:", "what the probe tests against", "URL",
         .check = check_target},
        {"agent", DST_CFG_STR, &c.agent, host, "the probe's name", "NAME",
         .check = logger_check_agent},
        {"location", DST_CFG_STR, &c.location, "", "the probe's location label", "LABEL"},
        {"token", DST_CFG_STR, &c.token, "", "bearer token required for writes", "TOKEN"},
        {"seed-demo", DST_CFG_BOOL, &c.seed_demo, "false",
         "fill an empty store with the original's 1345 demo results"},
        {"access-log", DST_CFG_BOOL, &c.access_log, "false", "log one line per request"},
        {"log-level", DST_CFG_STR, &c.log_level, "info", "debug, info, warn or error", "LEVEL"},
    };
    struct dst_cfg cfg = {"up", "the whole speed test system in one process", opts,
                          (int)(sizeof(opts) / sizeof(opts[0]))};

    int rc = dst_cfg_parse(&cfg, argc, argv, stdout, stderr);
    if (rc == DST_CFG_EXIT)
        return 0;
    if (rc)
        return 2;
    if (dst_cfg_split_hostport(c.listen, h, sizeof(h), &port, err, sizeof(err)))
        return dst_cfg_fail(&cfg, stderr, "listen", "%s", err), 2;
    if (dst_store_url_check(c.db, err, sizeof(err)))
        return dst_cfg_fail(&cfg, stderr, "db", "%s", err), 2;
    if (dst_log_level_parse(c.log_level, &lvl))
        return dst_cfg_fail(&cfg, stderr, "log-level",
                            "'%s' is not one of debug, info, warn, "
                            "error",
                            c.log_level),
               2;
    if (cfg.check_only) {
        dst_cfg_ok(&cfg, stdout);
        return 0;
    }
    dst_log_set_level(lvl);
    return up_run(&c);
}
