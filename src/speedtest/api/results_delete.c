/* results_delete.c - the native face's deletes: one result, by filter (count first), exclusion */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/sse.h"
#include "core/store.h"
#include "speedtest/api/api_priv.h"

#define BODY_MAX  4096
#define PROBE_MAX 128 /* characters of a probe name, as a result's */

/* Counts n deleted results in /metrics (the "deleted" event comes from the store's feed). */
static void deleted(struct api *a, int64_t n)
{
    dst_metrics_add(a->metrics, "dstmc_results_deleted_total", "", (double)n);
}

/* DELETE /api/v1/results/{id}: 204, or 404 when there is no such result. */
static void delete_result(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    const char *id = dst_http_req_param(req, "id");
    int rc = dst_store_delete(a->store, id);

    if (rc == DST_ENOTFOUND)
        return (void)dst_http_reply_error(req, 404, "no result with id '%s'", id);
    if (rc)
        return (void)dst_http_reply_error(req, dst_err_http_status(rc), "store: %s",
                                          dst_strerror(rc));
    dst_info("deleted result %s (from %s)", id, dst_http_req_client_ip(req));
    deleted(a, 1);
    dst_http_reply_static(req, 204, NULL, "", 0);
}

/* ---- POST /api/v1/results/delete ---- */

/* A delete's filter as the body gives it (text borrowed from the body). */
struct filter {
    int64_t from, to;
    bool has_from, has_to;
    const char *probe;
    int demo; /* -1: either */
    bool all, dry_run;
};

/* A time member: ISO 8601 text or integer ms, years 1 to 9999. */
static int body_time(const json_t *v, const char *name, int64_t *out, char *err, size_t errlen)
{
    int64_t ms = 0;

    if (json_is_integer(v))
        ms = json_integer_value(v);
    else if (!json_is_string(v) || dst_datetime_parse(json_string_value(v), &ms) != 0)
        return snprintf(err, errlen, "%s: must be ISO 8601 or integer milliseconds", name),
               DST_EINVAL;
    if (ms < API_TIME_MIN || ms > API_TIME_MAX)
        return snprintf(err, errlen, "%s: out of range (years 1 to 9999)", name), DST_EINVAL;
    *out = ms;
    return 0;
}

static int body_bool(const json_t *v, const char *name, bool *out, char *err, size_t errlen)
{
    if (!json_is_boolean(v))
        return snprintf(err, errlen, "%s: must be true or false", name), DST_EINVAL;
    *out = json_is_true(v);
    return 0;
}

/* One member of the body into f. */
static int filter_member(const char *k, const json_t *v, struct filter *f, char *err, size_t errlen)
{
    bool demo = false;
    const char *s;

    if (strcmp(k, "from") == 0) {
        f->has_from = true;
        return body_time(v, k, &f->from, err, errlen);
    }
    if (strcmp(k, "to") == 0) {
        f->has_to = true;
        return body_time(v, k, &f->to, err, errlen);
    }
    if (strcmp(k, "all") == 0)
        return body_bool(v, k, &f->all, err, errlen);
    if (strcmp(k, "dry_run") == 0)
        return body_bool(v, k, &f->dry_run, err, errlen);
    if (strcmp(k, "demo") == 0) {
        int rc = body_bool(v, k, &demo, err, errlen);
        f->demo = demo;
        return rc;
    }
    if (strcmp(k, "probe") != 0)
        return snprintf(err, errlen, "%.200s: unknown field", k), DST_EINVAL;
    s = json_string_value(v);
    if (!s || !*s || strlen(s) > 4 * PROBE_MAX)
        return snprintf(err, errlen, "probe: must be a string of 1 to 128 characters"), DST_EINVAL;
    f->probe = s;
    return 0;
}

/* The body and ?dry_run= into f; DST_EINVAL with the 400's message in err. */
static int filter_read(const json_t *body, const struct dst_http_qarg *args, int nargs,
                       struct filter *f, char *err, size_t errlen)
{
    const char *k;
    json_t *v;

    *f = (struct filter){.demo = -1};
    if (!json_is_object(body))
        return snprintf(err, errlen, "body: must be a JSON object"), DST_EINVAL;
    json_object_foreach((json_t *)body, k, v)
    {
        if (!json_is_null(v) && filter_member(k, v, f, err, errlen) != 0)
            return DST_EINVAL;
    }
    for (int i = 0; i < nargs; i++) {
        const char *val = args[i].value ? args[i].value : "";
        if (strcmp(args[i].key, "dry_run") != 0)
            return snprintf(err, errlen, "unknown query argument '%.200s'", args[i].key),
                   DST_EINVAL;
        if (strcmp(val, "1") == 0 || strcmp(val, "true") == 0)
            f->dry_run = true;
        else if (strcmp(val, "0") != 0 && strcmp(val, "false") != 0)
            return snprintf(err, errlen, "dry_run: must be 1 or 0"), DST_EINVAL;
    }
    if (f->has_from && f->has_to && f->from >= f->to)
        return snprintf(err, errlen, "to: must be after from"), DST_EINVAL;
    if (!f->has_from && !f->has_to && !f->probe && f->demo < 0 && !f->all)
        return snprintf(err, errlen,
                        "refusing to delete every result: give from, to, probe or demo, or "
                        "\"all\": true"),
               DST_EINVAL;
    return 0;
}

static void filter_query(const struct filter *f, struct dst_store_query *q)
{
    dst_store_query_init(q);
    if (f->has_from)
        dst_store_query_add(q, (struct dst_cond){DST_F_TIME, DST_OP_GE, DST_V_INT, .i = f->from});
    if (f->has_to)
        dst_store_query_add(q, (struct dst_cond){DST_F_TIME, DST_OP_LT, DST_V_INT, .i = f->to});
    if (f->probe)
        dst_store_query_add(q,
                            (struct dst_cond){DST_F_PROBE, DST_OP_EQ, DST_V_TEXT, .s = f->probe});
    if (f->demo >= 0)
        dst_store_query_add(q, (struct dst_cond){DST_F_DEMO, DST_OP_EQ, DST_V_INT, .i = f->demo});
}

/*
 * POST /api/v1/results/delete: {from, to, probe, demo, all, dry_run} -> {"count": N,
 * "dry_run": bool}. A POST rather than a DELETE with a body: proxies and clients may drop or
 * refuse a DELETE's body.
 */
static void delete_where(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    const struct dst_http_qarg *args = NULL;
    int nargs = dst_http_req_query_args(req, &args);
    struct dst_store_query q;
    struct filter f;
    int64_t n = 0;
    size_t len = 0;
    char err[512];

    const char *text = dst_http_req_body(req, &len);
    json_t *body = dst_json_parse(text ? text : "", len, err, sizeof(err));
    if (!body || filter_read(body, args, nargs, &f, err, sizeof(err)) != 0) {
        dst_http_reply_error(req, 400, "%s", err);
        goto out;
    }
    filter_query(&f, &q);
    int rc = dst_store_delete_where(a->store, &q, f.all, f.dry_run, &n);
    if (rc) {
        dst_http_reply_error(req, dst_err_http_status(rc), "store: %s", dst_strerror(rc));
        goto out;
    }
    if (!f.dry_run && n > 0) {
        dst_info("deleted %" PRId64 " results (from %s)", n, dst_http_req_client_ip(req));
        deleted(a, n);
    }
    json_t *j = json_pack("{s:I, s:b}", "count", (json_int_t)n, "dry_run", f.dry_run);
    dst_http_reply_json(req, 200, j);
    json_decref(j);
out:
    json_decref(body);
}

/* PUT /api/v1/results/{id}/excluded {"excluded": bool}: 200 with the result, or 404. */
static void put_excluded(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    const char *id = dst_http_req_param(req, "id");
    struct dst_result r;
    bool excluded = false;
    size_t len = 0;
    char err[512];
    int rc = 0;

    dst_result_init(&r);
    const char *text = dst_http_req_body(req, &len);
    json_t *body = dst_json_parse(text ? text : "", len, err, sizeof(err));
    json_t *v = json_object_get(body, "excluded");
    if (!body || !json_is_object(body) || json_object_size(body) != 1 || !json_is_boolean(v)) {
        dst_http_reply_error(req, 400, "%s",
                             body ? "body: must be {\"excluded\": true} or {\"excluded\": false}"
                                  : err);
        goto out;
    }
    excluded = json_is_true(v);
    rc = dst_store_set_excluded(a->store, id, excluded);
    rc = rc ? rc : dst_store_get(a->store, id, &r);
    if (rc == DST_ENOTFOUND) {
        dst_http_reply_error(req, 404, "no result with id '%s'", id);
    } else if (rc) {
        dst_http_reply_error(req, dst_err_http_status(rc), "store: %s", dst_strerror(rc));
    } else {
        json_t *j = dst_result_to_json(&r); /* the "excluded" event comes from the feed */
        dst_http_reply_json(req, 200, j);
        json_decref(j);
    }
out:
    dst_result_release(&r);
    json_decref(body);
}

int api_results_delete_mount(struct api *a, struct dst_http_server *s)
{
    int rc =
        api_route(a, s, "DELETE", "/api/v1/results/{id}", delete_result, API_ADMIN, 0, BODY_MAX);
    rc = rc ? rc
            : api_route(a, s, "POST", "/api/v1/results/delete", delete_where, API_ADMIN, 0,
                        BODY_MAX);
    rc = rc ? rc
            : api_route(a, s, "PUT", "/api/v1/results/{id}/excluded", put_excluded, API_ADMIN, 0,
                        BODY_MAX);
    return rc;
}
