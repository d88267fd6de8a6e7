/* schedule.h - the scheduler's loop: cron schedules that publish test requests on the queue */
#ifndef DST_SPEEDTEST_SCHEDULE_H
#define DST_SPEEDTEST_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/cron.h"
#include "core/uuid.h"

struct dst_queue;

#define SCHED_TOPIC "speedtest.requests" /* API_REQUESTS_TOPIC of the API, read by the probes */

/* One schedule: "CRON [TARGET [PROBE]]". */
struct sched_entry {
    char *spec; /* the text it came from */
    char *expr; /* its cron expression alone */
    struct dst_cron cron;
    char *target, *probe; /* NULL: the probe's own default / every probe */
    int64_t cron_s;       /* the next cron time (Unix seconds), 0 before sched_plan */
    int64_t due_s;        /* cron_s plus this firing's random jitter */
    int tries;            /* failed publishes of this firing so far (queue down) */
};

struct sched_opts {
    long jitter_s;           /* each firing starts at a random 0..jitter_s after its cron time */
    const char *enable_file; /* fire only while this file exists; NULL: always */
    bool fire_at_start;      /* sched_run fires every schedule once right away, then on time */
    bool live; /* schedules may change while sched_run runs: it looks for a change every second */
};

struct sched;

/*
 * A scheduler without schedules; the options' strings are borrowed. It publishes on the queue
 * given to sched_fire and sched_run. sched_plan, sched_next, sched_fire, sched_replace_take and
 * sched_set_paused may be called from any thread while sched_run runs; sched_add, sched_count
 * and sched_entry only on a scheduler no other thread uses yet.
 */
struct sched *sched_new(const struct sched_opts *o);
void sched_free(struct sched *s);

/*
 * Adds the schedule spec, "CRON", "CRON TARGET" or "CRON TARGET PROBE" (CRON is five fields or
 * one macro, see core/cron.h). The target is checked with engine_check_target, the probe name
 * is 1 to 64 letters, digits, '.', '_' or '-'. DST_EINVAL with a reason in err.
 */
int sched_add(struct sched *s, const char *spec, char *err, size_t errlen);

/*
 * Adds one schedule from its parts: cron (five fields or a macro), target (NULL: the probe's
 * default; checked with engine_check_target) and probe (NULL: every probe; as in sched_add).
 * DST_EINVAL with a reason in err naming the part ("cron: minute: '61' is out of 0-59",
 * "target: ...", "probe: ..."), or a never-firing cron ("cron: never fires ...").
 */
int sched_add_parts(struct sched *s, const char *cron, const char *target, const char *probe,
                    char *err, size_t errlen);

/*
 * Replaces s's schedules by from's (from is freed) and plans them after now; with opts.live,
 * a running sched_run logs the new "next run at" within a second.
 */
void sched_replace_take(struct sched *s, struct sched *from);

/*
 * While paused nothing fires and sched_next is -1; resuming plans every schedule after now
 * (the firings missed while paused are not made up).
 */
void sched_set_paused(struct sched *s, bool paused);

/*
 * Follows a schedules document of the API ({"paused", "schedules": [{"cron", "target",
 * "probe", "enabled"}, ...]}, borrowed): s takes its enabled schedules (one that does not pass
 * sched_add_parts is skipped with a warning) and its pause.
 */
void sched_follow_doc(struct sched *s, const json_t *doc);
bool sched_paused(struct sched *s);

int sched_count(const struct sched *s);
const struct sched_entry *sched_entry(const struct sched *s, int i); /* borrowed */

/*
 * (Re)computes every schedule's next firing after now_s (and its jitter). A schedule that
 * never fires again (DST_ENOTFOUND from cron) gets due_s 0 and is logged once.
 */
void sched_plan(struct sched *s, int64_t now_s);

/* The earliest due_s of all schedules, or -1 if none will fire (or paused). */
int64_t sched_next(struct sched *s);

/*
 * Fires every schedule due at now_s (due_s <= now_s): publishes one request each on q (or, with an
 * enable file that is absent, logs that the firing was skipped), then plans it after now_s: a
 * firing that comes late (suspend, clock jump) publishes once, never a burst. Logs one info
 * line per request. A publish the queue refuses (DST_EDEP: it is down) is tried again every
 * 5 s, up to 12 times, before the firing is given up. Returns the number of requests
 * published, or the first publish error (the other schedules are still fired and planned).
 */
int sched_fire(struct sched *s, struct dst_queue *q, int64_t now_s);

/* True if there is no enable file or it exists now. */
bool sched_enabled(const struct sched *s);

/*
 * Publishes one request {"request_id", "requested_at", "source": "scheduler", "target"?,
 * "probe"?} on SCHED_TOPIC (the shape of the API's run-now); its id goes to rid (may be NULL).
 */
int sched_publish(struct dst_queue *q, const char *target, const char *probe,
                  char rid[DST_UUID_LEN + 1]);

/*
 * Runs until a stop is requested (dst_sig_wait): sleeps until the next firing (at most a
 * minute at a time, so a clock set back is noticed and the plan redone), fires, and logs
 * "next run at <ISO local time>" (or "schedules paused"); with opts.live, does the same within
 * a second of a sched_replace_take or sched_set_paused. Blocking; returns 0.
 */
int sched_run(struct sched *s, struct dst_queue *q);

#endif
