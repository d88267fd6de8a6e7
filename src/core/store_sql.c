/* store_sql.c - the SQL of the results store and its row mapping, for SQLite and PostgreSQL */
#include "core/store_sql.h"

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"

#define SQL_MAX 16384 /* cap on a built statement's text */

/* ---- columns and fields ---- */

enum ckind { C_ID, C_TIME, C_STATUS, C_TEXT, C_REAL, C_INT, C_BOOL };

/* The results columns after seq, as struct dst_result holds them (SELECT and INSERT order). */
#define OFF(m) offsetof(struct dst_result, m)
static const struct col {
    const char *name;
    const char *pg; /* the PostgreSQL spelling where it differs ("user" is a reserved word) */
    enum ckind kind;
    size_t off;
} cols[] = {
    {"id", NULL, C_ID, 0},
    {"time_ms", NULL, C_TIME, 0},
    {"status", NULL, C_STATUS, 0},
    {"error", NULL, C_TEXT, OFF(error)},
    {"probe", NULL, C_TEXT, OFF(probe)},
    {"location", NULL, C_TEXT, OFF(location)},
    {"user", "\"user\"", C_TEXT, OFF(user)},
    {"device", NULL, C_INT, OFF(device)},
    {"engine", NULL, C_TEXT, OFF(engine)},
    {"target", NULL, C_TEXT, OFF(target)},
    {"request_id", NULL, C_TEXT, OFF(request_id)},
    {"download_bps", NULL, C_REAL, OFF(download_bps)},
    {"upload_bps", NULL, C_REAL, OFF(upload_bps)},
    {"ping_ms", NULL, C_REAL, OFF(ping_ms)},
    {"jitter_ms", NULL, C_REAL, OFF(jitter_ms)},
    {"loss_pct", NULL, C_REAL, OFF(loss_pct)},
    {"bytes_down", NULL, C_INT, OFF(bytes_down)},
    {"bytes_up", NULL, C_INT, OFF(bytes_up)},
    {"duration_s", NULL, C_REAL, OFF(duration_s)},
    {"streams", NULL, C_INT, OFF(streams)},
    {"server_id", NULL, C_INT, OFF(server_id)},
    {"server_host", NULL, C_TEXT, OFF(server_host)},
    {"server_name", NULL, C_TEXT, OFF(server_name)},
    {"server_sponsor", NULL, C_TEXT, OFF(server_sponsor)},
    {"server_country", NULL, C_TEXT, OFF(server_country)},
    {"server_lat", NULL, C_REAL, OFF(server_lat)},
    {"server_lon", NULL, C_REAL, OFF(server_lon)},
    {"server_distance_m", NULL, C_REAL, OFF(server_distance_m)},
    {"client_ip", NULL, C_TEXT, OFF(client_ip)},
    {"client_isp", NULL, C_TEXT, OFF(client_isp)},
    {"client_country", NULL, C_TEXT, OFF(client_country)},
    {"client_lat", NULL, C_REAL, OFF(client_lat)},
    {"client_lon", NULL, C_REAL, OFF(client_lon)},
    {"demo", NULL, C_BOOL, OFF(demo)},         /* 0 or 1 (migration 4) */
    {"excluded", NULL, C_BOOL, OFF(excluded)}, /* 0 or 1 (migration 4) */
};
_Static_assert(sizeof(cols) / sizeof(cols[0]) == DST_STORE_SQL_NCOLS, "DST_STORE_SQL_NCOLS");

/* enum dst_field → SQL expression: the only way a field name reaches SQL text. */
static const struct field {
    const char *expr;
    const char *pg; /* the PostgreSQL expression where it differs */
    bool text;      /* sorted case-insensitively first */
    bool null;      /* may be NULL (PostgreSQL needs SQLite's NULL order spelled out) */
} fields[DST_F_COUNT_] = {
    [DST_F_SEQ] = {"seq", NULL, false, false},
    [DST_F_ID] = {"id", NULL, true, false},
    [DST_F_TIME] = {"time_ms", NULL, false, false},
    [DST_F_STATUS] = {"status", NULL, true, false},
    [DST_F_PROBE] = {"probe", NULL, true, false},
    [DST_F_LOCATION] = {"location", NULL, true, true},
    [DST_F_USER] = {"user", "\"user\"", true, true},
    [DST_F_DEVICE] = {"device", NULL, false, true},
    [DST_F_ENGINE] = {"engine", NULL, true, true},
    [DST_F_DOWNLOAD] = {"download_bps", NULL, false, true},
    [DST_F_UPLOAD] = {"upload_bps", NULL, false, true},
    [DST_F_PING] = {"ping_ms", NULL, false, true},
    /* SQLite's round() and PostgreSQL's on numeric round halves away from zero */
    [DST_F_PING_INT] = {"CAST(round(ping_ms) AS INTEGER)",
                        "CAST(round(CAST(ping_ms AS numeric)) AS bigint)", false, true},
    [DST_F_CLIENT_IP] = {"client_ip", NULL, true, true},
    [DST_F_CLIENT_LAT] = {"client_lat", NULL, false, true},
    [DST_F_CLIENT_LON] = {"client_lon", NULL, false, true},
    [DST_F_CLIENT_ISP] = {"client_isp", NULL, true, true},
    [DST_F_CLIENT_COUNTRY] = {"client_country", NULL, true, true},
    [DST_F_SERVER_HOST] = {"server_host", NULL, true, true},
    [DST_F_SERVER_LAT] = {"server_lat", NULL, false, true},
    [DST_F_SERVER_LON] = {"server_lon", NULL, false, true},
    [DST_F_SERVER_COUNTRY] = {"server_country", NULL, true, true},
    [DST_F_SERVER_DISTANCE] = {"server_distance_m", NULL, false, true},
    [DST_F_SERVER_ID] = {"server_id", NULL, false, true},
    [DST_F_DEMO] = {"demo", NULL, false, false},
    [DST_F_EXCLUDED] = {"excluded", NULL, false, false},
};

static const char *const op_sql[] = {"=", ">=", "<=", ">", "<"};

static const char *col_name(enum dst_store_sql_dialect d, const struct col *c)
{
    return d == DST_SQL_PG && c->pg ? c->pg : c->name;
}

static const char *field_expr(enum dst_store_sql_dialect d, enum dst_field f)
{
    return d == DST_SQL_PG && fields[f].pg ? fields[f].pg : fields[f].expr;
}

/* PostgreSQL compares text by the database's collation: ask for SQLite's BINARY, bytes. */
static const char *collate(enum dst_store_sql_dialect d, bool text)
{
    return d == DST_SQL_PG && text ? " COLLATE \"C\"" : "";
}

/* ---- the fixed texts, built once from cols[] per dialect ---- */

/* "seq, id, ...", the same with "r.", the INSERT, and PostgreSQL's INSERT of arrays. */
static char sql_cols[2][1024], sql_rcols[2][1280], sql_insert[2][2048], sql_insert_many[2048];
static pthread_once_t sql_once = PTHREAD_ONCE_INIT;

/*
 * PostgreSQL: each new row's columns, and the feed's NOTIFY "r <first seq> <last seq>" once per
 * statement (an uncorrelated sub-select: evaluated once), in the INSERT's statement. Once, not
 * per row: a batch of thousands would send thousands, and notifying serialises commits.
 */
#define PG_NOTIFY_ROWS(cols)                                                     \
    "SELECT " cols "seq, (SELECT pg_notify('" DST_STORE_SQL_CHANNEL "', 'r ' ||" \
    " min(seq) || ' ' || max(seq)) FROM i) FROM i"

/* The PostgreSQL array type of a column's values. */
static const char *pg_array_type(enum ckind k)
{
    if (k == C_BOOL)
        return "int2[]";
    return k == C_REAL ? "float8[]" : k == C_TIME || k == C_INT ? "int8[]" : "text[]";
}

/* INSERT ... SELECT FROM unnest($1::text[], ...): a batch of any size in one statement. */
static void build_insert_many(void)
{
    char *si = sql_insert_many;
    size_t c = (size_t)snprintf(si, sizeof(sql_insert_many), "WITH i AS (INSERT INTO results (");

    for (int i = 0; i < DST_STORE_SQL_NCOLS; i++)
        c += (size_t)snprintf(si + c, sizeof(sql_insert_many) - c, "%s, ",
                              col_name(DST_SQL_PG, &cols[i]));
    c +=
        (size_t)snprintf(si + c, sizeof(sql_insert_many) - c, "received_ms) SELECT * FROM unnest(");
    for (int i = 0; i < DST_STORE_SQL_NCOLS; i++)
        c += (size_t)snprintf(si + c, sizeof(sql_insert_many) - c, "$%d::%s, ", i + 1,
                              pg_array_type(cols[i].kind));
    snprintf(si + c, sizeof(sql_insert_many) - c,
             "$%d::int8[]) ON CONFLICT (id) DO NOTHING RETURNING id, seq) " PG_NOTIFY_ROWS("id, "),
             DST_STORE_SQL_NCOLS + 1);
}

static void build_fixed(enum dst_store_sql_dialect d)
{
    char *sc = sql_cols[d], *sr = sql_rcols[d], *si = sql_insert[d];
    size_t a = 0, b = 0, c = 0;

    a += (size_t)snprintf(sc, sizeof(sql_cols[d]), "seq");
    b += (size_t)snprintf(sr, sizeof(sql_rcols[d]), "r.seq");
    c += (size_t)snprintf(si, sizeof(sql_insert[d]), "%sINSERT INTO results (",
                          d == DST_SQL_PG ? "WITH i AS (" : "");
    for (int i = 0; i < DST_STORE_SQL_NCOLS; i++) {
        const char *name = col_name(d, &cols[i]);
        a += (size_t)snprintf(sc + a, sizeof(sql_cols[d]) - a, ", %s", name);
        b += (size_t)snprintf(sr + b, sizeof(sql_rcols[d]) - b, ", r.%s", name);
        c += (size_t)snprintf(si + c, sizeof(sql_insert[d]) - c, "%s, ", name);
    }
    c += (size_t)snprintf(si + c, sizeof(sql_insert[d]) - c, "received_ms) VALUES (");
    for (int k = 1; k <= DST_STORE_SQL_NCOLS + 1; k++) {
        const char *sep = k > 1 ? ", " : "";
        if (d == DST_SQL_PG)
            c += (size_t)snprintf(si + c, sizeof(sql_insert[d]) - c, "%s$%d", sep, k);
        else
            c += (size_t)snprintf(si + c, sizeof(sql_insert[d]) - c, "%s?", sep);
    }
    snprintf(si + c, sizeof(sql_insert[d]) - c, ") ON CONFLICT (id) DO NOTHING%s",
             d == DST_SQL_PG ? " RETURNING seq) " PG_NOTIFY_ROWS("") : "");
}

static void build_fixed_all(void)
{
    build_fixed(DST_SQL_SQLITE);
    build_fixed(DST_SQL_PG);
    build_insert_many();
}

const char *dst_store_sql_insert(enum dst_store_sql_dialect dialect)
{
    pthread_once(&sql_once, build_fixed_all);
    return sql_insert[dialect];
}

static char cols_list[1024];

static void build_cols_list(void)
{
    size_t c = 0;

    for (int i = 0; i < DST_STORE_SQL_NCOLS; i++)
        c += (size_t)snprintf(cols_list + c, sizeof(cols_list) - c, "%s, ",
                              col_name(DST_SQL_PG, &cols[i]));
    snprintf(cols_list + c, sizeof(cols_list) - c, "received_ms");
}

const char *dst_store_sql_insert_cols(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, build_cols_list);
    return cols_list;
}

const char *dst_store_sql_insert_many(void)
{
    pthread_once(&sql_once, build_fixed_all);
    return sql_insert_many;
}

/* ---- building statements ---- */

void dst_store_sql_init(struct dst_store_sql *sql, enum dst_store_sql_dialect dialect)
{
    sql->dialect = dialect;
    dst_buf_init(&sql->text, SQL_MAX);
    sql->nargs = 0;
    pthread_once(&sql_once, build_fixed_all);
}

void dst_store_sql_release(struct dst_store_sql *sql)
{
    dst_buf_release(&sql->text);
    sql->nargs = 0;
}

/* Appends the next placeholder and records its value. */
static int put_arg(struct dst_store_sql *sql, struct dst_store_sql_val v)
{
    if (sql->nargs >= DST_STORE_SQL_MAX_ARGS)
        return DST_EINVAL;
    sql->args[sql->nargs++] = v;
    if (sql->dialect == DST_SQL_PG)
        return dst_buf_printf(&sql->text, "$%d", sql->nargs);
    return dst_buf_puts(&sql->text, "?");
}

static struct dst_store_sql_val int_val(int64_t i)
{
    return (struct dst_store_sql_val){.type = DST_SQL_INT, .i = i};
}

static struct dst_store_sql_val text_val(const char *s)
{
    return (struct dst_store_sql_val){.type = s ? DST_SQL_TEXT : DST_SQL_NULL, .s = s};
}

static struct dst_store_sql_val cond_val(const struct dst_cond *c)
{
    if (c->kind == DST_V_TEXT)
        return text_val(c->s);
    if (c->kind == DST_V_INT && c->field == DST_F_STATUS) /* the enum, stored as text */
        return text_val(dst_result_status_name(c->i));
    if (c->kind == DST_V_INT)
        return int_val(c->i);
    return (struct dst_store_sql_val){.type = DST_SQL_REAL, .d = c->d};
}

/* The tables are indexed by q's enums: refuse what is out of their range. */
static int query_check(const struct dst_store_query *q)
{
    if (q->nconds < 0 || q->nconds > DST_QUERY_MAX_CONDS || (unsigned)q->sort >= DST_F_COUNT_)
        return DST_EINVAL;
    for (int i = 0; i < q->nconds; i++) {
        if ((unsigned)q->conds[i].field >= DST_F_COUNT_ || (unsigned)q->conds[i].op > DST_OP_LT)
            return DST_EINVAL;
    }
    return 0;
}

/*
 * A text value for a number column the way SQLite compares it (numeric affinity): as the number
 * it spells, else greater than every number. Returns false when it spells no number.
 */
static bool text_as_number(const char *s, struct dst_store_sql_val *v)
{
    char *end = NULL;
    double d = strtod(s, &end);

    if (end == s || *end != '\0' || !isfinite(d))
        return false;
    *v = (struct dst_store_sql_val){.type = DST_SQL_REAL, .d = d};
    return true;
}

/*
 * Appends one condition. PostgreSQL types a parameter by its column and refuses a value of
 * another kind, where SQLite compares anyway: a real is cast (a number column may hold
 * integers), a text that is no number on a number column is SQLite's answer (numbers sort
 * before text), constant but for NULLs.
 */
static int put_cond(struct dst_store_sql *sql, const struct dst_cond *c)
{
    const char *e = field_expr(sql->dialect, c->field);
    struct dst_store_sql_val v = cond_val(c);
    bool text = fields[c->field].text;

    if (sql->dialect == DST_SQL_PG && !text && v.type == DST_SQL_TEXT && !text_as_number(v.s, &v))
        return c->op == DST_OP_LT || c->op == DST_OP_LE
                   ? dst_buf_printf(&sql->text, "%s IS NOT NULL", e)
                   : dst_buf_puts(&sql->text, "FALSE");
    int rc = dst_buf_printf(&sql->text, "%s%s %s ", e, collate(sql->dialect, text), op_sql[c->op]);
    rc = rc ? rc : put_arg(sql, v);
    if (rc == 0 && sql->dialect == DST_SQL_PG && !text && v.type == DST_SQL_REAL)
        rc = dst_buf_puts(&sql->text, "::float8");
    return rc;
}

/* Appends the WHERE clause of q's conditions and, with keyset, the cursor. */
static int put_where(struct dst_store_sql *sql, const struct dst_store_query *q, bool keyset)
{
    struct dst_buf *b = &sql->text;
    int rc = 0;

    for (int i = 0; rc == 0 && i < q->nconds; i++) {
        rc = dst_buf_puts(b, i ? " AND " : " WHERE ");
        rc = rc ? rc : put_cond(sql, &q->conds[i]);
    }
    if (rc || !keyset || !q->keyset || !q->has_after)
        return rc;
    rc = dst_buf_printf(b, "%s(time_ms, seq) < (", q->nconds ? " AND " : " WHERE ");
    rc = rc ? rc : put_arg(sql, int_val(q->after_time));
    rc = rc ? rc : dst_buf_puts(b, ", ");
    rc = rc ? rc : put_arg(sql, int_val(q->after_seq));
    return rc ? rc : dst_buf_puts(b, ")");
}

/* PostgreSQL's spelling of SQLite's order: NULLs smallest, NOCASE (ASCII), then BINARY. */
static int put_order_pg(struct dst_buf *b, const struct field *f, const char *e, bool desc)
{
    const char *dir = desc ? " DESC" : "";
    const char *nulls = !f->null ? "" : desc ? " NULLS LAST" : " NULLS FIRST";

    if (f->text)
        return dst_buf_printf(b, " ORDER BY lower(%s COLLATE \"C\")%s%s, %s COLLATE \"C\"%s%s, seq",
                              e, dir, nulls, e, dir, nulls);
    return dst_buf_printf(b, " ORDER BY %s%s%s, seq", e, dir, nulls);
}

static int put_order(struct dst_store_sql *sql, const struct dst_store_query *q)
{
    const struct field *f = &fields[q->sort];
    const char *e = field_expr(sql->dialect, q->sort), *dir = q->desc ? " DESC" : "";

    if (q->keyset)
        return dst_buf_puts(&sql->text, " ORDER BY time_ms DESC, seq DESC");
    if (q->sort == DST_F_SEQ)
        return dst_buf_printf(&sql->text, " ORDER BY seq%s", dir);
    if (sql->dialect == DST_SQL_PG)
        return put_order_pg(&sql->text, f, e, q->desc);
    if (f->text) /* case-insensitive first, then exact, then insertion order */
        return dst_buf_printf(&sql->text, " ORDER BY %s COLLATE NOCASE%s, %s%s, seq", e, dir, e,
                              dir);
    return dst_buf_printf(&sql->text, " ORDER BY %s%s, seq", e, dir);
}

/* No limit: SQLite takes a negative one, PostgreSQL NULL. */
static int put_limit(struct dst_store_sql *sql, const struct dst_store_query *q)
{
    struct dst_store_sql_val all = {.type = DST_SQL_NULL};

    if (sql->dialect == DST_SQL_SQLITE)
        all = int_val(-1);
    int rc = dst_buf_puts(&sql->text, " LIMIT ");
    rc = rc ? rc : put_arg(sql, q->limit > 0 ? int_val(q->limit) : all);
    rc = rc ? rc : dst_buf_puts(&sql->text, " OFFSET ");
    return rc ? rc : put_arg(sql, int_val(q->offset > 0 ? q->offset : 0));
}

int dst_store_sql_get(struct dst_store_sql *sql, const char *id)
{
    int rc =
        dst_buf_printf(&sql->text, "SELECT %s FROM results WHERE id = ", sql_cols[sql->dialect]);
    return rc ? rc : put_arg(sql, text_val(id));
}

int dst_store_sql_query(struct dst_store_sql *sql, const struct dst_store_query *q)
{
    int rc = query_check(q);

    rc = rc ? rc : dst_buf_printf(&sql->text, "SELECT %s FROM results", sql_cols[sql->dialect]);
    rc = rc ? rc : put_where(sql, q, true);
    rc = rc ? rc : put_order(sql, q);
    return rc ? rc : put_limit(sql, q);
}

int dst_store_sql_count(struct dst_store_sql *sql, const struct dst_store_query *q)
{
    int rc = query_check(q);

    rc = rc ? rc : dst_buf_puts(&sql->text, "SELECT count(*) FROM results");
    return rc ? rc : put_where(sql, q, false); /* like offset and limit, not the cursor */
}

/*
 * PostgreSQL: the change, the counter's step and the feed's NOTIFY ("<kind> <count> <id>") in
 * one statement, answering the rows changed.
 */
#define PG_COUNTED_TAIL                                                                \
    " RETURNING 1), m AS (UPDATE meta SET value = value + 1 WHERE key = 'deletes' AND" \
    " EXISTS (SELECT 1 FROM d)) SELECT c, (SELECT pg_notify('" DST_STORE_SQL_CHANNEL "', "

static int pg_counted_tail(struct dst_store_sql *sql, char kind, const char *id)
{
    int rc = dst_buf_puts(&sql->text, PG_COUNTED_TAIL);

    rc = rc ? rc : dst_buf_printf(&sql->text, "'%c ' || c || ' ' || ", kind);
    if (rc == 0 && id) {
        rc = put_arg(sql, text_val(id));
        rc = rc ? rc : dst_buf_puts(&sql->text, "::text");
    } else if (rc == 0) {
        rc = dst_buf_puts(&sql->text, "''");
    }
    return rc ? rc
              : dst_buf_puts(&sql->text, ") WHERE c > 0) FROM (SELECT count(*) AS c FROM d) x");
}

const char *dst_store_sql_query_id(const struct dst_store_query *q)
{
    const struct dst_cond *c = &q->conds[0];

    if (q->nconds != 1 || c->field != DST_F_ID || c->op != DST_OP_EQ || c->kind != DST_V_TEXT)
        return NULL;
    return c->s;
}

int dst_store_sql_delete(struct dst_store_sql *sql, const struct dst_store_query *q)
{
    bool pg = sql->dialect == DST_SQL_PG;
    int rc = query_check(q);

    rc = rc ? rc
            : dst_buf_puts(&sql->text,
                           pg ? "WITH d AS (DELETE FROM results" : "DELETE FROM results");
    rc = rc ? rc : put_where(sql, q, false);
    return rc || !pg ? rc : pg_counted_tail(sql, 'd', dst_store_sql_query_id(q));
}

int dst_store_sql_set_excluded(struct dst_store_sql *sql, const char *id, bool excluded)
{
    bool pg = sql->dialect == DST_SQL_PG;
    int rc = dst_buf_puts(&sql->text, pg ? "WITH d AS (UPDATE results SET excluded = "
                                         : "UPDATE results SET excluded = ");

    rc = rc ? rc : put_arg(sql, int_val(excluded));
    rc = rc ? rc : dst_buf_puts(&sql->text, " WHERE id = ");
    rc = rc ? rc : put_arg(sql, text_val(id));
    return rc || !pg ? rc : pg_counted_tail(sql, 'x', id);
}

/* ---- settings ---- */

#define SET_INSERT "INSERT INTO settings (key, value, updated_ms, version) VALUES "
#define SET_ANY                                                             \
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms =" \
    " excluded.updated_ms, version = settings.version + 1 RETURNING version"
#define SET_NEW     " ON CONFLICT (key) DO NOTHING RETURNING version"
#define SET_UPDATE  "UPDATE settings SET value = "
#define SET_PG_WITH "WITH u AS ("
#define SET_PG_NOTIFY                                                                              \
    ") SELECT version, pg_notify('" DST_STORE_SQL_CHANNEL "', 's ' || version || ' ' || $1::text)" \
    " FROM u"

static const char *const sql_setting_put[2][3] = {
    [DST_SQL_SQLITE] = {SET_INSERT "(?1, ?2, ?3, 1)" SET_ANY, SET_INSERT "(?1, ?2, ?3, 1)" SET_NEW,
                        SET_UPDATE "?2, updated_ms = ?3, version = version + 1"
                                   " WHERE key = ?1 AND version = ?4 RETURNING version"},
    [DST_SQL_PG] = {SET_PG_WITH SET_INSERT "($1, $2, $3, 1)" SET_ANY SET_PG_NOTIFY,
                    SET_PG_WITH SET_INSERT "($1, $2, $3, 1)" SET_NEW SET_PG_NOTIFY,
                    SET_PG_WITH SET_UPDATE
                    "$2, updated_ms = $3, version = version + 1"
                    " WHERE key = $1 AND version = $4 RETURNING version" SET_PG_NOTIFY},
};

const char *dst_store_sql_setting_put(enum dst_store_sql_dialect dialect, int64_t expected)
{
    return sql_setting_put[dialect][expected < 0 ? 0 : expected == 0 ? 1 : 2];
}

/* The ok flag and the four measures, straight off the covering time index. */
#define SERIES_SELECT                                                                          \
    "SELECT time_ms, status = 'ok', download_bps, upload_bps, ping_ms, jitter_ms FROM results" \
    " WHERE time_ms >= "
#define SERIES_KEPT " AND excluded = 0 ORDER BY time_ms" /* the index covers excluded too */

static const char *const sql_series[2][2] = {
    [DST_SQL_SQLITE] = {SERIES_SELECT "?1 AND time_ms < ?2" SERIES_KEPT,
                        SERIES_SELECT "?1 AND time_ms < ?2 AND probe = ?3" SERIES_KEPT},
    [DST_SQL_PG] = {SERIES_SELECT "$1 AND time_ms < $2" SERIES_KEPT,
                    SERIES_SELECT "$1 AND time_ms < $2 AND probe = $3" SERIES_KEPT},
};

int dst_store_sql_series(struct dst_store_sql *sql, const struct dst_series_query *q)
{
    sql->args[0] = int_val(q->from_ms);
    sql->args[1] = int_val(q->to_ms);
    sql->args[2] = text_val(q->probe);
    sql->nargs = q->probe ? 3 : 2;
    return dst_buf_puts(&sql->text, sql_series[sql->dialect][q->probe != NULL]);
}

int dst_store_sql_probes(struct dst_store_sql *sql)
{
    return dst_buf_printf(
        &sql->text,
        "SELECT p.probe, p.first_ms, p.last_ms, p.n, p.failed, %s FROM"
        " (SELECT probe, min(time_ms) AS first_ms, max(time_ms) AS last_ms, count(*) AS n,"
        " count(*) FILTER (WHERE status = 'failed') AS failed FROM results GROUP BY probe)"
        " AS p JOIN results AS r ON r.seq = (SELECT seq FROM results WHERE probe = p.probe"
        " ORDER BY time_ms DESC, seq DESC LIMIT 1) ORDER BY p.probe%s",
        sql_rcols[sql->dialect], collate(sql->dialect, true));
}

/* ---- rows ---- */

static void *field_at(const struct dst_result *r, const struct col *c)
{
    return (char *)r + c->off;
}

static struct dst_store_sql_val col_val(const struct dst_result *r, const struct col *c)
{
    struct dst_store_sql_val v = {.type = DST_SQL_NULL};
    double d;
    int64_t i;

    switch (c->kind) {
    case C_ID:
        return text_val(r->id);
    case C_TIME:
        return int_val(r->time_ms);
    case C_STATUS:
        return text_val(dst_result_status_name(r->status));
    case C_TEXT:
        return text_val(*(char **)field_at(r, c));
    case C_REAL:
        d = *(double *)field_at(r, c);
        return isnan(d) ? v : (struct dst_store_sql_val){.type = DST_SQL_REAL, .d = d};
    case C_INT:
        i = *(int64_t *)field_at(r, c);
        return i < 0 ? v : int_val(i);
    case C_BOOL:
        return int_val(*(bool *)field_at(r, c));
    }
    return v;
}

void dst_store_sql_insert_args(const struct dst_result *r, int64_t received_ms,
                               struct dst_store_sql_val *args)
{
    for (int i = 0; i < DST_STORE_SQL_NCOLS; i++)
        args[i] = col_val(r, &cols[i]);
    args[DST_STORE_SQL_NCOLS] = int_val(received_ms);
}

static const char *text_of(const struct dst_store_sql_val *v)
{
    return v->type == DST_SQL_TEXT ? v->s : NULL;
}

/* A number as a double (NAN if none) or an integer (-1 if none). */
static double real_of(const struct dst_store_sql_val *v)
{
    return v->type == DST_SQL_REAL ? v->d : v->type == DST_SQL_INT ? (double)v->i : NAN;
}

static int64_t int_of(const struct dst_store_sql_val *v)
{
    return v->type == DST_SQL_INT ? v->i : v->type == DST_SQL_REAL ? (int64_t)v->d : -1;
}

/* Like snprintf "%s" into r->id, without its cost on every row read. */
static void copy_id(char id[DST_UUID_LEN + 1], const char *s)
{
    size_t n = s ? strnlen(s, DST_UUID_LEN) : 0;

    if (n)
        memcpy(id, s, n);
    id[n] = '\0';
}

void dst_store_sql_result_from_row(const struct dst_store_sql_val *row, struct dst_result *r)
{
    for (int i = 0; i < DST_STORE_SQL_NCOLS; i++) {
        const struct col *c = &cols[i];
        const struct dst_store_sql_val *v = &row[i];
        switch (c->kind) {
        case C_ID:
            copy_id(r->id, text_of(v));
            break;
        case C_TIME:
            r->time_ms = v->type == DST_SQL_NULL ? 0 : int_of(v);
            break;
        case C_STATUS:
            if (dst_result_status_parse(text_of(v), &r->status) != 0)
                r->status = DST_RESULT_FAILED;
            break;
        case C_TEXT:
            dst_result_set(field_at(r, c), text_of(v));
            break;
        case C_REAL:
            *(double *)field_at(r, c) = real_of(v);
            break;
        case C_INT:
            *(int64_t *)field_at(r, c) = int_of(v);
            break;
        case C_BOOL:
            *(bool *)field_at(r, c) = int_of(v) > 0;
            break;
        }
    }
}

/* ---- series ---- */

void dst_store_sql_buckets_init(struct dst_store_sql_buckets *x, const struct dst_series_query *q)
{
    memset(x, 0, sizeof(*x));
    x->q = q;
}

/* Appends the bucket being filled: min, avg and max, NAN for measures without a value. */
static void bucket_close(struct dst_store_sql_buckets *x)
{
    if (x->n == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 64;
        x->b = dst_xrealloc(x->b, x->cap * sizeof(*x->b));
    }
    struct dst_series_bucket *b = &x->b[x->n++];
    struct dst_stat *stats[] = {&b->download, &b->upload, &b->ping, &b->jitter};

    b->t_ms = x->q->from_ms + x->cur * x->q->step_ms;
    b->ok = x->ok;
    b->failed = x->failed;
    for (int i = 0; i < 4; i++) {
        if (x->cnt[i])
            *stats[i] = (struct dst_stat){x->min[i], x->sum[i] / (double)x->cnt[i], x->max[i]};
        else
            *stats[i] = (struct dst_stat){NAN, NAN, NAN};
    }
}

void dst_store_sql_buckets_next(struct dst_store_sql_buckets *x, int64_t idx)
{
    if (x->open)
        bucket_close(x);
    x->open = true;
    x->cur = idx;
    x->ok = x->failed = 0;
    for (int i = 0; i < 4; i++) {
        x->sum[i] = 0;
        x->cnt[i] = 0;
    }
}

void dst_store_sql_buckets_detach(struct dst_store_sql_buckets *x, struct dst_series_bucket **out,
                                  size_t *n)
{
    if (x->open)
        bucket_close(x);
    *out = x->b;
    *n = x->n;
    dst_store_sql_buckets_init(x, x->q);
}

void dst_store_sql_buckets_release(struct dst_store_sql_buckets *x)
{
    free(x->b);
    dst_store_sql_buckets_init(x, x->q);
}
