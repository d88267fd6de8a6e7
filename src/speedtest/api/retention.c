/* retention.c - the API's background thread: rolls changed buckets up, prunes by retention */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store.h"
#include "speedtest/api/api_priv.h"

#define ROLL_DAYS    64    /* (probe, day)s per dst_store_roll call */
#define BACKLOG_DAYS 256   /* a pass that rolled this many analyzes the store after */
#define PASS_ROUNDS  10000 /* bound on the calls of one pass, each one short transaction */

struct api_retention {
    struct api *a;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    _Atomic bool stop; /* read by the pass between its short transactions */
    int64_t backlog;   /* (probe, day)s rolled since the store was last analyzed */
};

int api_parse_duration(const char *s, int64_t *ms)
{
    static const struct {
        char unit;
        int64_t ms;
    } units[] = {{'s', 1000}, {'m', 60000}, {'h', 3600000}, {'d', 86400000}, {'w', 604800000}};
    char *end = NULL;

    if (!s || strcmp(s, "0") == 0) {
        *ms = 0;
        return s ? 0 : DST_EINVAL;
    }
    if (*s < '0' || *s > '9')
        return DST_EINVAL;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno || n <= 0 || n > 100000 || end[0] == '\0' || end[1] != '\0')
        return DST_EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (units[i].unit == end[0]) {
            *ms = n * units[i].ms;
            return 0;
        }
    }
    return DST_EINVAL;
}

int api_retention_cfg_apply(const struct api_retention_cfg *c, struct api_opts *ao, char *err,
                            size_t errlen)
{
    int64_t raw = 0, rollups = 0;

    if (api_parse_duration(c->raw, &raw) || api_parse_duration(c->rollups, &rollups))
        return snprintf(err, errlen, "not a duration"), DST_EINVAL;
    if (rollups > 0 && (raw == 0 || rollups < raw))
        return snprintf(err, errlen,
                        "--retention-rollups must be 0 (forever) or at least --retention-raw "
                        "(the series of a range answers from its raw rows or its rollups)"),
               DST_EINVAL;
    ao->retention_raw_ms = raw;
    ao->retention_rollups_ms = rollups;
    ao->retention_interval_ms = (int64_t)c->interval * 1000;
    return 0;
}

int api_check_duration(const char *v, char *err, size_t errlen)
{
    int64_t ms = 0;
    if (api_parse_duration(v, &ms) == 0)
        return 0;
    snprintf(err, errlen, "'%s' is not a duration (0, or a number with s, m, h, d or w: 90d)", v);
    return DST_EINVAL;
}

/* Rolls every changed (probe, day) up; false if the store failed (logged by it). */
static bool roll(struct api_retention *r)
{
    int64_t rolled = 0, total = 0;
    bool more = true;
    int rc = 0;

    for (int i = 0; rc == 0 && more && i < PASS_ROUNDS && !r->stop; i++) {
        rc = dst_store_roll(r->a->store, ROLL_DAYS, &rolled, &more);
        total += rolled;
    }
    if (total)
        dst_metrics_add(r->a->metrics, "dstmc_rollup_days_rolled_total", "", (double)total);
    if (total)
        dst_debug("retention: rolled %" PRId64 " (probe, day)s up", total);
    /* a backlog rolled (a migration, a copy, an import) and caught up: tell the planner, and
       clear the dead marks */
    r->backlog += total;
    if (rc == 0 && !more && r->backlog >= BACKLOG_DAYS) {
        rc = dst_store_analyze(r->a->store);
        if (rc == 0)
            dst_info("retention: rolled a backlog of %" PRId64 " (probe, day)s; store analyzed",
                     r->backlog);
        r->backlog = 0;
    }
    return rc == 0;
}

/* Prunes the raw days and the rollups past their retention, and says what went. */
static void prune(struct api_retention *r, int64_t now)
{
    const struct api_opts *o = &r->a->opts;
    int64_t pruned = 0, rows = 0, days = 0, rollups = 0;
    bool more = o->retention_raw_ms > 0;
    int rc = 0;

    for (int i = 0; rc == 0 && more && i < PASS_ROUNDS && !r->stop; i++) {
        rc = dst_store_prune_raw(r->a->store, now - o->retention_raw_ms, &pruned, &more);
        rows += pruned;
        days += rc == 0 && more;
    }
    if (rc == 0 && o->retention_rollups_ms > 0)
        rc = dst_store_prune_rollups(r->a->store, now - o->retention_rollups_ms, &rollups);
    if (rows)
        dst_metrics_add(r->a->metrics, "dstmc_retention_raw_pruned_total", "", (double)rows);
    if (rollups)
        dst_metrics_add(r->a->metrics, "dstmc_retention_rollups_pruned_total", "", (double)rollups);
    if (rows || rollups)
        dst_info("retention: pruned %" PRId64 " raw results (%" PRId64 " days, their rollups kept)"
                 " and %" PRId64 " rollups",
                 rows, days, rollups);
}

static void *retention_main(void *arg)
{
    struct api_retention *r = arg;
    struct timespec ts;

    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        pthread_mutex_unlock(&r->lock);
        if (roll(r))
            prune(r, dst_datetime_now_ms());
        dst_metrics_add(r->a->metrics, "dstmc_retention_passes_total", "", 1);
        pthread_mutex_lock(&r->lock);
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (r->a->opts.retention_interval_ms % 1000) * 1000000;
        ts.tv_sec += r->a->opts.retention_interval_ms / 1000 + ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        while (!r->stop && pthread_cond_timedwait(&r->wake, &r->lock, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

int api_retention_start(struct api *a)
{
    struct api_retention *r = NULL;

    if (a->opts.retention_interval_ms <= 0)
        return 0;
    r = dst_xnew(struct api_retention);
    r->a = a;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    if (pthread_create(&r->thread, NULL, retention_main, r) != 0) {
        dst_error("retention: cannot start its thread");
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->wake);
        free(r);
        return DST_ENOMEM;
    }
    a->retention = r;
    return 0;
}

void api_retention_stop(struct api *a)
{
    struct api_retention *r = a ? a->retention : NULL;

    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stop = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    free(r);
    a->retention = NULL;
}
