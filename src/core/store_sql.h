/* store_sql.h - the SQL of the results store and its row mapping, for the SQL backends */
#ifndef DST_STORE_SQL_H
#define DST_STORE_SQL_H

/*
 * Core-internal: only store backends (store_sqlite.c, store_pg.c) include this. It builds each
 * store operation's SQL text from its struct, with the values to bind in placeholder order, and
 * maps struct dst_result to and from the results columns. It knows no database library: a
 * backend binds the values and reads the columns with its own API. Schema migrations,
 * transactions and connections stay in the backends.
 */

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/store.h"

/*
 * The dialect: placeholders "?" (SQLite) or "$1, $2, ..." (PostgreSQL), and the few spellings
 * that differ. PostgreSQL text keeps SQLite's results: NULLs sort as the smallest value, text
 * compares by bytes (COLLATE "C") and sorts by ASCII case folding first, a whole-ms ping rounds
 * halves away from zero, and the INSERT returns the new row's seq (no row when the id existed).
 * (A PostgreSQL schema declares its text columns COLLATE "C" too, or no index serves them.)
 */
enum dst_store_sql_dialect { DST_SQL_SQLITE, DST_SQL_PG };

/* A value to bind, or one read from a column. */
enum dst_store_sql_type { DST_SQL_NULL, DST_SQL_TEXT, DST_SQL_INT, DST_SQL_REAL };

struct dst_store_sql_val {
    enum dst_store_sql_type type;
    union {
        const char *s; /* DST_SQL_TEXT, borrowed */
        int64_t i;     /* DST_SQL_INT */
        double d;      /* DST_SQL_REAL */
    };
};

/* The most values one statement binds: the conditions, the keyset cursor, limit and offset. */
#define DST_STORE_SQL_MAX_ARGS (DST_QUERY_MAX_CONDS + 4)

/* A built statement: its text and the values of its placeholders, in order. */
struct dst_store_sql {
    enum dst_store_sql_dialect dialect;
    struct dst_buf text; /* text.data: the NUL-terminated SQL */
    struct dst_store_sql_val args[DST_STORE_SQL_MAX_ARGS];
    int nargs;
};

void dst_store_sql_init(struct dst_store_sql *sql, enum dst_store_sql_dialect dialect);
void dst_store_sql_release(struct dst_store_sql *sql);

/*
 * Each builds one statement into sql (initialised, empty); text values are borrowed from the
 * arguments. The text is the same for the same shape of query, so it can key a statement cache.
 * DST_EINVAL if q has more than DST_QUERY_MAX_CONDS conditions or an enum out of range,
 * DST_ETOOBIG past the cap on a statement's text.
 */
/* One result by id: selects seq then the DST_STORE_SQL_NCOLS columns. */
int dst_store_sql_get(struct dst_store_sql *sql, const char *id);
/* q's rows (those columns), sorted, then offset and limit. */
int dst_store_sql_query(struct dst_store_sql *sql, const struct dst_store_query *q);
/* The number of rows matching q's conditions (keyset cursor, sort, offset and limit ignored). */
int dst_store_sql_count(struct dst_store_sql *sql, const struct dst_store_query *q);
/*
 * Deletes q's rows. SQLite: a plain DELETE (the caller counts the changes and steps the
 * counter of DST_STORE_SQL_COUNTED and writes the changes log in the same transaction);
 * PostgreSQL: one statement that also steps the counter and sends the feed's NOTIFY ("d <count>
 * <id>": the id when q is by id) when it deleted a row, and returns the number deleted.
 */
int dst_store_sql_delete(struct dst_store_sql *sql, const struct dst_store_query *q);
/* Sets the excluded flag of the row id; the same two forms as dst_store_sql_delete ("x 1 <id>"). */
int dst_store_sql_set_excluded(struct dst_store_sql *sql, const char *id, bool excluded);
/* The id q names when its one condition is "id = text" (a delete by id), else NULL. */
const char *dst_store_sql_query_id(const struct dst_store_query *q);

/*
 * The channel of the feed's notifications (PostgreSQL). Payloads, each well under NOTIFY's
 * 8000 bytes: "r <first seq> <last seq>" (the results one statement stored), "d <count> <id or
 * nothing>" (deleted), "x <count> <id>" (exclusion), "s <version> <key>" (a setting put).
 */
#define DST_STORE_SQL_CHANNEL "dstmc_store"
/*
 * The rows of q's range in time order (excluded rows left out), each: time_ms, ok (a boolean), download_bps, upload_bps,
 * ping_ms, jitter_ms; for dst_store_sql_buckets_add.
 */
int dst_store_sql_series(struct dst_store_sql *sql, const struct dst_series_query *q);
/*
 * Per probe by name: probe, first_ms, last_ms, results, failed, then its newest row as seq and
 * the DST_STORE_SQL_NCOLS columns.
 */
int dst_store_sql_probes(struct dst_store_sql *sql);

/*
 * A value that changes with every insert and every counted change (one integer, both dialects).
 * The 'deletes' counter steps once per delete or exclusion statement that changed a row
 * (DST_STORE_SQL_COUNTED), so it stays far below 2^24 and the two parts never mix.
 */
#define DST_STORE_SQL_VERSION                                    \
    "SELECT (coalesce((SELECT max(seq) FROM results), 0) << 24)" \
    " + coalesce((SELECT value FROM meta WHERE key = 'deletes'), 0)"

/* SQLite: the counter's step after a delete or exclusion, in its transaction. */
#define DST_STORE_SQL_COUNTED "UPDATE meta SET value = value + 1 WHERE key = 'deletes'"

/* A setting's value and version by key (binds key). */
#define DST_STORE_SQL_SETTING_GET "SELECT value, version FROM settings WHERE key = ?"
/*
 * A setting's compare-and-set put for an expected version (as dst_store_setting_put's): binds
 * key, value, updated_ms and, when expected > 0, expected. One row (the new version first)
 * when it was put, none when the expected version is stale. PostgreSQL's also sends the feed's
 * NOTIFY "s <version> <key>".
 */
const char *dst_store_sql_setting_put(enum dst_store_sql_dialect dialect, int64_t expected);

/*
 * SQLite's changes log (the feed's, migration 5), written in the transaction of a delete,
 * exclusion or setting put (binds kind "d", "x" or "s", id or key, count or version): each
 * row also keeps the newest seq then, as a deleted newest row's seq is taken again by the
 * next insert. Only the newest DST_STORE_SQL_CHANGES_KEPT rows are kept.
 */
#define DST_STORE_SQL_CHANGES_KEPT 1000
#define DST_STORE_SQL_CHANGE_ADD                                      \
    "INSERT INTO changes (kind, id, count, max_seq) VALUES (?, ?, ?," \
    " coalesce((SELECT max(seq) FROM results), 0))"
#define DST_STORE_SQL_CHANGE_TRIM \
    "DELETE FROM changes WHERE n <= (SELECT max(n) FROM changes) - 1000"

/* Every setting: key, value, updated_ms, by key. */
#define DST_STORE_SQL_SETTING_EACH "SELECT key, value, updated_ms FROM settings ORDER BY key"

/*
 * Credentials: the columns in SELECT order, and each statement (binds in the order named).
 * An INSERT that meets an existing id changes no row (the caller reports the conflict).
 */
#define DST_STORE_SQL_CRED_COLS \
    "id, kind, name, scopes, hash, parent, created_ms, expires_ms, used_ms"
#define DST_STORE_SQL_CRED_ADD                                                                 \
    "INSERT INTO credentials (" DST_STORE_SQL_CRED_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)" \
    " ON CONFLICT (id) DO NOTHING"
#define DST_STORE_SQL_CRED_GET "SELECT " DST_STORE_SQL_CRED_COLS " FROM credentials WHERE id = ?"
#define DST_STORE_SQL_CRED_LIST \
    "SELECT " DST_STORE_SQL_CRED_COLS " FROM credentials ORDER BY created_ms, id"
/* binds id, id */
#define DST_STORE_SQL_CRED_DELETE "DELETE FROM credentials WHERE id = ? OR parent = ?"
/* binds used_ms, id */
#define DST_STORE_SQL_CRED_TOUCH "UPDATE credentials SET used_ms = ? WHERE id = ?"
/* binds now_ms */
#define DST_STORE_SQL_CRED_PURGE \
    "DELETE FROM credentials WHERE expires_ms IS NOT NULL AND expires_ms < ?"

/* ---- rollups (store_rollup.c) ---- */

/* The start of the UTC hour of the integer expression e (ms), rounding down before 1970 too. */
#define DST_STORE_SQL_HOUR(e) "(" e " - ((" e " % 3600000) + 3600000) % 3600000)"

/* A rollup's columns per measure m: how many values, min, max, sum, p50, p90. */
#define DST_STORE_SQL_ROLLUP_M(m, i, r)                                                        \
    " " m "_n " i " NOT NULL, " m "_min " r ", " m "_max " r ", " m "_sum " r ", " m "_p50 " r \
    ", " m "_p90 " r ","
/* The measures of migration 6: download, upload, ping, jitter, loss (struct dst_rollup's order). */
#define DST_STORE_SQL_ROLLUP_MEASURES(i, r) \
    DST_STORE_SQL_ROLLUP_M("d", i, r)       \
    DST_STORE_SQL_ROLLUP_M("u", i, r)       \
    DST_STORE_SQL_ROLLUP_M("p", i, r)       \
    DST_STORE_SQL_ROLLUP_M("j", i, r) DST_STORE_SQL_ROLLUP_M("l", i, r)
#define DST_STORE_SQL_ROLLUP_MEASURES_SQLITE DST_STORE_SQL_ROLLUP_MEASURES("INTEGER", "REAL")
#define DST_STORE_SQL_ROLLUP_MEASURES_PG     DST_STORE_SQL_ROLLUP_MEASURES("bigint", "float8")

/* ---- rows ---- */

/* The results columns after seq, in SELECT and INSERT order. */
#define DST_STORE_SQL_NCOLS 35

/* The INSERT of one result, skipping an id already stored; binds dst_store_sql_insert_args. */
const char *dst_store_sql_insert(enum dst_store_sql_dialect dialect);
/*
 * PostgreSQL only: the INSERT of a batch in one statement, skipping ids already stored (also a
 * repeat inside the batch). Binds DST_STORE_SQL_NCOLS + 1 arrays, one per column of
 * dst_store_sql_insert_args in that order, each an array literal with an element per row;
 * returns (id, seq) per new row.
 */
const char *dst_store_sql_insert_many(void);
/* PostgreSQL: the names of dst_store_sql_insert_args's columns, "id, ..., received_ms". */
const char *dst_store_sql_insert_cols(void);
/*
 * Fills args[0 .. DST_STORE_SQL_NCOLS] with r's columns then received_ms; unknown values
 * (NAN, -1, NULL) are DST_SQL_NULL. Text is borrowed from r.
 */
void dst_store_sql_insert_args(const struct dst_result *r, int64_t received_ms,
                               struct dst_store_sql_val *args);

/*
 * Sets r (initialised) from one row's values of the DST_STORE_SQL_NCOLS columns, each of the type
 * the column holds (an INT for a REAL column is taken too); NULL or a value of another type leaves
 * the field unknown. Copies text.
 */
void dst_store_sql_result_from_row(const struct dst_store_sql_val *row, struct dst_result *r);

/* ---- series ---- */

/*
 * Folds the series rows, in time order, into buckets in one streaming pass: a GROUP BY on
 * (time_ms - from) / step sorts every row first, which measured 4x slower on SQLite (a year of
 * 5-minute results: ~100 ms against ~25 ms).
 */
struct dst_store_sql_buckets {
    const struct dst_series_query *q;
    struct dst_series_bucket *b; /* the finished buckets */
    size_t n, cap;
    bool open; /* the bucket being filled: its index (t - from) / step, counts and measures */
    int64_t cur, ok, failed;
    double min[4], max[4], sum[4];
    int64_t cnt[4];
};

void dst_store_sql_buckets_init(struct dst_store_sql_buckets *x, const struct dst_series_query *q);
/* Finishes the bucket being filled, if any, and opens bucket idx (for buckets_add). */
void dst_store_sql_buckets_next(struct dst_store_sql_buckets *x, int64_t idx);

/*
 * One row: v[] is download, upload, ping, jitter, NAN for NULL (read only when ok). Inline: it
 * runs for every row (out of line, a year's series took 2-3% longer).
 */
static inline void dst_store_sql_buckets_add(struct dst_store_sql_buckets *x, int64_t t_ms, bool ok,
                                             const double *v)
{
    int64_t idx = (t_ms - x->q->from_ms) / x->q->step_ms;

    if (!x->open || idx != x->cur)
        dst_store_sql_buckets_next(x, idx);
    if (!ok) {
        x->failed++;
        return;
    }
    x->ok++;
    for (int i = 0; i < 4; i++) {
        if (isnan(v[i]))
            continue;
        x->min[i] = x->cnt[i] == 0 || v[i] < x->min[i] ? v[i] : x->min[i];
        x->max[i] = x->cnt[i] == 0 || v[i] > x->max[i] ? v[i] : x->max[i];
        x->sum[i] += v[i];
        x->cnt[i]++;
    }
}

/* Finishes the last bucket and hands the buckets out (caller frees); x is left empty. */
void dst_store_sql_buckets_detach(struct dst_store_sql_buckets *x, struct dst_series_bucket **out,
                                  size_t *n);
void dst_store_sql_buckets_release(struct dst_store_sql_buckets *x);

#endif
