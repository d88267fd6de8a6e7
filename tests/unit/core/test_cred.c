/* test_cred.c - unit tests of tokens, sessions and secrets (src/core/cred.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/cred.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/store.h"

#include "store_fixture.h"

static void scopes(void **state)
{
    unsigned s = 0;
    char err[128], text[32];

    (void)state;
    assert_int_equal(dst_scopes_parse("read,ingest", &s, err, sizeof(err)), 0);
    assert_int_equal(s, DST_SCOPE_READ | DST_SCOPE_INGEST);
    assert_int_equal(dst_scopes_parse("admin read", &s, err, sizeof(err)), 0);
    assert_int_equal(s, DST_SCOPE_READ | DST_SCOPE_ADMIN);
    dst_scopes_format(s, text, sizeof(text));
    assert_string_equal(text, "read,admin");
    assert_int_equal(dst_scopes_parse("read,write", &s, err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, "'write'"));
    assert_int_equal(dst_scopes_parse("", &s, err, sizeof(err)), DST_EINVAL);
    assert_int_equal(dst_scopes_parse(",", &s, err, sizeof(err)), DST_EINVAL);
    assert_int_equal(dst_scopes_parse("readx", &s, err, sizeof(err)), DST_EINVAL);
    /* admin may do everything; the others only what they name */
    assert_true(dst_scopes_allow(DST_SCOPE_ADMIN, DST_SCOPE_READ));
    assert_true(dst_scopes_allow(DST_SCOPE_ADMIN, DST_SCOPE_INGEST));
    assert_true(dst_scopes_allow(DST_SCOPE_INGEST, DST_SCOPE_INGEST));
    assert_false(dst_scopes_allow(DST_SCOPE_INGEST, DST_SCOPE_READ));
    assert_false(dst_scopes_allow(DST_SCOPE_READ, DST_SCOPE_ADMIN));
    assert_false(dst_scopes_allow(DST_SCOPE_READ | DST_SCOPE_INGEST, DST_SCOPE_ADMIN));
}

static void token_round_trip(void **state)
{
    struct fixture *f = *state;
    char text[DST_CRED_TEXT_LEN + 1], bad[DST_CRED_TEXT_LEN + 1];
    struct dst_cred made, got;
    struct dst_store_cred row = {0};
    const char *why = NULL;

    assert_int_equal(dst_cred_token_new(f->s, "probe attic", DST_SCOPE_INGEST, 0, text, &made), 0);
    assert_int_equal(strlen(text), DST_CRED_TEXT_LEN);
    assert_int_equal(strncmp(text, "dstmc_", 6), 0);
    assert_string_equal(made.name, "probe attic");
    assert_int_equal(strncmp(text + 6, made.id, DST_CRED_ID_LEN), 0);
    /* only the hash is stored */
    assert_int_equal(dst_store_cred_get(f->s, made.id, &row), 0);
    assert_null(strstr(text, row.hash));
    assert_string_equal(row.scopes, "ingest");
    dst_store_cred_release(&row);
    assert_int_equal(dst_cred_verify(f->s, text, false, &got, &why), 0);
    assert_string_equal(got.id, made.id);
    assert_int_equal(got.scopes, DST_SCOPE_INGEST);
    assert_false(got.session);
    /* a token is not a session */
    assert_int_equal(dst_cred_verify(f->s, text, true, &got, &why), DST_EPERM);
    assert_string_equal(why, "a token, not a session");
    /* one wrong digit of the secret */
    memcpy(bad, text, sizeof(bad));
    bad[DST_CRED_TEXT_LEN - 1] = bad[DST_CRED_TEXT_LEN - 1] == '0' ? '1' : '0';
    assert_int_equal(dst_cred_verify(f->s, bad, false, &got, &why), DST_EPERM);
    assert_string_equal(why, "wrong secret");
    /* malformed ones */
    static const char *const junk[] = {"", "dstmc_", "Bearer x", "dstmc_zzzzzzzzzzzz_00", NULL};
    for (int i = 0; junk[i]; i++)
        assert_int_equal(dst_cred_verify(f->s, junk[i], false, &got, &why), DST_EPERM);
    /* revoked */
    assert_int_equal(dst_store_cred_delete(f->s, made.id, NULL), 0);
    assert_int_equal(dst_cred_verify(f->s, text, false, &got, &why), DST_EPERM);
    assert_string_equal(why, "unknown or revoked");
}

static void token_bad_args(void **state)
{
    struct fixture *f = *state;
    char text[DST_CRED_TEXT_LEN + 1], name[DST_CRED_NAME_MAX + 2];

    assert_int_equal(dst_cred_token_new(f->s, "", DST_SCOPE_READ, 0, text, NULL), DST_EINVAL);
    assert_int_equal(dst_cred_token_new(f->s, "a\nb", DST_SCOPE_READ, 0, text, NULL), DST_EINVAL);
    assert_int_equal(dst_cred_token_new(f->s, "x", 0, 0, text, NULL), DST_EINVAL);
    assert_int_equal(dst_cred_token_new(f->s, "x", 64, 0, text, NULL), DST_EINVAL);
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_int_equal(dst_cred_token_new(f->s, name, DST_SCOPE_READ, 0, text, NULL), DST_EINVAL);
    name[DST_CRED_NAME_MAX] = '\0';
    assert_int_equal(dst_cred_token_new(f->s, name, DST_SCOPE_READ, 0, text, NULL), 0);
}

static void expired_token(void **state)
{
    struct fixture *f = *state;
    char text[DST_CRED_TEXT_LEN + 1];
    struct dst_cred got;
    const char *why = NULL;

    assert_int_equal(
        dst_cred_token_new(f->s, "old", DST_SCOPE_READ, dst_datetime_now_ms() - 1, text, NULL), 0);
    assert_int_equal(dst_cred_verify(f->s, text, false, &got, &why), DST_EPERM);
    assert_string_equal(why, "expired");
}

static void sessions(void **state)
{
    struct fixture *f = *state;
    char tok[DST_CRED_TEXT_LEN + 1], ses[DST_CRED_TEXT_LEN + 1], csrf[DST_SHA256_HEX],
        csrf2[DST_SHA256_HEX];
    struct dst_cred by, s, got;
    const char *why = NULL;

    assert_int_equal(dst_cred_token_new(f->s, "admin", DST_SCOPE_ADMIN, 0, tok, &by), 0);
    assert_int_equal(dst_cred_session_new(f->s, &by, by.id, 60000, ses, &s), 0);
    assert_true(s.session);
    assert_string_equal(s.parent, by.id);
    assert_int_equal(s.scopes, DST_SCOPE_ADMIN);
    assert_int_equal(dst_cred_verify(f->s, ses, true, &got, &why), 0);
    assert_string_equal(got.name, "admin");
    assert_int_equal(got.scopes, DST_SCOPE_ADMIN);
    assert_true(got.expires_ms > dst_datetime_now_ms());
    /* a session is not a bearer token */
    assert_int_equal(dst_cred_verify(f->s, ses, false, &got, &why), DST_EPERM);
    /* its CSRF token is fixed for it and differs from another's */
    dst_cred_csrf(ses, csrf);
    dst_cred_csrf(ses, csrf2);
    assert_string_equal(csrf, csrf2);
    dst_cred_csrf(tok, csrf2);
    assert_string_not_equal(csrf, csrf2);
    assert_int_equal(strlen(csrf), 64);
    /* revoking the token ends the session */
    assert_int_equal(dst_store_cred_delete(f->s, by.id, NULL), 0);
    assert_int_equal(dst_cred_verify(f->s, ses, true, &got, &why), DST_EPERM);
    /* bad arguments */
    assert_int_equal(dst_cred_session_new(f->s, &by, "", 60000, ses, NULL), DST_EINVAL);
    assert_int_equal(dst_cred_session_new(f->s, &by, "x", 0, ses, NULL), DST_EINVAL);
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void secret_load(void **state)
{
    char path[] = "/tmp/dst_secret_XXXXXX", err[200];
    char *v = NULL;
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(dst_cred_secret_load(NULL, NULL, &v, err, sizeof(err)), 0);
    assert_null(v);
    assert_int_equal(dst_cred_secret_load("", "", &v, err, sizeof(err)), 0);
    assert_null(v);
    assert_int_equal(dst_cred_secret_load("0123456789abcdef", NULL, &v, err, sizeof(err)), 0);
    assert_string_equal(v, "0123456789abcdef");
    free(v);
    write_file(path, "0123456789abcdefXYZ\nsecond line\n");
    assert_int_equal(dst_cred_secret_load(NULL, path, &v, err, sizeof(err)), 0);
    assert_string_equal(v, "0123456789abcdefXYZ");
    free(v);
    /* both, too short, spaces, a missing file */
    assert_int_equal(dst_cred_secret_load("0123456789abcdef", path, &v, err, sizeof(err)),
                     DST_EINVAL);
    assert_non_null(strstr(err, "not both"));
    assert_int_equal(dst_cred_secret_load("short", NULL, &v, err, sizeof(err)), DST_EINVAL);
    assert_int_equal(dst_cred_secret_load("0123456789 abcdef", NULL, &v, err, sizeof(err)),
                     DST_EINVAL);
    write_file(path, "\n");
    assert_int_equal(dst_cred_secret_load(NULL, path, &v, err, sizeof(err)), DST_EINVAL);
    unlink(path);
    assert_int_equal(dst_cred_secret_load(NULL, path, &v, err, sizeof(err)), DST_EINVAL);
    assert_non_null(strstr(err, path));
    assert_null(v);
}

#define BOTH(t)                                              \
    cmocka_unit_test_setup_teardown(t, setup_mem, teardown), \
        cmocka_unit_test_setup_teardown(t, setup_file, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scopes), BOTH(token_round_trip), BOTH(token_bad_args),
        BOTH(expired_token),      BOTH(sessions),         cmocka_unit_test(secret_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
