/* store_feed.c - the store's change feed: one subscriber, fed by the backend's feed thread */
#include <stdlib.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/store_backend.h"

int dst_store_feed_start(struct dst_store *s, dst_store_change_fn fn, void *ud)
{
    if (!fn || s->feed)
        return DST_EINVAL;
    struct dst_store_feed *f = dst_xnew(struct dst_store_feed);
    f->s = s;
    f->fn = fn;
    f->ud = ud;
    s->feed = f;
    int rc = s->ops->feed_start(s, f);
    if (rc) {
        s->feed = NULL;
        free(f);
    }
    return rc;
}

void dst_store_feed_stop(struct dst_store *s)
{
    if (!s || !s->feed)
        return;
    s->ops->feed_stop(s);
    free(s->feed);
    s->feed = NULL;
}

/* Copies the row (the only one: seq is unique) and stops. */
static int keep_row(const struct dst_result *r, void *ud)
{
    dst_result_copy(ud, r);
    return 1;
}

void dst_store_feed_emit(struct dst_store_feed *f, const struct dst_store_change *c)
{
    struct dst_store_change x = *c;
    struct dst_store_query q;
    struct dst_result r;

    if (c->kind != DST_STORE_CH_RESULT || c->result) {
        f->fn(c, f->ud);
        return;
    }
    dst_result_init(&r);
    dst_store_query_init(&q);
    dst_store_query_add(&q, (struct dst_cond){DST_F_SEQ, DST_OP_EQ, DST_V_INT, .i = c->seq});
    q.limit = 1;
    /* not found: deleted meanwhile (or the store is down): nothing to tell */
    if (dst_store_query(f->s, &q, keep_row, &r) == 1) {
        x.result = &r;
        f->fn(&x, f->ud);
    }
    dst_result_release(&r);
}
