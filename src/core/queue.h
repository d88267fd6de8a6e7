/* queue.h - the request queue: one interface, backends mem (queue_mem.c) and redis */
#ifndef DST_QUEUE_H
#define DST_QUEUE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dst_queue;

#define DST_QUEUE_ID_LEN 64

/*
 * Semantics (those of Redis Streams consumer groups): a topic is an append-only log of JSON
 * messages. Each consumer group reads every message of the topic once; consumers sharing a
 * group split the messages between them. A message delivered to a consumer stays pending in
 * its group until acked; a pending message idle longer than claim_ms is delivered again (to
 * any consumer of the group) with deliveries incremented. A group created by its first
 * consume starts at messages published after the group was created, unless the topic was
 * opened with from_start.
 */
struct dst_queue_msg {
    char id[DST_QUEUE_ID_LEN]; /* "1700000000000-0" form */
    json_t *body;              /* owned by the message */
    int deliveries;            /* 1 on first delivery */
};

/*
 * Opens "mem:" (in-process) or "redis://HOST[:PORT][/DB]" (port 6379, database 0 by default).
 * DST_EINVAL (logged) on any other URL; nothing else fails here: the redis backend connects on
 * the first call, and every call while Redis is unreachable logs why and returns DST_EDEP, the
 * next one connecting again. No redis call waits longer than its timeout plus a few seconds.
 * All calls are thread-safe; a consume blocked in one thread never holds up the others. The
 * redis backend writes to sockets Redis may have closed: the process must ignore SIGPIPE
 * (dst_sig_init does).
 */
int dst_queue_open(const char *url, struct dst_queue **out);
void dst_queue_free(struct dst_queue *q);

/* 0 if url is a queue URL dst_queue_open takes; else DST_EINVAL and the reason in err. */
int dst_queue_url_check(const char *url, char *err, size_t errlen);

/*
 * Appends body (borrowed; a JSON object, else DST_EINVAL) to topic; the new message id goes
 * to id_out (may be NULL). In Redis a topic is a stream capped at about 100000 messages.
 */
int dst_queue_publish(struct dst_queue *q, const char *topic, const json_t *body,
                      char id_out[DST_QUEUE_ID_LEN]);

/*
 * Waits up to timeout_ms for the next message for consumer in group (a redelivery of an
 * expired pending message first, then a new one). 0 and *out filled, DST_ETIMEDOUT if none
 * came, DST_EDEP if the backend failed. claim_ms <= 0 means 60000. A message whose body is not
 * a JSON object (written to Redis by someone else) is logged, acked and skipped.
 */
int dst_queue_consume(struct dst_queue *q, const char *topic, const char *group,
                      const char *consumer, int timeout_ms, int claim_ms,
                      struct dst_queue_msg *out);

/*
 * Creates group on topic if it does not exist yet (at the end of the log, as a first consume
 * would): a consumer that joins before it first consumes gets every message published after the
 * join. 0, or DST_EDEP if the backend failed.
 */
int dst_queue_join(struct dst_queue *q, const char *topic, const char *group);

/* Acks a message of group: it will not be delivered again. DST_ENOTFOUND if not pending. */
int dst_queue_ack(struct dst_queue *q, const char *topic, const char *group, const char *id);

/*
 * Number of consumers that consumed from topic in the last window_ms (any group), counting
 * those waiting in consume now. The redis backend remembers consumers for a day at most.
 */
int dst_queue_consumers(struct dst_queue *q, const char *topic, int64_t window_ms, int *out);

void dst_queue_msg_release(struct dst_queue_msg *m);

int dst_queue_ping(struct dst_queue *q);

#endif
