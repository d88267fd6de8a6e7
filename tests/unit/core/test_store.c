/* test_store.c - unit tests of store.c and its backends (SQLite, PostgreSQL) through its API */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/log.h"
#include "core/result.h"
#include "core/store.h"
#include "core/uuid.h"

#include "store_fixture.h"

#define T0  1700000000000LL /* 2023-11-14T22:13:20Z */
#define MIN 60000LL

/* A valid result: probe p at time t with the given download speed. */
static void mk(struct dst_result *r, const char *probe, int64_t t, double down)
{
    dst_result_init(r);
    dst_uuid_new(r->id);
    r->time_ms = t;
    dst_result_set(&r->probe, probe);
    r->download_bps = down;
}

static void insert1(struct dst_store *s, struct dst_result *r)
{
    bool created = false;
    char err[200];
    assert_int_equal(dst_result_validate(r, err, sizeof(err)), 0);
    assert_int_equal(dst_store_insert(s, r, 1, &created), 0);
    assert_true(created);
}

static int64_t count_all(struct dst_store *s)
{
    struct dst_store_query q;
    int64_t n = -1;
    dst_store_query_init(&q);
    assert_int_equal(dst_store_count(s, &q, &n), 0);
    return n;
}

/* Collects the seqs a query returns. */
struct seqs {
    int64_t v[256];
    int n;
};

static int collect(const struct dst_result *r, void *ud)
{
    struct seqs *x = ud;
    assert_true(x->n < 256);
    x->v[x->n++] = r->seq;
    return 0;
}

static struct seqs run(struct dst_store *s, const struct dst_store_query *q)
{
    struct seqs x = {.n = 0};
    assert_int_equal(dst_store_query(s, q, collect, &x), 0);
    return x;
}

static void assert_seqs(struct seqs x, const int64_t *want, int n)
{
    assert_int_equal(x.n, n);
    for (int i = 0; i < n; i++)
        if (x.v[i] != want[i])
            fail_msg("row %d: seq %lld, want %lld", i, (long long)x.v[i], (long long)want[i]);
}

/* ---- open, URLs, migrations ---- */

static void test_url_check(void **state)
{
    (void)state;
    char err[128];
    struct dst_store *s = NULL;
    assert_int_equal(dst_store_url_check("sqlite:/var/lib/dstmc/results.db", err, sizeof(err)), 0);
    assert_int_equal(dst_store_url_check("sqlite::memory:", err, sizeof(err)), 0);
    assert_int_equal(dst_store_url_check("sqlite:", err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "needs a path"));
    assert_int_equal(dst_store_url_check("postgresql://db/x", err, sizeof(err)), 0);
    assert_int_equal(
        dst_store_url_check("postgres://u:p@db:5433/x?sslmode=require", err, sizeof(err)), 0);
    assert_int_equal(dst_store_url_check("postgresql:///x?host=/tmp/d&port=5", err, sizeof(err)),
                     0);
    /* libpq reads the URL and says what is wrong with it */
    assert_int_equal(dst_store_url_check("postgresql://[::1/x", err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "postgresql URL: "));
    assert_non_null(strstr(err, "IPv6"));
    assert_int_equal(dst_store_url_check("postgresql://h/x?nosuchoption=1", err, sizeof(err)),
                     DST_EINVAL);
    assert_non_null(strstr(err, "nosuchoption"));
    assert_int_equal(dst_store_url_check("mysql://x", err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "postgresql://"));
    assert_int_equal(dst_store_url_check(NULL, NULL, 0), DST_EINVAL);
    assert_int_equal(dst_store_open("postgresql://h/x?nosuchoption=1", &s), DST_EINVAL);
    assert_int_equal(dst_store_open("redis://x", &s), DST_EINVAL);
    assert_null(s);
    /* a server that is not there: the open fails (logged), nothing is returned */
    int held = -1, port = st_refusing_port(&held);
    char url[96];
    snprintf(url, sizeof(url), "postgresql://127.0.0.1:%d/x?connect_timeout=5", port);
    enum dst_log_level level = dst_log_get_level();
    dst_log_set_level(DST_LOG_ERROR + 1);
    assert_int_equal(dst_store_open(url, &s), DST_EDEP);
    dst_log_set_level(level);
    close(held);
    assert_null(s);
    assert_int_equal(dst_store_open("sqlite:/nonexistent-dir/x/y.db", &s), DST_EDEP);
    assert_null(s);
    /* what that open finds out, told without opening anything */
    assert_int_equal(dst_store_url_check_path("sqlite:/nonexistent-dir/x/y.db", err, sizeof(err)),
                     DST_EINVAL);
    assert_non_null(strstr(err, "/nonexistent-dir/x: No such file or directory"));
    assert_int_equal(dst_store_url_check_path("sqlite:/", err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "'/' is not a file"));
    assert_int_equal(dst_store_url_check_path("sqlite::memory:", err, sizeof(err)), 0);
    assert_int_equal(dst_store_url_check_path("mysql://x", err, sizeof(err)), 0);
    dst_store_free(NULL);
}

static void test_migrations(void **state)
{
    struct fixture *f = *state;
    struct dst_store *again = NULL;
    struct dst_result r;

    int version = dst_store_schema_version(f->s); /* the count is not fixed here: it grows */
    assert_true(version >= 6);                    /* 5: settings' versions, 6: the rollups */
    assert_int_equal(dst_store_ping(f->s), 0);
    mk(&r, "home", T0, 1e6);
    insert1(f->s, &r);
    dst_result_release(&r);
    /* open twice: nothing is re-applied, the data stays */
    assert_int_equal(dst_store_open(f->url, &again), 0);
    assert_int_equal(dst_store_schema_version(again), version);
    assert_int_equal(count_all(again), 1);
    dst_store_free(again);
    again = NULL;
    /* a database from a newer dstmc is refused */
    assert_true(
        fixture_sql(f, "INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)"));
    enum dst_log_level level = dst_log_get_level();
    dst_log_set_level(DST_LOG_ERROR + 1);
    assert_int_equal(dst_store_open(f->url, &again), DST_EDEP);
    dst_log_set_level(level);
    assert_null(again);
}

/* ---- insert ---- */

static void test_insert_get(void **state)
{
    struct fixture *f = *state;
    struct dst_result r, got;
    char err[200];
    char upper[DST_UUID_LEN + 1];

    mk(&r, "home", T0, 85e6);
    r.status = DST_RESULT_FAILED;
    dst_result_set(&r.error, "timeout");
    dst_result_set(&r.server_country, "NO");
    r.server_lat = 59.902138;
    r.server_id = 42;
    r.bytes_down = 0;
    r.jitter_ms = 1.5;
    insert1(f->s, &r);
    assert_true(r.seq > 0);
    dst_result_init(&got);
    assert_int_equal(dst_store_get(f->s, r.id, &got), 0);
    json_t *a = dst_result_to_json(&r), *b = dst_result_to_json(&got);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    assert_int_equal(got.status, DST_RESULT_FAILED);
    assert_true(isnan(got.upload_bps));
    assert_int_equal(got.bytes_up, -1);
    assert_int_equal(got.bytes_down, 0);
    assert_int_equal(dst_result_validate(&got, err, sizeof(err)), 0);
    dst_result_release(&got);
    for (int i = 0; i <= DST_UUID_LEN; i++) /* ids are looked up in any case */
        upper[i] = (char)(r.id[i] >= 'a' && r.id[i] <= 'f' ? r.id[i] - 32 : r.id[i]);
    dst_result_init(&got);
    assert_int_equal(dst_store_get(f->s, upper, &got), 0);
    assert_int_equal(got.seq, r.seq);
    dst_result_release(&got);
    dst_result_init(&got);
    assert_int_equal(dst_store_get(f->s, "00000000-0000-4000-8000-000000000000", &got),
                     DST_ENOTFOUND);
    assert_int_equal(dst_store_get(f->s, "nope", &got), DST_ENOTFOUND);
    dst_result_release(&got);
    dst_result_release(&r);
    assert_int_equal(dst_store_insert(f->s, NULL, 0, NULL), 0);
}

static void test_insert_idempotent(void **state)
{
    struct fixture *f = *state;
    struct dst_result r, again;
    bool created = true;
    uint64_t v1 = 0, v2 = 0;

    mk(&r, "home", T0, 1e6);
    insert1(f->s, &r);
    assert_int_equal(dst_store_version(f->s, &v1), 0);
    dst_result_copy(&again, &r);
    again.seq = 0;
    again.download_bps = 2e6; /* same id, other data: the first one stays */
    assert_int_equal(dst_store_insert(f->s, &again, 1, &created), 0);
    assert_false(created);
    assert_int_equal(again.seq, 0); /* untouched when the row existed */
    assert_int_equal(count_all(f->s), 1);
    assert_int_equal(dst_store_version(f->s, &v2), 0);
    assert_true(v1 == v2);
    struct dst_result got;
    dst_result_init(&got);
    assert_int_equal(dst_store_get(f->s, r.id, &got), 0);
    assert_true(got.download_bps == 1e6);
    dst_result_release(&got);
    dst_result_release(&again);
    dst_result_release(&r);
}

static void test_insert_batch(void **state)
{
    struct fixture *f = *state;
    struct dst_result rs[4];
    bool created[4];
    uint64_t v0 = 0, v1 = 0;

    assert_int_equal(dst_store_version(f->s, &v0), 0);
    for (int i = 0; i < 4; i++)
        mk(&rs[i], "home", T0 + i * MIN, 1e6 * (i + 1));
    /* a duplicate id inside one batch: the first is stored, the later one counts as existing */
    memcpy(rs[3].id, rs[1].id, sizeof(rs[1].id));
    assert_int_equal(dst_store_insert(f->s, rs, 4, created), 0);
    assert_true(created[0] && created[1] && created[2]);
    assert_false(created[3]);
    assert_true(rs[0].seq < rs[1].seq && rs[1].seq < rs[2].seq);
    assert_int_equal(rs[3].seq, 0);
    assert_int_equal(count_all(f->s), 3);
    assert_int_equal(dst_store_version(f->s, &v1), 0);
    assert_true(v1 != v0);
    assert_int_equal(dst_store_insert(f->s, rs, 4, NULL), 0); /* all existed: nothing changes */
    assert_int_equal(count_all(f->s), 3);
    for (int i = 0; i < 4; i++)
        dst_result_release(&rs[i]);
}

static void test_insert_atomic(void **state)
{
    struct fixture *f = *state;
    struct dst_result rs[4];
    bool created[4] = {true, true, true, true};
    uint64_t v0 = 0, v1 = 0;

    assert_int_equal(dst_store_version(f->s, &v0), 0);
    for (int i = 0; i < 4; i++)
        mk(&rs[i], "home", T0 + i * MIN, 1e6);
    dst_result_set(&rs[2].probe, NULL); /* violates NOT NULL: the 3rd insert fails */
    enum dst_log_level level = dst_log_get_level();
    dst_log_set_level(DST_LOG_ERROR + 1); /* the failure is logged; keep the output quiet */
    assert_int_equal(dst_store_insert(f->s, rs, 4, created), DST_EDEP);
    rs[2].id[0] = '\0'; /* violates the id CHECK */
    dst_result_set(&rs[2].probe, "home");
    assert_int_equal(dst_store_insert(f->s, rs, 4, created), DST_EDEP);
    dst_log_set_level(level);
    assert_int_equal(count_all(f->s), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(rs[i].seq, 0);
    assert_int_equal(dst_store_version(f->s, &v1), 0);
    assert_true(v0 == v1);
    /* the store is still usable afterwards */
    dst_uuid_new(rs[2].id);
    assert_int_equal(dst_store_insert(f->s, rs, 4, created), 0);
    assert_int_equal(count_all(f->s), 4);
    for (int i = 0; i < 4; i++)
        dst_result_release(&rs[i]);
}

/* ---- queries ---- */

/* Fills the store with rows that make every field sortable and filterable. */
static void fill_varied(struct dst_store *s, int n)
{
    static const char *const names[] = {"b", "A", "a", "B", "c"};
    for (int i = 0; i < n; i++) {
        struct dst_result r;
        mk(&r, names[i % 5], T0 + (i % 3) * MIN, 1e6 * (i % 4));
        dst_result_set(&r.user, names[(i + 1) % 5]);
        dst_result_set(&r.location, names[(i + 2) % 5]);
        dst_result_set(&r.engine, "dummy");
        dst_result_set(&r.client_ip, "10.0.0.1");
        dst_result_set(&r.client_isp, names[(i + 3) % 5]);
        dst_result_set(&r.client_country, "NO");
        dst_result_set(&r.server_host, names[(i + 4) % 5]);
        dst_result_set(&r.server_country, i % 2 ? "NO" : "SE");
        r.device = i % 3;
        r.upload_bps = 1e5 * (i % 5);
        r.ping_ms = 10.4 + (i % 2);
        r.client_lat = 59.913396 + (i % 2) * 0.1;
        r.client_lon = 10.74133;
        r.server_lat = 59.902138;
        r.server_lon = 10.771267 + (i % 3);
        r.server_distance_m = 2430.5 * (i % 2);
        r.server_id = i % 4;
        if (i % 7 == 6) {
            r.status = DST_RESULT_FAILED;
            dst_result_set(&r.error, "refused");
        }
        insert1(s, &r);
        dst_result_release(&r);
    }
}

static void test_every_field(void **state)
{
    struct fixture *f = *state;
    struct dst_store_query q;

    fill_varied(f->s, 20);
    for (int fld = 0; fld < DST_F_COUNT_; fld++) {
        for (int desc = 0; desc < 2; desc++) { /* sorting: all rows, no SQL error */
            dst_store_query_init(&q);
            q.sort = (enum dst_field)fld;
            q.desc = desc;
            assert_int_equal(run(f->s, &q).n, 20);
        }
        for (int op = DST_OP_EQ; op <= DST_OP_LT; op++) { /* filtering on each kind of value */
            for (int kind = DST_V_TEXT; kind <= DST_V_REAL; kind++) {
                dst_store_query_init(&q);
                struct dst_cond c = {
                    (enum dst_field)fld, (enum dst_op)op, (enum dst_val_kind)kind, "a", 1, 1.0};
                assert_int_equal(dst_store_query_add(&q, c), 0);
                assert_true(run(f->s, &q).n <= 20);
                int64_t n = -1;
                assert_int_equal(dst_store_count(f->s, &q, &n), 0);
                assert_true(n >= 0 && n <= 20);
            }
        }
    }
    /* bad enums are refused before any SQL is built */
    dst_store_query_init(&q);
    q.sort = DST_F_COUNT_;
    assert_int_equal(dst_store_query(f->s, &q, collect, &(struct seqs){0}), DST_EINVAL);
    dst_store_query_init(&q);
    dst_store_query_add(&q, (struct dst_cond){DST_F_PROBE, DST_OP_EQ, DST_V_TEXT, NULL, 0, 0});
    assert_int_equal(dst_store_query(f->s, &q, collect, &(struct seqs){0}), DST_EINVAL);
    dst_store_query_init(&q);
    for (int i = 0; i < DST_QUERY_MAX_CONDS; i++)
        assert_int_equal(dst_store_query_add(&q, (struct dst_cond){.field = DST_F_SEQ}), 0);
    assert_int_equal(dst_store_query_add(&q, (struct dst_cond){.field = DST_F_SEQ}), DST_ETOOBIG);
}

/* Rows matching one condition. */
static int matches(struct dst_store *s, struct dst_cond c)
{
    struct dst_store_query q;
    dst_store_query_init(&q);
    dst_store_query_add(&q, c);
    return run(s, &q).n;
}

static void test_filters(void **state)
{
    struct fixture *f = *state;
    struct dst_result r;

    mk(&r, "home", T0, 85.123456789e6);
    r.client_lat = 59.913396;
    r.server_distance_m = 2430.75;
    r.ping_ms = 12.5;
    r.device = 3;
    r.status = DST_RESULT_FAILED;
    dst_result_set(&r.error, "x");
    dst_result_set(&r.user, "Teodoran");
    insert1(f->s, &r);
    dst_result_release(&r);
    mk(&r, "away", T0 + MIN, 10e6);
    r.ping_ms = 12.49;
    insert1(f->s, &r);
    dst_result_release(&r);

    /* doubles match exactly */
    assert_int_equal(
        matches(f->s, (struct dst_cond){DST_F_CLIENT_LAT, DST_OP_EQ, DST_V_REAL, .d = 59.913396}),
        1);
    assert_int_equal(
        matches(f->s, (struct dst_cond){DST_F_CLIENT_LAT, DST_OP_EQ, DST_V_REAL, .d = 59.9133961}),
        0);
    assert_int_equal(matches(f->s, (struct dst_cond){DST_F_DOWNLOAD, DST_OP_EQ, DST_V_REAL,
                                                     .d = 85.123456789e6}),
                     1);
    assert_int_equal(matches(f->s, (struct dst_cond){DST_F_SERVER_DISTANCE, DST_OP_EQ, DST_V_REAL,
                                                     .d = 2430.75}),
                     1);
    /* ping rounded to whole ms: 12.5 → 13, 12.49 → 12 */
    assert_int_equal(
        matches(f->s, (struct dst_cond){DST_F_PING_INT, DST_OP_EQ, DST_V_INT, .i = 13}), 1);
    assert_int_equal(
        matches(f->s, (struct dst_cond){DST_F_PING_INT, DST_OP_EQ, DST_V_INT, .i = 12}), 1);
    assert_int_equal(matches(f->s, (struct dst_cond){DST_F_DEVICE, DST_OP_EQ, DST_V_INT, .i = 3}),
                     1);
    /* ranges, text, status by name or by enum */
    assert_int_equal(
        matches(f->s, (struct dst_cond){DST_F_TIME, DST_OP_GE, DST_V_INT, .i = T0 + MIN}), 1);
    assert_int_equal(
        matches(f->s, (struct dst_cond){DST_F_TIME, DST_OP_LT, DST_V_INT, .i = T0 + MIN}), 1);
    assert_int_equal(
        matches(f->s, (struct dst_cond){DST_F_DOWNLOAD, DST_OP_LE, DST_V_REAL, .d = 10e6}), 1);
    assert_int_equal(
        matches(f->s, (struct dst_cond){DST_F_USER, DST_OP_EQ, DST_V_TEXT, .s = "Teodoran"}), 1);
    assert_int_equal(
        matches(f->s, (struct dst_cond){DST_F_PROBE, DST_OP_EQ, DST_V_TEXT, .s = "away"}), 1);
    assert_int_equal(
        matches(f->s, (struct dst_cond){DST_F_STATUS, DST_OP_EQ, DST_V_TEXT, .s = "failed"}), 1);
    assert_int_equal(
        matches(f->s, (struct dst_cond){DST_F_STATUS, DST_OP_EQ, DST_V_INT, .i = DST_RESULT_OK}),
        1);
    /* a quote in a value is just a value */
    assert_int_equal(
        matches(f->s, (struct dst_cond){DST_F_USER, DST_OP_EQ, DST_V_TEXT, .s = "x' OR '1'='1"}),
        0);
}

static void test_sort(void **state)
{
    struct fixture *f = *state;
    struct dst_store_query q;
    static const char *const users[] = {"b", "B", "a", "A", "b", "c"};
    static const double down[] = {5, 3, 5, 1, 3, 5};

    for (int i = 0; i < 6; i++) {
        struct dst_result r;
        mk(&r, "p", T0 + (i % 2) * MIN, down[i]);
        dst_result_set(&r.user, users[i]);
        insert1(f->s, &r); /* seqs 1..6 */
        dst_result_release(&r);
    }
    /* ties keep insertion order, ascending and descending */
    dst_store_query_init(&q);
    q.sort = DST_F_DOWNLOAD;
    q.desc = false;
    assert_seqs(run(f->s, &q), (int64_t[]){4, 2, 5, 1, 3, 6}, 6);
    q.desc = true;
    assert_seqs(run(f->s, &q), (int64_t[]){1, 3, 6, 2, 5, 4}, 6);
    /* the default: time descending, ties by seq */
    dst_store_query_init(&q);
    assert_seqs(run(f->s, &q), (int64_t[]){2, 4, 6, 1, 3, 5}, 6);
    /* text: case-insensitive, then upper before lower, then seq */
    q.sort = DST_F_USER;
    q.desc = false;
    assert_seqs(run(f->s, &q), (int64_t[]){4, 3, 2, 1, 5, 6}, 6);
    q.desc = true;
    assert_seqs(run(f->s, &q), (int64_t[]){6, 1, 5, 2, 3, 4}, 6);
    /* offset and limit */
    q.desc = false;
    q.offset = 2;
    q.limit = 3;
    assert_seqs(run(f->s, &q), (int64_t[]){2, 1, 5}, 3);
    q.offset = 5;
    assert_seqs(run(f->s, &q), (int64_t[]){6}, 1);
    q.offset = 9;
    assert_int_equal(run(f->s, &q).n, 0);
    q.offset = 0;
    q.limit = 0; /* no limit */
    assert_int_equal(run(f->s, &q).n, 6);
    int64_t n = 0;
    q.limit = 1;
    assert_int_equal(dst_store_count(f->s, &q, &n), 0);
    assert_int_equal(n, 6); /* count ignores offset and limit */
}

static int stop_after_two(const struct dst_result *r, void *ud)
{
    (void)r;
    return ++*(int *)ud == 2 ? 42 : 0;
}

static void test_callback_stops(void **state)
{
    struct fixture *f = *state;
    struct dst_store_query q;
    int calls = 0;

    fill_varied(f->s, 5);
    dst_store_query_init(&q);
    assert_int_equal(dst_store_query(f->s, &q, stop_after_two, &calls), 42);
    assert_int_equal(calls, 2);
    assert_int_equal(count_all(f->s), 5); /* the store is fine afterwards */
}

/* A row callback that queries the store again (the same statement, nested). */
static int nested(const struct dst_result *r, void *ud)
{
    struct dst_store *s = ud;
    struct dst_store_query q;
    struct seqs x = {.n = 0};
    (void)r;
    dst_store_query_init(&q);
    return dst_store_query(s, &q, collect, &x) || x.n != 3;
}

static void test_nested_query(void **state)
{
    struct fixture *f = *state;
    struct dst_store_query q;

    fill_varied(f->s, 3);
    dst_store_query_init(&q);
    assert_int_equal(dst_store_query(f->s, &q, nested, f->s), 0);
}

static void test_keyset(void **state)
{
    struct fixture *f = *state;
    struct dst_store_query q;
    /* seqs 1..7; times: 1:T0 2:T0+1 3:T0+1 4:T0+1 5:T0+2 6:T0+1 7:T0 */
    static const int64_t dt[] = {0, 1, 1, 1, 2, 1, 0};

    for (int i = 0; i < 7; i++) {
        struct dst_result r;
        mk(&r, i % 2 ? "a" : "b", T0 + dt[i] * MIN, 1);
        insert1(f->s, &r);
        dst_result_release(&r);
    }
    /* order: time desc, seq desc → 5, 6, 4, 3, 2, 7, 1; pages of 3 cut the equal times */
    static const int64_t want[] = {5, 6, 4, 3, 2, 7, 1};
    int64_t got = 0;
    dst_store_query_init(&q);
    q.keyset = true;
    q.sort = DST_F_USER; /* ignored */
    q.desc = false;
    q.limit = 3;
    for (int page = 0; page < 4; page++) {
        struct seqs x = run(f->s, &q);
        int expect = page < 2 ? 3 : page == 2 ? 1 : 0;
        assert_seqs(x, want + got, expect);
        got += x.n;
        if (x.n == 0)
            break;
        q.has_after = true; /* the cursor: the last row's (time, seq) */
        q.after_seq = x.v[x.n - 1];
        q.after_time = T0 + dt[x.v[x.n - 1] - 1] * MIN;
    }
    assert_int_equal(got, 7);
    /* with a condition too */
    dst_store_query_init(&q);
    q.keyset = true;
    q.has_after = true;
    q.after_time = T0 + MIN;
    q.after_seq = 4;
    dst_store_query_add(&q, (struct dst_cond){DST_F_PROBE, DST_OP_EQ, DST_V_TEXT, .s = "b"});
    assert_seqs(run(f->s, &q), (int64_t[]){3, 7, 1}, 3);
}

/* ---- version ---- */

static void test_version(void **state)
{
    struct fixture *f = *state;
    struct dst_store *other = NULL;
    struct dst_result r;
    uint64_t a = 0, b = 0, c = 0, d = 0;

    assert_int_equal(dst_store_version(f->s, &a), 0);
    mk(&r, "home", T0, 1);
    insert1(f->s, &r);
    assert_int_equal(dst_store_version(f->s, &b), 0);
    assert_true(a != b);
    r.seq = 0;
    assert_int_equal(dst_store_insert(f->s, &r, 1, NULL), 0); /* duplicate */
    assert_int_equal(dst_store_version(f->s, &c), 0);
    assert_true(b == c);
    dst_result_release(&r);
    if (f->kind == FX_MEMORY)
        return;
    /* another handle on the same file sees this one's inserts, and the other way round */
    assert_int_equal(dst_store_open(f->url, &other), 0);
    assert_int_equal(dst_store_version(other, &d), 0);
    assert_true(d == c);
    mk(&r, "home", T0, 1);
    insert1(other, &r);
    dst_result_release(&r);
    assert_int_equal(dst_store_version(f->s, &a), 0);
    assert_true(a != c);
    assert_int_equal(count_all(f->s), 2);
    mk(&r, "home", T0, 1);
    insert1(f->s, &r);
    dst_result_release(&r);
    assert_int_equal(dst_store_version(other, &b), 0);
    assert_true(b != a);
    dst_store_free(other);
}

/* ---- series ---- */

static void test_series(void **state)
{
    struct fixture *f = *state;
    struct dst_series_bucket *b = NULL;
    size_t n = 0;
    /* bucket 0 (T0..T0+10min): ok 10/20/60 Mbit/s, one failed; bucket 2: ok 5; bucket 1 empty */
    static const struct {
        int64_t t;
        double down, ping;
        bool failed;
        const char *probe;
    } rows[] = {
        {T0, 10e6, 10, false, "a"},           {T0 + 3 * MIN, 20e6, 20, false, "b"},
        {T0 + 9 * MIN, 60e6, 30, false, "a"}, {T0 + 5 * MIN, 0, 0, true, "a"},
        {T0 + 25 * MIN, 5e6, 7, false, "a"},  {T0 + 30 * MIN, 99e6, 1, false, "a"}, /* at to */
        {T0 - 1, 99e6, 1, false, "a"},                                              /* before */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct dst_result r;
        mk(&r, rows[i].probe, rows[i].t, rows[i].down);
        r.ping_ms = rows[i].ping;
        r.jitter_ms = rows[i].ping / 10;
        r.upload_bps = rows[i].down / 2;
        if (rows[i].failed) {
            r.status = DST_RESULT_FAILED;
            dst_result_set(&r.error, "refused");
        }
        insert1(f->s, &r);
        dst_result_release(&r);
    }
    struct dst_series_query q = {T0, T0 + 30 * MIN, 10 * MIN, NULL};
    assert_int_equal(dst_store_series(f->s, &q, &b, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(b[0].t_ms, T0);
    assert_int_equal(b[0].ok, 3);
    assert_int_equal(b[0].failed, 1);
    assert_true(b[0].download.min == 10e6 && b[0].download.max == 60e6);
    assert_true(b[0].download.avg == 30e6);
    assert_true(b[0].upload.min == 5e6 && b[0].upload.avg == 15e6 && b[0].upload.max == 30e6);
    assert_true(b[0].ping.min == 10 && b[0].ping.avg == 20 && b[0].ping.max == 30);
    assert_true(fabs(b[0].jitter.avg - 2) < 1e-12);
    assert_int_equal(b[1].t_ms, T0 + 20 * MIN);
    assert_int_equal(b[1].ok, 1);
    assert_int_equal(b[1].failed, 0);
    assert_true(b[1].download.min == 5e6 && b[1].download.avg == 5e6);
    free(b);
    /* one probe; a bucket with only failures has NAN stats */
    q.probe = "b";
    assert_int_equal(dst_store_series(f->s, &q, &b, &n), 0);
    assert_int_equal(n, 1);
    assert_true(b[0].ok == 1 && b[0].download.avg == 20e6);
    free(b);
    struct dst_series_query qf = {T0 + 5 * MIN, T0 + 6 * MIN, MIN, "a"};
    assert_int_equal(dst_store_series(f->s, &qf, &b, &n), 0);
    assert_int_equal(n, 1);
    assert_true(b[0].ok == 0 && b[0].failed == 1 && isnan(b[0].download.avg));
    assert_true(isnan(b[0].ping.min) && isnan(b[0].jitter.max));
    free(b);
    q.probe = "nobody";
    b = NULL;
    assert_int_equal(dst_store_series(f->s, &q, &b, &n), 0);
    assert_int_equal(n, 0);
    free(b);
    /* invalid requests */
    struct dst_series_query bad[] = {
        {T0, T0 + MIN, 0, NULL},   {T0, T0 + MIN, -5, NULL}, {T0, T0, MIN, NULL},
        {T0 + MIN, T0, MIN, NULL}, {0, 100001, 1, NULL},     {INT64_MIN, INT64_MAX, 1, NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(dst_store_series(f->s, &bad[i], &b, &n), DST_EINVAL);
    struct dst_series_query edge = {0, 100000, 1, NULL}; /* exactly 100000 buckets */
    assert_int_equal(dst_store_series(f->s, &edge, &b, &n), 0);
    free(b);
}

/* ---- probes ---- */

static void test_probes(void **state)
{
    struct fixture *f = *state;
    struct dst_probe_info *p = NULL;
    size_t n = 9;
    static const struct {
        const char *probe, *location;
        int64_t t;
        bool failed;
    } rows[] = {
        {"office", "desk", T0 + 5 * MIN, false}, {"home", "attic", T0, false},
        {"home", "cellar", T0 + 2 * MIN, true},  {"home", "kitchen", T0 + 2 * MIN, false},
        {"home", "hall", T0 + MIN, false},
    };

    assert_int_equal(dst_store_probes(f->s, &p, &n), 0);
    assert_int_equal(n, 0);
    dst_store_probes_free(p, n);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct dst_result r;
        mk(&r, rows[i].probe, rows[i].t, 1e6);
        dst_result_set(&r.location, rows[i].location);
        if (rows[i].failed) {
            r.status = DST_RESULT_FAILED;
            dst_result_set(&r.error, "busy");
        }
        insert1(f->s, &r);
        dst_result_release(&r);
    }
    assert_int_equal(dst_store_probes(f->s, &p, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(p[0].name, "home");
    assert_string_equal(p[0].location, "kitchen"); /* newest; equal times: the later insert */
    assert_int_equal(p[0].first_ms, T0);
    assert_int_equal(p[0].last_ms, T0 + 2 * MIN);
    assert_int_equal(p[0].results, 4);
    assert_int_equal(p[0].failed, 1);
    assert_int_equal(p[0].last.seq, 4);
    assert_string_equal(p[0].last.probe, "home");
    assert_string_equal(p[1].name, "office");
    assert_string_equal(p[1].location, "desk");
    assert_int_equal(p[1].results, 1);
    assert_int_equal(p[1].failed, 0);
    assert_int_equal(p[1].last.time_ms, T0 + 5 * MIN);
    dst_store_probes_free(p, n);
    dst_store_probes_free(NULL, 0);
}

/* ---- big batches; PostgreSQL: a server restart ---- */

/*
 * The server stops under an open store: each operation fails with DST_EDEP (503), none hangs
 * or crashes; once the server is back, the next operation reconnects and nothing is lost.
 */
static void test_pg_restart(void **state)
{
    struct fixture *f = *state;
    struct dst_result r, got;
    uint64_t v;

    mk(&r, "home", T0, 1e6);
    insert1(f->s, &r); /* the pool now holds an idle connection the restart will break */
    pg_stop(&fx_pg);
    enum dst_log_level level = dst_log_get_level();
    dst_log_set_level(DST_LOG_ERROR + 1);
    assert_int_equal(dst_store_ping(f->s), DST_EDEP);
    struct dst_result r2;
    mk(&r2, "home", T0 + MIN, 2e6);
    assert_int_equal(dst_store_insert(f->s, &r2, 1, NULL), DST_EDEP);
    assert_int_equal(dst_store_version(f->s, &v), DST_EDEP);
    dst_log_set_level(level);
    assert_true(pg_start(&fx_pg)); /* the same data directory and port */
    assert_int_equal(dst_store_ping(f->s), 0);
    insert1(f->s, &r2); /* the probe's retry from its outbox */
    assert_int_equal(count_all(f->s), 2);
    dst_result_init(&got);
    assert_int_equal(dst_store_get(f->s, r.id, &got), 0);
    assert_true(got.download_bps == 1e6);
    dst_result_release(&got);
    /* idle connections broken by a second restart are dropped on their next use */
    pg_stop(&fx_pg);
    assert_true(pg_start(&fx_pg));
    assert_int_equal(count_all(f->s), 2);
    dst_result_release(&r2);
    dst_result_release(&r);
}

/* A batch in one statement: a thousand rows, odd text, and ids already stored among them. */
static void test_insert_big_batch(void **state)
{
    struct fixture *f = *state;
    enum { N = 1000 };
    struct dst_result *rs = calloc(N, sizeof(*rs)), got;
    bool *created = calloc(N, sizeof(*created));

    for (int i = 0; i < N; i++) {
        mk(&rs[i], i % 2 ? "a\"b\\c,{d}" : "NULL", T0 + i, i % 3 ? 1e6 * i : NAN);
        dst_result_set(&rs[i].user, i % 5 ? NULL : "");
    }
    insert1(f->s, &rs[7]);
    int64_t seq7 = rs[7].seq;
    assert_int_equal(dst_store_insert(f->s, rs, N, created), 0);
    assert_false(created[7]);
    assert_int_equal(rs[7].seq, seq7);
    int64_t prev = 0;
    for (int i = 0; i < N; i++) { /* new rows numbered in the batch's order */
        if (i == 7)
            continue;
        assert_true(created[i]);
        assert_true(rs[i].seq > prev);
        prev = rs[i].seq;
    }
    assert_int_equal(count_all(f->s), N);
    for (int i = 0; i < N; i += 333) {
        dst_result_init(&got);
        assert_int_equal(dst_store_get(f->s, rs[i].id, &got), 0);
        json_t *a = dst_result_to_json(&rs[i]), *b = dst_result_to_json(&got);
        assert_true(json_equal(a, b));
        json_decref(a);
        json_decref(b);
        dst_result_release(&got);
    }
    for (int i = 0; i < N; i++)
        dst_result_release(&rs[i]);
    free(rs);
    free(created);
}

/* ---- threads ---- */

struct worker {
    struct dst_store *s;
    int id, failures;
};

static void *writer_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 200; i++) {
        struct dst_result r;
        mk(&r, w->id ? "w1" : "w0", T0 + i * MIN, 1e6 * i);
        bool created = false;
        if (dst_store_insert(w->s, &r, 1, &created) != 0 || !created)
            w->failures++;
        dst_result_release(&r);
    }
    return NULL;
}

static int count_rows(const struct dst_result *r, void *ud)
{
    (void)r;
    ++*(int *)ud;
    return 0;
}

static void *reader_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 150; i++) {
        struct dst_store_query q;
        struct dst_series_bucket *b = NULL;
        struct dst_probe_info *p = NULL;
        size_t n = 0;
        int rows = 0;
        uint64_t v;
        dst_store_query_init(&q);
        q.limit = 25;
        struct dst_series_query sq = {T0, T0 + 300 * MIN, 10 * MIN, i % 2 ? "w0" : NULL};
        if (dst_store_query(w->s, &q, count_rows, &rows) != 0 || rows > 25 ||
            dst_store_version(w->s, &v) != 0 || dst_store_series(w->s, &sq, &b, &n) != 0 ||
            dst_store_probes(w->s, &p, &n) != 0)
            w->failures++;
        free(b);
        dst_store_probes_free(p, n);
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct fixture *f = *state;
    pthread_t t[6];
    struct worker w[6];

    for (int i = 0; i < 6; i++) {
        w[i] = (struct worker){f->s, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, i < 2 ? writer_main : reader_main, &w[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    assert_int_equal(count_all(f->s), 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_check),
        SHARED_STORES(test_migrations),
        ALL_STORES(test_insert_get),
        ALL_STORES(test_insert_idempotent),
        ALL_STORES(test_insert_batch),
        ALL_STORES(test_insert_atomic),
        ALL_STORES(test_every_field),
        ALL_STORES(test_filters),
        ALL_STORES(test_sort),
        ALL_STORES(test_callback_stops),
        ALL_STORES(test_nested_query),
        ALL_STORES(test_keyset),
        ALL_STORES(test_version),
        ALL_STORES(test_series),
        ALL_STORES(test_probes),
        ALL_STORES(test_threads),
        ALL_STORES(test_insert_big_batch),
        cmocka_unit_test_setup_teardown(test_pg_restart, setup_pg, teardown),
    };
    dst_log_init("test_store", DST_LOG_WARN);
    return store_run_tests(tests);
}
