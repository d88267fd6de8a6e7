/* results.c - the native face's results: list with cursor paging and sorting, one, ingest, CSV export */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
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
#include "core/sse.h"
#include "core/store.h"
#include "speedtest/api/api_priv.h"

#define MAX_BATCH 1000
#define CSV_PAGE  1000

bool api_parse_int64(const char *s, int64_t *out)
{
    char *end = NULL;

    if (!s || !(*s == '-' || (*s >= '0' && *s <= '9')))
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return false;
    *out = v;
    return true;
}

/* Whether v is an integer's text, whatever its size: "-" and digits. */
static bool integer_text(const char *v)
{
    v += *v == '-';
    return *v && v[strspn(v, "0123456789")] == '\0';
}

int api_query_time(const struct dst_http_qarg *args, int n, const char *name, int64_t *out,
                   char *err, size_t errlen)
{
    const char *v = dst_http_query_find(args, n, name);
    int64_t ms = 0;

    if (!v || !*v)
        return 0;
    if (!api_parse_int64(v, &ms) && dst_datetime_parse(v, &ms) != 0) {
        if (integer_text(v))
            return snprintf(err, errlen, "%s: out of range (years 1 to 9999)", name), DST_EINVAL;
        return snprintf(err, errlen, "%s: not ISO 8601 or milliseconds", name), DST_EINVAL;
    }
    if (ms < API_TIME_MIN || ms > API_TIME_MAX)
        return snprintf(err, errlen, "%s: out of range (years 1 to 9999)", name), DST_EINVAL;
    *out = ms;
    return 0;
}

/* The query arguments the list and the CSV export take. */
static const char *const filter_args[] = {"from", "to", "probe", "engine", "status", NULL};

static bool known_arg(const char *k, const char *const *extra)
{
    for (const char *const *p = filter_args; *p; p++) {
        if (strcasecmp(k, *p) == 0)
            return true;
    }
    for (const char *const *p = extra; p && *p; p++) {
        if (strcasecmp(k, *p) == 0)
            return true;
    }
    return strcmp(k, "_") == 0; /* cache busters */
}

/* Reads from/to/probe/engine/status (and rejects unknown arguments) into q. */
static int read_filters(const struct dst_http_qarg *args, int n, struct dst_store_query *q,
                        const char *const *extra, char *err, size_t errlen)
{
    int64_t from = INT64_MIN, to = INT64_MIN; /* absent: never a time the API takes */
    enum dst_result_status st;
    const char *v;

    for (int i = 0; i < n; i++) {
        if (!known_arg(args[i].key, extra))
            return snprintf(err, errlen, "unknown query argument '%s'", args[i].key), DST_EINVAL;
    }
    if (api_query_time(args, n, "from", &from, err, errlen) ||
        api_query_time(args, n, "to", &to, err, errlen))
        return DST_EINVAL;
    dst_store_query_init(q);
    q->keyset = true;
    if (from != INT64_MIN)
        dst_store_query_add(q, (struct dst_cond){DST_F_TIME, DST_OP_GE, DST_V_INT, .i = from});
    if (to != INT64_MIN)
        dst_store_query_add(q, (struct dst_cond){DST_F_TIME, DST_OP_LT, DST_V_INT, .i = to});
    if ((v = dst_http_query_find(args, n, "probe")) && *v)
        dst_store_query_add(q, (struct dst_cond){DST_F_PROBE, DST_OP_EQ, DST_V_TEXT, .s = v});
    if ((v = dst_http_query_find(args, n, "engine")) && *v)
        dst_store_query_add(q, (struct dst_cond){DST_F_ENGINE, DST_OP_EQ, DST_V_TEXT, .s = v});
    if ((v = dst_http_query_find(args, n, "status")) && *v) {
        if (dst_result_status_parse(v, &st) != 0)
            return snprintf(err, errlen, "status: must be ok or failed"), DST_EINVAL;
        dst_store_query_add(q, (struct dst_cond){DST_F_STATUS, DST_OP_EQ, DST_V_INT, .i = st});
    }
    return 0;
}

/* The orders the list takes besides its own (time, newest first, by keyset cursor). */
static const struct {
    const char *name;
    enum dst_field field;
} sorts[] = {{"time", DST_F_TIME},
             {"download", DST_F_DOWNLOAD},
             {"upload", DST_F_UPLOAD},
             {"ping", DST_F_PING}};

#define OFFSET_MAX 100000000 /* a cursor "o<N>" deeper than any list */

/*
 * sort=time|download|upload|ping and order=asc|desc (default desc) into q. Time newest first
 * stays the keyset order; any other is an offset order, its cursor "o<N>" (results without the
 * value sort as the smallest: last when descending, first when ascending; ties by seq).
 */
static int read_sort(const struct dst_http_qarg *args, int n, struct dst_store_query *q, char *err,
                     size_t errlen)
{
    const char *v = dst_http_query_find(args, n, "sort"),
               *o = dst_http_query_find(args, n, "order");
    size_t i = 0;

    if (o && *o && strcmp(o, "asc") != 0 && strcmp(o, "desc") != 0)
        return snprintf(err, errlen, "order: must be asc or desc"), DST_EINVAL;
    if (!v || !*v)
        v = "time";
    while (i < sizeof(sorts) / sizeof(sorts[0]) && strcmp(sorts[i].name, v) != 0)
        i++;
    if (i == sizeof(sorts) / sizeof(sorts[0]))
        return snprintf(err, errlen, "sort: must be time, download, upload or ping"), DST_EINVAL;
    q->desc = !o || !*o || strcmp(o, "desc") == 0;
    if (sorts[i].field == DST_F_TIME && q->desc)
        return 0; /* the keyset order */
    q->keyset = false;
    q->sort = sorts[i].field;
    return 0;
}

/* A next_cursor of list_results: "TIME.SEQ", two integers. */
static bool parse_cursor(const char *v, int64_t *time, int64_t *seq)
{
    const char *dot = strchr(v, '.');
    char head[24];

    if (!dot || (size_t)(dot - v) >= sizeof(head)) /* longer than any int64 */
        return false;
    memcpy(head, v, (size_t)(dot - v));
    head[dot - v] = '\0';
    return api_parse_int64(head, time) && api_parse_int64(dot + 1, seq);
}

int api_results_query(const struct dst_http_qarg *args, int n, int64_t *limit,
                      struct dst_store_query *q, char *err, size_t errlen)
{
    static const char *const extra[] = {"limit", "cursor", "sort", "order", NULL};
    const char *v;
    int rc = read_filters(args, n, q, limit ? extra : NULL, err, errlen);

    if (rc || !limit)
        return rc;
    *limit = 100;
    if ((v = dst_http_query_find(args, n, "limit")) && *v) {
        if (!api_parse_int64(v, limit) || *limit < 1 || *limit > 1000)
            return snprintf(err, errlen, "limit: must be from 1 to 1000"), DST_EINVAL;
    }
    if (read_sort(args, n, q, err, errlen))
        return DST_EINVAL;
    if ((v = dst_http_query_find(args, n, "cursor")) && *v) {
        bool offset = v[0] == 'o';
        if (offset != !q->keyset ||
            (offset ? !api_parse_int64(v + 1, &q->offset) || q->offset < 0 || q->offset > OFFSET_MAX
                    : !parse_cursor(v, &q->after_time, &q->after_seq)))
            return snprintf(err, errlen, "cursor: not a cursor of this API for this order"),
                   DST_EINVAL;
        q->has_after = !offset;
    }
    q->limit = *limit + 1; /* one more: is there a next page? */
    return 0;
}

struct page {
    json_t *list;
    int64_t limit, n;
    int64_t last_time, last_seq;
    bool more;
};

static int page_row(const struct dst_result *r, void *ud)
{
    struct page *p = ud;
    if (p->n == p->limit) { /* the extra row: there is a next page */
        p->more = true;
        return 1;
    }
    json_array_append_new(p->list, dst_result_to_json(r));
    p->last_time = r->time_ms;
    p->last_seq = r->seq;
    p->n++;
    return 0;
}

/* GET /api/v1/results */
static void list_results(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    struct dst_store_query q;
    struct page p = {0};
    const struct dst_http_qarg *args = NULL;
    int nargs = dst_http_req_query_args(req, &args);
    char err[512];

    if (api_results_query(args, nargs, &p.limit, &q, err, sizeof(err)))
        return (void)dst_http_reply_error(req, 400, "%s", err);
    p.list = json_array();
    int rc = dst_store_query(a->store, &q, page_row, &p);
    if (rc < 0) {
        json_decref(p.list);
        dst_http_reply_error(req, dst_err_http_status(rc), "store: %s", dst_strerror(rc));
        return;
    }
    json_t *j = json_pack("{s:o}", "results", p.list);
    if (p.more) {
        char cursor[48];
        if (q.keyset)
            snprintf(cursor, sizeof(cursor), "%" PRId64 ".%" PRId64, p.last_time, p.last_seq);
        else
            snprintf(cursor, sizeof(cursor), "o%" PRId64, q.offset + p.n);
        json_object_set_new(j, "next_cursor", json_string(cursor));
    } else {
        json_object_set_new(j, "next_cursor", json_null());
    }
    dst_http_reply_json(req, 200, j);
    json_decref(j);
}

/* GET /api/v1/results/{id} */
static void get_result(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    struct dst_result r;
    const char *id = dst_http_req_param(req, "id");

    dst_result_init(&r);
    int rc = dst_store_get(a->store, id, &r);
    if (rc == DST_ENOTFOUND) {
        dst_http_reply_error(req, 404, "no result with id '%s'", id);
    } else if (rc) {
        dst_http_reply_error(req, dst_err_http_status(rc), "store: %s", dst_strerror(rc));
    } else {
        json_t *j = dst_result_to_json(&r);
        dst_http_reply_json(req, 200, j);
        json_decref(j);
    }
    dst_result_release(&r);
}

/* Reads one result or an array of them; on bad input fills err and returns DST_EINVAL. */
static int read_batch(const json_t *root, struct dst_result **out, size_t *n, char *err,
                      size_t errlen)
{
    bool many = json_is_array(root);
    size_t count = many ? json_array_size(root) : 1;
    char msg[256];

    if (!many && !json_is_object(root))
        return snprintf(err, errlen, "body: must be a result object or an array of them"),
               DST_EINVAL;
    if (count == 0 || count > MAX_BATCH)
        return snprintf(err, errlen, "body: an array of 1 to %d results", MAX_BATCH), DST_EINVAL;
    struct dst_result *rs = dst_xcalloc(count, sizeof(*rs));
    *out = rs;
    *n = count;
    for (size_t i = 0; i < count; i++)
        dst_result_init(&rs[i]);
    for (size_t i = 0; i < count; i++) {
        json_t *item = many ? json_array_get(root, i) : (json_t *)root;
        if (dst_result_from_json(item, &rs[i], msg, sizeof(msg)) != 0) {
            if (many)
                snprintf(err, errlen, "[%zu].%s", i, msg);
            else
                snprintf(err, errlen, "%s", msg);
            return DST_EINVAL;
        }
    }
    return 0;
}

static void free_batch(struct dst_result *rs, size_t n)
{
    for (size_t i = 0; rs && i < n; i++)
        dst_result_release(&rs[i]);
    free(rs);
}

int api_ingest(struct api *a, struct dst_result *r, char *err, size_t errlen)
{
    bool created = false;
    int rc = dst_result_validate(r, err, errlen);
    if (rc == 0) {
        rc = dst_store_insert(a->store, r, 1, &created);
        if (rc)
            snprintf(err, errlen, "store: %s", dst_strerror(rc));
    }
    if (rc == 0)
        api_results_stored(a, r, 1, &created, "native");
    return rc;
}

/* POST /api/v1/results: one result or an array, stored atomically, idempotent by id. */
static void post_results(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    struct dst_result *rs = NULL;
    bool *created = NULL;
    size_t n = 0, len = 0, ncreated = 0;
    char err[320];

    const char *body = dst_http_req_body(req, &len);
    json_t *root = dst_json_parse(body, len, err, sizeof(err));
    int rc = root ? read_batch(root, &rs, &n, err, sizeof(err)) : DST_EINVAL;
    if (rc) {
        dst_metrics_add(a->metrics, "dstmc_results_rejected_total", "face=\"native\"", 1);
        dst_http_reply_error(req, 400, "%s", err);
        goto out;
    }
    created = dst_xcalloc(n, sizeof(*created));
    rc = dst_store_insert(a->store, rs, n, created);
    if (rc) {
        dst_http_reply_error(req, dst_err_http_status(rc), "store: %s", dst_strerror(rc));
        goto out;
    }
    api_results_stored(a, rs, n, created, "native");
    json_t *ids = json_array();
    for (size_t i = 0; i < n; i++) {
        ncreated += created[i];
        json_array_append_new(ids, json_string(rs[i].id));
    }
    json_t *j = json_pack("{s:I, s:I, s:o}", "created", (json_int_t)ncreated, "existing",
                          (json_int_t)(n - ncreated), "ids", ids);
    dst_http_reply_json(req, ncreated ? 201 : 200, j);
    json_decref(j);
out:
    json_decref(root);
    free_batch(rs, n);
    free(created);
}

/* ---- CSV export, streamed page by page ---- */

struct csv {
    struct api *api;
    struct dst_store_query q;
    char *probe, *engine; /* copies: the query's text values point here */
    struct dst_buf buf;
    size_t off;
    bool eof;
};

static void csv_field(struct dst_buf *b, const char *s, bool last)
{
    if (s && strpbrk(s, ",\"\r\n")) {
        dst_buf_puts(b, "\"");
        for (; *s; s++)
            dst_buf_puts(b, *s == '"' ? "\"\"" : (char[2]){*s, '\0'});
        dst_buf_puts(b, "\"");
    } else if (s) {
        dst_buf_puts(b, s);
    }
    dst_buf_puts(b, last ? "\r\n" : ",");
}

static void csv_num(struct dst_buf *b, double v)
{
    if (isfinite(v))
        dst_buf_printf(b, "%.15g", v);
    dst_buf_puts(b, ",");
}

static void csv_int(struct dst_buf *b, int64_t v)
{
    if (v >= 0)
        dst_buf_printf(b, "%" PRId64, v);
    dst_buf_puts(b, ",");
}

static const char csv_header[] =
    "id,time,probe,location,engine,target,status,error,download_bps,upload_bps,ping_ms,"
    "jitter_ms,packet_loss_pct,bytes_down,bytes_up,duration_s,streams,server_id,server_host,"
    "server_name,server_sponsor,server_country,server_distance_m,client_ip,client_isp,"
    "client_country\r\n";

static int csv_row(const struct dst_result *r, void *ud)
{
    struct csv *c = ud;
    struct dst_buf *b = &c->buf;
    char t[DST_DATETIME_LEN];

    dst_datetime_format_utc(r->time_ms, t);
    csv_field(b, r->id, false);
    csv_field(b, t, false);
    csv_field(b, r->probe, false);
    csv_field(b, r->location, false);
    csv_field(b, r->engine, false);
    csv_field(b, r->target, false);
    csv_field(b, dst_result_status_name(r->status), false);
    csv_field(b, r->error, false);
    csv_num(b, r->download_bps);
    csv_num(b, r->upload_bps);
    csv_num(b, r->ping_ms);
    csv_num(b, r->jitter_ms);
    csv_num(b, r->loss_pct);
    csv_int(b, r->bytes_down);
    csv_int(b, r->bytes_up);
    csv_num(b, r->duration_s);
    csv_int(b, r->streams);
    csv_int(b, r->server_id);
    csv_field(b, r->server_host, false);
    csv_field(b, r->server_name, false);
    csv_field(b, r->server_sponsor, false);
    csv_field(b, r->server_country, false);
    csv_num(b, r->server_distance_m);
    csv_field(b, r->client_ip, false);
    csv_field(b, r->client_isp, false);
    csv_field(b, r->client_country, true);
    c->q.has_after = true;
    c->q.after_time = r->time_ms;
    c->q.after_seq = r->seq;
    return 0;
}

static long csv_read(void *ud, char *out, size_t max)
{
    struct csv *c = ud;

    if (c->off == c->buf.len) {
        if (c->eof)
            return DST_HTTP_STREAM_END;
        dst_buf_reset(&c->buf);
        c->off = 0;
        if (dst_store_query(c->api->store, &c->q, csv_row, c) < 0 || c->buf.len == 0) {
            c->eof = true; /* a store failure ends the stream early; it was logged */
            return DST_HTTP_STREAM_END;
        }
    }
    size_t n = c->buf.len - c->off < max ? c->buf.len - c->off : max;
    memcpy(out, c->buf.data + c->off, n);
    c->off += n;
    return (long)n;
}

static void csv_done(void *ud)
{
    struct csv *c = ud;
    dst_buf_release(&c->buf);
    free(c->probe);
    free(c->engine);
    free(c);
}

/* GET /api/v1/results.csv */
static void export_csv(struct dst_http_req *req, void *ud)
{
    struct csv *c = dst_xnew(struct csv);

    const struct dst_http_qarg *args = NULL;
    int nargs = dst_http_req_query_args(req, &args);
    char err[512];

    c->api = ud;
    if (api_results_query(args, nargs, NULL, &c->q, err, sizeof(err))) {
        free(c);
        dst_http_reply_error(req, 400, "%s", err);
        return;
    }
    /* the text conditions point into the request, which ends before the stream does */
    for (int i = 0; i < c->q.nconds; i++) {
        struct dst_cond *cond = &c->q.conds[i];
        if (cond->field == DST_F_PROBE)
            cond->s = c->probe = dst_xstrdup(cond->s);
        else if (cond->field == DST_F_ENGINE)
            cond->s = c->engine = dst_xstrdup(cond->s);
    }
    c->q.limit = CSV_PAGE;
    dst_buf_init(&c->buf, 0);
    dst_buf_puts(&c->buf, csv_header);
    dst_http_add_header(req, "Content-Disposition", "attachment; filename=\"dstmc-results.csv\"");
    if (dst_http_reply_stream(req, 200, "text/csv; charset=utf-8", csv_read, csv_done, c, NULL))
        csv_done(c);
}

int api_results_mount(struct api *a, struct dst_http_server *s)
{
    int rc = api_route(a, s, "GET", "/api/v1/results", list_results, API_READ, 0, 0);
    rc = rc ? rc : api_route(a, s, "POST", "/api/v1/results", post_results, API_INGEST, 0, 0);
    rc = rc ? rc : api_route(a, s, "GET", "/api/v1/results.csv", export_csv, API_READ, 0, 0);
    rc = rc ? rc : api_route(a, s, "GET", "/api/v1/results/{id}", get_result, API_READ, 0, 0);
    return rc;
}
