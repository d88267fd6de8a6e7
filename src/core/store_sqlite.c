/* store_sqlite.c - the SQLite results store: writes and reads, over store_sqlite_conn.c */
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/store_sql.h"
#include "core/store_sqlite_priv.h"

/* ---- values and rows ---- */

void sqlite_store_bind(sqlite3_stmt *st, const struct dst_store_sql_val *args, int n)
{
    for (int i = 0; i < n; i++) {
        const struct dst_store_sql_val *v = &args[i];
        if (v->type == DST_SQL_TEXT)
            sqlite3_bind_text(st, i + 1, v->s, -1, SQLITE_STATIC);
        else if (v->type == DST_SQL_INT)
            sqlite3_bind_int64(st, i + 1, v->i);
        else if (v->type == DST_SQL_REAL)
            sqlite3_bind_double(st, i + 1, v->d);
        else
            sqlite3_bind_null(st, i + 1);
    }
}

/* Column k as the value it holds. */
static struct dst_store_sql_val column_val(sqlite3_stmt *st, int k)
{
    switch (sqlite3_column_type(st, k)) {
    case SQLITE_NULL:
        return (struct dst_store_sql_val){.type = DST_SQL_NULL};
    case SQLITE_INTEGER:
        return (struct dst_store_sql_val){.type = DST_SQL_INT, .i = sqlite3_column_int64(st, k)};
    case SQLITE_FLOAT:
        return (struct dst_store_sql_val){.type = DST_SQL_REAL, .d = sqlite3_column_double(st, k)};
    default:
        return (struct dst_store_sql_val){.type = DST_SQL_TEXT,
                                          .s = (const char *)sqlite3_column_text(st, k)};
    }
}

/* Reads seq and the DST_STORE_SQL_NCOLS columns, starting at column first, into r (initialised). */
static void read_row(sqlite3_stmt *st, int first, struct dst_result *r)
{
    struct dst_store_sql_val row[DST_STORE_SQL_NCOLS];

    r->seq = sqlite3_column_int64(st, first);
    for (int i = 0; i < DST_STORE_SQL_NCOLS; i++)
        row[i] = column_val(st, first + 1 + i);
    dst_store_sql_result_from_row(row, r);
}

/* ---- writes ---- */

/* Inserts rs[0..n) in the open transaction; seqs[i] is the new row's seq or 0 if it existed. */
static int insert_rows(struct sqlite_store_conn *c, const struct dst_result *rs, size_t n,
                       int64_t *seqs)
{
    struct dst_store_sql_val args[DST_STORE_SQL_NCOLS + 1];
    sqlite3_stmt *st = NULL;
    int64_t now = dst_datetime_now_ms();
    int rc = sqlite_store_stmt_get(c, dst_store_sql_insert(DST_SQL_SQLITE), &st);

    for (size_t i = 0; rc == 0 && i < n; i++) {
        dst_store_sql_insert_args(&rs[i], now, args);
        sqlite_store_bind(st, args, DST_STORE_SQL_NCOLS + 1);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = sqlite_store_fail(c, "insert");
            break;
        }
        seqs[i] = sqlite3_changes(c->db) > 0 ? sqlite3_last_insert_rowid(c->db) : 0;
        sqlite3_reset(st);
    }
    sqlite_store_stmt_put(c, st);
    return rc;
}

/*
 * One transaction per call, all rows or none. (Group commit, one transaction for the calls of
 * several threads, measured +10% inserts/s at 16 threads for the same CPU time: not worth it.)
 */
static int sqlite_insert(struct dst_store *base, struct dst_result *rs, size_t n, bool *created)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    int64_t one = 0, *seqs = n == 1 ? &one : dst_xcalloc(n, sizeof(*seqs));

    pthread_mutex_lock(&s->wlock);
    int rc = sqlite_store_exec_cached(s->writer, "BEGIN IMMEDIATE");
    if (rc == 0) {
        rc = insert_rows(s->writer, rs, n, seqs);
        rc = rc ? rc : sqlite_store_exec_cached(s->writer, "COMMIT");
        if (rc)
            sqlite_store_rollback(s->writer); /* nothing half-written */
    }
    pthread_mutex_unlock(&s->wlock);
    sqlite_store_note_write(s, rc);
    if (rc == 0)
        sqlite_feed_poke(s);
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

/* Appends the feed's row to the changes log (and trims it), in the open transaction. */
static int change_add(struct sqlite_store_conn *c, const char *kind, const char *id, int64_t n)
{
    struct dst_store_sql_val args[3] = {{.type = DST_SQL_TEXT, .s = kind},
                                        {.type = id ? DST_SQL_TEXT : DST_SQL_NULL, .s = id},
                                        {.type = DST_SQL_INT, .i = n}};
    sqlite3_stmt *st = NULL;
    int rc = sqlite_store_stmt_get(c, DST_STORE_SQL_CHANGE_ADD, &st);

    if (rc == 0) {
        sqlite_store_bind(st, args, 3);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sqlite_store_fail(c, "changes log");
    }
    sqlite_store_stmt_put(c, st);
    return rc ? rc : sqlite_store_exec_cached(c, DST_STORE_SQL_CHANGE_TRIM);
}

/*
 * Runs a built change (rc: building it failed) and, when it changed a row, steps the version's
 * counter and logs it for the feed (kind, id), in one transaction; *changed: the rows it
 * changed. Releases sql.
 */
static int write_counted(struct sqlite_store *s, struct dst_store_sql *sql, int rc,
                         int64_t *changed, const char *kind, const char *id)
{
    sqlite3_stmt *st = NULL;
    int n = 0;

    if (rc)
        goto out;
    pthread_mutex_lock(&s->wlock);
    rc = sqlite_store_exec_cached(s->writer, "BEGIN IMMEDIATE");
    rc = rc ? rc : sqlite_store_stmt_get(s->writer, sql->text.data, &st);
    if (rc == 0) {
        sqlite_store_bind(st, sql->args, sql->nargs);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sqlite_store_fail(s->writer, "change");
        n = rc ? 0 : sqlite3_changes(s->writer->db);
    }
    sqlite_store_stmt_put(s->writer, st);
    if (rc == 0 && n > 0)
        rc = sqlite_store_exec_cached(s->writer, DST_STORE_SQL_COUNTED);
    if (rc == 0 && n > 0)
        rc = change_add(s->writer, kind, id, n);
    rc = rc ? rc : sqlite_store_exec_cached(s->writer, "COMMIT");
    if (rc)
        sqlite_store_rollback(s->writer); /* nothing half-done */
    pthread_mutex_unlock(&s->wlock);
    sqlite_store_note_write(s, rc);
    if (rc == 0)
        *changed = n;
    if (rc == 0 && n > 0)
        sqlite_feed_poke(s);
out:
    dst_store_sql_release(sql);
    return rc;
}

static int sqlite_delete_where(struct dst_store *base, const struct dst_store_query *q,
                               int64_t *count)
{
    struct dst_store_sql sql;

    dst_store_sql_init(&sql, DST_SQL_SQLITE);
    return write_counted((struct sqlite_store *)base, &sql, dst_store_sql_delete(&sql, q), count,
                         "d", dst_store_sql_query_id(q));
}

static int sqlite_set_excluded(struct dst_store *base, const char *id, bool excluded, bool *matched)
{
    struct dst_store_sql sql;
    int64_t n = 0;

    dst_store_sql_init(&sql, DST_SQL_SQLITE);
    int rc = write_counted((struct sqlite_store *)base, &sql,
                           dst_store_sql_set_excluded(&sql, id, excluded), &n, "x", id);
    *matched = n > 0;
    return rc;
}

/* ---- reads ---- */

int sqlite_store_read_each(struct sqlite_store *s, const char *sql,
                           const struct dst_store_sql_val *args, int nargs,
                           int (*row)(sqlite3_stmt *, void *), void *arg)
{
    struct sqlite_store_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite_store_reader_get(s, &c);

    rc = rc ? rc : sqlite_store_stmt_get(c, sql, &st);
    if (rc == 0)
        sqlite_store_bind(st, args, nargs);
    while (rc == 0) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW)
            rc = sqlite_store_fail(c, "query");
        else
            rc = row(st, arg);
    }
    sqlite_store_stmt_put(c, st);
    sqlite_store_reader_put(s, c);
    return rc;
}

/* Runs sql like read_each unless building it failed (rc); releases it either way. */
static int read_sql(struct dst_store *base, struct dst_store_sql *sql, int rc,
                    int (*row)(sqlite3_stmt *, void *), void *arg)
{
    struct sqlite_store *s = (struct sqlite_store *)base;

    rc = rc ? rc : sqlite_store_read_each(s, sql->text.data, sql->args, sql->nargs, row, arg);
    dst_store_sql_release(sql);
    return rc;
}

/* Reads the row into r and stops there: sqlite_store_read_each returns FOUND. */

static int get_row(sqlite3_stmt *st, void *r)
{
    read_row(st, 0, r);
    return FOUND;
}

static int sqlite_get(struct dst_store *base, const char *id, struct dst_result *r)
{
    struct dst_store_sql sql;

    dst_store_sql_init(&sql, DST_SQL_SQLITE);
    int rc = read_sql(base, &sql, dst_store_sql_get(&sql, id), get_row, r);
    return rc == FOUND ? 0 : rc ? rc : DST_ENOTFOUND;
}

struct query_ctx {
    dst_store_row_fn fn;
    void *ud;
};

static int query_row(sqlite3_stmt *st, void *arg)
{
    struct query_ctx *x = arg;
    struct dst_result r;

    dst_result_init(&r);
    read_row(st, 0, &r);
    int rc = x->fn(&r, x->ud);
    dst_result_release(&r);
    return rc;
}

static int sqlite_query(struct dst_store *base, const struct dst_store_query *q,
                        dst_store_row_fn fn, void *ud)
{
    struct query_ctx x = {fn, ud};
    struct dst_store_sql sql;

    dst_store_sql_init(&sql, DST_SQL_SQLITE);
    return read_sql(base, &sql, dst_store_sql_query(&sql, q), query_row, &x);
}

static int int_row(sqlite3_stmt *st, void *arg)
{
    *(int64_t *)arg = sqlite3_column_int64(st, 0);
    return 0;
}

static int sqlite_count(struct dst_store *base, const struct dst_store_query *q, int64_t *out)
{
    struct dst_store_sql sql;
    int64_t n = 0;

    dst_store_sql_init(&sql, DST_SQL_SQLITE);
    int rc = read_sql(base, &sql, dst_store_sql_count(&sql, q), int_row, &n);
    if (rc == 0)
        *out = n;
    return rc;
}

/*
 * The newest row number moves with every insert, the deletes counter with every delete (which
 * also covers a deleted newest row, whose number the next insert takes again).
 */
static int sqlite_version(struct dst_store *base, uint64_t *out)
{
    int64_t v = 0;
    int rc = sqlite_store_read_each((struct sqlite_store *)base, DST_STORE_SQL_VERSION, NULL, 0,
                                    int_row, &v);
    if (rc == 0)
        *out = (uint64_t)v;
    return rc;
}

/*
 * Reading works on a full disk, and a trial write may fit in the room a refused one left in
 * the WAL; so a write refused for want of space makes the store not ready until the file
 * system has more room than it had then.
 */
static int sqlite_ping(struct dst_store *base)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    int64_t v = 0;
    int rc = sqlite_store_full_check(s);

    return rc ? rc : sqlite_store_read_each(s, "SELECT 1", NULL, 0, int_row, &v);
}

/* ---- series ---- */

static int series_row(sqlite3_stmt *st, void *arg)
{
    double v[4];
    bool ok = sqlite3_column_int(st, 1);

    for (int i = 0; ok && i < 4; i++) {
        bool null = sqlite3_column_type(st, 2 + i) == SQLITE_NULL;
        v[i] = null ? NAN : sqlite3_column_double(st, 2 + i);
    }
    dst_store_sql_buckets_add(arg, sqlite3_column_int64(st, 0), ok, v);
    return 0;
}

static int sqlite_series(struct dst_store *base, const struct dst_series_query *q,
                         struct dst_series_bucket **out, size_t *n)
{
    struct dst_store_sql_buckets x;
    struct dst_store_sql sql;

    dst_store_sql_buckets_init(&x, q);
    dst_store_sql_init(&sql, DST_SQL_SQLITE);
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

static int probes_row(sqlite3_stmt *st, void *arg)
{
    struct probes_ctx *x = arg;

    if (x->n == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 8;
        x->p = dst_xrealloc(x->p, x->cap * sizeof(*x->p));
    }
    struct dst_probe_info *p = &x->p[x->n++];
    p->name = dst_xstrdup((const char *)sqlite3_column_text(st, 0));
    p->first_ms = sqlite3_column_int64(st, 1);
    p->last_ms = sqlite3_column_int64(st, 2);
    p->results = sqlite3_column_int64(st, 3);
    p->failed = sqlite3_column_int64(st, 4);
    dst_result_init(&p->last);
    read_row(st, 5, &p->last);
    p->location = dst_xstrdup(p->last.location);
    return 0;
}

static int sqlite_probes(struct dst_store *base, struct dst_probe_info **out, size_t *n)
{
    struct probes_ctx x = {NULL, 0, 0};
    struct dst_store_sql sql;

    dst_store_sql_init(&sql, DST_SQL_SQLITE);
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

static int setting_row(sqlite3_stmt *st, void *arg)
{
    struct setting_row *x = arg;

    x->text = dst_xstrdup((const char *)sqlite3_column_text(st, 0));
    x->version = sqlite3_column_int64(st, 1);
    return FOUND;
}

static int sqlite_setting_get(struct dst_store *base, const char *key, char **out, int64_t *version)
{
    struct dst_store_sql_val arg = {.type = DST_SQL_TEXT, .s = key};
    struct setting_row x = {NULL, 0};
    int rc = sqlite_store_read_each((struct sqlite_store *)base, DST_STORE_SQL_SETTING_GET, &arg, 1,
                                    setting_row, &x);
    if (rc == FOUND) {
        *out = x.text;
        *version = x.version;
    }
    return rc == FOUND ? 0 : rc ? rc : DST_ENOTFOUND;
}

/* The compare-and-set statement on the writer, in the open transaction; *put: it matched. */
static int setting_cas(struct sqlite_store_conn *c, const struct dst_store_sql_val *args,
                       int64_t expected, bool *put, int64_t *version)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite_store_stmt_get(c, dst_store_sql_setting_put(DST_SQL_SQLITE, expected), &st);

    if (rc)
        return rc;
    sqlite_store_bind(st, args, expected > 0 ? 4 : 3);
    int step = sqlite3_step(st);
    *put = step == SQLITE_ROW;
    if (*put)
        *version = sqlite3_column_int64(st, 0);
    while (step == SQLITE_ROW)
        step = sqlite3_step(st);
    rc = step == SQLITE_DONE ? 0 : sqlite_store_fail(c, "setting");
    sqlite_store_stmt_put(c, st);
    return rc;
}

/* The put, its changes-log row and (when stale) the current version, in one transaction. */
static int sqlite_setting_put(struct dst_store *base, const char *key, const char *json,
                              int64_t now_ms, int64_t expected, int64_t *version)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    struct dst_store_sql_val args[4] = {{.type = DST_SQL_TEXT, .s = key},
                                        {.type = DST_SQL_TEXT, .s = json},
                                        {.type = DST_SQL_INT, .i = now_ms},
                                        {.type = DST_SQL_INT, .i = expected}};
    struct setting_row cur = {NULL, 0};
    bool put = false;

    pthread_mutex_lock(&s->wlock);
    int rc = sqlite_store_exec_cached(s->writer, "BEGIN IMMEDIATE");
    rc = rc ? rc : setting_cas(s->writer, args, expected, &put, version);
    if (rc == 0 && put)
        rc = change_add(s->writer, "s", key, *version);
    if (rc == 0 && !put) /* stale: the current version (the writer sees its own transaction) */
        rc = sqlite_store_read_each(s, DST_STORE_SQL_SETTING_GET, args, 1, setting_row, &cur);
    rc = rc == FOUND ? 0 : rc;
    rc = rc ? rc : sqlite_store_exec_cached(s->writer, "COMMIT");
    if (rc)
        sqlite_store_rollback(s->writer);
    pthread_mutex_unlock(&s->wlock);
    free(cur.text);
    if (rc == 0 && put)
        sqlite_feed_poke(s);
    if (rc == 0 && !put) {
        *version = cur.version;
        rc = DST_ECONFLICT;
    }
    return rc;
}

struct setting_each_ctx {
    dst_store_setting_fn fn;
    void *ud;
};

static int setting_each_row(sqlite3_stmt *st, void *arg)
{
    struct setting_each_ctx *x = arg;
    return x->fn((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
                 sqlite3_column_int64(st, 2), x->ud);
}

static int sqlite_setting_each(struct dst_store *base, dst_store_setting_fn fn, void *ud)
{
    struct setting_each_ctx x = {fn, ud};
    return sqlite_store_read_each((struct sqlite_store *)base, DST_STORE_SQL_SETTING_EACH, NULL, 0,
                                  setting_each_row, &x);
}

int sqlite_store_write(struct sqlite_store *s, const char *sql,
                       const struct dst_store_sql_val *args, int nargs, int *changes)
{
    sqlite3_stmt *st = NULL;

    pthread_mutex_lock(&s->wlock);
    int rc = sqlite_store_stmt_get(s->writer, sql, &st);
    if (rc == 0) {
        sqlite_store_bind(st, args, nargs);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sqlite_store_fail(s->writer, "write");
        else if (changes)
            *changes = sqlite3_changes(s->writer->db);
    }
    sqlite_store_stmt_put(s->writer, st);
    pthread_mutex_unlock(&s->wlock);
    sqlite_store_note_write(s, rc);
    return rc;
}

/* ---- transactions for the shared code (store_rollup.c) ---- */

#define TX_COLS 48 /* the most columns a row callback gets */

struct dst_store_tx {
    struct sqlite_store *s;
};

/* Binds args, steps st to the end and hands each row to row (may be NULL). */
static int step_rows(struct sqlite_store_conn *c, sqlite3_stmt *st,
                     const struct dst_store_sql_val *args, int nargs, dst_store_vals_fn row,
                     void *arg)
{
    struct dst_store_sql_val v[TX_COLS];
    int rc = 0;

    sqlite_store_bind(st, args, nargs);
    while (rc == 0) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW)
            return sqlite_store_fail(c, "statement");
        int n = sqlite3_column_count(st);
        n = n > TX_COLS ? TX_COLS : n;
        for (int k = 0; row && k < n; k++)
            v[k] = column_val(st, k);
        rc = row ? row(v, n, arg) : 0;
    }
    return rc;
}

static int sqlite_tx_begin(struct dst_store *base, struct dst_store_tx **out)
{
    struct sqlite_store *s = (struct sqlite_store *)base;

    pthread_mutex_lock(&s->wlock);
    int rc = sqlite_store_exec_cached(s->writer, "BEGIN IMMEDIATE");
    if (rc) {
        pthread_mutex_unlock(&s->wlock);
        return rc;
    }
    *out = dst_xnew(struct dst_store_tx);
    (*out)->s = s;
    return 0;
}

static int sqlite_tx_exec(struct dst_store_tx *tx, const char *sql,
                          const struct dst_store_sql_val *args, int nargs, dst_store_vals_fn row,
                          void *arg, int64_t *changes)
{
    struct sqlite_store_conn *c = tx->s->writer;
    sqlite3_stmt *st = NULL;
    int rc = sqlite_store_stmt_get(c, sql, &st);

    rc = rc ? rc : step_rows(c, st, args, nargs, row, arg);
    if (rc == 0 && changes)
        *changes = sqlite3_changes(c->db);
    sqlite_store_stmt_put(c, st);
    return rc;
}

static int sqlite_tx_end(struct dst_store_tx *tx, bool commit)
{
    struct sqlite_store *s = tx->s;
    int rc = commit ? sqlite_store_exec_cached(s->writer, "COMMIT") : 0;

    sqlite_store_rollback(s->writer); /* if the COMMIT did not happen */
    pthread_mutex_unlock(&s->wlock);
    free(tx);
    return rc;
}

struct vals_ctx {
    dst_store_vals_fn fn;
    void *arg;
};

static int vals_row(sqlite3_stmt *st, void *arg)
{
    struct vals_ctx *x = arg;
    struct dst_store_sql_val v[TX_COLS];
    int n = sqlite3_column_count(st);

    n = n > TX_COLS ? TX_COLS : n;
    for (int k = 0; k < n; k++)
        v[k] = column_val(st, k);
    return x->fn(v, n, x->arg);
}

static int sqlite_tx_read(struct dst_store *base, const char *sql,
                          const struct dst_store_sql_val *args, int nargs, dst_store_vals_fn row,
                          void *arg)
{
    struct vals_ctx x = {row, arg};
    return sqlite_store_read_each((struct sqlite_store *)base, sql, args, nargs, vals_row, &x);
}

static const struct dst_store_tx_ops sqlite_tx_ops = {
    .dialect = DST_SQL_SQLITE,
    .begin = sqlite_tx_begin,
    .exec = sqlite_tx_exec,
    .end = sqlite_tx_end,
    .read = sqlite_tx_read,
};

const struct dst_store_ops dst_store_sqlite_ops = {
    .scheme = "sqlite",
    .open = sqlite_store_open,
    .close = sqlite_store_close,
    .schema_version = sqlite_store_schema_version,
    .insert = sqlite_insert,
    .get = sqlite_get,
    .query = sqlite_query,
    .count = sqlite_count,
    .version = sqlite_version,
    .delete_where = sqlite_delete_where,
    .set_excluded = sqlite_set_excluded,
    .series = sqlite_series,
    .probes = sqlite_probes,
    .ping = sqlite_ping,
    .tx = &sqlite_tx_ops,
    .setting_get = sqlite_setting_get,
    .setting_put = sqlite_setting_put,
    .feed_start = sqlite_feed_start,
    .feed_stop = sqlite_feed_stop,
    .setting_each = sqlite_setting_each,
    .cred_add = sqlite_cred_add,
    .cred_get = sqlite_cred_get,
    .cred_list = sqlite_cred_list,
    .cred_delete = sqlite_cred_delete,
    .cred_touch = sqlite_cred_touch,
    .cred_purge = sqlite_cred_purge,
    .backup = sqlite_store_backup,
};
