/* store_rollup_series.c - the time series from the rollups, exact where buckets changed */
#include <math.h>
#include <stdlib.h>

#include "core/err.h"
#include "core/store_backend.h"
#include "core/store_rollup_priv.h"

/*
 * One statement (one snapshot on both backends) of three parts in time order:
 * 1. the rollups of step rstep in [from, rend) whose bucket has no mark (unchanged since
 *    rolled), or that lie before the raw retention's mark (their raw rows are gone: a mark
 *    there means late rows, which part 3 adds);
 * 2. the raw rows of [rend, to), after the last whole rollup bucket;
 * 3. the raw rows of the marked (probe, rstep bucket)s of [from, rend).
 * Each row: t, count, failed, then per measure (download, upload, ping, jitter) n, min, max, sum.
 */
#define M(m) ", r." m "_n, r." m "_min, r." m "_max, r." m "_sum"
#define X(c)                                                                      \
    ", CASE WHEN x.status = 'ok' AND x." c " IS NOT NULL THEN 1 ELSE 0 END, CASE" \
    " WHEN x.status = 'ok' THEN x." c " END, CASE WHEN x.status = 'ok' THEN x." c \
    " END, CASE WHEN x.status = 'ok' THEN x." c " END"
#define RAW_PART                                                                             \
    "SELECT x.time_ms, 1, CASE WHEN x.status = 'failed' THEN 1 ELSE 0 END" X("download_bps") \
        X("upload_bps") X("ping_ms") X("jitter_ms")
#define WM                                                           \
    "coalesce((SELECT value FROM meta WHERE key = 'raw_pruned_ms')," \
    " -9223372036854775807)"
#define PART1(p)                                                                                  \
    "SELECT r.t_ms, r.n, r.failed" M("d") M("u") M("p") M(                                        \
        "j") " FROM rollups AS r WHERE"                                                           \
             " r.step_ms = ? AND r.t_ms >= ? AND r.t_ms < ?" p " AND (r.t_ms < " WM               \
             " OR NOT EXISTS"                                                                     \
             " (SELECT 1 FROM rollup_dirty AS d WHERE d.probe = r.probe AND d.t_ms >= r.t_ms AND" \
             " d.t_ms < r.t_ms + ?))"
#define PART2(p) \
    RAW_PART " FROM results AS x WHERE x.time_ms >= ? AND x.time_ms < ?" p " AND x.excluded = 0"
#define PART3(p)                                                                             \
    RAW_PART " FROM (SELECT DISTINCT d.probe AS probe, d.t_ms - ((d.t_ms % ?) + ?) % ? AS b" \
             " FROM rollup_dirty AS d WHERE d.t_ms >= ? AND d.t_ms < ?" p ") AS dd JOIN"     \
             " results AS x ON x.probe = dd.probe AND x.time_ms >= dd.b AND"                 \
             " x.time_ms < dd.b + ? WHERE x.excluded = 0"
#define SERIES(pr, px, pd)                                                               \
    "SELECT * FROM (" PART1(pr) " UNION ALL " PART2(px) " UNION ALL " PART3(pd) ") AS u" \
                                                                                " ORDER BY 1"

static const char *const sql_series[2] = {
    SERIES("", "", ""),
    SERIES(" AND r.probe = ?", " AND x.probe = ?", " AND d.probe = ?"),
};

static struct dst_store_sql_val ival(int64_t i)
{
    return (struct dst_store_sql_val){.type = DST_SQL_INT, .i = i};
}

static int64_t int_of(const struct dst_store_sql_val *v)
{
    return v->type == DST_SQL_INT ? v->i : v->type == DST_SQL_REAL ? (int64_t)v->d : 0;
}

/* One row of the statement, a rollup or a raw row, into its bucket. */
static int part_row(const struct dst_store_sql_val *c, int n, void *arg)
{
    struct dst_store_sql_buckets *x = arg;

    if (n < 3 + 4 * 4)
        return DST_EDEP;
    int64_t idx = (int_of(&c[0]) - x->q->from_ms) / x->q->step_ms;
    if (!x->open || idx != x->cur)
        dst_store_sql_buckets_next(x, idx);
    int64_t count = int_of(&c[1]), failed = int_of(&c[2]);
    x->ok += count - failed;
    x->failed += failed;
    for (int i = 0; i < 4; i++) {
        const struct dst_store_sql_val *m = &c[3 + 4 * i];
        int64_t k = int_of(&m[0]);
        if (k == 0)
            continue;
        double mn = dst_store_rollup_real(&m[1]), mx = dst_store_rollup_real(&m[2]);
        x->min[i] = x->cnt[i] == 0 || mn < x->min[i] ? mn : x->min[i];
        x->max[i] = x->cnt[i] == 0 || mx > x->max[i] ? mx : x->max[i];
        x->sum[i] += dst_store_rollup_real(&m[3]);
        x->cnt[i] += k;
    }
    return 0;
}

/* The rollup step that serves q (0: none): days, else hours, when step and from are whole. */
static int64_t rollup_step(const struct dst_series_query *q)
{
    static const int64_t steps[] = {DST_ROLLUP_DAY_MS, DST_ROLLUP_HOUR_MS};

    for (int i = 0; i < 2; i++) {
        if (q->step_ms % steps[i] == 0 &&
            dst_store_rollup_floor(q->from_ms, steps[i]) == q->from_ms)
            return steps[i];
    }
    return 0;
}

int dst_store_rollup_series(struct dst_store *s, const struct dst_series_query *q,
                            struct dst_series_bucket **out, size_t *n)
{
    struct dst_store_sql_val a[16];
    struct dst_store_sql_buckets x;
    int64_t rstep = rollup_step(q), rend = 0;
    int k = 0;

    if (rstep == 0 || !s->ops->tx)
        return DST_ENOTFOUND;
    rend = dst_store_rollup_floor(q->to_ms, rstep);
    if (rend <= q->from_ms)
        return DST_ENOTFOUND;
    const struct dst_store_sql_val probe = {.type = DST_SQL_TEXT, .s = q->probe};
    /* part 1 */
    a[k++] = ival(rstep), a[k++] = ival(q->from_ms), a[k++] = ival(rend);
    if (q->probe)
        a[k++] = probe;
    a[k++] = ival(rstep);
    /* part 2 */
    a[k++] = ival(rend), a[k++] = ival(q->to_ms);
    if (q->probe)
        a[k++] = probe;
    /* part 3 */
    a[k++] = ival(rstep), a[k++] = ival(rstep), a[k++] = ival(rstep);
    a[k++] = ival(q->from_ms), a[k++] = ival(rend);
    if (q->probe)
        a[k++] = probe;
    a[k++] = ival(rstep);
    dst_store_sql_buckets_init(&x, q);
    int rc = s->ops->tx->read(s, sql_series[q->probe != NULL], a, k, part_row, &x);
    if (rc == 0)
        dst_store_sql_buckets_detach(&x, out, n);
    dst_store_sql_buckets_release(&x);
    return rc;
}
