/* test_catalog_db.c - unit tests of the catalog table and its file (src/toystore/catalog_db.c) */
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

static int parse(const char *text, struct catalog_toy **toys, int *n, char *err)
{
    return catalog_db_parse(text, strlen(text), "db.txt", toys, n, err, 256);
}

/* ---- parsing and writing ---- */

static void parses_the_original_file(void **state)
{
    struct catalog_toy *t = NULL;
    char err[256];
    int n = 0;

    (void)state;
    assert_int_equal(parse("Tux 25.99 80\nWhale 34.99 94\r\n\n  Elephant\t29.99  87\nBird 39.99 98",
                           &t, &n, err),
                     0);
    assert_int_equal(n, 4);
    assert_string_equal(t[2].name, "Elephant");
    assert_string_equal(t[2].price_text, "29.99");
    assert_true(t[0].price > 25.98 && t[0].price < 26.0);
    assert_int_equal(t[3].quantity, 98);
    size_t len = 0;
    char *text = catalog_db_format(t, n, &len);
    assert_string_equal(text, "Tux 25.99 80\nWhale 34.99 94\nElephant 29.99 87\nBird 39.99 98\n");
    assert_int_equal(len, strlen(text));
    free(text);
    free(t);
}

static void bad_lines_are_named(void **state)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"Tux 25.99 80\nWhale x 94\n", "db.txt:2: price 'x' is not a number"},
        {"Tux 25.99 80\n\nWhale 1 -4\n", "db.txt:3: quantity '-4' is not a whole number"},
        {"Tux 25.99\n", "db.txt:1: expected 'NAME PRICE QUANTITY'"},
        {"Tux 25.99 80 9\n", "db.txt:1: expected 'NAME PRICE QUANTITY'"},
        {"Tux 25.99 80\nTux 1 1\n", "db.txt:2: Tux is listed twice"},
        {"T/x 1 1\n", "db.txt:1: name 'T/x'"},
        {"Tux nan 1\n", "db.txt:1: price 'nan' is not a number"},
        {"Tux -1 1\n", "db.txt:1: price '-1' is not a number"},
        {"Tux 1 1000000001\n", "db.txt:1: quantity '1000000001'"},
        {"Tux 1 1.5\n", "db.txt:1: quantity '1.5'"},
        {"\n  \n", "db.txt: no toys in the file"},
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct catalog_toy *t = NULL;
        int n = -1;
        err[0] = '\0';
        assert_int_equal(parse(cases[i].text, &t, &n, err), DST_EINVAL);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("case %zu: '%s' does not start with '%s'", i, err, cases[i].want);
        assert_null(t);
        assert_int_equal(n, -1); /* untouched on failure */
    }
    /* the longest name fits, one more byte does not */
    char text[200];
    struct catalog_toy *t = NULL;
    int n = 0;
    snprintf(text, sizeof(text), "%.64s 1 1\n",
             "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnop");
    assert_int_equal(parse(text, &t, &n, err), 0);
    assert_int_equal(strlen(t[0].name), 64);
    free(t);
    t = NULL;
    snprintf(text, sizeof(text), "%.65s 1 1\n",
             "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnop");
    assert_int_equal(parse(text, &t, &n, err), DST_EINVAL);
    assert_non_null(strstr(err, "db.txt:1: name"));
    /* a NUL byte inside a line */
    assert_int_equal(catalog_db_parse("Tux 1 1\nWh\0le 1 1\n", 18, "db.txt", &t, &n, err, 256),
                     DST_EINVAL);
    assert_non_null(strstr(err, "db.txt:2:"));
}

static void defaults(void **state)
{
    struct catalog_toy *t = NULL;
    int n = 0;

    (void)state;
    catalog_db_defaults(false, &t, &n);
    assert_int_equal(n, 10);
    for (int i = 0; i < n; i++)
        assert_int_equal(t[i].quantity, 100);
    free(t);
    catalog_db_defaults(true, &t, &n);
    assert_int_equal(n, 4);
    assert_string_equal(t[1].name, "Whale");
    assert_string_equal(t[1].price_text, "34.99");
    assert_int_equal(t[1].quantity, 94);
    free(t);
}

/* ---- the file ---- */

static void creates_then_reads_back(void **state)
{
    struct catalog_db *db = NULL;
    struct catalog_toy t;
    char err[256];
    bool dup = false;

    (void)state;
    assert_int_equal(catalog_db_open(path, true, &db, err, sizeof(err)), 0);
    assert_string_equal(slurp(),
                        "Tux 25.99 80\nWhale 34.99 94\nElephant 29.99 87\nBird 39.99 98\n");
    assert_int_equal(catalog_db_buy(db, "Tux", 5, "r1", &t, &dup), 0);
    assert_int_equal(t.quantity, 75);
    assert_false(dup);
    /* on disk once it returned */
    assert_non_null(strstr(slurp(), "Tux 25.99 75\n"));
    catalog_db_free(db);
    assert_int_equal(catalog_db_open(path, false, &db, err, sizeof(err)), 0);
    assert_int_equal(catalog_db_get(db, "Tux", &t), 0);
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
    assert_int_equal(catalog_db_open(path, false, &db, err, sizeof(err)), DST_EINVAL);
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
    assert_int_equal(catalog_db_open(path, false, &db, err, sizeof(err)), 0);
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
    assert_string_equal(slurp(), "Tux 1.5 0\n"); /* the price text as it was read */
    int calls = 0;
    assert_int_equal(catalog_db_restock(db, NULL, NULL), 0);
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
    assert_int_equal(catalog_db_open(path, false, &db, err, sizeof(err)), 0);
    for (int i = 0; i < 8; i++) {
        m[i] = (struct many){db, 0};
        pthread_create(&th[i], NULL, buyer, &m[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        sold += m[i].ok;
    }
    assert_int_equal(sold, 300);
    assert_string_equal(slurp(), "Tux 1 0\nWhale 2 7\n");
    catalog_db_free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_the_original_file),
        cmocka_unit_test(bad_lines_are_named),
        cmocka_unit_test(defaults),
        cmocka_unit_test_setup_teardown(creates_then_reads_back, setup, teardown),
        cmocka_unit_test_setup_teardown(corrupted_file_is_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(buys_and_their_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_buys_never_oversell, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
