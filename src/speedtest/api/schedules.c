/* schedules.c - the native face's schedules: kept in the store, listed, replaced, paused */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cron.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/json.h"
#include "core/sse.h"
#include "core/store.h"
#include "speedtest/api/api_priv.h"
#include "speedtest/engines/engine.h"

#define SCHEDULES_KEY "schedules" /* the store setting */
#define MAX_SCHEDULES 32
#define MAX_CRON      200
#define MAX_TARGET    500
#define MAX_PROBE     64 /* as the scheduler's probe names */

#define PUT_TRIES 5 /* pause and resume: compare-and-set attempts before giving up (409) */

/*
 * The stored document and its version, or the empty one and 0 if none was stored; *out is a
 * new reference.
 */
static int doc_load(struct api *a, json_t **out, int64_t *version)
{
    int rc = dst_store_setting_get(a->store, SCHEDULES_KEY, out, version);
    if (rc == DST_ENOTFOUND) {
        *out = json_pack("{s:b, s:[]}", "paused", 0, "schedules");
        *version = 0;
        rc = 0;
    }
    return rc;
}

/* The next fire time of cron after now as ISO 8601 UTC, or null (paused, off, never). */
static json_t *next_run(const char *cron, bool on)
{
    struct dst_cron c;
    char err[160], ts[DST_DATETIME_LEN];
    int64_t next;

    if (!on || !cron || dst_cron_parse(cron, &c, err, sizeof(err)) != 0 ||
        dst_cron_next(&c, dst_datetime_now_ms() / 1000, &next) != 0)
        return json_null();
    dst_datetime_format_utc(next * 1000, ts);
    return json_string(ts);
}

json_t *api_schedules_view(const json_t *doc)
{
    bool paused = json_is_true(json_object_get(doc, "paused"));
    json_t *list = json_array(), *item;
    size_t i;
    char id[24];

    json_array_foreach(json_object_get(doc, "schedules"), i, item)
    {
        json_t *v = json_deep_copy(item);
        const char *cron = json_string_value(json_object_get(item, "cron"));
        bool on = !json_is_false(json_object_get(item, "enabled"));
        snprintf(id, sizeof(id), "%zu", i + 1);
        json_object_set_new(v, "id", json_string(id));
        json_object_set_new(v, "next_run", next_run(cron, on && !paused));
        json_array_append_new(list, v);
    }
    return json_pack("{s:b, s:o}", "paused", paused, "schedules", list);
}

/* Reads an optional string member (NULL when absent or null); false (err set) if bad. */
static bool opt_str(const json_t *item, const char *key, size_t i, size_t max, const char **out,
                    char *err, size_t errlen)
{
    json_t *v = json_object_get(item, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max) {
        snprintf(err, errlen, "schedules[%zu].%s: a string of 1 to %zu characters, or null", i, key,
                 max);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

static bool probe_ok(const char *p)
{
    for (; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
            return false;
    }
    return true;
}

/* Checks the cron expression of item i; false (err set) if bad. */
static bool cron_ok(const json_t *item, size_t i, const char **cron, char *err, size_t errlen)
{
    struct dst_cron c;
    char why[200];
    int64_t next;

    *cron = json_string_value(json_object_get(item, "cron"));
    if (!*cron || !**cron || strlen(*cron) > MAX_CRON) {
        snprintf(err, errlen,
                 "schedules[%zu].cron: required, a cron expression of 1 to %d characters", i,
                 MAX_CRON);
        return false;
    }
    if (dst_cron_parse(*cron, &c, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "schedules[%zu].cron: %s", i, why);
        return false;
    }
    if (dst_cron_next(&c, dst_datetime_now_ms() / 1000, &next) != 0) {
        snprintf(err, errlen, "schedules[%zu].cron: never fires (no such date in the next 8 years)",
                 i);
        return false;
    }
    return true;
}

/* Checks schedule i of a PUT; its stored form goes to *out. DST_EINVAL with err naming it. */
static int item_check(const json_t *item, size_t i, json_t **out, char *err, size_t errlen)
{
    const char *k, *cron, *target, *probe;
    char why[200];
    json_t *v;

    if (!json_is_object(item))
        return snprintf(err, errlen, "schedules[%zu]: must be an object", i), DST_EINVAL;
    json_object_foreach((json_t *)item, k, v)
    {
        if (strcmp(k, "cron") && strcmp(k, "target") && strcmp(k, "probe") && strcmp(k, "enabled"))
            return snprintf(err, errlen, "schedules[%zu].%s: unknown field", i, k), DST_EINVAL;
    }
    if (!cron_ok(item, i, &cron, err, errlen) ||
        !opt_str(item, "target", i, MAX_TARGET, &target, err, errlen) ||
        !opt_str(item, "probe", i, MAX_PROBE, &probe, err, errlen))
        return DST_EINVAL;
    if (target && engine_check_target(target, why, sizeof(why)) != 0)
        return snprintf(err, errlen, "schedules[%zu].target: %s", i, why), DST_EINVAL;
    if (probe && !probe_ok(probe))
        return snprintf(err, errlen,
                        "schedules[%zu].probe: 1 to %d letters, digits, '.', '_' or '-', or null",
                        i, MAX_PROBE),
               DST_EINVAL;
    v = json_object_get(item, "enabled");
    if (v && !json_is_boolean(v))
        return snprintf(err, errlen, "schedules[%zu].enabled: must be true or false", i),
               DST_EINVAL;
    *out = json_pack("{s:s, s:o, s:o, s:b}", "cron", cron, "target",
                     target ? json_string(target) : json_null(), "probe",
                     probe ? json_string(probe) : json_null(), "enabled", !json_is_false(v));
    return 0;
}

/* The stored form of a list of schedules; DST_EINVAL with err naming the first bad field. */
static int list_check(const json_t *list, json_t **out, char *err, size_t errlen)
{
    json_t *res, *item;
    size_t i;

    if (!json_is_array(list) || json_array_size(list) > MAX_SCHEDULES) {
        snprintf(err, errlen, "schedules: required, an array of at most %d schedules",
                 MAX_SCHEDULES);
        return DST_EINVAL;
    }
    res = json_array();
    json_array_foreach(list, i, item)
    {
        json_t *one = NULL;
        if (item_check(item, i, &one, err, errlen) != 0) {
            json_decref(res);
            return DST_EINVAL;
        }
        json_array_append_new(res, one);
    }
    *out = res;
    return 0;
}

int api_schedules_check(const json_t *body, const json_t *cur, json_t **out, char *err,
                        size_t errlen)
{
    const char *k;
    json_t *v, *list = NULL;

    if (!json_is_object(body))
        return snprintf(err, errlen, "body: must be a JSON object"), DST_EINVAL;
    json_object_foreach((json_t *)body, k, v)
    {
        if (strcmp(k, "schedules") != 0 && strcmp(k, "paused") != 0 && strcmp(k, "version") != 0)
            return snprintf(err, errlen, "%s: unknown field", k), DST_EINVAL;
    }
    v = json_object_get(body, "paused");
    if (v && !json_is_boolean(v))
        return snprintf(err, errlen, "paused: must be true or false"), DST_EINVAL;
    if (list_check(json_object_get(body, "schedules"), &list, err, errlen) != 0)
        return DST_EINVAL;
    bool paused = v ? json_is_true(v) : json_is_true(json_object_get(cur, "paused"));
    *out = json_pack("{s:b, s:o}", "paused", paused, "schedules", list);
    return 0;
}

/*
 * Stores doc if the stored version is expected (*version: the new one, or the current one on
 * DST_ECONFLICT), and tells the scheduler hook. The "schedules" event comes from the store's
 * feed (api_schedules_changed), on every replica alike. Called with sched_lock held.
 */
static int doc_store(struct api *a, const json_t *doc, int64_t expected, int64_t *version)
{
    int rc = dst_store_setting_put(a->store, SCHEDULES_KEY, doc, expected, version);
    if (rc == 0 && a->opts.schedules_changed)
        a->opts.schedules_changed(a->opts.schedules_ud, doc);
    return rc;
}

/* The GET body: the view and its version. A new reference. */
static json_t *view_versioned(const json_t *doc, int64_t version)
{
    json_t *view = api_schedules_view(doc);
    json_object_set_new(view, "version", json_integer(version));
    return view;
}

/* Sets the ETag of a version: "N", quoted (a strong validator). */
static void etag(struct dst_http_req *req, int64_t version)
{
    char tag[32];
    snprintf(tag, sizeof(tag), "\"%lld\"", (long long)version);
    dst_http_add_header(req, "ETag", tag);
}

static void reply_view(struct dst_http_req *req, const json_t *doc, int64_t version)
{
    json_t *view = view_versioned(doc, version);
    etag(req, version);
    dst_http_reply_json(req, 200, view);
    json_decref(view);
}

/* 409: the version sent is not the stored one; says which is (ETag and message). */
static void reply_stale(struct dst_http_req *req, int64_t current)
{
    etag(req, current);
    dst_http_reply_error(req, 409,
                         "the schedules were changed meanwhile (now version %lld): reload them "
                         "and make the change again",
                         (long long)current);
}

void api_schedules_changed(struct api *a)
{
    json_t *doc = NULL;
    int64_t version = 0;

    pthread_mutex_lock(&a->sched_lock);
    int rc = doc_load(a, &doc, &version);
    if (rc == 0) {
        json_t *view = view_versioned(doc, version);
        char *text = dst_json_dumps(view, NULL);
        dst_sse_hub_publish(a->hub, "schedules", text);
        free(text);
        json_decref(view);
        if (a->opts.schedules_changed)
            a->opts.schedules_changed(a->opts.schedules_ud, doc);
    }
    pthread_mutex_unlock(&a->sched_lock);
    json_decref(doc);
}

/* GET /api/v1/schedules */
static void get_schedules(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    json_t *doc = NULL;
    int64_t version = 0;
    int rc = doc_load(a, &doc, &version);

    if (rc)
        return (void)dst_http_reply_error(req, dst_err_http_status(rc), "store: %s",
                                          dst_strerror(rc));
    reply_view(req, doc, version);
    json_decref(doc);
}

/*
 * The version a PUT expects: If-Match ("N", N, or * for whatever is stored) or the body's
 * "version" (an integer); both must agree. Neither: DST_STORE_ANY_VERSION (a client that never
 * read one). DST_EINVAL with the 400's message in err.
 */
static int expected_version(struct dst_http_req *req, const json_t *body, int64_t *out, char *err,
                            size_t errlen)
{
    const char *im = dst_http_req_header(req, "If-Match");
    json_t *v = json_object_get(body, "version");
    int64_t h = DST_STORE_ANY_VERSION;
    char num[32];

    if (v && (!json_is_integer(v) || json_integer_value(v) < 0))
        return snprintf(err, errlen, "version: must be a whole number >= 0"), DST_EINVAL;
    if (im && strcmp(im, "*") != 0) {
        size_t n = strlen(im);
        bool quoted = n >= 2 && im[0] == '"' && im[n - 1] == '"';
        snprintf(num, sizeof(num), "%.*s", quoted ? (int)n - 2 : (int)n, quoted ? im + 1 : im);
        if (n >= sizeof(num) || !api_parse_int64(num, &h) || h < 0)
            return snprintf(err, errlen, "If-Match: must be a version as ETag gives it (\"N\")"),
                   DST_EINVAL;
    }
    if (v && im && strcmp(im, "*") != 0 && h != json_integer_value(v))
        return snprintf(err, errlen, "version: differs from If-Match"), DST_EINVAL;
    *out = v ? json_integer_value(v) : h;
    return 0;
}

/*
 * PUT /api/v1/schedules: replaces the list (and paused, when given), if the version sent (see
 * expected_version) is the stored one: else 409, and nothing changes.
 */
static void put_schedules(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    json_t *body = NULL, *cur = NULL, *doc = NULL;
    int64_t expected = 0, version = 0;
    char err[512];
    size_t len = 0;

    const char *text = dst_http_req_body(req, &len);
    body = dst_json_parse(text ? text : "", len, err, sizeof(err));
    if (!body ||
        (json_is_object(body) && expected_version(req, body, &expected, err, sizeof(err)) != 0)) {
        dst_http_reply_error(req, 400, "%s", err);
        json_decref(body);
        return;
    }
    pthread_mutex_lock(&a->sched_lock);
    int rc = doc_load(a, &cur, &version);
    bool bad = rc == 0 && api_schedules_check(body, cur, &doc, err, sizeof(err)) != 0;
    if (rc == 0 && !bad)
        rc = doc_store(a, doc, expected, &version); /* nothing is stored when any field is bad */
    pthread_mutex_unlock(&a->sched_lock);
    if (bad)
        dst_http_reply_error(req, 400, "%s", err);
    else if (rc == DST_ECONFLICT)
        reply_stale(req, version);
    else if (rc)
        dst_http_reply_error(req, dst_err_http_status(rc), "store: %s", dst_strerror(rc));
    else
        reply_view(req, doc, version);
    json_decref(doc);
    json_decref(cur);
    json_decref(body);
}

/*
 * POST /api/v1/schedules/pause and /resume: what they ask for holds whatever the list is, so
 * they read, change and compare-and-set again when another replica came first.
 */
static void set_paused(struct dst_http_req *req, struct api *a, bool paused)
{
    json_t *doc = NULL;
    int64_t version = 0;
    int rc = DST_ECONFLICT;

    pthread_mutex_lock(&a->sched_lock);
    for (int i = 0; i < PUT_TRIES && rc == DST_ECONFLICT; i++) {
        json_decref(doc);
        doc = NULL;
        rc = doc_load(a, &doc, &version);
        if (rc == 0) {
            json_object_set_new(doc, "paused", json_boolean(paused));
            rc = doc_store(a, doc, version, &version);
        }
    }
    pthread_mutex_unlock(&a->sched_lock);
    if (rc == DST_ECONFLICT)
        reply_stale(req, version);
    else if (rc)
        dst_http_reply_error(req, dst_err_http_status(rc), "store: %s", dst_strerror(rc));
    else
        reply_view(req, doc, version);
    json_decref(doc);
}

static void post_pause(struct dst_http_req *req, void *ud)
{
    set_paused(req, ud, true);
}

static void post_resume(struct dst_http_req *req, void *ud)
{
    set_paused(req, ud, false);
}

int api_schedules_load(struct api *a, const json_t *seed, bool *seeded, char *err, size_t errlen)
{
    json_t *doc = NULL, *list = NULL;
    int64_t version = 0;

    pthread_mutex_lock(&a->sched_lock);
    int rc = dst_store_setting_get(a->store, SCHEDULES_KEY, &doc, NULL);
    if (rc == DST_ENOTFOUND) {
        rc = list_check(seed, &list, err, errlen);
        if (rc == 0) {
            doc = json_pack("{s:b, s:o}", "paused", 0, "schedules", list);
            rc = dst_store_setting_put(a->store, SCHEDULES_KEY, doc, 0, &version);
            if (rc == DST_ECONFLICT) { /* another process seeded it first: take theirs */
                json_decref(doc);
                doc = NULL;
                rc = dst_store_setting_get(a->store, SCHEDULES_KEY, &doc, NULL);
            }
            if (rc)
                snprintf(err, errlen, "store: %s", dst_strerror(rc));
        }
        if (rc == 0 && seeded)
            *seeded = true;
    } else if (rc) {
        snprintf(err, errlen, "store: %s", dst_strerror(rc));
    }
    if (rc == 0 && a->opts.schedules_changed)
        a->opts.schedules_changed(a->opts.schedules_ud, doc);
    pthread_mutex_unlock(&a->sched_lock);
    json_decref(doc);
    return rc;
}

int api_schedules_mount(struct api *a, struct dst_http_server *s)
{
    int rc = api_route(a, s, "GET", "/api/v1/schedules", get_schedules, API_READ, 0, 0);
    rc = rc ? rc
            : api_route(a, s, "PUT", "/api/v1/schedules", put_schedules, API_ADMIN, 0, 64 * 1024);
    rc = rc ? rc
            : api_route(a, s, "POST", "/api/v1/schedules/pause", post_pause, API_ADMIN, 0, 1024);
    rc = rc ? rc
            : api_route(a, s, "POST", "/api/v1/schedules/resume", post_resume, API_ADMIN, 0, 1024);
    return rc;
}
