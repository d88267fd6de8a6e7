/* test_catalog_file.c - unit tests of the catalog's file format (src/toystore/catalog_file.c) */
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

static int parse(const char *text, struct catalog_toy **toys, int *n, char *err)
{
    return catalog_file_parse(text, strlen(text), "db.txt", toys, n, err, 256);
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
    char *text = catalog_file_format(t, n, &len);
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
    assert_int_equal(catalog_file_parse("Tux 1 1\nWh\0le 1 1\n", 18, "db.txt", &t, &n, err, 256),
                     DST_EINVAL);
    assert_non_null(strstr(err, "db.txt:2:"));
}

static void defaults(void **state)
{
    struct catalog_toy *t = NULL;
    int n = 0;

    (void)state;
    catalog_file_defaults(false, &t, &n);
    assert_int_equal(n, 10);
    for (int i = 0; i < n; i++)
        assert_int_equal(t[i].quantity, 100);
    free(t);
    catalog_file_defaults(true, &t, &n);
    assert_int_equal(n, 4);
    assert_string_equal(t[1].name, "Whale");
    assert_string_equal(t[1].price_text, "34.99");
    assert_int_equal(t[1].quantity, 94);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_the_original_file),
        cmocka_unit_test(bad_lines_are_named),
        cmocka_unit_test(defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
