/* test_catalog_journal.c - unit tests of the catalog's journal (src/toystore/catalog_journal.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "toystore/toystore.h"

#define HEADER "dstmc catalog journal 1\n"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_catalog_journal.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/j", dir);
    return 0;
}

static int teardown(void **state)
{
    char tmp[160];

    (void)state;
    unlink(path);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(tmp);
    rmdir(dir);
    return 0;
}

static void put(const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
}

/* Collects the replayed lines as text again. */
static int collect(void *ud, const struct catalog_change *c, char *err, size_t errlen)
{
    char line[200];
    int n = catalog_journal_format(c, line, sizeof(line));

    (void)err;
    (void)errlen;
    assert_true(n > 0);
    strcat(ud, line);
    return 0;
}

static void lines_round_trip(void **state)
{
    const char *ok[] = {"b Tux 0 6f1c-uuid", "b Whale 94", "r Bird 100", "i abc.D_e-9"};
    char err[200], buf[200];
    struct catalog_change c;

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(catalog_journal_parse_line(ok[i], strlen(ok[i]), &c, err, sizeof(err)), 0);
        int n = catalog_journal_format(&c, buf, sizeof(buf));
        assert_int_equal(n, (int)strlen(ok[i]) + 1);
        assert_memory_equal(buf, ok[i], strlen(ok[i]));
    }
    const char *bad[] = {
        "",  "x Tux 1",  "b Tux",          "b Tux -1",         "b T/x 1",  "b Tux 1 a b",
        "i", "i bad/id", "b Tux 1 bad/id", "b Tux 1000000001", "r Tux 1e3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(catalog_journal_parse_line(bad[i], strlen(bad[i]), &c, err, sizeof(err)),
                         DST_EINVAL);
}

/* The text ends at the first NUL; a torn last line and bytes after the end are ignored. */
static void replay_stops_at_the_zeros(void **state)
{
    char got[512] = "", err[200];
    const char text[] = HEADER "b Tux 9 a\nr Tux 100\nb Tu\0\0\0b Tux 1\n\0\0";

    (void)state;
    put(text, sizeof(text) - 1);
    assert_int_equal(catalog_journal_replay(path, collect, got, err, sizeof(err)), 0);
    assert_string_equal(got, "b Tux 9 a\nr Tux 100\n");
    put("", 0); /* an empty file: nothing to replay */
    got[0] = '\0';
    assert_int_equal(catalog_journal_replay(path, collect, got, err, sizeof(err)), 0);
    assert_string_equal(got, "");
    unlink(path);
    assert_int_equal(catalog_journal_replay(path, collect, got, err, sizeof(err)), DST_ENOTFOUND);
}

static void bad_line_is_named(void **state)
{
    char got[512] = "", err[200];
    const char text[] = HEADER "b Tux 9 a\nb Tux 9 a b c\nb Tux 1\n";

    (void)state;
    put(text, sizeof(text) - 1);
    assert_int_equal(catalog_journal_replay(path, collect, got, err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "/j:3: expected"));
}

/* create: header, head, zeros; append writes after the text; a replay sees both. */
static void create_append_replay(void **state)
{
    struct catalog_journal *j = NULL;
    struct stat st;
    char got[512] = "", err[200];
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);

    (void)state;
    assert_true(dfd >= 0);
    assert_int_equal(catalog_journal_create(path, dfd, "i x\n", 4, 4096, &j), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 4096); /* preallocated */
    assert_int_equal(catalog_journal_used(j), strlen(HEADER) + 4);
    assert_int_equal(catalog_journal_append(j, "b Tux 3 y\n", 10), 0);
    assert_int_equal(catalog_journal_append(j, "r Tux 100\n", 10), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 4096); /* written over the zeros */
    assert_int_equal(catalog_journal_replay(path, collect, got, err, sizeof(err)), 0);
    assert_string_equal(got, "i x\nb Tux 3 y\nr Tux 100\n");
    catalog_journal_free(j);
    close(dfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lines_round_trip),
        cmocka_unit_test_setup_teardown(replay_stops_at_the_zeros, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_line_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(create_append_replay, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
