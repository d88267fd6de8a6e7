/* test_store_feed.c - contract tests of the store's change feed (store_feed.c and the backends') */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/result.h"
#include "core/store.h"
#include "core/uuid.h"

#include "store_fixture.h"

#define WAIT_MS  30000 /* generous: a loaded 2-vCPU box; a pass never waits this long */
#define MAX_SEEN 256

struct seen {
    enum dst_store_change_kind kind;
    int64_t seq, count, version;
    char id[160]; /* the change's id, or the result's */
};

struct collector {
    pthread_mutex_t m;
    pthread_cond_t c;
    struct seen ev[MAX_SEEN];
    int n;
};

static void collect(const struct dst_store_change *c, void *ud)
{
    struct collector *k = ud;

    pthread_mutex_lock(&k->m);
    if (k->n < MAX_SEEN) {
        struct seen *e = &k->ev[k->n++];
        *e = (struct seen){c->kind, c->seq, c->count, c->version, ""};
        const char *id = c->result ? c->result->id : c->id;
        snprintf(e->id, sizeof(e->id), "%s", id ? id : "");
    }
    pthread_cond_broadcast(&k->c);
    pthread_mutex_unlock(&k->m);
}

static int matches(struct collector *k, enum dst_store_change_kind kind, const char *id)
{
    int n = 0;
    for (int i = 0; i < k->n; i++)
        n += k->ev[i].kind == kind && (!id || strcmp(k->ev[i].id, id) == 0);
    return n;
}

/* Waits (bounded) until a change of kind (and id, unless NULL) was told; its index or -1. */
static int wait_for(struct collector *k, enum dst_store_change_kind kind, const char *id)
{
    struct timespec until;
    int at = -1;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&k->m);
    for (;;) {
        for (int i = 0; i < k->n && at < 0; i++)
            if (k->ev[i].kind == kind && (!id || strcmp(k->ev[i].id, id) == 0))
                at = i;
        if (at >= 0 || pthread_cond_timedwait(&k->c, &k->m, &until) != 0)
            break;
    }
    pthread_mutex_unlock(&k->m);
    return at;
}

/* Waits (bounded) until n changes of kind were told. */
static bool wait_count(struct collector *k, enum dst_store_change_kind kind, int n)
{
    struct timespec until;
    bool ok = false;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&k->m);
    while (!(ok = matches(k, kind, NULL) >= n) && pthread_cond_timedwait(&k->c, &k->m, &until) == 0)
        ;
    pthread_mutex_unlock(&k->m);
    return ok;
}

static struct collector *collector_new(void)
{
    struct collector *k = calloc(1, sizeof(*k));
    pthread_mutex_init(&k->m, NULL);
    pthread_cond_init(&k->c, NULL);
    return k;
}

static void collector_free(struct collector *k)
{
    pthread_mutex_destroy(&k->m);
    pthread_cond_destroy(&k->c);
    free(k);
}

/* Stores one result of probe with a new id (into id). */
static void put_result(struct dst_store *s, const char *probe, char id[DST_UUID_LEN + 1])
{
    struct dst_result r;

    dst_result_init(&r);
    dst_uuid_new(r.id);
    r.time_ms = 1700000000000LL;
    dst_result_set(&r.probe, probe);
    r.download_bps = 1e6;
    memcpy(id, r.id, DST_UUID_LEN + 1);
    assert_int_equal(dst_store_insert(s, &r, 1, NULL), 0);
    dst_result_release(&r);
}

/*
 * Every kind of change made through writer reaches the feed of reader, once: the same handle
 * (this process's own changes) or another one (another process's).
 */
static void feed_kinds(struct dst_store *reader, struct dst_store *writer)
{
    struct collector *k = collector_new();
    char a[DST_UUID_LEN + 1], b[DST_UUID_LEN + 1], c[DST_UUID_LEN + 1], d[DST_UUID_LEN + 1];
    struct dst_store_query q;
    json_t *v = json_true();
    int64_t n = 0;
    int i;

    assert_int_equal(dst_store_feed_start(reader, collect, k), 0);
    assert_int_equal(dst_store_feed_start(reader, collect, k), DST_EINVAL); /* one feed */
    put_result(writer, "p", a);
    put_result(writer, "p", b);
    put_result(writer, "q", c);
    assert_true((i = wait_for(k, DST_STORE_CH_RESULT, c)) >= 0);
    assert_true(k->ev[i].seq > 0);
    assert_true(wait_for(k, DST_STORE_CH_RESULT, a) < wait_for(k, DST_STORE_CH_RESULT, b));
    assert_int_equal(dst_store_set_excluded(writer, b, true), 0);
    assert_true((i = wait_for(k, DST_STORE_CH_EXCLUDED, b)) >= 0);
    assert_int_equal(k->ev[i].count, 1);
    assert_int_equal(dst_store_delete(writer, a), 0);
    assert_true((i = wait_for(k, DST_STORE_CH_DELETED, a)) >= 0);
    assert_int_equal(k->ev[i].count, 1);
    dst_store_query_init(&q); /* a filter's delete: the count, no id */
    dst_store_query_add(&q, (struct dst_cond){DST_F_PROBE, DST_OP_EQ, DST_V_TEXT, .s = "p"});
    assert_int_equal(dst_store_delete_where(writer, &q, false, false, &n), 0);
    assert_int_equal(n, 1);
    assert_true((i = wait_for(k, DST_STORE_CH_DELETED, "")) >= 0);
    assert_int_equal(k->ev[i].count, 1);
    assert_int_equal(dst_store_setting_put(writer, "schedules", v, DST_STORE_ANY_VERSION, NULL), 0);
    assert_int_equal(dst_store_setting_put(writer, "schedules", v, 1, NULL), 0);
    assert_true(wait_for(k, DST_STORE_CH_SETTING, "schedules") >= 0);
    /* a last result: by then, every change before it was told (results in order) */
    put_result(writer, "q", d);
    assert_true(wait_for(k, DST_STORE_CH_RESULT, d) >= 0);
    assert_true(wait_count(k, DST_STORE_CH_SETTING, 2));
    dst_store_feed_stop(reader);
    /* once each */
    assert_int_equal(matches(k, DST_STORE_CH_RESULT, NULL), 4);
    assert_int_equal(matches(k, DST_STORE_CH_EXCLUDED, NULL), 1);
    assert_int_equal(matches(k, DST_STORE_CH_DELETED, NULL), 2);
    assert_int_equal(matches(k, DST_STORE_CH_SETTING, NULL), 2);
    assert_int_equal(matches(k, DST_STORE_CH_RESYNC, NULL), 0);
    for (i = 0; i < k->n; i++)
        if (k->ev[i].kind == DST_STORE_CH_SETTING)
            assert_in_range(k->ev[i].version, 1, 2);
    dst_store_feed_stop(reader); /* again: nothing */
    json_decref(v);
    collector_free(k);
}

static void test_own_changes(void **state)
{
    struct fixture *f = *state;
    feed_kinds(f->s, f->s);
}

static void test_other_handle(void **state)
{
    struct fixture *f = *state;
    struct dst_store *other = NULL;

    assert_int_equal(dst_store_open(f->url, &other), 0);
    feed_kinds(f->s, other);
    dst_store_free(other);
}

/*
 * SQLite gives a deleted newest row's seq to the next insert: the follower still tells the
 * new row (another handle deletes and inserts between two looks or within one).
 */
static void test_seq_taken_again(void **state)
{
    struct fixture *f = *state;
    struct collector *k = collector_new();
    struct dst_store *other = NULL;
    char id[DST_UUID_LEN + 1], id2[DST_UUID_LEN + 1];

    assert_int_equal(dst_store_open(f->url, &other), 0);
    assert_int_equal(dst_store_feed_start(f->s, collect, k), 0);
    for (int round = 0; round < 5; round++) {
        put_result(other, "p", id);
        assert_int_equal(dst_store_delete(other, id), 0);
        put_result(other, "p", id2);
        assert_true(wait_for(k, DST_STORE_CH_RESULT, id2) >= 0);
        assert_true(wait_for(k, DST_STORE_CH_DELETED, id) >= 0);
    }
    dst_store_feed_stop(f->s);
    dst_store_free(other);
    collector_free(k);
}

/*
 * A batch stored in one statement (PostgreSQL: one NOTIFY for its range of seqs) is told row by
 * row, each once, in the order stored, through another handle as through the same.
 */
static void test_batch(void **state)
{
    enum { N = 200 }; /* under MAX_SEEN */
    struct fixture *f = *state;
    struct collector *k = collector_new();
    struct dst_store *other = NULL;
    struct dst_result *rs = calloc(N, sizeof(*rs));
    bool created[N];

    assert_int_equal(dst_store_open(f->url, &other), 0);
    assert_int_equal(dst_store_feed_start(f->s, collect, k), 0);
    for (int i = 0; i < N; i++) {
        dst_result_init(&rs[i]);
        dst_uuid_new(rs[i].id);
        rs[i].time_ms = 1700000000000LL + i;
        dst_result_set(&rs[i].probe, "batch");
    }
    assert_int_equal(dst_store_insert(other, rs, N, created), 0);
    assert_true(wait_count(k, DST_STORE_CH_RESULT, N));
    dst_store_feed_stop(f->s);
    assert_int_equal(k->n, N);
    for (int i = 0; i < N; i++) {
        assert_true(created[i]);
        assert_int_equal(k->ev[i].kind, DST_STORE_CH_RESULT);
        assert_string_equal(k->ev[i].id, rs[i].id); /* in order, each once */
        assert_true(i == 0 || k->ev[i].seq > k->ev[i - 1].seq);
        dst_result_release(&rs[i]);
    }
    free(rs);
    dst_store_free(other);
    collector_free(k);
}

/* A feed still running when the store is freed is stopped with it (no leak, no crash). */
static void test_free_stops(void **state)
{
    struct fixture *f = *state;
    struct collector *k = collector_new();

    assert_int_equal(dst_store_feed_start(f->s, collect, k), 0);
    dst_store_free(f->s);
    f->s = NULL;
    collector_free(k);
}

/*
 * PostgreSQL restarted under a running feed: it LISTENs again and says so (resync), and the
 * changes after that are told again.
 */
static void test_pg_restart(void **state)
{
    struct fixture *f = *state;
    struct collector *k = collector_new();
    char id[DST_UUID_LEN + 1];
    struct dst_result r;
    int rc = -1;

    assert_int_equal(dst_store_feed_start(f->s, collect, k), 0);
    pg_stop(&fx_pg);
    assert_true(pg_start(&fx_pg));
    assert_true(wait_for(k, DST_STORE_CH_RESYNC, NULL) >= 0);
    dst_result_init(&r);
    dst_uuid_new(r.id);
    r.time_ms = 1700000000000LL;
    dst_result_set(&r.probe, "p");
    memcpy(id, r.id, sizeof(id));
    /* the pool's first use after the restart may meet a dead connection: DST_EDEP, then fine */
    for (int i = 0; i < 50 && rc != 0; i++) {
        rc = dst_store_insert(f->s, &r, 1, NULL);
        if (rc != 0)
            assert_int_equal(rc, DST_EDEP);
    }
    assert_int_equal(rc, 0);
    dst_result_release(&r);
    assert_true(wait_for(k, DST_STORE_CH_RESULT, id) >= 0);
    dst_store_feed_stop(f->s);
    collector_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ALL_STORES(test_own_changes),
        SHARED_STORES(test_other_handle),
        SHARED_STORES(test_seq_taken_again),
        SHARED_STORES(test_batch),
        ALL_STORES(test_free_stops),
        cmocka_unit_test_setup_teardown(test_pg_restart, setup_pg, teardown),
    };
    return store_run_tests(tests);
}
