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

/* Tells one row of a range as its own change. */
static int tell_row(const struct dst_result *r, void *ud)
{
    struct dst_store_feed *f = ud;
    struct dst_store_change x = {.kind = DST_STORE_CH_RESULT, .seq = r->seq, .result = r};

    f->fn(&x, f->ud);
    return 0;
}

void dst_store_feed_emit(struct dst_store_feed *f, const struct dst_store_change *c)
{
    struct dst_store_query q;
    int64_t last = c->seq_last > c->seq ? c->seq_last : c->seq;

    if (c->kind != DST_STORE_CH_RESULT || c->result) {
        f->fn(c, f->ud);
        return;
    }
    /* rows of the range deleted meanwhile (or the store down): nothing to tell of them */
    for (int64_t from = c->seq; from <= last;) {
        int64_t to = from + 999 < last ? from + 999 : last; /* a page at a time */
        dst_store_query_init(&q);
        dst_store_query_add(&q, (struct dst_cond){DST_F_SEQ, DST_OP_GE, DST_V_INT, .i = from});
        dst_store_query_add(&q, (struct dst_cond){DST_F_SEQ, DST_OP_LE, DST_V_INT, .i = to});
        q.sort = DST_F_SEQ; /* in the order they were stored */
        q.desc = false;
        if (dst_store_query(f->s, &q, tell_row, f) < 0)
            return;
        from = to + 1;
    }
}
