/* client_session.c - one client session of the toy store client: its requests and checks */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/datetime.h"
#include "core/http_client.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/sig.h"
#include "toystore/client_api.h"
#include "toystore/client_session.h"

/* Mismatches logged by all sessions together: the first TOYCLIENT_MAX_LISTED. */
static atomic_int logged;

/* splitmix64: small, fast, and the same stream for the same seed everywhere. */
static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double uniform(uint64_t *s)
{
    return (double)(next(s) >> 11) * 0x1.0p-53;
}

/* Uniform in [lo, hi] (the modulo bias is below 2^-40 for these ranges). */
static long long between(uint64_t *s, long long lo, long long hi)
{
    return lo + (long long)(next(s) % (uint64_t)(hi - lo + 1));
}

void toyclient_session_init(struct toyclient_session *s, const struct toyclient_run *run, int index)
{
    memset(s, 0, sizeof(*s));
    s->run = run;
    s->index = index;
    s->rng = run->seed + (uint64_t)index * 0xD1B54A32D192ED03ull;
    toyclient_tally_init(&s->query, "query");
    toyclient_tally_init(&s->buy, "buy");
    toyclient_tally_init(&s->check, "check");
}

void toyclient_session_release(struct toyclient_session *s)
{
    if (!s)
        return;
    toyclient_tally_release(&s->query);
    toyclient_tally_release(&s->buy);
    toyclient_tally_release(&s->check);
    free(s->orders);
    s->orders = NULL;
}

/* Queries toy; true with its stock in *stock when the answer was a product. */
static bool query(struct toyclient_session *s, struct dst_http_client *c, const char *toy,
                  long long *stock)
{
    struct toyclient_answer a;

    toyclient_query(c, s->run->base, toy, s->run->timeout_ms, &a);
    toyclient_tally_add(&s->query, a.outcome, a.ms, a.msg);
    *stock = a.quantity;
    return a.outcome == TOYCLIENT_OK;
}

/* Buys quantity of toy and records the order it made. */
static void buy(struct toyclient_session *s, struct dst_http_client *c, const char *toy)
{
    struct toyclient_answer a;
    long long quantity = between(&s->rng, s->run->qlo, s->run->qhi);

    toyclient_buy(c, s->run->base, toy, quantity, s->run->timeout_ms, &a);
    toyclient_tally_add(&s->buy, a.outcome, a.ms, a.msg);
    if (a.outcome != TOYCLIENT_OK)
        return;
    if (s->norders == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->orders = dst_xrealloc(s->orders, s->cap * sizeof(*s->orders));
    }
    s->orders[s->norders++] = (struct toyclient_order){a.number, quantity, toy};
}

static void iteration(struct toyclient_session *s, struct dst_http_client *c)
{
    const struct toyclient_run *r = s->run;
    long long stock = 0;

    switch (r->mode) {
    case TOYCLIENT_QUERY:
        query(s, c, r->toy, &stock);
        break;
    case TOYCLIENT_BUY:
        buy(s, c, r->toy);
        break;
    case TOYCLIENT_SESSION: {
        const char *toy = r->toys[between(&s->rng, 0, r->ntoys - 1)];
        /* the coin is drawn only for a toy in stock: the original's order of events */
        if (query(s, c, toy, &stock) && stock > 0 && uniform(&s->rng) < r->p)
            buy(s, c, toy);
        break;
    }
    }
}

/* Looks order o up and compares it with the record; a mismatch is logged and listed. */
static void check(struct toyclient_session *s, struct dst_http_client *c,
                  const struct toyclient_order *o)
{
    struct toyclient_answer a;

    toyclient_order(c, s->run->base, o->number, s->run->timeout_ms, &a);
    if (a.outcome == TOYCLIENT_OK &&
        (a.number != o->number || a.quantity != o->quantity || strcmp(a.name, o->name) != 0)) {
        a.outcome = TOYCLIENT_MISMATCH;
        snprintf(a.msg, sizeof(a.msg), "GET /orders/%lld: order %lld %s x%lld, made as %s x%lld",
                 o->number, a.number, a.name, a.quantity, o->name, o->quantity);
    } else if (a.outcome == TOYCLIENT_NOT_FOUND) {
        a.outcome = TOYCLIENT_MISMATCH; /* an acknowledged order the store does not know */
    }
    if (a.outcome == TOYCLIENT_MISMATCH) {
        if (s->nbad < TOYCLIENT_MAX_LISTED)
            s->bad[s->nbad++] = o->number;
        if (atomic_fetch_add(&logged, 1) < TOYCLIENT_MAX_LISTED)
            dst_error("order %lld does not match: %s", o->number, a.msg);
    }
    toyclient_tally_add(&s->check, a.outcome, a.ms, a.msg);
}

void *toyclient_session_run(void *arg)
{
    struct toyclient_session *s = arg;
    struct dst_http_client *c = NULL;
    size_t i = 0;

    if (dst_http_client_new(&c) != 0) {
        dst_error("session %d: cannot create an HTTP client", s->index);
        s->failed = true;
        return NULL;
    }
    for (long n = 0; n < s->run->iterations && !dst_sig_stopping(); n++)
        iteration(s, c);
    s->load_end_us = dst_monotonic_us();
    for (; s->run->check && i < s->norders && !dst_sig_stopping(); i++)
        check(s, c, &s->orders[i]);
    if (s->run->check)
        s->unchecked = s->norders - i;
    dst_http_client_free(c);
    return NULL;
}
