/* store_copy.c - a whole store copied into another, kind by kind, resumable and idempotent */
#include "core/store_copy.h"

#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store_copy_priv.h"

#define OWN_PREFIX "dstmc.copy."
#define SELF_KEY   OWN_PREFIX "self"
#define MARK_KEY   OWN_PREFIX "from." /* + 16 hex digits of the source name's SHA-256 */

bool dst_store_copy_own_key(const char *key)
{
    return strncmp(key, OWN_PREFIX, strlen(OWN_PREFIX)) == 0;
}

struct dst_store_tally *store_copy_tally(struct dst_store_report *rep, const char *kind)
{
    for (int i = 0; i < rep->nkinds; i++)
        if (strcmp(rep->kinds[i].kind, kind) == 0)
            return &rep->kinds[i];
    struct dst_store_tally *t = &rep->kinds[rep->nkinds++];
    *t = (struct dst_store_tally){.kind = kind};
    return t;
}

int store_copy_progress(const struct dst_store_copy_opts *o, const struct dst_store_tally *t)
{
    return o->progress ? o->progress(t, o->ud) : 0;
}

/* ---- batches of results ---- */

void store_batch_release(struct store_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        dst_result_release(&b->rs[i]);
    b->n = 0;
}

void store_batch_free(struct store_batch *b)
{
    store_batch_release(b);
    free(b->rs);
    free(b->created);
    memset(b, 0, sizeof(*b));
}

void store_batch_add(struct store_batch *b, const struct dst_result *r)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->rs = dst_xrealloc(b->rs, b->cap * sizeof(*b->rs));
        b->created = dst_xrealloc(b->created, b->cap * sizeof(*b->created));
    }
    dst_result_copy(&b->rs[b->n++], r);
}

int store_batch_insert(struct dst_store *to, struct store_batch *b, struct dst_store_tally *t,
                       const struct dst_store_copy_opts *o)
{
    int64_t made = 0;
    int rc = 0;

    if (o->no_bulk) {
        rc = dst_store_insert(to, b->rs, b->n, b->created);
        for (size_t i = 0; rc == 0 && i < b->n; i++)
            made += b->created[i];
    } else {
        rc = dst_store_insert_bulk(to, b->rs, b->n, &made);
    }
    if (rc == 0) {
        t->copied += made;
        t->existing += (int64_t)b->n - made;
        t->done += (int64_t)b->n;
    }
    store_batch_release(b);
    return rc;
}

static int batch_row(const struct dst_result *r, void *ud)
{
    store_batch_add(ud, r);
    return 0;
}

int store_batch_read(struct dst_store *from, int64_t after_seq, size_t max, struct store_batch *b)
{
    struct dst_store_query q;

    dst_store_query_init(&q);
    dst_store_query_add(&q, (struct dst_cond){DST_F_SEQ, DST_OP_GT, DST_V_INT, .i = after_seq});
    q.sort = DST_F_SEQ;
    q.desc = false;
    q.limit = (int64_t)max;
    return dst_store_query(from, &q, batch_row, b);
}

int store_count_after(struct dst_store *s, int64_t after_seq, int64_t *n)
{
    struct dst_store_query q;

    dst_store_query_init(&q);
    dst_store_query_add(&q, (struct dst_cond){DST_F_SEQ, DST_OP_GT, DST_V_INT, .i = after_seq});
    return dst_store_count(s, &q, n);
}

/* ---- the copy: one function per kind ---- */

struct copy_run {
    struct dst_store *from, *to;
    const struct dst_store_copy_opts *o;
    struct dst_store_tally *t;
    int rc; /* settings: the first write's error */
};

static int setting_copy_one(const char *key, const char *json, int64_t updated_ms, void *ud)
{
    struct copy_run *x = ud;
    char *have = NULL;

    if (dst_store_copy_own_key(key))
        return 0;
    x->t->total++;
    x->t->done++;
    int rc = x->to->ops->setting_get(x->to, key, &have, &(int64_t){0});
    if (rc == 0 && strcmp(have, json) == 0) {
        x->t->existing++;
    } else if (rc == 0 || rc == DST_ENOTFOUND) {
        rc = dst_store_setting_put_text(x->to, key, json, updated_ms);
        x->t->copied += rc == 0;
    }
    free(have);
    x->rc = rc;
    return rc;
}

static int copy_settings(struct copy_run *x)
{
    int rc = dst_store_setting_each(x->from, setting_copy_one, x);
    return x->rc ? x->rc : rc;
}

/* Credentials are few: listed whole, each added unless its id is there (hash and all kept). */
static int copy_credentials(struct copy_run *x)
{
    struct dst_store_cred *all = NULL;
    size_t n = 0;
    int rc = dst_store_cred_list(x->from, NULL, &all, &n);

    x->t->total = (int64_t)n;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = dst_store_cred_add(x->to, &all[i]);
        if (rc == DST_ECONFLICT)
            x->t->existing++;
        else if (rc == 0)
            x->t->copied++;
        rc = rc == DST_ECONFLICT ? 0 : rc;
        x->t->done += rc == 0;
    }
    dst_store_creds_free(all, n);
    return rc;
}

/* The resume point's setting key on the target, named after the source. */
static void mark_key(const char *from_name, char key[64])
{
    char h[DST_SHA256_HEX];

    dst_sha256_hex(from_name, strlen(from_name), h);
    snprintf(key, 64, MARK_KEY "%.16s", h);
}

/* The seq to go on after: the mark's, if the source still has the mark's id at that seq. */
static int mark_read(struct copy_run *x, int64_t *after)
{
    char key[64];
    json_t *m = NULL;
    struct dst_result r;
    int64_t seq = 0;
    const char *id = NULL;

    *after = 0;
    if (!x->o->from_name)
        return 0;
    mark_key(x->o->from_name, key);
    int rc = dst_store_setting_get(x->to, key, &m, NULL);
    if (rc)
        return rc == DST_ENOTFOUND ? 0 : rc;
    if (json_unpack(m, "{s:I, s:s}", "seq", &seq, "id", &id) == 0) {
        dst_result_init(&r);
        rc = dst_store_get(x->from, id, &r);
        if (rc == 0 && r.seq == seq)
            *after = seq;
        else if (rc == 0 || rc == DST_ENOTFOUND)
            dst_info("store copy: the source changed under the last copy's mark (seq %lld): "
                     "looking at every result again",
                     (long long)seq);
        rc = rc == DST_ENOTFOUND ? 0 : rc;
        dst_result_release(&r);
    }
    json_decref(m);
    return rc;
}

static int mark_write(struct copy_run *x, int64_t seq, const char *id)
{
    char key[64];

    if (!x->o->from_name)
        return 0;
    mark_key(x->o->from_name, key);
    json_t *m = json_pack("{s:I, s:s}", "seq", (json_int_t)seq, "id", id);
    int rc = dst_store_setting_put(x->to, key, m, DST_STORE_ANY_VERSION, NULL);
    json_decref(m);
    return rc;
}

/*
 * Pages of o->batch by seq from after the mark; each page inserted, then the mark moved to its
 * last row (a kill between the two makes the next copy read that page again, all skipped).
 */
static int copy_results(struct copy_run *x)
{
    struct store_batch b = {0};
    size_t max = x->o->batch ? x->o->batch : 5000;
    char last_id[DST_UUID_LEN + 1];
    int64_t after = 0;
    int rc = mark_read(x, &after);

    rc = rc ? rc : store_count_after(x->from, after, &x->t->total);
    while (rc == 0) {
        rc = store_batch_read(x->from, after, max, &b);
        if (rc || b.n == 0)
            break;
        after = b.rs[b.n - 1].seq; /* before the insert sets the target's seqs */
        memcpy(last_id, b.rs[b.n - 1].id, sizeof(last_id));
        rc = store_batch_insert(x->to, &b, x->t, x->o);
        rc = rc ? rc : mark_write(x, after, last_id);
        rc = rc ? rc : store_copy_progress(x->o, x->t);
    }
    store_batch_free(&b);
    return rc;
}

/* Keeps r's key (step, t, probe) in k, the page's last, to read on after it. */
static void rollup_key(struct dst_rollup *k, const struct dst_rollup *r)
{
    free(k->probe);
    *k =
        (struct dst_rollup){.step_ms = r->step_ms, .t_ms = r->t_ms, .probe = dst_xstrdup(r->probe)};
}

/*
 * The source's raw retention mark first (the larger of the two stays: a late row on the target
 * for a day pruned on the source then folds into the copied rollup), then pages of rollups in
 * key order, each put as it is in one transaction, those there already skipped. No resume
 * point: rollups are few (25 per probe and day) and rolled again in place, so a later copy
 * reads them all and puts what is missing.
 */
static int copy_rollups(struct copy_run *x)
{
    size_t max = x->o->batch ? x->o->batch : 5000, n = 0;
    struct dst_rollup *page = NULL, last = {0};
    int64_t wm = 0, made = 0;
    int rc = dst_store_raw_pruned(x->from, &wm);

    rc = rc ? rc : dst_store_rollups_count(x->from, &x->t->total);
    rc = rc ? rc : dst_store_rollups_put(x->to, NULL, 0, wm, NULL);
    while (rc == 0) {
        rc = dst_store_rollups_page(x->from, last.probe ? &last : NULL, max, &page, &n);
        if (rc || n == 0)
            break;
        rc = dst_store_rollups_put(x->to, page, n, wm, &made);
        if (rc == 0) {
            x->t->done += (int64_t)n;
            x->t->copied += made;
            x->t->existing += (int64_t)n - made;
            x->t->total = x->t->done > x->t->total ? x->t->done : x->t->total;
            rollup_key(&last, &page[n - 1]);
        }
        dst_store_rollups_free(page, n);
        rc = rc ? rc : store_copy_progress(x->o, x->t);
    }
    free(last.probe);
    return rc;
}

/* The kinds, in copy order. */
static const struct copy_kind {
    const char *name;
    int (*copy)(struct copy_run *x);
} kinds[] = {
    {"setting", copy_settings},
    {"credential", copy_credentials},
    {"result", copy_results},
    {"rollup", copy_rollups},
};

int dst_store_copy(struct dst_store *from, struct dst_store *to,
                   const struct dst_store_copy_opts *o, struct dst_store_report *rep)
{
    int rc = 0;

    memset(rep, 0, sizeof(*rep));
    for (size_t i = 0; rc == 0 && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        struct copy_run x = {from, to, o, store_copy_tally(rep, kinds[i].name), 0};
        rc = kinds[i].copy(&x);
        rc = rc ? rc : store_copy_progress(o, x.t);
    }
    return rc ? rc : dst_store_analyze(to); /* the planner learns what came in */
}

int dst_store_same(struct dst_store *a, struct dst_store *b, bool *same)
{
    char nonce[40], json[48], *seen = NULL;
    int rc = dst_random_hex(16, nonce);

    if (rc)
        return rc;
    snprintf(json, sizeof(json), "\"%s\"", nonce);
    rc = dst_store_setting_put_text(b, SELF_KEY, json, dst_datetime_now_ms());
    rc = rc ? rc : a->ops->setting_get(a, SELF_KEY, &seen, &(int64_t){0});
    if (rc == 0 || rc == DST_ENOTFOUND) {
        *same = rc == 0 && strcmp(seen, json) == 0;
        rc = 0;
    }
    free(seen);
    return rc;
}
