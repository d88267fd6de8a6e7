/* store_pg_conn.c - PostgreSQL store: the connection pool, reconnects, prepared statements */
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store_pg_priv.h"

#define IDLE_CONNS 8   /* connections kept open while idle */
#define CONNECT_S  "5" /* connect_timeout unless the URL says otherwise */
#define MAX_PARAMS (DST_STORE_SQL_NCOLS + 8)
#define MSG_MAX    512

/* libpq's message without its trailing newline. */
static const char *msg_trim(const char *m, char *buf, size_t cap)
{
    size_t n = m ? strlen(m) : 0;

    while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
        n--;
    snprintf(buf, cap, "%.*s", (int)n, n ? m : "unknown error");
    return buf;
}

int dst_store_pg_url_check(const char *url, char *err, size_t errlen)
{
    char *msg = NULL, buf[MSG_MAX];
    PQconninfoOption *o = PQconninfoParse(url, &msg);

    if (o) {
        PQconninfoFree(o);
        return 0;
    }
    if (err && errlen)
        snprintf(err, errlen, "postgresql URL: %s",
                 msg_trim(msg ? msg : "out of memory", buf, sizeof(buf)));
    PQfreemem(msg);
    return DST_EINVAL;
}

int pg_store_fail(struct pg_store_conn *c, const char *what, const PGresult *res)
{
    const char *m = res ? PQresultErrorMessage(res) : "";
    const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    char buf[MSG_MAX];

    if (!m || !*m)
        m = c && c->pg ? PQerrorMessage(c->pg) : "out of memory";
    msg_trim(m, buf, sizeof(buf));
    if (c && c->pg && PQstatus(c->pg) != CONNECTION_OK)
        dst_error("store: postgresql %s: connection lost: %s (the next use reconnects)", what, buf);
    else
        dst_error("store: postgresql %s: %s", what, buf);
    return sqlstate && strcmp(sqlstate, "53100") == 0 ? DST_ENOSPC : DST_EDEP;
}

/* The server's notices ("already exists, skipping") go to the debug log, not to stderr. */
static void notice(void *arg, const char *message)
{
    char buf[MSG_MAX];
    (void)arg;
    dst_debug("store: postgresql: %s", msg_trim(message, buf, sizeof(buf)));
}

/* ---- the pool ---- */

static void conn_close(struct pg_store_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < PG_STMT_CACHE; i++)
        free(c->cache[i].sql);
    PQfinish(c->pg);
    free(c);
}

/* Records whether the server could be reached; an outage is logged once, and its end. */
static void set_down(struct pg_store *s, bool down, const char *why)
{
    pthread_mutex_lock(&s->lock);
    bool was = s->down;
    s->down = down;
    pthread_mutex_unlock(&s->lock);
    if (down && !was)
        dst_error("store: postgresql: cannot connect: %s (tried again on every use)", why);
    else if (down)
        dst_debug("store: postgresql: cannot connect: %s", why);
    else if (was)
        dst_info("store: postgresql: connected again");
}

static int conn_open(struct pg_store *s, struct pg_store_conn **out)
{
    /* the URL comes last: what it says wins over these defaults */
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {CONNECT_S, "dstmc", s->url, NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    char buf[MSG_MAX];

    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        set_down(s, true, msg_trim(pg ? PQerrorMessage(pg) : "out of memory", buf, sizeof(buf)));
        PQfinish(pg);
        return DST_EDEP;
    }
    set_down(s, false, NULL);
    PQsetNoticeProcessor(pg, notice, NULL);
    struct pg_store_conn *c = dst_xnew(struct pg_store_conn);
    c->pg = pg;
    *out = c;
    return 0;
}

/*
 * An idle connection has nothing to read: if it has, the server is closing it (a restart sends
 * "terminating connection" and hangs up), so it is not worth a try.
 */
static bool conn_alive(struct pg_store_conn *c)
{
    struct pollfd p = {.fd = PQsocket(c->pg), .events = POLLIN};

    return PQstatus(c->pg) == CONNECTION_OK && p.fd >= 0 && poll(&p, 1, 0) == 0;
}

int pg_store_conn_get(struct pg_store *s, struct pg_store_conn **out)
{
    for (;;) {
        pthread_mutex_lock(&s->lock);
        struct pg_store_conn *c = s->idle;
        if (c) {
            s->idle = c->next;
            s->nidle--;
        }
        pthread_mutex_unlock(&s->lock);
        if (!c)
            break;
        if (conn_alive(c)) {
            *out = c;
            return 0;
        }
        conn_close(c);
    }
    return conn_open(s, out);
}

void pg_store_conn_put(struct pg_store *s, struct pg_store_conn *c)
{
    struct pg_store_conn *drop = NULL;

    if (!c)
        return;
    bool broken = PQstatus(c->pg) != CONNECTION_OK;
    pthread_mutex_lock(&s->lock);
    if (broken) { /* the others met the same restart: drop them too */
        drop = s->idle;
        s->idle = NULL;
        s->nidle = 0;
    } else if (PQtransactionStatus(c->pg) == PQTRANS_IDLE && s->nidle < IDLE_CONNS) {
        c->next = s->idle;
        s->idle = c;
        s->nidle++;
        c = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    conn_close(c);
    while (drop) {
        struct pg_store_conn *next = drop->next;
        conn_close(drop);
        drop = next;
    }
}

/* Closes every idle connection (the store is going away). */
void pg_store_pool_free(struct pg_store *s)
{
    while (s->idle) {
        struct pg_store_conn *c = s->idle;
        s->idle = c->next;
        conn_close(c);
    }
    s->nidle = 0;
}

/* ---- prepared statements ---- */

static uint64_t hash_sql(const char *p)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

/* sql with SQLite's "?" placeholders numbered "$1, $2, ..." (texts with "$" are PostgreSQL's). */
static char *pg_text(const char *sql)
{
    size_t n = 0, k = 0;

    if (strchr(sql, '$'))
        return dst_xstrdup(sql);
    for (const char *p = sql; *p; p++)
        n += *p == '?' ? 8 : 1;
    char *out = dst_xmalloc(n + 1), *o = out;
    for (const char *p = sql; *p; p++) {
        if (*p == '?')
            o += sprintf(o, "$%zu", ++k);
        else
            *o++ = *p;
    }
    *o = '\0';
    return out;
}

/* The cache slot for sql: the one that holds it, else a free or the least recently used one. */
static struct pg_store_cached *slot_for(struct pg_store_conn *c, const char *sql, uint64_t h,
                                        bool *hit)
{
    struct pg_store_cached *slot = NULL;

    for (int i = 0; i < PG_STMT_CACHE; i++) {
        struct pg_store_cached *e = &c->cache[i];
        if (e->sql && e->hash == h && strcmp(e->sql, sql) == 0) {
            *hit = true;
            return e;
        }
        if (!slot || (slot->sql && (!e->sql || e->used < slot->used)))
            slot = e;
    }
    *hit = false;
    return slot;
}

/* The name of sql's statement on c, prepared now (PQprepare) if it was not. */
static int stmt_name(struct pg_store_conn *c, const char *sql, const char **name)
{
    uint64_t h = hash_sql(sql);
    bool hit = false;
    struct pg_store_cached *e = slot_for(c, sql, h, &hit);
    PGresult *res = NULL;
    int rc = 0;

    if (!hit && e->sql) { /* evict */
        char dealloc[48];
        snprintf(dealloc, sizeof(dealloc), "DEALLOCATE %s", e->name);
        res = PQexec(c->pg, dealloc);
        rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : pg_store_fail(c, "deallocate", res);
        PQclear(res);
        free(e->sql);
        e->sql = NULL;
    }
    if (!hit && rc == 0) {
        char *text = pg_text(sql);
        snprintf(e->name, sizeof(e->name), "s%llu", (unsigned long long)++c->nprepared);
        res = PQprepare(c->pg, e->name, text, 0, NULL);
        free(text);
        rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : pg_store_fail(c, "prepare", res);
        PQclear(res);
        if (rc == 0)
            e->sql = dst_xstrdup(sql), e->hash = h;
    }
    if (rc == 0) {
        e->used = ++c->tick;
        *name = e->name;
    }
    return rc;
}

/* The values as text parameters (all of PostgreSQL's input functions read text). */
struct params {
    const char *v[MAX_PARAMS];
    char num[MAX_PARAMS][32];
};

static void params_fill(struct params *p, const struct dst_store_sql_val *args, int n)
{
    for (int i = 0; i < n && i < MAX_PARAMS; i++) {
        const struct dst_store_sql_val *a = &args[i];
        p->v[i] = p->num[i];
        if (a->type == DST_SQL_TEXT)
            p->v[i] = a->s;
        else if (a->type == DST_SQL_INT)
            snprintf(p->num[i], sizeof(p->num[i]), "%lld", (long long)a->i);
        else if (a->type == DST_SQL_REAL) /* 17 digits: the same double back */
            snprintf(p->num[i], sizeof(p->num[i]), "%.17g", a->d);
        else
            p->v[i] = NULL;
    }
}

int pg_store_exec(struct pg_store_conn *c, const char *sql, const struct dst_store_sql_val *args,
                  int nargs, PGresult **out)
{
    const char *name = NULL;
    struct params p;

    if (nargs > MAX_PARAMS)
        return DST_EINVAL;
    int rc = stmt_name(c, sql, &name);
    if (rc)
        return rc;
    params_fill(&p, args, nargs);
    PGresult *res = PQexecPrepared(c->pg, name, nargs, p.v, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        rc = pg_store_fail(c, "query", res);
        PQclear(res);
        return rc;
    }
    *out = res;
    return 0;
}

/* Calls row for each row of res until it returns non-zero (that value is the result). */
static int each_row(const PGresult *res, int (*row)(const PGresult *, int, void *), void *arg)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        rc = row(res, i, arg);
    return rc;
}

int pg_store_read_each(struct pg_store *s, const char *sql, const struct dst_store_sql_val *args,
                       int nargs, int (*row)(const PGresult *, int, void *), void *arg)
{
    struct pg_store_conn *c = NULL;
    const char *name = NULL;
    struct params p;
    PGresult *res;

    if (nargs > MAX_PARAMS)
        return DST_EINVAL;
    int rc = pg_store_conn_get(s, &c);
    rc = rc ? rc : stmt_name(c, sql, &name);
    if (rc)
        goto out;
    params_fill(&p, args, nargs);
    if (!PQsendQueryPrepared(c->pg, name, nargs, p.v, NULL, NULL, 0)) {
        rc = pg_store_fail(c, "query", NULL);
        goto out;
    }
    PQsetSingleRowMode(c->pg); /* rows as they arrive: a long list is never all in memory */
    /* read to the end even after the callback stopped: the connection is then ready again */
    while ((res = PQgetResult(c->pg))) {
        ExecStatusType st = PQresultStatus(res);
        if (rc == 0 && (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK))
            rc = each_row(res, row, arg);
        else if (rc == 0)
            rc = pg_store_fail(c, "query", res);
        PQclear(res);
    }
out:
    pg_store_conn_put(s, c);
    return rc;
}

int pg_store_write(struct pg_store *s, const char *sql, const struct dst_store_sql_val *args,
                   int nargs, int *changes)
{
    struct pg_store_conn *c = NULL;
    PGresult *res = NULL;
    int rc = pg_store_conn_get(s, &c);

    rc = rc ? rc : pg_store_exec(c, sql, args, nargs, &res);
    if (rc == 0 && changes)
        *changes = atoi(PQcmdTuples(res));
    PQclear(res);
    pg_store_conn_put(s, c);
    return rc;
}
