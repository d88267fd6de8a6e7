/* probes.c - the native face's probes: heartbeats, the probe list, run-now, the event stream */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/queue.h"
#include "core/sse.h"
#include "core/store.h"
#include "core/uuid.h"
#include "speedtest/api/api_priv.h"

#define MAX_PROBE_NAME 128
#define PROGRESS_MS    1000 /* `progress` events: at most one a second per probe, and each phase */

/* The probe's heartbeat record, created on first sight. Called with a->lock held. */
static struct api_probe *probe_get(struct api *a, const char *name)
{
    struct api_probe *p;
    for (p = a->probes; p; p = p->next) {
        if (strcmp(p->name, name) == 0)
            return p;
    }
    p = dst_xnew(struct api_probe);
    p->name = dst_xstrdup(name);
    p->next = a->probes;
    a->probes = p;
    return p;
}

/* Probes with a heartbeat younger than API_PROBE_OFFLINE_MS (only `name` when given). */
static int probes_alive(struct api *a, const char *name)
{
    int64_t now = dst_datetime_now_ms();
    int n = 0;

    pthread_mutex_lock(&a->lock);
    for (struct api_probe *p = a->probes; p; p = p->next) {
        if (now - p->last_seen_ms < API_PROBE_OFFLINE_MS && (!name || !strcmp(name, p->name)))
            n++;
    }
    pthread_mutex_unlock(&a->lock);
    return n;
}

/*
 * Which event a heartbeat makes: a running one with a phase is live progress ("progress"), at
 * most one a second per probe unless the phase changed (NULL: none this time); any other is
 * "probe". Called with a->lock held.
 */
static const char *beat_event(struct api_probe *p, const json_t *state, int64_t now)
{
    const char *st = json_string_value(json_object_get(state, "state"));
    const char *phase = json_string_value(json_object_get(state, "phase"));

    if (!st || strcmp(st, "running") != 0 || !phase) {
        p->phase[0] = '\0';
        return "probe";
    }
    bool same = strncmp(p->phase, phase, sizeof(p->phase) - 1) == 0;
    if (same && now - p->progress_ms < PROGRESS_MS)
        return NULL;
    snprintf(p->phase, sizeof(p->phase), "%s", phase);
    p->progress_ms = now;
    return "progress";
}

void api_heartbeat(struct api *a, const char *name, const json_t *state)
{
    char ts[DST_DATETIME_LEN];
    int64_t now = dst_datetime_now_ms();
    json_t *j = json_deep_copy(state);

    dst_datetime_format_utc(now, ts);
    json_object_set_new(j, "name", json_string(name));
    json_object_set_new(j, "last_seen", json_string(ts));
    pthread_mutex_lock(&a->lock);
    struct api_probe *p = probe_get(a, name);
    p->last_seen_ms = now;
    json_decref(p->state);
    p->state = json_incref(j);
    const char *event = beat_event(p, j, now);
    pthread_mutex_unlock(&a->lock);
    if (event) {
        char *text = dst_json_dumps(j, NULL);
        dst_sse_hub_publish(a->hub, event, text);
        free(text);
    }
    json_decref(j);
}

/* POST /api/v1/probes/{name}/heartbeat */
static void post_heartbeat(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    const char *name = dst_http_req_param(req, "name");
    char err[256];
    size_t len = 0;

    if (!name || !*name || strlen(name) > MAX_PROBE_NAME)
        return (void)dst_http_reply_error(req, 400, "name: 1 to %d characters", MAX_PROBE_NAME);
    const char *body = dst_http_req_body(req, &len);
    json_t *j = len ? dst_json_parse(body, len, err, sizeof(err)) : json_object();
    if (!j || !json_is_object(j)) {
        dst_http_reply_error(req, 400, "%s", j ? "body: must be a JSON object" : err);
        json_decref(j);
        return;
    }
    api_heartbeat(a, name, j);
    json_decref(j);
    dst_http_reply_static(req, 204, NULL, "", 0);
}

/* One probe of the list: what the store knows, merged with the last heartbeat. */
static json_t *probe_json(struct api *a, const struct dst_probe_info *info, const char *name)
{
    char ts[DST_DATETIME_LEN];
    int64_t last = info ? info->last_ms : 0;
    const char *state = "offline";
    json_t *hb = NULL;

    pthread_mutex_lock(&a->lock);
    for (struct api_probe *p = a->probes; p; p = p->next) {
        if (strcmp(p->name, name) == 0) {
            hb = json_incref(p->state);
            last = p->last_seen_ms > last ? p->last_seen_ms : last;
            if (dst_datetime_now_ms() - p->last_seen_ms < API_PROBE_OFFLINE_MS) {
                json_t *s = json_object_get(p->state, "state");
                state = json_is_string(s) ? json_string_value(s) : "idle";
            }
        }
    }
    pthread_mutex_unlock(&a->lock);
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(name));
    json_t *loc = hb ? json_object_get(hb, "location") : NULL;
    if (json_is_string(loc))
        json_object_set(j, "location", loc);
    else
        dst_json_set_str(j, "location", info ? info->location : NULL);
    dst_datetime_format_utc(last, ts);
    json_object_set_new(j, "last_seen", last ? json_string(ts) : json_null());
    json_object_set_new(j, "state", json_string(state));
    json_object_set_new(j, "results", json_integer(info ? info->results : 0));
    json_object_set_new(j, "failed", json_integer(info ? info->failed : 0));
    json_object_set_new(j, "last_result", info ? dst_result_to_json(&info->last) : json_null());
    json_object_set_new(j, "heartbeat", hb ? hb : json_null());
    return j;
}

/* GET /api/v1/probes: probes seen in results, and probes seen only by heartbeat. */
static void list_probes(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    struct dst_probe_info *info = NULL;
    size_t n = 0;

    int rc = dst_store_probes(a->store, &info, &n);
    if (rc)
        return (void)dst_http_reply_error(req, dst_err_http_status(rc), "store: %s",
                                          dst_strerror(rc));
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, probe_json(a, &info[i], info[i].name));
    json_t *only_hb = json_array(); /* names copied under the lock, listed after it */
    pthread_mutex_lock(&a->lock);
    for (struct api_probe *p = a->probes; p; p = p->next) {
        size_t i = 0;
        while (i < n && strcmp(info[i].name, p->name) != 0)
            i++;
        if (i == n)
            json_array_append_new(only_hb, json_string(p->name));
    }
    pthread_mutex_unlock(&a->lock);
    size_t i;
    json_t *name;
    json_array_foreach(only_hb, i, name)
    {
        json_array_append_new(list, probe_json(a, NULL, json_string_value(name)));
    }
    json_decref(only_hb);
    dst_store_probes_free(info, n);
    json_t *j = json_pack("{s:o}", "probes", list);
    dst_http_reply_json(req, 200, j);
    json_decref(j);
}

/* Reads an optional string member of at most max bytes; false (and a 400 sent) if bad. */
static bool opt_string(struct dst_http_req *req, json_t *body, const char *key, size_t max,
                       const char **out)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max) {
        dst_http_reply_error(req, 400, "%s: a string of 1 to %zu characters", key, max);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

/* POST /api/v1/run: publishes a test request for the probes. */
static void post_run(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    const char *target = NULL, *probe = NULL, *k;
    char err[256], rid[DST_UUID_LEN + 1], msg[256];
    size_t len = 0;
    json_t *v;

    const char *body = dst_http_req_body(req, &len);
    json_t *in = len ? dst_json_parse(body, len, err, sizeof(err)) : json_object();
    if (!in || !json_is_object(in)) {
        dst_http_reply_error(req, 400, "%s", in ? "body: must be a JSON object" : err);
        json_decref(in);
        return;
    }
    json_object_foreach(in, k, v)
    {
        if (strcmp(k, "target") != 0 && strcmp(k, "probe") != 0) {
            dst_http_reply_error(req, 400, "%s: unknown field", k);
            json_decref(in);
            return;
        }
    }
    if (!opt_string(req, in, "target", 500, &target) ||
        !opt_string(req, in, "probe", MAX_PROBE_NAME, &probe)) {
        json_decref(in);
        return;
    }
    dst_uuid_new(rid);
    json_t *msgj = json_pack("{s:s, s:I, s:s}", "request_id", rid, "requested_at",
                             (json_int_t)dst_datetime_now_ms(), "source", "api");
    dst_json_set_str(msgj, "target", target);
    dst_json_set_str(msgj, "probe", probe);
    int rc = dst_queue_publish(a->queue, API_REQUESTS_TOPIC, msgj, NULL);
    if (rc) {
        json_decref(msgj);
        json_decref(in);
        return (void)dst_http_reply_error(req, 503, "queue: %s", dst_strerror(rc));
    }
    int alive = probes_alive(a, probe);
    if (alive == 0)
        snprintf(msg, sizeof(msg),
                 "queued, but no probe is running%s%s: start one with "
                 "`dstmc logger` (or `dstmc up`)",
                 probe ? " named " : "", probe ? probe : "");
    else
        snprintf(msg, sizeof(msg), "queued for %d running probe%s", alive, alive > 1 ? "s" : "");
    dst_metrics_add(a->metrics, "dstmc_run_requests_total", "", 1);
    json_object_set_new(msgj, "state", json_string("queued"));
    char *text = dst_json_dumps(msgj, NULL);
    dst_sse_hub_publish(a->hub, "run", text);
    free(text);
    json_decref(msgj);
    json_t *out =
        json_pack("{s:s, s:i, s:s}", "request_id", rid, "probes_alive", alive, "message", msg);
    dst_http_reply_json(req, 202, out);
    json_decref(out);
    json_decref(in); /* target and probe point into it */
}

/* GET /api/v1/events */
static void get_events(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    int rc = dst_sse_hub_attach(a->hub, req);
    if (rc)
        dst_http_reply_error(req, dst_err_http_status(rc), "events: %s", dst_strerror(rc));
}

int api_probes_mount(struct api *a, struct dst_http_server *s)
{
    int rc = api_route(a, s, "GET", "/api/v1/probes", list_probes, API_READ, 0, 0);
    rc = rc ? rc
            : api_route(a, s, "POST", "/api/v1/probes/{name}/heartbeat", post_heartbeat, API_INGEST,
                        0, 64 * 1024);
    rc = rc ? rc : api_route(a, s, "POST", "/api/v1/run", post_run, API_ADMIN, 0, 64 * 1024);
    rc = rc ? rc : api_route(a, s, "GET", "/api/v1/events", get_events, API_READ, 0, 0);
    return rc;
}
