/* queue_redis.c - the Redis queue backend: Redis Streams and consumer groups, over hiredis */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/queue_backend.h"
#include "core/queue_redis_priv.h"

#define SLICE_MS     1000 /* longest XREADGROUP block: waiting consumers re-check pending ones */
#define SLICE_MIN_MS 50
#define MAXLEN       "100000"             /* XADD trims each stream to about this many messages */
#define CLAIM_ROUNDS 20                   /* XAUTOCLAIM calls per consume (each scans 10 entries) */
#define MAX_SKIPS    1000                 /* malformed messages dropped per consume call */
#define SEEN_KEY     "dstmc:consumers:%s" /* topic → sorted set of group\nconsumer by time */
#define SEEN_KEEP_MS 86400000             /* consumers unseen this long are forgotten */

/*
 * Redis keeps no "last consume" time (7.0 renews a consumer's idle time only when it gets a
 * message), so consume records it itself in SEEN_KEY: the member's score is the Redis time
 * (TIME, the same clock for every probe) until which the consumer is known to wait.
 */
#define LUA_NOW "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "
#define SEEN_TOUCH                                                           \
    LUA_NOW "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1]) " \
            "redis.call('PEXPIRE', KEYS[1], ARGV[3]) return 0"
#define SEEN_COUNT                                                                      \
    LUA_NOW "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2])) " \
            "return redis.call('ZCOUNT', KEYS[1], now - tonumber(ARGV[1]), '+inf')"

/* Outcomes of the consume steps besides 0 and DST_E*. */
enum { SKIPPED = 1, NOGROUP = 2 };

/*
 * How far a consumer has read its own pending entries (delivered before, never acked: a crash)
 * through this handle. Each is handed out once, before anything else, on its first consumes.
 */
struct resume {
    char *key; /* "topic\ngroup\nconsumer" */
    char cursor[DST_QUEUE_ID_LEN];
    bool done;
    struct resume *next;
};

static int redis_check(const char *url, char *err, size_t errlen)
{
    char host[RQ_HOST_MAX];
    int port, db;

    if (strncmp(url, RQ_URL_PREFIX, strlen(RQ_URL_PREFIX)) != 0)
        return rq_url_error(err, errlen, "'%s' is not a redis URL (%s)", url, RQ_URL_USAGE);
    return rq_url_parse(url, host, &port, &db, err, errlen);
}

/* Connects nothing yet: the first call does (so a probe may start before Redis). */
static int redis_open(const char *url, struct dst_queue **out)
{
    char err[256];
    struct redis_queue *r = dst_xnew(struct redis_queue);

    if (rq_url_parse(url, r->host, &r->port, &r->db, err, sizeof(err))) {
        dst_error("queue: %s", err);
        free(r);
        return DST_EINVAL;
    }
    r->base.ops = &dst_queue_redis_ops;
    snprintf(r->label, sizeof(r->label), strchr(r->host, ':') ? "[%s]:%d" : "%s:%d", r->host,
             r->port);
    pthread_mutex_init(&r->lock, NULL);
    *out = &r->base;
    return 0;
}

static void redis_close(struct dst_queue *q)
{
    struct redis_queue *r = (struct redis_queue *)q;

    for (int i = 0; i < r->nidle; i++)
        redisFree(r->idle[i]);
    pthread_mutex_destroy(&r->lock);
    while (r->resumes) {
        struct resume *x = r->resumes;
        r->resumes = x->next;
        free(x->key);
        free(x);
    }
    free(r);
}

static int redis_publish(struct dst_queue *q, const char *topic, const json_t *body,
                         char id_out[DST_QUEUE_ID_LEN])
{
    struct call k = {.r = (struct redis_queue *)q};
    redisReply *rep = NULL;
    char *text = json_dumps(body, JSON_COMPACT);
    int rc = text ? rq_conn_take(k.r, &k.c) : DST_EINVAL;

    if (!rc)
        rc = rq_run(&k, &rep, "XADD %s MAXLEN ~ " MAXLEN " * body %s", topic, text);
    if (!rc && (rep->type != REDIS_REPLY_STRING || rep->len >= DST_QUEUE_ID_LEN))
        rc = rq_reply_fail(k.r, "XADD", rep);
    if (!rc && id_out)
        snprintf(id_out, DST_QUEUE_ID_LEN, "%s", rep->str);
    freeReplyObject(rep);
    rq_conn_give(k.r, k.c);
    free(text);
    return rc;
}

/* Acks id in the call's group; DST_ENOTFOUND if it was not pending there. */
static int xack(struct call *k, const char *id)
{
    redisReply *rep = NULL;
    int rc = rq_run(k, &rep, "XACK %s %s %s", k->topic, k->group, id);

    if (!rc && rep->type != REDIS_REPLY_INTEGER)
        rc = rq_reply_fail(k->r, "XACK", rep);
    else if (!rc && rep->integer == 0)
        rc = DST_ENOTFOUND;
    freeReplyObject(rep);
    return rc;
}

/* The id and the body text (len bytes) of a stream entry [id, [field, value, ...]]; text NULL
 * if none. */
static const char *entry_split(const redisReply *e, const char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= DST_QUEUE_ID_LEN)
        return NULL;
    const redisReply *kv = e->element[1];
    for (size_t i = 0; kv->type == REDIS_REPLY_ARRAY && i + 1 < kv->elements; i += 2) {
        const redisReply *f = kv->element[i], *v = kv->element[i + 1];
        if (f->type == REDIS_REPLY_STRING && strcmp(f->str, "body") == 0 &&
            v->type == REDIS_REPLY_STRING) {
            *text = v->str;
            *len = v->len;
        }
    }
    return e->element[0]->str;
}

int rq_entry_parse(const redisReply *e, char id[DST_QUEUE_ID_LEN], json_t **body, char *why,
                   size_t whylen)
{
    size_t len = 0;
    const char *text = NULL, *eid = entry_split(e, &text, &len);
    json_error_t jerr = {.text = "no body field"};
    json_t *j = NULL;

    *body = NULL;
    if (!eid)
        return DST_EDEP;
    snprintf(id, DST_QUEUE_ID_LEN, "%s", eid);
    if (text)
        j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (json_is_object(j)) {
        *body = j;
        return 0;
    }
    snprintf(why, whylen, "%s", j ? "not an object" : jerr.text);
    json_decref(j);
    return DST_EINVAL;
}

/* Fills out from a stream entry; a body that is no JSON object is logged, acked, SKIPPED. */
static int entry_take(struct call *k, const redisReply *e, int deliveries,
                      struct dst_queue_msg *out)
{
    char id[DST_QUEUE_ID_LEN], why[JSON_ERROR_TEXT_LENGTH];
    json_t *body = NULL;
    int rc = rq_entry_parse(e, id, &body, why, sizeof(why));

    if (rc == DST_EDEP)
        return rq_fail(k->r, k->topic, "unexpected stream entry");
    if (rc == 0) {
        memcpy(out->id, id, DST_QUEUE_ID_LEN);
        out->body = body;
        out->deliveries = deliveries;
        return 0;
    }
    dst_warn("queue: redis %s: message %s of %s for group %s is not a JSON object (%s); dropped",
             k->r->label, id, k->topic, k->group, why);
    rc = xack(k, id);
    return rc && rc != DST_ENOTFOUND ? rc : SKIPPED;
}

/* Sets out->deliveries to the delivery count XPENDING reports for the claimed message. */
static int deliveries_get(struct call *k, struct dst_queue_msg *out)
{
    redisReply *rep = NULL;
    int rc = rq_run(k, &rep, "XPENDING %s %s %s %s 1", k->topic, k->group, out->id, out->id);

    if (!rc && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1) {
        const redisReply *p = rep->element[0];
        if (p->type == REDIS_REPLY_ARRAY && p->elements >= 4 &&
            p->element[3]->type == REDIS_REPLY_INTEGER)
            out->deliveries = (int)p->element[3]->integer;
    }
    freeReplyObject(rep);
    if (rc)
        dst_queue_msg_release(out);
    return rc;
}

int rq_claim_entry(const redisReply *rep, char cursor[DST_QUEUE_ID_LEN], const redisReply **entry)
{
    *entry = NULL;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING || rep->element[0]->len >= DST_QUEUE_ID_LEN ||
        rep->element[1]->type != REDIS_REPLY_ARRAY)
        return DST_EDEP;
    snprintf(cursor, DST_QUEUE_ID_LEN, "%s", rep->element[0]->str);
    const redisReply *entries = rep->element[1];
    if (entries->elements > 0 && entries->element[0]->type != REDIS_REPLY_NIL)
        *entry = entries->element[0]; /* NIL: trimmed while pending (Redis 6.2; 7 leaves it out) */
    return 0;
}

/* Takes the message of an XAUTOCLAIM reply, if any; cursor moves to where the scan stopped. */
static int claim_reply(struct call *k, const redisReply *rep, char cursor[DST_QUEUE_ID_LEN],
                       struct dst_queue_msg *out)
{
    const redisReply *e = NULL;

    if (rq_is_error(rep, "NOGROUP"))
        return NOGROUP;
    if (rq_claim_entry(rep, cursor, &e) != 0)
        return rq_reply_fail(k->r, "XAUTOCLAIM", rep);
    if (!e)
        return DST_ETIMEDOUT;
    int rc = entry_take(k, e, 2, out);
    return rc ? rc : deliveries_get(k, out);
}

/* Claims the first message pending longer than claim_ms in the group; DST_ETIMEDOUT if none. */
static int claim_one(struct call *k, int claim_ms, struct dst_queue_msg *out)
{
    char cursor[DST_QUEUE_ID_LEN] = "0-0";

    for (int round = 0; round < CLAIM_ROUNDS; round++) {
        redisReply *rep = NULL;
        int rc = rq_run(k, &rep, "XAUTOCLAIM %s %s %s %d %s COUNT 1", k->topic, k->group,
                        k->consumer, claim_ms, cursor);
        if (!rc)
            rc = claim_reply(k, rep, cursor, out);
        freeReplyObject(rep);
        if (rc != DST_ETIMEDOUT || strcmp(cursor, "0-0") == 0)
            return rc;
    }
    return DST_ETIMEDOUT;
}

/* The resume record of k's consumer (created at "0"). Called with the lock held. */
static struct resume *resume_find(struct call *k)
{
    char *key = dst_xasprintf("%s\n%s\n%s", k->topic, k->group, k->consumer);
    struct resume *x = k->r->resumes;

    while (x && strcmp(x->key, key) != 0)
        x = x->next;
    if (x) {
        free(key);
        return x;
    }
    x = dst_xnew(struct resume);
    x->key = key;
    snprintf(x->cursor, sizeof(x->cursor), "0");
    x->next = k->r->resumes;
    k->r->resumes = x;
    return x;
}

/* Copies where k's consumer stands in its own pending entries; false once it read them all. */
static bool resume_get(struct call *k, char cursor[DST_QUEUE_ID_LEN])
{
    pthread_mutex_lock(&k->r->lock);
    struct resume *x = resume_find(k);
    bool more = !x->done;
    memcpy(cursor, x->cursor, DST_QUEUE_ID_LEN);
    pthread_mutex_unlock(&k->r->lock);
    return more;
}

static void resume_set(struct call *k, const char *cursor, bool done)
{
    pthread_mutex_lock(&k->r->lock);
    struct resume *x = resume_find(k);
    snprintf(x->cursor, sizeof(x->cursor), "%s", cursor);
    x->done = done;
    pthread_mutex_unlock(&k->r->lock);
}

static int read_reply(struct call *k, const redisReply *rep, struct dst_queue_msg *out);

/*
 * The consumer's next own pending entry after its cursor (what a restarted consumer left
 * unacked), with its delivery count; DST_ETIMEDOUT once there is none.
 */
static int own_pending(struct call *k, struct dst_queue_msg *out)
{
    char cursor[DST_QUEUE_ID_LEN];
    redisReply *rep = NULL;

    if (!resume_get(k, cursor))
        return DST_ETIMEDOUT;
    int rc = rq_run(k, &rep, "XREADGROUP GROUP %s %s COUNT 1 STREAMS %s %s", k->group, k->consumer,
                    k->topic, cursor);
    if (!rc)
        rc = read_reply(k, rep, out);
    freeReplyObject(rep);
    if (rc == DST_ETIMEDOUT)
        resume_set(k, cursor, true);
    if (rc == 0) {
        resume_set(k, out->id, false);
        rc = deliveries_get(k, out);
    }
    return rc;
}

int rq_xread_entry(const redisReply *rep, const redisReply **entry)
{
    *entry = NULL;
    if (rep->type == REDIS_REPLY_NIL)
        return 0;
    const redisReply *s = rep->type == REDIS_REPLY_ARRAY && rep->elements ? rep->element[0] : NULL;
    if (!s || s->type != REDIS_REPLY_ARRAY || s->elements < 2 ||
        s->element[1]->type != REDIS_REPLY_ARRAY)
        return DST_EDEP;
    if (s->element[1]->elements > 0)
        *entry = s->element[1]->element[0];
    return 0;
}

/* Takes the message of an XREADGROUP reply [[topic, [entry]]]; DST_ETIMEDOUT if none. */
static int read_reply(struct call *k, const redisReply *rep, struct dst_queue_msg *out)
{
    const redisReply *e = NULL;

    if (rq_is_error(rep, "NOGROUP") || rq_is_error(rep, "UNBLOCKED"))
        return NOGROUP; /* UNBLOCKED: the stream was deleted while we waited */
    if (rq_xread_entry(rep, &e) != 0)
        return rq_reply_fail(k->r, "XREADGROUP", rep);
    return e ? entry_take(k, e, 1, out) : DST_ETIMEDOUT;
}

/* Records that the consumer is active now and waits for wait_ms more (see SEEN_TOUCH). */
static int seen_touch(struct call *k, int wait_ms)
{
    redisReply *rep = NULL;
    int rc = rq_run(k, &rep, "EVAL %s 1 " SEEN_KEY " %s\n%s %d %d", SEEN_TOUCH, k->topic, k->group,
                    k->consumer, wait_ms, SEEN_KEEP_MS);

    if (!rc && rep->type == REDIS_REPLY_ERROR)
        dst_warn("queue: redis %s: recording consumer %s: %s", k->r->label, k->consumer,
                 rep->str); /* only dst_queue_consumers suffers */
    freeReplyObject(rep);
    return rc;
}

/* Reads the group's next new message, waiting up to block_ms (0: not at all). */
static int read_new(struct call *k, int block_ms, struct dst_queue_msg *out)
{
    redisReply *rep = NULL;
    int rc;

    if (block_ms > 0) {
        rc = seen_touch(k, block_ms); /* dst_queue_consumers counts it while it waits */
        if (rc)
            return rc;
        redisSetTimeout(k->c, rq_ms_tv(block_ms + RQ_COMMAND_MS));
        rc = rq_run(k, &rep, "XREADGROUP GROUP %s %s COUNT 1 BLOCK %d STREAMS %s >", k->group,
                    k->consumer, block_ms, k->topic);
        redisSetTimeout(k->c, rq_ms_tv(RQ_COMMAND_MS));
    } else {
        rc = rq_run(k, &rep, "XREADGROUP GROUP %s %s COUNT 1 STREAMS %s >", k->group, k->consumer,
                    k->topic);
    }
    if (!rc)
        rc = read_reply(k, rep, out);
    freeReplyObject(rep);
    return rc;
}

/* Creates the group at the end of the stream (and the stream), as a first consume does. */
static int group_create(struct call *k)
{
    redisReply *rep = NULL;
    int rc = rq_run(k, &rep, "XGROUP CREATE %s %s $ MKSTREAM", k->topic, k->group);

    if (!rc && rep->type == REDIS_REPLY_ERROR && !rq_is_error(rep, "BUSYGROUP"))
        rc = rq_fail(k->r, "XGROUP CREATE", rep->str);
    freeReplyObject(rep);
    return rc;
}

/* The consumer's own pending entries, then redeliveries, then new messages, in blocks of at most one slice, until deadline. */
static int consume_loop(struct call *k, int64_t deadline, int claim_ms, struct dst_queue_msg *out)
{
    int slice = claim_ms < SLICE_MIN_MS ? SLICE_MIN_MS : claim_ms > SLICE_MS ? SLICE_MS : claim_ms;
    int creates = 0, skips = 0;

    for (;;) {
        int64_t left = deadline - dst_monotonic_ms();
        int rc = own_pending(k, out);
        if (rc == DST_ETIMEDOUT)
            rc = claim_one(k, claim_ms, out);
        if (rc == DST_ETIMEDOUT)
            rc = read_new(k, left <= 0 ? 0 : left < slice ? (int)left : slice, out);
        if (rc == NOGROUP) {
            if (creates++ == 3)
                return rq_fail(k->r, k->topic, "the consumer group vanishes again and again");
            rc = group_create(k);
            if (rc)
                return rc;
            continue;
        }
        if (rc == SKIPPED && skips++ < MAX_SKIPS)
            continue;
        if (rc != DST_ETIMEDOUT && rc != SKIPPED)
            return rc; /* a message, or Redis failed */
        if (dst_monotonic_ms() >= deadline)
            return DST_ETIMEDOUT;
    }
}

static int redis_consume(struct dst_queue *q, const char *topic, const char *group,
                         const char *consumer, int timeout_ms, int claim_ms,
                         struct dst_queue_msg *out)
{
    struct call k = {
        .r = (struct redis_queue *)q, .topic = topic, .group = group, .consumer = consumer};
    int64_t deadline = dst_monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int rc = rq_conn_take(k.r, &k.c);

    if (rc)
        return rc;
    rc = consume_loop(&k, deadline, claim_ms, out);
    if (rc != DST_EDEP)
        seen_touch(&k, 0); /* on failure it logged; the message, if any, stays ours */
    rq_conn_give(k.r, k.c);
    return rc;
}

static int redis_join(struct dst_queue *q, const char *topic, const char *group)
{
    struct call k = {.r = (struct redis_queue *)q, .topic = topic, .group = group};
    int rc = rq_conn_take(k.r, &k.c);

    if (rc)
        return rc;
    rc = group_create(&k);
    rq_conn_give(k.r, k.c);
    return rc;
}

/* "<ms>-<n>": anything else cannot be pending. */
static bool id_valid(const char *id)
{
    const char *digits = "0123456789";
    size_t a = strspn(id, digits), b;

    if (a == 0 || a > 20 || id[a] != '-')
        return false;
    b = strspn(id + a + 1, digits);
    return b > 0 && b <= 20 && id[a + 1 + b] == '\0';
}

static int redis_ack(struct dst_queue *q, const char *topic, const char *group, const char *id)
{
    struct call k = {.r = (struct redis_queue *)q, .topic = topic, .group = group};
    int rc = id_valid(id) ? rq_conn_take(k.r, &k.c) : DST_ENOTFOUND;

    if (!rc)
        rc = xack(&k, id);
    rq_conn_give(k.r, k.c);
    return rc;
}

/* Counts the (group, consumer) pairs seen_touch saw within window_ms (or waiting now). */
static int redis_consumers(struct dst_queue *q, const char *topic, int64_t window_ms, int *out)
{
    struct call k = {.r = (struct redis_queue *)q, .topic = topic};
    redisReply *rep = NULL;
    long long window = window_ms < 0 ? 0 : window_ms > SEEN_KEEP_MS ? SEEN_KEEP_MS : window_ms;
    int rc = rq_conn_take(k.r, &k.c);

    if (!rc)
        rc = rq_run(&k, &rep, "EVAL %s 1 " SEEN_KEY " %lld %d", SEEN_COUNT, topic, window,
                    SEEN_KEEP_MS);
    if (!rc && rep->type != REDIS_REPLY_INTEGER)
        rc = rq_reply_fail(k.r, "counting consumers", rep);
    if (!rc)
        *out = (int)rep->integer;
    freeReplyObject(rep);
    rq_conn_give(k.r, k.c);
    return rc;
}

static int redis_ping(struct dst_queue *q)
{
    struct call k = {.r = (struct redis_queue *)q};
    redisReply *rep = NULL;
    int rc = rq_conn_take(k.r, &k.c);

    if (!rc)
        rc = rq_run(&k, &rep, "PING");
    if (!rc && (rep->type != REDIS_REPLY_STATUS || strcmp(rep->str, "PONG") != 0))
        rc = rq_reply_fail(k.r, "PING", rep);
    freeReplyObject(rep);
    rq_conn_give(k.r, k.c);
    return rc;
}

const struct dst_queue_ops dst_queue_redis_ops = {
    .scheme = "redis",
    .check = redis_check,
    .open = redis_open,
    .close = redis_close,
    .publish = redis_publish,
    .consume = redis_consume,
    .ack = redis_ack,
    .join = redis_join,
    .consumers = redis_consumers,
    .ping = redis_ping,
};
