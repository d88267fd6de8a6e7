/* store_fixture.h - the store tests' fixture: each test on SQLite (memory, file) and PostgreSQL */
#ifndef DST_TEST_STORE_FIXTURE_H
#define DST_TEST_STORE_FIXTURE_H

#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/json.h"
#include "core/result.h"
#include "core/store.h"
#include "pg_test.h"

enum fixture_kind { FX_MEMORY, FX_FILE, FX_PG };

struct fixture {
    enum fixture_kind kind;
    char dir[64];
    char path[96];
    char db[32]; /* FX_PG: this test's database */
    char url[200];
    struct dst_store *s;
};

/*
 * The PostgreSQL server of this test binary, started by store_group_setup (pid -1 when the
 * binaries are missing: the PostgreSQL tests skip); stopped by store_group_teardown, or at
 * exit when a failed assertion jumped past it.
 */
static struct pg_server fx_pg = {.pid = -1};
static bool fx_pg_missing;

static inline void fx_pg_atexit(void)
{
    if (fx_pg.pid > 0) {
        kill(fx_pg.pid, SIGKILL);
        waitpid(fx_pg.pid, NULL, 0);
        fx_pg.pid = -1;
    }
    if (fx_pg.dir[0])
        pg_rm_tree(fx_pg.dir);
    fx_pg.dir[0] = '\0';
}

static inline int store_group_setup(void **state)
{
    (void)state;
    if (fx_pg_missing)
        return 0;
    atexit(fx_pg_atexit);
    return pg_init(&fx_pg) ? 0 : -1;
}

static inline int store_group_teardown(void **state)
{
    (void)state;
    pg_stop(&fx_pg);
    fx_pg_atexit();
    return 0;
}

/* Runs sql on the fixture's database behind the store's back (SQLite file or PostgreSQL). */
static inline bool fixture_sql(struct fixture *f, const char *sql)
{
    sqlite3 *db = NULL;
    bool ok;

    if (f->kind == FX_PG)
        return pg_sql(&fx_pg, f->db, sql);
    ok = sqlite3_open(f->path, &db) == SQLITE_OK &&
         sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(db);
    return ok;
}

/* Each test runs on "sqlite::memory:", on a file in a fresh temp directory, and on PostgreSQL. */
static inline int setup(void **state, enum fixture_kind kind)
{
    static int ndb;
    struct fixture *f = calloc(1, sizeof(*f));
    char sql[64];

    f->kind = kind;
    if (kind == FX_FILE) {
        snprintf(f->dir, sizeof(f->dir), "/tmp/dst_store_XXXXXX");
        if (!mkdtemp(f->dir))
            return -1;
        snprintf(f->path, sizeof(f->path), "%s/results.db", f->dir);
        snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
    } else if (kind == FX_PG) {
        snprintf(f->db, sizeof(f->db), "t%d", ++ndb); /* a fresh database per test */
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", f->db);
        if (!pg_sql(&fx_pg, "postgres", sql))
            return -1;
        pg_url(&fx_pg, f->db, f->url, sizeof(f->url));
    } else {
        snprintf(f->url, sizeof(f->url), "sqlite::memory:");
    }
    if (dst_store_open(f->url, &f->s) != 0)
        return -1;
    *state = f;
    return 0;
}

static inline int setup_mem(void **state)
{
    return setup(state, FX_MEMORY);
}

static inline int setup_file(void **state)
{
    return setup(state, FX_FILE);
}

static inline int setup_pg(void **state)
{
    return setup(state, FX_PG);
}

static inline int teardown(void **state)
{
    struct fixture *f = *state;
    char p[128];
    dst_store_free(f->s);
    if (f->kind == FX_FILE) {
        static const char *const suffix[] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
            snprintf(p, sizeof(p), "%s%s", f->path, suffix[i]);
            unlink(p);
        }
        rmdir(f->dir);
    } else if (f->kind == FX_PG) {
        snprintf(p, sizeof(p), "DROP DATABASE %s WITH (FORCE)", f->db);
        pg_sql(&fx_pg, "postgres", p);
    }
    free(f);
    return 0;
}

/* A test on every backend: SQLite in memory, SQLite in a file, PostgreSQL. */
/* Every result of s in seq order, as JSON without seq (a copy's target numbers its own rows). */
static inline int fx_add_json(const struct dst_result *r, void *ud)
{
    json_t *j = dst_result_to_json(r);
    json_object_del(j, "seq");
    json_array_append_new(ud, j);
    return 0;
}

static inline json_t *fx_all_results(struct dst_store *s)
{
    struct dst_store_query q;
    json_t *a = json_array();

    dst_store_query_init(&q);
    q.sort = DST_F_SEQ;
    q.desc = false;
    assert_int_equal(dst_store_query(s, &q, fx_add_json, a), 0);
    return a;
}

#define ALL_STORES(fn)                                             \
    cmocka_unit_test_setup_teardown(fn, setup_mem, teardown),      \
        cmocka_unit_test_setup_teardown(fn, setup_file, teardown), \
        cmocka_unit_test_setup_teardown(fn, setup_pg, teardown)

/* A test on the stores another handle can open again: SQLite in a file, PostgreSQL. */
#define SHARED_STORES(fn)                                      \
    cmocka_unit_test_setup_teardown(fn, setup_file, teardown), \
        cmocka_unit_test_setup_teardown(fn, setup_pg, teardown)

/*
 * Runs the group with the PostgreSQL server of store_group_setup; without PostgreSQL binaries
 * the tests on it are left out, saying so (the rest run).
 */
static inline int store_run(const char *name, const struct CMUnitTest *tests, size_t n)
{
    struct CMUnitTest *keep = calloc(n, sizeof(*keep));
    size_t m = 0;

    fx_pg_missing = !pg_bin_find(&fx_pg);
    for (size_t i = 0; i < n; i++)
        if (!fx_pg_missing || tests[i].setup_func != setup_pg)
            keep[m++] = tests[i];
    if (fx_pg_missing)
        fprintf(stderr,
                "store_fixture: no PostgreSQL binaries (/usr/lib/postgresql/N/bin or "
                "$DSTMC_PG_BIN; scripts/deps.sh installs them): %zu postgresql tests skipped\n",
                n - m);
    int rc = _cmocka_run_group_tests(name, keep, m, store_group_setup, store_group_teardown);
    free(keep);
    return rc;
}

#define store_run_tests(tests) store_run(#tests, tests, sizeof(tests) / sizeof((tests)[0]))

#endif
