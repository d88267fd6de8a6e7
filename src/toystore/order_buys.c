/* order_buys.c - the order service's calls to the catalog, batched: one POST /buys per group */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/http_client.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "toystore/order.h"

#define BATCH_MAX 256 /* buys in one call (the catalog takes up to TS_BATCH_MAX) */

/*
 * As the log's group commit: a buyer queues its buy; one that finds no call under way becomes
 * the caller, takes every buy queued so far (up to BATCH_MAX), sends them as one POST /buys
 * (the catalog applies them in order and makes them durable with one journal sync), and queues
 * the order lines of those the catalog took in the log, all for one batch. It waits for that
 * batch to be on disk and at the followers (order_log_wait: one fdatasync, one push), then
 * hands the next call over (the first buyer queued meanwhile is woken to make it) and wakes
 * each of its buyers with its outcome. Buys that arrive during a call and its log batch go
 * together in the next one. A group of N buys thus costs one HTTP hop to the catalog and one
 * log batch, not N; and each buyer sleeps once and is woken once, by its caller (a condition
 * variable each, no broadcast).
 *
 * The next call waits for the log batch, rather than overlapping it: on a box short of CPU
 * the groups are then bigger (one group per catalog journal sync plus log sync, rather than
 * one per the slower of the two) and each buy costs less CPU in every tier (the commit that
 * made it so has the figures).
 */
struct waiter {
    const struct ts_buy *b;
    pthread_cond_t cv; /* signalled when done, or when it is at the head and may call */
    int status;        /* 200 (number, log_rc), 404, 409, 503 */
    int64_t number;
    uint64_t batch;
    int log_rc; /* order_log_wait's outcome for its batch */
    bool taken; /* by a caller: out of the queue */
    bool done;
    struct waiter *next;
};

struct order_buys {
    pthread_mutex_t mu; /* everything below */
    struct waiter *head, *tail;
    bool calling;
};

struct order_buys *order_buys_new(void)
{
    struct order_buys *q = dst_xnew(struct order_buys);

    pthread_mutex_init(&q->mu, NULL);
    return q;
}

void order_buys_free(struct order_buys *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->mu);
    free(q);
}

/* One result of the catalog's answer: 200, 404, 409, or 503 when it is not one of those. */
static int result_status(const json_t *r)
{
    if (json_is_object(json_object_get(r, "data")))
        return 200;
    json_int_t code = json_integer_value(json_object_get(json_object_get(r, "error"), "code"));
    return code == 404 || code == 409 ? (int)code : 503;
}

/* POST /buys for w[0..n): each one's status (503 for all when the call fails). */
static void call_catalog(struct order *o, struct waiter **w, int n)
{
    struct dst_http_client *c = ts_client();
    struct dst_http_resp resp;
    char url[300];
    json_t *list = json_array();

    for (int i = 0; i < n; i++) {
        w[i]->status = 503;
        json_t *b = json_pack("{s:s,s:I}", "name", w[i]->b->name, "quantity",
                              (json_int_t)w[i]->b->quantity);
        if (w[i]->b->request_id[0])
            json_object_set_new(b, "request_id", json_string(w[i]->b->request_id));
        json_array_append_new(list, b);
    }
    json_t *j = json_pack("{s:o}", "buys", list);
    char *body = dst_json_dumps(j, NULL);
    json_decref(j);
    snprintf(url, sizeof(url), "%s/buys", o->catalog);
    struct dst_http_call call = {.method = "POST",
                                 .url = url,
                                 .body = body,
                                 .content_type = "application/json",
                                 .timeout_ms = o->timeout_ms,
                                 .max_body = 1 << 20};
    int rc = c ? dst_http_client_do(c, &call, &resp) : DST_EDEP;
    free(body);
    if (!c) {
        dst_warn("catalog %s: no HTTP client", url);
        return;
    }
    json_t *ans =
        rc == 0 && resp.status == 200 ? dst_json_parse(resp.body, resp.len, NULL, 0) : NULL;
    const json_t *results = json_object_get(json_object_get(ans, "data"), "results");
    if (json_is_array(results) && json_array_size(results) == (size_t)n)
        for (int i = 0; i < n; i++)
            w[i]->status = result_status(json_array_get(results, i));
    else if (rc)
        dst_warn("catalog %s: %s", url, resp.err);
    else
        dst_warn("catalog %s: unexpected answer (status %ld)", url, resp.status);
    json_decref(ans);
    dst_http_resp_release(&resp);
}

/* The caller's part: the call for taken[0..n), the log batch, each buyer woken with its outcome. */
static void serve(struct order *o, struct waiter **taken, int n)
{
    struct order_buys *q = o->buys;

    call_catalog(o, taken, n);
    for (int i = 0; i < n; i++) { /* in the catalog's order */
        struct waiter *w = taken[i];
        if (w->status == 200 && order_log_queue(o->log, w->b->name, w->b->quantity,
                                                w->b->request_id, &w->number, &w->batch) != 0)
            w->status = 503; /* the log cannot be written: not acknowledged */
    }
    /* the lines went in one batch, or a few when a write began between them: each its own */
    for (int i = 0; i < n; i++)
        if (taken[i]->status == 200)
            taken[i]->log_rc = order_log_wait(o->log, taken[i]->batch);
    pthread_mutex_lock(&q->mu); /* only now may the next call start: it takes all that came */
    q->calling = false;
    if (q->head)
        pthread_cond_signal(&q->head->cv);
    for (int i = 0; i < n; i++) {
        taken[i]->done = true;
        pthread_cond_signal(&taken[i]->cv);
    }
    pthread_mutex_unlock(&q->mu);
}

int order_buys_take(struct order *o, const struct ts_buy *b, int64_t *number, int *log_rc)
{
    struct order_buys *q = o->buys;
    struct waiter me = {.b = b}, *taken[BATCH_MAX];

    pthread_cond_init(&me.cv, NULL);
    pthread_mutex_lock(&q->mu);
    if (q->tail)
        q->tail->next = &me;
    else
        q->head = &me;
    q->tail = &me;
    while (!me.done) {
        if (q->calling || me.taken) { /* a call under way, or mine: wait */
            pthread_cond_wait(&me.cv, &q->mu);
            continue;
        }
        int n = 0;
        while (q->head && n < BATCH_MAX) {
            q->head->taken = true;
            taken[n++] = q->head;
            q->head = q->head->next;
        }
        if (!q->head)
            q->tail = NULL;
        q->calling = true;
        pthread_mutex_unlock(&q->mu);
        serve(o, taken, n);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    pthread_cond_destroy(&me.cv);
    *number = me.number;
    *log_rc = me.log_rc;
    return me.status;
}
