/* test_store_pg_group.c - single inserts from many threads at once (src/core/store_pg_group.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/result.h"
#include "core/store.h"
#include "core/uuid.h"

#include "store_fixture.h"

#define T0      1700000000000LL
#define THREADS 12
#define EACH    40 /* results of a thread's own */
#define SHARED  10 /* ids every thread inserts too: one of them stores each */

static char shared_ids[SHARED][DST_UUID_LEN + 1];

struct worker {
    struct dst_store *s;
    int t;
    const char *bad_probe; /* a result with this probe fails (a trigger), or NULL */
    int created, failed, other_rc;
    int64_t seqs[EACH + SHARED]; /* of the results it created */
    int nseqs;
    bool shared_created[SHARED];
};

/* Inserts result k of worker w alone; records what happened. */
static void insert_one(struct worker *w, const char *id, const char *probe, int shared)
{
    struct dst_result r;
    bool created = false;

    dst_result_init(&r);
    memcpy(r.id, id, DST_UUID_LEN + 1);
    r.time_ms = T0 + w->t * 1000 + w->nseqs;
    dst_result_set(&r.probe, probe);
    r.download_bps = 1e6;
    int rc = dst_store_insert(w->s, &r, 1, &created);
    if (rc == DST_EDEP)
        w->failed++;
    else if (rc)
        w->other_rc = rc;
    else if (created)
        w->created++, w->seqs[w->nseqs++] = r.seq;
    if (rc == 0 && shared >= 0)
        w->shared_created[shared] = created;
    dst_result_release(&r);
}

static void *work(void *arg)
{
    struct worker *w = arg;
    char id[DST_UUID_LEN + 1];

    for (int k = 0; k < EACH; k++) {
        dst_uuid_new(id);
        bool bad = w->bad_probe && k % 4 == w->t % 4;
        insert_one(w, id, bad ? w->bad_probe : "good", -1);
        if (k < SHARED && !w->bad_probe)
            insert_one(w, shared_ids[(k + w->t) % SHARED], "good", (k + w->t) % SHARED);
    }
    return NULL;
}

static void run_workers(struct dst_store *s, const char *bad, struct worker *ws)
{
    pthread_t th[THREADS];

    for (int t = 0; t < THREADS; t++) {
        ws[t] = (struct worker){.s = s, .t = t, .bad_probe = bad};
        assert_int_equal(pthread_create(&th[t], NULL, work, &ws[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);
}

static int64_t count_all(struct dst_store *s)
{
    struct dst_store_query q;
    int64_t n = -1;

    dst_store_query_init(&q);
    assert_int_equal(dst_store_count(s, &q, &n), 0);
    return n;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Every result stored once, each caller told whether its result was new, with its own seq. */
static void test_concurrent_singles(void **state)
{
    struct fixture *f = *state;
    struct worker ws[THREADS];
    int64_t seqs[THREADS * (EACH + SHARED)];
    int n = 0;

    for (int i = 0; i < SHARED; i++)
        dst_uuid_new(shared_ids[i]);
    run_workers(f->s, NULL, ws);
    for (int i = 0; i < SHARED; i++) {
        int creators = 0;
        for (int t = 0; t < THREADS; t++)
            creators += ws[t].shared_created[i];
        assert_int_equal(creators, 1);
    }
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(ws[t].failed + ws[t].other_rc, 0);
        for (int i = 0; i < ws[t].nseqs; i++)
            seqs[n++] = ws[t].seqs[i];
    }
    assert_int_equal(n, THREADS * EACH + SHARED);
    qsort(seqs, (size_t)n, sizeof(seqs[0]), cmp64);
    assert_true(seqs[0] > 0);
    for (int i = 1; i < n; i++)
        assert_true(seqs[i] > seqs[i - 1]); /* each its own row */
    assert_int_equal(count_all(f->s), n);
}

/* A result the server refuses fails alone: the others written with it are stored. */
static void test_bad_result_fails_alone(void **state)
{
    struct fixture *f = *state;
    struct worker ws[THREADS];
    int created = 0, failed = 0;

    assert_true(fixture_sql(
        f, "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
           "IF NEW.probe = 'bad' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$;"
           "CREATE TRIGGER refuse BEFORE INSERT ON results FOR EACH ROW EXECUTE FUNCTION "
           "refuse()"));
    enum dst_log_level level = dst_log_get_level();
    dst_log_set_level(DST_LOG_ERROR + 1);
    run_workers(f->s, "bad", ws);
    dst_log_set_level(level);
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(ws[t].other_rc, 0);
        created += ws[t].created;
        failed += ws[t].failed;
    }
    assert_int_equal(failed, THREADS * EACH / 4);
    assert_int_equal(created, THREADS * EACH - failed);
    assert_int_equal(count_all(f->s), created);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ALL_STORES(test_concurrent_singles),
        cmocka_unit_test_setup_teardown(test_bad_result_fails_alone, setup_pg, teardown),
    };
    dst_log_init("test_store_pg_group", DST_LOG_WARN);
    return store_run_tests(tests);
}
