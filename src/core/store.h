/* store.h - the results store: one interface; backends store_sqlite.c and store_pg.c */
#ifndef DST_STORE_H
#define DST_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "result.h"

struct dst_store;

/*
 * Opens a store by URL: "sqlite:PATH" (file, created if missing, WAL), "sqlite::memory:"
 * (private, for tests) or "postgresql://..." / "postgres://..." (libpq's URI: user, password,
 * host, port, database and ?host=/socket/dir, sslmode=... and the like; the server must be
 * reachable now). Runs pending schema migrations. DST_EINVAL on an unknown scheme or a URL
 * libpq cannot read, DST_EDEP if the backend fails (logged with its message).
 * A store is safe to use from many threads at once. When a PostgreSQL server goes away
 * (restart, network), each operation fails with DST_EDEP until it is back; the next operation
 * after that reconnects by itself.
 */
int dst_store_open(const char *url, struct dst_store **out);
void dst_store_free(struct dst_store *s);

/* Checks the URL's form without opening anything (for --check-config). */
int dst_store_url_check(const char *url, char *err, size_t errlen);

/*
 * What opening url would find out about the file system, without opening anything: for
 * "sqlite:PATH", that PATH can be created or opened for reading and writing (see
 * dst_cfg_check_file_rw). 0 for other URLs; else DST_EINVAL with the reason in err.
 */
int dst_store_url_check_path(const char *url, char *err, size_t errlen);

/* Schema version after migrations (for tests and /readyz). */
int dst_store_schema_version(struct dst_store *s);

/*
 * Inserts results atomically (all or none). A result whose id is already stored is skipped
 * (idempotent ingest); created[i] (may be NULL) tells which were new. Results must have
 * passed dst_result_validate. Sets each new row's seq in rs[i].seq.
 */
int dst_store_insert(struct dst_store *s, struct dst_result *rs, size_t n, bool *created);

/* Loads one result by id into r (initialised by the caller). DST_ENOTFOUND if absent. */
int dst_store_get(struct dst_store *s, const char *id, struct dst_result *r);

/* ---- queries ---- */

/* The columns a query may filter or sort on (a closed list: no SQL text from outside). */
enum dst_field {
    DST_F_SEQ,
    DST_F_ID,
    DST_F_TIME,
    DST_F_STATUS,
    DST_F_PROBE,
    DST_F_LOCATION,
    DST_F_USER,
    DST_F_DEVICE,
    DST_F_ENGINE,
    DST_F_DOWNLOAD,
    DST_F_UPLOAD,
    DST_F_PING,
    DST_F_PING_INT, /* ping rounded to whole ms (the original's int ServerPing) */
    DST_F_CLIENT_IP,
    DST_F_CLIENT_LAT,
    DST_F_CLIENT_LON,
    DST_F_CLIENT_ISP,
    DST_F_CLIENT_COUNTRY,
    DST_F_SERVER_HOST,
    DST_F_SERVER_LAT,
    DST_F_SERVER_LON,
    DST_F_SERVER_COUNTRY,
    DST_F_SERVER_DISTANCE,
    DST_F_SERVER_ID,
    DST_F_DEMO,     /* 0 or 1 (DST_V_INT) */
    DST_F_EXCLUDED, /* 0 or 1 (DST_V_INT) */
    DST_F_COUNT_
};

enum dst_op { DST_OP_EQ, DST_OP_GE, DST_OP_LE, DST_OP_GT, DST_OP_LT };
enum dst_val_kind { DST_V_TEXT, DST_V_INT, DST_V_REAL };

struct dst_cond {
    enum dst_field field;
    enum dst_op op;
    enum dst_val_kind kind;
    const char *s; /* DST_V_TEXT (borrowed) */
    int64_t i;     /* DST_V_INT */
    double d;      /* DST_V_REAL */
};

#define DST_QUERY_MAX_CONDS 32

/*
 * A list query: all conds AND-ed, sorted by sort (desc or not) with ties in insertion order
 * (seq ascending, like the original's stable LINQ sort), then offset/limit.
 * keyset instead orders by "time desc, seq desc" (sort and desc are ignored) for cursor paging:
 * with has_after only rows strictly after (after_time, after_seq) in that order are returned.
 */
struct dst_store_query {
    struct dst_cond conds[DST_QUERY_MAX_CONDS];
    int nconds;
    enum dst_field sort;
    bool desc;
    int64_t offset;
    int64_t limit; /* <= 0: no limit */
    bool keyset;
    bool has_after;
    int64_t after_time, after_seq;
};

/* Initialises q: no conditions, sort time desc, offset 0, no limit. */
void dst_store_query_init(struct dst_store_query *q);
/* Appends a condition; DST_ETOOBIG past DST_QUERY_MAX_CONDS. */
int dst_store_query_add(struct dst_store_query *q, struct dst_cond c);

/*
 * Called for each row in order; r is borrowed for the call only. Return 0 to go on, anything
 * else to stop (dst_store_query then returns that value).
 */
typedef int (*dst_store_row_fn)(const struct dst_result *r, void *ud);

int dst_store_query(struct dst_store *s, const struct dst_store_query *q, dst_store_row_fn fn,
                    void *ud);

/* Number of rows matching q's conditions (sort, offset and limit ignored). */
int dst_store_count(struct dst_store *s, const struct dst_store_query *q, int64_t *out);

/* ---- deleting and excluding ---- */

/* Deletes the result id. DST_ENOTFOUND if absent. Changes the version. */
int dst_store_delete(struct dst_store *s, const char *id);

/*
 * Deletes every result matching q's conditions (sort, offset, limit and cursor ignored) in one
 * transaction, and sets *count to how many; with dry_run only counts them (nothing changes).
 * A q without conditions would delete everything: DST_EINVAL unless all is true. The version
 * changes when a row was deleted.
 */
int dst_store_delete_where(struct dst_store *s, const struct dst_store_query *q, bool all,
                           bool dry_run, int64_t *count);

/*
 * Sets the result id's excluded flag: an excluded result stays stored and listed (excluded
 * true) but is left out of dst_store_series. DST_ENOTFOUND if absent. Changes the version.
 */
int dst_store_set_excluded(struct dst_store *s, const char *id, bool excluded);

/*
 * A value that changes whenever the set of stored results changes, in this process or any
 * other sharing the store; for response caches.
 */
int dst_store_version(struct dst_store *s, uint64_t *out);

/* ---- time series for charts ---- */

struct dst_series_query {
    int64_t from_ms, to_ms; /* [from, to) */
    int64_t step_ms;        /* bucket width, > 0 */
    const char *probe;      /* NULL: all probes */
};

struct dst_stat {
    double min, avg, max; /* NAN when the bucket has no ok result */
};

struct dst_series_bucket {
    int64_t t_ms; /* bucket start */
    int64_t ok, failed;
    struct dst_stat download, upload, ping, jitter;
};

/*
 * Buckets the results of [from, to) by step (excluded ones left out), with min/avg/max over ok results and counts of
 * ok and failed ones. Only non-empty buckets are returned, oldest first; *out is malloc'd
 * (caller frees), *n its length. DST_EINVAL if step <= 0, to <= from, or more than 100000
 * buckets would be needed.
 */
int dst_store_series(struct dst_store *s, const struct dst_series_query *q,
                     struct dst_series_bucket **out, size_t *n);

/* ---- probes ---- */

struct dst_probe_info {
    char *name;
    char *location;
    int64_t first_ms, last_ms; /* first and last result time */
    int64_t results, failed;
    struct dst_result last; /* the newest result */
};

/* Lists the probes seen in results, by name; caller frees with dst_store_probes_free. */
int dst_store_probes(struct dst_store *s, struct dst_probe_info **out, size_t *n);
void dst_store_probes_free(struct dst_probe_info *p, size_t n);

/* ---- settings ---- */

/*
 * Small named JSON documents kept beside the results (the schedules, say): one value per key.
 * dst_store_setting_get sets *out to a new reference (caller decrefs) only on success;
 * DST_ENOTFOUND if the key was never put, DST_EDEP if the stored text is not JSON (logged).
 * dst_store_setting_put replaces the key's value (any JSON value, borrowed) atomically.
 * Keys are 1 to 128 bytes: DST_EINVAL otherwise.
 */
int dst_store_setting_get(struct dst_store *s, const char *key, json_t **out);
int dst_store_setting_put(struct dst_store *s, const char *key, const json_t *value);

/*
 * For copies (store_copy.c, store_export.c): each setting by key, as its stored JSON text and
 * the time it was last put (both borrowed for the call); fn returns 0 to go on, anything else
 * to stop (returned). And a put of JSON text as it is with a given time: DST_EINVAL unless
 * text is JSON and the key valid.
 */
typedef int (*dst_store_setting_fn)(const char *key, const char *json, int64_t updated_ms,
                                    void *ud);
int dst_store_setting_each(struct dst_store *s, dst_store_setting_fn fn, void *ud);
int dst_store_setting_put_text(struct dst_store *s, const char *key, const char *json,
                               int64_t updated_ms);

/* ---- credentials: API tokens and browser sessions (core/cred.c gives them meaning) ---- */

/*
 * One credential. The secret itself is never stored, only its SHA-256 (hash). A session's
 * parent is the token it was opened with (revoking the token ends its sessions) or another
 * text the caller chose (e.g. for the operator's token, which is not stored). Times in ms;
 * expires_ms and used_ms 0 mean never.
 */
struct dst_store_cred {
    char *id;     /* short public id, unique */
    char *kind;   /* "token" or "session" */
    char *name;   /* what it is for, e.g. "probe attic" */
    char *scopes; /* e.g. "read,ingest" */
    char *hash;   /* hex SHA-256 of the secret */
    char *parent; /* sessions only; NULL for tokens */
    int64_t created_ms, expires_ms, used_ms;
};

/* Frees the strings of c (the struct itself is the caller's) and zeroes it; NULL is fine. */
void dst_store_cred_release(struct dst_store_cred *c);
/* Frees an array from dst_store_cred_list. */
void dst_store_creds_free(struct dst_store_cred *c, size_t n);

/* Adds c (every string but parent set). DST_ECONFLICT if its id is taken. */
int dst_store_cred_add(struct dst_store *s, const struct dst_store_cred *c);
/* Loads one by id into out (copies; release it). DST_ENOTFOUND if absent. */
int dst_store_cred_get(struct dst_store *s, const char *id, struct dst_store_cred *out);
/* Every credential of kind (NULL: all), oldest first; *out is the caller's (creds_free). */
int dst_store_cred_list(struct dst_store *s, const char *kind, struct dst_store_cred **out,
                        size_t *n);
/*
 * Deletes the credential id and every one whose parent is id (a token's sessions); *deleted
 * (may be NULL) tells whether id existed.
 */
int dst_store_cred_delete(struct dst_store *s, const char *id, bool *deleted);
/* Records a use (used_ms) of id; no error if it is gone. */
int dst_store_cred_touch(struct dst_store *s, const char *id, int64_t used_ms);
/* Deletes every credential that expired before now_ms. */
int dst_store_cred_purge(struct dst_store *s, int64_t now_ms);

/* Cheap liveness check of the backend (for /readyz). */
int dst_store_ping(struct dst_store *s);

/*
 * An online copy of the whole store into a new file dest, consistent (one snapshot) while
 * other connections and processes keep writing: SQLite's backup API in one step, written to a
 * temporary file beside dest and renamed into place once synced. SQLite files only:
 * DST_EINVAL for ":memory:" and PostgreSQL (use pg_dump), DST_ECONFLICT if dest exists,
 * DST_EIO or DST_EDEP if writing it failed (logged; nothing is left at dest).
 */
int dst_store_backup(struct dst_store *s, const char *dest);

#endif
