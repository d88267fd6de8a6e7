/* test_store_pg_bulk.c - dst_store_insert_bulk (store_pg_bulk.c on PostgreSQL), every backend */
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
#include "core/json.h"
#include "core/log.h"
#include "core/result.h"
#include "core/store.h"
#include "core/uuid.h"

#include "store_fixture.h"

#define T0 1700000000000LL

/* n results; text that COPY's format must escape (tab, newline, CR, backslash), NULLs. */
static struct dst_result *make(int n)
{
    struct dst_result *rs = calloc((size_t)n, sizeof(*rs));

    for (int i = 0; i < n; i++) {
        struct dst_result *r = &rs[i];
        dst_result_init(r);
        dst_uuid_new(r->id);
        r->time_ms = T0 + i * 1000LL;
        r->status = i % 4 == 3 ? DST_RESULT_FAILED : DST_RESULT_OK;
        dst_result_set(&r->error, i % 4 == 3 ? "a\tb\nc\rd\\e \\N \"q\" ünï" : NULL);
        dst_result_set(&r->probe, i % 2 ? "attic\\" : "cellar\t1");
        dst_result_set(&r->server_host, i % 3 ? "\\N" : NULL);
        r->download_bps = i % 5 ? 1e8 / 3 + i : NAN;
        r->ping_ms = 0.1 + i;
        r->bytes_down = i % 2 ? 123456789012LL : -1;
        r->demo = i % 3 == 0;
        r->excluded = i % 5 == 1;
    }
    return rs;
}

static void release(struct dst_result *rs, int n)
{
    for (int i = 0; i < n; i++)
        dst_result_release(&rs[i]);
    free(rs);
}

/*
 * A batch lands whole, column for column, in the batch's order (seqs); ids stored already and
 * a repeat inside the batch are skipped and counted out of *created.
 */
static void test_bulk_insert(void **state)
{
    struct fixture *f = *state;
    struct dst_result *rs = make(40), *again = make(3);
    struct dst_store *ref = NULL;
    int64_t created = -1;

    assert_int_equal(dst_store_insert(f->s, rs, 5, NULL), 0); /* stored before */
    memcpy(again[0].id, rs[2].id, sizeof(rs[2].id));          /* stored already */
    memcpy(again[1].id, rs[30].id, sizeof(rs[30].id));        /* twice in the batch */
    assert_int_equal(dst_store_insert_bulk(f->s, rs, 40, &created), 0);
    assert_int_equal(created, 35);
    assert_int_equal(dst_store_insert_bulk(f->s, again, 3, &created), 0);
    assert_int_equal(created, 1); /* again[2] only */
    assert_int_equal(dst_store_insert_bulk(f->s, rs, 40, &created), 0);
    assert_int_equal(created, 0);
    assert_int_equal(dst_store_insert_bulk(f->s, rs, 0, &created), 0);
    assert_int_equal(created, 0);

    /* the same rows through the plain insert, into a private store, compare equal */
    assert_int_equal(dst_store_open("sqlite::memory:", &ref), 0);
    assert_int_equal(dst_store_insert(ref, rs, 40, NULL), 0);
    assert_int_equal(dst_store_insert(ref, &again[2], 1, NULL), 0);
    json_t *a = fx_all_results(f->s), *b = fx_all_results(ref);
    if (!json_equal(a, b)) {
        char *sa = json_dumps(a, 0), *sb = json_dumps(b, 0);
        fprintf(stderr, "bulk %.800s\nplain %.800s\n", sa, sb);
        free(sa), free(sb);
    }
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    dst_store_free(ref);
    release(rs, 40);
    release(again, 3);
}

/* Rows stored in bulk mark their buckets as any insert: the series sees them through rollups. */
static void test_bulk_marks_rollups(void **state)
{
    struct fixture *f = *state;
    struct dst_result *rs = make(40);
    struct dst_series_query q = {T0 - T0 % 86400000, T0 - T0 % 86400000 + 86400000, 86400000, NULL,
                                 false};
    struct dst_series_bucket *b = NULL;
    size_t n = 0;
    int64_t created = 0, rolled = 0;
    bool more = false;

    assert_int_equal(dst_store_insert_bulk(f->s, rs, 40, &created), 0);
    assert_int_equal(dst_store_roll(f->s, 10, &rolled, &more), 0);
    assert_true(rolled >= 2); /* two probes' day */
    assert_int_equal(dst_store_series(f->s, &q, &b, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(b[0].ok + b[0].failed, 40 - 8); /* excluded ones left out */
    free(b);
    release(rs, 40);
}

int main(void)
{
    dst_log_init("test_store_pg_bulk", DST_LOG_WARN);
    const struct CMUnitTest tests[] = {
        ALL_STORES(test_bulk_insert),
        ALL_STORES(test_bulk_marks_rollups),
    };
    return store_run_tests(tests);
}
