/* progress.h - a running test's live progress beats, posted from a thread of their own */
#ifndef DST_LOGGER_PROGRESS_H
#define DST_LOGGER_PROGRESS_H

#include "speedtest/probe/probe.h"

struct logger_progress;

/* Starts the sender of o's progress beats (o is borrowed until stop). */
int logger_progress_start(const struct probe_opts *o, struct logger_progress **out);

/*
 * Hands b (copied) to the sender and returns at once: an engine's measuring loop calls this, so
 * a slow or far API must never hold it up. A beat not sent yet is replaced by the newer one.
 */
void logger_progress_post(struct logger_progress *p, const struct probe_beat *b);

/* Stops the sender (a beat under way finishes; one still waiting is dropped) and frees p. */
void logger_progress_stop(struct logger_progress *p);

#endif
