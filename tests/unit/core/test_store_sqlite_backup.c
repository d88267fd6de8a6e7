/* test_store_sqlite_backup.c - unit tests of the SQLite store's online backup (dst_store_backup) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/result.h"
#include "core/store.h"
#include "core/uuid.h"

#include "store_fixture.h"

static void insert_one(struct dst_store *s, int64_t t)
{
    struct dst_result r;

    dst_result_init(&r);
    dst_uuid_new(r.id);
    r.time_ms = t;
    dst_result_set(&r.probe, "p");
    assert_int_equal(dst_store_insert(s, &r, 1, NULL), 0);
    dst_result_release(&r);
}

static int64_t count_all(struct dst_store *s)
{
    struct dst_store_query q;
    int64_t n = -1;

    dst_store_query_init(&q);
    assert_int_equal(dst_store_count(s, &q, &n), 0);
    return n;
}

/* The number of entries of dir (but . and ..). */
static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

struct writer {
    struct dst_store *s;
    atomic_bool stop;
    atomic_int written;
};

/* Inserts results until told to stop (at most 100000). */
static void *write_loop(void *arg)
{
    struct writer *w = arg;

    for (int i = 0; i < 100000 && !atomic_load(&w->stop); i++) {
        insert_one(w->s, 1000 + i);
        atomic_fetch_add(&w->written, 1);
    }
    return NULL;
}

/*
 * A backup taken while another connection writes: a store that opens, passes SQLite's
 * integrity check, and holds every row written before it began (and the settings).
 */
static void test_backup_while_writing(void **state)
{
    struct fixture *f = *state;
    struct dst_store *writer_s = NULL, *copy = NULL;
    struct writer w = {0};
    pthread_t th;
    char dest[160], url[200];
    json_t *v = json_true(), *got = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    for (int i = 0; i < 50; i++)
        insert_one(f->s, i);
    assert_int_equal(dst_store_setting_put(f->s, "k", v, DST_STORE_ANY_VERSION, NULL), 0);
    assert_int_equal(dst_store_open(f->url, &writer_s), 0); /* a second handle: another writer */
    w.s = writer_s;
    assert_int_equal(pthread_create(&th, NULL, write_loop, &w), 0);
    for (int i = 0; i < 100000 && atomic_load(&w.written) < 20; i++) /* writing for sure */
        sched_yield();
    int64_t before = 50 + atomic_load(&w.written);
    snprintf(dest, sizeof(dest), "%s/backup.db", f->dir);
    assert_int_equal(dst_store_backup(f->s, dest), 0);
    atomic_store(&w.stop, true);
    pthread_join(th, NULL);
    dst_store_free(writer_s);

    assert_int_equal(sqlite3_open_v2(dest, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
    snprintf(url, sizeof(url), "sqlite:%s", dest);
    assert_int_equal(dst_store_open(url, &copy), 0);
    int64_t n = count_all(copy);
    assert_true(n >= before);
    assert_true(n <= 50 + atomic_load(&w.written));
    assert_int_equal(dst_store_setting_get(copy, "k", &got, NULL), 0);
    assert_true(json_equal(got, v));
    json_decref(got);
    json_decref(v);
    dst_store_free(copy);
    assert_int_equal(unlink(dest), 0); /* and what opening it made, so teardown's rmdir works */
    snprintf(url, sizeof(url), "%s-wal", dest), unlink(url);
    snprintf(url, sizeof(url), "%s-shm", dest), unlink(url);
}

/* An existing file is never overwritten; no temporary file is left behind. */
static void test_backup_refuses_existing(void **state)
{
    struct fixture *f = *state;
    char dest[160];
    FILE *x;

    snprintf(dest, sizeof(dest), "%s/taken", f->dir);
    x = fopen(dest, "w");
    assert_non_null(x);
    fputs("mine", x);
    fclose(x);
    int before = entries(f->dir);
    assert_int_equal(dst_store_backup(f->s, dest), DST_ECONFLICT);
    assert_int_equal(entries(f->dir), before);
    snprintf(dest, sizeof(dest), "%s/no/such/dir/b.db", f->dir);
    assert_int_equal(dst_store_backup(f->s, dest), DST_EIO);
    assert_int_equal(entries(f->dir), before);
    snprintf(dest, sizeof(dest), "%s/taken", f->dir);
    unlink(dest);
}

/* Only a SQLite file has this backup: memory and PostgreSQL say DST_EINVAL. */
static void test_backup_not_here(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(dst_store_backup(f->s, "/tmp/dst_never_written.db"), DST_EINVAL);
    assert_int_equal(access("/tmp/dst_never_written.db", F_OK), -1);
}

int main(void)
{
    dst_log_init("test_store_sqlite_backup", DST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_backup_while_writing, setup_file, teardown),
        cmocka_unit_test_setup_teardown(test_backup_refuses_existing, setup_file, teardown),
        cmocka_unit_test_setup_teardown(test_backup_not_here, setup_mem, teardown),
        cmocka_unit_test_setup_teardown(test_backup_not_here, setup_pg, teardown),
    };
    return store_run_tests(tests);
}
