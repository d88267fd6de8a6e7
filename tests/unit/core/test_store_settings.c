/* test_store_settings.c - unit tests of the store's settings (store.c and the backends') */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/store.h"

#include "store_fixture.h"

/* Gets key and checks it equals the JSON text want. */
static void assert_setting(struct dst_store *s, const char *key, const char *want)
{
    json_t *got = NULL, *exp = json_loads(want, JSON_DECODE_ANY, NULL);
    assert_non_null(exp);
    assert_int_equal(dst_store_setting_get(s, key, &got), 0);
    assert_non_null(got);
    assert_true(json_equal(got, exp));
    json_decref(got);
    json_decref(exp);
}

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    json_t *v = json_pack("{s:b, s:[{s:s, s:n}]}", "paused", 0, "schedules", "cron", "*/15 * * * *",
                          "target");

    assert_int_equal(dst_store_setting_put(f->s, "schedules", v), 0);
    assert_setting(
        f->s, "schedules",
        "{\"paused\":false,\"schedules\":[{\"cron\":\"*/15 * * * *\",\"target\":null}]}");
    json_decref(v);
    /* any JSON value, not only objects */
    v = json_integer(42);
    assert_int_equal(dst_store_setting_put(f->s, "answer", v), 0);
    json_decref(v);
    assert_setting(f->s, "answer", "42");
    assert_setting(f->s, "schedules",
                   "{\"paused\":false,\"schedules\":"
                   "[{\"cron\":\"*/15 * * * *\",\"target\":null}]}");
}

static void test_overwrite(void **state)
{
    struct fixture *f = *state;
    json_t *a = json_pack("{s:i}", "v", 1), *b = json_pack("{s:s}", "w", "two");

    assert_int_equal(dst_store_setting_put(f->s, "k", a), 0);
    assert_int_equal(dst_store_setting_put(f->s, "k", b), 0);
    assert_setting(f->s, "k", "{\"w\":\"two\"}");
    json_decref(a);
    json_decref(b);
}

static void test_absent_and_bad_keys(void **state)
{
    struct fixture *f = *state;
    json_t *out = (json_t *)0x1, *v = json_true();
    char long_key[200];

    assert_int_equal(dst_store_setting_get(f->s, "nothing", &out), DST_ENOTFOUND);
    assert_ptr_equal(out, (json_t *)0x1); /* untouched */
    assert_int_equal(dst_store_setting_get(f->s, "", &out), DST_EINVAL);
    assert_int_equal(dst_store_setting_put(f->s, "", v), DST_EINVAL);
    assert_int_equal(dst_store_setting_put(f->s, "k", NULL), DST_EINVAL);
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    assert_int_equal(dst_store_setting_put(f->s, long_key, v), DST_EINVAL);
    assert_int_equal(dst_store_setting_get(f->s, long_key, &out), DST_EINVAL);
    assert_ptr_equal(out, (json_t *)0x1);
}

/* A value survives closing and reopening the file. */
static void test_reopen_keeps(void **state)
{
    struct fixture *f = *state;
    json_t *v = json_pack("[s]", "x");

    assert_int_equal(dst_store_setting_put(f->s, "k", v), 0);
    json_decref(v);
    dst_store_free(f->s);
    f->s = NULL;
    assert_int_equal(dst_store_open(f->url, &f->s), 0);
    assert_setting(f->s, "k", "[\"x\"]");
}

/* Stored text that is not JSON (written by hand) is DST_EDEP, not a crash. */
static void test_corrupt_value(void **state)
{
    struct fixture *f = *state;
    json_t *out = NULL;

    assert_true(fixture_sql(f, "INSERT INTO settings (key, value, updated_ms)"
                               " VALUES ('bad', '{nope', 0)"));
    assert_int_equal(dst_store_setting_get(f->s, "bad", &out), DST_EDEP);
    assert_null(out);
}

/* A version-1 database (results, no settings) migrates to the newest and keeps its results. */
static void test_migration_from_v1(void **state)
{
    char dir[] = "/tmp/dst_settings_v1_XXXXXX", path[96], url[112], p[128];
    sqlite3 *db = NULL;
    struct dst_store *s = NULL;
    struct dst_store_query q;
    int64_t n = -1;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/v1.db", dir);
    snprintf(url, sizeof(url), "sqlite:%s", path);
    /* migration 1's tables (without its indexes and checks), with one result */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(
            db,
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER"
            " NOT NULL);"
            "INSERT INTO schema_migrations VALUES (1, 0);"
            "CREATE TABLE results (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
            " time_ms INTEGER NOT NULL, status TEXT NOT NULL, error TEXT, probe TEXT NOT NULL,"
            " location TEXT, user TEXT, device INTEGER, engine TEXT, target TEXT,"
            " request_id TEXT, download_bps REAL, upload_bps REAL, ping_ms REAL,"
            " jitter_ms REAL, loss_pct REAL, bytes_down INTEGER, bytes_up INTEGER,"
            " duration_s REAL, streams INTEGER, server_id INTEGER, server_host TEXT,"
            " server_name TEXT, server_sponsor TEXT, server_country TEXT, server_lat REAL,"
            " server_lon REAL, server_distance_m REAL, client_ip TEXT, client_isp TEXT,"
            " client_country TEXT, client_lat REAL, client_lon REAL,"
            " received_ms INTEGER NOT NULL);"
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
            "INSERT INTO meta (key, value) VALUES ('deletes', 0);"
            "INSERT INTO results (id, time_ms, status, probe, download_bps, received_ms) VALUES"
            " ('6f1c0000-0000-4000-8000-000000000001', 1700000000000, 'ok', 'home', 1e6, 0);",
            NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(dst_store_open("sqlite::memory:", &s), 0);
    int version = dst_store_schema_version(s); /* a new store's: the latest */
    dst_store_free(s);
    s = NULL;
    assert_int_equal(dst_store_open(url, &s), 0);
    assert_int_equal(dst_store_schema_version(s), version);
    dst_store_query_init(&q);
    assert_int_equal(dst_store_count(s, &q, &n), 0);
    assert_int_equal(n, 1);
    json_t *v = json_string("kept"), *out = NULL;
    assert_int_equal(dst_store_setting_get(s, "k", &out), DST_ENOTFOUND);
    assert_int_equal(dst_store_setting_put(s, "k", v), 0);
    json_decref(v);
    dst_store_free(s);
    s = NULL;
    assert_int_equal(dst_store_open(url, &s), 0);
    assert_int_equal(dst_store_schema_version(s), version);
    assert_setting(s, "k", "\"kept\"");
    assert_int_equal(dst_store_count(s, &q, &n), 0);
    assert_int_equal(n, 1);
    dst_store_free(s);
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
        unlink(p);
    }
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ALL_STORES(test_round_trip),          ALL_STORES(test_overwrite),
        ALL_STORES(test_absent_and_bad_keys), SHARED_STORES(test_reopen_keeps),
        SHARED_STORES(test_corrupt_value),    cmocka_unit_test(test_migration_from_v1),
    };
    return store_run_tests(tests);
}
