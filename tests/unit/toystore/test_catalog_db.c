/* test_catalog_db.c - unit tests of the catalog table, its journal and file (catalog_db.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/mem.h"
#include "toystore/toystore.h"

/* ---- helpers ---- */

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_catalog_db.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/catalog.txt", dir);
    return 0;
}

static int teardown(void **state)
{
    char tmp[160];

    (void)state;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(path);
    unlink(tmp);
    snprintf(tmp, sizeof(tmp), "%s.journal", path);
    unlink(tmp);
    snprintf(tmp, sizeof(tmp), "%s.journal.tmp", path);
    unlink(tmp);
    rmdir(dir);
    return 0;
}

static void put_file(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_all(const char *p, char *buf, size_t len)
{
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* The journal's text (up to its zeros). */
static char *journal(void)
{
    static char buf[1 << 16];
    char p[160];

    snprintf(p, sizeof(p), "%s.journal", path);
    return read_all(p, buf, sizeof(buf));
}

static void put_journal(const char *text)
{
    char p[160];

    snprintf(p, sizeof(p), "%s.journal", path);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *slurp(void)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* ---- the file ---- */

static void creates_then_reads_back(void **state)
{
    struct catalog_db *db = NULL;
    struct catalog_toy t;
    char err[256];
    bool dup = false;

    (void)state;
    assert_int_equal(catalog_db_open(path, true, 0, &db, err, sizeof(err)), 0);
    assert_string_equal(slurp(),
                        "Tux 25.99 80\nWhale 34.99 94\nElephant 29.99 87\nBird 39.99 98\n");
    assert_int_equal(catalog_db_buy(db, "Tux", 5, "r1", &t, &dup), 0);
    assert_int_equal(t.quantity, 75);
    assert_false(dup);
    /* in the journal once it returned; the file is written at a clean stop */
    assert_non_null(strstr(journal(), "\nb Tux 75 r1\n"));
    assert_non_null(strstr(slurp(), "Tux 25.99 80\n"));
    catalog_db_free(db); /* as a crash: no close */
    assert_int_equal(catalog_db_open(path, false, 0, &db, err, sizeof(err)), 0);
    assert_int_equal(catalog_db_get(db, "Tux", &t), 0);
    assert_int_equal(t.quantity, 75);
    assert_non_null(strstr(slurp(), "Tux 25.99 75\n")); /* open wrote the replayed table */
    /* the request id survived the restart: nothing taken twice */
    assert_int_equal(catalog_db_buy(db, "Tux", 5, "r1", &t, &dup), 0);
    assert_true(dup);
    assert_int_equal(t.quantity, 75);
    assert_int_equal(catalog_db_get(db, "Uno", &t), DST_ENOTFOUND); /* the file, not Lab 3's */
    catalog_db_free(db);
}

static void corrupted_file_is_left_alone(void **state)
{
    struct catalog_db *db = NULL;
    char err[256];
    const char *text = "Tux 25.99 80\nWhale 34.99 94\nElephant x 87\n";

    (void)state;
    put_file(text);
    assert_int_equal(catalog_db_open(path, false, 0, &db, err, sizeof(err)), DST_EINVAL);
    assert_null(db);
    assert_non_null(strstr(err, "catalog.txt:3: price 'x' is not a number"));
    assert_string_equal(slurp(), text);
    assert_int_equal(catalog_db_check(path, err, sizeof(err)), DST_EINVAL);
    unlink(path);
    assert_int_equal(catalog_db_check(path, err, sizeof(err)), 0); /* missing is fine */
    assert_int_equal(access(path, F_OK), -1);                      /* and not created */
}

static void buys_and_their_errors(void **state)
{
    struct catalog_db *db = NULL;
    struct catalog_toy t;
    char err[256];
    bool dup = false;

    (void)state;
    put_file("Tux 1.5 3\n");
    assert_int_equal(catalog_db_open(path, false, 0, &db, err, sizeof(err)), 0);
    assert_int_equal(catalog_db_buy(db, "Nope", 1, NULL, &t, &dup), DST_ENOTFOUND);
    assert_int_equal(catalog_db_buy(db, "Tux", 4, NULL, &t, &dup), DST_ECONFLICT);
    assert_int_equal(catalog_db_buy(db, "Tux", 0, NULL, &t, &dup), DST_EINVAL);
    assert_int_equal(catalog_db_buy(db, "Tux", 2, "a", &t, &dup), 0);
    assert_int_equal(t.quantity, 1);
    /* the same request id again: the first outcome, nothing taken twice */
    assert_int_equal(catalog_db_buy(db, "Tux", 2, "a", &t, &dup), 0);
    assert_true(dup);
    assert_int_equal(t.quantity, 1);
    assert_int_equal(catalog_db_buy(db, "Tux", 1, "b", &t, &dup), 0);
    assert_int_equal(t.quantity, 0);
    assert_int_equal(catalog_db_close(db), 0);
    assert_string_equal(slurp(), "Tux 1.5 0\n"); /* the price text as it was read */
    int calls = 0;
    assert_int_equal(catalog_db_restock(db, NULL, NULL), 0);
    assert_non_null(strstr(journal(), "\nr Tux 100\n"));
    assert_int_equal(catalog_db_close(db), 0);
    assert_string_equal(slurp(), "Tux 1.5 100\n");
    assert_int_equal(catalog_db_restock(db, NULL, &calls), 0); /* nothing at 0: no change */
    catalog_db_free(db);
}

struct many {
    struct catalog_db *db;
    int ok;
};

static void *buyer(void *arg)
{
    struct many *m = arg;
    struct catalog_toy t;
    bool dup = false;

    for (int i = 0; i < 50; i++)
        if (catalog_db_buy(m->db, "Tux", 1, NULL, &t, &dup) == 0)
            m->ok++;
    return NULL;
}

/* Concurrent buys (group commit) sell exactly the stock and leave the file right. */
static void concurrent_buys_never_oversell(void **state)
{
    struct catalog_db *db = NULL;
    struct many m[8];
    pthread_t th[8];
    char err[256];
    int sold = 0;

    (void)state;
    put_file("Tux 1 300\nWhale 2 7\n");
    assert_int_equal(catalog_db_open(path, false, 0, &db, err, sizeof(err)), 0);
    for (int i = 0; i < 8; i++) {
        m[i] = (struct many){db, 0};
        pthread_create(&th[i], NULL, buyer, &m[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        sold += m[i].ok;
    }
    assert_int_equal(sold, 300);
    catalog_db_free(db); /* as a crash: the journal has every buy */
    assert_int_equal(catalog_db_open(path, false, 0, &db, err, sizeof(err)), 0);
    assert_string_equal(slurp(), "Tux 1 0\nWhale 2 7\n");
    catalog_db_free(db);
}

/* ---- the journal ---- */

#define HEADER "dstmc catalog journal 1\n"

/* A torn last line (a crash mid-write) is dropped; the whole lines before it are kept. */
static void torn_last_line_is_dropped(void **state)
{
    struct catalog_db *db = NULL;
    struct catalog_toy t;
    char err[256];
    bool dup = false;

    (void)state;
    put_file("Tux 1 10\nWhale 2 7\n");
    put_journal(HEADER "b Tux 9 a1\nr Whale 100\nb Tux 8 a2\nb Wha");
    assert_int_equal(catalog_db_open(path, false, 0, &db, err, sizeof(err)), 0);
    assert_int_equal(catalog_db_get(db, "Tux", &t), 0);
    assert_int_equal(t.quantity, 8);
    assert_int_equal(catalog_db_get(db, "Whale", &t), 0);
    assert_int_equal(t.quantity, 100);
    assert_string_equal(slurp(), "Tux 1 8\nWhale 2 100\n");
    /* the new journal starts with the ids, and the fragment is gone */
    assert_string_equal(journal(), HEADER "i a1\ni a2\n");
    assert_int_equal(catalog_db_buy(db, "Tux", 1, "a2", &t, &dup), 0);
    assert_true(dup);
    assert_int_equal(t.quantity, 8);
    catalog_db_free(db);
}

/* A bad line in the middle stops the start, naming it; neither file is touched. */
static void corrupted_journal_is_left_alone(void **state)
{
    struct catalog_db *db = NULL;
    char err[256];
    const char *j = HEADER "b Tux 9 a1\nb Tux nine a2\nb Tux 7 a3\n";
    const char *unknown = HEADER "b Tux 9\nb Bear 3\n";

    (void)state;
    put_file("Tux 1 10\n");
    put_journal(j);
    assert_int_equal(catalog_db_open(path, false, 0, &db, err, sizeof(err)), DST_EINVAL);
    assert_null(db);
    assert_non_null(strstr(err, "catalog.txt.journal:3: quantity 'nine'"));
    assert_string_equal(slurp(), "Tux 1 10\n");
    assert_string_equal(journal(), j);
    assert_int_equal(catalog_db_check(path, err, sizeof(err)), DST_EINVAL);
    put_journal(unknown);
    assert_int_equal(catalog_db_open(path, false, 0, &db, err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "catalog.txt.journal:3: Bear is not a toy of the file"));
    assert_string_equal(journal(), unknown);
    put_journal("Tux 1 10\n");
    assert_int_equal(catalog_db_open(path, false, 0, &db, err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "catalog.txt.journal:1: not a catalog journal"));
    /* a journal whose file is gone is not replayed over the defaults: it is set aside */
    unlink(path);
    assert_int_equal(catalog_db_open(path, true, 0, &db, err, sizeof(err)), 0);
    assert_non_null(strstr(slurp(), "Tux 25.99 80\n"));
    char old[160], buf[256];
    snprintf(old, sizeof(old), "%s.journal.old", path);
    assert_string_equal(read_all(old, buf, sizeof(buf)), "Tux 1 10\n");
    unlink(old);
    catalog_db_free(db);
}

/* Past journal_max the table goes to the file and the journal starts again with the ids. */
static void compaction_keeps_stock_and_ids(void **state)
{
    struct catalog_db *db = NULL;
    struct catalog_toy t;
    char err[256], id[32];
    bool dup = false;

    (void)state;
    put_file("Tux 1 1000\n");
    assert_int_equal(catalog_db_open(path, false, 256, &db, err, sizeof(err)), 0);
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "req-%d", i);
        assert_int_equal(catalog_db_buy(db, "Tux", 1, id, &t, &dup), 0);
    }
    /* compacted on the way (256 bytes is about ten lines): the file moved, no close needed */
    assert_null(strstr(slurp(), "Tux 1 1000\n"));
    assert_non_null(strstr(journal(), HEADER "i req-0\ni req-1\n"));
    assert_true(strlen(journal()) < 100 * 16 + 256);
    catalog_db_free(db); /* as a crash */
    assert_int_equal(catalog_db_open(path, false, 256, &db, err, sizeof(err)), 0);
    assert_int_equal(catalog_db_get(db, "Tux", &t), 0);
    assert_int_equal(t.quantity, 900);
    assert_int_equal(catalog_db_buy(db, "Tux", 1, "req-3", &t, &dup), 0); /* before compaction */
    assert_true(dup);
    assert_int_equal(t.quantity, 900);
    assert_int_equal(catalog_db_close(db), 0);
    assert_string_equal(slurp(), "Tux 1 900\n");
    catalog_db_free(db);
}

/* A batch: applied in order, each its outcome, one journal write, ids deduplicated per buy. */
static void a_batch_of_buys(void **state)
{
    struct catalog_db *db = NULL;
    char err[256];
    struct ts_buy in[] = {
        {.name = "Tux", .quantity = 2, .request_id = "x1"},
        {.name = "Tux", .quantity = 2},                      /* 1 left: out of stock */
        {.name = "Nope", .quantity = 1},                     /* not a toy */
        {.name = "Tux Two", .unknown = true, .quantity = 1}, /* a name no toy can have */
        {.name = "Tux", .quantity = 2, .request_id = "x1"},  /* a repeat: nothing taken */
        {.name = "Whale", .quantity = 5, .request_id = "x2"},
        {.name = "Tux", .quantity = 1},
    };
    struct catalog_buy b[7];
    int want_rc[] = {0, DST_ECONFLICT, DST_ENOTFOUND, DST_ENOTFOUND, 0, 0, 0};
    long want_after[] = {1, 1, 0, 0, 1, 5, 0};

    (void)state;
    put_file("Tux 1.5 3\nWhale 2 10\n");
    assert_int_equal(catalog_db_open(path, false, 0, &db, err, sizeof(err)), 0);
    for (int i = 0; i < 7; i++)
        b[i] = (struct catalog_buy){.in = &in[i], .rc = -1};
    assert_int_equal(catalog_db_buy_many(db, b, 7), 0);
    for (int i = 0; i < 7; i++) {
        assert_int_equal(b[i].rc, want_rc[i]);
        assert_int_equal(b[i].after.quantity, want_after[i]);
        assert_int_equal(b[i].dup, i == 4);
    }
    /* on disk once it returned, in order */
    assert_non_null(strstr(journal(), "\nb Tux 1 x1\nb Whale 5 x2\nb Tux 0\n"));
    /* the batch again after a crash: the ids took their stock once */
    catalog_db_free(db);
    assert_int_equal(catalog_db_open(path, false, 0, &db, err, sizeof(err)), 0);
    in[6].quantity = 0; /* and a quantity out of range is refused alone */
    for (int i = 0; i < 7; i++)
        b[i] = (struct catalog_buy){.in = &in[i], .rc = -1};
    assert_int_equal(catalog_db_buy_many(db, b, 7), 0);
    assert_int_equal(b[0].rc, 0);
    assert_true(b[0].dup);
    assert_int_equal(b[5].rc, 0);
    assert_true(b[5].dup);
    assert_int_equal(b[5].after.quantity, 5);
    assert_int_equal(b[1].rc, DST_ECONFLICT);
    assert_int_equal(b[6].rc, DST_EINVAL);
    struct catalog_toy t;
    assert_int_equal(catalog_db_get(db, "Tux", &t), 0);
    assert_int_equal(t.quantity, 0);
    assert_int_equal(catalog_db_buy_many(db, b, 0), 0); /* nothing to do */
    catalog_db_free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(creates_then_reads_back, setup, teardown),
        cmocka_unit_test_setup_teardown(corrupted_file_is_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(buys_and_their_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(a_batch_of_buys, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_buys_never_oversell, setup, teardown),
        cmocka_unit_test_setup_teardown(torn_last_line_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(corrupted_journal_is_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(compaction_keeps_stock_and_ids, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
