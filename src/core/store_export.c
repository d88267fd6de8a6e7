/* store_export.c - a whole store as JSON lines, and back: `dstmc store export` and `import` */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store_copy_priv.h"

#define FORMAT      "dstmc-export"
#define VERSION     2 /* 2: rollups and the header's raw_pruned_ms */
#define LINE_MAX_   (1u << 20)
#define JSON_EXPORT (JSON_COMPACT | JSON_REAL_PRECISION(17)) /* %.17g: doubles read back exact */

struct export_run {
    struct dst_store *s;
    FILE *out;
    const struct dst_store_copy_opts *o;
    struct dst_store_tally *t;
    int rc;
};

/* Writes j (taken) as one line with "kind": kind first. */
static int put_line(struct export_run *x, const char *kind, json_t *j)
{
    json_t *line = json_pack("{s:s}", "kind", kind);
    json_object_update(line, j);
    json_decref(j);
    char *text = json_dumps(line, JSON_EXPORT);
    json_decref(line);
    if (!text)
        return DST_ENOMEM;
    int rc = fputs(text, x->out) < 0 || fputc('\n', x->out) == EOF ? DST_EIO : 0;
    free(text);
    return rc;
}

/* ---- export, one function per kind ---- */

static int setting_line(const char *key, const char *json, int64_t updated_ms, void *ud)
{
    struct export_run *x = ud;
    char err[160];

    if (dst_store_copy_own_key(key))
        return 0;
    json_t *v = dst_json_parse(json, strlen(json), err, sizeof(err));
    if (!v) {
        dst_error("store export: setting '%s' is not JSON (%s)", key, err);
        return x->rc = DST_EDEP;
    }
    x->rc = put_line(
        x, x->t->kind,
        json_pack("{s:s, s:o, s:I}", "key", key, "value", v, "updated_ms", (json_int_t)updated_ms));
    x->t->total++, x->t->done++, x->t->copied += x->rc == 0;
    return x->rc;
}

static int export_settings(struct export_run *x)
{
    int rc = dst_store_setting_each(x->s, setting_line, x);
    return x->rc ? x->rc : rc;
}

static int export_credentials(struct export_run *x)
{
    struct dst_store_cred *all = NULL;
    size_t n = 0;
    int rc = dst_store_cred_list(x->s, NULL, &all, &n);

    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct dst_store_cred *c = &all[i];
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "id", c->id, "type", c->kind,
                              "name", c->name, "scopes", c->scopes, "hash", c->hash, "created_ms",
                              (json_int_t)c->created_ms);
        if (c->parent)
            json_object_set_new(j, "parent", json_string(c->parent));
        if (c->expires_ms)
            json_object_set_new(j, "expires_ms", json_integer(c->expires_ms));
        if (c->used_ms)
            json_object_set_new(j, "used_ms", json_integer(c->used_ms));
        rc = put_line(x, x->t->kind, j);
        x->t->total++, x->t->done++, x->t->copied += rc == 0;
    }
    dst_store_creds_free(all, n);
    return rc;
}

static int export_results(struct export_run *x)
{
    struct store_batch b = {0};
    size_t max = x->o->batch ? x->o->batch : 5000;
    int64_t after = 0;
    int rc = store_count_after(x->s, 0, &x->t->total);

    while (rc == 0) {
        rc = store_batch_read(x->s, after, max, &b);
        if (rc || b.n == 0)
            break;
        after = b.rs[b.n - 1].seq;
        for (size_t i = 0; rc == 0 && i < b.n; i++)
            rc = put_line(x, x->t->kind, dst_result_to_json(&b.rs[i]));
        x->t->done += (int64_t)b.n;
        x->t->copied += (int64_t)b.n;
        store_batch_release(&b);
        rc = rc ? rc : store_copy_progress(x->o, x->t);
    }
    store_batch_free(&b);
    return rc;
}

static const char *const measure_names[DST_ROLLUP_NMEASURES] = {"download", "upload", "ping",
                                                                "jitter", "loss"};

/* A number, or null for NAN (JSON has no NaN). */
static json_t *real_or_null(double d)
{
    return isnan(d) ? json_null() : json_real(d);
}

static json_t *rollup_json(const struct dst_rollup *r)
{
    json_t *j = json_pack("{s:I, s:I, s:s, s:I, s:I}", "step_ms", (json_int_t)r->step_ms, "t_ms",
                          (json_int_t)r->t_ms, "probe", r->probe, "count", (json_int_t)r->count,
                          "failed", (json_int_t)r->failed);
    for (int i = 0; i < DST_ROLLUP_NMEASURES; i++) {
        const struct dst_rollup_stat *m = &r->m[i];
        json_object_set_new(j, measure_names[i],
                            json_pack("{s:I, s:o, s:o, s:o, s:o, s:o}", "n", (json_int_t)m->n,
                                      "min", real_or_null(m->min), "max", real_or_null(m->max),
                                      "sum", real_or_null(m->sum), "p50", real_or_null(m->p50),
                                      "p90", real_or_null(m->p90)));
    }
    return j;
}

/* Pages of rollups in key order, a line each (the raw retention's mark is in the header). */
static int export_rollups(struct export_run *x)
{
    size_t max = x->o->batch ? x->o->batch : 5000, n = 0;
    struct dst_rollup *page = NULL;
    char *last_probe = NULL;
    struct dst_rollup last = {0};
    int rc = dst_store_rollups_count(x->s, &x->t->total);

    while (rc == 0) {
        rc = dst_store_rollups_page(x->s, last_probe ? &last : NULL, max, &page, &n);
        if (rc || n == 0)
            break;
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = put_line(x, x->t->kind, rollup_json(&page[i]));
        x->t->done += (int64_t)n;
        x->t->copied += (int64_t)n;
        free(last_probe);
        last_probe = dst_xstrdup(page[n - 1].probe);
        last = (struct dst_rollup){
            .step_ms = page[n - 1].step_ms, .t_ms = page[n - 1].t_ms, .probe = last_probe};
        dst_store_rollups_free(page, n);
        rc = rc ? rc : store_copy_progress(x->o, x->t);
    }
    free(last_probe);
    return rc;
}

/* ---- import, one function per kind: a line's object (checked whole) into the store ---- */

struct import_run {
    struct dst_store *s;
    const struct dst_store_copy_opts *o;
    struct dst_store_tally *t, *results, *rollups; /* the line's kind's, results', rollups' */
    struct store_batch b;
    struct dst_rollup *rb; /* rollups gathered for one put */
    size_t nrb;
    int64_t raw_pruned_ms; /* the header's */
    char *err;
    size_t errlen;
};

static int import_setting(struct import_run *x, json_t *j)
{
    const char *key = NULL;
    json_t *v = NULL;
    json_int_t at = 0;

    if (json_unpack(j, "{s:s, s:o, s:I !}", "key", &key, "value", &v, "updated_ms", &at) != 0)
        return dst_errf(DST_EINVAL, x->err, x->errlen,
                        "a setting is {\"kind\":\"setting\",\"key\":...,\"value\":...,"
                        "\"updated_ms\":...}");
    char *text = dst_json_dumps(v, NULL), *have = NULL;
    int rc = x->s->ops->setting_get(x->s, key, &have, &(int64_t){0});
    if (rc == 0 && strcmp(have, text) == 0) {
        x->t->existing++;
    } else if (rc == 0 || rc == DST_ENOTFOUND) {
        rc = dst_store_setting_put_text(x->s, key, text, at);
        if (rc == DST_EINVAL)
            dst_errf(rc, x->err, x->errlen, "key: 1 to 128 bytes");
        x->t->copied += rc == 0;
    }
    free(have);
    free(text);
    return rc;
}

static int import_credential(struct import_run *x, json_t *j)
{
    struct dst_store_cred c = {0};
    json_int_t created = 0, expires = 0, used = 0;

    if (json_unpack(j, "{s:s, s:s, s:s, s:s, s:s, s?s, s:I, s?I, s?I !}", "id", &c.id, "type",
                    &c.kind, "name", &c.name, "scopes", &c.scopes, "hash", &c.hash, "parent",
                    &c.parent, "created_ms", &created, "expires_ms", &expires, "used_ms",
                    &used) != 0)
        return dst_errf(DST_EINVAL, x->err, x->errlen,
                        "a credential has id, type, name, scopes, hash, created_ms (strings, "
                        "an integer) and maybe parent, expires_ms, used_ms");
    c.created_ms = created, c.expires_ms = expires, c.used_ms = used;
    int rc = dst_store_cred_add(x->s, &c); /* borrowed strings: nothing to release */
    if (rc == DST_EINVAL)
        return dst_errf(rc, x->err, x->errlen, "id: 1 to 64 bytes; type: token or session");
    x->t->existing += rc == DST_ECONFLICT;
    x->t->copied += rc == 0;
    return rc == DST_ECONFLICT ? 0 : rc;
}

static int import_result(struct import_run *x, json_t *j)
{
    struct dst_result r;

    if (!json_is_string(json_object_get(j, "id")))
        return dst_errf(DST_EINVAL, x->err, x->errlen, "id: a result needs its id");
    dst_result_init(&r);
    int rc = dst_result_from_json(j, &r, x->err, x->errlen);
    if (rc == 0)
        store_batch_add(&x->b, &r);
    dst_result_release(&r);
    return rc;
}

/* One measure {"n":..,"min":..,...} (numbers or null) into m. */
static bool measure_from_json(json_t *j, struct dst_rollup_stat *m)
{
    json_t *v[5];
    json_int_t n = 0;

    if (json_unpack(j, "{s:I, s:o, s:o, s:o, s:o, s:o !}", "n", &n, "min", &v[0], "max", &v[1],
                    "sum", &v[2], "p50", &v[3], "p90", &v[4]) != 0 ||
        n < 0)
        return false;
    double *d[5] = {&m->min, &m->max, &m->sum, &m->p50, &m->p90};
    for (int i = 0; i < 5; i++) {
        if (!json_is_number(v[i]) && !json_is_null(v[i]))
            return false;
        *d[i] = json_is_null(v[i]) ? NAN : json_number_value(v[i]);
    }
    m->n = n;
    return true;
}

static int import_rollup(struct import_run *x, json_t *j)
{
    struct dst_rollup r = {0};
    json_int_t step = 0, t = 0, count = 0, failed = 0;
    json_t *m[DST_ROLLUP_NMEASURES];
    const char *probe = NULL;
    bool ok = json_unpack(j, "{s:I, s:I, s:s, s:I, s:I, s:o, s:o, s:o, s:o, s:o !}", "step_ms",
                          &step, "t_ms", &t, "probe", &probe, "count", &count, "failed", &failed,
                          measure_names[0], &m[0], measure_names[1], &m[1], measure_names[2], &m[2],
                          measure_names[3], &m[3], measure_names[4], &m[4]) == 0;

    for (int i = 0; ok && i < DST_ROLLUP_NMEASURES; i++)
        ok = measure_from_json(m[i], &r.m[i]);
    r.step_ms = step, r.t_ms = t, r.count = count, r.failed = failed;
    if (!ok || (step != DST_ROLLUP_HOUR_MS && step != DST_ROLLUP_DAY_MS) || t % step != 0 ||
        !probe[0] || failed < 0 || count < failed)
        return dst_errf(DST_EINVAL, x->err, x->errlen,
                        "a rollup has step_ms (3600000 or 86400000), t_ms on its boundary, "
                        "probe, count >= failed >= 0 and download, upload, ping, jitter, loss "
                        "each {n, min, max, sum, p50, p90} (numbers or null)");
    if (x->nrb % 64 == 0)
        x->rb = dst_xrealloc(x->rb, (x->nrb + 64) * sizeof(*x->rb));
    r.probe = dst_xstrdup(probe);
    x->rb[x->nrb++] = r;
    return 0;
}

static int flush_rollups(struct import_run *x)
{
    int64_t made = 0;
    size_t n = x->nrb;

    if (n == 0)
        return 0;
    int rc = dst_store_rollups_put(x->s, x->rb, n, x->raw_pruned_ms, &made);
    for (size_t i = 0; i < n; i++)
        free(x->rb[i].probe);
    x->nrb = 0;
    if (rc)
        return rc;
    x->rollups->done += (int64_t)n;
    x->rollups->copied += made;
    x->rollups->existing += (int64_t)n - made;
    return store_copy_progress(x->o, x->rollups);
}

static int flush_results(struct import_run *x)
{
    if (x->b.n == 0)
        return 0;
    int rc = store_batch_insert(x->s, &x->b, x->results, x->o);
    return rc ? rc : store_copy_progress(x->o, x->results);
}

static int import_header(struct import_run *x, json_t *j)
{
    const char *format = NULL;
    json_int_t version = 0;
    json_t *wm = json_object_get(j, "raw_pruned_ms");

    if (json_unpack(j, "{s:s, s:I}", "format", &format, "version", &version) != 0 ||
        strcmp(format, FORMAT) != 0 || version < 1 || version > VERSION)
        return dst_errf(DST_EINVAL, x->err, x->errlen, "not a " FORMAT " header of version 1 to %d",
                        VERSION);
    if (wm && (!json_is_integer(wm) || json_integer_value(wm) % DST_ROLLUP_DAY_MS != 0))
        return dst_errf(DST_EINVAL, x->err, x->errlen, "raw_pruned_ms: a whole UTC day in ms");
    if (!wm)
        return 0;
    /* the mark first: results for pruned days that come next are late rows there too */
    x->raw_pruned_ms = json_integer_value(wm);
    return dst_store_rollups_put(x->s, NULL, 0, x->raw_pruned_ms, NULL);
}

static int import_end(struct import_run *x, json_t *j)
{
    (void)x, (void)j; /* the counts are for the reader */
    return 0;
}

/* The kinds, in export order. */
static const struct export_kind {
    const char *name;
    int (*out)(struct export_run *x);
    int (*in)(struct import_run *x, json_t *line); /* line without "kind" */
} kinds[] = {
    {"header", NULL, import_header},
    {"setting", export_settings, import_setting},
    {"credential", export_credentials, import_credential},
    {"result", export_results, import_result},
    {"rollup", export_rollups, import_rollup},
    {"end", NULL, import_end},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

int dst_store_export(struct dst_store *s, FILE *out, const struct dst_store_copy_opts *o,
                     struct dst_store_report *rep)
{
    struct export_run x = {s, out, o, NULL, 0};
    char now[DST_DATETIME_LEN];
    int rc;

    memset(rep, 0, sizeof(*rep));
    dst_datetime_format_utc(dst_datetime_now_ms(), now);
    int64_t wm = DST_STORE_NEVER_PRUNED;
    rc = dst_store_raw_pruned(s, &wm);
    json_t *head = json_pack("{s:s, s:i, s:i, s:s}", "format", FORMAT, "version", VERSION, "schema",
                             dst_store_schema_version(s), "exported", now);
    if (wm != DST_STORE_NEVER_PRUNED) /* raw rows before it are gone: rollups stand for them */
        json_object_set_new(head, "raw_pruned_ms", json_integer(wm));
    if (rc == 0)
        rc = put_line(&x, "header", head);
    else
        json_decref(head);
    json_t *end = json_object();
    for (size_t i = 0; rc == 0 && i < NKINDS; i++) {
        if (!kinds[i].out)
            continue;
        x.t = store_copy_tally(rep, kinds[i].name);
        x.rc = 0;
        rc = kinds[i].out(&x);
        json_object_set_new(end, kinds[i].name, json_integer(x.t->done));
        rc = rc ? rc : store_copy_progress(o, x.t);
    }
    rc = rc ? rc : put_line(&x, "end", json_incref(end));
    json_decref(end);
    if (rc == 0 && fflush(out) != 0)
        rc = DST_EIO;
    return rc;
}

/* Reads one line into b (without its newline); 1 at the end of input, DST_ETOOBIG past the cap. */
static int read_line(FILE *in, struct dst_buf *b)
{
    char chunk[8192];

    dst_buf_reset(b);
    while (fgets(chunk, sizeof(chunk), in)) {
        size_t n = strlen(chunk);
        bool nl = n > 0 && chunk[n - 1] == '\n';
        if (dst_buf_append(b, chunk, n - nl) != 0)
            return DST_ETOOBIG;
        if (nl)
            return 0;
    }
    if (ferror(in))
        return DST_EIO;
    return b->len > 0 ? 0 : 1;
}

/* Parses one line and hands it to its kind; err says what is wrong with it. */
static int import_line(struct import_run *x, struct dst_store_report *rep, const struct dst_buf *b)
{
    char perr[160];
    json_t *j = dst_json_parse(b->data ? b->data : "", b->len, perr, sizeof(perr));
    const char *kind = json_string_value(json_object_get(j, "kind"));
    const struct export_kind *k = NULL;
    int rc = DST_EINVAL;

    for (size_t i = 0; kind && i < NKINDS; i++)
        k = strcmp(kinds[i].name, kind) == 0 ? &kinds[i] : k;
    if (!j)
        dst_errf(rc, x->err, x->errlen, "%s", perr);
    else if (!kind)
        dst_errf(rc, x->err, x->errlen, "kind: each line is an object with a \"kind\"");
    else if (!k)
        dst_errf(rc, x->err, x->errlen, "kind: unknown kind \"%s\"", kind);
    if (k) {
        x->t = k->out ? store_copy_tally(rep, k->name) : NULL;
        json_object_del(j, "kind"); /* kind points into j no more */
        rc = k->in(x, j);
        if (x->t && x->t != x->results && x->t != x->rollups) /* those count when stored */
            x->t->total++, x->t->done += rc == 0;
    }
    json_decref(j);
    return rc;
}

int dst_store_import(struct dst_store *s, FILE *in, const struct dst_store_copy_opts *o,
                     struct dst_store_report *rep, int64_t *line, char *err, size_t errlen)
{
    struct import_run x = {.s = s, .o = o, .err = err, .errlen = errlen};
    size_t max = o->batch ? o->batch : 5000;
    struct dst_buf b;
    int rc = 0;

    memset(rep, 0, sizeof(*rep));
    *line = 0;
    if (errlen)
        err[0] = '\0';
    for (size_t i = 0; i < NKINDS; i++) /* the tallies in export order */
        if (kinds[i].out)
            store_copy_tally(rep, kinds[i].name);
    x.results = store_copy_tally(rep, "result");
    x.rollups = store_copy_tally(rep, "rollup");
    x.raw_pruned_ms = DST_STORE_NEVER_PRUNED;
    dst_buf_init(&b, LINE_MAX_);
    for (int64_t no = 1; rc == 0; no++) {
        int got = read_line(in, &b);
        if (got == 1)
            break;
        if (got == 0 && b.len == 0)
            continue; /* an empty line */
        rc = got ? got : import_line(&x, rep, &b);
        if (rc == DST_ETOOBIG)
            rc = dst_errf(DST_EINVAL, err, errlen, "longer than %u bytes", LINE_MAX_);
        if (rc == DST_EINVAL)
            *line = no;
        x.results->total = x.results->done + (int64_t)x.b.n;
        x.rollups->total = x.rollups->done + (int64_t)x.nrb;
        if (rc == 0 && x.b.n >= max)
            rc = flush_results(&x);
        if (rc == 0 && x.nrb >= max)
            rc = flush_rollups(&x);
    }
    if (rc == 0 || rc == DST_EINVAL) { /* what came before a bad line is stored */
        int frc = flush_results(&x);
        frc = frc ? frc : flush_rollups(&x);
        frc = frc ? frc : dst_store_analyze(s); /* the planner learns what came in */
        rc = rc ? rc : frc;
    }
    for (size_t i = 0; i < x.nrb; i++)
        free(x.rb[i].probe);
    free(x.rb);
    store_batch_free(&x.b);
    dst_buf_release(&b);
    return rc;
}
