/* queue.c - the request queue: picks a backend by URL scheme and forwards to it */
#include "core/queue.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/queue_backend.h"

#define URL_USAGE "use mem: or redis://HOST[:PORT][/DB]"

static const struct dst_queue_ops *const backends[] = {&dst_queue_mem_ops, &dst_queue_redis_ops};

static bool blank(const char *s)
{
    return !s || !*s;
}

/* The backend whose scheme url has ("redis:..." → redis); NULL if none. */
static const struct dst_queue_ops *backend_of(const char *url)
{
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
        size_t n = strlen(backends[i]->scheme);
        if (strncmp(url, backends[i]->scheme, n) == 0 && url[n] == ':')
            return backends[i];
    }
    return NULL;
}

int dst_queue_url_check(const char *url, char *err, size_t errlen)
{
    char dummy[8];
    const struct dst_queue_ops *ops = NULL;

    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    if (blank(url)) {
        snprintf(err, errlen, "the queue URL is empty (%s)", URL_USAGE);
        return DST_EINVAL;
    }
    ops = backend_of(url);
    if (!ops) {
        snprintf(err, errlen, "'%s' is not a queue URL (%s)", url, URL_USAGE);
        return DST_EINVAL;
    }
    return ops->check(url, err, errlen);
}

int dst_queue_open(const char *url, struct dst_queue **out)
{
    char err[512];
    int rc = dst_queue_url_check(url, err, sizeof(err));

    if (rc) {
        dst_error("queue: %s", err);
        return rc;
    }
    return backend_of(url)->open(url, out);
}

void dst_queue_free(struct dst_queue *q)
{
    if (q)
        q->ops->close(q);
}

int dst_queue_publish(struct dst_queue *q, const char *topic, const json_t *body,
                      char id_out[DST_QUEUE_ID_LEN])
{
    if (blank(topic) || !json_is_object(body))
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

int dst_queue_join(struct dst_queue *q, const char *topic, const char *group)
{
    if (blank(topic) || blank(group))
        return DST_EINVAL;
    return q->ops->join(q, topic, group);
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
