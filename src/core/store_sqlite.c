/* store_sqlite.c - the SQLite results store: WAL, one writer, pooled readers, cached statements */
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store_backend.h"
#include "core/store_sql.h"

#define STMT_CACHE   32 /* prepared statements kept per connection (least recently used goes) */
#define IDLE_READERS 8  /* reader connections kept open while idle */

/* ---- the schema ---- */

/*
 * Migration i takes the schema from version i to i + 1; each runs in its own transaction.
 * Append only: never edit one that has shipped.
 * results_time: ranges by time (newest-first lists, cursor paging) and, covering, the series.
 * results_probe_time: the same per probe, and the probe listing.
 */
static const char *const migrations[] = {
    "CREATE TABLE results ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE CHECK (length(id) = 36),"
    " time_ms INTEGER NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),"
    " error TEXT, probe TEXT NOT NULL, location TEXT, user TEXT, device INTEGER,"
    " engine TEXT, target TEXT, request_id TEXT,"
    " download_bps REAL, upload_bps REAL, ping_ms REAL, jitter_ms REAL, loss_pct REAL,"
    " bytes_down INTEGER, bytes_up INTEGER, duration_s REAL, streams INTEGER,"
    " server_id INTEGER, server_host TEXT, server_name TEXT, server_sponsor TEXT,"
    " server_country TEXT, server_lat REAL, server_lon REAL, server_distance_m REAL,"
    " client_ip TEXT, client_isp TEXT, client_country TEXT, client_lat REAL, client_lon REAL,"
    " received_ms INTEGER NOT NULL);"
    "CREATE INDEX results_time ON results"
    " (time_ms, status, download_bps, upload_bps, ping_ms, jitter_ms);"
    "CREATE INDEX results_probe_time ON results"
    " (probe, time_ms, status, download_bps, upload_bps, ping_ms, jitter_ms);"
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta (key, value) VALUES ('deletes', 0);",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* ---- connections and their statement caches ---- */

struct cached {
    char *sql;
    size_t len;
    uint64_t hash;
    sqlite3_stmt *st;
    bool busy;     /* handed out; a nested user of the same SQL gets a fresh statement */
    uint64_t used; /* for least-recently-used eviction */
};

struct conn {
    sqlite3 *db;
    struct conn *next; /* in the idle list */
    uint64_t tick;
    struct cached cache[STMT_CACHE];
};

struct sqlite_store {
    struct dst_store base;
    char *path;
    bool memory;           /* ":memory:": the writer serves reads too, under wlock */
    pthread_mutex_t wlock; /* the writer connection (recursive: row callbacks may re-enter) */
    struct conn *writer;
    pthread_mutex_t plock; /* the idle readers */
    struct conn *idle;
    int nidle;
    int schema_version;
};

/* Logs what failed with SQLite's message; returns DST_EDEP. */
static int fail(struct conn *c, const char *what)
{
    dst_error("store: sqlite %s: %s", what, c && c->db ? sqlite3_errmsg(c->db) : "out of memory");
    return DST_EDEP;
}

static void conn_close(struct conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < STMT_CACHE; i++) {
        sqlite3_finalize(c->cache[i].st);
        free(c->cache[i].sql);
    }
    if (sqlite3_close(c->db) != SQLITE_OK)
        fail(c, "close");
    free(c);
}

static int conn_open(const char *path, bool writer, struct conn **out)
{
    int flags = SQLITE_OPEN_NOMUTEX |
                (writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY);
    struct conn *c = dst_xnew(struct conn);
    int rc = 0;

    if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
        dst_error("store: sqlite open %s: %s", path, c->db ? sqlite3_errmsg(c->db) : "no memory");
        rc = DST_EDEP;
        goto out;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, 5000);
    if (sqlite3_exec(c->db, "PRAGMA mmap_size = 268435456", NULL, NULL, NULL) != SQLITE_OK ||
        (writer && sqlite3_exec(c->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL",
                                NULL, NULL, NULL) != SQLITE_OK))
        rc = fail(c, "pragma");
out:
    if (rc)
        conn_close(c);
    else
        *out = c;
    return rc;
}

static uint64_t hash_sql(const char *s, size_t *len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    const char *p = s;
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    *len = (size_t)(p - s);
    return h;
}

/*
 * A reset statement for sql: the cached one, else a new one that is cached in the least
 * recently used free slot. A statement of the same text still in use (a call from inside a
 * row callback) gets an uncached copy. Give it back with stmt_put.
 */
static int stmt_get(struct conn *c, const char *sql, sqlite3_stmt **out)
{
    struct cached *slot = NULL;
    size_t len;
    uint64_t h = hash_sql(sql, &len);
    bool clash = false;

    for (int i = 0; i < STMT_CACHE; i++) {
        struct cached *e = &c->cache[i];
        if (e->sql && e->hash == h && e->len == len && strcmp(e->sql, sql) == 0) {
            clash = e->busy;
            if (!clash) {
                e->busy = true;
                e->used = ++c->tick;
                *out = e->st;
                return 0;
            }
        } else if (!e->busy && (!slot || e->used < slot->used)) {
            slot = e;
        }
    }
    if (clash)
        slot = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(c->db, sql, (int)len + 1, slot ? SQLITE_PREPARE_PERSISTENT : 0, &st,
                           NULL) != SQLITE_OK)
        return fail(c, "prepare");
    if (slot) {
        sqlite3_finalize(slot->st);
        free(slot->sql);
        *slot = (struct cached){dst_xstrdup(sql), len, h, st, true, ++c->tick};
    }
    *out = st;
    return 0;
}

static void stmt_put(struct conn *c, sqlite3_stmt *st)
{
    if (!st)
        return;
    for (int i = 0; i < STMT_CACHE; i++) {
        if (c->cache[i].st == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            c->cache[i].busy = false;
            return;
        }
    }
    sqlite3_finalize(st);
}

/* Runs one statement without results (BEGIN, COMMIT, ...) from the cache. */
static int exec_cached(struct conn *c, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_get(c, sql, &st);
    if (rc == 0 && sqlite3_step(st) != SQLITE_DONE)
        rc = fail(c, sql);
    stmt_put(c, st);
    return rc;
}

/* Rolls back the open transaction, if a failed statement has not ended it already. */
static void rollback(struct conn *c)
{
    if (!sqlite3_get_autocommit(c->db))
        exec_cached(c, "ROLLBACK");
}

/* A connection for reading: an idle reader, a new one, or (":memory:") the locked writer. */
static int reader_get(struct sqlite_store *s, struct conn **out)
{
    struct conn *c;

    if (s->memory) {
        pthread_mutex_lock(&s->wlock);
        *out = s->writer;
        return 0;
    }
    pthread_mutex_lock(&s->plock);
    c = s->idle;
    if (c) {
        s->idle = c->next;
        s->nidle--;
    }
    pthread_mutex_unlock(&s->plock);
    if (c) {
        *out = c;
        return 0;
    }
    return conn_open(s->path, false, out);
}

static void reader_put(struct sqlite_store *s, struct conn *c)
{
    if (!c)
        return;
    if (s->memory) {
        pthread_mutex_unlock(&s->wlock);
        return;
    }
    pthread_mutex_lock(&s->plock);
    if (s->nidle < IDLE_READERS) {
        c->next = s->idle;
        s->idle = c;
        s->nidle++;
        c = NULL;
    }
    pthread_mutex_unlock(&s->plock);
    conn_close(c);
}

/* ---- values and rows ---- */

/* Binds args to st's parameters 1 .. n. */
static void bind_args(sqlite3_stmt *st, const struct dst_store_sql_val *args, int n)
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

/* ---- open, migrate, close ---- */

static int schema_read(struct conn *c, int *version)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_get(c, "SELECT coalesce(max(version), 0) FROM schema_migrations", &st);
    if (rc == 0 && sqlite3_step(st) != SQLITE_ROW)
        rc = fail(c, "read schema version");
    if (rc == 0)
        *version = sqlite3_column_int(st, 0);
    stmt_put(c, st);
    return rc;
}

/* Applies migration v (to version v + 1) unless another process did; in one transaction. */
static int migrate_one(struct sqlite_store *s, int v, int *now_at)
{
    struct conn *c = s->writer;
    sqlite3_stmt *st = NULL;
    int rc = exec_cached(c, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    rc = schema_read(c, now_at);
    if (rc || *now_at != v)
        goto out;
    if (sqlite3_exec(c->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
        rc = fail(c, "migrate");
        goto out;
    }
    rc = stmt_get(c, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", &st);
    if (rc)
        goto out;
    sqlite3_bind_int(st, 1, v + 1);
    sqlite3_bind_int64(st, 2, dst_datetime_now_ms());
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = fail(c, "migrate");
    *now_at = v + 1;
out:
    stmt_put(c, st);
    rc = rc ? rc : exec_cached(c, "COMMIT");
    if (rc)
        rollback(c);
    return rc;
}

static int migrate(struct sqlite_store *s)
{
    int v = 0, rc;

    if (sqlite3_exec(s->writer->db,
                     "CREATE TABLE IF NOT EXISTS schema_migrations"
                     " (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
                     NULL, NULL, NULL) != SQLITE_OK)
        return fail(s->writer, "create schema_migrations");
    rc = schema_read(s->writer, &v);
    while (rc == 0 && v < SCHEMA_VERSION) {
        rc = migrate_one(s, v, &v);
        if (rc == 0)
            dst_info("store: %s at schema version %d", s->path, v);
    }
    if (rc == 0 && v > SCHEMA_VERSION) {
        dst_error("store: %s has schema version %d, newer than this dstmc knows (%d); "
                  "refusing to open it (upgrade dstmc)",
                  s->path, v, SCHEMA_VERSION);
        rc = DST_EDEP;
    }
    s->schema_version = v;
    return rc;
}

static void sqlite_close(struct dst_store *base)
{
    struct sqlite_store *s = (struct sqlite_store *)base;

    while (s->idle) {
        struct conn *c = s->idle;
        s->idle = c->next;
        conn_close(c);
    }
    conn_close(s->writer);
    pthread_mutex_destroy(&s->wlock);
    pthread_mutex_destroy(&s->plock);
    free(s->path);
    free(s);
}

static int sqlite_open(const char *rest, struct dst_store **out)
{
    struct sqlite_store *s = dst_xnew(struct sqlite_store);
    pthread_mutexattr_t attr;

    s->base.ops = &dst_store_sqlite_ops;
    s->path = dst_xstrdup(rest);
    s->memory = strcmp(rest, ":memory:") == 0;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&s->wlock, &attr);
    pthread_mutexattr_destroy(&attr);
    pthread_mutex_init(&s->plock, NULL);
    int rc = conn_open(s->path, true, &s->writer);
    rc = rc ? rc : migrate(s);
    if (rc) {
        sqlite_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}

static int sqlite_schema_version(struct dst_store *base)
{
    return ((struct sqlite_store *)base)->schema_version;
}

/* ---- writes ---- */

/* Inserts rs[0..n) in the open transaction; seqs[i] is the new row's seq or 0 if it existed. */
static int insert_rows(struct conn *c, const struct dst_result *rs, size_t n, int64_t *seqs)
{
    struct dst_store_sql_val args[DST_STORE_SQL_NCOLS + 1];
    sqlite3_stmt *st = NULL;
    int64_t now = dst_datetime_now_ms();
    int rc = stmt_get(c, dst_store_sql_insert(DST_SQL_SQLITE), &st);

    for (size_t i = 0; rc == 0 && i < n; i++) {
        dst_store_sql_insert_args(&rs[i], now, args);
        bind_args(st, args, DST_STORE_SQL_NCOLS + 1);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = fail(c, "insert");
            break;
        }
        seqs[i] = sqlite3_changes(c->db) > 0 ? sqlite3_last_insert_rowid(c->db) : 0;
        sqlite3_reset(st);
    }
    stmt_put(c, st);
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
    int rc = exec_cached(s->writer, "BEGIN IMMEDIATE");
    if (rc == 0) {
        rc = insert_rows(s->writer, rs, n, seqs);
        rc = rc ? rc : exec_cached(s->writer, "COMMIT");
        if (rc)
            rollback(s->writer); /* nothing half-written */
    }
    pthread_mutex_unlock(&s->wlock);
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

/* Runs sql (with args[0 .. nargs) bound) on a reader and calls row(st, arg) for each row. */
static int read_each(struct sqlite_store *s, const char *sql, const struct dst_store_sql_val *args,
                     int nargs, int (*row)(sqlite3_stmt *, void *), void *arg)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = reader_get(s, &c);

    rc = rc ? rc : stmt_get(c, sql, &st);
    if (rc == 0)
        bind_args(st, args, nargs);
    while (rc == 0) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW)
            rc = fail(c, "query");
        else
            rc = row(st, arg);
    }
    stmt_put(c, st);
    reader_put(s, c);
    return rc;
}

/* Runs sql like read_each unless building it failed (rc); releases it either way. */
static int read_sql(struct dst_store *base, struct dst_store_sql *sql, int rc,
                    int (*row)(sqlite3_stmt *, void *), void *arg)
{
    struct sqlite_store *s = (struct sqlite_store *)base;

    rc = rc ? rc : read_each(s, sql->text.data, sql->args, sql->nargs, row, arg);
    dst_store_sql_release(sql);
    return rc;
}

/* Reads the row into r and stops there: read_each returns FOUND (errors are negative). */
#define FOUND 1

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
    int rc = read_each((struct sqlite_store *)base, DST_STORE_SQL_VERSION, NULL, 0, int_row, &v);
    if (rc == 0)
        *out = (uint64_t)v;
    return rc;
}

static int sqlite_ping(struct dst_store *base)
{
    int64_t v = 0;
    return read_each((struct sqlite_store *)base, "SELECT 1", NULL, 0, int_row, &v);
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

const struct dst_store_ops dst_store_sqlite_ops = {
    .scheme = "sqlite",
    .open = sqlite_open,
    .close = sqlite_close,
    .schema_version = sqlite_schema_version,
    .insert = sqlite_insert,
    .get = sqlite_get,
    .query = sqlite_query,
    .count = sqlite_count,
    .version = sqlite_version,
    .series = sqlite_series,
    .probes = sqlite_probes,
    .ping = sqlite_ping,
};
