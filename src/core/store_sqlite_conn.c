/* store_sqlite_conn.c - SQLite store: schema, WAL, one writer, pooled readers, cached statements */
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store_sqlite_priv.h"

#define IDLE_READERS 8 /* reader connections kept open while idle */

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
    /* 2: small named JSON documents (the schedules) */
    "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL,"
    " updated_ms INTEGER NOT NULL) WITHOUT ROWID;",
    /* 3: API tokens and browser sessions, hashed (core/cred.c) */
    "CREATE TABLE credentials (id TEXT PRIMARY KEY,"
    " kind TEXT NOT NULL CHECK (kind IN ('token', 'session')), name TEXT NOT NULL,"
    " scopes TEXT NOT NULL, hash TEXT NOT NULL, parent TEXT, created_ms INTEGER NOT NULL,"
    " expires_ms INTEGER, used_ms INTEGER) WITHOUT ROWID;"
    "CREATE INDEX credentials_parent ON credentials (parent);",
    /* 4: demo rows (--seed-demo) and results excluded from the charts; the series' covering
     * indexes gain excluded, which the series leaves out */
    "ALTER TABLE results ADD COLUMN demo INTEGER NOT NULL DEFAULT 0 CHECK (demo IN (0, 1));"
    "ALTER TABLE results ADD COLUMN excluded INTEGER NOT NULL DEFAULT 0"
    " CHECK (excluded IN (0, 1));"
    "DROP INDEX IF EXISTS results_time;"
    "DROP INDEX IF EXISTS results_probe_time;"
    "CREATE INDEX results_time ON results"
    " (time_ms, status, download_bps, upload_bps, ping_ms, jitter_ms, excluded);"
    "CREATE INDEX results_probe_time ON results"
    " (probe, time_ms, status, download_bps, upload_bps, ping_ms, jitter_ms, excluded);",
    /* 5: a version per setting (compare-and-set edits), and the changes log that the feed of
     * other processes on this file follows (deletes, exclusions, settings; results by seq) */
    "ALTER TABLE settings ADD COLUMN version INTEGER NOT NULL DEFAULT 1;"
    "CREATE TABLE changes (n INTEGER PRIMARY KEY, kind TEXT NOT NULL"
    " CHECK (kind IN ('d', 'x', 's')), id TEXT, count INTEGER NOT NULL,"
    " max_seq INTEGER NOT NULL);",
    /* 6: hourly and daily rollups per probe (store_rollup.c), the (probe, hour) buckets whose
     * raw rows changed since they were rolled, marked by triggers in the changing transaction,
     * and every bucket of the rows already stored marked so */
    /* clang-format off */
    "CREATE TABLE rollups (step_ms INTEGER NOT NULL, t_ms INTEGER NOT NULL, probe TEXT NOT NULL,"
    " n INTEGER NOT NULL, failed INTEGER NOT NULL," DST_STORE_SQL_ROLLUP_MEASURES_SQLITE
    " PRIMARY KEY (step_ms, t_ms, probe)) WITHOUT ROWID;"
    "CREATE TABLE rollup_dirty (probe TEXT NOT NULL, t_ms INTEGER NOT NULL,"
    " PRIMARY KEY (probe, t_ms)) WITHOUT ROWID;"
    "CREATE TRIGGER results_dirty_ins AFTER INSERT ON results BEGIN"
    " INSERT OR IGNORE INTO rollup_dirty VALUES (NEW.probe, " DST_STORE_SQL_HOUR("NEW.time_ms") ");"
    " END;"
    "CREATE TRIGGER results_dirty_del AFTER DELETE ON results BEGIN"
    " INSERT OR IGNORE INTO rollup_dirty VALUES (OLD.probe, " DST_STORE_SQL_HOUR("OLD.time_ms") ");"
    " END;"
    "CREATE TRIGGER results_dirty_upd AFTER UPDATE ON results BEGIN"
    " INSERT OR IGNORE INTO rollup_dirty VALUES (OLD.probe, " DST_STORE_SQL_HOUR("OLD.time_ms") ");"
    " INSERT OR IGNORE INTO rollup_dirty VALUES (NEW.probe, " DST_STORE_SQL_HOUR("NEW.time_ms") ");"
    " END;"
    "INSERT OR IGNORE INTO rollup_dirty SELECT probe, " DST_STORE_SQL_HOUR("time_ms") " FROM results;",
    /* clang-format on */
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* ---- connections and their statement caches ---- */

int sqlite_store_fail(struct sqlite_store_conn *c, const char *what)
{
    dst_error("store: sqlite %s: %s", what, c && c->db ? sqlite3_errmsg(c->db) : "out of memory");
    if (c && c->db && (sqlite3_errcode(c->db) & 0xff) == SQLITE_FULL)
        return DST_ENOSPC;
    return DST_EDEP;
}

/* The bytes an unprivileged writer may still use on the file system of the file. */
static uint64_t avail_bytes(const struct sqlite_store *s)
{
    struct statvfs v;

    if (s->memory || statvfs(s->path, &v) != 0)
        return UINT64_MAX;
    return (uint64_t)v.f_bavail * v.f_frsize;
}

void sqlite_store_note_write(struct sqlite_store *s, int rc)
{
    if (rc == DST_ENOSPC) {
        atomic_store(&s->full_avail, avail_bytes(s));
        atomic_store(&s->full, true);
    } else if (rc == 0 && atomic_load(&s->full)) {
        atomic_store(&s->full, false);
        dst_info("store: %s: writes work again", s->path);
    }
}

int sqlite_store_full_check(struct sqlite_store *s)
{
    if (!atomic_load(&s->full) || avail_bytes(s) > atomic_load(&s->full_avail))
        return 0;
    return DST_ENOSPC;
}

void sqlite_store_conn_close(struct sqlite_store_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < STMT_CACHE; i++) {
        sqlite3_finalize(c->cache[i].st);
        free(c->cache[i].sql);
    }
    if (sqlite3_close(c->db) != SQLITE_OK)
        sqlite_store_fail(c, "close");
    free(c);
}

int sqlite_store_conn_open(const char *path, bool writer, struct sqlite_store_conn **out)
{
    int flags = SQLITE_OPEN_NOMUTEX |
                (writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY);
    struct sqlite_store_conn *c = dst_xnew(struct sqlite_store_conn);
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
        rc = sqlite_store_fail(c, "pragma");
out:
    if (rc)
        sqlite_store_conn_close(c);
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

int sqlite_store_stmt_get(struct sqlite_store_conn *c, const char *sql, sqlite3_stmt **out)
{
    struct sqlite_store_cached *slot = NULL;
    size_t len;
    uint64_t h = hash_sql(sql, &len);
    bool clash = false;

    for (int i = 0; i < STMT_CACHE; i++) {
        struct sqlite_store_cached *e = &c->cache[i];
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
        return sqlite_store_fail(c, "prepare");
    if (slot) {
        sqlite3_finalize(slot->st);
        free(slot->sql);
        *slot = (struct sqlite_store_cached){dst_xstrdup(sql), len, h, st, true, ++c->tick};
    }
    *out = st;
    return 0;
}

void sqlite_store_stmt_put(struct sqlite_store_conn *c, sqlite3_stmt *st)
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

int sqlite_store_exec_cached(struct sqlite_store_conn *c, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite_store_stmt_get(c, sql, &st);
    if (rc == 0 && sqlite3_step(st) != SQLITE_DONE)
        rc = sqlite_store_fail(c, sql);
    sqlite_store_stmt_put(c, st);
    return rc;
}

void sqlite_store_rollback(struct sqlite_store_conn *c)
{
    if (!sqlite3_get_autocommit(c->db))
        sqlite_store_exec_cached(c, "ROLLBACK");
}

int sqlite_store_reader_get(struct sqlite_store *s, struct sqlite_store_conn **out)
{
    struct sqlite_store_conn *c;

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
    return sqlite_store_conn_open(s->path, false, out);
}

void sqlite_store_reader_put(struct sqlite_store *s, struct sqlite_store_conn *c)
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
    sqlite_store_conn_close(c);
}

/* ---- open, migrate, close ---- */

static int schema_read(struct sqlite_store_conn *c, int *version)
{
    sqlite3_stmt *st = NULL;
    int rc =
        sqlite_store_stmt_get(c, "SELECT coalesce(max(version), 0) FROM schema_migrations", &st);
    if (rc == 0 && sqlite3_step(st) != SQLITE_ROW)
        rc = sqlite_store_fail(c, "read schema version");
    if (rc == 0)
        *version = sqlite3_column_int(st, 0);
    sqlite_store_stmt_put(c, st);
    return rc;
}

/* Applies migration v (to version v + 1) unless another process did; in one transaction. */
static int migrate_one(struct sqlite_store *s, int v, int *now_at)
{
    struct sqlite_store_conn *c = s->writer;
    sqlite3_stmt *st = NULL;
    int rc = sqlite_store_exec_cached(c, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    rc = schema_read(c, now_at);
    if (rc || *now_at != v)
        goto out;
    if (sqlite3_exec(c->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
        rc = sqlite_store_fail(c, "migrate");
        goto out;
    }
    rc = sqlite_store_stmt_get(
        c, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", &st);
    if (rc)
        goto out;
    sqlite3_bind_int(st, 1, v + 1);
    sqlite3_bind_int64(st, 2, dst_datetime_now_ms());
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sqlite_store_fail(c, "migrate");
    *now_at = v + 1;
out:
    sqlite_store_stmt_put(c, st);
    rc = rc ? rc : sqlite_store_exec_cached(c, "COMMIT");
    if (rc)
        sqlite_store_rollback(c);
    return rc;
}

static int migrate(struct sqlite_store *s)
{
    int v = 0, rc;

    if (sqlite3_exec(s->writer->db,
                     "CREATE TABLE IF NOT EXISTS schema_migrations"
                     " (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
                     NULL, NULL, NULL) != SQLITE_OK)
        return sqlite_store_fail(s->writer, "create schema_migrations");
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

void sqlite_store_close(struct dst_store *base)
{
    struct sqlite_store *s = (struct sqlite_store *)base;

    while (s->idle) {
        struct sqlite_store_conn *c = s->idle;
        s->idle = c->next;
        sqlite_store_conn_close(c);
    }
    sqlite_store_conn_close(s->writer);
    pthread_mutex_destroy(&s->wlock);
    pthread_mutex_destroy(&s->plock);
    free(s->path);
    free(s);
}

int sqlite_store_open(const char *rest, struct dst_store **out)
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
    int rc = sqlite_store_conn_open(s->path, true, &s->writer);
    rc = rc ? rc : migrate(s);
    if (rc) {
        sqlite_store_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}

int sqlite_store_schema_version(struct dst_store *base)
{
    return ((struct sqlite_store *)base)->schema_version;
}
