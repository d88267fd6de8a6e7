/* test_store_delete.c - contract tests of deleting and excluding results, on every backend */
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

#define T0  1700000000000LL /* 2023-11-14T22:13:20Z */
#define MIN 60000LL

/*
 * Ten results, a minute apart from T0: i even on probe "a", odd on "b"; 0..3 demo; the
 * download of result i is (i + 1) Mbit/s. ids[i] receives their ids.
 */
static void fill(struct dst_store *s, char ids[10][DST_UUID_LEN + 1])
{
    struct dst_result rs[10];

    for (int i = 0; i < 10; i++) {
        dst_result_init(&rs[i]);
        dst_uuid_new(rs[i].id);
        rs[i].time_ms = T0 + i * MIN;
        dst_result_set(&rs[i].probe, i % 2 ? "b" : "a");
        rs[i].download_bps = (i + 1) * 1e6;
        rs[i].demo = i < 4;
        memcpy(ids[i], rs[i].id, sizeof(ids[i]));
    }
    assert_int_equal(dst_store_insert(s, rs, 10, NULL), 0);
    for (int i = 0; i < 10; i++)
        dst_result_release(&rs[i]);
}

static int64_t count(struct dst_store *s, const struct dst_store_query *q)
{
    int64_t n = -1;
    assert_int_equal(dst_store_count(s, q, &n), 0);
    return n;
}

static int64_t count_all(struct dst_store *s)
{
    struct dst_store_query q;
    dst_store_query_init(&q);
    return count(s, &q);
}

static uint64_t version(struct dst_store *s)
{
    uint64_t v = 0;
    assert_int_equal(dst_store_version(s, &v), 0);
    return v;
}

static bool exists(struct dst_store *s, const char *id)
{
    struct dst_result r;
    dst_result_init(&r);
    int rc = dst_store_get(s, id, &r);
    dst_result_release(&r);
    assert_true(rc == 0 || rc == DST_ENOTFOUND);
    return rc == 0;
}

static struct dst_cond int_cond(enum dst_field f, enum dst_op op, int64_t i)
{
    return (struct dst_cond){.field = f, .op = op, .kind = DST_V_INT, .i = i};
}

/* The demo and excluded flags are stored and read back. */
static void test_flags_round_trip(void **state)
{
    struct fixture *f = *state;
    char ids[10][DST_UUID_LEN + 1];
    struct dst_result r;
    struct dst_store_query q;

    fill(f->s, ids);
    dst_result_init(&r);
    assert_int_equal(dst_store_get(f->s, ids[0], &r), 0);
    assert_true(r.demo);
    assert_false(r.excluded);
    dst_result_release(&r);
    dst_result_init(&r);
    assert_int_equal(dst_store_get(f->s, ids[9], &r), 0);
    assert_false(r.demo);
    dst_result_release(&r);
    dst_store_query_init(&q);
    dst_store_query_add(&q, int_cond(DST_F_DEMO, DST_OP_EQ, 1));
    assert_int_equal(count(f->s, &q), 4);
}

static void test_delete_one(void **state)
{
    struct fixture *f = *state;
    char ids[10][DST_UUID_LEN + 1], upper[DST_UUID_LEN + 1];

    fill(f->s, ids);
    uint64_t v0 = version(f->s);
    assert_int_equal(dst_store_delete(f->s, ids[3]), 0);
    assert_false(exists(f->s, ids[3]));
    assert_true(exists(f->s, ids[2]));
    assert_int_equal(count_all(f->s), 9);
    uint64_t v1 = version(f->s);
    assert_true(v1 != v0);
    /* again: gone; unknown or malformed ids: not found, nothing changes */
    assert_int_equal(dst_store_delete(f->s, ids[3]), DST_ENOTFOUND);
    assert_int_equal(dst_store_delete(f->s, "6f1c0000-0000-4000-8000-00000000abcd"), DST_ENOTFOUND);
    assert_int_equal(dst_store_delete(f->s, "'; DROP TABLE results; --"), DST_ENOTFOUND);
    assert_int_equal(version(f->s), v1);
    /* an id in upper case is the same id */
    for (size_t i = 0; i <= DST_UUID_LEN; i++)
        upper[i] = (char)(ids[4][i] >= 'a' && ids[4][i] <= 'f' ? ids[4][i] - 32 : ids[4][i]);
    assert_int_equal(dst_store_delete(f->s, upper), 0);
    assert_int_equal(count_all(f->s), 8);
    /* deleting the newest row changes the version too (the next insert takes its seq again) */
    assert_int_equal(dst_store_delete(f->s, ids[9]), 0);
    assert_true(version(f->s) != v1);
}

static void test_delete_where(void **state)
{
    struct fixture *f = *state;
    char ids[10][DST_UUID_LEN + 1];
    struct dst_store_query q;
    int64_t n = -1;

    fill(f->s, ids);
    /* a time range [T0 + 2 min, T0 + 6 min) on probe "a": results 2 and 4; dry run first */
    dst_store_query_init(&q);
    dst_store_query_add(&q, int_cond(DST_F_TIME, DST_OP_GE, T0 + 2 * MIN));
    dst_store_query_add(&q, int_cond(DST_F_TIME, DST_OP_LT, T0 + 6 * MIN));
    dst_store_query_add(&q, (struct dst_cond){DST_F_PROBE, DST_OP_EQ, DST_V_TEXT, .s = "a"});
    uint64_t v0 = version(f->s);
    assert_int_equal(dst_store_delete_where(f->s, &q, false, true, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(count_all(f->s), 10); /* the dry run changed nothing */
    assert_int_equal(version(f->s), v0);
    n = -1;
    assert_int_equal(dst_store_delete_where(f->s, &q, false, false, &n), 0);
    assert_int_equal(n, 2);
    assert_false(exists(f->s, ids[2]));
    assert_false(exists(f->s, ids[4]));
    assert_true(exists(f->s, ids[3]) && exists(f->s, ids[6]));
    uint64_t v1 = version(f->s);
    assert_true(v1 != v0);
    /* nothing left to match: 0, and the version stays */
    assert_int_equal(dst_store_delete_where(f->s, &q, false, false, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(version(f->s), v1);
    /* the demo rows left (0, 1, 3), in one call */
    dst_store_query_init(&q);
    dst_store_query_add(&q, int_cond(DST_F_DEMO, DST_OP_EQ, 1));
    assert_int_equal(dst_store_delete_where(f->s, &q, false, true, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(dst_store_delete_where(f->s, &q, false, false, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(count_all(f->s), 5);
    assert_int_equal(count(f->s, &q), 0);
}

/* An empty filter deletes everything only when asked for by name. */
static void test_delete_all(void **state)
{
    struct fixture *f = *state;
    char ids[10][DST_UUID_LEN + 1];
    struct dst_store_query q;
    int64_t n = -1;

    fill(f->s, ids);
    dst_store_query_init(&q);
    assert_int_equal(dst_store_delete_where(f->s, &q, false, false, &n), DST_EINVAL);
    assert_int_equal(dst_store_delete_where(f->s, &q, false, true, &n), DST_EINVAL);
    assert_int_equal(count_all(f->s), 10);
    assert_int_equal(dst_store_delete_where(f->s, &q, true, true, &n), 0);
    assert_int_equal(n, 10);
    assert_int_equal(count_all(f->s), 10);
    assert_int_equal(dst_store_delete_where(f->s, &q, true, false, &n), 0);
    assert_int_equal(n, 10);
    assert_int_equal(count_all(f->s), 0);
    /* a bad condition is refused before anything runs */
    dst_store_query_add(&q, int_cond(DST_F_COUNT_, DST_OP_EQ, 1));
    assert_int_equal(dst_store_delete_where(f->s, &q, true, false, &n), DST_EINVAL);
}

static void test_exclude(void **state)
{
    struct fixture *f = *state;
    char ids[10][DST_UUID_LEN + 1];
    struct dst_series_bucket *b = NULL;
    struct dst_series_query sq = {T0, T0 + 10 * MIN, 10 * MIN, NULL};
    struct dst_result r;
    struct dst_store_query q;
    size_t n = 0;

    fill(f->s, ids);
    uint64_t v0 = version(f->s);
    /* result 9 (10 Mbit/s) is the outlier: excluded, it stays but leaves the series */
    assert_int_equal(dst_store_set_excluded(f->s, ids[9], true), 0);
    uint64_t v1 = version(f->s);
    assert_true(v1 != v0);
    dst_result_init(&r);
    assert_int_equal(dst_store_get(f->s, ids[9], &r), 0);
    assert_true(r.excluded);
    dst_result_release(&r);
    assert_int_equal(count_all(f->s), 10);
    dst_store_query_init(&q);
    dst_store_query_add(&q, int_cond(DST_F_EXCLUDED, DST_OP_EQ, 1));
    assert_int_equal(count(f->s, &q), 1);
    assert_int_equal(dst_store_series(f->s, &sq, &b, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(b[0].ok, 9);
    assert_true(b[0].download.max == 9e6);
    free(b);
    /* per probe too */
    sq.probe = "b";
    assert_int_equal(dst_store_series(f->s, &sq, &b, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(b[0].ok, 4);
    free(b);
    /* undone: back in the series */
    assert_int_equal(dst_store_set_excluded(f->s, ids[9], false), 0);
    assert_true(version(f->s) != v1);
    sq.probe = NULL;
    assert_int_equal(dst_store_series(f->s, &sq, &b, &n), 0);
    assert_int_equal(b[0].ok, 10);
    assert_true(b[0].download.max == 10e6);
    free(b);
    dst_result_init(&r);
    assert_int_equal(dst_store_get(f->s, ids[9], &r), 0);
    assert_false(r.excluded);
    dst_result_release(&r);
    /* unknown ids */
    assert_int_equal(dst_store_set_excluded(f->s, "6f1c0000-0000-4000-8000-00000000abcd", true),
                     DST_ENOTFOUND);
    assert_int_equal(dst_store_set_excluded(f->s, "nope", true), DST_ENOTFOUND);
}

/* A second handle on the same store sees the other's deletes and exclusions in its version. */
static void test_version_shared(void **state)
{
    struct fixture *f = *state;
    char ids[10][DST_UUID_LEN + 1];
    struct dst_store *other = NULL;

    fill(f->s, ids);
    assert_int_equal(dst_store_open(f->url, &other), 0);
    uint64_t v0 = version(other);
    assert_int_equal(dst_store_delete(f->s, ids[0]), 0);
    uint64_t v1 = version(other);
    assert_true(v1 != v0);
    assert_int_equal(dst_store_set_excluded(f->s, ids[1], true), 0);
    assert_true(version(other) != v1);
    dst_store_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ALL_STORES(test_flags_round_trip), ALL_STORES(test_delete_one),
        ALL_STORES(test_delete_where),     ALL_STORES(test_delete_all),
        ALL_STORES(test_exclude),          SHARED_STORES(test_version_shared),
    };
    dst_log_init("test_store_delete", DST_LOG_WARN);
    return store_run_tests(tests);
}
