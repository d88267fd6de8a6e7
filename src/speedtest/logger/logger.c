/* logger.c - the probe daemon and `dstmc logger`: runs tests on request (or --once) */
#include "speedtest/logger/logger.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cfg.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/http_client.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/queue.h"
#include "core/sig.h"
#include "speedtest/engines/engine.h"
#include "speedtest/services.h"

#define REQUESTS_TOPIC "speedtest.requests" /* API_REQUESTS_TOPIC of the API */
#define HEARTBEAT_MS   30000
#define CLAIM_MS       600000 /* a request pending this long on a dead probe is redelivered */

struct logger {
    struct probe_opts o;
    struct dst_queue *q;
    struct dst_http_client *hc;
    pthread_t thread;
    atomic_bool stop;
    char consumer[160];
};

int logger_check_agent(const char *v, char *err, size_t errlen)
{
    size_t n = strlen(v);
    bool ok = n >= 1 && n <= 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)v[i]) || v[i] == '.' || v[i] == '_' || v[i] == '-';
    if (!ok) {
        snprintf(err, errlen, "'%s': 1 to 64 letters, digits, '.', '_' or '-'", v);
        return DST_EINVAL;
    }
    return 0;
}

/* Runs one request: measure, upload, and tell the API what is going on. */
static void handle(struct logger *l, const struct dst_queue_msg *m)
{
    const char *rid = json_string_value(json_object_get(m->body, "request_id"));
    const char *target = json_string_value(json_object_get(m->body, "target"));
    const char *probe = json_string_value(json_object_get(m->body, "probe"));
    struct dst_result r;

    if (probe && strcmp(probe, l->o.agent) != 0)
        return; /* meant for another probe */
    dst_info("request %s: running %s", rid ? rid : m->id, target ? target : l->o.target);
    probe_heartbeat(&l->o, l->hc, "running", rid, NULL, NAN);
    dst_result_init(&r);
    if (probe_measure(&l->o, target, rid, stdout, &r) != 0) {
        /* an unknown target in a request is still an answer: a failed result */
        dst_result_set(&r.target, target);
        r.status = DST_RESULT_FAILED;
        dst_result_set(&r.error, "unknown target: no engine for this URL scheme");
    }
    probe_upload(&l->o, l->hc, &r, stdout);
    dst_result_release(&r);
    probe_heartbeat(&l->o, l->hc, "idle", NULL, NULL, NAN);
}

static void *loop(void *arg)
{
    struct logger *l = arg;
    struct dst_queue_msg m;
    int64_t next_beat = 0;

    while (!atomic_load(&l->stop)) {
        if (dst_monotonic_ms() >= next_beat) {
            probe_heartbeat(&l->o, l->hc, "idle", NULL, NULL, NAN);
            next_beat = dst_monotonic_ms() + HEARTBEAT_MS;
        }
        int rc =
            dst_queue_consume(l->q, REQUESTS_TOPIC, l->o.agent, l->consumer, 500, CLAIM_MS, &m);
        if (rc == DST_ETIMEDOUT)
            continue;
        if (rc) {
            dst_warn("queue: %s; retrying", dst_strerror(rc));
            dst_sig_wait(1000);
            continue;
        }
        handle(l, &m);
        dst_queue_ack(l->q, REQUESTS_TOPIC, l->o.agent, m.id);
        dst_queue_msg_release(&m);
    }
    return NULL;
}

int logger_start(const struct probe_opts *o, struct dst_queue *q, struct logger **out)
{
    struct logger *l = dst_xnew(struct logger);
    l->o = *o;
    l->q = q;
    snprintf(l->consumer, sizeof(l->consumer), "%s-%ld", o->agent, (long)getpid());
    int rc = o->sink ? 0 : dst_http_client_new(&l->hc); /* a sink needs no HTTP */
    if (rc == 0 && pthread_create(&l->thread, NULL, loop, l) != 0)
        rc = DST_EDEP;
    if (rc) {
        dst_http_client_free(l->hc);
        free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void logger_stop(struct logger *l)
{
    if (!l)
        return;
    atomic_store(&l->stop, true);
    pthread_join(l->thread, NULL);
    dst_http_client_free(l->hc);
    free(l);
}

/* ---- `dstmc logger` ---- */

struct logger_cfg {
    const char *target, *api, *token, *agent, *location, *user, *queue;
    long device, timeout;
    bool once, upload, dummy;
};

static int check_target(const char *v, char *err, size_t errlen)
{
    return engine_check_target(v, err, errlen);
}

/* Runs one test now and uploads it; exit status 0 when the result was stored. */
static int run_once(const struct probe_opts *o)
{
    struct dst_result r;
    dst_result_init(&r);
    int rc = probe_measure(o, NULL, NULL, stdout, &r);
    if (rc == 0)
        rc = probe_upload(o, NULL, &r, stdout);
    dst_result_release(&r);
    return rc ? 1 : 0;
}

int logger_main(int argc, char **argv)
{
    struct logger_cfg c = {0};
    char host[65] = "probe";
    gethostname(host, sizeof(host) - 1);
    struct dst_cfg_opt opts[] = {
        {"once", DST_CFG_BOOL, &c.once, "false", "run one test, upload it and exit", NULL, 0, 0,
         "singleRun"},
        {"target", DST_CFG_STR, &c.target, "dummy:", "what to test against", "URL",
         .check = check_target},
        {"dummy", DST_CFG_BOOL, &c.dummy, "false", "use canned data (target dummy:)", NULL, 0, 0,
         "useDummyData"},
        {"api", DST_CFG_STR, &c.api, "http://localhost:8080", "API to post results to", "URL", 0, 0,
         "speedTestApiUrl"},
        {"token", DST_CFG_STR, &c.token, "", "bearer token for the API", "TOKEN"},
        {"upload", DST_CFG_BOOL, &c.upload, "true", "post results to the API", NULL, 0, 0,
         "uploadResults"},
        {"agent", DST_CFG_STR, &c.agent, host, "this probe's name", "NAME",
         .check = logger_check_agent},
        {"location", DST_CFG_STR, &c.location, "", "this probe's location label", "LABEL"},
        {"user", DST_CFG_STR, &c.user, "MyTestUser", "the original's userId", "NAME", 0, 0,
         "userId"},
        {"device", DST_CFG_INT, &c.device, "1", "the original's loggerId", "N", 0, 2147483647,
         "loggerId"},
        {"timeout", DST_CFG_INT, &c.timeout, "60", "limit per test", "SECONDS", 1, 3600},
        {"queue", DST_CFG_STR, &c.queue, "mem:", "queue to take test requests from", "URL"},
    };
    struct dst_cfg cfg = {"logger", "the probe: runs speed tests and posts the results", opts,
                          (int)(sizeof(opts) / sizeof(opts[0]))};

    int rc = dst_cfg_parse(&cfg, argc, argv, stdout, stderr);
    if (rc == DST_CFG_EXIT)
        return 0;
    if (rc)
        return 2;
    if (!c.once && strncmp(c.queue, "mem:", 4) == 0) {
        dst_cfg_fail(&cfg, stderr, "queue",
                     "the in-process mem: queue has no publisher outside `dstmc up`; use --once "
                     "or a shared queue");
        return 2;
    }
    if (cfg.check_only) {
        dst_cfg_ok(&cfg, stdout);
        return 0;
    }
    struct probe_opts o = {.target = c.dummy ? "dummy:" : c.target,
                           .api = c.api,
                           .token = c.token,
                           .agent = c.agent,
                           .location = *c.location ? c.location : NULL,
                           .user = c.user,
                           .device = c.device,
                           .timeout_s = (int)c.timeout,
                           .upload = c.upload};
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("Starting SpeedTestLogger");
    rc = run_once(&o);
    puts("SpeedTestLogger stopped");
    return rc;
}
