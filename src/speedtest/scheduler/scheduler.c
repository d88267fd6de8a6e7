/* scheduler.c - `dstmc scheduler`: cron schedules publish test requests on the queue (or --once) */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cfg.h"
#include "core/cfg_check.h"
#include "core/cred.h"
#include "core/err.h"
#include "core/http_client.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/queue.h"
#include "core/sig.h"
#include "speedtest/scheduler/schedule.h"
#include "speedtest/services.h"

#define FOLLOW_EVERY_MS 5000 /* how often --api's schedules are read */

struct scheduler_cfg {
    const char *queue, *enable_file, *api, *token, *token_file;
    struct dst_cfg_list schedule;
    long jitter;
    bool once, fire_at_start;
};

static int check_queue(const char *v, char *err, size_t errlen)
{
    return dst_queue_url_check(v, err, errlen);
}

/*
 * --once: every schedule's request now, with the original scheduler's console lines (it said
 * "Sending event to KubeMQ at {addr}"; "sendt" is its spelling). 0, or 1 if a publish failed.
 */
static int run_once(const struct sched *s, const char *url, const char *enable_file)
{
    struct dst_queue *q = NULL;
    char rid[DST_UUID_LEN + 1];
    int rc = 0;

    puts("Starting Speedtest-scheduler...");
    if (!sched_enabled(s))
        dst_info("skipped: enable file %s is absent", enable_file);
    for (int i = 0; i < sched_count(s) && sched_enabled(s); i++) {
        const struct sched_entry *e = sched_entry(s, i);
        printf("Sending event to %s\n", url);
        rc = q ? 0 : dst_queue_open(url, &q);
        rc = rc ? rc : sched_publish(q, e->target, e->probe, rid);
        if (rc) {
            printf("Error: Unable to send command %s\n", dst_strerror(rc));
            break;
        }
        dst_info("schedule '%s': published request %s", e->spec, rid);
        puts("Event sendt!");
    }
    dst_queue_free(q);
    if (rc == 0)
        puts("Speedtest-scheduler done");
    return rc ? 1 : 0;
}

/* Reads the API's schedules document; NULL (and a warning when that is news) if it cannot. */
static json_t *read_schedules(struct dst_http_client *hc, const char *url, const char *token,
                              bool *failing)
{
    struct dst_http_call call = {
        .url = url, .timeout_ms = 5000, .max_body = 1 << 20, .bearer = token};
    struct dst_http_resp resp;
    json_t *doc = NULL;
    int rc = dst_http_client_do(hc, &call, &resp);

    if (rc == 0 && resp.status == 200)
        doc = dst_json_parse(resp.body, resp.len, NULL, 0);
    if (!json_is_object(doc) && !*failing)
        dst_warn("cannot read the schedules at %s (%s): keeping the ones in use", url,
                 rc                   ? resp.err
                 : resp.status != 200 ? "an HTTP error status"
                                      : "not JSON");
    else if (json_is_object(doc) && *failing)
        dst_info("reading the schedules at %s again", url);
    *failing = !json_is_object(doc);
    dst_http_resp_release(&resp);
    if (!json_is_object(doc))
        json_decref(doc), doc = NULL;
    return doc;
}

/* What of a schedules document the scheduler follows: no ids, no next runs. */
static char *follow_key(const json_t *doc)
{
    json_t *k = json_pack("{s:O?, s:[]}", "paused", json_object_get(doc, "paused"), "schedules");
    json_t *item;
    size_t i;

    json_array_foreach(json_object_get(doc, "schedules"), i, item) json_array_append_new(
        json_object_get(k, "schedules"),
        json_pack("{s:O?, s:O?, s:O?, s:O?}", "cron", json_object_get(item, "cron"), "target",
                  json_object_get(item, "target"), "probe", json_object_get(item, "probe"),
                  "enabled", json_object_get(item, "enabled")));
    char *text = json_dumps(k, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(k);
    return text;
}

struct follower {
    struct sched *s;
    const char *url;   /* .../api/v1/schedules */
    const char *token; /* for a private API; NULL: none */
    pthread_t t;
};

/* --api: the API's schedules (and pause) replace the scheduler's whenever they change. */
static void *follow_main(void *arg)
{
    struct follower *f = arg;
    struct dst_http_client *hc = NULL;
    char *last = NULL;
    bool failing = false;

    if (dst_http_client_new(&hc) != 0)
        return dst_error("--api: no HTTP client"), NULL;
    do {
        json_t *doc = read_schedules(hc, f->url, f->token, &failing);
        char *key = doc ? follow_key(doc) : NULL;
        if (key && (!last || strcmp(key, last) != 0)) {
            sched_follow_doc(f->s, doc);
            free(last);
            last = key;
            key = NULL;
        }
        free(key);
        json_decref(doc);
    } while (!dst_sig_wait(FOLLOW_EVERY_MS));
    free(last);
    dst_http_client_free(hc);
    return NULL;
}

/* The daemon: publishes on schedule until SIGTERM/SIGINT. */
static int run_daemon(struct sched *s, const char *url, const char *api, const char *token)
{
    struct follower f = {.s = s, .token = token};
    char *follow_url = NULL;
    bool following = false;

    struct dst_queue *q = NULL;

    if (strcmp(url, "mem:") == 0)
        dst_warn("queue mem: lives in this process, and nothing here reads it: the requests go "
                 "nowhere (use a shared queue such as redis://, or `dstmc up`)");
    int rc = dst_queue_open(url, &q);
    if (rc) {
        dst_error("queue %s: %s", url, dst_strerror(rc));
        return 1;
    }
    dst_info("publishing test requests on %s (%d schedule%s)", url, sched_count(s),
             sched_count(s) == 1 ? "" : "s");
    if (*api) {
        follow_url = dst_xasprintf("%s/api/v1/schedules", api);
        f.url = follow_url;
        following = pthread_create(&f.t, NULL, follow_main, &f) == 0;
        dst_info("following the schedules at %s", follow_url);
    }
    sched_run(s, q);
    if (following)
        pthread_join(f.t, NULL); /* it ends on the same stop as sched_run */
    free(follow_url);
    dst_info("stopped");
    dst_queue_free(q);
    return 0;
}

/* Adds every --schedule; a config error naming the bad one. */
static int add_schedules(struct sched *s, const struct scheduler_cfg *c, struct dst_cfg *cfg)
{
    char err[512];
    for (int i = 0; i < c->schedule.n; i++) {
        if (sched_add(s, c->schedule.v[i], err, sizeof(err)) != 0)
            return dst_cfg_fail(cfg, stderr, "schedule", "%s", err);
    }
    return 0;
}

int scheduler_main(int argc, char **argv)
{
    struct scheduler_cfg c = {0};
    struct dst_cfg_opt opts[] = {
        {"schedule", DST_CFG_LIST, &c.schedule, "0 * * * *",
         "when to request a test, and what: \"CRON [TARGET [PROBE]]\", e.g. \"*/15 * * * * "
         "speedtest://auto\" or \"@hourly iperf3://h den\"",
         "SPEC"},
        {"queue", DST_CFG_STR, &c.queue, "mem:", "queue to publish test requests on", "URL",
         .check = check_queue},
        {"jitter", DST_CFG_INT, &c.jitter, "0",
         "start each firing a random 0..S seconds late, so probes spread out", "S", 0, 86400},
        {"once", DST_CFG_BOOL, &c.once, "false", "publish one request per schedule now and exit"},
        {"enable-file", DST_CFG_STR, &c.enable_file, "",
         "fire only while this file exists (the original's marker file)", "PATH",
         .check = dst_cfg_check_watched_file},
        {"fire-at-start", DST_CFG_BOOL, &c.fire_at_start, "false",
         "also fire every schedule once right after start"},
        {"api", DST_CFG_STR, &c.api, "",
         "follow this API's schedules and pause (/api/v1/schedules, read every 5 s); until it "
         "answers, the --schedule flags",
         "URL", .check = dst_cfg_check_url_or_empty},
        DST_CRED_CLIENT_OPTS(c.token, c.token_file),
    };
    struct dst_cfg cfg = {"scheduler", "publishes speed test requests on a cron schedule", opts,
                          (int)(sizeof(opts) / sizeof(opts[0]))};

    int rc = dst_cfg_parse(&cfg, argc, argv, stdout, stderr);
    if (rc == DST_CFG_EXIT)
        return 0;
    if (rc)
        return 2;
    struct sched_opts so = {.jitter_s = c.jitter,
                            .live = *c.api != 0,
                            .enable_file = *c.enable_file ? c.enable_file : NULL,
                            .fire_at_start = c.fire_at_start};
    struct sched *s = sched_new(&so);
    char *token = NULL, err[200];
    rc = add_schedules(s, &c, &cfg) ? 2 : 0;
    if (rc == 0 && dst_cred_secret_load(c.token, c.token_file, &token, err, sizeof(err)) != 0) {
        dst_cfg_fail(&cfg, stderr, *c.token_file ? "token-file" : "token", "%s", err);
        rc = 2;
    }
    if (rc == 0 && cfg.check_only)
        dst_cfg_ok(&cfg, stdout);
    else if (rc == 0 && c.once) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        rc = run_once(s, c.queue, so.enable_file);
    } else if (rc == 0)
        rc = run_daemon(s, c.queue, c.api, token);
    sched_free(s);
    free(token);
    return rc;
}
