/* queue_redis_conn.c - the Redis queue's URL, connection pool and command helpers */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "core/err.h"
#include "core/log.h"
#include "core/queue_redis_priv.h"

#define DEFAULT_PORT 6379
#define CONNECT_MS   2000 /* connecting to Redis takes no longer than this */

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

int rq_url_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return DST_EINVAL;
}

/* Copies the HOST (bare or [IPv6]) at *p to host and moves *p past it. */
static int url_host(const char *url, const char **p, char host[RQ_HOST_MAX], char *err,
                    size_t errlen)
{
    const char *h = *p;
    size_t hlen;

    if (*h == '[') {
        const char *end = strchr(h, ']');
        if (!end)
            return rq_url_error(err, errlen, "'%s': no ']' after the IPv6 address", url);
        h++;
        hlen = (size_t)(end - h);
        *p = end + 1;
    } else {
        hlen = strcspn(h, ":/");
        *p = h + hlen;
    }
    if (hlen == 0 || hlen >= RQ_HOST_MAX || (**p && **p != ':' && **p != '/'))
        return rq_url_error(err, errlen, "'%s': no host (%s)", url, RQ_URL_USAGE);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    return 0;
}

int rq_url_parse(const char *url, char host[RQ_HOST_MAX], int *port, int *db, char *err,
                 size_t errlen)
{
    const char *p = url + strlen(RQ_URL_PREFIX);

    *port = DEFAULT_PORT;
    *db = 0;
    if (strchr(p, '@'))
        return rq_url_error(err, errlen, "'%s': credentials in the URL are not supported", url);
    if (url_host(url, &p, host, err, errlen))
        return DST_EINVAL;
    if (*p == ':') {
        size_t n = strcspn(++p, "/");
        if (!num_parse(p, n, 1, 65535, port))
            return rq_url_error(err, errlen, "'%s': bad port '%.*s' (1-65535)", url, (int)n, p);
        p += n;
    }
    if (*p == '/' && p[1] && !num_parse(p + 1, strlen(p + 1), 0, 65535, db))
        return rq_url_error(err, errlen, "'%s': bad database number '%s' (0-65535)", url, p + 1);
    return 0;
}

struct timeval rq_ms_tv(int ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

int rq_fail(struct redis_queue *r, const char *what, const char *why)
{
    dst_error("queue: redis %s: %s%s%s", r->label, what ? what : "", what ? ": " : "",
              why && *why ? why : "no reply");
    return DST_EDEP;
}

/* Connects to Redis with bounded timeouts and selects the database. */
static int conn_open(struct redis_queue *r, redisContext **out)
{
    redisContext *c = redisConnectWithTimeout(r->host, r->port, rq_ms_tv(CONNECT_MS));
    redisReply *rep = NULL;
    int rc = 0;

    if (!c)
        return rq_fail(r, NULL, "out of memory");
    if (c->err)
        rc = rq_fail(r, NULL, c->errstr);
    else if (redisSetTimeout(c, rq_ms_tv(RQ_COMMAND_MS)) != REDIS_OK)
        rc = rq_fail(r, "timeout", c->errstr);
    else if (r->db && !(rep = redisCommand(c, "SELECT %d", r->db)))
        rc = rq_fail(r, "SELECT", c->errstr);
    else if (rep && rep->type == REDIS_REPLY_ERROR)
        rc = rq_fail(r, "SELECT", rep->str);
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

int rq_conn_take(struct redis_queue *r, redisContext **out)
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

void rq_conn_give(struct redis_queue *r, redisContext *c)
{
    if (!c)
        return;
    if (!c->err) {
        pthread_mutex_lock(&r->lock);
        if (r->nidle < RQ_POOL_MAX) {
            r->idle[r->nidle++] = c;
            c = NULL;
        }
        pthread_mutex_unlock(&r->lock);
    }
    redisFree(c);
}

int rq_reply_fail(struct redis_queue *r, const char *what, const redisReply *rep)
{
    return rq_fail(r, what, rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
}

int rq_run(struct call *k, redisReply **out, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    *out = redisvCommand(k->c, fmt, ap);
    va_end(ap);
    if (!*out)
        return rq_fail(k->r, NULL, k->c->errstr);
    return 0;
}

bool rq_is_error(const redisReply *rep, const char *prefix)
{
    return rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, prefix, strlen(prefix)) == 0;
}
