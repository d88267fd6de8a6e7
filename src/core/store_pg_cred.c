/* store_pg_cred.c - the PostgreSQL store's credentials: API tokens and browser sessions */
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/store_pg_priv.h"

static struct dst_store_sql_val text_or_null(const char *s)
{
    return s ? (struct dst_store_sql_val){.type = DST_SQL_TEXT, .s = s}
             : (struct dst_store_sql_val){.type = DST_SQL_NULL};
}

static struct dst_store_sql_val int_or_null(int64_t i)
{
    return i ? (struct dst_store_sql_val){.type = DST_SQL_INT, .i = i}
             : (struct dst_store_sql_val){.type = DST_SQL_NULL};
}

static char *column_dup(const PGresult *res, int i, int k)
{
    return PQgetisnull(res, i, k) ? NULL : dst_xstrdup(PQgetvalue(res, i, k));
}

/* NULL reads as 0: never. */
static int64_t column_int(const PGresult *res, int i, int k)
{
    return PQgetisnull(res, i, k) ? 0 : strtoll(PQgetvalue(res, i, k), NULL, 10);
}

/* Row i of DST_STORE_SQL_CRED_COLS into c. */
static void read_cred(const PGresult *res, int i, struct dst_store_cred *c)
{
    c->id = column_dup(res, i, 0);
    c->kind = column_dup(res, i, 1);
    c->name = column_dup(res, i, 2);
    c->scopes = column_dup(res, i, 3);
    c->hash = column_dup(res, i, 4);
    c->parent = column_dup(res, i, 5);
    c->created_ms = column_int(res, i, 6);
    c->expires_ms = column_int(res, i, 7);
    c->used_ms = column_int(res, i, 8);
}

int pg_cred_add(struct dst_store *base, const struct dst_store_cred *c)
{
    struct dst_store_sql_val args[9] = {text_or_null(c->id),
                                        text_or_null(c->kind),
                                        text_or_null(c->name),
                                        text_or_null(c->scopes),
                                        text_or_null(c->hash),
                                        text_or_null(c->parent),
                                        {.type = DST_SQL_INT, .i = c->created_ms},
                                        int_or_null(c->expires_ms),
                                        int_or_null(c->used_ms)};
    int changes = 0;
    int rc = pg_store_write((struct pg_store *)base, DST_STORE_SQL_CRED_ADD, args, 9, &changes);
    return rc ? rc : changes == 1 ? 0 : DST_ECONFLICT;
}

static int cred_row(const PGresult *res, int i, void *arg)
{
    read_cred(res, i, arg);
    return PG_FOUND;
}

int pg_cred_get(struct dst_store *base, const char *id, struct dst_store_cred *out)
{
    struct dst_store_sql_val arg = text_or_null(id);
    struct dst_store_cred c = {0};
    int rc =
        pg_store_read_each((struct pg_store *)base, DST_STORE_SQL_CRED_GET, &arg, 1, cred_row, &c);
    if (rc != PG_FOUND)
        return rc ? rc : DST_ENOTFOUND;
    *out = c;
    return 0;
}

struct list_ctx {
    const char *kind;
    struct dst_store_cred *c;
    size_t n, cap;
};

static int list_row(const PGresult *res, int i, void *arg)
{
    struct list_ctx *x = arg;

    if (x->kind && strcmp(PQgetvalue(res, i, 1), x->kind) != 0)
        return 0;
    if (x->n == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 8;
        x->c = dst_xrealloc(x->c, x->cap * sizeof(*x->c));
    }
    memset(&x->c[x->n], 0, sizeof(x->c[x->n]));
    read_cred(res, i, &x->c[x->n++]);
    return 0;
}

int pg_cred_list(struct dst_store *base, const char *kind, struct dst_store_cred **out, size_t *n)
{
    struct list_ctx x = {kind, NULL, 0, 0};
    int rc =
        pg_store_read_each((struct pg_store *)base, DST_STORE_SQL_CRED_LIST, NULL, 0, list_row, &x);
    if (rc) {
        dst_store_creds_free(x.c, x.n);
        return rc;
    }
    *out = x.c;
    *n = x.n;
    return 0;
}

/* One statement: whether id itself was among the rows it deleted is in RETURNING. */
#define CRED_DELETE_PG "DELETE FROM credentials WHERE id = $1 OR parent = $1 RETURNING id = $1"

static int bool_any_row(const PGresult *res, int i, void *arg)
{
    if (PQgetvalue(res, i, 0)[0] == 't')
        *(bool *)arg = true;
    return 0;
}

int pg_cred_delete(struct dst_store *base, const char *id, bool *deleted)
{
    struct dst_store_sql_val arg = text_or_null(id);
    bool existed = false;
    int rc = pg_store_read_each((struct pg_store *)base, CRED_DELETE_PG, &arg, 1, bool_any_row,
                                &existed);
    if (rc == 0 && deleted)
        *deleted = existed;
    return rc;
}

int pg_cred_touch(struct dst_store *base, const char *id, int64_t used_ms)
{
    struct dst_store_sql_val args[2] = {{.type = DST_SQL_INT, .i = used_ms}, text_or_null(id)};
    return pg_store_write((struct pg_store *)base, DST_STORE_SQL_CRED_TOUCH, args, 2, NULL);
}

int pg_cred_purge(struct dst_store *base, int64_t now_ms)
{
    struct dst_store_sql_val arg = {.type = DST_SQL_INT, .i = now_ms};
    return pg_store_write((struct pg_store *)base, DST_STORE_SQL_CRED_PURGE, &arg, 1, NULL);
}
