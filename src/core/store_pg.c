/* store_pg.c - the PostgreSQL results store: writes and reads, over store_pg_conn.c */
#include <libpq-fe.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/store_pg_priv.h"

/* PostgreSQL's type oids (pg_type.h is server-side): what a column's text means. */
enum {
    OID_BOOL = 16,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701,
    OID_NUMERIC = 1700
};

#define ARRAY_MAX (256u << 20) /* cap on one column's array in a batch insert */

/* ---- values and rows ---- */

struct dst_store_sql_val pg_store_val(const PGresult *res, int i, int k)
{
    const char *t = PQgetvalue(res, i, k);

    if (PQgetisnull(res, i, k))
        return (struct dst_store_sql_val){.type = DST_SQL_NULL};
    switch (PQftype(res, k)) {
    case OID_BOOL:
        return (struct dst_store_sql_val){.type = DST_SQL_INT, .i = t[0] == 't'};
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
        return (struct dst_store_sql_val){.type = DST_SQL_INT, .i = strtoll(t, NULL, 10)};
    case OID_FLOAT4:
    case OID_FLOAT8:
    case OID_NUMERIC:
        return (struct dst_store_sql_val){.type = DST_SQL_REAL, .d = strtod(t, NULL)};
    default:
        return (struct dst_store_sql_val){.type = DST_SQL_TEXT, .s = t};
    }
}

static int64_t int_at(const PGresult *res, int i, int k)
{
    return strtoll(PQgetvalue(res, i, k), NULL, 10);
}

/* Reads seq and the DST_STORE_SQL_NCOLS columns, starting at column first, into r (initialised). */
static void read_row(const PGresult *res, int i, int first, struct dst_result *r)
{
    struct dst_store_sql_val row[DST_STORE_SQL_NCOLS];

    r->seq = int_at(res, i, first);
    for (int k = 0; k < DST_STORE_SQL_NCOLS; k++)
        row[k] = pg_store_val(res, i, first + 1 + k);
    dst_store_sql_result_from_row(row, r);
}

/* ---- writes ---- */

/* One result: the prepared single-row INSERT; *seq is its new seq, or 0 if the id existed. */
static int insert_one(struct pg_store_conn *c, const struct dst_result *r, int64_t now,
                      int64_t *seq)
{
    struct dst_store_sql_val args[DST_STORE_SQL_NCOLS + 1];
    PGresult *res = NULL;

    dst_store_sql_insert_args(r, now, args);
    int rc =
        pg_store_exec(c, dst_store_sql_insert(DST_SQL_PG), args, DST_STORE_SQL_NCOLS + 1, &res);
    if (rc == 0)
        *seq = PQntuples(res) == 1 ? int_at(res, 0, 0) : 0;
    PQclear(res);
    return rc;
}

/* Appends v as an element of an array literal: NULL, a number, or a quoted, escaped text. */
static int put_elem(struct dst_buf *b, const struct dst_store_sql_val *v)
{
    int rc = 0;

    if (v->type == DST_SQL_INT)
        return dst_buf_printf(b, "%lld", (long long)v->i);
    if (v->type == DST_SQL_REAL)
        return dst_buf_printf(b, "%.17g", v->d);
    if (v->type != DST_SQL_TEXT)
        return dst_buf_puts(b, "NULL");
    rc = dst_buf_puts(b, "\"");
    for (const char *p = v->s; rc == 0 && *p; p++) {
        size_t n = strcspn(p, "\"\\");
        rc = dst_buf_append(b, p, n);
        p += n;
        if (rc == 0 && *p)
            rc = dst_buf_printf(b, "\\%c", *p);
        if (!*p)
            break;
    }
    return rc ? rc : dst_buf_puts(b, "\"");
}

/*
 * Sets seqs[i] of the first row i with this id that has none yet, looking from *from on (the
 * server returns the rows in the batch's order, so each search is one step, where a search from
 * 0 each time is quadratic in the batch's size) and wrapping around; *from: the next row.
 */
static void match_seq(const struct dst_result *rs, size_t n, const char *id, int64_t seq,
                      int64_t *seqs, size_t *from)
{
    for (size_t k = 0; k < n; k++) {
        size_t i = (*from + k) % n;
        if (seqs[i] == 0 && strcmp(rs[i].id, id) == 0) {
            seqs[i] = seq;
            *from = i + 1;
            return;
        }
    }
}

/*
 * A batch in one statement (dst_store_sql_insert_many): an array per column, so it is atomic
 * without a transaction, and one prepared statement serves every batch size.
 */
static int insert_many(struct pg_store_conn *c, const struct dst_result *rs, size_t n, int64_t now,
                       int64_t *seqs)
{
    enum { NA = DST_STORE_SQL_NCOLS + 1 };
    struct dst_store_sql_val *vals = dst_xcalloc(n * NA, sizeof(*vals)), arrays[NA];
    struct dst_buf bufs[NA];
    PGresult *res = NULL;
    int rc = 0;

    for (size_t i = 0; i < n; i++)
        dst_store_sql_insert_args(&rs[i], now, &vals[i * NA]);
    for (int k = 0; k < NA; k++) {
        dst_buf_init(&bufs[k], ARRAY_MAX);
        rc = rc ? rc : dst_buf_puts(&bufs[k], "{");
        for (size_t i = 0; rc == 0 && i < n; i++) {
            rc = i ? dst_buf_puts(&bufs[k], ",") : 0;
            rc = rc ? rc : put_elem(&bufs[k], &vals[i * NA + (size_t)k]);
        }
        rc = rc ? rc : dst_buf_puts(&bufs[k], "}");
        arrays[k] = (struct dst_store_sql_val){.type = DST_SQL_TEXT, .s = bufs[k].data};
    }
    rc = rc ? rc : pg_store_exec(c, dst_store_sql_insert_many(), arrays, NA, &res);
    size_t from = 0;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        match_seq(rs, n, PQgetvalue(res, i, 0), int_at(res, i, 1), seqs, &from);
    PQclear(res);
    for (int k = 0; k < NA; k++)
        dst_buf_release(&bufs[k]);
    free(vals);
    return rc;
}

int pg_store_insert_rows(struct pg_store_conn *c, const struct dst_result *rs, size_t n,
                         int64_t now, int64_t *seqs)
{
    return n == 1 ? insert_one(c, rs, now, seqs) : insert_many(c, rs, n, now, seqs);
}

/* A batch in one statement; a single result with those of other threads (store_pg_group.c). */
static int pg_insert(struct dst_store *base, struct dst_result *rs, size_t n, bool *created)
{
    struct pg_store *s = (struct pg_store *)base;
    struct pg_store_conn *c = NULL;
    int64_t one = 0, *seqs = n == 1 ? &one : dst_xcalloc(n, sizeof(*seqs));
    int rc = 0;

    if (n == 1) {
        rc = pg_group_insert(s, rs, seqs);
    } else {
        rc = pg_store_conn_get(s, &c);
        rc = rc ? rc : insert_many(c, rs, n, dst_datetime_now_ms(), seqs);
        pg_store_conn_put(s, c);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (seqs[i])
            rs[i].seq = seqs[i];
        if (created)
            created[i] = seqs[i] != 0;
    }
    if (seqs != &one)
        free(seqs);
    return rc;
}

/* ---- reads ---- */

/* Runs sql like read_each unless building it failed (rc); releases it either way. */
static int read_sql(struct dst_store *base, struct dst_store_sql *sql, int rc,
                    int (*row)(const PGresult *, int, void *), void *arg)
{
    rc = rc ? rc
            : pg_store_read_each((struct pg_store *)base, sql->text.data, sql->args, sql->nargs,
                                 row, arg);
    dst_store_sql_release(sql);
    return rc;
}

static int get_row(const PGresult *res, int i, void *r)
{
    read_row(res, i, 0, r);
    return PG_FOUND;
}

static int pg_get(struct dst_store *base, const char *id, struct dst_result *r)
{
    struct dst_store_sql sql;

    dst_store_sql_init(&sql, DST_SQL_PG);
    int rc = read_sql(base, &sql, dst_store_sql_get(&sql, id), get_row, r);
    return rc == PG_FOUND ? 0 : rc ? rc : DST_ENOTFOUND;
}

struct query_ctx {
    dst_store_row_fn fn;
    void *ud;
};

static int query_row(const PGresult *res, int i, void *arg)
{
    struct query_ctx *x = arg;
    struct dst_result r;

    dst_result_init(&r);
    read_row(res, i, 0, &r);
    int rc = x->fn(&r, x->ud);
    dst_result_release(&r);
    return rc;
}

static int pg_query(struct dst_store *base, const struct dst_store_query *q, dst_store_row_fn fn,
                    void *ud)
{
    struct query_ctx x = {fn, ud};
    struct dst_store_sql sql;

    dst_store_sql_init(&sql, DST_SQL_PG);
    return read_sql(base, &sql, dst_store_sql_query(&sql, q), query_row, &x);
}

static int int_row(const PGresult *res, int i, void *arg)
{
    *(int64_t *)arg = int_at(res, i, 0);
    return 0;
}

static int pg_count(struct dst_store *base, const struct dst_store_query *q, int64_t *out)
{
    struct dst_store_sql sql;
    int64_t n = 0;

    dst_store_sql_init(&sql, DST_SQL_PG);
    int rc = read_sql(base, &sql, dst_store_sql_count(&sql, q), int_row, &n);
    if (rc == 0)
        *out = n;
    return rc;
}

/*
 * As SQLite's: the newest seq and the deletes counter. NEEDSWORK: two inserts that commit out
 * of seq order (the later seq first) leave the version unchanged by the second commit; a
 * response cache may then miss that row until the next insert.
 */
static int pg_version(struct dst_store *base, uint64_t *out)
{
    int64_t v = 0;
    int rc =
        pg_store_read_each((struct pg_store *)base, DST_STORE_SQL_VERSION, NULL, 0, int_row, &v);
    if (rc == 0)
        *out = (uint64_t)v;
    return rc;
}

/* ---- deleting and excluding: one statement each, with the version's counter ---- */

static int pg_delete_where(struct dst_store *base, const struct dst_store_query *q, int64_t *count)
{
    struct dst_store_sql sql;
    int64_t n = 0;

    dst_store_sql_init(&sql, DST_SQL_PG);
    int rc = read_sql(base, &sql, dst_store_sql_delete(&sql, q), int_row, &n);
    if (rc == 0)
        *count = n;
    return rc;
}

static int pg_set_excluded(struct dst_store *base, const char *id, bool excluded, bool *matched)
{
    struct dst_store_sql sql;
    int64_t n = 0;

    dst_store_sql_init(&sql, DST_SQL_PG);
    int rc = read_sql(base, &sql, dst_store_sql_set_excluded(&sql, id, excluded), int_row, &n);
    *matched = n > 0;
    return rc;
}

static int pg_ping(struct dst_store *base)
{
    int64_t v = 0;
    return pg_store_read_each((struct pg_store *)base, "SELECT 1", NULL, 0, int_row, &v);
}

/* ---- series ---- */

static int series_row(const PGresult *res, int i, void *arg)
{
    double v[4];
    bool ok = PQgetvalue(res, i, 1)[0] == 't';

    for (int k = 0; ok && k < 4; k++)
        v[k] = PQgetisnull(res, i, 2 + k) ? NAN : strtod(PQgetvalue(res, i, 2 + k), NULL);
    dst_store_sql_buckets_add(arg, int_at(res, i, 0), ok, v);
    return 0;
}

static int pg_series(struct dst_store *base, const struct dst_series_query *q,
                     struct dst_series_bucket **out, size_t *n)
{
    struct dst_store_sql_buckets x;
    struct dst_store_sql sql;

    dst_store_sql_buckets_init(&x, q);
    dst_store_sql_init(&sql, DST_SQL_PG);
    int rc = read_sql(base, &sql, dst_store_sql_series(&sql, q), series_row, &x);
    if (rc == 0)
        dst_store_sql_buckets_detach(&x, out, n);
    dst_store_sql_buckets_release(&x);
    return rc;
}

/* ---- probes ---- */

struct probes_ctx {
    struct dst_probe_info *p;
    size_t n, cap;
};

static int probes_row(const PGresult *res, int i, void *arg)
{
    struct probes_ctx *x = arg;

    if (x->n == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 8;
        x->p = dst_xrealloc(x->p, x->cap * sizeof(*x->p));
    }
    struct dst_probe_info *p = &x->p[x->n++];
    p->name = dst_xstrdup(PQgetvalue(res, i, 0));
    p->first_ms = int_at(res, i, 1);
    p->last_ms = int_at(res, i, 2);
    p->results = int_at(res, i, 3);
    p->failed = int_at(res, i, 4);
    dst_result_init(&p->last);
    read_row(res, i, 5, &p->last);
    p->location = dst_xstrdup(p->last.location);
    return 0;
}

static int pg_probes(struct dst_store *base, struct dst_probe_info **out, size_t *n)
{
    struct probes_ctx x = {NULL, 0, 0};
    struct dst_store_sql sql;

    dst_store_sql_init(&sql, DST_SQL_PG);
    int rc = read_sql(base, &sql, dst_store_sql_probes(&sql), probes_row, &x);
    if (rc) {
        dst_store_probes_free(x.p, x.n);
        return rc;
    }
    *out = x.p;
    *n = x.n;
    return 0;
}

/* ---- settings ---- */

struct setting_row {
    char *text;
    int64_t version;
};

static int setting_row(const PGresult *res, int i, void *arg)
{
    struct setting_row *x = arg;

    x->text = dst_xstrdup(PQgetvalue(res, i, 0));
    x->version = int_at(res, i, 1);
    return PG_FOUND;
}

static int pg_setting_get(struct dst_store *base, const char *key, char **out, int64_t *version)
{
    struct dst_store_sql_val arg = {.type = DST_SQL_TEXT, .s = key};
    struct setting_row x = {NULL, 0};
    int rc = pg_store_read_each((struct pg_store *)base, DST_STORE_SQL_SETTING_GET, &arg, 1,
                                setting_row, &x);
    if (rc == PG_FOUND) {
        *out = x.text;
        *version = x.version;
    }
    return rc == PG_FOUND ? 0 : rc ? rc : DST_ENOTFOUND;
}

/*
 * One statement compares, sets and NOTIFYs (store_sql.c); when it matched no row the version
 * was stale, and the current one is read for the caller's 409.
 */
static int pg_setting_put(struct dst_store *base, const char *key, const char *json, int64_t now_ms,
                          int64_t expected, int64_t *version)
{
    struct dst_store_sql_val args[4] = {{.type = DST_SQL_TEXT, .s = key},
                                        {.type = DST_SQL_TEXT, .s = json},
                                        {.type = DST_SQL_INT, .i = now_ms},
                                        {.type = DST_SQL_INT, .i = expected}};
    struct setting_row cur = {NULL, 0};
    int64_t v = -1;
    int rc =
        pg_store_read_each((struct pg_store *)base, dst_store_sql_setting_put(DST_SQL_PG, expected),
                           args, expected > 0 ? 4 : 3, int_row, &v);

    if (rc == 0 && v >= 0) {
        *version = v;
        return 0;
    }
    rc = rc ? rc
            : pg_store_read_each((struct pg_store *)base, DST_STORE_SQL_SETTING_GET, args, 1,
                                 setting_row, &cur);
    free(cur.text);
    if (rc == 0 || rc == PG_FOUND) {
        *version = cur.version;
        rc = DST_ECONFLICT;
    }
    return rc;
}

/* ---- transactions for the shared code (store_rollup.c) ---- */

#define TX_COLS 48 /* the most columns a row callback gets */

struct dst_store_tx {
    struct pg_store *s;
    struct pg_store_conn *c;
};

/* Hands row i of res to row as values. */
static int vals_of(const PGresult *res, int i, dst_store_vals_fn row, void *arg)
{
    struct dst_store_sql_val v[TX_COLS];
    int n = PQnfields(res);

    n = n > TX_COLS ? TX_COLS : n;
    for (int k = 0; k < n; k++)
        v[k] = pg_store_val(res, i, k);
    return row(v, n, arg);
}

static int run_plain(struct pg_store_conn *c, const char *sql)
{
    PGresult *res = PQexec(c->pg, sql);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : pg_store_fail(c, sql, res);
    PQclear(res);
    return rc;
}

static int pg_tx_begin(struct dst_store *base, struct dst_store_tx **out)
{
    struct pg_store *s = (struct pg_store *)base;
    struct pg_store_conn *c = NULL;
    int rc = pg_store_conn_get(s, &c);

    rc = rc ? rc : run_plain(c, "BEGIN");
    if (rc) {
        pg_store_conn_put(s, c);
        return rc;
    }
    *out = dst_xnew(struct dst_store_tx);
    (*out)->s = s;
    (*out)->c = c;
    return 0;
}

static int pg_tx_exec(struct dst_store_tx *tx, const char *sql,
                      const struct dst_store_sql_val *args, int nargs, dst_store_vals_fn row,
                      void *arg, int64_t *changes)
{
    PGresult *res = NULL;
    int rc = pg_store_exec(tx->c, sql, args, nargs, &res);

    for (int i = 0; rc == 0 && row && i < PQntuples(res); i++)
        rc = vals_of(res, i, row, arg);
    if (rc == 0 && changes)
        *changes = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return rc;
}

static int pg_tx_end(struct dst_store_tx *tx, bool commit)
{
    int rc = run_plain(tx->c, commit ? "COMMIT" : "ROLLBACK");

    pg_store_conn_put(tx->s, tx->c); /* closed if still inside a transaction */
    free(tx);
    return rc;
}

struct vals_ctx {
    dst_store_vals_fn fn;
    void *arg;
};

static int vals_row(const PGresult *res, int i, void *arg)
{
    struct vals_ctx *x = arg;
    return vals_of(res, i, x->fn, x->arg);
}

static int pg_tx_read(struct dst_store *base, const char *sql, const struct dst_store_sql_val *args,
                      int nargs, dst_store_vals_fn row, void *arg)
{
    struct vals_ctx x = {row, arg};
    return pg_store_read_each((struct pg_store *)base, sql, args, nargs, vals_row, &x);
}

static const struct dst_store_tx_ops pg_tx_ops = {
    .dialect = DST_SQL_PG,
    .begin = pg_tx_begin,
    .exec = pg_tx_exec,
    .end = pg_tx_end,
    .read = pg_tx_read,
};

struct setting_each_ctx {
    dst_store_setting_fn fn;
    void *ud;
};

static int setting_each_row(const PGresult *res, int i, void *arg)
{
    struct setting_each_ctx *x = arg;
    return x->fn(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), int_at(res, i, 2), x->ud);
}

static int pg_setting_each(struct dst_store *base, dst_store_setting_fn fn, void *ud)
{
    struct setting_each_ctx x = {fn, ud};
    return pg_store_read_each((struct pg_store *)base, DST_STORE_SQL_SETTING_EACH, NULL, 0,
                              setting_each_row, &x);
}

/* No backup op: PostgreSQL's is pg_dump (README, "Backups"). */
const struct dst_store_ops dst_store_pg_ops = {
    .scheme = "postgresql",
    .open = pg_store_open,
    .close = pg_store_close,
    .schema_version = pg_store_schema_version,
    .insert = pg_insert,
    .insert_bulk = pg_store_insert_bulk,
    .analyze = pg_store_analyze,
    .get = pg_get,
    .query = pg_query,
    .count = pg_count,
    .version = pg_version,
    .delete_where = pg_delete_where,
    .set_excluded = pg_set_excluded,
    .series = pg_series,
    .probes = pg_probes,
    .ping = pg_ping,
    .tx = &pg_tx_ops,
    .setting_get = pg_setting_get,
    .setting_put = pg_setting_put,
    .feed_start = pg_feed_start,
    .feed_stop = pg_feed_stop,
    .setting_each = pg_setting_each,
    .cred_add = pg_cred_add,
    .cred_get = pg_cred_get,
    .cred_list = pg_cred_list,
    .cred_delete = pg_cred_delete,
    .cred_touch = pg_cred_touch,
    .cred_purge = pg_cred_purge,
};
