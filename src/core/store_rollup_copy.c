/* store_rollup_copy.c - rollups read and put as they are, with the raw retention's mark */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/store_backend.h"
#include "core/store_rollup_priv.h"

#define SQL_PAGE_FIRST \
    "SELECT " DST_STORE_ROLLUP_COLS " FROM rollups ORDER BY step_ms, t_ms, probe LIMIT ?"
#define SQL_PAGE_AFTER                                                                       \
    "SELECT " DST_STORE_ROLLUP_COLS " FROM rollups WHERE (step_ms, t_ms, probe) > (?, ?, ?)" \
    " ORDER BY step_ms, t_ms, probe LIMIT ?"
#define SQL_PUT                                                                       \
    "INSERT INTO rollups (" DST_STORE_ROLLUP_COLS ") VALUES " DST_STORE_ROLLUP_VALUES \
    " ON CONFLICT (step_ms, t_ms, probe) DO NOTHING"
#define SQL_COUNT    "SELECT count(*) FROM rollups"
#define SQL_MARK_GET "SELECT value FROM meta WHERE key = 'raw_pruned_ms'"
/* the larger of the two marks: a copy never lowers the target's */
#define SQL_MARK_RAISE                                                                      \
    "INSERT INTO meta (key, value) VALUES ('raw_pruned_ms', ?) ON CONFLICT (key) DO UPDATE" \
    " SET value = CASE WHEN excluded.value > meta.value THEN excluded.value ELSE"           \
    " meta.value END"

struct page {
    struct dst_rollup *r;
    size_t n, max;
};

static int page_row(const struct dst_store_sql_val *c, int n, void *arg)
{
    struct page *p = arg;

    if (n < DST_STORE_ROLLUP_NCOLS || p->n >= p->max)
        return DST_EDEP;
    struct dst_rollup *r = &p->r[p->n++];
    memset(r, 0, sizeof(*r));
    dst_store_rollup_from_row(c, r);
    r->probe = dst_xstrdup(c[2].type == DST_SQL_TEXT ? c[2].s : "");
    return 0;
}

int dst_store_rollups_page(struct dst_store *s, const struct dst_rollup *after, size_t max,
                           struct dst_rollup **out, size_t *n)
{
    struct dst_store_sql_val a[4] = {{.type = DST_SQL_INT, .i = (int64_t)max}};
    struct page p = {NULL, 0, max};
    int rc;

    if (max == 0)
        return DST_EINVAL;
    if (after) {
        a[0] = (struct dst_store_sql_val){.type = DST_SQL_INT, .i = after->step_ms};
        a[1] = (struct dst_store_sql_val){.type = DST_SQL_INT, .i = after->t_ms};
        a[2] = (struct dst_store_sql_val){.type = DST_SQL_TEXT, .s = after->probe};
        a[3] = (struct dst_store_sql_val){.type = DST_SQL_INT, .i = (int64_t)max};
    }
    p.r = dst_xcalloc(max, sizeof(*p.r));
    rc = s->ops->tx->read(s, after ? SQL_PAGE_AFTER : SQL_PAGE_FIRST, a, after ? 4 : 1, page_row,
                          &p);
    if (rc || p.n == 0) { /* none: nothing to hand out */
        dst_store_rollups_free(p.r, p.n);
        p.r = NULL;
    }
    if (rc)
        return rc;
    *out = p.r;
    *n = p.n;
    return 0;
}

/* The first column, an integer, into *arg (left when NULL). */
static int mark_row(const struct dst_store_sql_val *c, int n, void *arg)
{
    if (n > 0 && c[0].type == DST_SQL_INT)
        *(int64_t *)arg = c[0].i;
    return 0;
}

int dst_store_rollups_count(struct dst_store *s, int64_t *n)
{
    int64_t v = 0;
    int rc = s->ops->tx->read(s, SQL_COUNT, NULL, 0, mark_row, &v);

    if (rc == 0)
        *n = v;
    return rc;
}

int dst_store_raw_pruned(struct dst_store *s, int64_t *ms)
{
    int64_t v = DST_STORE_NEVER_PRUNED;
    int rc = s->ops->tx->read(s, SQL_MARK_GET, NULL, 0, mark_row, &v);

    if (rc == 0)
        *ms = v;
    return rc;
}

/* Whether r could have been rolled: a step, its boundary, a probe, counts that fit. */
static bool rollup_ok(const struct dst_rollup *r)
{
    if (r->step_ms != DST_ROLLUP_HOUR_MS && r->step_ms != DST_ROLLUP_DAY_MS)
        return false;
    if (dst_store_rollup_floor(r->t_ms, r->step_ms) != r->t_ms)
        return false;
    return r->probe && r->probe[0] && r->failed >= 0 && r->count >= r->failed;
}

int dst_store_rollups_put(struct dst_store *s, const struct dst_rollup *r, size_t n,
                          int64_t raw_pruned_ms, int64_t *created)
{
    const struct dst_store_tx_ops *t = s->ops->tx;
    struct dst_store_sql_val a[DST_STORE_ROLLUP_NCOLS];
    struct dst_store_tx *tx = NULL;
    int64_t made = 0, one = 0;
    int rc = 0;

    for (size_t i = 0; i < n; i++)
        if (!rollup_ok(&r[i]))
            return DST_EINVAL;
    rc = t->begin(s, &tx);
    if (rc)
        return rc;
    if (raw_pruned_ms != DST_STORE_NEVER_PRUNED) {
        a[0] = (struct dst_store_sql_val){.type = DST_SQL_INT, .i = raw_pruned_ms};
        rc = t->exec(tx, SQL_MARK_RAISE, a, 1, NULL, NULL, NULL);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        dst_store_rollup_args(&r[i], r[i].probe, a);
        rc = t->exec(tx, SQL_PUT, a, DST_STORE_ROLLUP_NCOLS, NULL, NULL, &one);
        made += one;
    }
    int erc = t->end(tx, rc == 0);
    rc = rc ? rc : erc;
    if (rc == 0 && created)
        *created = made;
    return rc;
}
