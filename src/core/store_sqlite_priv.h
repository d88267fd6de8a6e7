/* store_sqlite_priv.h - what the SQLite store (store_sqlite.c) and its connections share */
#ifndef DST_STORE_SQLITE_PRIV_H
#define DST_STORE_SQLITE_PRIV_H

/*
 * Private to the module: only store_sqlite.c (the writes and reads), store_sqlite_conn.c
 * (the schema, the connections and their statement caches, open and close),
 * store_sqlite_cred.c (credentials) and store_sqlite_backup.c (the online backup) include this.
 * It includes <sqlite3.h> because the structs hold sqlite3 and sqlite3_stmt handles; these
 * files are the only ones that see SQLite.
 */

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/store_backend.h"
#include "core/store_sql.h"

#define STMT_CACHE 32 /* prepared statements kept per connection (least recently used goes) */

struct sqlite_store_cached {
    char *sql;
    size_t len;
    uint64_t hash;
    sqlite3_stmt *st;
    bool busy;     /* handed out; a nested user of the same SQL gets a fresh statement */
    uint64_t used; /* for least-recently-used eviction */
};

struct sqlite_store_conn {
    sqlite3 *db;
    struct sqlite_store_conn *next; /* in the idle list */
    uint64_t tick;
    struct sqlite_store_cached cache[STMT_CACHE];
};

struct sqlite_store {
    struct dst_store base;
    char *path;
    bool memory;           /* ":memory:": the writer serves reads too, under wlock */
    pthread_mutex_t wlock; /* the writer connection (recursive: row callbacks may re-enter) */
    struct sqlite_store_conn *writer;
    pthread_mutex_t plock; /* the idle readers */
    struct sqlite_store_conn *idle;
    int nidle;
    int schema_version;
    struct sqlite_feed *feed;         /* the feed's follower, while it runs (store_sqlite_feed.c) */
    atomic_bool full;                 /* the last write failed with SQLITE_FULL */
    atomic_uint_least64_t full_avail; /* the bytes free then: ping waits until there are more */
};

/* ---- connections and their statement caches ---- */

/* A connection of its own to path (writer: read-write, created, WAL), and its close. */
int sqlite_store_conn_open(const char *path, bool writer, struct sqlite_store_conn **out);
void sqlite_store_conn_close(struct sqlite_store_conn *c);

/*
 * Logs what failed with SQLite's message; returns DST_ENOSPC when the disk is full
 * (SQLITE_FULL), else DST_EDEP.
 */
int sqlite_store_fail(struct sqlite_store_conn *c, const char *what);

/* Records a write's outcome rc: whether the disk was full (for ping), or no longer is. */
void sqlite_store_note_write(struct sqlite_store *s, int rc);

/*
 * DST_ENOSPC while the last write failed for want of space and no space was freed since (the
 * file system's free bytes have not grown); else 0. For ping: reading works on a full disk.
 */
int sqlite_store_full_check(struct sqlite_store *s);

/*
 * A reset statement for sql: the cached one, else a new one that is cached in the least
 * recently used free slot. A statement of the same text still in use (a call from inside a
 * row callback) gets an uncached copy. Give it back with sqlite_store_stmt_put.
 */
int sqlite_store_stmt_get(struct sqlite_store_conn *c, const char *sql, sqlite3_stmt **out);

/* Resets a cached st for its next user, or finalizes an uncached one; accepts NULL. */
void sqlite_store_stmt_put(struct sqlite_store_conn *c, sqlite3_stmt *st);

/* Runs one statement without results (BEGIN, COMMIT, ...) from the cache. */
int sqlite_store_exec_cached(struct sqlite_store_conn *c, const char *sql);

/* Rolls back the open transaction, if a failed statement has not ended it already. */
void sqlite_store_rollback(struct sqlite_store_conn *c);

/* A connection for reading: an idle reader, a new one, or (":memory:") the locked writer. */
int sqlite_store_reader_get(struct sqlite_store *s, struct sqlite_store_conn **out);

/* Gives back what sqlite_store_reader_get handed out (idles or closes it); accepts NULL. */
void sqlite_store_reader_put(struct sqlite_store *s, struct sqlite_store_conn *c);

/* ---- statements (store_sqlite.c) ---- */

/* What a row callback of sqlite_store_read_each returns to stop at the first row. */
#define FOUND 1

/* Binds args to st's parameters 1 .. n (text is bound without a copy). */
void sqlite_store_bind(sqlite3_stmt *st, const struct dst_store_sql_val *args, int n);

/*
 * Runs sql (with args[0 .. nargs) bound) on a reader and calls row(st, arg) for each row until
 * it returns non-zero; returns that value, 0 after the last row, or DST_EDEP.
 */
int sqlite_store_read_each(struct sqlite_store *s, const char *sql,
                           const struct dst_store_sql_val *args, int nargs,
                           int (*row)(sqlite3_stmt *, void *), void *arg);

/* Runs one write statement on the writer; *changes (may be NULL): the rows it changed. */
int sqlite_store_write(struct sqlite_store *s, const char *sql,
                       const struct dst_store_sql_val *args, int nargs, int *changes);

/* ---- credentials (store_sqlite_cred.c): the ops of the same names ---- */

int sqlite_cred_add(struct dst_store *base, const struct dst_store_cred *c);
int sqlite_cred_get(struct dst_store *base, const char *id, struct dst_store_cred *out);
int sqlite_cred_list(struct dst_store *base, const char *kind, struct dst_store_cred **out,
                     size_t *n);
int sqlite_cred_delete(struct dst_store *base, const char *id, bool *deleted);
int sqlite_cred_touch(struct dst_store *base, const char *id, int64_t used_ms);
int sqlite_cred_purge(struct dst_store *base, int64_t now_ms);

/* ---- the feed's follower (store_sqlite_feed.c): the ops of the same names ---- */

int sqlite_feed_start(struct dst_store *base, struct dst_store_feed *f);
void sqlite_feed_stop(struct dst_store *base);
/* After a change through this handle: the follower looks at once. Fine without a feed. */
void sqlite_feed_poke(struct sqlite_store *s);

/* ---- the online backup (store_sqlite_backup.c): dst_store_backup ---- */

int sqlite_store_backup(struct dst_store *base, const char *dest);

/* ---- open, migrate, close: the ops of the same names ---- */

int sqlite_store_open(const char *rest, struct dst_store **out);
void sqlite_store_close(struct dst_store *base);
int sqlite_store_schema_version(struct dst_store *base);

#endif
