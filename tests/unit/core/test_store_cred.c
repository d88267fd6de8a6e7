/* test_store_cred.c - unit tests of the store's credentials (store_cred.c and the backends') */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "core/err.h"
#include "core/store.h"

#include "store_fixture.h"

static void add(struct dst_store *s, const char *id, const char *kind, const char *parent,
                int64_t created, int64_t expires)
{
    struct dst_store_cred c = {.id = (char *)id,
                               .kind = (char *)kind,
                               .name = "n",
                               .scopes = "read",
                               .hash = "h",
                               .parent = (char *)parent,
                               .created_ms = created,
                               .expires_ms = expires};
    assert_int_equal(dst_store_cred_add(s, &c), 0);
}

static void test_add_get(void **state)
{
    struct fixture *f = *state;
    struct dst_store_cred c = {.id = "a1",
                               .kind = "token",
                               .name = "probe attic",
                               .scopes = "ingest",
                               .hash = "ff00",
                               .created_ms = 1000},
                          got = {0};

    assert_int_equal(dst_store_cred_add(f->s, &c), 0);
    assert_int_equal(dst_store_cred_add(f->s, &c), DST_ECONFLICT); /* the id is taken */
    assert_int_equal(dst_store_cred_get(f->s, "a1", &got), 0);
    assert_string_equal(got.id, "a1");
    assert_string_equal(got.kind, "token");
    assert_string_equal(got.name, "probe attic");
    assert_string_equal(got.scopes, "ingest");
    assert_string_equal(got.hash, "ff00");
    assert_null(got.parent);
    assert_int_equal(got.created_ms, 1000);
    assert_int_equal(got.expires_ms, 0); /* never */
    assert_int_equal(got.used_ms, 0);
    dst_store_cred_release(&got);
    assert_null(got.id);
    assert_int_equal(dst_store_cred_touch(f->s, "a1", 5000), 0);
    assert_int_equal(dst_store_cred_get(f->s, "a1", &got), 0);
    assert_int_equal(got.used_ms, 5000);
    dst_store_cred_release(&got);
    assert_int_equal(dst_store_cred_get(f->s, "nope", &got), DST_ENOTFOUND);
    assert_int_equal(dst_store_cred_get(f->s, "", &got), DST_ENOTFOUND);
    dst_store_cred_release(NULL);
}

static void test_bad_rows(void **state)
{
    struct fixture *f = *state;
    struct dst_store_cred c = {
        .id = "x", .kind = "cookie", .name = "n", .scopes = "read", .hash = "h"};

    assert_int_equal(dst_store_cred_add(f->s, &c), DST_EINVAL);
    c.kind = "token";
    c.id = "";
    assert_int_equal(dst_store_cred_add(f->s, &c), DST_EINVAL);
    c.id = "x";
    c.hash = NULL;
    assert_int_equal(dst_store_cred_add(f->s, &c), DST_EINVAL);
}

static void test_list_delete_cascade(void **state)
{
    struct fixture *f = *state;
    struct dst_store_cred *l = NULL;
    size_t n = 0;
    bool deleted = false;

    add(f->s, "t1", "token", NULL, 1, 0);
    add(f->s, "t2", "token", NULL, 2, 0);
    add(f->s, "s1", "session", "t1", 3, 99999);
    add(f->s, "s2", "session", "t2", 4, 99999);
    assert_int_equal(dst_store_cred_list(f->s, NULL, &l, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(l[0].id, "t1"); /* oldest first */
    assert_string_equal(l[3].id, "s2");
    dst_store_creds_free(l, n);
    assert_int_equal(dst_store_cred_list(f->s, "session", &l, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(l[0].parent, "t1");
    dst_store_creds_free(l, n);
    assert_int_equal(dst_store_cred_list(f->s, "cookie", &l, &n), DST_EINVAL);
    /* revoking a token ends its sessions, and only those */
    assert_int_equal(dst_store_cred_delete(f->s, "t1", &deleted), 0);
    assert_true(deleted);
    assert_int_equal(dst_store_cred_list(f->s, NULL, &l, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(l[0].id, "t2");
    assert_string_equal(l[1].id, "s2");
    dst_store_creds_free(l, n);
    assert_int_equal(dst_store_cred_delete(f->s, "t1", &deleted), 0);
    assert_false(deleted);
    assert_int_equal(dst_store_cred_delete(f->s, "", &deleted), 0);
    assert_false(deleted);
}

static void test_purge(void **state)
{
    struct fixture *f = *state;
    struct dst_store_cred *l = NULL;
    size_t n = 0;

    add(f->s, "t1", "token", NULL, 1, 0);      /* never expires */
    add(f->s, "s1", "session", "t1", 2, 1000); /* expired at 1000 */
    add(f->s, "s2", "session", "t1", 3, 5000);
    assert_int_equal(dst_store_cred_purge(f->s, 2000), 0);
    assert_int_equal(dst_store_cred_list(f->s, NULL, &l, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(l[0].id, "t1");
    assert_string_equal(l[1].id, "s2");
    dst_store_creds_free(l, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ALL_STORES(test_add_get),
        ALL_STORES(test_bad_rows),
        ALL_STORES(test_list_delete_cascade),
        ALL_STORES(test_purge),
    };
    return store_run_tests(tests);
}
