/* test_reqids.c - unit tests of the recent request ids (src/toystore/reqids.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(remembers_the_last_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
