/* test_store_copy.c - contract tests of store_copy.c: a store into another, SQLite <-> PostgreSQL */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cred.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/result.h"
#include "core/store.h"
#include "core/store_copy.h"
#include "core/uuid.h"

#include "store_fixture.h"

#include "rollup_copy_fixture.h"

#define T0 1700000000000LL

/*
 * The other side of a copy: for a SQLite fixture a fresh PostgreSQL database (SQLite in memory
 * without PostgreSQL binaries), for a PostgreSQL fixture a SQLite file. So each test copies
 * SQLite -> PostgreSQL and PostgreSQL -> SQLite.
 */
struct other {
    char dir[64], path[96], db[32], url[200];
    struct dst_store *s;
};

static void other_open(const struct fixture *f, struct other *o)
{
    static int nother;
    char sql[64];

    memset(o, 0, sizeof(*o));
    if (f->kind == FX_PG) {
        snprintf(o->dir, sizeof(o->dir), "/tmp/dst_copy_XXXXXX");
        assert_non_null(mkdtemp(o->dir));
        snprintf(o->path, sizeof(o->path), "%s/to.db", o->dir);
        snprintf(o->url, sizeof(o->url), "sqlite:%s", o->path);
    } else if (!fx_pg_missing) {
        snprintf(o->db, sizeof(o->db), "other%d", ++nother);
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", o->db);
        assert_true(pg_sql(&fx_pg, "postgres", sql));
        pg_url(&fx_pg, o->db, o->url, sizeof(o->url));
    } else {
        snprintf(o->url, sizeof(o->url), "sqlite::memory:");
    }
    assert_int_equal(dst_store_open(o->url, &o->s), 0);
}

static void other_close(struct other *o)
{
    char p[128];

    dst_store_free(o->s);
    if (o->path[0]) {
        static const char *const suffix[] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
            snprintf(p, sizeof(p), "%s%s", o->path, suffix[i]);
            unlink(p);
        }
        rmdir(o->dir);
    } else if (o->db[0]) {
        snprintf(p, sizeof(p), "DROP DATABASE %s WITH (FORCE)", o->db);
        pg_sql(&fx_pg, "postgres", p);
    }
}

/* n results with every kind of column: NULLs, odd text, demo and excluded rows, failures. */
static void fill(struct dst_store *s, int first, int n)
{
    struct dst_result *rs = calloc((size_t)n, sizeof(*rs));

    for (int k = 0; k < n; k++) {
        int i = first + k;
        struct dst_result *r = &rs[k];
        dst_result_init(r);
        dst_uuid_new(r->id);
        r->time_ms = T0 + i * 60000LL;
        r->status = i % 5 == 4 ? DST_RESULT_FAILED : DST_RESULT_OK;
        dst_result_set(&r->error, i % 5 == 4 ? "timeout: \"quoted\" \\ {braces}, commas" : NULL);
        dst_result_set(&r->probe, i % 2 ? "attic ünïcode" : "cellar");
        dst_result_set(&r->server_host, i % 3 ? "host,with,commas" : NULL);
        r->download_bps = i % 7 ? 1e8 / 3 + i : NAN; /* 17 digits matter */
        r->upload_bps = 2.5e7 + i;
        r->ping_ms = 0.1 + i;
        r->bytes_down = i % 4 ? 123456789012LL + i : -1;
        r->server_id = i;
        r->client_lat = -33.123456789;
        r->demo = i % 3 == 0;
        r->excluded = i % 4 == 1;
    }
    assert_int_equal(dst_store_insert(s, rs, (size_t)n, NULL), 0);
    for (int k = 0; k < n; k++)
        dst_result_release(&rs[k]);
    free(rs);
}

static void assert_same_results(struct dst_store *a, struct dst_store *b)
{
    json_t *x = fx_all_results(a), *y = fx_all_results(b);
    if (!json_equal(x, y)) {
        char *sx = json_dumps(x, JSON_REAL_PRECISION(17)), *sy = json_dumps(y, 0);
        fprintf(stderr, "want %.600s\n got %.600s\n", sx, sy);
        free(sx), free(sy);
    }
    assert_true(json_equal(x, y));
    json_decref(x);
    json_decref(y);
}

static int64_t count_all(struct dst_store *s)
{
    struct dst_store_query q;
    int64_t n = -1;

    dst_store_query_init(&q);
    assert_int_equal(dst_store_count(s, &q, &n), 0);
    return n;
}

static const struct dst_store_tally *tally(const struct dst_store_report *rep, const char *kind)
{
    for (int i = 0; i < rep->nkinds; i++)
        if (strcmp(rep->kinds[i].kind, kind) == 0)
            return &rep->kinds[i];
    fail_msg("no tally of %s", kind);
    return NULL;
}

/* A token, a session of it and two settings on s; the token's text into text. */
static void fill_rest(struct dst_store *s, char text[DST_CRED_TEXT_LEN + 1])
{
    char stext[DST_CRED_TEXT_LEN + 1];
    struct dst_cred tok, ses;
    json_t *v = json_pack("{s:b, s:[{s:s}]}", "paused", 0, "schedules", "cron", "*/5 * * * *");

    assert_int_equal(dst_cred_token_new(s, "probe attic", 3, 0, text, &tok), 0);
    assert_int_equal(dst_cred_session_new(s, &tok, tok.id, 3600000, stext, &ses), 0);
    assert_int_equal(dst_store_setting_put(s, "schedules", v, DST_STORE_ANY_VERSION, NULL), 0);
    json_decref(v);
    assert_int_equal(dst_store_setting_put_text(s, "thresholds", "{\"down\":1e8}", 42), 0);
}

static void test_copy_everything(void **state)
{
    struct fixture *f = *state;
    struct other o;
    struct dst_store_report rep;
    struct dst_store_copy_opts opts = {f->url, 7, NULL, NULL};
    char text[DST_CRED_TEXT_LEN + 1];
    struct dst_store_cred *ca = NULL, *cb = NULL;
    size_t na = 0, nb = 0;
    struct dst_cred who;
    const char *why = NULL;
    json_t *v = NULL;

    fill(f->s, 0, 40);
    fill_rest(f->s, text);
    other_open(f, &o);
    assert_int_equal(dst_store_copy(f->s, o.s, &opts, &rep), 0);
    assert_int_equal(tally(&rep, "result")->copied, 40);
    assert_int_equal(tally(&rep, "credential")->copied, 2);
    assert_int_equal(tally(&rep, "setting")->copied, 2);
    assert_same_results(f->s, o.s);
    /* credentials verbatim: the token made on the source is valid on the target */
    assert_int_equal(dst_store_cred_list(f->s, NULL, &ca, &na), 0);
    assert_int_equal(dst_store_cred_list(o.s, NULL, &cb, &nb), 0);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(ca[i].id, cb[i].id);
        assert_string_equal(ca[i].hash, cb[i].hash);
        assert_string_equal(ca[i].kind, cb[i].kind);
        assert_true(ca[i].parent ? strcmp(ca[i].parent, cb[i].parent) == 0 : !cb[i].parent);
        assert_int_equal(ca[i].expires_ms, cb[i].expires_ms);
    }
    dst_store_creds_free(ca, na);
    dst_store_creds_free(cb, nb);
    assert_int_equal(dst_cred_verify(o.s, text, false, &who, &why), 0);
    assert_string_equal(who.name, "probe attic");
    assert_int_equal(dst_store_setting_get(o.s, "thresholds", &v, NULL), 0);
    assert_true(json_is_object(v));
    json_decref(v);
    other_close(&o);
}

/* A second copy reads no result (the mark) and writes nothing; without a mark it skips all. */
static void test_copy_twice_copies_nothing(void **state)
{
    struct fixture *f = *state;
    struct other o;
    struct dst_store_report rep;
    struct dst_store_copy_opts opts = {f->url, 10, NULL, NULL};
    char text[DST_CRED_TEXT_LEN + 1];

    fill(f->s, 0, 25);
    fill_rest(f->s, text);
    other_open(f, &o);
    assert_int_equal(dst_store_copy(f->s, o.s, &opts, &rep), 0);
    assert_int_equal(dst_store_copy(f->s, o.s, &opts, &rep), 0);
    for (int i = 0; i < rep.nkinds; i++)
        assert_int_equal(rep.kinds[i].copied, 0);
    assert_int_equal(tally(&rep, "result")->total, 0); /* went on after the mark: none */
    assert_int_equal(tally(&rep, "setting")->existing, 2);
    assert_int_equal(tally(&rep, "credential")->existing, 2);
    opts.from_name = NULL; /* no mark: every row looked at, each skipped */
    assert_int_equal(dst_store_copy(f->s, o.s, &opts, &rep), 0);
    assert_int_equal(tally(&rep, "result")->copied, 0);
    assert_int_equal(tally(&rep, "result")->existing, 25);
    assert_int_equal(count_all(o.s), 25);
    assert_same_results(f->s, o.s);
    other_close(&o);
}

static int stop_after_two(const struct dst_store_tally *t, void *ud)
{
    int *batches = ud;
    return strcmp(t->kind, "result") == 0 && ++*batches == 2 ? 1 : 0;
}

/* Stopped after two batches (as by a kill), then run again: it goes on after the mark. */
static void test_copy_resumes(void **state)
{
    struct fixture *f = *state;
    struct other o;
    struct dst_store_report rep;
    int batches = 0;
    struct dst_store_copy_opts opts = {f->url, 10, stop_after_two, &batches};

    fill(f->s, 0, 45);
    other_open(f, &o);
    assert_int_equal(dst_store_copy(f->s, o.s, &opts, &rep), 1);
    assert_int_equal(count_all(o.s), 20);
    fill(f->s, 45, 5); /* the source goes on meanwhile */
    opts.progress = NULL;
    assert_int_equal(dst_store_copy(f->s, o.s, &opts, &rep), 0);
    assert_int_equal(tally(&rep, "result")->total, 30); /* only what came after the mark */
    assert_int_equal(tally(&rep, "result")->copied, 30);
    assert_int_equal(count_all(o.s), 50);
    assert_same_results(f->s, o.s);
    other_close(&o);
}

/*
 * The newest source row deleted and another stored: SQLite gives it the deleted row's seq, at
 * or below the mark. The mark's id is gone, so the next copy looks at every row again.
 */
static void test_copy_mark_gone(void **state)
{
    struct fixture *f = *state;
    struct other o;
    struct dst_store_report rep;
    struct dst_store_copy_opts opts = {f->url, 4, NULL, NULL};
    struct dst_store_query q;
    int64_t n = 0;

    fill(f->s, 0, 10);
    other_open(f, &o);
    assert_int_equal(dst_store_copy(f->s, o.s, &opts, &rep), 0);
    dst_store_query_init(&q);
    dst_store_query_add(&q,
                        (struct dst_cond){DST_F_TIME, DST_OP_GE, DST_V_INT, .i = T0 + 9 * 60000});
    assert_int_equal(dst_store_delete_where(f->s, &q, false, false, &n), 0);
    assert_int_equal(n, 1);
    fill(f->s, 20, 1);
    assert_int_equal(dst_store_copy(f->s, o.s, &opts, &rep), 0);
    assert_int_equal(tally(&rep, "result")->copied, 1);
    assert_int_equal(tally(&rep, "result")->existing, 9);
    assert_int_equal(count_all(o.s), 11); /* the row deleted on the source stays on the target */
    other_close(&o);
}

/* One store under two names is found out; two stores are not one. */
static void test_same_store(void **state)
{
    struct fixture *f = *state;
    struct dst_store *again = NULL;
    struct other o;
    bool same = false;

    assert_int_equal(dst_store_open(f->url, &again), 0);
    assert_int_equal(dst_store_same(f->s, again, &same), 0);
    assert_true(same);
    dst_store_free(again);
    other_open(f, &o);
    assert_int_equal(dst_store_same(f->s, o.s, &same), 0);
    assert_false(same);
    other_close(&o);
}

/* A setting that differs on the target takes the source's value; an equal one is skipped. */
static void test_copy_settings_source_wins(void **state)
{
    struct fixture *f = *state;
    struct other o;
    struct dst_store_report rep;
    struct dst_store_copy_opts opts = {f->url, 0, NULL, NULL};
    json_t *v = NULL;

    assert_int_equal(dst_store_setting_put_text(f->s, "a", "[1]", 5), 0);
    assert_int_equal(dst_store_setting_put_text(f->s, "b", "\"x\"", 6), 0);
    other_open(f, &o);
    assert_int_equal(dst_store_setting_put_text(o.s, "a", "[2]", 7), 0);
    assert_int_equal(dst_store_setting_put_text(o.s, "b", "\"x\"", 8), 0);
    assert_int_equal(dst_store_setting_put_text(o.s, "c", "true", 9), 0);
    assert_int_equal(dst_store_copy(f->s, o.s, &opts, &rep), 0);
    assert_int_equal(tally(&rep, "setting")->copied, 1);
    assert_int_equal(tally(&rep, "setting")->existing, 1);
    assert_int_equal(dst_store_setting_get(o.s, "a", &v, NULL), 0);
    assert_int_equal(json_integer_value(json_array_get(v, 0)), 1);
    json_decref(v);
    assert_int_equal(dst_store_setting_get(o.s, "c", &v, NULL), 0); /* never deleted */
    json_decref(v);
    assert_int_equal(dst_store_setting_put_text(o.s, "bad", "{nope", 1), DST_EINVAL);
    other_close(&o);
}

/*
 * Rollups travel verbatim with the raw retention's mark: a source whose first days' raw rows
 * were pruned (only their rollups hold them) gives the other backend the same series; a late
 * row there keeps the copied totals (count + 1); a second copy puts nothing.
 */
static void test_copy_rollups(void **state)
{
    struct fixture *f = *state;
    struct other o;
    struct dst_store_report rep;
    struct dst_store_copy_opts opts = {f->url, 16, NULL, NULL};

    rc_fill_pruned(f->s);
    other_open(f, &o);
    assert_int_equal(dst_store_copy(f->s, o.s, &opts, &rep), 0);
    const struct dst_store_tally *t = tally(&rep, "rollup");
    assert_int_equal(t->copied, 2 * RC_DAYS * 25);
    assert_int_equal(t->done, t->total);
    assert_int_equal(dst_store_copy(f->s, o.s, &opts, &rep), 0);
    assert_int_equal(tally(&rep, "rollup")->copied, 0);
    assert_int_equal(tally(&rep, "rollup")->existing, 2 * RC_DAYS * 25);
    rc_assert_copied(f->s, o.s);
    other_close(&o);
}

/* A copy never lowers the target's mark; a rollup that cannot have been rolled is refused. */
static void test_rollups_put(void **state)
{
    struct fixture *f = *state;
    struct dst_rollup r = {
        .step_ms = DST_ROLLUP_HOUR_MS, .t_ms = RC_DAY0, .probe = "p", .count = 2, .failed = 1};
    int64_t wm = 0, made = -1;

    assert_int_equal(dst_store_raw_pruned(f->s, &wm), 0);
    assert_int_equal(wm, DST_STORE_NEVER_PRUNED);
    assert_int_equal(dst_store_rollups_put(f->s, &r, 1, RC_DAY0 + 86400000LL, &made), 0);
    assert_int_equal(made, 1);
    assert_int_equal(dst_store_rollups_put(f->s, &r, 1, RC_DAY0, &made), 0);
    assert_int_equal(made, 0);
    assert_int_equal(dst_store_raw_pruned(f->s, &wm), 0);
    assert_int_equal(wm, RC_DAY0 + 86400000LL);
    struct dst_rollup bad[] = {r, r, r, r};
    bad[0].step_ms = 60000;
    bad[1].t_ms += 1;
    bad[2].probe = "";
    bad[3].failed = 3;
    for (int i = 0; i < 4; i++)
        assert_int_equal(dst_store_rollups_put(f->s, &bad[i], 1, DST_STORE_NEVER_PRUNED, NULL),
                         DST_EINVAL);
    assert_int_equal(dst_store_rollups_count(f->s, &made), 0);
    assert_int_equal(made, 1);
}

int main(void)
{
    dst_log_init("test_store_copy", DST_LOG_WARN);
    const struct CMUnitTest tests[] = {
        ALL_STORES(test_copy_everything), ALL_STORES(test_copy_twice_copies_nothing),
        ALL_STORES(test_copy_resumes),    ALL_STORES(test_copy_mark_gone),
        SHARED_STORES(test_same_store),   ALL_STORES(test_copy_settings_source_wins),
        ALL_STORES(test_copy_rollups),    ALL_STORES(test_rollups_put),
    };
    return store_run_tests(tests);
}
