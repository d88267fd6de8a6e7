/* compat.c - the compatible face: the original k8s-101 speedtest-api (/SpeedTest) */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store.h"
#include "core/uuid.h"
#include "speedtest/api/api_priv.h"
#include "speedtest/api/compat.h"

#define PROBLEM_CTYPE "application/problem+json; charset=utf-8"

/* The original's SortableColumn enum, in order: the index is the enum value. */
static const struct {
    const char *name;
    enum dst_field field;
} sort_cols[] = {
    {"SessionId", DST_F_ID},
    {"User", DST_F_USER},
    {"Device", DST_F_DEVICE},
    {"TestDate", DST_F_TIME},
    {"DownloadSpeed", DST_F_DOWNLOAD},
    {"UploadSpeed", DST_F_UPLOAD},
    {"ClientIp", DST_F_CLIENT_IP},
    {"ClientLatitude", DST_F_CLIENT_LAT},
    {"ClientLongitude", DST_F_CLIENT_LON},
    {"ClientIsp", DST_F_CLIENT_ISP},
    {"ClientCountry", DST_F_CLIENT_COUNTRY},
    {"ServerHost", DST_F_SERVER_HOST},
    {"ServerLatitude", DST_F_SERVER_LAT},
    {"ServerLongitude", DST_F_SERVER_LON},
    {"ServerCountry", DST_F_SERVER_COUNTRY},
    {"ServerDistanceToClient", DST_F_SERVER_DISTANCE},
    {"ServerPing", DST_F_PING_INT},
    {"ServerId", DST_F_SERVER_ID},
};
#define NSORT ((int)(sizeof(sort_cols) / sizeof(sort_cols[0])))

enum qkind { Q_STR, Q_INT, Q_REAL, Q_DAY_START, Q_DAY_END, Q_MBPS };

/* The original's QueryParameters filters (Filter.cs): name, how to read it, what it tests. */
static const struct {
    const char *name;
    enum qkind kind;
    enum dst_field field;
    enum dst_op op;
} filters[] = {
    {"SessionId", Q_STR, DST_F_ID, DST_OP_EQ},
    {"User", Q_STR, DST_F_USER, DST_OP_EQ},
    {"Device", Q_INT, DST_F_DEVICE, DST_OP_EQ},
    {"TestDateGt", Q_DAY_START, DST_F_TIME, DST_OP_GE},
    {"TestDateLt", Q_DAY_END, DST_F_TIME, DST_OP_LT},
    {"DownloadSpeedGt", Q_MBPS, DST_F_DOWNLOAD, DST_OP_GE},
    {"DownloadSpeedLt", Q_MBPS, DST_F_DOWNLOAD, DST_OP_LE},
    {"UploadSpeedGt", Q_MBPS, DST_F_UPLOAD, DST_OP_GE},
    {"UploadSpeedLt", Q_MBPS, DST_F_UPLOAD, DST_OP_LE},
    {"ClientIp", Q_STR, DST_F_CLIENT_IP, DST_OP_EQ},
    {"ClientLatitude", Q_REAL, DST_F_CLIENT_LAT, DST_OP_EQ},
    {"ClientLongitude", Q_REAL, DST_F_CLIENT_LON, DST_OP_EQ},
    {"ClientIsp", Q_STR, DST_F_CLIENT_ISP, DST_OP_EQ},
    {"ClientCountry", Q_STR, DST_F_CLIENT_COUNTRY, DST_OP_EQ},
    {"ServerHost", Q_STR, DST_F_SERVER_HOST, DST_OP_EQ},
    {"ServerLatitude", Q_REAL, DST_F_SERVER_LAT, DST_OP_EQ},
    {"ServerLongitude", Q_REAL, DST_F_SERVER_LON, DST_OP_EQ},
    {"ServerCountry", Q_STR, DST_F_SERVER_COUNTRY, DST_OP_EQ},
    {"ServerDistanceToClient", Q_REAL, DST_F_SERVER_DISTANCE, DST_OP_EQ},
    {"ServerPing", Q_INT, DST_F_PING_INT, DST_OP_EQ},
    {"ServerId", Q_INT, DST_F_SERVER_ID, DST_OP_EQ},
};
#define NFILTERS ((int)(sizeof(filters) / sizeof(filters[0])))

/* ---- ASP.NET Core 3.1's ValidationProblemDetails ---- */

static atomic_uint trace_seq;

/* Replies 400 with errors (taken). */
static void problem_reply(struct dst_http_req *req, json_t *errors)
{
    char trace[48];
    snprintf(trace, sizeof(trace), "|%08x.%u.", (unsigned)dst_datetime_now_ms(),
             atomic_fetch_add(&trace_seq, 1));
    json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:o}", "type",
                          "https://tools.ietf.org/html/rfc7231#section-6.5.1", "title",
                          "One or more validation errors occurred.", "status", 400, "traceId",
                          trace, "errors", errors);
    size_t len = 0;
    char *body = dst_json_dumps(p, &len);
    dst_http_reply_take(req, 400, PROBLEM_CTYPE, body, len);
    json_decref(p);
}

/* ---- parsing query values the way ASP.NET's model binders do (invariant culture) ---- */

static const char *skip_ws(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return s;
}

/* True if the rest of s is only white space. */
static bool only_ws(const char *s)
{
    return *skip_ws(s) == '\0';
}

/* Int32.Parse: optional white space and sign, digits, no fraction, within range. */
bool compat_parse_int(const char *s, int64_t *out)
{
    char *end = NULL;
    const char *p = skip_ws(s);
    if (!*p || (!isdigit((unsigned char)*p) && *p != '-' && *p != '+'))
        return false;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (errno || end == p || !only_ws(end) || v < INT32_MIN || v > INT32_MAX)
        return false;
    *out = v;
    return true;
}

/* Double.Parse with NumberStyles.Float | AllowThousands. */
bool compat_parse_double(const char *s, double *out)
{
    char buf[64];
    size_t n = 0;
    const char *p = skip_ws(s);

    for (; *p && n < sizeof(buf) - 1; p++) {
        if (*p != ',')
            buf[n++] = *p;
    }
    if (*p || n == 0)
        return false;
    buf[n] = '\0';
    char *end = NULL;
    errno = 0;
    double v = strtod(buf, &end);
    if (end == buf || !only_ws(end) || (errno == ERANGE && isinf(v)))
        return false;
    *out = v;
    return true;
}

/* Reads 1..maxd digits. */
static bool read_num(const char **p, int maxd, int *out)
{
    int v = 0, n = 0;
    while (n < maxd && isdigit((unsigned char)**p)) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    *out = v;
    return n > 0;
}

/*
 * DateTime.Parse (invariant culture) as far as clients use it: "Y-M-D" with 1- or 2-digit month
 * and day (the original web sends them unpadded), "M/D/Y", each optionally followed by a time and
 * a zone in ISO form. The result is an instant (local time when no zone is given).
 */
bool compat_parse_date(const char *s, int64_t *ms_out)
{
    const char *p = skip_ws(s);
    int a = 0, b = 0, c = 0, y, m, d;
    char sep;

    if (!read_num(&p, 4, &a) || (*p != '-' && *p != '/'))
        return false;
    sep = *p++;
    if (!read_num(&p, 2, &b) || *p++ != sep || !read_num(&p, 4, &c))
        return false;
    if (sep == '-') {
        y = a, m = b, d = c;
    } else {
        m = a, d = b, y = c;
    }
    if (y < 1 || y > 9999)
        return false;
    char iso[80];
    int k = snprintf(iso, sizeof(iso), "%04d-%02d-%02d%s", y, m, d, p);
    if (k < 0 || (size_t)k >= sizeof(iso)) /* longer than any date and time: not one */
        return false;
    size_t n = strlen(iso);
    while (n > 0 && isspace((unsigned char)iso[n - 1]))
        iso[--n] = '\0';
    return dst_datetime_parse(iso, ms_out) == 0;
}

/* SortOn: an enum name (any case) or a defined index. */
static bool parse_sort(const char *s, int *out)
{
    int64_t i;
    if (compat_parse_int(s, &i)) {
        if (i < 0 || i >= NSORT)
            return false;
        *out = (int)i;
        return true;
    }
    const char *p = skip_ws(s);
    size_t n = strlen(p);
    while (n > 0 && isspace((unsigned char)p[n - 1]))
        n--;
    for (int k = 0; k < NSORT; k++) {
        if (strlen(sort_cols[k].name) == n && strncasecmp(sort_cols[k].name, p, n) == 0) {
            *out = k;
            return true;
        }
    }
    return false;
}

/* SortOrder: Asc/Desc (any case) or 0/1. */
static bool parse_order(const char *s, bool *desc)
{
    int64_t i;
    const char *p = skip_ws(s);
    if (compat_parse_int(s, &i) && (i == 0 || i == 1)) {
        *desc = i == 1;
        return true;
    }
    if (strncasecmp(p, "asc", 3) == 0 && only_ws(p + 3)) {
        *desc = false;
        return true;
    }
    if (strncasecmp(p, "desc", 4) == 0 && only_ws(p + 4)) {
        *desc = true;
        return true;
    }
    return false;
}

/* Query value or NULL when absent or empty (an empty value binds to null in ASP.NET). */
static const char *qval(const struct dst_http_qarg *args, int n, const char *name)
{
    const char *v = dst_http_query_find(args, n, name);
    return v && *v ? v : NULL;
}

static void invalid(json_t *errors, const char *name, const char *v)
{
    compat_error_add(errors, name, "The value '%s' is not valid for %s.", v, name);
}

/* Adds filter i's condition from its query value v; false if v does not parse. */
static bool add_filter(struct dst_store_query *q, int i, const char *v)
{
    struct dst_cond c = {.field = filters[i].field, .op = filters[i].op};
    int64_t n;
    double d;

    switch (filters[i].kind) {
    case Q_STR:
        c.kind = DST_V_TEXT;
        c.s = v;
        break;
    case Q_INT:
        if (!compat_parse_int(v, &n))
            return false;
        c.kind = DST_V_INT;
        c.i = n;
        break;
    case Q_REAL:
    case Q_MBPS:
        if (!compat_parse_double(v, &d))
            return false;
        c.kind = DST_V_REAL;
        c.d = filters[i].kind == Q_MBPS ? d * 1e6 : d;
        break;
    case Q_DAY_START:
    case Q_DAY_END:
        if (!compat_parse_date(v, &n))
            return false;
        n = dst_datetime_local_day_start(n);
        if (filters[i].kind == Q_DAY_END) /* the start of the next local day, exclusive */
            n = dst_datetime_local_day_start(n + 36 * 3600 * 1000LL);
        c.kind = DST_V_INT;
        c.i = n;
        break;
    }
    dst_store_query_add(q, c);
    return true;
}

/* Paginate.cs: the skip and take of From/To. */
void compat_paginate(bool has_from, int64_t from, bool has_to, int64_t to, int64_t *skip,
                     int64_t *take)
{
    *skip = 0;
    *take = 25;
    if (!has_from && has_to && to >= 0) {
        *take = to;
        return;
    }
    if (!has_from || !has_to || from < 0 || to < 0 || from >= to)
        return;
    *skip = from;
    *take = to - from;
}

/* Reads From/To (Int32 binders); false with errors filled when one does not parse. */
static bool read_paging(const struct dst_http_qarg *args, int n, json_t *errors,
                        struct dst_store_query *q)
{
    const char *vf = qval(args, n, "From"), *vt = qval(args, n, "To");
    int64_t from = 0, to = 0;
    bool ok = true;

    if (vf && !compat_parse_int(vf, &from)) {
        invalid(errors, "From", vf);
        ok = false;
    }
    if (vt && !compat_parse_int(vt, &to)) {
        invalid(errors, "To", vt);
        ok = false;
    }
    compat_paginate(vf != NULL, from, vt != NULL, to, &q->offset, &q->limit);
    if (q->limit == 0)
        q->limit = -1; /* Take(0): an empty page, marked apart from "no limit" */
    return ok;
}

void compat_build_query(const struct dst_http_qarg *args, int n, json_t *errors,
                        struct dst_store_query *q)
{
    int sort = -1;
    bool desc = true, has_order = false;

    dst_store_query_init(q);
    for (int i = 0; i < NFILTERS; i++) {
        const char *v = qval(args, n, filters[i].name);
        if (v && !add_filter(q, i, v))
            invalid(errors, filters[i].name, v);
    }
    const char *vs = qval(args, n, "SortOn"), *vo = qval(args, n, "SortOrder");
    if (vs && !parse_sort(vs, &sort))
        invalid(errors, "SortOn", vs);
    if (vo) {
        has_order = parse_order(vo, &desc);
        if (!has_order)
            invalid(errors, "SortOrder", vo);
    }
    q->sort = DST_F_TIME;
    q->desc = true;
    if (sort >= 0 && has_order) { /* Sort.cs: without both, TestDate descending */
        q->sort = sort_cols[sort].field;
        q->desc = desc;
    }
    read_paging(args, n, errors, q);
}

/* ---- the TestResult JSON (camelCase out) ---- */

static double or0(double v)
{
    return isfinite(v) ? v : 0;
}

/* The original's DateTime text: local time, fraction only as needed, with the offset. */
void compat_format_date(int64_t ms, char out[DST_DATETIME_LEN])
{
    char buf[DST_DATETIME_LEN];
    dst_datetime_format_local(ms, buf); /* 2026-11-21T11:15:00.120+01:00 */
    char *dot = strchr(buf, '.');
    char *zone = dot ? dot + 4 : NULL;
    if (!dot) {
        snprintf(out, DST_DATETIME_LEN, "%s", buf);
        return;
    }
    int keep = 3;
    while (keep > 0 && dot[keep] == '0')
        keep--;
    snprintf(out, DST_DATETIME_LEN, "%.*s%s", (int)(dot - buf) + (keep ? keep + 1 : 0), buf, zone);
}

json_t *compat_result_to_json(const struct dst_result *r)
{
    char date[DST_DATETIME_LEN];
    compat_format_date(r->time_ms, date);
    json_t *speeds = json_object();
    json_object_set_new(speeds, "download", json_real(or0(r->download_bps) / 1e6));
    json_object_set_new(speeds, "upload", json_real(or0(r->upload_bps) / 1e6));
    json_t *client = json_object();
    dst_json_set_str(client, "ip", r->client_ip);
    json_object_set_new(client, "latitude", json_real(or0(r->client_lat)));
    json_object_set_new(client, "longitude", json_real(or0(r->client_lon)));
    dst_json_set_str(client, "isp", r->client_isp);
    dst_json_set_str(client, "country", r->client_country);
    json_t *server = json_object();
    dst_json_set_str(server, "host", r->server_host);
    json_object_set_new(server, "latitude", json_real(or0(r->server_lat)));
    json_object_set_new(server, "longitude", json_real(or0(r->server_lon)));
    dst_json_set_str(server, "country", r->server_country);
    json_object_set_new(server, "distance", json_real(or0(r->server_distance_m)));
    json_object_set_new(server, "ping", json_integer((json_int_t)llround(or0(r->ping_ms))));
    json_object_set_new(server, "id", json_integer(r->server_id < 0 ? 0 : r->server_id));
    json_t *j = json_object();
    json_object_set_new(j, "sessionId", json_string(r->id));
    dst_json_set_str(j, "user", r->user);
    json_object_set_new(j, "device", json_integer(r->device < 0 ? 0 : r->device));
    json_object_set_new(j, "testDate", json_string(date));
    json_object_set_new(
        j, "data",
        json_pack("{s:o, s:o, s:o}", "speeds", speeds, "client", client, "server", server));
    return j;
}

static int append_row(const struct dst_result *r, void *ud)
{
    json_array_append_new(ud, compat_result_to_json(r));
    return 0;
}

/* GET /SpeedTest: filter, sort, paginate; answers are cached until the store changes. */
static void get_speedtests(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    struct dst_store_query q;
    uint64_t version = 0;
    json_t *list = NULL;
    /* the whole query: a key cut short would answer one query with another's rows */
    char *key = dst_xasprintf("compat?%s", dst_http_req_query_string(req));
    const struct dst_http_qarg *args = NULL;
    int nargs = dst_http_req_query_args(req, &args);

    int rc = dst_store_version(a->store, &version);
    if (rc == 0 && api_cache_reply(a->cache, req, key, version))
        goto out;
    json_t *errors = json_object();
    compat_build_query(args, nargs, errors, &q);
    if (json_object_size(errors) > 0) {
        problem_reply(req, errors);
        goto out;
    }
    json_decref(errors);
    list = json_array();
    if (q.limit != -1)
        rc = rc ? rc : dst_store_query(a->store, &q, append_row, list);
    if (rc) {
        dst_http_reply_error(req, dst_err_http_status(rc), "store: %s", dst_strerror(rc));
        goto out;
    }
    size_t len = 0;
    char *body = dst_json_dumps(list, &len);
    api_cache_put_reply(a->cache, req, key, version, "application/json; charset=utf-8", body, len);
out:
    json_decref(list);
    free(key);
}

/* GET /SpeedTest/ping */
static void get_ping(struct dst_http_req *req, void *ud)
{
    (void)ud;
    dst_info("GET /SpeedTest/ping");
    dst_http_reply_static(req, 200, "text/plain; charset=utf-8", "PONG", 4);
}

/* POST /SpeedTest: the original's validation, then store; 200 with an empty body. */
static void post_speedtest(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    struct dst_result r;
    bool created = false;
    size_t len = 0;

    const char *ctype = dst_http_req_header(req, "Content-Type");
    if (!dst_http_json_ctype(ctype)) {
        static const char body415[] =
            "{\"type\":\"https://tools.ietf.org/html/rfc7231#section-6.5.13\","
            "\"title\":\"Unsupported Media Type\",\"status\":415}";
        dst_http_reply_static(req, 415, PROBLEM_CTYPE, body415, sizeof(body415) - 1);
        return;
    }
    const char *body = dst_http_req_body(req, &len);
    dst_result_init(&r);
    json_t *errors = json_object();
    if (compat_parse_test_result(body, len, errors, &r) != 0) {
        dst_metrics_add(a->metrics, "dstmc_results_rejected_total", "face=\"compat\"", 1);
        problem_reply(req, errors);
        dst_result_release(&r);
        return;
    }
    json_decref(errors);
    dst_info("POST /SpeedTest with SessionId: %s", r.id);
    int rc = dst_store_insert(a->store, &r, 1, &created);
    if (rc) {
        dst_http_reply_error(req, dst_err_http_status(rc), "store: %s", dst_strerror(rc));
    } else {
        api_results_stored(a, &r, 1, &created, "compat");
        dst_http_reply_static(req, 200, NULL, "", 0);
    }
    dst_result_release(&r);
}

int api_compat_mount(struct api *a, struct dst_http_server *s)
{
    int rc = api_route(a, s, "GET", "/SpeedTest/ping", get_ping, API_OPEN, DST_HTTP_CORS_PUBLIC, 0);
    rc = rc ? rc
            : api_route(a, s, "GET", "/SpeedTest", get_speedtests, API_READ, DST_HTTP_CORS_PUBLIC,
                        0);
    rc = rc ? rc : api_route(a, s, "POST", "/SpeedTest", post_speedtest, API_INGEST, 0, 0);
    return rc;
}
