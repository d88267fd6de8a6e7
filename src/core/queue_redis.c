/* queue_redis.c - the Redis queue backend: Redis Streams and consumer groups, over hiredis */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/queue_backend.h"

#define URL_PREFIX   "redis://"
#define URL_USAGE    "use redis://HOST[:PORT][/DB]"
#define DEFAULT_PORT 6379
#define HOST_MAX     256
#define CONNECT_MS   2000 /* connecting to Redis takes no longer than this */
#define COMMAND_MS   2000 /* a reply later than this (after any BLOCK time) means Redis is gone */
#define SLICE_MS     1000 /* longest XREADGROUP block: waiting consumers re-check pending ones */
#define SLICE_MIN_MS 50
#define POOL_MAX     8                    /* idle connections kept for reuse */
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
 * Every call takes a connection from a small pool (or opens one) and gives it back after, so
 * a consume blocked in XREADGROUP never holds up a publish from another thread. A connection
 * that failed is closed, never pooled: the next call connects again.
 */
struct redis_queue {
    struct dst_queue base;
    char host[HOST_MAX];
    int port, db;
    char label[HOST_MAX + 16]; /* "host:port" for messages */
    pthread_mutex_t lock;      /* guards idle, nidle and resumes */
    redisContext *idle[POOL_MAX];
    int nidle;
    struct resume *resumes;
};

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

/* One consume/ack/... call: its connection and its names. */
struct call {
    struct redis_queue *r;
    redisContext *c;
    const char *topic, *group, *consumer;
};

/* Parses n bytes at s, 1 to 5 decimal digits, into *out; false if not in [min, max]. */
static bool num_parse(const char *s, size_t n, int min, int max, int *out)
{
    char buf[6];

    if (n == 0 || n > 5 || strspn(s, "0123456789") < n)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    *out = atoi(buf);
    return *out >= min && *out <= max;
}

/* Writes the reason a URL is bad to err; DST_EINVAL. */
__attribute__((format(printf, 3, 4))) static int url_error(char *err, size_t errlen,
                                                           const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return DST_EINVAL;
}

/* Copies the HOST (bare or [IPv6]) at *p to host and moves *p past it. */
static int url_host(const char *url, const char **p, char host[HOST_MAX], char *err, size_t errlen)
{
    const char *h = *p;
    size_t hlen;

    if (*h == '[') {
        const char *end = strchr(h, ']');
        if (!end)
            return url_error(err, errlen, "'%s': no ']' after the IPv6 address", url);
        h++;
        hlen = (size_t)(end - h);
        *p = end + 1;
    } else {
        hlen = strcspn(h, ":/");
        *p = h + hlen;
    }
    if (hlen == 0 || hlen >= HOST_MAX || (**p && **p != ':' && **p != '/'))
        return url_error(err, errlen, "'%s': no host (%s)", url, URL_USAGE);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    return 0;
}

/* Splits "redis://HOST[:PORT][/DB]"; err says what is wrong. */
static int url_parse(const char *url, char host[HOST_MAX], int *port, int *db, char *err,
                     size_t errlen)
{
    const char *p = url + strlen(URL_PREFIX);

    *port = DEFAULT_PORT;
    *db = 0;
    if (strchr(p, '@'))
        return url_error(err, errlen, "'%s': credentials in the URL are not supported", url);
    if (url_host(url, &p, host, err, errlen))
        return DST_EINVAL;
    if (*p == ':') {
        size_t n = strcspn(++p, "/");
        if (!num_parse(p, n, 1, 65535, port))
            return url_error(err, errlen, "'%s': bad port '%.*s' (1-65535)", url, (int)n, p);
        p += n;
    }
    if (*p == '/' && p[1] && !num_parse(p + 1, strlen(p + 1), 0, 65535, db))
        return url_error(err, errlen, "'%s': bad database number '%s' (0-65535)", url, p + 1);
    return 0;
}

static int redis_check(const char *url, char *err, size_t errlen)
{
    char host[HOST_MAX];
    int port, db;

    if (strncmp(url, URL_PREFIX, strlen(URL_PREFIX)) != 0)
        return url_error(err, errlen, "'%s' is not a redis URL (%s)", url, URL_USAGE);
    return url_parse(url, host, &port, &db, err, errlen);
}

/* Connects nothing yet: the first call does (so a probe may start before Redis). */
static int redis_open(const char *url, struct dst_queue **out)
{
    char err[256];
    struct redis_queue *r = dst_xnew(struct redis_queue);

    if (url_parse(url, r->host, &r->port, &r->db, err, sizeof(err))) {
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

static struct timeval ms_tv(int ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

/* Logs why Redis failed us (hiredis's own words); DST_EDEP. */
static int fail(struct redis_queue *r, const char *what, const char *why)
{
    dst_error("queue: redis %s: %s%s%s", r->label, what ? what : "", what ? ": " : "",
              why && *why ? why : "no reply");
    return DST_EDEP;
}

/* Connects to Redis with bounded timeouts and selects the database. */
static int conn_open(struct redis_queue *r, redisContext **out)
{
    redisContext *c = redisConnectWithTimeout(r->host, r->port, ms_tv(CONNECT_MS));
    redisReply *rep = NULL;
    int rc = 0;

    if (!c)
        return fail(r, NULL, "out of memory");
    if (c->err)
        rc = fail(r, NULL, c->errstr);
    else if (redisSetTimeout(c, ms_tv(COMMAND_MS)) != REDIS_OK)
        rc = fail(r, "timeout", c->errstr);
    else if (r->db && !(rep = redisCommand(c, "SELECT %d", r->db)))
        rc = fail(r, "SELECT", c->errstr);
    else if (rep && rep->type == REDIS_REPLY_ERROR)
        rc = fail(r, "SELECT", rep->str);
    freeReplyObject(rep);
    if (rc) {
        redisFree(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* True if the pooled connection was not closed by Redis meanwhile (a restart, a timeout). */
static bool conn_alive(redisContext *c)
{
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static int conn_take(struct redis_queue *r, redisContext **out)
{
    for (;;) {
        redisContext *c = NULL;
        pthread_mutex_lock(&r->lock);
        if (r->nidle > 0)
            c = r->idle[--r->nidle];
        pthread_mutex_unlock(&r->lock);
        if (!c)
            return conn_open(r, out);
        if (conn_alive(c)) {
            *out = c;
            return 0;
        }
        redisFree(c);
    }
}

/* Pools c for the next call, unless it failed. */
static void conn_give(struct redis_queue *r, redisContext *c)
{
    if (!c)
        return;
    if (!c->err) {
        pthread_mutex_lock(&r->lock);
        if (r->nidle < POOL_MAX) {
            r->idle[r->nidle++] = c;
            c = NULL;
        }
        pthread_mutex_unlock(&r->lock);
    }
    redisFree(c);
}

/* Logs an unexpected reply to what (Redis's error text if it is one); DST_EDEP. */
static int reply_fail(struct redis_queue *r, const char *what, const redisReply *rep)
{
    return fail(r, what, rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
}

/* Runs one command; no reply (connection lost, timeout) is logged and DST_EDEP. */
static int run(struct call *k, redisReply **out, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    *out = redisvCommand(k->c, fmt, ap);
    va_end(ap);
    if (!*out)
        return fail(k->r, NULL, k->c->errstr);
    return 0;
}

static bool is_error(const redisReply *rep, const char *prefix)
{
    return rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, prefix, strlen(prefix)) == 0;
}

static int redis_publish(struct dst_queue *q, const char *topic, const json_t *body,
                         char id_out[DST_QUEUE_ID_LEN])
{
    struct call k = {.r = (struct redis_queue *)q};
    redisReply *rep = NULL;
    char *text = json_dumps(body, JSON_COMPACT);
    int rc = text ? conn_take(k.r, &k.c) : DST_EINVAL;

    if (!rc)
        rc = run(&k, &rep, "XADD %s MAXLEN ~ " MAXLEN " * body %s", topic, text);
    if (!rc && (rep->type != REDIS_REPLY_STRING || rep->len >= DST_QUEUE_ID_LEN))
        rc = reply_fail(k.r, "XADD", rep);
    if (!rc && id_out)
        snprintf(id_out, DST_QUEUE_ID_LEN, "%s", rep->str);
    freeReplyObject(rep);
    conn_give(k.r, k.c);
    free(text);
    return rc;
}

/* Acks id in the call's group; DST_ENOTFOUND if it was not pending there. */
static int xack(struct call *k, const char *id)
{
    redisReply *rep = NULL;
    int rc = run(k, &rep, "XACK %s %s %s", k->topic, k->group, id);

    if (!rc && rep->type != REDIS_REPLY_INTEGER)
        rc = reply_fail(k->r, "XACK", rep);
    else if (!rc && rep->integer == 0)
        rc = DST_ENOTFOUND;
    freeReplyObject(rep);
    return rc;
}

/* The id and the body text of a stream entry [id, [field, value, ...]]; text NULL if none. */
static const char *entry_split(const redisReply *e, const char **text)
{
    *text = NULL;
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= DST_QUEUE_ID_LEN)
        return NULL;
    const redisReply *kv = e->element[1];
    for (size_t i = 0; kv->type == REDIS_REPLY_ARRAY && i + 1 < kv->elements; i += 2) {
        const redisReply *f = kv->element[i], *v = kv->element[i + 1];
        if (f->type == REDIS_REPLY_STRING && strcmp(f->str, "body") == 0 &&
            v->type == REDIS_REPLY_STRING)
            *text = v->str;
    }
    return e->element[0]->str;
}

/* Fills out from a stream entry; a body that is no JSON object is logged, acked, SKIPPED. */
static int entry_take(struct call *k, const redisReply *e, int deliveries,
                      struct dst_queue_msg *out)
{
    const char *text = NULL, *id = entry_split(e, &text);
    json_error_t jerr = {.text = "no body field"};
    json_t *body = NULL;
    int rc = 0;

    if (!id)
        return fail(k->r, k->topic, "unexpected stream entry");
    if (text)
        body = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (json_is_object(body)) {
        snprintf(out->id, DST_QUEUE_ID_LEN, "%s", id);
        out->body = body;
        out->deliveries = deliveries;
        return 0;
    }
    dst_warn("queue: redis %s: message %s of %s for group %s is not a JSON object (%s); dropped",
             k->r->label, id, k->topic, k->group, body ? "not an object" : jerr.text);
    json_decref(body);
    rc = xack(k, id);
    return rc && rc != DST_ENOTFOUND ? rc : SKIPPED;
}

/* Sets out->deliveries to the delivery count XPENDING reports for the claimed message. */
static int deliveries_get(struct call *k, struct dst_queue_msg *out)
{
    redisReply *rep = NULL;
    int rc = run(k, &rep, "XPENDING %s %s %s %s 1", k->topic, k->group, out->id, out->id);

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

/* Takes the message of an XAUTOCLAIM reply, if any; cursor moves to where the scan stopped. */
static int claim_reply(struct call *k, const redisReply *rep, char cursor[DST_QUEUE_ID_LEN],
                       struct dst_queue_msg *out)
{
    if (is_error(rep, "NOGROUP"))
        return NOGROUP;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING || rep->element[1]->type != REDIS_REPLY_ARRAY)
        return reply_fail(k->r, "XAUTOCLAIM", rep);
    snprintf(cursor, DST_QUEUE_ID_LEN, "%s", rep->element[0]->str);
    const redisReply *entries = rep->element[1];
    if (entries->elements == 0 || entries->element[0]->type == REDIS_REPLY_NIL)
        return DST_ETIMEDOUT; /* NIL: trimmed while pending (Redis 6.2; 7 leaves it out) */
    int rc = entry_take(k, entries->element[0], 2, out);
    return rc ? rc : deliveries_get(k, out);
}

/* Claims the first message pending longer than claim_ms in the group; DST_ETIMEDOUT if none. */
static int claim_one(struct call *k, int claim_ms, struct dst_queue_msg *out)
{
    char cursor[DST_QUEUE_ID_LEN] = "0-0";

    for (int round = 0; round < CLAIM_ROUNDS; round++) {
        redisReply *rep = NULL;
        int rc = run(k, &rep, "XAUTOCLAIM %s %s %s %d %s COUNT 1", k->topic, k->group, k->consumer,
                     claim_ms, cursor);
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
    int rc = run(k, &rep, "XREADGROUP GROUP %s %s COUNT 1 STREAMS %s %s", k->group, k->consumer,
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

/* Takes the message of an XREADGROUP reply [[topic, [entry]]]; DST_ETIMEDOUT if none. */
static int read_reply(struct call *k, const redisReply *rep, struct dst_queue_msg *out)
{
    if (rep->type == REDIS_REPLY_NIL)
        return DST_ETIMEDOUT;
    if (is_error(rep, "NOGROUP") || is_error(rep, "UNBLOCKED"))
        return NOGROUP; /* UNBLOCKED: the stream was deleted while we waited */
    const redisReply *s = rep->type == REDIS_REPLY_ARRAY && rep->elements ? rep->element[0] : NULL;
    if (!s || s->type != REDIS_REPLY_ARRAY || s->elements < 2 ||
        s->element[1]->type != REDIS_REPLY_ARRAY)
        return reply_fail(k->r, "XREADGROUP", rep);
    if (s->element[1]->elements == 0)
        return DST_ETIMEDOUT;
    return entry_take(k, s->element[1]->element[0], 1, out);
}

/* Records that the consumer is active now and waits for wait_ms more (see SEEN_TOUCH). */
static int seen_touch(struct call *k, int wait_ms)
{
    redisReply *rep = NULL;
    int rc = run(k, &rep, "EVAL %s 1 " SEEN_KEY " %s\n%s %d %d", SEEN_TOUCH, k->topic, k->group,
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
        redisSetTimeout(k->c, ms_tv(block_ms + COMMAND_MS));
        rc = run(k, &rep, "XREADGROUP GROUP %s %s COUNT 1 BLOCK %d STREAMS %s >", k->group,
                 k->consumer, block_ms, k->topic);
        redisSetTimeout(k->c, ms_tv(COMMAND_MS));
    } else {
        rc = run(k, &rep, "XREADGROUP GROUP %s %s COUNT 1 STREAMS %s >", k->group, k->consumer,
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
    int rc = run(k, &rep, "XGROUP CREATE %s %s $ MKSTREAM", k->topic, k->group);

    if (!rc && rep->type == REDIS_REPLY_ERROR && !is_error(rep, "BUSYGROUP"))
        rc = fail(k->r, "XGROUP CREATE", rep->str);
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
                return fail(k->r, k->topic, "the consumer group vanishes again and again");
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
    int rc = conn_take(k.r, &k.c);

    if (rc)
        return rc;
    rc = consume_loop(&k, deadline, claim_ms, out);
    if (rc != DST_EDEP)
        seen_touch(&k, 0); /* on failure it logged; the message, if any, stays ours */
    conn_give(k.r, k.c);
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
    int rc = id_valid(id) ? conn_take(k.r, &k.c) : DST_ENOTFOUND;

    if (!rc)
        rc = xack(&k, id);
    conn_give(k.r, k.c);
    return rc;
}

/* Counts the (group, consumer) pairs seen_touch saw within window_ms (or waiting now). */
static int redis_consumers(struct dst_queue *q, const char *topic, int64_t window_ms, int *out)
{
    struct call k = {.r = (struct redis_queue *)q, .topic = topic};
    redisReply *rep = NULL;
    long long window = window_ms < 0 ? 0 : window_ms > SEEN_KEEP_MS ? SEEN_KEEP_MS : window_ms;
    int rc = conn_take(k.r, &k.c);

    if (!rc)
        rc = run(&k, &rep, "EVAL %s 1 " SEEN_KEY " %lld %d", SEEN_COUNT, topic, window,
                 SEEN_KEEP_MS);
    if (!rc && rep->type != REDIS_REPLY_INTEGER)
        rc = reply_fail(k.r, "counting consumers", rep);
    if (!rc)
        *out = (int)rep->integer;
    freeReplyObject(rep);
    conn_give(k.r, k.c);
    return rc;
}

static int redis_ping(struct dst_queue *q)
{
    struct call k = {.r = (struct redis_queue *)q};
    redisReply *rep = NULL;
    int rc = conn_take(k.r, &k.c);

    if (!rc)
        rc = run(&k, &rep, "PING");
    if (!rc && (rep->type != REDIS_REPLY_STATUS || strcmp(rep->str, "PONG") != 0))
        rc = reply_fail(k.r, "PING", rep);
    freeReplyObject(rep);
    conn_give(k.r, k.c);
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
    .consumers = redis_consumers,
    .ping = redis_ping,
};
