/* rollup_copy_fixture.h - the copy and export tests' store with rollups and pruned raw rows */
#ifndef DST_TEST_ROLLUP_COPY_FIXTURE_H
#define DST_TEST_ROLLUP_COPY_FIXTURE_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/result.h"
#include "core/store.h"
#include "core/uuid.h"

#define RC_DAY0   1699920000000LL /* 2023-11-14T00:00:00Z */
#define RC_DAYS   5
#define RC_PRUNED 3 /* days 0 .. 2 pruned */

/* One result of probe at t (ok unless failed), its values from k. */
static inline void rc_result(struct dst_result *r, const char *probe, int64_t t, int k, bool failed)
{
    dst_result_init(r);
    dst_uuid_new(r->id);
    r->time_ms = t;
    r->status = failed ? DST_RESULT_FAILED : DST_RESULT_OK;
    dst_result_set(&r->error, failed ? "timeout" : NULL);
    dst_result_set(&r->probe, probe);
    r->download_bps = 9e7 + k * 12345.678;
    r->upload_bps = 2e7 + k % 17 * 1000.5;
    r->ping_ms = 5 + k % 11 * 0.37;
    r->jitter_ms = k % 5 ? 0.5 + k % 5 * 0.1 : NAN;
    r->loss_pct = k % 7 * 0.25;
}

/* Inserts one result of probe at t. */
static inline void rc_insert_one(struct dst_store *s, const char *probe, int64_t t, int k)
{
    struct dst_result r;

    rc_result(&r, probe, t, k, false);
    assert_int_equal(dst_store_insert(s, &r, 1, NULL), 0);
    dst_result_release(&r);
}

/* Rolls every mark. */
static inline void rc_roll_all(struct dst_store *s)
{
    int64_t rolled = 0;
    bool more = true;

    for (int i = 0; i < 100 && more; i++)
        assert_int_equal(dst_store_roll(s, 50, &rolled, &more), 0);
    assert_false(more);
}

/*
 * Two probes' results every 20 minutes (every 7th failed) over RC_DAYS days from RC_DAY0,
 * rolled, and the raw rows of the first RC_PRUNED days pruned: their rollups alone hold them.
 */
static inline void rc_fill_pruned(struct dst_store *s)
{
    enum { PER_DAY = 72, N = 2 * PER_DAY * RC_DAYS };
    struct dst_result *rs = calloc(N, sizeof(*rs));
    int64_t pruned = 0, total = 0;
    bool more = true;

    for (int i = 0; i < N; i++)
        rc_result(&rs[i], i % 2 ? "attic" : "cellar", RC_DAY0 + (i / 2) * 1200000LL + i % 2 * 1000,
                  i, i % 7 == 3);
    assert_int_equal(dst_store_insert(s, rs, N, NULL), 0);
    for (int i = 0; i < N; i++)
        dst_result_release(&rs[i]);
    free(rs);
    rc_roll_all(s);
    for (int i = 0; i < 10 && more; i++) {
        assert_int_equal(dst_store_prune_raw(s, RC_DAY0 + RC_PRUNED * 86400000LL, &pruned, &more),
                         0);
        total += pruned;
    }
    assert_int_equal(total, 2 * PER_DAY * RC_PRUNED);
}

static inline void rc_assert_stat(const struct dst_stat *a, const struct dst_stat *b)
{
    const double x[3] = {a->min, a->avg, a->max}, y[3] = {b->min, b->avg, b->max};

    for (int i = 0; i < 3; i++) {
        assert_int_equal(isnan(x[i]), isnan(y[i]));
        if (!isnan(x[i])) /* avg: the same sums, maybe added in another order */
            assert_true(fabs(x[i] - y[i]) <= 1e-9 * fabs(x[i]));
    }
}

/* a's and b's series over the whole range by step (bucket count delta added to b's first). */
static inline void rc_assert_same_series(struct dst_store *a, struct dst_store *b, int64_t step)
{
    struct dst_series_query q = {RC_DAY0, RC_DAY0 + RC_DAYS * 86400000LL, step, NULL, false};
    struct dst_series_bucket *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;

    assert_int_equal(dst_store_series(a, &q, &x, &nx), 0);
    assert_int_equal(dst_store_series(b, &q, &y, &ny), 0);
    assert_int_equal(nx, ny);
    assert_true(nx >= (size_t)RC_DAYS);
    for (size_t i = 0; i < nx; i++) {
        assert_int_equal(x[i].t_ms, y[i].t_ms);
        assert_int_equal(x[i].ok, y[i].ok);
        assert_int_equal(x[i].failed, y[i].failed);
        rc_assert_stat(&x[i].download, &y[i].download);
        rc_assert_stat(&x[i].upload, &y[i].upload);
        rc_assert_stat(&x[i].ping, &y[i].ping);
        rc_assert_stat(&x[i].jitter, &y[i].jitter);
    }
    free(x);
    free(y);
}

static inline void rc_assert_same_real(double x, double y)
{
    assert_int_equal(isnan(x), isnan(y));
    if (!isnan(x))
        assert_true(x == y);
}

/* The rollups of the pruned days (nobody rolls those again) are the same, figure by figure. */
static inline void rc_assert_same_rollups(struct dst_store *a, struct dst_store *b)
{
    for (int k = 0; k < 2; k++) {
        int64_t step = k ? 86400000LL : 3600000LL;
        struct dst_rollup *x = NULL, *y = NULL;
        size_t nx = 0, ny = 0;
        assert_int_equal(
            dst_store_rollups(a, step, RC_DAY0, RC_DAY0 + RC_PRUNED * 86400000LL, NULL, &x, &nx),
            0);
        assert_int_equal(
            dst_store_rollups(b, step, RC_DAY0, RC_DAY0 + RC_PRUNED * 86400000LL, NULL, &y, &ny),
            0);
        assert_int_equal(nx, ny);
        assert_int_equal(nx, (size_t)(2 * RC_PRUNED * (k ? 1 : 24)));
        for (size_t i = 0; i < nx; i++) {
            assert_int_equal(x[i].t_ms, y[i].t_ms);
            assert_string_equal(x[i].probe, y[i].probe);
            assert_int_equal(x[i].count, y[i].count);
            assert_int_equal(x[i].failed, y[i].failed);
            for (int m = 0; m < DST_ROLLUP_NMEASURES; m++) {
                assert_int_equal(x[i].m[m].n, y[i].m[m].n);
                rc_assert_same_real(x[i].m[m].min, y[i].m[m].min);
                rc_assert_same_real(x[i].m[m].max, y[i].m[m].max);
                rc_assert_same_real(x[i].m[m].sum, y[i].m[m].sum);
                rc_assert_same_real(x[i].m[m].p50, y[i].m[m].p50);
                rc_assert_same_real(x[i].m[m].p90, y[i].m[m].p90);
            }
        }
        dst_store_rollups_free(x, nx);
        dst_store_rollups_free(y, ny);
    }
}

/* The daily rollup's count of probe on day d. */
static inline int64_t rc_day_count(struct dst_store *s, int d, const char *probe)
{
    struct dst_rollup *r = NULL;
    size_t n = 0;
    int64_t c = -1;

    assert_int_equal(dst_store_rollups(s, 86400000LL, RC_DAY0 + d * 86400000LL,
                                       RC_DAY0 + (d + 1) * 86400000LL, probe, &r, &n),
                     0);
    if (n == 1)
        c = r[0].count;
    dst_store_rollups_free(r, n);
    return c;
}

/*
 * to holds a copy of from (made by a copy or an import): the same series over the whole range
 * by day and by hour, before and after to rolls its own marks; a late row on to for a pruned
 * day is folded into the copied rollup (count + 1), not rolled from the raw rows alone.
 */
static inline void rc_assert_copied(struct dst_store *from, struct dst_store *to)
{
    int64_t wm = 0;

    assert_int_equal(dst_store_raw_pruned(to, &wm), 0);
    assert_int_equal(wm, RC_DAY0 + RC_PRUNED * 86400000LL);
    rc_assert_same_rollups(from, to);
    rc_assert_same_series(from, to, 86400000LL);
    rc_assert_same_series(from, to, 3600000LL);
    rc_roll_all(to);
    rc_assert_same_series(from, to, 86400000LL);
    rc_assert_same_series(from, to, 3600000LL);
    int64_t before = rc_day_count(from, 1, "attic");
    assert_true(before > 0);
    rc_insert_one(to, "attic", RC_DAY0 + 86400000LL + 5 * 3600000LL + 17, 99);
    rc_roll_all(to);
    assert_int_equal(rc_day_count(to, 1, "attic"), before + 1);
    assert_int_equal(rc_day_count(to, 1, "cellar"), rc_day_count(from, 1, "cellar"));
}

#endif
