/* queue_backend.h - what a queue backend implements (for queue_*.c only) */
#ifndef DST_QUEUE_BACKEND_H
#define DST_QUEUE_BACKEND_H

#include "queue.h"

struct dst_queue_ops {
    const char *scheme; /* "mem", "redis" */
    /* 0 if url (of this scheme) is well-formed; else DST_EINVAL and the reason in err. */
    int (*check)(const char *url, char *err, size_t errlen);
    int (*open)(const char *url, struct dst_queue **out);
    void (*close)(struct dst_queue *q);
    int (*publish)(struct dst_queue *q, const char *topic, const json_t *body,
                   char id_out[DST_QUEUE_ID_LEN]);
    int (*consume)(struct dst_queue *q, const char *topic, const char *group, const char *consumer,
                   int timeout_ms, int claim_ms, struct dst_queue_msg *out);
    int (*ack)(struct dst_queue *q, const char *topic, const char *group, const char *id);
    int (*join)(struct dst_queue *q, const char *topic, const char *group);
    int (*consumers)(struct dst_queue *q, const char *topic, int64_t window_ms, int *out);
    int (*ping)(struct dst_queue *q);
};

/* Every backend's struct starts with this. */
struct dst_queue {
    const struct dst_queue_ops *ops;
};

extern const struct dst_queue_ops dst_queue_mem_ops;
extern const struct dst_queue_ops dst_queue_redis_ops;

/*
 * For the shared contract test: makes the mem queue behave as if every consumer's process had
 * restarted with the queue kept (as with Redis): each consumer's pending messages go back to it
 * first, once, on its next consumes.
 */
void dst_queue_mem_restart(struct dst_queue *q);

#endif
