/* store_pg_bulk.c - PostgreSQL bulk loads for copies and imports: COPY, one INSERT, ANALYZE */
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/store_pg_priv.h"

/*
 * Where `store copy` of a million results into PostgreSQL spent its time with the API's batch
 * insert (an array literal per column, unnest, RETURNING id and seq of every row): the server
 * parsing arrays and sending every new row's id back, the client matching them. Here a batch
 * goes in one transaction: COPY FROM STDIN (text format: the cheapest input the server has)
 * into a temporary table, then one INSERT ... SELECT ... ON CONFLICT (id) DO NOTHING that
 * returns only how many were new. The same triggers run (rollup marks), and the feed hears one
 * NOTIFY "r <first> <last>" for the statement, as from any batch insert. Durable: COMMIT waits
 * for the WAL as any write does; idempotent: stored ids are skipped.
 */

#define BULK_TABLE "dst_bulk"
#define COPY_CAP   (256u << 20) /* a batch's COPY text */

static int plain(struct pg_store_conn *c, const char *sql, ExecStatusType want, PGresult **out)
{
    PGresult *res = PQexec(c->pg, sql);
    int rc = PQresultStatus(res) == want ? 0 : pg_store_fail(c, sql, res);

    if (rc == 0 && out)
        *out = res;
    else
        PQclear(res);
    return rc;
}

/* Appends v in COPY's text format: \N for NULL, text with \\, \t, \n, \r escaped. */
static int put_val(struct dst_buf *b, const struct dst_store_sql_val *v)
{
    if (v->type == DST_SQL_INT)
        return dst_buf_printf(b, "%lld", (long long)v->i);
    if (v->type == DST_SQL_REAL)
        return dst_buf_printf(b, "%.17g", v->d);
    if (v->type != DST_SQL_TEXT)
        return dst_buf_puts(b, "\\N");
    int rc = 0;
    for (const char *p = v->s; rc == 0 && *p;) {
        size_t n = strcspn(p, "\\\t\n\r");
        rc = dst_buf_append(b, p, n);
        p += n;
        if (rc == 0 && *p) {
            char e[3] = {'\\', *p == '\t' ? 't' : *p == '\n' ? 'n' : *p == '\r' ? 'r' : '\\', 0};
            rc = dst_buf_puts(b, e);
            p++;
        }
    }
    return rc;
}

/* The batch as COPY text: ord (its place, for the seqs' order), then the insert's columns. */
static int copy_text(const struct dst_result *rs, size_t n, struct dst_buf *b)
{
    struct dst_store_sql_val args[DST_STORE_SQL_NCOLS + 1];
    int64_t now = dst_datetime_now_ms();
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < n; i++) {
        dst_store_sql_insert_args(&rs[i], now, args);
        rc = dst_buf_printf(b, "%zu", i);
        for (int k = 0; rc == 0 && k <= DST_STORE_SQL_NCOLS; k++) {
            rc = dst_buf_puts(b, "\t");
            rc = rc ? rc : put_val(b, &args[k]);
        }
        rc = rc ? rc : dst_buf_puts(b, "\n");
    }
    return rc;
}

static int copy_in(struct pg_store_conn *c, const struct dst_buf *b)
{
    PGresult *res = NULL;
    int rc = plain(c, "COPY " BULK_TABLE " FROM STDIN", PGRES_COPY_IN, NULL);

    if (rc)
        return rc;
    if (PQputCopyData(c->pg, b->data, (int)b->len) != 1 || PQputCopyEnd(c->pg, NULL) != 1)
        rc = pg_store_fail(c, "COPY", NULL);
    while ((res = PQgetResult(c->pg)) != NULL) { /* the COPY's outcome, then none */
        if (rc == 0 && PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = pg_store_fail(c, "COPY", res);
        PQclear(res);
    }
    return rc;
}

/* The statements, built once: the temporary table and the INSERT from it. */
static char sql_table[1400], sql_insert[2600];
static pthread_once_t sql_once = PTHREAD_ONCE_INIT;

static void sql_build(void)
{
    const char *cols = dst_store_sql_insert_cols();

    snprintf(sql_table, sizeof(sql_table),
             "CREATE TEMPORARY TABLE " BULK_TABLE " ON COMMIT DROP AS SELECT 0::int8 AS ord, %s"
             " FROM results WITH NO DATA",
             cols);
    snprintf(sql_insert, sizeof(sql_insert),
             "WITH i AS (INSERT INTO results (%s) SELECT %s FROM " BULK_TABLE " ORDER BY ord"
             " ON CONFLICT (id) DO NOTHING RETURNING seq) SELECT (SELECT count(*) FROM i),"
             " (SELECT pg_notify('" DST_STORE_SQL_CHANNEL "', 'r ' || min(seq) || ' ' ||"
             " max(seq)) FROM i HAVING count(*) > 0)",
             cols, cols);
}

int pg_store_insert_bulk(struct dst_store *base, const struct dst_result *rs, size_t n,
                         int64_t *created)
{
    struct pg_store *s = (struct pg_store *)base;
    struct pg_store_conn *c = NULL;
    PGresult *res = NULL;
    struct dst_buf b;
    int rc = 0;

    pthread_once(&sql_once, sql_build);
    dst_buf_init(&b, COPY_CAP);
    rc = copy_text(rs, n, &b);
    rc = rc ? rc : pg_store_conn_get(s, &c);
    rc = rc ? rc : plain(c, "BEGIN", PGRES_COMMAND_OK, NULL);
    rc = rc ? rc : plain(c, sql_table, PGRES_COMMAND_OK, NULL);
    rc = rc ? rc : copy_in(c, &b);
    rc = rc ? rc : plain(c, sql_insert, PGRES_TUPLES_OK, &res);
    rc = rc ? rc : plain(c, "COMMIT", PGRES_COMMAND_OK, NULL);
    if (rc == 0)
        *created = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    pg_store_conn_put(s, c); /* closed if the transaction is still open */
    dst_buf_release(&b);
    return rc;
}

/*
 * The tables a copy fills, for the planner: a fresh results table has no statistics yet. And
 * the marks table vacuumed: a roll of a big backlog leaves it empty but full of dead rows until
 * autovacuum comes, and the series, which looks for marks of every bucket, read them all (a
 * five-year series on 5.26 M results took 1.5 s so, and 46 ms on SQLite).
 */
int pg_store_analyze(struct dst_store *base)
{
    struct pg_store *s = (struct pg_store *)base;
    struct pg_store_conn *c = NULL;
    int rc = pg_store_conn_get(s, &c);

    rc = rc ? rc : plain(c, "VACUUM (ANALYZE) rollup_dirty", PGRES_COMMAND_OK, NULL);
    rc = rc ? rc : plain(c, "ANALYZE results, rollups", PGRES_COMMAND_OK, NULL);
    pg_store_conn_put(s, c);
    return rc;
}
