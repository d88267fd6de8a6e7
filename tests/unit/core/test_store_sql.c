/* test_store_sql.c - unit tests of the store's SQL text and row mapping (src/core/store_sql.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/result.h"
#include "core/store_sql.h"

/* The column list, spelt out: the SQLite text keys the statement cache and must not drift. */
#define NAMES_A "id, time_ms, status, error, probe, location, "
#define NAMES_B                                                                                  \
    ", device, engine, target, request_id, download_bps, upload_bps, ping_ms, jitter_ms,"        \
    " loss_pct, bytes_down, bytes_up, duration_s, streams, server_id, server_host, server_name," \
    " server_sponsor, server_country, server_lat, server_lon, server_distance_m, client_ip,"     \
    " client_isp, client_country, client_lat, client_lon, demo, excluded"
#define COLS_SQLITE   "seq, " NAMES_A "user" NAMES_B
#define COLS_PG       "seq, " NAMES_A "\"user\"" NAMES_B
#define SELECT_SQLITE "SELECT " COLS_SQLITE " FROM results"
#define SELECT_PG     "SELECT " COLS_PG " FROM results"
#define PING_INT_PG   "CAST(round(CAST(ping_ms AS numeric)) AS bigint)"
#define BYTES         " COLLATE \"C\"" /* PostgreSQL: compare text like SQLite */

static struct dst_store_query query(void)
{
    struct dst_store_query q;
    dst_store_query_init(&q);
    return q;
}

static struct dst_cond text_cond(enum dst_field f, enum dst_op op, const char *s)
{
    return (struct dst_cond){.field = f, .op = op, .kind = DST_V_TEXT, .s = s};
}

static struct dst_cond int_cond(enum dst_field f, enum dst_op op, int64_t i)
{
    return (struct dst_cond){.field = f, .op = op, .kind = DST_V_INT, .i = i};
}

static void assert_text_arg(const struct dst_store_sql *sql, int k, const char *s)
{
    assert_true(k < sql->nargs);
    assert_int_equal(sql->args[k].type, DST_SQL_TEXT);
    assert_string_equal(sql->args[k].s, s);
}

static void assert_int_arg(const struct dst_store_sql *sql, int k, int64_t i)
{
    assert_true(k < sql->nargs);
    assert_int_equal(sql->args[k].type, DST_SQL_INT);
    assert_int_equal(sql->args[k].i, i);
}

static void assert_null_arg(const struct dst_store_sql *sql, int k)
{
    assert_true(k < sql->nargs);
    assert_int_equal(sql->args[k].type, DST_SQL_NULL);
}

/* Builds q's list query (or count) in dialect d into sql; asserts success. */
static void build(struct dst_store_sql *sql, enum dst_store_sql_dialect d,
                  const struct dst_store_query *q, bool count)
{
    dst_store_sql_init(sql, d);
    assert_int_equal(count ? dst_store_sql_count(sql, q) : dst_store_sql_query(sql, q), 0);
}

static void get_by_id(void **state)
{
    struct dst_store_sql sql;
    const char *id = "0b0e5f4c-0000-4000-8000-000000000001";

    (void)state;
    dst_store_sql_init(&sql, DST_SQL_SQLITE);
    assert_int_equal(dst_store_sql_get(&sql, id), 0);
    assert_string_equal(sql.text.data, SELECT_SQLITE " WHERE id = ?");
    assert_int_equal(sql.nargs, 1);
    assert_text_arg(&sql, 0, id);
    dst_store_sql_release(&sql);

    dst_store_sql_init(&sql, DST_SQL_PG);
    assert_int_equal(dst_store_sql_get(&sql, id), 0);
    assert_string_equal(sql.text.data, SELECT_PG " WHERE id = $1");
    assert_text_arg(&sql, 0, id);
    dst_store_sql_release(&sql);
}

static void query_default(void **state)
{
    struct dst_store_query q = query();
    struct dst_store_sql sql;

    (void)state;
    build(&sql, DST_SQL_SQLITE, &q, false);
    assert_string_equal(sql.text.data,
                        SELECT_SQLITE " ORDER BY time_ms DESC, seq LIMIT ? OFFSET ?");
    assert_int_equal(sql.nargs, 2);
    assert_int_arg(&sql, 0, -1); /* SQLite: a negative limit is none */
    assert_int_arg(&sql, 1, 0);
    dst_store_sql_release(&sql);

    build(&sql, DST_SQL_PG, &q, false);
    assert_string_equal(sql.text.data, SELECT_PG " ORDER BY time_ms DESC, seq LIMIT $1 OFFSET $2");
    assert_null_arg(&sql, 0); /* PostgreSQL refuses a negative limit; NULL is none */
    assert_int_arg(&sql, 1, 0);
    dst_store_sql_release(&sql);
}

/* Every kind of value, bound in the order of the placeholders: conditions, limit, offset. */
static void query_conditions_in_bind_order(void **state)
{
    struct dst_store_query q = query();
    struct dst_store_sql sql;

    (void)state;
    dst_store_query_add(&q, text_cond(DST_F_PROBE, DST_OP_EQ, "p1"));
    dst_store_query_add(&q, int_cond(DST_F_STATUS, DST_OP_EQ, DST_RESULT_FAILED));
    dst_store_query_add(&q, (struct dst_cond){DST_F_DOWNLOAD, DST_OP_GE, DST_V_REAL, .d = 1.5});
    dst_store_query_add(&q, int_cond(DST_F_PING_INT, DST_OP_LT, 30));
    q.sort = DST_F_LOCATION;
    q.desc = false;
    q.limit = 10;
    q.offset = 20;

    build(&sql, DST_SQL_SQLITE, &q, false);
    assert_string_equal(sql.text.data,
                        SELECT_SQLITE " WHERE probe = ? AND status = ? AND download_bps >= ? AND"
                                      " CAST(round(ping_ms) AS INTEGER) < ?"
                                      " ORDER BY location COLLATE NOCASE, location, seq"
                                      " LIMIT ? OFFSET ?");
    assert_int_equal(sql.nargs, 6);
    assert_text_arg(&sql, 0, "p1");
    assert_text_arg(&sql, 1, "failed"); /* the status enum is stored as its name */
    assert_int_equal(sql.args[2].type, DST_SQL_REAL);
    assert_true(sql.args[2].d == 1.5);
    assert_int_arg(&sql, 3, 30);
    assert_int_arg(&sql, 4, 10);
    assert_int_arg(&sql, 5, 20);
    dst_store_sql_release(&sql);

    build(&sql, DST_SQL_PG, &q, false);
    assert_string_equal(sql.text.data,
                        SELECT_PG " WHERE probe COLLATE \"C\" = $1 AND status COLLATE \"C\" = $2 "
                                  "AND download_bps >= $3::float8 AND " PING_INT_PG
                                  " < $4 ORDER BY lower(location COLLATE \"C\") NULLS FIRST,"
                                  " location COLLATE \"C\" NULLS FIRST, seq LIMIT $5 OFFSET $6");
    assert_int_equal(sql.nargs, 6);
    assert_text_arg(&sql, 1, "failed");
    assert_int_arg(&sql, 5, 20);
    dst_store_sql_release(&sql);
}

static void keyset_cursor(void **state)
{
    struct dst_store_query q = query();
    struct dst_store_sql sql;

    (void)state;
    q.keyset = true;
    q.sort = DST_F_DOWNLOAD; /* ignored by a keyset query */
    q.desc = false;
    q.limit = 25;
    build(&sql, DST_SQL_SQLITE, &q, false); /* the first page: no cursor yet */
    assert_string_equal(sql.text.data,
                        SELECT_SQLITE " ORDER BY time_ms DESC, seq DESC LIMIT ? OFFSET ?");
    assert_int_equal(sql.nargs, 2);
    dst_store_sql_release(&sql);

    q.has_after = true;
    q.after_time = 1700000000000;
    q.after_seq = 7;
    build(&sql, DST_SQL_SQLITE, &q, false);
    assert_string_equal(sql.text.data,
                        SELECT_SQLITE " WHERE (time_ms, seq) < (?, ?)"
                                      " ORDER BY time_ms DESC, seq DESC LIMIT ? OFFSET ?");
    dst_store_sql_release(&sql);

    dst_store_query_add(&q, text_cond(DST_F_PROBE, DST_OP_EQ, "p1"));
    build(&sql, DST_SQL_SQLITE, &q, false);
    assert_string_equal(sql.text.data,
                        SELECT_SQLITE " WHERE probe = ? AND (time_ms, seq) < (?, ?)"
                                      " ORDER BY time_ms DESC, seq DESC LIMIT ? OFFSET ?");
    assert_int_equal(sql.nargs, 5);
    assert_text_arg(&sql, 0, "p1");
    assert_int_arg(&sql, 1, 1700000000000);
    assert_int_arg(&sql, 2, 7);
    assert_int_arg(&sql, 3, 25);
    assert_int_arg(&sql, 4, 0);
    dst_store_sql_release(&sql);

    build(&sql, DST_SQL_PG, &q, false);
    assert_string_equal(sql.text.data,
                        SELECT_PG " WHERE probe COLLATE \"C\" = $1 AND (time_ms, seq) < ($2, $3)"
                                  " ORDER BY time_ms DESC, seq DESC LIMIT $4 OFFSET $5");
    dst_store_sql_release(&sql);
}

/* A count takes the conditions only: no cursor, order, limit or offset. */
static void count_conditions_only(void **state)
{
    struct dst_store_query q = query();
    struct dst_store_sql sql;

    (void)state;
    build(&sql, DST_SQL_SQLITE, &q, true);
    assert_string_equal(sql.text.data, "SELECT count(*) FROM results");
    assert_int_equal(sql.nargs, 0);
    dst_store_sql_release(&sql);

    dst_store_query_add(&q, text_cond(DST_F_PROBE, DST_OP_EQ, "p1"));
    dst_store_query_add(&q, int_cond(DST_F_TIME, DST_OP_GE, 5));
    q.keyset = q.has_after = true;
    q.limit = q.offset = 10;
    build(&sql, DST_SQL_SQLITE, &q, true);
    assert_string_equal(sql.text.data,
                        "SELECT count(*) FROM results WHERE probe = ? AND time_ms >= ?");
    assert_int_equal(sql.nargs, 2);
    assert_text_arg(&sql, 0, "p1");
    assert_int_arg(&sql, 1, 5);
    dst_store_sql_release(&sql);

    build(&sql, DST_SQL_PG, &q, true);
    assert_string_equal(
        sql.text.data,
        "SELECT count(*) FROM results WHERE probe COLLATE \"C\" = $1 AND time_ms >= $2");
    dst_store_sql_release(&sql);
}

/*
 * PostgreSQL types each parameter by its column: a real on a number column is cast (the column
 * may hold integers), a text on one is its number, or SQLite's answer when it spells none
 * (every number sorts before any text); SQLite's text stays as it was.
 */
static void pg_value_kinds(void **state)
{
    struct dst_store_query q = query();
    struct dst_store_sql sql;

    (void)state;
    dst_store_query_add(&q, (struct dst_cond){DST_F_DEVICE, DST_OP_EQ, DST_V_REAL, .d = 1.5});
    dst_store_query_add(&q, text_cond(DST_F_SERVER_ID, DST_OP_GE, "42"));
    dst_store_query_add(&q, text_cond(DST_F_DEVICE, DST_OP_EQ, "a"));
    dst_store_query_add(&q, text_cond(DST_F_PING, DST_OP_LT, "a"));
    dst_store_query_add(&q, int_cond(DST_F_USER, DST_OP_EQ, 7));
    build(&sql, DST_SQL_PG, &q, true);
    assert_string_equal(sql.text.data,
                        "SELECT count(*) FROM results WHERE device = $1::float8 AND server_id >="
                        " $2::float8 AND FALSE AND ping_ms IS NOT NULL AND \"user\" COLLATE"
                        " \"C\" = $3");
    assert_int_equal(sql.nargs, 3);
    assert_true(sql.args[1].type == DST_SQL_REAL && sql.args[1].d == 42);
    assert_int_arg(&sql, 2, 7);
    dst_store_sql_release(&sql);
    build(&sql, DST_SQL_SQLITE, &q, true);
    assert_string_equal(sql.text.data, "SELECT count(*) FROM results WHERE device = ? AND"
                                       " server_id >= ? AND device = ? AND ping_ms < ? AND"
                                       " user = ?");
    assert_int_equal(sql.nargs, 5);
    dst_store_sql_release(&sql);
}

/* The ORDER BY of q (sorted by f), up to " LIMIT". */
static void assert_order(enum dst_store_sql_dialect d, enum dst_field f, bool desc,
                         const char *want)
{
    struct dst_store_query q = query();
    struct dst_store_sql sql;
    char got[512];

    q.sort = f;
    q.desc = desc;
    build(&sql, d, &q, false);
    const char *from = strstr(sql.text.data, " ORDER BY"), *to = strstr(sql.text.data, " LIMIT");
    assert_non_null(from);
    assert_non_null(to);
    snprintf(got, sizeof(got), "%.*s", (int)(to - from), from);
    assert_string_equal(got, want);
    dst_store_sql_release(&sql);
}

static void sort_orders(void **state)
{
    (void)state;
    assert_order(DST_SQL_SQLITE, DST_F_SEQ, false, " ORDER BY seq");
    assert_order(DST_SQL_PG, DST_F_SEQ, true, " ORDER BY seq DESC");
    assert_order(DST_SQL_SQLITE, DST_F_TIME, false, " ORDER BY time_ms, seq");
    assert_order(DST_SQL_PG, DST_F_TIME, false, " ORDER BY time_ms, seq"); /* NOT NULL */
    assert_order(DST_SQL_SQLITE, DST_F_PROBE, true,
                 " ORDER BY probe COLLATE NOCASE DESC, probe DESC, seq");
    assert_order(DST_SQL_PG, DST_F_PROBE, true,
                 " ORDER BY lower(probe COLLATE \"C\") DESC, probe COLLATE \"C\" DESC, seq");
    assert_order(DST_SQL_SQLITE, DST_F_USER, true,
                 " ORDER BY user COLLATE NOCASE DESC, user DESC, seq");
    assert_order(DST_SQL_PG, DST_F_USER, true,
                 " ORDER BY lower(\"user\" COLLATE \"C\") DESC NULLS LAST,"
                 " \"user\" COLLATE \"C\" DESC NULLS LAST, seq");
    assert_order(DST_SQL_SQLITE, DST_F_DOWNLOAD, true, " ORDER BY download_bps DESC, seq");
    assert_order(DST_SQL_PG, DST_F_DOWNLOAD, true, " ORDER BY download_bps DESC NULLS LAST, seq");
    assert_order(DST_SQL_SQLITE, DST_F_PING_INT, false,
                 " ORDER BY CAST(round(ping_ms) AS INTEGER), seq");
    assert_order(DST_SQL_PG, DST_F_PING_INT, false, " ORDER BY " PING_INT_PG " NULLS FIRST, seq");
}

/* Every field reaches SQL as its own expression, in a condition and in a sort. */
static void every_field_mapped(void **state)
{
    static const char *const want[DST_F_COUNT_][2] = {
        [DST_F_SEQ] = {"seq", "seq"},
        [DST_F_ID] = {"id", "id" BYTES},
        [DST_F_TIME] = {"time_ms", "time_ms"},
        [DST_F_STATUS] = {"status", "status" BYTES},
        [DST_F_PROBE] = {"probe", "probe" BYTES},
        [DST_F_LOCATION] = {"location", "location" BYTES},
        [DST_F_USER] = {"user", "\"user\"" BYTES},
        [DST_F_DEVICE] = {"device", "device"},
        [DST_F_ENGINE] = {"engine", "engine" BYTES},
        [DST_F_DOWNLOAD] = {"download_bps", "download_bps"},
        [DST_F_UPLOAD] = {"upload_bps", "upload_bps"},
        [DST_F_PING] = {"ping_ms", "ping_ms"},
        [DST_F_PING_INT] = {"CAST(round(ping_ms) AS INTEGER)", PING_INT_PG},
        [DST_F_CLIENT_IP] = {"client_ip", "client_ip" BYTES},
        [DST_F_CLIENT_LAT] = {"client_lat", "client_lat"},
        [DST_F_CLIENT_LON] = {"client_lon", "client_lon"},
        [DST_F_CLIENT_ISP] = {"client_isp", "client_isp" BYTES},
        [DST_F_CLIENT_COUNTRY] = {"client_country", "client_country" BYTES},
        [DST_F_SERVER_HOST] = {"server_host", "server_host" BYTES},
        [DST_F_SERVER_LAT] = {"server_lat", "server_lat"},
        [DST_F_SERVER_LON] = {"server_lon", "server_lon"},
        [DST_F_SERVER_COUNTRY] = {"server_country", "server_country" BYTES},
        [DST_F_SERVER_DISTANCE] = {"server_distance_m", "server_distance_m"},
        [DST_F_SERVER_ID] = {"server_id", "server_id"},
        [DST_F_DEMO] = {"demo", "demo"},
        [DST_F_EXCLUDED] = {"excluded", "excluded"},
    };
    char where[128];

    (void)state;
    for (int d = DST_SQL_SQLITE; d <= DST_SQL_PG; d++) {
        for (int f = 0; f < DST_F_COUNT_; f++) {
            struct dst_store_query q = query();
            struct dst_store_sql sql;
            const char *e = want[f][d];

            assert_non_null(e);
            dst_store_query_add(&q, int_cond(f, DST_OP_LE, 1));
            q.sort = f;
            build(&sql, d, &q, false);
            snprintf(where, sizeof(where), " WHERE %s <= %s ORDER BY ", e, d ? "$1" : "?");
            const char *w = strstr(sql.text.data, where);
            assert_non_null(w);
            assert_non_null(strstr(w + strlen(where), e)); /* sorted by it too */
            dst_store_sql_release(&sql);
        }
    }
}

static void limit_and_offset(void **state)
{
    static const struct {
        int64_t limit, offset, want_offset;
    } cases[] = {{0, 0, 0}, {-5, -3, 0}, {1, 7, 7}, {INT64_MAX, INT64_MAX, INT64_MAX}};
    struct dst_store_sql sql;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dst_store_query q = query();
        q.limit = cases[i].limit;
        q.offset = cases[i].offset;
        build(&sql, DST_SQL_SQLITE, &q, false);
        assert_int_arg(&sql, 0, q.limit > 0 ? q.limit : -1);
        assert_int_arg(&sql, 1, cases[i].want_offset);
        dst_store_sql_release(&sql);

        build(&sql, DST_SQL_PG, &q, false);
        if (q.limit > 0)
            assert_int_arg(&sql, 0, q.limit);
        else
            assert_null_arg(&sql, 0);
        assert_int_arg(&sql, 1, cases[i].want_offset);
        dst_store_sql_release(&sql);
    }
}

static void bounds(void **state)
{
    struct dst_store_query q = query();
    struct dst_store_sql sql;
    const char *tail = " AND (time_ms, seq) < ($33, $34) ORDER BY time_ms DESC, seq DESC"
                       " LIMIT $35 OFFSET $36";

    (void)state;
    for (int i = 0; i < DST_QUERY_MAX_CONDS; i++)
        assert_int_equal(dst_store_query_add(&q, text_cond(DST_F_PROBE, DST_OP_EQ, "p")), 0);
    assert_int_equal(dst_store_query_add(&q, text_cond(DST_F_PROBE, DST_OP_EQ, "p")), DST_ETOOBIG);
    q.keyset = q.has_after = true;
    build(&sql, DST_SQL_PG, &q, false); /* the most placeholders a statement has */
    assert_int_equal(sql.nargs, DST_STORE_SQL_MAX_ARGS);
    assert_int_equal(DST_STORE_SQL_MAX_ARGS, 36);
    assert_string_equal(sql.text.data + sql.text.len - strlen(tail), tail);
    dst_store_sql_release(&sql);

    /* Out of range: refused before any table is indexed. */
    struct dst_store_query bad[6];
    for (int i = 0; i < 6; i++)
        bad[i] = q;
    bad[0].nconds = DST_QUERY_MAX_CONDS + 1;
    bad[1].nconds = -1;
    bad[2].conds[3].field = DST_F_COUNT_;
    bad[3].conds[0].field = (enum dst_field) - 1;
    bad[4].conds[31].op = (enum dst_op)(DST_OP_LT + 1);
    bad[5].sort = DST_F_COUNT_;
    for (int i = 0; i < 6; i++) {
        dst_store_sql_init(&sql, DST_SQL_SQLITE);
        assert_int_equal(dst_store_sql_query(&sql, &bad[i]), DST_EINVAL);
        dst_store_sql_release(&sql);
        dst_store_sql_init(&sql, DST_SQL_PG);
        assert_int_equal(dst_store_sql_count(&sql, &bad[i]), DST_EINVAL);
        dst_store_sql_release(&sql);
    }
}

static void insert_text(void **state)
{
    char want[2048];
    size_t n;

    (void)state;
    n = (size_t)snprintf(want, sizeof(want),
                         "INSERT INTO results (" NAMES_A "user" NAMES_B ", received_ms) VALUES (?");
    for (int i = 1; i < DST_STORE_SQL_NCOLS + 1; i++)
        n += (size_t)snprintf(want + n, sizeof(want) - n, ", ?");
    snprintf(want + n, sizeof(want) - n, ") ON CONFLICT (id) DO NOTHING");
    assert_string_equal(dst_store_sql_insert(DST_SQL_SQLITE), want);

    /* PostgreSQL's also sends the feed's NOTIFY of the new rows' range, once, in the statement */
    n = (size_t)snprintf(want, sizeof(want),
                         "WITH i AS (INSERT INTO results (" NAMES_A "\"user\"" NAMES_B
                         ", received_ms) VALUES ($1");
    for (int i = 2; i <= DST_STORE_SQL_NCOLS + 1; i++)
        n += (size_t)snprintf(want + n, sizeof(want) - n, ", $%d", i);
    snprintf(want + n, sizeof(want) - n,
             ") ON CONFLICT (id) DO NOTHING RETURNING seq) SELECT seq, (SELECT"
             " pg_notify('dstmc_store', 'r ' || min(seq) || ' ' || max(seq)) FROM i) FROM i");
    assert_string_equal(dst_store_sql_insert(DST_SQL_PG), want);
}

/* PostgreSQL's batch INSERT: an array per column, of the column's type, in insert_args order. */
static void insert_many_text(void **state)
{
    const char *t = dst_store_sql_insert_many();

    (void)state;
    assert_non_null(strstr(t, "INSERT INTO results (" NAMES_A "\"user\"" NAMES_B
                              ", received_ms) SELECT * FROM unnest($1::text[], $2::int8[], "
                              "$3::text[], $4::text[], "));
    assert_non_null(strstr(t, ", $8::int8[], "));               /* device */
    assert_non_null(strstr(t, ", $12::float8[], "));            /* download_bps */
    assert_non_null(strstr(t, ", $34::int2[], $35::int2[], ")); /* demo, excluded */
    assert_non_null(
        strstr(t, ", $36::int8[]) ON CONFLICT (id) DO NOTHING RETURNING id, seq")); /* received */
    assert_null(strstr(t, "$37"));
    /* one NOTIFY for the batch: an uncorrelated sub-select, evaluated once */
    assert_non_null(strstr(t, "SELECT id, seq, (SELECT pg_notify('dstmc_store', 'r ' || min(seq)"
                              " || ' ' || max(seq)) FROM i) FROM i"));
}

static void fill(struct dst_result *r)
{
    dst_result_init(r);
    snprintf(r->id, sizeof(r->id), "0b0e5f4c-0000-4000-8000-000000000002");
    r->time_ms = 1700000000123;
    r->status = DST_RESULT_FAILED;
    char **texts[] = {&r->error,       &r->probe,          &r->location,       &r->user,
                      &r->engine,      &r->target,         &r->request_id,     &r->server_host,
                      &r->server_name, &r->server_sponsor, &r->server_country, &r->client_ip,
                      &r->client_isp,  &r->client_country};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        char s[16];
        snprintf(s, sizeof(s), "t%zu", i);
        dst_result_set(texts[i], s);
    }
    double *reals[] = {&r->download_bps,      &r->upload_bps, &r->ping_ms,    &r->jitter_ms,
                       &r->loss_pct,          &r->duration_s, &r->server_lat, &r->server_lon,
                       &r->server_distance_m, &r->client_lat, &r->client_lon};
    for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++)
        *reals[i] = 0.5 + (double)i;
    int64_t *ints[] = {&r->device, &r->bytes_down, &r->bytes_up, &r->streams, &r->server_id};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        *ints[i] = 100 + (int64_t)i;
    r->demo = r->excluded = true;
}

static void assert_int_arg_of(struct dst_store_sql_val v, int64_t i)
{
    assert_int_equal(v.type, DST_SQL_INT);
    assert_int_equal(v.i, i);
}

/* r → INSERT values → columns read back gives r again (seq aside). */
static void assert_round_trip(const struct dst_result *r)
{
    struct dst_store_sql_val args[DST_STORE_SQL_NCOLS + 1];
    struct dst_result back;

    dst_store_sql_insert_args(r, 42, args);
    assert_int_equal(args[DST_STORE_SQL_NCOLS].type, DST_SQL_INT); /* received_ms */
    assert_int_equal(args[DST_STORE_SQL_NCOLS].i, 42);
    dst_result_init(&back);
    dst_store_sql_result_from_row(args, &back);
    json_t *a = dst_result_to_json(r), *b = dst_result_to_json(&back);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    dst_result_release(&back);
}

static void row_mapping(void **state)
{
    struct dst_store_sql_val args[DST_STORE_SQL_NCOLS + 1];
    struct dst_result r;
    int counts[4] = {0};

    (void)state;
    fill(&r);
    dst_store_sql_insert_args(&r, 42, args);
    for (int i = 0; i < DST_STORE_SQL_NCOLS; i++)
        counts[args[i].type]++;
    assert_int_equal(counts[DST_SQL_NULL], 0); /* all known: nothing binds NULL */
    assert_int_equal(counts[DST_SQL_TEXT], 16);
    assert_int_equal(counts[DST_SQL_INT], 8); /* with demo and excluded, 0 or 1 */
    assert_int_equal(counts[DST_SQL_REAL], 11);
    assert_string_equal(args[0].s, r.id);
    assert_int_equal(args[1].i, r.time_ms);
    assert_string_equal(args[2].s, "failed");
    assert_round_trip(&r);
    dst_result_release(&r);

    dst_result_init(&r); /* all unknown: NULL but for id, time, status, demo and excluded */
    dst_store_sql_insert_args(&r, 42, args);
    for (int i = 3; i < DST_STORE_SQL_NCOLS - 2; i++)
        assert_int_equal(args[i].type, DST_SQL_NULL);
    assert_int_arg_of(args[DST_STORE_SQL_NCOLS - 2], 0);
    assert_int_arg_of(args[DST_STORE_SQL_NCOLS - 1], 0);
    assert_round_trip(&r);

    dst_result_release(&r);
}

/* What the schema never holds (NULL in NOT NULL columns, other types) still reads defined. */
static void row_odd_values(void **state)
{
    struct dst_store_sql_val row[DST_STORE_SQL_NCOLS] = {{.type = DST_SQL_NULL}};
    struct dst_result r, want;

    (void)state;
    dst_result_init(&r);
    dst_result_init(&want);
    want.status = DST_RESULT_FAILED; /* all NULL: empty id, time 0, failed, the rest unknown */
    dst_store_sql_result_from_row(row, &r);
    json_t *a = dst_result_to_json(&r), *b = dst_result_to_json(&want);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);

    row[2] = (struct dst_store_sql_val){.type = DST_SQL_TEXT, .s = "?"};  /* status */
    row[7] = (struct dst_store_sql_val){.type = DST_SQL_REAL, .d = 3.0};  /* device */
    row[11] = (struct dst_store_sql_val){.type = DST_SQL_INT, .i = 5};    /* download_bps */
    row[12] = (struct dst_store_sql_val){.type = DST_SQL_TEXT, .s = "x"}; /* upload_bps */
    row[13] = (struct dst_store_sql_val){.type = DST_SQL_INT, .i = 9};    /* ping_ms */
    dst_store_sql_result_from_row(row, &r);
    assert_int_equal(r.status, DST_RESULT_FAILED);
    assert_int_equal(r.device, 3);
    assert_true(r.download_bps == 5.0);
    assert_true(isnan(r.upload_bps));
    assert_true(r.ping_ms == 9.0);
    dst_result_release(&r);
}

static void series_text(void **state)
{
    struct dst_series_query q = {.from_ms = 1000, .to_ms = 2000, .step_ms = 100};
    struct dst_store_sql sql;
    const char *sel = "SELECT time_ms, status = 'ok', download_bps, upload_bps, ping_ms, jitter_ms"
                      " FROM results WHERE time_ms >= ";
    char want[512];

    (void)state;
    dst_store_sql_init(&sql, DST_SQL_SQLITE);
    assert_int_equal(dst_store_sql_series(&sql, &q), 0);
    snprintf(want, sizeof(want), "%s?1 AND time_ms < ?2 AND excluded = 0 ORDER BY time_ms", sel);
    assert_string_equal(sql.text.data, want);
    assert_int_equal(sql.nargs, 2);
    assert_int_arg(&sql, 0, 1000);
    assert_int_arg(&sql, 1, 2000);
    dst_store_sql_release(&sql);

    q.probe = "p1";
    dst_store_sql_init(&sql, DST_SQL_PG);
    assert_int_equal(dst_store_sql_series(&sql, &q), 0);
    snprintf(want, sizeof(want),
             "%s$1 AND time_ms < $2 AND probe = $3 AND excluded = 0 ORDER BY time_ms", sel);
    assert_string_equal(sql.text.data, want);
    assert_int_equal(sql.nargs, 3);
    assert_text_arg(&sql, 2, "p1");
    dst_store_sql_release(&sql);
}

/* Deletes: SQLite's plain statement; PostgreSQL's also steps the version counter. */
static void delete_text(void **state)
{
    struct dst_store_query q = query();
    struct dst_store_sql sql;

    (void)state;
    dst_store_query_add(&q, int_cond(DST_F_TIME, DST_OP_GE, 10));
    dst_store_query_add(&q, int_cond(DST_F_DEMO, DST_OP_EQ, 1));
    q.limit = 5; /* ignored, like sort and the cursor */
    dst_store_sql_init(&sql, DST_SQL_SQLITE);
    assert_int_equal(dst_store_sql_delete(&sql, &q), 0);
    assert_string_equal(sql.text.data, "DELETE FROM results WHERE time_ms >= ? AND demo = ?");
    assert_int_equal(sql.nargs, 2);
    assert_int_arg(&sql, 1, 1);
    dst_store_sql_release(&sql);

    dst_store_sql_init(&sql, DST_SQL_PG);
    assert_int_equal(dst_store_sql_delete(&sql, &q), 0);
    assert_string_equal(sql.text.data,
                        "WITH d AS (DELETE FROM results WHERE time_ms >= $1 AND demo = $2"
                        " RETURNING 1), m AS (UPDATE meta SET value = value + 1 WHERE key ="
                        " 'deletes' AND EXISTS (SELECT 1 FROM d)) SELECT c, (SELECT"
                        " pg_notify('dstmc_store', 'd ' || c || ' ' || '') WHERE c > 0)"
                        " FROM (SELECT count(*) AS c FROM d) x");
    dst_store_sql_release(&sql);

    /* by id: the NOTIFY names it (bound again) */
    struct dst_store_query by_id;
    dst_store_query_init(&by_id);
    dst_store_query_add(&by_id, (struct dst_cond){DST_F_ID, DST_OP_EQ, DST_V_TEXT, .s = "the-id"});
    assert_string_equal(dst_store_sql_query_id(&by_id), "the-id");
    assert_null(dst_store_sql_query_id(&q));
    dst_store_sql_init(&sql, DST_SQL_PG);
    assert_int_equal(dst_store_sql_delete(&sql, &by_id), 0);
    assert_non_null(strstr(sql.text.data, "'d ' || c || ' ' || $2::text"));
    assert_int_equal(sql.nargs, 2);
    assert_text_arg(&sql, 1, "the-id");
    dst_store_sql_release(&sql);

    q.conds[0].field = DST_F_COUNT_;
    dst_store_sql_init(&sql, DST_SQL_SQLITE);
    assert_int_equal(dst_store_sql_delete(&sql, &q), DST_EINVAL);
    dst_store_sql_release(&sql);
}

static void set_excluded_text(void **state)
{
    struct dst_store_sql sql;

    (void)state;
    dst_store_sql_init(&sql, DST_SQL_SQLITE);
    assert_int_equal(dst_store_sql_set_excluded(&sql, "x", true), 0);
    assert_string_equal(sql.text.data, "UPDATE results SET excluded = ? WHERE id = ?");
    assert_int_arg(&sql, 0, 1);
    assert_text_arg(&sql, 1, "x");
    dst_store_sql_release(&sql);

    dst_store_sql_init(&sql, DST_SQL_PG);
    assert_int_equal(dst_store_sql_set_excluded(&sql, "x", false), 0);
    assert_non_null(strstr(sql.text.data, "WITH d AS (UPDATE results SET excluded = $1 WHERE"
                                          " id = $2 RETURNING 1), m AS (UPDATE meta"));
    assert_int_arg(&sql, 0, 0);
    dst_store_sql_release(&sql);
}

static void probes_text(void **state)
{
    struct dst_store_sql sql;

    (void)state;
    dst_store_sql_init(&sql, DST_SQL_SQLITE);
    assert_int_equal(dst_store_sql_probes(&sql), 0);
    assert_string_equal(
        sql.text.data,
        "SELECT p.probe, p.first_ms, p.last_ms, p.n, p.failed, r.seq, r.id, r.time_ms, r.status,"
        " r.error, r.probe, r.location, r.user, r.device, r.engine, r.target, r.request_id,"
        " r.download_bps, r.upload_bps, r.ping_ms, r.jitter_ms, r.loss_pct, r.bytes_down,"
        " r.bytes_up, r.duration_s, r.streams, r.server_id, r.server_host, r.server_name,"
        " r.server_sponsor, r.server_country, r.server_lat, r.server_lon, r.server_distance_m,"
        " r.client_ip, r.client_isp, r.client_country, r.client_lat, r.client_lon, r.demo, "
        "r.excluded FROM"
        " (SELECT probe, min(time_ms) AS first_ms, max(time_ms) AS last_ms, count(*) AS n,"
        " count(*) FILTER (WHERE status = 'failed') AS failed FROM results GROUP BY probe)"
        " AS p JOIN results AS r ON r.seq = (SELECT seq FROM results WHERE probe = p.probe"
        " ORDER BY time_ms DESC, seq DESC LIMIT 1) ORDER BY p.probe");
    assert_int_equal(sql.nargs, 0);
    dst_store_sql_release(&sql);

    dst_store_sql_init(&sql, DST_SQL_PG);
    assert_int_equal(dst_store_sql_probes(&sql), 0);
    assert_non_null(strstr(sql.text.data, " r.location, r.\"user\", r.device,"));
    assert_non_null(strstr(sql.text.data, ") ORDER BY p.probe COLLATE \"C\""));
    dst_store_sql_release(&sql);
}

static void assert_stat(const struct dst_stat *s, double min, double avg, double max)
{
    assert_true(s->min == min);
    assert_true(s->avg == avg);
    assert_true(s->max == max);
}

static void assert_no_stat(const struct dst_stat *s)
{
    assert_true(isnan(s->min) && isnan(s->avg) && isnan(s->max));
}

static void buckets(void **state)
{
    struct dst_series_query q = {.from_ms = 1000, .to_ms = 2000, .step_ms = 100};
    struct dst_store_sql_buckets x;
    struct dst_series_bucket *b = NULL;
    size_t n = 99;

    (void)state;
    dst_store_sql_buckets_init(&x, &q);
    dst_store_sql_buckets_add(&x, 1000, true, (double[]){10, 1, 5, NAN});
    dst_store_sql_buckets_add(&x, 1050, true, (double[]){20, 3, NAN, NAN});
    dst_store_sql_buckets_add(&x, 1099, false, NULL); /* a failed row's values are not read */
    dst_store_sql_buckets_add(&x, 1300, false, NULL);
    dst_store_sql_buckets_add(&x, 1450, true, (double[]){4, 4, 4, 4});
    dst_store_sql_buckets_detach(&x, &b, &n);

    assert_int_equal(n, 3); /* only non-empty buckets */
    assert_int_equal(b[0].t_ms, 1000);
    assert_int_equal(b[0].ok, 2);
    assert_int_equal(b[0].failed, 1);
    assert_stat(&b[0].download, 10, 15, 20);
    assert_stat(&b[0].upload, 1, 2, 3);
    assert_stat(&b[0].ping, 5, 5, 5);
    assert_no_stat(&b[0].jitter);
    assert_int_equal(b[1].t_ms, 1300);
    assert_int_equal(b[1].ok, 0);
    assert_int_equal(b[1].failed, 1);
    assert_no_stat(&b[1].download);
    assert_int_equal(b[2].t_ms, 1400);
    assert_stat(&b[2].jitter, 4, 4, 4);
    free(b);

    /* Nothing: no buckets; and a release frees what an unfinished pass holds (ASan). */
    dst_store_sql_buckets_detach(&x, &b, &n);
    assert_null(b);
    assert_int_equal(n, 0);
    dst_store_sql_buckets_add(&x, 1900, true, (double[]){1, 1, 1, 1});
    dst_store_sql_buckets_release(&x);
    assert_int_equal(x.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_by_id),
        cmocka_unit_test(query_default),
        cmocka_unit_test(query_conditions_in_bind_order),
        cmocka_unit_test(keyset_cursor),
        cmocka_unit_test(count_conditions_only),
        cmocka_unit_test(pg_value_kinds),
        cmocka_unit_test(sort_orders),
        cmocka_unit_test(every_field_mapped),
        cmocka_unit_test(limit_and_offset),
        cmocka_unit_test(bounds),
        cmocka_unit_test(insert_text),
        cmocka_unit_test(insert_many_text),
        cmocka_unit_test(row_mapping),
        cmocka_unit_test(row_odd_values),
        cmocka_unit_test(series_text),
        cmocka_unit_test(delete_text),
        cmocka_unit_test(set_excluded_text),
        cmocka_unit_test(probes_text),
        cmocka_unit_test(buckets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
