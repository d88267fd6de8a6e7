/* store_pg_group.c - PostgreSQL store: concurrent single-result inserts group-committed */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdlib.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/store_pg_priv.h"

/*
 * A probe posts one result per request, so ingest is many single inserts at once, each a
 * statement and a commit (with the server's defaults, a WAL flush) of its own. Here each caller
 * queues its result; whoever finds no insert going on becomes the writer: it takes every result
 * queued (up to GROUP_MAX), inserts them in one statement (one commit: unnest, as a batch),
 * tells each caller its outcome, and hands over to the next waiting caller. A caller returns
 * only once its result's statement has committed: durability is that of a single insert.
 * If a group fails on a live connection (a statement error, not an outage) its results are
 * tried one by one, so that one result's error is not every caller's.
 */

#define GROUP_MAX 1000 /* results in one statement */

struct pg_group_item {
    const struct dst_result *r;
    int64_t seq; /* the new row's, 0 if its id was stored already */
    int rc;
    bool done;
    struct pg_group_item *next;
};

void pg_group_init(struct pg_group *g)
{
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->head = NULL;
    g->tail = &g->head;
    g->writing = false;
}

void pg_group_release(struct pg_group *g)
{
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
}

/* Takes up to GROUP_MAX queued items (lock held); *n: how many. */
static struct pg_group_item *take(struct pg_group *g, size_t *n)
{
    struct pg_group_item *first = g->head, *last = NULL, *it = first;

    *n = 0;
    while (it && *n < GROUP_MAX) {
        last = it;
        it = it->next;
        ++*n;
    }
    g->head = it;
    if (!it)
        g->tail = &g->head;
    if (last)
        last->next = NULL;
    return first;
}

/* Inserts the items' results in one statement (one by one after a statement error). */
static void write_group(struct pg_store *s, struct pg_group_item *items, size_t n)
{
    struct dst_result *rs = dst_xcalloc(n, sizeof(*rs));
    int64_t *seqs = dst_xcalloc(n, sizeof(*seqs));
    int64_t now = dst_datetime_now_ms();
    struct pg_store_conn *c = NULL;
    struct pg_group_item *it = items;

    for (size_t i = 0; i < n; i++, it = it->next)
        rs[i] = *it->r; /* a shallow copy: only read */
    int rc = pg_store_conn_get(s, &c);
    rc = rc ? rc : pg_store_insert_rows(c, rs, n, now, seqs);
    bool alone = rc && n > 1 && c && PQstatus(c->pg) == CONNECTION_OK;
    it = items;
    for (size_t i = 0; i < n; i++, it = it->next) {
        it->rc = alone ? pg_store_insert_rows(c, &rs[i], 1, now, &seqs[i]) : rc;
        it->seq = it->rc ? 0 : seqs[i];
    }
    pg_store_conn_put(s, c);
    free(seqs);
    free(rs);
}

int pg_group_insert(struct pg_store *s, const struct dst_result *r, int64_t *seq)
{
    struct pg_group *g = &s->group;
    struct pg_group_item me = {.r = r};

    pthread_mutex_lock(&g->lock);
    *g->tail = &me;
    g->tail = &me.next;
    while (!me.done) {
        if (g->writing) {
            pthread_cond_wait(&g->cond, &g->lock);
            continue;
        }
        size_t n = 0;
        struct pg_group_item *items = take(g, &n);
        g->writing = true;
        pthread_mutex_unlock(&g->lock);
        write_group(s, items, n);
        pthread_mutex_lock(&g->lock);
        for (struct pg_group_item *it = items, *next; it; it = next) {
            next = it->next; /* an item's owner may return once done is set */
            it->done = true;
        }
        g->writing = false;
        pthread_cond_broadcast(&g->cond);
    }
    pthread_mutex_unlock(&g->lock);
    *seq = me.seq;
    return me.rc;
}
