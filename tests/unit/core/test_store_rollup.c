/* test_store_rollup.c - contract tests of rollups, the series from them and retention */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/result.h"
#include "core/store.h"
#include "core/uuid.h"

#include "store_fixture.h"

#define DAY  86400000LL
#define HOUR 3600000LL
#define T0   (19700LL * DAY) /* 2023-12-09T00:00Z, a UTC day */

static const char *const probes[] = {"a", "b", "c"};

static uint64_t rng = 88172645463325252ULL;
static uint64_t rnd(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

/* n random results in [from, from + span): some failed, some measures missing, ties. */
static void fill(struct dst_store *s, int n, int64_t from, int64_t span)
{
    struct dst_result *rs = calloc((size_t)n, sizeof(*rs));

    for (int i = 0; i < n; i++) {
        struct dst_result *r = &rs[i];
        dst_result_init(r);
        dst_uuid_new(r->id);
        r->time_ms = from + (int64_t)(rnd() % (uint64_t)span);
        dst_result_set(&r->probe, probes[rnd() % 3]);
        r->status = rnd() % 7 == 0 ? DST_RESULT_FAILED : DST_RESULT_OK;
        r->download_bps = rnd() % 9 == 0 ? NAN : (double)(rnd() % 1000) * 1e5 + 0.1;
        r->upload_bps = (double)(rnd() % 400) * 1e5;
        r->ping_ms = (double)(rnd() % 40) / 4; /* many ties */
        r->jitter_ms = rnd() % 5 == 0 ? NAN : (double)(rnd() % 1000) / 100;
        r->loss_pct = rnd() % 3 == 0 ? NAN : (double)(rnd() % 10);
    }
    assert_int_equal(dst_store_insert(s, rs, (size_t)n, NULL), 0);
    for (int i = 0; i < n; i++)
        dst_result_release(&rs[i]);
    free(rs);
}

static void roll_all(struct dst_store *s)
{
    int64_t rolled = 0;
    bool more = true;
    for (int i = 0; more && i < 1000; i++)
        assert_int_equal(dst_store_roll(s, 7, &rolled, &more), 0);
    assert_false(more);
    assert_int_equal(dst_store_roll(s, 7, &rolled, &more), 0);
    assert_int_equal(rolled, 0); /* every mark taken */
}

/* ---- the expected rollups: a GROUP BY (probe, bucket) over the raw rows, here in C ---- */

struct raw {
    int64_t t;
    int probe;
    bool ok, excluded;
    double v[DST_ROLLUP_NMEASURES];
};

struct raws {
    struct raw *r;
    size_t n, cap;
};

static int raw_row(const struct dst_result *r, void *ud)
{
    struct raws *x = ud;
    if (x->n == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 256;
        x->r = realloc(x->r, x->cap * sizeof(*x->r));
    }
    struct raw *w = &x->r[x->n++];
    w->t = r->time_ms;
    w->probe = r->probe[0] - 'a';
    w->ok = r->status == DST_RESULT_OK;
    w->excluded = r->excluded;
    double v[] = {r->download_bps, r->upload_bps, r->ping_ms, r->jitter_ms, r->loss_pct};
    memcpy(w->v, v, sizeof(v));
    return 0;
}

static struct raws raws_read(struct dst_store *s)
{
    struct raws x = {0};
    struct dst_store_query q;
    dst_store_query_init(&q);
    q.sort = DST_F_SEQ;
    q.desc = false;
    assert_int_equal(dst_store_query(s, &q, raw_row, &x), 0);
    return x;
}

static int64_t floor_to(int64_t t, int64_t step)
{
    int64_t r = t % step;
    return t - (r < 0 ? r + step : r);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The rollup of (probe, [t, t + step)) from the raw rows; count 0 when it has none. */
static struct dst_rollup expect_one(const struct raws *x, int probe, int64_t t, int64_t step)
{
    struct dst_rollup e = {.step_ms = step, .t_ms = t};
    double *vals = calloc(x->n + 1, sizeof(double));

    for (size_t i = 0; i < x->n; i++) {
        const struct raw *w = &x->r[i];
        if (w->probe == probe && !w->excluded && floor_to(w->t, step) == t)
            e.count++, e.failed += !w->ok;
    }
    for (int m = 0; m < DST_ROLLUP_NMEASURES; m++) {
        struct dst_rollup_stat *st = &e.m[m];
        size_t k = 0;
        st->sum = 0;
        for (size_t i = 0; i < x->n; i++) {
            const struct raw *w = &x->r[i];
            if (w->probe != probe || w->excluded || !w->ok || isnan(w->v[m]) ||
                floor_to(w->t, step) != t)
                continue;
            vals[k++] = w->v[m];
            st->sum += w->v[m];
        }
        qsort(vals, k, sizeof(double), cmp_d);
        st->n = (int64_t)k;
        st->min = k ? vals[0] : NAN;
        st->max = k ? vals[k - 1] : NAN;
        st->sum = k ? st->sum : NAN;
        st->p50 = k ? vals[(50 * k + 99) / 100 - 1] : NAN; /* nearest rank: ceil(p n / 100) */
        st->p90 = k ? vals[(90 * k + 99) / 100 - 1] : NAN;
    }
    free(vals);
    return e;
}

static bool same(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return fabs(a - b) <= 1e-9 * fmax(1, fmax(fabs(a), fabs(b)));
}

static void assert_rollup(const struct dst_rollup *got, const struct dst_rollup *e, bool pct)
{
    assert_int_equal(got->count, e->count);
    assert_int_equal(got->failed, e->failed);
    for (int m = 0; m < DST_ROLLUP_NMEASURES; m++) {
        assert_int_equal(got->m[m].n, e->m[m].n);
        assert_true(got->m[m].min == e->m[m].min || (isnan(got->m[m].min) && isnan(e->m[m].min)));
        assert_true(got->m[m].max == e->m[m].max || (isnan(got->m[m].max) && isnan(e->m[m].max)));
        assert_true(same(got->m[m].sum, e->m[m].sum));
        if (pct) {
            assert_true(same(got->m[m].p50, e->m[m].p50));
            assert_true(same(got->m[m].p90, e->m[m].p90));
        }
    }
}

/* The stored rollups of step in [from, to) are exactly those of the raw rows x. */
static void check_rollups(struct dst_store *s, const struct raws *x, int64_t step, int64_t from,
                          int64_t to)
{
    struct dst_rollup *r = NULL;
    size_t n = 0, k = 0;

    assert_int_equal(dst_store_rollups(s, step, from, to, NULL, &r, &n), 0);
    for (int64_t t = from; t < to; t += step) {
        for (int p = 0; p < 3; p++) {
            struct dst_rollup e = expect_one(x, p, t, step);
            if (e.count == 0)
                continue;
            assert_true(k < n);
            assert_int_equal(r[k].t_ms, t);
            assert_string_equal(r[k].probe, probes[p]);
            assert_int_equal(r[k].step_ms, step);
            assert_rollup(&r[k], &e, true);
            k++;
        }
    }
    assert_int_equal(k, n); /* no rollup without raw rows */
    dst_store_rollups_free(r, n);
}

static void check_all_rollups(struct dst_store *s, int64_t from, int64_t to)
{
    struct raws x = raws_read(s);
    check_rollups(s, &x, HOUR, from, to);
    check_rollups(s, &x, DAY, from, to);
    free(x.r);
}

/* ---- the series from rollups against the raw rows ---- */

static void assert_stat(const struct dst_stat *a, const struct dst_stat *b)
{
    assert_true(a->min == b->min || (isnan(a->min) && isnan(b->min)));
    assert_true(a->max == b->max || (isnan(a->max) && isnan(b->max)));
    assert_true(same(a->avg, b->avg));
}

static void assert_series_eq(const struct dst_series_bucket *a, size_t na,
                             const struct dst_series_bucket *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(a[i].t_ms, b[i].t_ms);
        assert_int_equal(a[i].ok, b[i].ok);
        assert_int_equal(a[i].failed, b[i].failed);
        assert_stat(&a[i].download, &b[i].download);
        assert_stat(&a[i].upload, &b[i].upload);
        assert_stat(&a[i].ping, &b[i].ping);
        assert_stat(&a[i].jitter, &b[i].jitter);
    }
}

/* The answer of q with the rollups equals the one from the raw rows alone. */
static void check_series(struct dst_store *s, struct dst_series_query q)
{
    struct dst_series_bucket *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;

    q.raw = false;
    assert_int_equal(dst_store_series(s, &q, &a, &na), 0);
    q.raw = true;
    assert_int_equal(dst_store_series(s, &q, &b, &nb), 0);
    assert_series_eq(a, na, b, nb);
    free(a);
    free(b);
}

/* Random queries whose step and start are whole hours or days, each on all probes and one. */
static void check_series_random(struct dst_store *s, int64_t from, int64_t span)
{
    static const int64_t steps[] = {HOUR, 3 * HOUR, DAY, 2 * DAY, 7 * DAY};

    for (int i = 0; i < 30; i++) {
        int64_t step = steps[rnd() % 5];
        int64_t f =
            floor_to(from + (int64_t)(rnd() % (uint64_t)span) - span / 4, step >= DAY ? DAY : HOUR);
        int64_t t = f + 1 + (int64_t)(rnd() % (uint64_t)(2 * span));
        struct dst_series_query q = {f, t, step, NULL, false};
        check_series(s, q);
        q.probe = probes[rnd() % 3];
        check_series(s, q);
    }
}

static struct dst_cond int_cond(enum dst_field f, enum dst_op op, int64_t i)
{
    return (struct dst_cond){.field = f, .op = op, .kind = DST_V_INT, .i = i};
}

struct ids {
    char id[40][DST_UUID_LEN + 1];
    int n;
};

static int collect(const struct dst_result *r, void *ud)
{
    struct ids *ids = ud;
    if (ids->n < 40)
        memcpy(ids->id[ids->n++], r->id, DST_UUID_LEN + 1);
    return 0;
}

/* Excludes every other one of the first day's first 20 results, then includes one again. */
static void exclude_some(struct dst_store *s)
{
    struct dst_store_query q;
    struct ids ids = {.n = 0};

    dst_store_query_init(&q);
    dst_store_query_add(&q, int_cond(DST_F_TIME, DST_OP_LT, T0 + DAY));
    q.limit = 20;
    /* ids first: the row callback must not write to the store it reads */
    assert_int_equal(dst_store_query(s, &q, collect, &ids), 0);
    assert_true(ids.n > 2);
    for (int i = 0; i < ids.n; i += 2)
        assert_int_equal(dst_store_set_excluded(s, ids.id[i], true), 0);
    assert_int_equal(dst_store_set_excluded(s, ids.id[0], false), 0);
}

/* ---- tests ---- */

/* Rollups equal the GROUP BY over the raw rows: after inserts, late rows, deletes, exclusions. */
static void test_rollups_exact(void **state)
{
    struct fixture *f = *state;
    struct dst_store_query q;
    int64_t n = 0;

    fill(f->s, 900, T0, 3 * DAY);
    roll_all(f->s);
    check_all_rollups(f->s, T0 - DAY, T0 + 4 * DAY);
    /* late rows (an outbox drained), a delete by filter, exclusions: marked, then rolled */
    fill(f->s, 120, T0, 2 * DAY);
    dst_store_query_init(&q);
    dst_store_query_add(&q, int_cond(DST_F_TIME, DST_OP_GE, T0 + DAY + 3 * HOUR));
    dst_store_query_add(&q, int_cond(DST_F_TIME, DST_OP_LT, T0 + DAY + 9 * HOUR));
    dst_store_query_add(&q, (struct dst_cond){DST_F_PROBE, DST_OP_EQ, DST_V_TEXT, .s = "b"});
    assert_int_equal(dst_store_delete_where(f->s, &q, false, false, &n), 0);
    assert_true(n > 0);
    exclude_some(f->s);
    roll_all(f->s);
    check_all_rollups(f->s, T0 - DAY, T0 + 4 * DAY);
    /* everything of a probe deleted: its rollups go too */
    dst_store_query_init(&q);
    dst_store_query_add(&q, (struct dst_cond){DST_F_PROBE, DST_OP_EQ, DST_V_TEXT, .s = "c"});
    assert_int_equal(dst_store_delete_where(f->s, &q, false, false, &n), 0);
    roll_all(f->s);
    check_all_rollups(f->s, T0 - DAY, T0 + 4 * DAY);
}

/* Hours and days before 1970 round down, in the rollups and the series. */
static void test_rollups_before_1970(void **state)
{
    struct fixture *f = *state;

    fill(f->s, 200, -2 * DAY, 3 * DAY);
    roll_all(f->s);
    check_all_rollups(f->s, -3 * DAY, 2 * DAY);
    check_series_random(f->s, -2 * DAY, 3 * DAY);
}

/* The series from rollups equals the raw one: unrolled, rolled, and with changes since. */
static void test_series_from_rollups(void **state)
{
    struct fixture *f = *state;

    fill(f->s, 1500, T0, 20 * DAY);
    check_series_random(f->s, T0, 20 * DAY); /* nothing rolled: all marked */
    roll_all(f->s);
    check_series_random(f->s, T0, 20 * DAY);
    fill(f->s, 100, T0, 20 * DAY); /* late rows, not rolled yet */
    exclude_some(f->s);
    check_series_random(f->s, T0, 20 * DAY);
    roll_all(f->s);
    check_series_random(f->s, T0, 20 * DAY);
}

static int64_t count_range(struct dst_store *s, int64_t from, int64_t to)
{
    struct dst_store_query q;
    int64_t n = -1;
    dst_store_query_init(&q);
    dst_store_query_add(&q, int_cond(DST_F_TIME, DST_OP_GE, from));
    dst_store_query_add(&q, int_cond(DST_F_TIME, DST_OP_LT, to));
    assert_int_equal(dst_store_count(s, &q, &n), 0);
    return n;
}

static void series(struct dst_store *s, int64_t from, int64_t to, int64_t step, bool raw,
                   struct dst_series_bucket **b, size_t *n)
{
    struct dst_series_query q = {from, to, step, NULL, raw};
    assert_int_equal(dst_store_series(s, &q, b, n), 0);
}

/* Pruning raw days keeps their rollups; the series over them answers as before. */
static void test_prune_keeps_rollups(void **state)
{
    struct fixture *f = *state;
    struct dst_series_bucket *before_d = NULL, *before_h = NULL, *b = NULL;
    size_t nd = 0, nh = 0, n = 0;
    int64_t pruned = 0, total = 0;
    bool more = true;
    uint64_t v0 = 0, v1 = 0;

    fill(f->s, 600, T0, 5 * DAY);
    /* not rolled: nothing is pruned */
    assert_int_equal(dst_store_prune_raw(f->s, T0 + 3 * DAY, &pruned, &more), 0);
    assert_int_equal(pruned, 0);
    assert_false(more);
    roll_all(f->s);
    struct raws x = raws_read(f->s);
    series(f->s, T0, T0 + 5 * DAY, DAY, true, &before_d, &nd);
    series(f->s, T0, T0 + 5 * DAY, HOUR, true, &before_h, &nh);
    int64_t old = count_range(f->s, T0, T0 + 3 * DAY);
    assert_int_equal(dst_store_version(f->s, &v0), 0);
    more = true;
    for (int i = 0; more && i < 10; i++) {
        assert_int_equal(dst_store_prune_raw(f->s, T0 + 3 * DAY + HOUR, &pruned, &more), 0);
        total += pruned;
    }
    assert_false(more);
    assert_int_equal(total, old); /* whole days only: [T0, T0 + 3 d) */
    assert_int_equal(count_range(f->s, T0, T0 + 3 * DAY), 0);
    assert_true(count_range(f->s, T0 + 3 * DAY, T0 + 5 * DAY) > 0);
    assert_int_equal(dst_store_version(f->s, &v1), 0);
    assert_true(v1 != v0);
    /* the rollups stay, and answer the series of the pruned range */
    check_rollups(f->s, &x, DAY, T0, T0 + 5 * DAY);
    check_rollups(f->s, &x, HOUR, T0, T0 + 5 * DAY);
    series(f->s, T0, T0 + 5 * DAY, DAY, false, &b, &n);
    assert_series_eq(b, n, before_d, nd);
    free(b);
    series(f->s, T0, T0 + 5 * DAY, HOUR, false, &b, &n);
    assert_series_eq(b, n, before_h, nh);
    free(b);
    /* a result later than the retention: in the series at once, folded in when rolled */
    fill(f->s, 1, T0 + DAY, DAY);
    series(f->s, T0, T0 + 5 * DAY, DAY, false, &b, &n);
    int64_t sum0 = 0, sum1 = 0;
    for (size_t i = 0; i < nd; i++)
        sum0 += before_d[i].ok + before_d[i].failed;
    for (size_t i = 0; i < n; i++)
        sum1 += b[i].ok + b[i].failed;
    assert_int_equal(sum1, sum0 + 1);
    assert_int_equal(b[1].ok + b[1].failed, before_d[1].ok + before_d[1].failed + 1);
    free(b);
    roll_all(f->s);
    assert_int_equal(count_range(f->s, T0, T0 + 3 * DAY), 0); /* the late raw row went */
    series(f->s, T0, T0 + 5 * DAY, DAY, false, &b, &n);
    sum1 = 0;
    for (size_t i = 0; i < n; i++)
        sum1 += b[i].ok + b[i].failed;
    assert_int_equal(sum1, sum0 + 1);
    free(b);
    /* a changed day is not pruned before it is rolled */
    fill(f->s, 5, T0 + 3 * DAY, DAY);
    assert_int_equal(dst_store_prune_raw(f->s, T0 + 4 * DAY, &pruned, &more), 0);
    assert_int_equal(pruned, 0);
    roll_all(f->s);
    assert_int_equal(dst_store_prune_raw(f->s, T0 + 4 * DAY, &pruned, &more), 0);
    assert_true(pruned > 0);
    free(before_d);
    free(before_h);
    free(x.r);
}

static void test_prune_rollups(void **state)
{
    struct fixture *f = *state;
    struct dst_rollup *r = NULL;
    size_t n = 0;
    int64_t pruned = 0;

    fill(f->s, 200, T0, 4 * DAY);
    roll_all(f->s);
    assert_int_equal(dst_store_prune_rollups(f->s, T0 + 2 * DAY, &pruned), 0);
    assert_true(pruned > 0);
    assert_int_equal(dst_store_rollups(f->s, DAY, T0, T0 + 4 * DAY, NULL, &r, &n), 0);
    for (size_t i = 0; i < n; i++)
        assert_true(r[i].t_ms >= T0 + 2 * DAY);
    assert_true(n > 0);
    dst_store_rollups_free(r, n);
    assert_int_equal(dst_store_rollups(f->s, HOUR, T0, T0 + 2 * DAY, NULL, &r, &n), 0);
    assert_int_equal(n, 0);
    dst_store_rollups_free(r, n);
    assert_int_equal(dst_store_rollups(f->s, 5 * HOUR, T0, T0 + DAY, NULL, &r, &n), DST_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ALL_STORES(test_rollups_exact),       ALL_STORES(test_rollups_before_1970),
        ALL_STORES(test_series_from_rollups), ALL_STORES(test_prune_keeps_rollups),
        ALL_STORES(test_prune_rollups),
    };
    dst_log_init("test_store_rollup", DST_LOG_WARN);
    return store_run_tests(tests);
}
