/* store_pg_priv.h - what the PostgreSQL store (store_pg*.c) shares */
#ifndef DST_STORE_PG_PRIV_H
#define DST_STORE_PG_PRIV_H

/*
 * Private to the module: only store_pg.c (the writes and reads), store_pg_cred.c (credentials),
 * store_pg_conn.c (the connection pool, reconnects, prepared statements), store_pg_group.c
 * (group commit of single inserts), store_pg_schema.c (migrations, open and close) and
 * store_pg_listen.c (the feed) include this. It includes <libpq-fe.h> because the structs hold
 * PGconn handles; these files are the only ones that see libpq.
 */

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/store_backend.h"
#include "core/store_sql.h"

#define PG_STMT_CACHE 48 /* prepared statements kept per connection (least recently used goes) */

struct pg_store_cached {
    char *sql; /* the text as the caller gave it (NULL: free slot) */
    uint64_t hash;
    uint64_t used; /* for least-recently-used eviction */
    char name[16]; /* the server-side name, "s<n>" */
};

/* One connection of the pool, with the statements prepared on it. */
struct pg_store_conn {
    PGconn *pg;
    struct pg_store_conn *next; /* in the idle list */
    uint64_t tick, nprepared;
    struct pg_store_cached cache[PG_STMT_CACHE];
};

/* The single-result inserts waiting to be written together (store_pg_group.c). */
struct pg_group {
    pthread_mutex_t lock;
    pthread_cond_t cond;                /* an insert was written, or the writer is free */
    struct pg_group_item *head, **tail; /* queued, not yet taken by a writer */
    bool writing;                       /* a caller is writing a group */
};

struct pg_store {
    struct dst_store base;
    char *url;
    pthread_mutex_t lock; /* the idle list and down */
    struct pg_store_conn *idle;
    int nidle;
    bool down; /* the last connect failed (logged once, until one succeeds) */
    int schema_version;
    struct pg_listen *listen; /* the feed's LISTEN, while it runs (store_pg_listen.c) */
    struct pg_group group;
};

/* ---- the bulk insert (store_pg_bulk.c) ---- */

/* The store's insert_bulk and analyze ops (store_backend.h). */
int pg_store_insert_bulk(struct dst_store *base, const struct dst_result *rs, size_t n,
                         int64_t *created);
int pg_store_analyze(struct dst_store *base);

/* ---- the pool (store_pg_conn.c) ---- */

/*
 * A connection for one operation: an idle one that the server has not closed meanwhile, or a
 * new one. DST_EDEP (logged once per outage) when the server cannot be reached.
 */
int pg_store_conn_get(struct pg_store *s, struct pg_store_conn **out);

/*
 * Gives back what pg_store_conn_get handed out: idles it, or closes it when it broke or is
 * inside a transaction (a broken one also drops the idle ones: they met the same restart).
 * Accepts NULL.
 */
void pg_store_conn_put(struct pg_store *s, struct pg_store_conn *c);

/* Closes every idle connection (at close). */
void pg_store_pool_free(struct pg_store *s);

/*
 * Logs what failed with PostgreSQL's message (res's, else the connection's), saying so when
 * the connection was lost (the next operation reconnects); returns DST_ENOSPC when the server
 * ran out of disk (SQLSTATE 53100, "could not extend file"), else DST_EDEP.
 */
int pg_store_fail(struct pg_store_conn *c, const char *what, const PGresult *res);

/* ---- statements ---- */

/* What a row callback of pg_store_read_each returns to stop at the first row. */
#define PG_FOUND 1

/* Column k of row i of res as the value it holds; text is borrowed from res. */
struct dst_store_sql_val pg_store_val(const PGresult *res, int i, int k);

/*
 * Runs sql (SQLite's "?" placeholders are taken too) prepared on c with args bound, and waits
 * for the whole result; *out (PQclear it) is set on success only. DST_EDEP on any failure.
 */
int pg_store_exec(struct pg_store_conn *c, const char *sql, const struct dst_store_sql_val *args,
                  int nargs, PGresult **out);

/*
 * Runs sql on a pooled connection and calls row(res, i, arg) for each row i as it arrives
 * until it returns non-zero; returns that value, 0 after the last row, or DST_EDEP.
 */
int pg_store_read_each(struct pg_store *s, const char *sql, const struct dst_store_sql_val *args,
                       int nargs, int (*row)(const PGresult *, int, void *), void *arg);

/* Runs one write on a pooled connection; *changes (may be NULL): the rows it changed. */
int pg_store_write(struct pg_store *s, const char *sql, const struct dst_store_sql_val *args,
                   int nargs, int *changes);

/*
 * Inserts rs[0 .. n) on c in one statement (ON CONFLICT (id) DO NOTHING, atomic); seqs[i] is
 * each new row's seq, 0 where the id was stored already. DST_EDEP or DST_ENOSPC on failure.
 */
int pg_store_insert_rows(struct pg_store_conn *c, const struct dst_result *rs, size_t n,
                         int64_t now, int64_t *seqs);

/* ---- group commit of single inserts (store_pg_group.c) ---- */

void pg_group_init(struct pg_group *g);
void pg_group_release(struct pg_group *g);

/*
 * Inserts r together with the single inserts of other threads waiting at the same time, in one
 * statement; returns once that statement committed, with r's new seq in *seq (0 if its id was
 * stored already). The errors of pg_store_insert_rows.
 */
int pg_group_insert(struct pg_store *s, const struct dst_result *r, int64_t *seq);

/* ---- credentials (store_pg_cred.c): the ops of the same names ---- */

int pg_cred_add(struct dst_store *base, const struct dst_store_cred *c);
int pg_cred_get(struct dst_store *base, const char *id, struct dst_store_cred *out);
int pg_cred_list(struct dst_store *base, const char *kind, struct dst_store_cred **out, size_t *n);
int pg_cred_delete(struct dst_store *base, const char *id, bool *deleted);
int pg_cred_touch(struct dst_store *base, const char *id, int64_t used_ms);
int pg_cred_purge(struct dst_store *base, int64_t now_ms);

/* ---- the feed (store_pg_listen.c): the ops of the same names ---- */

int pg_feed_start(struct dst_store *base, struct dst_store_feed *f);
void pg_feed_stop(struct dst_store *base);

/* ---- open, migrate, close (store_pg_conn.c): the ops of the same names ---- */

int pg_store_open(const char *url, struct dst_store **out);
void pg_store_close(struct dst_store *base);
int pg_store_schema_version(struct dst_store *base);

#endif
