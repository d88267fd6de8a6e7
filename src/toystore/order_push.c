/* order_push.c - the leader's pushers: a thread per follower, so a batch reaches all at once */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/mem.h"
#include "toystore/order.h"

/*
 * Each follower (its slot in o->peers) gets a thread of its own, made the first time a batch
 * goes to it and kept until the service stops, so its kept-alive connection (ts_client, one
 * per thread) is reused batch after batch. order_push_run hands each job to its slot's thread,
 * runs the last one itself (one wakeup fewer), and returns once every job is done: the batch
 * then costs the slowest follower's round trip, not the sum of them.
 */
struct worker {
    struct order_push *p;
    pthread_t t;
    pthread_cond_t cv;
    bool started;
    struct order_push_job *job; /* handed over, not yet done: NULL none */
};

struct order_push {
    pthread_mutex_t mu; /* everything below */
    pthread_cond_t done_cv;
    int pending; /* jobs handed over and not yet done */
    bool stop;
    struct worker w[ORDER_PEERS_MAX];
};

static void *work(void *arg)
{
    struct worker *w = arg;
    struct order_push *p = w->p;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!w->job && !p->stop)
            pthread_cond_wait(&w->cv, &p->mu);
        if (!w->job)
            break;
        struct order_push_job *j = w->job;
        pthread_mutex_unlock(&p->mu);
        j->rc = j->fn(j->arg);
        pthread_mutex_lock(&p->mu);
        w->job = NULL;
        if (--p->pending == 0)
            pthread_cond_broadcast(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct order_push *order_push_new(void)
{
    struct order_push *p = dst_xnew(struct order_push);

    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    return p;
}

void order_push_free(struct order_push *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    for (int i = 0; i < ORDER_PEERS_MAX; i++)
        if (p->w[i].started)
            pthread_cond_signal(&p->w[i].cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < ORDER_PEERS_MAX; i++) {
        if (!p->w[i].started)
            continue;
        pthread_join(p->w[i].t, NULL);
        pthread_cond_destroy(&p->w[i].cv);
    }
    pthread_cond_destroy(&p->done_cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Under p->mu: slot's thread, started when it is not yet; false when none can be made. */
static bool worker_ready(struct order_push *p, int slot)
{
    struct worker *w = &p->w[slot];

    if (w->started)
        return true;
    w->p = p;
    pthread_cond_init(&w->cv, NULL);
    w->started = pthread_create(&w->t, NULL, work, w) == 0;
    if (!w->started) {
        pthread_cond_destroy(&w->cv);
        dst_warn("no thread for follower slot %d: its pushes run one after the other", slot);
    }
    return w->started;
}

void order_push_run(struct order_push *p, struct order_push_job *jobs, int n)
{
    bool *inline_job = dst_xcalloc((size_t)(n > 0 ? n : 1), sizeof(*inline_job));

    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < n; i++) {
        int slot = jobs[i].slot;
        inline_job[i] = i == n - 1 || p->stop || slot < 0 || slot >= ORDER_PEERS_MAX ||
                        p->w[slot].job || !worker_ready(p, slot);
        if (inline_job[i])
            continue;
        p->w[slot].job = &jobs[i];
        p->pending++;
        pthread_cond_signal(&p->w[slot].cv);
    }
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < n; i++)
        if (inline_job[i])
            jobs[i].rc = jobs[i].fn(jobs[i].arg);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0)
        pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    free(inline_job);
}
