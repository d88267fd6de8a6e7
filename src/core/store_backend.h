/* store_backend.h - what a store backend implements (for store_*.c only) */
#ifndef DST_STORE_BACKEND_H
#define DST_STORE_BACKEND_H

#include "store.h"
#include "store_sql.h"

/* A row as values, cols[0 .. n) (text borrowed for the call); non-zero stops and is returned. */
typedef int (*dst_store_vals_fn)(const struct dst_store_sql_val *cols, int n, void *arg);

struct dst_store_tx; /* a backend's connection inside a write transaction */

/*
 * What a SQL backend gives the shared code of store_rollup.c: statements written once with "?"
 * placeholders (PostgreSQL numbers them), run inside a write transaction or on a reader.
 */
struct dst_store_tx_ops {
    enum dst_store_sql_dialect dialect;
    /* a connection in a write transaction (SQLite: BEGIN IMMEDIATE, the writer held) */
    int (*begin)(struct dst_store *s, struct dst_store_tx **out);
    /* runs sql in tx; row (may be NULL) for each row; *changes (may be NULL): rows changed */
    int (*exec)(struct dst_store_tx *tx, const char *sql, const struct dst_store_sql_val *args,
                int nargs, dst_store_vals_fn row, void *arg, int64_t *changes);
    /* commits (or rolls back) and gives the connection back; an error rolls back */
    int (*end)(struct dst_store_tx *tx, bool commit);
    /* runs a read on a reader, outside any transaction (one statement: one snapshot) */
    int (*read)(struct dst_store *s, const char *sql, const struct dst_store_sql_val *args,
                int nargs, dst_store_vals_fn row, void *arg);
};

struct dst_store_feed;

struct dst_store_ops {
    const char *scheme; /* "sqlite", "postgresql" */
    /* rest: the URL after "sqlite:"; PostgreSQL's is the whole URL (libpq reads it) */
    int (*open)(const char *rest, struct dst_store **out);
    void (*close)(struct dst_store *s);
    int (*schema_version)(struct dst_store *s);
    int (*insert)(struct dst_store *s, struct dst_result *rs, size_t n, bool *created);
    /* dst_store_insert_bulk; NULL: the backend's insert serves */
    int (*insert_bulk)(struct dst_store *s, const struct dst_result *rs, size_t n,
                       int64_t *created);
    /* dst_store_analyze; NULL: nothing to do */
    int (*analyze)(struct dst_store *s);
    int (*get)(struct dst_store *s, const char *id, struct dst_result *r);
    int (*query)(struct dst_store *s, const struct dst_store_query *q, dst_store_row_fn fn,
                 void *ud);
    int (*count)(struct dst_store *s, const struct dst_store_query *q, int64_t *out);
    int (*version)(struct dst_store *s, uint64_t *out);
    /* deletes q's rows (checked by store.c) in one transaction; *count: how many */
    int (*delete_where)(struct dst_store *s, const struct dst_store_query *q, int64_t *count);
    /* sets id's (normalised) excluded flag; *matched: whether the row exists */
    int (*set_excluded)(struct dst_store *s, const char *id, bool excluded, bool *matched);
    int (*series)(struct dst_store *s, const struct dst_series_query *q,
                  struct dst_series_bucket **out, size_t *n);
    int (*probes)(struct dst_store *s, struct dst_probe_info **out, size_t *n);
    int (*ping)(struct dst_store *s);
    const struct dst_store_tx_ops *tx; /* the rollups and retention (store_rollup.c) */
    /* a setting's JSON text (malloc'd, *out set only on success; DST_ENOTFOUND) and version */
    int (*setting_get)(struct dst_store *s, const char *key, char **out, int64_t *version);
    /* its compare-and-set put, as dst_store_setting_put (version not NULL) */
    int (*setting_put)(struct dst_store *s, const char *key, const char *json, int64_t now_ms,
                       int64_t expected, int64_t *version);
    /* starts the feed's thread, which reports through dst_store_feed_emit(f, ...); stops it */
    int (*feed_start)(struct dst_store *s, struct dst_store_feed *f);
    void (*feed_stop)(struct dst_store *s);
    int (*setting_each)(struct dst_store *s, dst_store_setting_fn fn, void *ud);
    /* credentials, as in store.h (ids and kinds already checked by store.c) */
    int (*cred_add)(struct dst_store *s, const struct dst_store_cred *c);
    int (*cred_get)(struct dst_store *s, const char *id, struct dst_store_cred *out);
    int (*cred_list)(struct dst_store *s, const char *kind, struct dst_store_cred **out, size_t *n);
    int (*cred_delete)(struct dst_store *s, const char *id, bool *deleted);
    int (*cred_touch)(struct dst_store *s, const char *id, int64_t used_ms);
    int (*cred_purge)(struct dst_store *s, int64_t now_ms);
    /* dst_store_backup (dest checked by store.c); NULL: the backend has none */
    int (*backup)(struct dst_store *s, const char *dest);
};

/* Every backend's struct starts with this. */
struct dst_store {
    const struct dst_store_ops *ops;
    struct dst_store_feed *feed; /* the running feed, or NULL (store_feed.c) */
};

/* The feed's subscriber (store_feed.c). */
struct dst_store_feed {
    struct dst_store *s;
    dst_store_change_fn fn;
    void *ud;
};

/*
 * What a backend's feed thread calls for each change: a DST_STORE_CH_RESULT may come with
 * only its seq (result NULL): the row is read here (and left out when it is gone).
 */
void dst_store_feed_emit(struct dst_store_feed *f, const struct dst_store_change *c);

extern const struct dst_store_ops dst_store_sqlite_ops;
extern const struct dst_store_ops dst_store_pg_ops;

/* Whether libpq can read url (its reason in err otherwise): DST_EINVAL, without connecting. */
int dst_store_pg_url_check(const char *url, char *err, size_t errlen);

#endif
