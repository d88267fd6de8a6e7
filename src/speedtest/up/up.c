/* up.c - `dstmc up`: the whole speed test system in one process */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cfg.h"
#include "core/cfg_check.h"
#include "core/err.h"
#include "core/http_server.h"
#include "core/json.h"
#include "core/log.h"
#include "core/queue.h"
#include "core/sig.h"
#include "core/store.h"
#include "speedtest/api/api.h"
#include "speedtest/engines/engine.h"
#include "speedtest/logger/logger.h"
#include "speedtest/scheduler/schedule.h"
#include "speedtest/server/server.h"
#include "speedtest/services.h"

/*
 * `up` is the composition root, like main.c: the one place that starts several services in one
 * process: api + web UI, the scheduler, a probe and the test server. They share the store and an
 * in-process queue; the probe hands its results and heartbeats to the API directly (a remote
 * probe posts the same over HTTP).
 */
struct up_cfg {
    const char *listen, *db, *target, *agent, *location, *log_level;
    struct api_access_cfg access;
    struct api_retention_cfg retention;
    const char *server_http, *server_ookla, *server_iperf3;
    struct dst_cfg_list schedule;
    long jitter;
    bool seed_demo, access_log;
    bool schedule_given; /* --schedule or DSTMC_SCHEDULE, not the default */
};

struct sched_thread {
    struct sched *s;
    struct dst_queue *q;
    pthread_t t;
    bool running;
};

static void *sched_main(void *arg)
{
    struct sched_thread *st = arg;
    sched_run(st->s, st->q);
    return NULL;
}

/* The API's schedules_changed hook: the scheduler follows the stored document. */
static void sched_follow(void *ud, const json_t *doc)
{
    sched_follow_doc(ud, doc);
}

/* The --schedule flags as the API's schedules (the store's first schedules). */
static int seed_schedules(const struct up_cfg *c, json_t **out)
{
    struct sched_opts so = {0};
    struct sched *tmp = sched_new(&so);
    json_t *list = json_array();
    char err[512];
    int rc = 0;

    for (int i = 0; rc == 0 && i < c->schedule.n; i++) {
        rc = sched_add(tmp, c->schedule.v[i], err, sizeof(err));
        if (rc)
            dst_error("schedule: %s", err);
    }
    for (int i = 0; rc == 0 && i < sched_count(tmp); i++) {
        const struct sched_entry *e = sched_entry(tmp, i);
        json_t *item = json_pack("{s:s, s:b}", "cron", e->expr, "enabled", 1);
        dst_json_set_str(item, "target", e->target);
        dst_json_set_str(item, "probe", e->probe);
        json_array_append_new(list, item);
    }
    sched_free(tmp);
    if (rc)
        json_decref(list);
    else
        *out = list;
    return rc;
}

/*
 * The store's schedules, seeded from --schedule when it has none, handed to the scheduler
 * (through the API's hook). Before the API listens, so that its first answer has them. A store
 * that has schedules keeps them (they may have been edited in the UI since): a --schedule given
 * then is said to be unused, with what to do instead.
 */
static int sched_load(struct api *a, const struct up_cfg *c)
{
    json_t *seed = NULL;
    bool seeded = false;
    char err[512];

    int rc = seed_schedules(c, &seed);
    rc = rc ? rc : api_schedules_load(a, seed, &seeded, err, sizeof(err));
    json_decref(seed);
    if (rc == 0 && !seeded && c->schedule_given)
        dst_warn("--schedule not applied: the store keeps the schedules it has (edited in "
                 "the UI or through PUT /api/v1/schedules since it was made); change them there, "
                 "or start with a new --db to seed them from --schedule");
    if (rc == DST_EINVAL)
        dst_error("schedule: %s", err);
    else if (rc)
        dst_error("schedules: %s", err);
    return rc;
}

/* The scheduler, on its own thread until a stop signal. */
static int sched_start(struct dst_queue *q, struct sched_thread *st)
{
    st->q = q;
    if (pthread_create(&st->t, NULL, sched_main, st) != 0)
        return DST_ENOMEM;
    st->running = true;
    return 0;
}

static void sched_stop(struct sched_thread *st)
{
    if (st->running) {
        dst_sig_request_stop(); /* sched_run ends on it */
        pthread_join(st->t, NULL);
        st->running = false;
    }
}

/* The test server of this host, on the --server-* listeners that are not "off". */
static int test_server_start(const struct up_cfg *c, struct server **out)
{
    struct server_cfg sc;

    server_cfg_init(&sc);
    sc.http = c->server_http;
    sc.ookla = c->server_ookla;
    sc.iperf3 = c->server_iperf3;
    sc.threads = 2;
    return server_start(&sc, out);
}

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

/* Checks what the table cannot: the database file, the schedules, the ports. */
static int check_cfg(const struct dst_cfg *cfg, const struct up_cfg *c)
{
    struct dst_cfg_listener ls[] = {{"listen", c->listen, false},
                                    {"server-http", c->server_http, true},
                                    {"server-ookla", c->server_ookla, true},
                                    {"server-iperf3", c->server_iperf3, true}};
    struct sched_opts so = {0};
    struct sched *s = sched_new(&so);
    char err[512];
    int rc = 0;

    if (dst_store_url_check(c->db, err, sizeof(err)) ||
        dst_store_url_check_path(c->db, err, sizeof(err)))
        rc = dst_cfg_fail(cfg, stderr, "db", "%s", err);
    for (int i = 0; rc == 0 && i < c->schedule.n; i++) {
        if (sched_add(s, c->schedule.v[i], err, sizeof(err)) != 0)
            rc = dst_cfg_fail(cfg, stderr, "schedule", "%s", err);
    }
    sched_free(s);
    const char *key = NULL;
    if (rc == 0 && api_access_cfg_check(&c->access, &key, err, sizeof(err)))
        rc = dst_cfg_fail(cfg, stderr, key, "%s", err);
    struct api_opts ao = {0};
    if (rc == 0 && api_retention_cfg_apply(&c->retention, &ao, err, sizeof(err)))
        rc = dst_cfg_fail(cfg, stderr, "retention-rollups", "%s", err);
    return rc ? rc : dst_cfg_check_listeners(cfg, stderr, ls, 4);
}

static int up_run(const struct up_cfg *c)
{
    struct dst_store *store = NULL;
    struct dst_queue *queue = NULL;
    struct api *a = NULL;
    struct dst_http_server *srv = NULL;
    struct logger *lg = NULL;
    struct server *ts = NULL;
    struct sched_opts sco = {.jitter_s = c->jitter, .live = true};
    struct sched_thread st = {.s = sched_new(&sco)};

    char *secret = NULL;
    struct api_opts ao = {.web = true,
                          .web_api_base = "",
                          .first_token = true,
                          .schedules_changed = sched_follow,
                          .schedules_ud = st.s};
    struct dst_http_server_opts so = {
        .listen = c->listen, .name = "api", .access_log = c->access_log};

    char err[256];
    int rc = api_access_cfg_apply(&c->access, &ao, &so, &secret);
    rc = rc ? rc : api_retention_cfg_apply(&c->retention, &ao, err, sizeof(err));
    rc = rc ? rc : dst_store_open(c->db, &store);
    if (rc == 0 && c->seed_demo)
        rc = api_seed_demo(store);
    rc = rc ? rc : dst_queue_open("mem:", &queue);
    rc = rc ? rc : api_new(&ao, store, queue, &a);
    rc = rc ? rc : sched_load(a, c);
    struct probe_sink sink = {.post = sink_post, .heartbeat = sink_heartbeat, .ud = a};
    struct probe_opts po = {.target = c->target,
                            .sink = &sink,
                            .agent = c->agent,
                            .location = *c->location ? c->location : NULL,
                            .user = c->agent,
                            .device = 1,
                            .upload = true};
    rc = rc ? rc : dst_http_server_new(&so, &srv);
    rc = rc ? rc : api_mount(a, srv);
    /* the probe joins the queue before the API listens: the first run-now is its too */
    rc = rc ? rc : logger_start(&po, NULL, queue, &lg);
    rc = rc ? rc : dst_http_server_start(srv);
    rc = rc ? rc : test_server_start(c, &ts);
    rc = rc ? rc : sched_start(queue, &st);
    if (rc == 0) {
        dst_info("web UI and API on port %d, probe '%s' testing %s", dst_http_server_port(srv),
                 c->agent, c->target);
        api_auth_first_token(a, dst_http_server_url(srv));
        dst_sig_wait(-1);
        dst_info("stopping (signal %d)", dst_sig_last());
    }
    sched_stop(&st);
    logger_stop(lg); /* po lives until here */
    if (rc)
        dst_error("cannot start: %s", dst_strerror(rc));
    api_shutdown(a);
    server_stop(ts);
    dst_http_server_free(srv);
    sched_free(st.s); /* the API's hook uses it until the HTTP server is gone */
    api_free(a);
    dst_queue_free(queue);
    dst_store_free(store);
    free(secret);
    return rc ? 1 : 0;
}

int up_main(int argc, char **argv)
{
    struct up_cfg c = {0};
    char host[65] = "probe";
    enum dst_log_level lvl;
    gethostname(host, sizeof(host) - 1);
    struct dst_cfg_opt opts[] = {
        {"listen", DST_CFG_STR, &c.listen, "0.0.0.0:8080", "address of the API and web UI",
         "HOST:PORT", .check = dst_cfg_check_hostport},
        {"db", DST_CFG_STR, &c.db, "sqlite:./dstmc.db", "results store", "URL",
         .state_def = "sqlite:%s/dstmc.db"},
        {"target", DST_CFG_STR, &c.target, "speedtest://auto",
         "what the probe tests against (dummy: for canned values)", "URL", .check = check_target},
        {"schedule", DST_CFG_LIST, &c.schedule, "*/15 * * * *",
         "when to test, and what: \"CRON [TARGET [PROBE]]\" (repeatable; see dstmc scheduler); "
         "seeds a new store's schedules: a store that has schedules keeps its own (edit them in "
         "the UI)",
         "SPEC"},
        {"jitter", DST_CFG_INT, &c.jitter, "0",
         "start each scheduled test a random 0..S seconds late", "S", 0, 86400},
        {"server-http", DST_CFG_STR, &c.server_http, "0.0.0.0:8081",
         "test server: speedtest.net/Mini and LibreSpeed over HTTP (\"off\": none)", "HOST:PORT",
         .check = dst_cfg_check_hostport_or_off},
        {"server-ookla", DST_CFG_STR, &c.server_ookla, "off",
         "test server: Ookla TCP (its usual 8080 is the UI's here)", "HOST:PORT",
         .check = dst_cfg_check_hostport_or_off},
        {"server-iperf3", DST_CFG_STR, &c.server_iperf3, "0.0.0.0:5201",
         "test server: iperf3 (\"off\": none)", "HOST:PORT",
         .check = dst_cfg_check_hostport_or_off},
        {"agent", DST_CFG_STR, &c.agent, host, "the probe's name", "NAME",
         .check = logger_check_agent},
        {"location", DST_CFG_STR, &c.location, "", "the probe's location label", "LABEL"},
        API_ACCESS_CFG_OPTS(c.access),
        API_RETENTION_CFG_OPTS(c.retention),
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
    if (rc || check_cfg(&cfg, &c))
        return 2;
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
    for (int i = 0; i < cfg.nopts; i++) {
        if (strcmp(opts[i].name, "schedule") == 0)
            c.schedule_given = opts[i].from != DST_CFG_FROM_DEFAULT;
    }
    dst_log_set_level(lvl);
    return up_run(&c);
}
