/* store_sqlite_cred.c - the SQLite store's credentials: API tokens and browser sessions */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/store_sqlite_priv.h"

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

static char *column_dup(sqlite3_stmt *st, int k)
{
    const char *t = (const char *)sqlite3_column_text(st, k);
    return t ? dst_xstrdup(t) : NULL;
}

/* One row of DST_STORE_SQL_CRED_COLS into c. */
static void read_cred(sqlite3_stmt *st, struct dst_store_cred *c)
{
    c->id = column_dup(st, 0);
    c->kind = column_dup(st, 1);
    c->name = column_dup(st, 2);
    c->scopes = column_dup(st, 3);
    c->hash = column_dup(st, 4);
    c->parent = column_dup(st, 5);
    c->created_ms = sqlite3_column_int64(st, 6);
    c->expires_ms = sqlite3_column_int64(st, 7); /* NULL reads as 0: never */
    c->used_ms = sqlite3_column_int64(st, 8);
}

int sqlite_cred_add(struct dst_store *base, const struct dst_store_cred *c)
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
    int rc =
        sqlite_store_write((struct sqlite_store *)base, DST_STORE_SQL_CRED_ADD, args, 9, &changes);
    return rc ? rc : changes == 1 ? 0 : DST_ECONFLICT;
}

static int cred_row(sqlite3_stmt *st, void *arg)
{
    read_cred(st, arg);
    return FOUND;
}

int sqlite_cred_get(struct dst_store *base, const char *id, struct dst_store_cred *out)
{
    struct dst_store_sql_val arg = text_or_null(id);
    struct dst_store_cred c = {0};
    int rc = sqlite_store_read_each((struct sqlite_store *)base, DST_STORE_SQL_CRED_GET, &arg, 1,
                                    cred_row, &c);
    if (rc != FOUND)
        return rc ? rc : DST_ENOTFOUND;
    *out = c;
    return 0;
}

struct list_ctx {
    const char *kind;
    struct dst_store_cred *c;
    size_t n, cap;
};

static int list_row(sqlite3_stmt *st, void *arg)
{
    struct list_ctx *x = arg;
    const char *kind = (const char *)sqlite3_column_text(st, 1);

    if (x->kind && (!kind || strcmp(kind, x->kind) != 0))
        return 0;
    if (x->n == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 8;
        x->c = dst_xrealloc(x->c, x->cap * sizeof(*x->c));
    }
    memset(&x->c[x->n], 0, sizeof(x->c[x->n]));
    read_cred(st, &x->c[x->n++]);
    return 0;
}

int sqlite_cred_list(struct dst_store *base, const char *kind, struct dst_store_cred **out,
                     size_t *n)
{
    struct list_ctx x = {kind, NULL, 0, 0};
    int rc = sqlite_store_read_each((struct sqlite_store *)base, DST_STORE_SQL_CRED_LIST, NULL, 0,
                                    list_row, &x);
    if (rc) {
        dst_store_creds_free(x.c, x.n);
        return rc;
    }
    *out = x.c;
    *n = x.n;
    return 0;
}

int sqlite_cred_delete(struct dst_store *base, const char *id, bool *deleted)
{
    struct dst_store_sql_val args[2] = {text_or_null(id), text_or_null(id)};
    struct dst_store_cred c = {0};
    int rc = sqlite_cred_get(base, id, &c);
    bool existed = rc == 0;

    dst_store_cred_release(&c);
    if (rc && rc != DST_ENOTFOUND)
        return rc;
    rc = sqlite_store_write((struct sqlite_store *)base, DST_STORE_SQL_CRED_DELETE, args, 2, NULL);
    if (rc == 0 && deleted)
        *deleted = existed;
    return rc;
}

int sqlite_cred_touch(struct dst_store *base, const char *id, int64_t used_ms)
{
    struct dst_store_sql_val args[2] = {{.type = DST_SQL_INT, .i = used_ms}, text_or_null(id)};
    return sqlite_store_write((struct sqlite_store *)base, DST_STORE_SQL_CRED_TOUCH, args, 2, NULL);
}

int sqlite_cred_purge(struct dst_store *base, int64_t now_ms)
{
    struct dst_store_sql_val arg = {.type = DST_SQL_INT, .i = now_ms};
    return sqlite_store_write((struct sqlite_store *)base, DST_STORE_SQL_CRED_PURGE, &arg, 1, NULL);
}
