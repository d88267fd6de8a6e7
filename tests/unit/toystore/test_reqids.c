/* test_reqids.c - unit tests of the recent request ids (src/toystore/reqids.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>
#include <stdio.h>

#include "toystore/toystore.h"

static void remembers_the_last_cap(void **state)
{
    struct ts_reqids *r = ts_reqids_new(100);
    char id[32];

    (void)state;
    assert_null(ts_reqids_get(r, "a"));
    for (int i = 0; i < 250; i++) {
        snprintf(id, sizeof(id), "id-%d", i);
        assert_null(ts_reqids_get(r, id));
        ts_reqids_put(r, id)->value = i;
    }
    for (int i = 0; i < 250; i++) {
        snprintf(id, sizeof(id), "id-%d", i);
        struct ts_reqid *e = ts_reqids_get(r, id);
        if (i < 150) {
            assert_null(e); /* the oldest are forgotten */
        } else {
            assert_non_null(e);
            assert_int_equal(e->value, i);
        }
    }
    ts_reqids_free(r);
    ts_reqids_free(NULL);
}

static void collect(void *ud, const struct ts_reqid *e)
{
    strcat(ud, e->id);
    strcat(ud, " ");
}

/* each walks the ids oldest first, also once the ring has wrapped. */
static void each_oldest_first(void **state)
{
    struct ts_reqids *r = ts_reqids_new(3);
    char got[64] = "";

    (void)state;
    ts_reqids_put(r, "a");
    ts_reqids_put(r, "b");
    ts_reqids_each(r, collect, got);
    assert_string_equal(got, "a b ");
    ts_reqids_put(r, "c");
    ts_reqids_put(r, "d");
    ts_reqids_put(r, "e");
    got[0] = '\0';
    ts_reqids_each(r, collect, got);
    assert_string_equal(got, "c d e ");
    ts_reqids_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(remembers_the_last_cap),
        cmocka_unit_test(each_oldest_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
