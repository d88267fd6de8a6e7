/* queue.c - the request queue: picks a backend by URL scheme and forwards to it */
#include "core/queue.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/queue_backend.h"

#define MEM_URL      "mem:"
#define REDIS_PREFIX "redis://"

static bool blank(const char *s)
{
    return !s || !*s;
}

int dst_queue_url_check(const char *url, char *err, size_t errlen)
{
    char dummy[8];

    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    if (blank(url)) {
        snprintf(err, errlen, "the queue URL is empty (use mem: or redis://HOST:PORT[/DB])");
        return DST_EINVAL;
    }
    if (strcmp(url, MEM_URL) == 0)
        return 0;
    if (strncmp(url, REDIS_PREFIX, strlen(REDIS_PREFIX)) == 0) {
        /* NEEDSWORK: the redis backend (queue_redis.c) is not built yet. */
        snprintf(err, errlen, "'%s': the redis queue is not built yet", url);
        return DST_EINVAL;
    }
    snprintf(err, errlen, "'%s' is not a queue URL (use mem: or redis://HOST:PORT[/DB])", url);
    return DST_EINVAL;
}

int dst_queue_open(const char *url, struct dst_queue **out)
{
    char err[256];
    int rc = dst_queue_url_check(url, err, sizeof(err));

    if (rc) {
        dst_error("queue: %s", err);
        return rc;
    }
    return dst_queue_mem_ops.open(url, out);
}

void dst_queue_free(struct dst_queue *q)
{
    if (q)
        q->ops->close(q);
}

int dst_queue_publish(struct dst_queue *q, const char *topic, const json_t *body,
                      char id_out[DST_QUEUE_ID_LEN])
{
    if (blank(topic) || !body)
        return DST_EINVAL;
    return q->ops->publish(q, topic, body, id_out);
}

int dst_queue_consume(struct dst_queue *q, const char *topic, const char *group,
                      const char *consumer, int timeout_ms, int claim_ms, struct dst_queue_msg *out)
{
    out->id[0] = '\0';
    out->body = NULL;
    out->deliveries = 0;
    if (blank(topic) || blank(group) || blank(consumer))
        return DST_EINVAL;
    if (claim_ms <= 0)
        claim_ms = 60000;
    return q->ops->consume(q, topic, group, consumer, timeout_ms, claim_ms, out);
}

int dst_queue_ack(struct dst_queue *q, const char *topic, const char *group, const char *id)
{
    if (blank(topic) || blank(group) || blank(id))
        return DST_EINVAL;
    return q->ops->ack(q, topic, group, id);
}

int dst_queue_consumers(struct dst_queue *q, const char *topic, int64_t window_ms, int *out)
{
    if (blank(topic))
        return DST_EINVAL;
    return q->ops->consumers(q, topic, window_ms, out);
}

int dst_queue_ping(struct dst_queue *q)
{
    return q->ops->ping(q);
}

void dst_queue_msg_release(struct dst_queue_msg *m)
{
    if (!m)
        return;
    json_decref(m->body);
    m->body = NULL;
}
