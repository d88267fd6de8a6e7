/* logger.h - the probe daemon: consumes test requests, runs them, posts the results */
#ifndef DST_LOGGER_H
#define DST_LOGGER_H

#include "speedtest/probe/probe.h"

struct dst_queue;
struct logger;

/*
 * Starts a thread that consumes test requests from q (borrowed; topic API_REQUESTS_TOPIC, the
 * consumer group named after the agent, so every probe runs every request), runs each with the
 * engine of its target (or o->target), posts the result, then acks the request. A request that
 * names another probe is acked and skipped. Heartbeats go to the API while idle and running.
 * o's strings are borrowed and must outlive the logger. Console lines go to stdout.
 */
int logger_start(const struct probe_opts *o, struct dst_queue *q, struct logger **out);
/* Stops the thread (after the test in progress, if any) and frees the logger; NULL is fine. */
void logger_stop(struct logger *l);

/* Checks an agent name: 1 to 64 of [A-Za-z0-9._-]. */
int logger_check_agent(const char *v, char *err, size_t errlen);

#endif
