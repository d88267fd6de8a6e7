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

/*
 * For copies and imports: inserts results as dst_store_insert does (atomic, durable, ids
 * already stored skipped) on the backend's fastest path (PostgreSQL: COPY into a temporary
 * table, then one INSERT from it; store_pg_bulk.c), telling only how many were new in
 * *created: no seqs, no created flags. The feed tells the new rows as from dst_store_insert.
 */
int dst_store_insert_bulk(struct dst_store *s, struct dst_result *rs, size_t n, int64_t *created);

/*
 * After a bulk load (copies, imports): refreshes what the backend's planner knows of the
 * tables (PostgreSQL: ANALYZE; autovacuum may take minutes to get there, and until then a
 * series over a freshly copied year was measured about 4 times slower). 0 or DST_EDEP.
 */
int dst_store_analyze(struct dst_store *s);

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
    bool raw;               /* from the raw rows only, never the rollups (the contract tests) */
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
 * Buckets the results of [from, to) by step (excluded ones left out), with min/avg/max over ok
 * results and counts of ok and failed ones. Only non-empty buckets are returned, oldest first;
 * *out is malloc'd (caller frees), *n its length. DST_EINVAL if step <= 0, to <= from, or more
 * than 100000 buckets would be needed.
 * When step and from are whole UTC days (or hours), the answer comes from the daily (hourly)
 * rollups where they are up to date, and from the raw rows elsewhere (buckets changed since
 * they were rolled, the part of [from, to) after the last whole rollup): the same counts, min
 * and max as from the raw rows alone, and the same avg but for the order of the float sums.
 * It also covers raw rows pruned by dst_store_prune_raw (which keeps their rollups).
 */
int dst_store_series(struct dst_store *s, const struct dst_series_query *q,
                     struct dst_series_bucket **out, size_t *n);

/* ---- rollups and retention (store_rollup.c) ---- */

#define DST_ROLLUP_HOUR_MS 3600000LL
#define DST_ROLLUP_DAY_MS  86400000LL

/* The measures a rollup keeps, in struct dst_rollup's m[] order. */
enum dst_rollup_measure { DST_RM_DOWNLOAD, DST_RM_UPLOAD, DST_RM_PING, DST_RM_JITTER, DST_RM_LOSS };
#define DST_ROLLUP_NMEASURES 5

/*
 * One probe's results of one UTC hour or day (excluded ones left out): count, failed ones, and
 * per measure over the ok results that have it: how many (n), min, max, sum (so an average over
 * any union of buckets is exact) and the nearest-rank p50 and p90 (the value at rank
 * ceil(p / 100 * n) in ascending order; exact for this bucket, not combinable). NAN when n is 0.
 */
struct dst_rollup_stat {
    int64_t n;
    double min, max, sum, p50, p90;
};

struct dst_rollup {
    int64_t step_ms; /* DST_ROLLUP_HOUR_MS or DST_ROLLUP_DAY_MS */
    int64_t t_ms;    /* the bucket's start */
    char *probe;
    int64_t count, failed;
    struct dst_rollup_stat m[DST_ROLLUP_NMEASURES];
};

/*
 * The stored rollups of step with start in [from, to), of probe (NULL: all), by time then
 * probe; *out is the caller's (dst_store_rollups_free). They may lag behind the raw rows until
 * dst_store_roll has run. DST_EINVAL for another step.
 */
int dst_store_rollups(struct dst_store *s, int64_t step_ms, int64_t from_ms, int64_t to_ms,
                      const char *probe, struct dst_rollup **out, size_t *n);
void dst_store_rollups_free(struct dst_rollup *r, size_t n);

/*
 * Recomputes the rollups of up to max_days (probe, day) pairs whose raw rows changed (inserts,
 * deletes, exclusions mark their hour in the same transaction), each pair in one transaction
 * from its raw rows; *rolled: how many were rolled, *more: whether changed ones remain. A
 * change to a day whose raw rows were pruned already (a result that arrives later than the raw
 * retention) is folded into the kept rollups: count, failed, n, min, max and sum stay exact,
 * p50 and p90 keep the values of the rows rolled before (the new rows' own when there were
 * none), and the late raw rows are pruned. Safe to run in several processes at once.
 */
int dst_store_roll(struct dst_store *s, int max_days, int64_t *rolled, bool *more);

/*
 * Prunes the raw results of the oldest UTC day that has some and ends at or before before_ms,
 * in one transaction, if that day is rolled (else nothing: roll first); its rollups stay and
 * dst_store_series answers from them. *pruned: results deleted; *more: whether another day is
 * due. Changes the version when a row was deleted.
 */
int dst_store_prune_raw(struct dst_store *s, int64_t before_ms, int64_t *pruned, bool *more);

/* Deletes the rollups of buckets that end at or before before_ms; *pruned: how many. */
int dst_store_prune_rollups(struct dst_store *s, int64_t before_ms, int64_t *pruned);

/* ---- rollups as they are, for copies (store_rollup_copy.c) ---- */

/* dst_store_raw_pruned's answer when raw results were never pruned. */
#define DST_STORE_NEVER_PRUNED (-INT64_MAX)

/*
 * Up to max stored rollups of both steps in (step, t, probe) order, after the one whose key
 * after holds (NULL: from the first), into *out (the caller's: dst_store_rollups_free) and *n
 * (0: no more). One statement, one snapshot per page.
 */
int dst_store_rollups_page(struct dst_store *s, const struct dst_rollup *after, size_t max,
                           struct dst_rollup **out, size_t *n);

/* The number of stored rollups of both steps. */
int dst_store_rollups_count(struct dst_store *s, int64_t *n);

/*
 * How far dst_store_prune_raw went: raw results before *ms (a UTC day boundary) were pruned
 * (their rollups kept); DST_STORE_NEVER_PRUNED when never.
 */
int dst_store_raw_pruned(struct dst_store *s, int64_t *ms);

/*
 * Puts the rollups r[0 .. n) as they are (every figure, p50 and p90 too), in one transaction:
 * one whose (step, t, probe) is stored already is skipped (so a copy is idempotent), and the
 * raw retention's mark is raised to raw_pruned_ms when that is later (DST_STORE_NEVER_PRUNED:
 * left). With the mark a result that comes later for a day pruned on the source is folded into
 * the copied rollup by dst_store_roll, not rolled from the raw rows alone (which would replace
 * it). n may be 0 (the mark only). *created (may be NULL): how many were new. DST_EINVAL for a
 * step other than an hour or a day, a t not on its step's boundary, an empty probe or a count
 * below failed (nothing is put).
 */
int dst_store_rollups_put(struct dst_store *s, const struct dst_rollup *r, size_t n,
                          int64_t raw_pruned_ms, int64_t *created);

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
 * Small named JSON documents kept beside the results (the schedules, say): one value per key,
 * each with a version that every put steps (1 after the first), for compare-and-set edits.
 * dst_store_setting_get sets *out to a new reference (caller decrefs) and *version (may be
 * NULL) to its version, only on success; DST_ENOTFOUND if the key was never put, DST_EDEP if
 * the stored text is not JSON (logged).
 * dst_store_setting_put replaces the key's value (any JSON value, borrowed) atomically, if its
 * version is expected now (0: the key must not exist yet; DST_STORE_ANY_VERSION: whatever it
 * is): compare and set in one statement or transaction, so of two puts with the same expected
 * version exactly one succeeds. Sets *version (may be NULL) to the new version; on a stale
 * expected version nothing changes, the result is DST_ECONFLICT and *version the current one
 * (0 when the key does not exist). Keys are 1 to 128 bytes: DST_EINVAL otherwise.
 * Every setting a user edits (the schedules; the thresholds once they live in the store) goes
 * through this one mechanism: a read gives the version, a write sends it back.
 */
#define DST_STORE_ANY_VERSION (-1)
int dst_store_setting_get(struct dst_store *s, const char *key, json_t **out, int64_t *version);
int dst_store_setting_put(struct dst_store *s, const char *key, const json_t *value,
                          int64_t expected, int64_t *version);

/* ---- the change feed ---- */

enum dst_store_change_kind {
    DST_STORE_CH_RESULT,   /* a result was stored: seq and result */
    DST_STORE_CH_DELETED,  /* count results were deleted; id: the one, when deleted by id */
    DST_STORE_CH_EXCLUDED, /* the result id's excluded flag was set (count: 1) */
    DST_STORE_CH_SETTING,  /* the setting id was put; version: its new version */
    DST_STORE_CH_RESYNC,   /* changes may have been missed (the feed reconnected): reload all */
};

struct dst_store_change {
    enum dst_store_change_kind kind;
    int64_t seq;      /* RESULT */
    int64_t seq_last; /* RESULT from a backend: the rows seq..seq_last (each told on its own) */
    const struct dst_result *result; /* RESULT: the stored row, borrowed for the call */
    int64_t count;                   /* DELETED, EXCLUDED */
    int64_t version;                 /* SETTING */
    const char *id;                  /* DELETED (or NULL), EXCLUDED, SETTING (the key) */
};

typedef void (*dst_store_change_fn)(const struct dst_store_change *c, void *ud);

/*
 * Tells fn every change made from now on to the store, through this handle or any other in
 * any process that shares it, each once: results stored, deletes, exclusions, settings put.
 * fn runs on the feed's own thread, one call at a time, and may use the store. A result
 * deleted before its call came is left out. Order holds within a kind (results in commit
 * order), not across kinds.
 * PostgreSQL: every change sends a NOTIFY (kind and id, in the change's own statement) and the
 * feed LISTENs on a connection of its own; when that connection is lost it connects again
 * (back-off up to 2 s) and then reports DST_STORE_CH_RESYNC, as notifications were missed.
 * SQLite: a follower polls the file every 200 ms (PRAGMA data_version, then the rows past the
 * last seen and the changes log that deletes, exclusions and settings write in their
 * transaction); a change through this handle wakes it at once.
 * One feed per store: DST_EINVAL if one runs; DST_EDEP if the LISTEN (or the follower's
 * connection) cannot be set up.
 */
int dst_store_feed_start(struct dst_store *s, dst_store_change_fn fn, void *ud);
/* Stops the feed and waits for its thread (a call of fn under way ends first); fine if none. */
void dst_store_feed_stop(struct dst_store *s);

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
