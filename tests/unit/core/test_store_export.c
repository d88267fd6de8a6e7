/* test_store_export.c - unit tests of store_export.c: a store as JSON lines and back, each backend */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cred.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/result.h"
#include "core/store.h"
#include "core/store_copy.h"
#include "core/uuid.h"

#include "store_fixture.h"

#include "rollup_copy_fixture.h"

#define T0 1700000000000LL

static void fill(struct dst_store *s, int n)
{
    struct dst_result *rs = calloc((size_t)n, sizeof(*rs));

    for (int i = 0; i < n; i++) {
        dst_result_init(&rs[i]);
        dst_uuid_new(rs[i].id);
        rs[i].time_ms = T0 + i * 60000LL;
        rs[i].status = i % 3 == 2 ? DST_RESULT_FAILED : DST_RESULT_OK;
        dst_result_set(&rs[i].error, i % 3 == 2 ? "refused\n\"x\"" : NULL);
        dst_result_set(&rs[i].probe, "p\xc3\xa9");
        rs[i].download_bps = 1e8 / 3 + i; /* needs 17 digits */
        rs[i].demo = i % 2;
        rs[i].excluded = i == 1;
    }
    assert_int_equal(dst_store_insert(s, rs, (size_t)n, NULL), 0);
    for (int i = 0; i < n; i++)
        dst_result_release(&rs[i]);
    free(rs);
}

static int64_t count_all(struct dst_store *s)
{
    struct dst_store_query q;
    int64_t n = -1;

    dst_store_query_init(&q);
    assert_int_equal(dst_store_count(s, &q, &n), 0);
    return n;
}

/* The store exported into a malloc'd text. */
static char *export_text(struct dst_store *s, struct dst_store_report *rep)
{
    struct dst_store_copy_opts o = {NULL, 4, NULL, NULL};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    assert_non_null(f);
    assert_int_equal(dst_store_export(s, f, &o, rep), 0);
    fclose(f);
    return text;
}

static int import_text(struct dst_store *s, const char *text, struct dst_store_report *rep,
                       int64_t *line, char *err, size_t errlen)
{
    struct dst_store_copy_opts o = {NULL, 4, NULL, NULL};
    FILE *f = fmemopen((void *)text, strlen(text), "r");

    assert_non_null(f);
    int rc = dst_store_import(s, f, &o, rep, line, err, errlen);
    fclose(f);
    return rc;
}

static const struct dst_store_tally *tally(const struct dst_store_report *rep, const char *kind)
{
    for (int i = 0; i < rep->nkinds; i++)
        if (strcmp(rep->kinds[i].kind, kind) == 0)
            return &rep->kinds[i];
    fail_msg("no tally of %s", kind);
    return NULL;
}

/* Export, import into a fresh SQLite store, compare; a second import changes nothing. */
static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    struct dst_store *to = NULL;
    struct dst_store_report rep;
    char text[DST_CRED_TEXT_LEN + 1], err[200];
    struct dst_cred tok, who;
    const char *why = NULL;
    int64_t line = -1;
    json_t *v = json_pack("{s:[i,i]}", "x", 1, 2), *got = NULL;

    fill(f->s, 10);
    assert_int_equal(dst_cred_token_new(f->s, "ci", 1, 0, text, &tok), 0);
    assert_int_equal(dst_store_setting_put(f->s, "schedules", v, DST_STORE_ANY_VERSION, NULL), 0);
    char *out = export_text(f->s, &rep);
    assert_int_equal(tally(&rep, "result")->done, 10);
    /* a header first, an end with the counts last, every line with its kind */
    assert_non_null(strstr(out, "{\"kind\":\"header\",\"format\":\"dstmc-export\",\"version\":2"));
    assert_non_null(strstr(out, "{\"kind\":\"end\",\"setting\":1,\"credential\":1,\"result\":10,"
                                "\"rollup\":0}"));

    assert_int_equal(dst_store_open("sqlite::memory:", &to), 0);
    assert_int_equal(import_text(to, out, &rep, &line, err, sizeof(err)), 0);
    assert_int_equal(line, 0);
    assert_int_equal(tally(&rep, "result")->copied, 10);
    assert_int_equal(tally(&rep, "credential")->copied, 1);
    assert_int_equal(tally(&rep, "setting")->copied, 1);
    json_t *a = fx_all_results(f->s), *b = fx_all_results(to);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    assert_int_equal(dst_cred_verify(to, text, false, &who, &why), 0);
    assert_int_equal(dst_store_setting_get(to, "schedules", &got, NULL), 0);
    assert_true(json_equal(got, v));
    json_decref(got);

    assert_int_equal(import_text(to, out, &rep, &line, err, sizeof(err)), 0);
    for (int i = 0; i < rep.nkinds; i++)
        assert_int_equal(rep.kinds[i].copied, 0);
    assert_int_equal(tally(&rep, "result")->existing, 10);
    assert_int_equal(count_all(to), 10);
    dst_store_free(to);
    json_decref(v);
    free(out);
}

/* A bad line stops the import there: the lines before are stored, none of it or after. */
static void test_bad_lines(void **state)
{
    struct fixture *f = *state;
    struct dst_store_report rep;
    char err[200], id[4][DST_UUID_LEN + 1], text[1024], *big;
    int64_t line = -1;
    struct dst_result r;
    static const struct {
        const char *line, *why;
    } bad[] = {
        {"{\"kind\":\"result\",\"time\":1,\"probe\":\"p\"}", "id"},
        {"{\"kind\":\"result\",\"id\":\"%s\",\"probe\":\"p\",\"download_bps\":-1}", "download_bps"},
        {"{\"kind\":\"resu", "JSON"},
        {"[1,2]", "kind"},
        {"{\"kind\":\"rollup\"}", "a rollup has"},
        {"{\"kind\":\"roll\"}", "unknown kind"},
        {"{\"kind\":\"rollup\",\"step_ms\":60000,\"t_ms\":0,\"probe\":\"p\",\"count\":1,"
         "\"failed\":0,\"download\":{},\"upload\":{},\"ping\":{},\"jitter\":{},\"loss\":{}}",
         "a rollup has"},
        {"{\"kind\":\"header\",\"format\":\"dstmc-export\",\"version\":2,\"raw_pruned_ms\":5}",
         "raw_pruned_ms"},
        {"{\"kind\":\"setting\",\"key\":\"k\"}", "setting"},
        {"{\"kind\":\"credential\",\"id\":\"x\"}", "credential"},
        {"{\"kind\":\"header\",\"format\":\"dstmc-export\",\"version\":99}", "header"},
    };

    for (int i = 0; i < 4; i++)
        dst_uuid_new(id[i]);
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        char badline[300];
        snprintf(badline, sizeof(badline), bad[k].line, id[3]);
        snprintf(text, sizeof(text),
                 "{\"kind\":\"result\",\"id\":\"%s\",\"probe\":\"p\",\"time\":1}\n\n"
                 "{\"kind\":\"result\",\"id\":\"%s\",\"probe\":\"p\",\"time\":2}\n"
                 "%s\n"
                 "{\"kind\":\"result\",\"id\":\"%s\",\"probe\":\"p\",\"time\":3}\n",
                 id[0], id[1], badline, id[2]);
        assert_int_equal(import_text(f->s, text, &rep, &line, err, sizeof(err)), DST_EINVAL);
        assert_int_equal(line, 4); /* the empty line counts */
        if (!strstr(err, bad[k].why))
            fail_msg("line %s: error '%s' lacks '%s'", badline, err, bad[k].why);
        dst_result_init(&r);
        assert_int_equal(dst_store_get(f->s, id[1], &r), 0);
        dst_result_release(&r);
        assert_int_equal(dst_store_get(f->s, id[2], &r), DST_ENOTFOUND);
        assert_int_equal(dst_store_get(f->s, id[3], &r), DST_ENOTFOUND);
        assert_int_equal(count_all(f->s), 2);
    }
    /* a line over the cap (1 MiB) is refused, not read whole */
    big = malloc((2u << 20) + 2);
    memset(big, ' ', 2u << 20);
    strcpy(big + (2u << 20) - 2, "{}\n");
    assert_int_equal(import_text(f->s, big, &rep, &line, err, sizeof(err)), DST_EINVAL);
    assert_int_equal(line, 1);
    assert_non_null(strstr(err, "longer than"));
    free(big);
}

/*
 * Rollups and the raw retention's mark go out and come back (into the other backend): the same
 * series over pruned days, a late row there keeps the copied totals; a second import puts
 * nothing.
 */
static void test_rollups_round_trip(void **state)
{
    struct fixture *f = *state;
    struct dst_store *to = NULL;
    struct dst_store_report rep;
    char err[200], url[200], db[32] = "", sql[80];
    static int ndb;
    int64_t line = -1;

    rc_fill_pruned(f->s);
    char *out = export_text(f->s, &rep);
    assert_int_equal(tally(&rep, "rollup")->done, 2 * RC_DAYS * 25);
    assert_non_null(strstr(out, "\"raw_pruned_ms\":1700179200000"));
    snprintf(url, sizeof(url), "sqlite::memory:"); /* the other backend, when there is one */
    if (f->kind != FX_PG && !fx_pg_missing) {
        snprintf(db, sizeof(db), "rtrip%d", ++ndb);
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
        assert_true(pg_sql(&fx_pg, "postgres", sql));
        pg_url(&fx_pg, db, url, sizeof(url));
    }
    assert_int_equal(dst_store_open(url, &to), 0);
    assert_int_equal(import_text(to, out, &rep, &line, err, sizeof(err)), 0);
    assert_int_equal(tally(&rep, "rollup")->copied, 2 * RC_DAYS * 25);
    assert_int_equal(import_text(to, out, &rep, &line, err, sizeof(err)), 0);
    assert_int_equal(tally(&rep, "rollup")->copied, 0);
    assert_int_equal(tally(&rep, "rollup")->existing, 2 * RC_DAYS * 25);
    rc_assert_copied(f->s, to);
    dst_store_free(to);
    if (db[0]) {
        snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", db);
        pg_sql(&fx_pg, "postgres", sql);
    }
    free(out);
}

int main(void)
{
    dst_log_init("test_store_export", DST_LOG_WARN);
    const struct CMUnitTest tests[] = {
        ALL_STORES(test_round_trip),
        ALL_STORES(test_bad_lines),
        ALL_STORES(test_rollups_round_trip),
    };
    return store_run_tests(tests);
}
