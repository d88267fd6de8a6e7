/* queue_redis_priv.h - what the Redis queue (queue_redis.c) and its connections share */
#ifndef DST_QUEUE_REDIS_PRIV_H
#define DST_QUEUE_REDIS_PRIV_H

/*
 * Private to the module: only queue_redis.c (the queue operations) and queue_redis_conn.c (the
 * URL, the connection pool and the command helpers) include this, and they are the only files
 * that include <hiredis/hiredis.h>. This header only forward-declares hiredis's redisContext
 * and redisReply (struct redisContext is redisContext), so it needs no hiredis header itself.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/time.h>

#include "core/queue_backend.h"

#define RQ_URL_PREFIX "redis://"
#define RQ_URL_USAGE  "use redis://HOST[:PORT][/DB]"
#define RQ_HOST_MAX   256
#define RQ_COMMAND_MS 2000 /* a reply later than this (after any BLOCK time) means Redis is gone */
#define RQ_POOL_MAX   8    /* idle connections kept for reuse */

struct redisContext; /* hiredis's */
struct redisReply;   /* hiredis's */
struct resume;       /* queue_redis.c's */

/*
 * Every call takes a connection from a small pool (or opens one) and gives it back after, so
 * a consume blocked in XREADGROUP never holds up a publish from another thread. A connection
 * that failed is closed, never pooled: the next call connects again.
 */
struct redis_queue {
    struct dst_queue base;
    char host[RQ_HOST_MAX];
    int port, db;
    char label[RQ_HOST_MAX + 16]; /* "host:port" for messages */
    pthread_mutex_t lock;         /* guards idle, nidle and resumes */
    struct redisContext *idle[RQ_POOL_MAX];
    int nidle;
    struct resume *resumes;
};

/* One consume/ack/... call: its connection and its names. */
struct call {
    struct redis_queue *r;
    struct redisContext *c;
    const char *topic, *group, *consumer;
};

/* ---- the URL ---- */

/* Writes the reason a URL is bad to err; DST_EINVAL. */
int rq_url_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Splits "redis://HOST[:PORT][/DB]"; err says what is wrong. */
int rq_url_parse(const char *url, char host[RQ_HOST_MAX], int *port, int *db, char *err,
                 size_t errlen);

/* ---- connections and commands ---- */

/* ms milliseconds as a timeval, for hiredis's timeouts. */
struct timeval rq_ms_tv(int ms);

/* Logs why Redis failed us (hiredis's own words); DST_EDEP. */
int rq_fail(struct redis_queue *r, const char *what, const char *why);

/* A connection from r's pool, checked alive, or a new one; 0, or DST_EDEP (logged). */
int rq_conn_take(struct redis_queue *r, struct redisContext **out);

/* Pools c for the next call, unless it failed. */
void rq_conn_give(struct redis_queue *r, struct redisContext *c);

/* Logs an unexpected reply to what (Redis's error text if it is one); DST_EDEP. */
int rq_reply_fail(struct redis_queue *r, const char *what, const struct redisReply *rep);

/* Runs one command; no reply (connection lost, timeout) is logged and DST_EDEP. */
int rq_run(struct call *k, struct redisReply **out, const char *fmt, ...);

/* True if rep is a Redis error whose text starts with prefix ("NOGROUP", ...). */
bool rq_is_error(const struct redisReply *rep, const char *prefix);

/* ---- replies (queue_redis.c): what a consumer takes from Redis, apart from the calls ---- */

/*
 * The first entry of an XREADGROUP reply [[topic, [entry, ...]]]: 0 and *entry, NULL when the
 * reply has none (nil, or an empty list); DST_EDEP if the reply has another shape.
 */
int rq_xread_entry(const struct redisReply *rep, const struct redisReply **entry);

/*
 * An XAUTOCLAIM reply [cursor, [entry, ...], ...]: 0 with the next cursor copied and *entry
 * the first entry (NULL if none, or nil: trimmed while pending); DST_EDEP on another shape.
 */
int rq_claim_entry(const struct redisReply *rep, char cursor[DST_QUEUE_ID_LEN],
                   const struct redisReply **entry);

/*
 * A stream entry [id, [field, value, ...]] as a message: its id into id, and its "body" field
 * parsed into *body (a new reference to a JSON object). DST_EDEP if e is no entry (id left
 * untouched); DST_EINVAL, the id set and the reason in why, if the body is missing or is not
 * a JSON object (such a message is acked and dropped).
 */
int rq_entry_parse(const struct redisReply *e, char id[DST_QUEUE_ID_LEN], json_t **body, char *why,
                   size_t whylen);

#endif
