/* store_rollup.c - rollups and retention: hourly and daily summaries per probe, kept exact */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/store_backend.h"
#include "core/store_rollup_priv.h"

/*
 * How the rollups stay exact: every insert, delete or change of a raw row marks its (probe,
 * hour) in rollup_dirty, by a trigger, in the changing transaction (migration 6). The roller
 * takes the marks of one (probe, day) and recomputes that day's 24 hourly and one daily rollup
 * from its raw rows in one transaction, so a bucket without a mark is exact. Pruning deletes
 * the raw rows of whole days that carry no mark, and records how far it went (the meta key
 * raw_pruned_ms, a day boundary): a mark below it is a late row, folded into the kept rollups.
 */

#define ROLLUP_COLS       DST_STORE_ROLLUP_COLS
#define NCOLS             DST_STORE_ROLLUP_NCOLS
#define SQL_ROLLUP_INSERT "INSERT INTO rollups (" ROLLUP_COLS ") VALUES " DST_STORE_ROLLUP_VALUES
#define SQL_ROLLUP_DELETE "DELETE FROM rollups WHERE probe = ? AND t_ms >= ? AND t_ms < ?"
#define SQL_ROLLUP_OF_DAY \
    "SELECT " ROLLUP_COLS " FROM rollups WHERE probe = ? AND t_ms >= ? AND t_ms < ?"
#define RAW_COLS "time_ms, status, download_bps, upload_bps, ping_ms, jitter_ms, loss_pct"
#define SQL_RAW_OF_DAY                                                                \
    "SELECT " RAW_COLS ", excluded FROM results WHERE probe = ? AND time_ms >= ? AND" \
    " time_ms < ? ORDER BY time_ms, seq"
#define SQL_RAW_TAKE                                                                           \
    "DELETE FROM results WHERE probe = ? AND time_ms >= ? AND time_ms < ? RETURNING " RAW_COLS \
    ", excluded"
#define SQL_DIRTY_TAKE "DELETE FROM rollup_dirty WHERE probe = ? AND t_ms >= ? AND t_ms < ?"
#define SQL_DIRTY_DAYS                                                                    \
    "SELECT DISTINCT probe, t_ms - ((t_ms % 86400000) + 86400000) % 86400000 AS day FROM" \
    " rollup_dirty ORDER BY day, probe LIMIT ?"
#define SQL_DIRTY_LOCK "LOCK TABLE rollup_dirty IN SHARE ROW EXCLUSIVE MODE"
#define SQL_WM_PUT                                                                \
    "INSERT INTO meta (key, value) VALUES ('raw_pruned_ms', ?) ON CONFLICT (key)" \
    " DO UPDATE SET value = excluded.value"

/* ---- small helpers ---- */

int64_t dst_store_rollup_floor(int64_t t, int64_t step)
{
    int64_t r = t % step;
    return t - (r < 0 ? r + step : r);
}

static struct dst_store_sql_val ival(int64_t i)
{
    return (struct dst_store_sql_val){.type = DST_SQL_INT, .i = i};
}

static struct dst_store_sql_val tval(const char *s)
{
    return (struct dst_store_sql_val){.type = s ? DST_SQL_TEXT : DST_SQL_NULL, .s = s};
}

static struct dst_store_sql_val rval(double d)
{
    return isnan(d) ? (struct dst_store_sql_val){.type = DST_SQL_NULL}
                    : (struct dst_store_sql_val){.type = DST_SQL_REAL, .d = d};
}

double dst_store_rollup_real(const struct dst_store_sql_val *v)
{
    return v->type == DST_SQL_REAL ? v->d : v->type == DST_SQL_INT ? (double)v->i : NAN;
}

static int64_t int_of(const struct dst_store_sql_val *v)
{
    return v->type == DST_SQL_INT ? v->i : v->type == DST_SQL_REAL ? (int64_t)v->d : 0;
}

static int one_int(const struct dst_store_sql_val *cols, int n, void *arg)
{
    struct dst_store_sql_val *out = arg;
    if (n > 0)
        *out = cols[0];
    return 0;
}

/* The raw retention's mark: raw rows before it were pruned (INT64_MIN + 1 when never). */
#define WM_SQL                                                              \
    "SELECT coalesce((SELECT value FROM meta WHERE key = 'raw_pruned_ms')," \
    " -9223372036854775807)"

static int wm_read(const struct dst_store_tx_ops *t, struct dst_store_tx *tx, int64_t *wm)
{
    struct dst_store_sql_val v = {.type = DST_SQL_NULL};
    int rc = t->exec(tx, WM_SQL, NULL, 0, one_int, &v, NULL);
    *wm = int_of(&v);
    return rc;
}

/* ---- one bucket's summary ---- */

struct vals {
    double *v;
    size_t n, cap;
    double min, max, sum;
};

struct acc {
    int64_t count, failed;
    struct vals m[DST_ROLLUP_NMEASURES];
};

static void acc_free(struct acc *a)
{
    for (int i = 0; i < DST_ROLLUP_NMEASURES; i++)
        free(a->m[i].v);
    memset(a, 0, sizeof(*a));
}

/* One raw row: ok or not, and its measures (NAN: none). */
static void acc_row(struct acc *a, bool ok, const double *v)
{
    a->count++;
    if (!ok) {
        a->failed++;
        return;
    }
    for (int i = 0; i < DST_ROLLUP_NMEASURES; i++) {
        struct vals *m = &a->m[i];
        if (isnan(v[i]))
            continue;
        if (m->n == m->cap) {
            m->cap = m->cap ? 2 * m->cap : 16;
            m->v = dst_xrealloc(m->v, m->cap * sizeof(*m->v));
        }
        m->min = m->n == 0 || v[i] < m->min ? v[i] : m->min;
        m->max = m->n == 0 || v[i] > m->max ? v[i] : m->max;
        m->sum += v[i];
        m->v[m->n++] = v[i];
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The nearest-rank p-th percentile of the sorted v[0 .. n): v at rank ceil(p / 100 * n). */
double dst_store_rollup_rank(const double *v, size_t n, int p)
{
    size_t rank = ((size_t)p * n + 99) / 100;
    return n ? v[rank ? rank - 1 : 0] : NAN;
}

static void acc_finish(struct acc *a, struct dst_rollup *r)
{
    r->count = a->count;
    r->failed = a->failed;
    for (int i = 0; i < DST_ROLLUP_NMEASURES; i++) {
        struct vals *m = &a->m[i];
        struct dst_rollup_stat *st = &r->m[i];
        if (m->n > 1)
            qsort(m->v, m->n, sizeof(*m->v), cmp_double);
        st->n = (int64_t)m->n;
        st->min = m->n ? m->min : NAN;
        st->max = m->n ? m->max : NAN;
        st->sum = m->n ? m->sum : NAN;
        st->p50 = dst_store_rollup_rank(m->v, m->n, 50);
        st->p90 = dst_store_rollup_rank(m->v, m->n, 90);
    }
}

/* Adds the late rows' summary l to the kept rollup r: exact but for p50/p90 (see store.h). */
static void rollup_fold(struct dst_rollup *r, const struct dst_rollup *l)
{
    r->count += l->count;
    r->failed += l->failed;
    for (int i = 0; i < DST_ROLLUP_NMEASURES; i++) {
        struct dst_rollup_stat *a = &r->m[i];
        const struct dst_rollup_stat *b = &l->m[i];
        if (b->n == 0)
            continue;
        if (a->n == 0) {
            *a = *b;
            continue;
        }
        a->n += b->n;
        a->min = fmin(a->min, b->min);
        a->max = fmax(a->max, b->max);
        a->sum += b->sum;
    }
}

/* ---- reading rollup rows ---- */

void dst_store_rollup_from_row(const struct dst_store_sql_val *c, struct dst_rollup *r)
{
    r->step_ms = int_of(&c[0]);
    r->t_ms = int_of(&c[1]);
    r->count = int_of(&c[3]);
    r->failed = int_of(&c[4]);
    for (int i = 0; i < DST_ROLLUP_NMEASURES; i++) {
        const struct dst_store_sql_val *m = &c[5 + 6 * i];
        r->m[i] = (struct dst_rollup_stat){int_of(&m[0]),
                                           dst_store_rollup_real(&m[1]),
                                           dst_store_rollup_real(&m[2]),
                                           dst_store_rollup_real(&m[3]),
                                           dst_store_rollup_real(&m[4]),
                                           dst_store_rollup_real(&m[5])};
    }
}

struct rollup_list {
    struct dst_rollup *r;
    size_t n, cap;
};

static int list_row(const struct dst_store_sql_val *c, int n, void *arg)
{
    struct rollup_list *l = arg;

    if (n < NCOLS)
        return DST_EDEP;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 32;
        l->r = dst_xrealloc(l->r, l->cap * sizeof(*l->r));
    }
    struct dst_rollup *r = &l->r[l->n++];
    memset(r, 0, sizeof(*r));
    dst_store_rollup_from_row(c, r);
    r->probe = dst_xstrdup(c[2].type == DST_SQL_TEXT ? c[2].s : "");
    return 0;
}

void dst_store_rollups_free(struct dst_rollup *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++)
        free(r[i].probe);
    free(r);
}

int dst_store_rollups(struct dst_store *s, int64_t step_ms, int64_t from_ms, int64_t to_ms,
                      const char *probe, struct dst_rollup **out, size_t *n)
{
    static const char *const sql[2] = {
        "SELECT " ROLLUP_COLS " FROM rollups WHERE step_ms = ? AND t_ms >= ? AND t_ms < ?"
        " ORDER BY t_ms, probe",
        "SELECT " ROLLUP_COLS " FROM rollups WHERE step_ms = ? AND t_ms >= ? AND t_ms < ?"
        " AND probe = ? ORDER BY t_ms, probe",
    };
    struct dst_store_sql_val args[4] = {ival(step_ms), ival(from_ms), ival(to_ms), tval(probe)};
    struct rollup_list l = {0};

    if (step_ms != DST_ROLLUP_HOUR_MS && step_ms != DST_ROLLUP_DAY_MS)
        return DST_EINVAL;
    int rc = s->ops->tx->read(s, sql[probe != NULL], args, probe ? 4 : 3, list_row, &l);
    if (rc) {
        dst_store_rollups_free(l.r, l.n);
        return rc;
    }
    *out = l.r;
    *n = l.n;
    return 0;
}

/* ---- rolling one (probe, day) ---- */

struct day {
    int64_t day;
    struct acc hour[24], all;
};

static int day_row(const struct dst_store_sql_val *c, int n, void *arg)
{
    struct day *d = arg;
    double v[DST_ROLLUP_NMEASURES];

    if (n < 8)
        return DST_EDEP;
    if (int_of(&c[7]) != 0) /* excluded */
        return 0;
    bool ok = c[1].type == DST_SQL_TEXT && strcmp(c[1].s, "ok") == 0;
    for (int i = 0; i < DST_ROLLUP_NMEASURES; i++)
        v[i] = dst_store_rollup_real(&c[2 + i]);
    int64_t h = (int64_t)((int_of(&c[0]) - d->day) / DST_ROLLUP_HOUR_MS);
    if (h < 0 || h > 23)
        return 0; /* not of this day: cannot happen with the range asked for */
    acc_row(&d->hour[h], ok, v);
    acc_row(&d->all, ok, v);
    return 0;
}

/* The kept rollups of the day, for a fold: hour[24] and all (count 0 where none). */
struct kept {
    int64_t day;
    struct dst_rollup hour[24], all;
};

static int kept_row(const struct dst_store_sql_val *c, int n, void *arg)
{
    struct kept *k = arg;
    struct dst_rollup r = {0};

    if (n < NCOLS)
        return DST_EDEP;
    dst_store_rollup_from_row(c, &r);
    int64_t h = (r.t_ms - k->day) / DST_ROLLUP_HOUR_MS;
    if (r.step_ms == DST_ROLLUP_DAY_MS)
        k->all = r;
    else if (h >= 0 && h < 24)
        k->hour[h] = r;
    return 0;
}

void dst_store_rollup_args(const struct dst_rollup *r, const char *probe,
                           struct dst_store_sql_val *a)
{
    a[0] = ival(r->step_ms);
    a[1] = ival(r->t_ms);
    a[2] = tval(probe);
    a[3] = ival(r->count);
    a[4] = ival(r->failed);
    for (int i = 0; i < DST_ROLLUP_NMEASURES; i++) {
        const struct dst_rollup_stat *m = &r->m[i];
        struct dst_store_sql_val *v = &a[5 + 6 * i];
        v[0] = ival(m->n);
        v[1] = rval(m->min);
        v[2] = rval(m->max);
        v[3] = rval(m->sum);
        v[4] = rval(m->p50);
        v[5] = rval(m->p90);
    }
}

static int rollup_put(const struct dst_store_tx_ops *t, struct dst_store_tx *tx, const char *probe,
                      const struct dst_rollup *r)
{
    struct dst_store_sql_val a[NCOLS];

    if (r->count == 0)
        return 0;
    dst_store_rollup_args(r, probe, a);
    return t->exec(tx, SQL_ROLLUP_INSERT, a, NCOLS, NULL, NULL, NULL);
}

/*
 * Recomputes (or, below the pruning mark, folds the late rows into) the day's rollups, inside
 * tx, after its marks were taken.
 */
static int day_write(const struct dst_store_tx_ops *t, struct dst_store_tx *tx, const char *probe,
                     int64_t day, bool late)
{
    struct dst_store_sql_val a[3] = {tval(probe), ival(day), ival(day + DST_ROLLUP_DAY_MS)};
    struct day *d = dst_xcalloc(1, sizeof(*d));
    struct kept *k = dst_xcalloc(1, sizeof(*k));
    int rc = 0;

    d->day = k->day = day;
    if (late) {
        int64_t taken = 0;
        rc = t->exec(tx, SQL_ROLLUP_OF_DAY, a, 3, kept_row, k, NULL);
        rc = rc ? rc : t->exec(tx, SQL_RAW_TAKE, a, 3, day_row, d, &taken);
        /* the delete marked its hours again: the rows are folded here */
        rc = rc ? rc : t->exec(tx, SQL_DIRTY_TAKE, a, 3, NULL, NULL, NULL);
        if (rc == 0 && taken > 0) /* rows left the lists: the version moves */
            rc = t->exec(tx, DST_STORE_SQL_COUNTED, NULL, 0, NULL, NULL, NULL);
    } else {
        rc = t->exec(tx, SQL_RAW_OF_DAY, a, 3, day_row, d, NULL);
    }
    rc = rc ? rc : t->exec(tx, SQL_ROLLUP_DELETE, a, 3, NULL, NULL, NULL);
    for (int h = 0; h <= 24 && rc == 0; h++) {
        struct dst_rollup r = {.step_ms = h < 24 ? DST_ROLLUP_HOUR_MS : DST_ROLLUP_DAY_MS,
                               .t_ms = day + (h < 24 ? h : 0) * DST_ROLLUP_HOUR_MS};
        acc_finish(h < 24 ? &d->hour[h] : &d->all, &r);
        if (late) {
            struct dst_rollup kr = h < 24 ? k->hour[h] : k->all;
            kr.step_ms = r.step_ms;
            kr.t_ms = r.t_ms;
            rollup_fold(&kr, &r);
            r = kr;
        }
        rc = rollup_put(t, tx, probe, &r);
    }
    for (int h = 0; h < 24; h++)
        acc_free(&d->hour[h]);
    acc_free(&d->all);
    free(d);
    free(k);
    return rc;
}

/* Rolls one (probe, day) in one transaction; *did: whether it still had marks to take. */
static int roll_day(struct dst_store *s, const char *probe, int64_t day, bool *did)
{
    const struct dst_store_tx_ops *t = s->ops->tx;
    struct dst_store_sql_val a[3] = {tval(probe), ival(day), ival(day + DST_ROLLUP_DAY_MS)};
    struct dst_store_tx *tx = NULL;
    int64_t wm = 0, taken = 0;
    int rc = t->begin(s, &tx);

    *did = false;
    if (rc)
        return rc;
    rc = wm_read(t, tx, &wm);
    bool late = day < wm;
    /* PostgreSQL: no insert marks a bucket while late rows are taken (they are deleted) */
    if (rc == 0 && late && t->dialect == DST_SQL_PG)
        rc = t->exec(tx, SQL_DIRTY_LOCK, NULL, 0, NULL, NULL, NULL);
    rc = rc ? rc : t->exec(tx, SQL_DIRTY_TAKE, a, 3, NULL, NULL, &taken);
    if (rc == 0 && taken > 0) {
        rc = day_write(t, tx, probe, day, late);
        *did = rc == 0;
    }
    int erc = t->end(tx, rc == 0 && taken > 0);
    return rc ? rc : erc;
}

struct dirty_list {
    char **probe;
    int64_t *day;
    int n, cap;
};

static int dirty_row(const struct dst_store_sql_val *c, int n, void *arg)
{
    struct dirty_list *l = arg;

    if (n < 2 || l->n >= l->cap)
        return 0;
    l->probe[l->n] = dst_xstrdup(c[0].type == DST_SQL_TEXT ? c[0].s : "");
    l->day[l->n++] = int_of(&c[1]);
    return 0;
}

int dst_store_roll(struct dst_store *s, int max_days, int64_t *rolled, bool *more)
{
    struct dirty_list l = {0};
    struct dst_store_sql_val lim = ival(max_days);
    int rc = 0;

    *rolled = 0;
    *more = false;
    if (max_days <= 0)
        return DST_EINVAL;
    l.cap = max_days;
    l.probe = dst_xcalloc((size_t)max_days, sizeof(*l.probe));
    l.day = dst_xcalloc((size_t)max_days, sizeof(*l.day));
    rc = s->ops->tx->read(s, SQL_DIRTY_DAYS, &lim, 1, dirty_row, &l);
    for (int i = 0; rc == 0 && i < l.n; i++) {
        bool did = false;
        rc = roll_day(s, l.probe[i], l.day[i], &did);
        *rolled += did;
    }
    *more = rc == 0 && l.n == max_days;
    for (int i = 0; i < l.n; i++)
        free(l.probe[i]);
    free(l.probe);
    free(l.day);
    return rc;
}

/* ---- retention ---- */

/* The day to prune under the lock: the oldest with raw rows at or after the mark. */
static int prune_day(const struct dst_store_tx_ops *t, struct dst_store_tx *tx, int64_t before_ms,
                     int64_t *day, bool *found)
{
    struct dst_store_sql_val v = {.type = DST_SQL_NULL}, cnt = {.type = DST_SQL_NULL}, a[2];
    int64_t wm = 0;
    int rc = wm_read(t, tx, &wm);

    *found = false;
    a[0] = ival(wm);
    rc = rc ? rc
            : t->exec(tx, "SELECT min(time_ms) FROM results WHERE time_ms >= ?", a, 1, one_int, &v,
                      NULL);
    if (rc || v.type == DST_SQL_NULL)
        return rc;
    *day = dst_store_rollup_floor(int_of(&v), DST_ROLLUP_DAY_MS);
    if (*day > before_ms - DST_ROLLUP_DAY_MS)
        return 0;
    a[0] = ival(*day);
    a[1] = ival(*day + DST_ROLLUP_DAY_MS);
    rc = t->exec(tx, "SELECT count(*) FROM rollup_dirty WHERE t_ms >= ? AND t_ms < ?", a, 2,
                 one_int, &cnt, NULL);
    *found = rc == 0 && int_of(&cnt) == 0; /* else: not rolled yet */
    return rc;
}

int dst_store_prune_raw(struct dst_store *s, int64_t before_ms, int64_t *pruned, bool *more)
{
    const struct dst_store_tx_ops *t = s->ops->tx;
    struct dst_store_tx *tx = NULL;
    int64_t day = 0, n = 0;
    bool found = false;
    int rc = t->begin(s, &tx);

    *pruned = 0;
    *more = false;
    if (rc)
        return rc;
    /* PostgreSQL: no insert marks a bucket of the day meanwhile (its row would go unrolled) */
    if (t->dialect == DST_SQL_PG)
        rc = t->exec(tx, SQL_DIRTY_LOCK, NULL, 0, NULL, NULL, NULL);
    rc = rc ? rc : prune_day(t, tx, before_ms, &day, &found);
    if (rc == 0 && found) {
        struct dst_store_sql_val a[2] = {ival(day), ival(day + DST_ROLLUP_DAY_MS)};
        rc = t->exec(tx, "DELETE FROM results WHERE time_ms >= ? AND time_ms < ?", a, 2, NULL, NULL,
                     &n);
        /* the delete marked the day's hours: they are rolled already */
        rc = rc ? rc
                : t->exec(tx, "DELETE FROM rollup_dirty WHERE t_ms >= ? AND t_ms < ?", a, 2, NULL,
                          NULL, NULL);
        rc = rc ? rc : t->exec(tx, SQL_WM_PUT, &a[1], 1, NULL, NULL, NULL);
        if (rc == 0 && n > 0)
            rc = t->exec(tx, DST_STORE_SQL_COUNTED, NULL, 0, NULL, NULL, NULL);
    }
    int erc = t->end(tx, rc == 0 && found);
    rc = rc ? rc : erc;
    if (rc == 0 && found) {
        *pruned = n;
        *more = true;
    }
    return rc;
}

int dst_store_prune_rollups(struct dst_store *s, int64_t before_ms, int64_t *pruned)
{
    const struct dst_store_tx_ops *t = s->ops->tx;
    struct dst_store_tx *tx = NULL;
    int64_t n = 0, m = 0;
    int rc = t->begin(s, &tx);

    *pruned = 0;
    if (rc)
        return rc;
    for (int i = 0; rc == 0 && i < 2; i++) {
        int64_t step = i ? DST_ROLLUP_DAY_MS : DST_ROLLUP_HOUR_MS;
        struct dst_store_sql_val a[2] = {ival(step), ival(before_ms - step)};
        rc = t->exec(tx, "DELETE FROM rollups WHERE step_ms = ? AND t_ms <= ?", a, 2, NULL, NULL,
                     &m);
        n += m;
    }
    int erc = t->end(tx, rc == 0);
    rc = rc ? rc : erc;
    if (rc == 0)
        *pruned = n;
    return rc;
}
