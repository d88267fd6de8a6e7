/* logger.h - the probe daemon: consumes test requests, runs them, posts the results */
#ifndef DST_LOGGER_H
#define DST_LOGGER_H

#include <jansson.h>
#include <stdbool.h>

#include "speedtest/probe/probe.h"

struct dst_queue;
struct logger;

/* How the daemon reads the queue and what it runs around each test; all strings borrowed. */
struct logger_opts {
    const char *group;    /* consumer group; NULL/"": the agent (every probe runs every request) */
    const char *consumer; /* consumer name in it; NULL/"": the agent (stable across restarts) */
    const char *outbox;   /* outbox directory; NULL/"": none (a result not stored stays unacked) */
    const char *before;   /* shell command before each test; NULL/"": none */
    const char *after;    /* shell command after each test; NULL/"": none */
    int hook_timeout_s;   /* limit of each of those; 0 → 60 */
};

/*
 * Starts a thread that consumes test requests from q (borrowed; topic API_REQUESTS_TOPIC, in
 * lo's group as lo's consumer; lo may be NULL for the defaults), runs each with the engine of its
 * target (or o->target), posts the result, then acks the request. The ack comes only once the
 * result is stored, rejected by the API for good (logged with the reason), or safely in the
 * outbox; otherwise the request stays pending and is delivered again. The outbox is retried with
 * back-off between requests. A request that names another probe is acked and skipped.
 * Heartbeats (with the last stored result) go to the API while idle and running. o's and lo's
 * strings are borrowed and must outlive the logger. Console lines go to stdout. DST_EIO if the
 * outbox cannot be opened.
 */
int logger_start(const struct probe_opts *o, const struct logger_opts *lo, struct dst_queue *q,
                 struct logger **out);
/* Stops the thread (after the test in progress, if any) and frees the logger; NULL is fine. */
void logger_stop(struct logger *l);

/* What a test request, a queue message's body, asks of a probe. */
struct logger_request {
    const char *id;     /* its request_id, or else the queue message's id: never NULL */
    const char *target; /* NULL: the probe's own target */
};

/*
 * Reads the body of a request message (as the daemon does before it runs the test) for the
 * probe named agent. false when it names another probe: the daemon acks it and runs nothing.
 * out's strings point into body and msg_id.
 */
bool logger_request_read(const json_t *body, const char *msg_id, const char *agent,
                         struct logger_request *out);

/* Checks an agent name: 1 to 64 of [A-Za-z0-9._-]. */
int logger_check_agent(const char *v, char *err, size_t errlen);

#endif
