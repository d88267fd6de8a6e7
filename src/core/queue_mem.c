/* queue_mem.c - the in-process queue backend: Redis Streams consumer groups, in memory */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/queue_backend.h"

/* A topic keeps its last LOG_MAX messages; older ones survive only while pending somewhere. */
#define LOG_MAX 10000

struct mem_msg {
    char id[DST_QUEUE_ID_LEN];
    json_t *body; /* one reference held by the log */
};

struct mem_consumer {
    char *name;
    int64_t seen_ms; /* monotonic time of its last consume */
    int waiting;     /* consume calls of it blocked right now */
    struct mem_consumer *next;
};

/* A message delivered in a group and not yet acked. */
struct mem_pending {
    char id[DST_QUEUE_ID_LEN];
    json_t *body; /* one more reference, so trimming the log cannot lose it */
    struct mem_consumer *owner;
    int64_t delivered_ms; /* monotonic */
    int deliveries;
    bool resume; /* its owner restarted and has not had it back yet */
    struct mem_pending *next;
};

struct mem_group {
    char *name;
    uint64_t next_seq;                          /* the next message of the log to hand out */
    struct mem_pending *pending, *pending_tail; /* in order of first delivery */
    struct mem_consumer *consumers;
    struct mem_group *next;
};

/* The log is a ring of at most LOG_MAX messages; seq numbers count every message ever. */
struct mem_topic {
    char *name;
    struct mem_msg *ring;
    size_t cap, len, start;
    uint64_t first_seq; /* seq of ring[start] */
    int64_t last_ms;    /* of the last id: ids are "<ms>-<n>", strictly increasing */
    uint64_t last_n;
    struct mem_group *groups;
    struct mem_topic *next;
};

struct mem_queue {
    struct dst_queue base;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* broadcast on publish; CLOCK_MONOTONIC */
    struct mem_topic *topics;
};

static int mem_check(const char *url, char *err, size_t errlen)
{
    if (strcmp(url, "mem:") == 0)
        return 0;
    snprintf(err, errlen, "'%s': the in-process queue is just mem:", url);
    return DST_EINVAL;
}

static int mem_open(const char *url, struct dst_queue **out)
{
    pthread_condattr_t attr;
    struct mem_queue *m = dst_xnew(struct mem_queue);

    (void)url;
    m->base.ops = &dst_queue_mem_ops;
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &attr);
    pthread_condattr_destroy(&attr);
    *out = &m->base;
    return 0;
}

static void group_free(struct mem_group *g)
{
    while (g->pending) {
        struct mem_pending *p = g->pending;
        g->pending = p->next;
        json_decref(p->body);
        free(p);
    }
    while (g->consumers) {
        struct mem_consumer *c = g->consumers;
        g->consumers = c->next;
        free(c->name);
        free(c);
    }
    free(g->name);
    free(g);
}

static void topic_free(struct mem_topic *t)
{
    for (size_t i = 0; i < t->len; i++)
        json_decref(t->ring[(t->start + i) % t->cap].body);
    while (t->groups) {
        struct mem_group *g = t->groups;
        t->groups = g->next;
        group_free(g);
    }
    free(t->ring);
    free(t->name);
    free(t);
}

static void mem_close(struct dst_queue *q)
{
    struct mem_queue *m = (struct mem_queue *)q;

    while (m->topics) {
        struct mem_topic *t = m->topics;
        m->topics = t->next;
        topic_free(t);
    }
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static struct mem_topic *topic_find(struct mem_queue *m, const char *name)
{
    for (struct mem_topic *t = m->topics; t; t = t->next) {
        if (strcmp(t->name, name) == 0)
            return t;
    }
    return NULL;
}

static struct mem_topic *topic_get(struct mem_queue *m, const char *name)
{
    struct mem_topic *t = topic_find(m, name);

    if (!t) {
        t = dst_xnew(struct mem_topic);
        t->name = dst_xstrdup(name);
        t->last_ms = -1;
        t->next = m->topics;
        m->topics = t;
    }
    return t;
}

static struct mem_group *group_find(struct mem_topic *t, const char *name)
{
    for (struct mem_group *g = t->groups; g; g = g->next) {
        if (strcmp(g->name, name) == 0)
            return g;
    }
    return NULL;
}

/* A new group starts after the current end of the log, as Redis's "$". */
static struct mem_group *group_get(struct mem_topic *t, const char *name)
{
    struct mem_group *g = group_find(t, name);

    if (!g) {
        g = dst_xnew(struct mem_group);
        g->name = dst_xstrdup(name);
        g->next_seq = t->first_seq + t->len;
        g->next = t->groups;
        t->groups = g;
    }
    return g;
}

static struct mem_consumer *consumer_get(struct mem_group *g, const char *name)
{
    struct mem_consumer *c;

    for (c = g->consumers; c; c = c->next) {
        if (strcmp(c->name, name) == 0)
            return c;
    }
    c = dst_xnew(struct mem_consumer);
    c->name = dst_xstrdup(name);
    c->next = g->consumers;
    g->consumers = c;
    return c;
}

/* Appends a message to the ring, growing it up to LOG_MAX, then dropping the oldest. */
static void log_push(struct mem_topic *t, json_t *body_take, char id[DST_QUEUE_ID_LEN])
{
    int64_t ms = dst_datetime_now_ms();

    if (ms <= t->last_ms) {
        ms = t->last_ms;
        t->last_n++;
    } else {
        t->last_ms = ms;
        t->last_n = 0;
    }
    if (t->len == t->cap && t->cap < LOG_MAX) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct mem_msg *ring = dst_xcalloc(cap < LOG_MAX ? cap : LOG_MAX, sizeof(*ring));
        for (size_t i = 0; i < t->len; i++)
            ring[i] = t->ring[(t->start + i) % t->cap];
        free(t->ring);
        t->ring = ring;
        t->cap = cap < LOG_MAX ? cap : LOG_MAX;
        t->start = 0;
    } else if (t->len == t->cap) {
        json_decref(t->ring[t->start].body);
        t->start = (t->start + 1) % t->cap;
        t->first_seq++;
        t->len--;
    }
    struct mem_msg *msg = &t->ring[(t->start + t->len) % t->cap];
    snprintf(msg->id, sizeof(msg->id), "%" PRId64 "-%" PRIu64, ms, t->last_n);
    msg->body = body_take;
    t->len++;
    memcpy(id, msg->id, DST_QUEUE_ID_LEN);
}

static int mem_publish(struct dst_queue *q, const char *topic, const json_t *body,
                       char id_out[DST_QUEUE_ID_LEN])
{
    struct mem_queue *m = (struct mem_queue *)q;
    char id[DST_QUEUE_ID_LEN];
    json_t *copy = json_deep_copy(body);

    if (!copy)
        return DST_ENOMEM;
    pthread_mutex_lock(&m->lock);
    log_push(topic_get(m, topic), copy, id);
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    if (id_out)
        memcpy(id_out, id, DST_QUEUE_ID_LEN);
    return 0;
}

/* Gives out a copy of body (the consumer owns it). */
static int fill(struct dst_queue_msg *out, const char *id, const json_t *body, int deliveries)
{
    json_t *copy = json_deep_copy(body);

    if (!copy)
        return DST_ENOMEM;
    memcpy(out->id, id, DST_QUEUE_ID_LEN);
    out->body = copy;
    out->deliveries = deliveries;
    return 0;
}

/*
 * Hands c the first pending message of g idle longer than claim_ms. DST_ETIMEDOUT if none;
 * *wake then moves to the earliest time one will be.
 */
static int claim(struct mem_group *g, struct mem_consumer *c, int claim_ms, int64_t now,
                 int64_t *wake, struct dst_queue_msg *out)
{
    for (struct mem_pending *p = g->pending; p; p = p->next) {
        int64_t due = p->delivered_ms + claim_ms + 1;
        if (now < due) {
            if (due < *wake)
                *wake = due;
            continue;
        }
        int rc = fill(out, p->id, p->body, p->deliveries + 1);
        if (rc)
            return rc;
        p->owner = c;
        p->delivered_ms = now;
        p->deliveries++;
        return 0;
    }
    return DST_ETIMEDOUT;
}

/*
 * Hands c its own next pending message from before a restart (see dst_queue_mem_restart), as a
 * redis consumer reads its pending entries first. DST_ETIMEDOUT if none.
 */
static int own_pending(struct mem_group *g, struct mem_consumer *c, int64_t now,
                       struct dst_queue_msg *out)
{
    for (struct mem_pending *p = g->pending; p; p = p->next) {
        if (p->owner != c || !p->resume)
            continue;
        int rc = fill(out, p->id, p->body, p->deliveries + 1);
        if (rc)
            return rc;
        p->resume = false;
        p->delivered_ms = now;
        p->deliveries++;
        return 0;
    }
    return DST_ETIMEDOUT;
}

void dst_queue_mem_restart(struct dst_queue *q)
{
    struct mem_queue *m = (struct mem_queue *)q;

    pthread_mutex_lock(&m->lock);
    for (struct mem_topic *t = m->topics; t; t = t->next) {
        for (struct mem_group *g = t->groups; g; g = g->next) {
            for (struct mem_pending *p = g->pending; p; p = p->next)
                p->resume = true;
        }
    }
    pthread_mutex_unlock(&m->lock);
}

/* Hands c the next message of the log not yet seen by g. DST_ETIMEDOUT if none. */
static int deliver_new(struct mem_topic *t, struct mem_group *g, struct mem_consumer *c,
                       int64_t now, struct dst_queue_msg *out)
{
    if (g->next_seq < t->first_seq)
        g->next_seq = t->first_seq; /* trimmed before this group read them */
    if (g->next_seq >= t->first_seq + t->len)
        return DST_ETIMEDOUT;
    struct mem_msg *msg = &t->ring[(t->start + (g->next_seq - t->first_seq)) % t->cap];
    int rc = fill(out, msg->id, msg->body, 1);
    if (rc)
        return rc;
    struct mem_pending *p = dst_xnew(struct mem_pending);
    memcpy(p->id, msg->id, DST_QUEUE_ID_LEN);
    p->body = json_incref(msg->body);
    p->owner = c;
    p->delivered_ms = now;
    p->deliveries = 1;
    if (g->pending_tail)
        g->pending_tail->next = p;
    else
        g->pending = p;
    g->pending_tail = p;
    g->next_seq++;
    return 0;
}

static void wait_until(struct mem_queue *m, int64_t mono_ms)
{
    struct timespec ts = {.tv_sec = (time_t)(mono_ms / 1000),
                          .tv_nsec = (long)(mono_ms % 1000) * 1000000L};

    pthread_cond_timedwait(&m->cond, &m->lock, &ts);
}

static int mem_consume(struct dst_queue *q, const char *topic, const char *group,
                       const char *consumer, int timeout_ms, int claim_ms,
                       struct dst_queue_msg *out)
{
    struct mem_queue *m = (struct mem_queue *)q;
    int64_t deadline = dst_monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int rc = DST_ETIMEDOUT;

    pthread_mutex_lock(&m->lock);
    struct mem_topic *t = topic_get(m, topic);
    struct mem_group *g = group_get(t, group);
    struct mem_consumer *c = consumer_get(g, consumer);
    c->waiting++;
    for (;;) {
        int64_t now = dst_monotonic_ms();
        int64_t wake = deadline;
        c->seen_ms = now;
        rc = own_pending(g, c, now, out);
        if (rc == DST_ETIMEDOUT)
            rc = claim(g, c, claim_ms, now, &wake, out);
        if (rc == DST_ETIMEDOUT)
            rc = deliver_new(t, g, c, now, out);
        if (rc != DST_ETIMEDOUT || now >= deadline)
            break;
        wait_until(m, wake);
    }
    c->waiting--;
    c->seen_ms = dst_monotonic_ms();
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* Removes the pending entry id from g; false if it is not there. */
static bool pending_remove(struct mem_group *g, const char *id)
{
    struct mem_pending *prev = NULL;

    for (struct mem_pending *p = g->pending; p; prev = p, p = p->next) {
        if (strcmp(p->id, id) != 0)
            continue;
        if (prev)
            prev->next = p->next;
        else
            g->pending = p->next;
        if (g->pending_tail == p)
            g->pending_tail = prev;
        json_decref(p->body);
        free(p);
        return true;
    }
    return false;
}

static int mem_ack(struct dst_queue *q, const char *topic, const char *group, const char *id)
{
    struct mem_queue *m = (struct mem_queue *)q;
    struct mem_topic *t = NULL;
    struct mem_group *g = NULL;
    int rc = DST_ENOTFOUND;

    pthread_mutex_lock(&m->lock);
    t = topic_find(m, topic);
    g = t ? group_find(t, group) : NULL;
    if (g && pending_remove(g, id))
        rc = 0;
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* Counts (group, consumer) pairs that consumed within the window or are waiting now. */
static int mem_consumers(struct dst_queue *q, const char *topic, int64_t window_ms, int *out)
{
    struct mem_queue *m = (struct mem_queue *)q;
    int64_t now = dst_monotonic_ms();
    int n = 0;

    pthread_mutex_lock(&m->lock);
    struct mem_topic *t = topic_find(m, topic);
    for (struct mem_group *g = t ? t->groups : NULL; g; g = g->next) {
        for (struct mem_consumer *c = g->consumers; c; c = c->next) {
            if (c->waiting > 0 || now - c->seen_ms <= window_ms)
                n++;
        }
    }
    pthread_mutex_unlock(&m->lock);
    *out = n;
    return 0;
}

static int mem_ping(struct dst_queue *q)
{
    (void)q;
    return 0;
}

static int mem_join(struct dst_queue *q, const char *topic, const char *group)
{
    struct mem_queue *m = (struct mem_queue *)q;

    pthread_mutex_lock(&m->lock);
    group_get(topic_get(m, topic), group);
    pthread_mutex_unlock(&m->lock);
    return 0;
}

const struct dst_queue_ops dst_queue_mem_ops = {
    .scheme = "mem",
    .check = mem_check,
    .open = mem_open,
    .close = mem_close,
    .publish = mem_publish,
    .consume = mem_consume,
    .ack = mem_ack,
    .join = mem_join,
    .consumers = mem_consumers,
    .ping = mem_ping,
};
