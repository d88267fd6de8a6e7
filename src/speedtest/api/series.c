/* series.c - the native face's time series: min/avg/max per bucket, bucketed in the store */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/json.h"
#include "core/store.h"
#include "speedtest/api/api_priv.h"

#define MIN_MS           (60 * 1000LL)
#define HOUR_MS          (60 * MIN_MS)
#define DAY_MS           (24 * HOUR_MS)
#define MAX_AUTO_BUCKETS 400

/* Bucket widths the series picks from when the client gives none. */
static const int64_t nice_steps[] = {
    MIN_MS,      5 * MIN_MS,   15 * MIN_MS, 30 * MIN_MS, HOUR_MS,     3 * HOUR_MS,
    6 * HOUR_MS, 12 * HOUR_MS, DAY_MS,      7 * DAY_MS,  30 * DAY_MS,
};

/* The smallest nice step that covers span in at most MAX_AUTO_BUCKETS buckets. */
int64_t api_series_auto_step(int64_t span_ms)
{
    size_t n = sizeof(nice_steps) / sizeof(nice_steps[0]);
    for (size_t i = 0; i < n; i++) {
        if (span_ms / nice_steps[i] <= MAX_AUTO_BUCKETS)
            return nice_steps[i];
    }
    int64_t last = nice_steps[n - 1];
    return (span_ms / MAX_AUTO_BUCKETS / last + 1) * last;
}

/* Appends one number (null when not finite) to the named column. */
static void col_add(json_t *j, const char *name, double v)
{
    json_array_append_new(json_object_get(j, name), isfinite(v) ? json_real(v) : json_null());
}

static const char *const columns[] = {
    "t",          "ok",         "failed",     "download_min", "download_avg", "download_max",
    "upload_min", "upload_avg", "upload_max", "ping_min",     "ping_avg",     "ping_max",
    "jitter_avg", NULL,
};

static json_t *series_json(const struct dst_series_query *q, const struct dst_series_bucket *b,
                           size_t n)
{
    json_t *j = json_pack("{s:I, s:I, s:I}", "from", (json_int_t)q->from_ms, "to",
                          (json_int_t)q->to_ms, "step", (json_int_t)q->step_ms);
    for (const char *const *c = columns; *c; c++)
        json_object_set_new(j, *c, json_array());
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(json_object_get(j, "t"), json_integer(b[i].t_ms));
        json_array_append_new(json_object_get(j, "ok"), json_integer(b[i].ok));
        json_array_append_new(json_object_get(j, "failed"), json_integer(b[i].failed));
        col_add(j, "download_min", b[i].download.min);
        col_add(j, "download_avg", b[i].download.avg);
        col_add(j, "download_max", b[i].download.max);
        col_add(j, "upload_min", b[i].upload.min);
        col_add(j, "upload_avg", b[i].upload.avg);
        col_add(j, "upload_max", b[i].upload.max);
        col_add(j, "ping_min", b[i].ping.min);
        col_add(j, "ping_avg", b[i].ping.avg);
        col_add(j, "ping_max", b[i].ping.max);
        col_add(j, "jitter_avg", b[i].jitter.avg);
    }
    return j;
}

int api_series_query(const struct dst_http_qarg *args, int n, int64_t now_ms,
                     struct dst_series_query *q, char *err, size_t errlen)
{
    static const char *const known[] = {"from", "to", "probe", "step", "_", NULL};
    const char *v;

    *q = (struct dst_series_query){0};
    for (int i = 0; i < n; i++) {
        const char *const *p = known;
        while (*p && strcasecmp(*p, args[i].key) != 0)
            p++;
        if (!*p)
            return snprintf(err, errlen, "unknown query argument '%s'", args[i].key), DST_EINVAL;
    }
    q->to_ms = now_ms;
    if (api_query_time(args, n, "to", &q->to_ms, err, errlen))
        return DST_EINVAL;
    q->from_ms = q->to_ms - DAY_MS; /* no overflow: see API_TIME_MIN */
    if (api_query_time(args, n, "from", &q->from_ms, err, errlen))
        return DST_EINVAL;
    if (q->to_ms <= q->from_ms)
        return snprintf(err, errlen, "from: must be before to"), DST_EINVAL;
    if ((v = dst_http_query_find(args, n, "step")) && *v) {
        if (!api_parse_int64(v, &q->step_ms) || q->step_ms < 1000 ||
            q->step_ms > API_TIME_MAX - API_TIME_MIN ||
            (q->to_ms - q->from_ms) / q->step_ms > 100000)
            return snprintf(err, errlen,
                            "step: milliseconds, at least 1000, at most 100000 buckets and at "
                            "most the years 1 to 9999"),
                   DST_EINVAL;
    } else {
        q->step_ms = api_series_auto_step(q->to_ms - q->from_ms);
        /* buckets start at a multiple of step, stable while "now" moves on: down to one,
           before 1970 too (C's % keeps the sign of from) */
        int64_t r = q->from_ms % q->step_ms;
        q->from_ms -= r < 0 ? r + q->step_ms : r;
    }
    if ((v = dst_http_query_find(args, n, "probe")) && *v)
        q->probe = v;
    return 0;
}

/* GET /api/v1/series?from&to&probe&step */
static void get_series(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    struct dst_series_query q;
    struct dst_series_bucket *b = NULL;
    size_t n = 0;
    const struct dst_http_qarg *args = NULL;
    int nargs = dst_http_req_query_args(req, &args);
    char err[512];

    if (api_series_query(args, nargs, dst_datetime_now_ms(), &q, err, sizeof(err)))
        return (void)dst_http_reply_error(req, 400, "%s", err);
    int rc = dst_store_series(a->store, &q, &b, &n);
    if (rc) {
        dst_http_reply_error(req, dst_err_http_status(rc), "series: %s", dst_strerror(rc));
        return;
    }
    json_t *j = series_json(&q, b, n);
    free(b);
    dst_http_reply_json(req, 200, j);
    json_decref(j);
}

int api_series_mount(struct api *a, struct dst_http_server *s)
{
    return api_route(a, s, "GET", "/api/v1/series", get_series, API_READ, 0, 0);
}
