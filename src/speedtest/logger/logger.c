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
#include "core/cfg_check.h"
#include "core/cred.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/http_client.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/queue.h"
#include "core/sig.h"
#include "core/uuid.h"
#include "speedtest/engines/engine.h"
#include "speedtest/logger/hook.h"
#include "speedtest/logger/progress.h"
#include "speedtest/probe/outbox.h"
#include "speedtest/services.h"

#define REQUESTS_TOPIC "speedtest.requests" /* API_REQUESTS_TOPIC of the API */
#define HEARTBEAT_MS   30000
#define CLAIM_MS       600000 /* a request pending this long on a dead probe is redelivered */
#define CONSUME_MS     500    /* between outbox retries and stop checks */
#define DEFAULT_OUTBOX "./dstmc-outbox"
#define PROGRESS_MS    1000 /* live progress to the API: at most one beat a second, and each phase */

struct logger {
    struct probe_opts o;
    struct logger_opts lo;
    struct dst_queue *q;
    struct dst_http_client *hc;
    struct probe_outbox *ob;
    pthread_t thread;
    atomic_bool stop;
    char last_id[DST_UUID_LEN + 1]; /* the last result the API stored, for heartbeats */
    int64_t last_ms;
    /* the test being run, for its progress beats (only the logger's thread touches these) */
    struct logger_progress *progress; /* their sender: the engine's loop never waits on the API */
    const char *rid;
    int64_t started_ms, beat_ms;
    char phase[32];
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

static bool given(const char *s)
{
    return s && *s;
}

static void heartbeat(struct logger *l, const char *state, const char *rid)
{
    struct probe_beat b = {.state = state,
                           .request_id = rid,
                           .bps = NAN,
                           .elapsed_s = NAN,
                           .last_id = l->last_id,
                           .last_ms = l->last_ms};
    probe_heartbeat(&l->o, l->hc, &b);
}

/* The engine's progress (~5 a second): a running beat with the phase and rate, rate-limited. */
static void on_progress(void *ud, const char *phase, double bps)
{
    struct logger *l = ud;
    int64_t now = dst_monotonic_ms();
    bool same = strncmp(l->phase, phase, sizeof(l->phase) - 1) == 0;

    if (!l->rid || (same && now - l->beat_ms < PROGRESS_MS))
        return;
    snprintf(l->phase, sizeof(l->phase), "%s", phase);
    l->beat_ms = now;
    struct probe_beat b = {.state = "running",
                           .request_id = l->rid,
                           .phase = phase,
                           .bps = bps,
                           .elapsed_s = (double)(now - l->started_ms) / 1000,
                           .last_id = l->last_id,
                           .last_ms = l->last_ms};
    logger_progress_post(l->progress, &b);
}

static void stored(struct logger *l, const struct dst_result *r)
{
    snprintf(l->last_id, sizeof(l->last_id), "%s", r->id);
    l->last_ms = r->time_ms;
}

/* The outbox's sender: the API, quietly. */
static int outbox_send(void *ud, struct dst_result *r, char *err, size_t errlen)
{
    struct logger *l = ud;
    int rc = probe_post(&l->o, l->hc, r, err, errlen);
    if (rc == 0)
        stored(l, r);
    return rc;
}

/* Runs --before, the test, --after; a failing --before makes a failed result. */
static void run_test(const struct probe_opts *o, const struct logger_opts *lo, const char *target,
                     const char *rid, struct dst_result *r)
{
    char err[256], reason[320];
    int limit = lo->hook_timeout_s > 0 ? lo->hook_timeout_s : 60;

    if (given(lo->before) && logger_hook_run("--before", lo->before, limit, err, sizeof(err))) {
        snprintf(reason, sizeof(reason), "--before command failed: %s", err);
        probe_fail(o, target, rid, reason, stdout, r);
    } else if (probe_measure(o, target, rid, stdout, r) != 0) {
        /* an unknown target in a request is still an answer: a failed result */
        probe_fail(o, target, rid, "unknown target: no engine for this URL scheme", NULL, r);
    }
    if (given(lo->after))
        logger_hook_run("--after", lo->after, limit, err, sizeof(err)); /* logged there */
}

/*
 * Posts r, or keeps it in the outbox. True when the request may be acked: stored, rejected for
 * good, or safe on disk.
 */
static bool deliver(struct logger *l, struct dst_result *r)
{
    char err[1024] = "", oerr[1024] = "";
    int rc = probe_upload(&l->o, l->hc, r, stdout, err, sizeof(err));

    if (rc == 0 && l->o.upload) {
        stored(l, r);
        if (l->ob)
            probe_outbox_kick(l->ob); /* the API is back: send what waits */
    }
    if (rc == 0)
        return true;
    if (rc == DST_EINVAL) {
        dst_warn("result %s rejected by the API, dropped: %s", r->id, err);
        return true;
    }
    if (!l->ob) {
        dst_error("result %s not stored (%s) and no outbox: the request stays pending", r->id, err);
        return false;
    }
    if (probe_outbox_put(l->ob, r, oerr, sizeof(oerr)) != 0) {
        dst_error("result %s not stored (%s), and the outbox failed: %s; the request stays "
                  "pending and will be delivered again",
                  r->id, err, oerr);
        return false;
    }
    dst_warn("result %s not stored (%s): kept in the outbox %s/%s.json until it is", r->id, err,
             l->lo.outbox, r->id);
    return true;
}

bool logger_request_read(const json_t *body, const char *msg_id, const char *agent,
                         struct logger_request *out)
{
    const char *rid = json_string_value(json_object_get(body, "request_id"));
    const char *probe = json_string_value(json_object_get(body, "probe"));

    if (probe && strcmp(probe, agent) != 0)
        return false;             /* meant for another probe */
    out->id = rid ? rid : msg_id; /* a request without an id: its queue id is stable too */
    out->target = json_string_value(json_object_get(body, "target"));
    return true;
}

/* Runs one request; true when it may be acked. */
static bool handle(struct logger *l, const struct dst_queue_msg *m)
{
    struct logger_request rq;
    struct dst_result r;
    bool ack = true;

    if (!logger_request_read(m->body, m->id, l->o.agent, &rq))
        return true;
    const char *rid = rq.id, *target = rq.target;
    dst_info("request %s (delivery %d): running %s", rid, m->deliveries,
             target ? target : l->o.target);
    heartbeat(l, "running", rid);
    l->rid = rid;
    l->started_ms = l->beat_ms = dst_monotonic_ms();
    l->phase[0] = '\0';
    dst_result_init(&r);
    run_test(&l->o, &l->lo, target, rid, &r);
    l->rid = NULL;
    if (r.status == DST_RESULT_FAILED && (atomic_load(&l->stop) || dst_sig_stopping())) {
        dst_warn("request %s: cut short by the stop; it stays pending for the next start", rid);
        ack = false;
    } else {
        ack = deliver(l, &r);
    }
    dst_result_release(&r);
    heartbeat(l, "idle", NULL);
    return ack;
}

/* Takes one request, if one comes within CONSUME_MS, and runs it. */
static void consume_one(struct logger *l, bool *ready)
{
    struct dst_queue_msg m;
    int rc = dst_queue_consume(l->q, REQUESTS_TOPIC, l->lo.group, l->lo.consumer, CONSUME_MS,
                               CLAIM_MS, &m);
    if (rc == 0 || rc == DST_ETIMEDOUT) {
        if (!*ready)
            dst_info("waiting for test requests on %s (group %s, consumer %s)", REQUESTS_TOPIC,
                     l->lo.group, l->lo.consumer);
        *ready = true;
    }
    if (rc == DST_ETIMEDOUT)
        return;
    if (rc) {
        dst_warn("queue: %s; retrying", dst_strerror(rc));
        dst_sig_wait(1000);
        return;
    }
    if (handle(l, &m)) {
        rc = dst_queue_ack(l->q, REQUESTS_TOPIC, l->lo.group, m.id);
        if (rc)
            dst_warn("request %s: ack failed (%s): it may run again", m.id, dst_strerror(rc));
    }
    dst_queue_msg_release(&m);
}

static void *loop(void *arg)
{
    struct logger *l = arg;
    int64_t next_beat = 0;
    bool ready = false;

    while (!atomic_load(&l->stop)) {
        if (dst_monotonic_ms() >= next_beat) {
            heartbeat(l, "idle", NULL);
            next_beat = dst_monotonic_ms() + HEARTBEAT_MS;
        }
        if (l->ob && l->o.upload)
            probe_outbox_flush(l->ob, dst_monotonic_ms(), outbox_send, l);
        consume_one(l, &ready);
    }
    return NULL;
}

int logger_start(const struct probe_opts *o, const struct logger_opts *lo, struct dst_queue *q,
                 struct logger **out)
{
    struct logger *l = dst_xnew(struct logger);
    int rc = 0;

    l->o = *o;
    l->lo = lo ? *lo : (struct logger_opts){0};
    l->lo.group = given(l->lo.group) ? l->lo.group : o->agent;
    l->lo.consumer = given(l->lo.consumer) ? l->lo.consumer : o->agent;
    l->q = q;
    if (!l->o.progress) { /* live progress goes to the API as heartbeats */
        l->o.progress = on_progress;
        l->o.progress_ud = l;
    }
    if (given(l->lo.outbox))
        rc = probe_outbox_open(l->lo.outbox, &l->ob);
    if (rc == 0 && !o->sink)
        rc = dst_http_client_new(&l->hc); /* a sink needs no HTTP */
    if (rc == 0 && l->o.progress == on_progress)
        rc = logger_progress_start(&l->o, &l->progress);
    /* the group exists from now on: a request published before the first consume is ours too
       (a Redis that cannot be reached yet is joined by the first consume instead) */
    if (rc == 0 && dst_queue_join(q, REQUESTS_TOPIC, l->lo.group) != 0)
        dst_warn("cannot join the request queue yet: requests published before it answers are "
                 "not ours");
    if (rc == 0 && pthread_create(&l->thread, NULL, loop, l) != 0)
        rc = DST_EDEP;
    if (rc) {
        logger_progress_stop(l->progress);
        dst_http_client_free(l->hc);
        probe_outbox_free(l->ob);
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
    logger_progress_stop(l->progress);
    dst_http_client_free(l->hc);
    probe_outbox_free(l->ob);
    free(l);
}

/* ---- `dstmc logger` ---- */

struct logger_cfg {
    const char *target, *api, *token, *token_file, *agent, *location, *user, *queue;
    const char *group, *consumer, *outbox, *before, *after;
    long device, timeout, hook_timeout;
    bool once, upload, dummy;
};

static int check_target(const char *v, char *err, size_t errlen)
{
    return engine_check_target(v, err, errlen);
}

static int check_queue(const char *v, char *err, size_t errlen)
{
    return dst_queue_url_check(v, err, errlen);
}

/* An empty value means "the default" (the agent name); anything else is checked like one. */
static int check_name(const char *v, char *err, size_t errlen)
{
    return *v ? logger_check_agent(v, err, errlen) : 0;
}

/*
 * --once: one test now, uploaded, with the original's lines; exit status 0 when the result was
 * stored. A result the API did not take goes to the outbox only when --outbox was given (a
 * later daemon run sends it); the exit status is 1 all the same.
 */
static int run_once(const struct probe_opts *o, const struct logger_opts *lo)
{
    struct probe_outbox *ob = NULL;
    struct dst_result r;
    char err[1024];

    dst_result_init(&r);
    run_test(o, lo, NULL, NULL, &r);
    int rc = probe_upload(o, NULL, &r, stdout, err, sizeof(err));
    if (rc && rc != DST_EINVAL && given(lo->outbox) && probe_outbox_open(lo->outbox, &ob) == 0) {
        if (probe_outbox_put(ob, &r, err, sizeof(err)) == 0)
            dst_warn("result %s kept in the outbox %s until a daemon sends it", r.id, lo->outbox);
        else
            dst_error("result %s lost: the outbox failed: %s", r.id, err);
    }
    probe_outbox_free(ob);
    dst_result_release(&r);
    return rc ? 1 : 0;
}

/* The daemon: consumes requests until SIGTERM/SIGINT. */
static int run_daemon(const struct probe_opts *o, const struct logger_opts *lo, const char *url)
{
    struct dst_queue *q = NULL;
    struct logger *l = NULL;

    int rc = dst_queue_open(url, &q);
    rc = rc ? rc : logger_start(o, lo, q, &l);
    if (rc == 0) {
        dst_info("probe '%s' testing %s, results to %s, outbox %s", o->agent, o->target, o->api,
                 lo->outbox);
        dst_sig_wait(-1);
        dst_info("stopping (signal %d)", dst_sig_last());
    } else {
        dst_error("cannot start: %s", dst_strerror(rc));
    }
    logger_stop(l);
    dst_queue_free(q);
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
        {"target", DST_CFG_STR, &c.target, "speedtest://auto",
         "what to test against (speedtest://auto: the nearest speedtest.net servers, as the "
         "original; dummy: or --dummy for canned values)",
         "URL", .check = check_target},
        {"dummy", DST_CFG_BOOL, &c.dummy, "false", "use canned data (target dummy:)", NULL, 0, 0,
         "useDummyData"},
        {"api", DST_CFG_STR, &c.api, "http://localhost:8080", "API to post results to", "URL", 0, 0,
         "speedTestApiUrl", .check = dst_cfg_check_url},
        DST_CRED_CLIENT_OPTS(c.token, c.token_file),
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
        {"queue", DST_CFG_STR, &c.queue, "mem:", "queue to take test requests from", "URL",
         .check = check_queue},
        {"group", DST_CFG_STR, &c.group, "",
         "consumer group (default: the agent, so every probe runs every request; probes sharing "
         "a group split the work)",
         "NAME", .check = check_name},
        {"consumer", DST_CFG_STR, &c.consumer, "",
         "consumer name in the group (default: the agent; keep it stable so a restarted probe "
         "resumes its own unfinished requests)",
         "NAME", .check = check_name},
        {"outbox", DST_CFG_STR, &c.outbox, "",
         "directory of results the API did not take yet, retried until stored (default for the "
         "daemon: " DEFAULT_OUTBOX "; --once uses one only when given)",
         "DIR", .state_def = "%s/outbox"},
        {"before", DST_CFG_STR, &c.before, "", "shell command run before each test", "CMD"},
        {"after", DST_CFG_STR, &c.after, "", "shell command run after each test", "CMD"},
        {"hook-timeout", DST_CFG_INT, &c.hook_timeout, "60", "limit of --before and --after",
         "SECONDS", 1, 3600},
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
    const char *outbox = given(c.outbox) || c.once ? c.outbox : DEFAULT_OUTBOX;
    char *token = NULL, err[600];
    if (dst_cfg_check_dir(outbox, err, sizeof(err)))
        return dst_cfg_fail(&cfg, stderr, "outbox", "%s", err), 2;
    if (dst_cred_secret_load(c.token, c.token_file, &token, err, sizeof(err)) != 0) {
        dst_cfg_fail(&cfg, stderr, *c.token_file ? "token-file" : "token", "%s", err);
        return 2;
    }
    if (cfg.check_only) {
        dst_cfg_ok(&cfg, stdout);
        free(token);
        return 0;
    }
    struct probe_opts o = {.target = c.dummy ? "dummy:" : c.target,
                           .api = c.api,
                           .token = token,
                           .agent = c.agent,
                           .location = *c.location ? c.location : NULL,
                           .user = c.user,
                           .device = c.device,
                           .timeout_s = (int)c.timeout,
                           .upload = c.upload};
    struct logger_opts lo = {.group = c.group,
                             .consumer = c.consumer,
                             .outbox = outbox,
                             .before = c.before,
                             .after = c.after,
                             .hook_timeout_s = (int)c.hook_timeout};
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!c.once) {
        rc = run_daemon(&o, &lo, c.queue);
    } else {
        puts("Starting SpeedTestLogger");
        rc = run_once(&o, &lo);
        puts("SpeedTestLogger stopped");
    }
    free(token);
    return rc;
}
