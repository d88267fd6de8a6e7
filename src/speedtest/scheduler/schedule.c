/* schedule.c - the scheduler's loop: cron schedules that publish test requests on the queue */
#include "speedtest/scheduler/schedule.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/queue.h"
#include "core/sig.h"
#include "speedtest/engines/engine.h"

#define PUBLISH_TRIES   12 /* a firing's publish, while the queue is down: a minute */
#define PUBLISH_RETRY_S 5
#define MAX_ENTRIES     64
#define MAX_WAIT_MS     60000 /* wake at least this often to notice a clock set back */
#define CLOCK_BACK_S    5     /* a clock read this much earlier than the last one went back */
#define LIVE_POLL_MS    1000  /* with opts.live: how often sched_run looks for a change */

struct sched {
    struct sched_opts o;
    pthread_mutex_t lock; /* guards everything below */
    struct sched_entry e[MAX_ENTRIES];
    int n;
    bool paused;
    bool changed; /* replaced or paused/resumed since sched_run last looked */
};

struct sched *sched_new(const struct sched_opts *o)
{
    struct sched *s = dst_xnew(struct sched);
    s->o = *o;
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

static void entry_release(struct sched_entry *e)
{
    free(e->spec);
    free(e->expr);
    free(e->target);
    free(e->probe);
}

void sched_free(struct sched *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++)
        entry_release(&s->e[i]);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static int check_probe(const char *v, char *err, size_t errlen)
{
    size_t n = strlen(v);
    bool ok = n >= 1 && n <= 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)v[i]) || v[i] == '.' || v[i] == '_' || v[i] == '-';
    if (!ok)
        snprintf(err, errlen, "probe '%s': 1 to 64 letters, digits, '.', '_' or '-'", v);
    return ok ? 0 : DST_EINVAL;
}

/* Splits spec at blanks: the offset and length of up to 8 words; returns the count. */
static int words(const char *spec, size_t off[8], size_t len[8])
{
    int n = 0;
    size_t i = 0;

    while (spec[i]) {
        i += strspn(spec + i, " \t");
        if (!spec[i])
            break;
        size_t l = strcspn(spec + i, " \t");
        if (n < 8) {
            off[n] = i;
            len[n] = l;
        }
        n++;
        i += l;
    }
    return n;
}

/* Parses spec's words after the cron expression (target, probe) into e. */
static int parse_rest(struct sched_entry *e, const char *spec, int n, const size_t off[8],
                      const size_t len[8], int first, char *err, size_t errlen)
{
    int rc = 0;

    if (n - first > 2) {
        snprintf(err, errlen, "too many words (expected CRON [TARGET [PROBE]])");
        return DST_EINVAL;
    }
    if (n > first) {
        e->target = dst_xstrndup(spec + off[first], len[first]);
        rc = engine_check_target(e->target, err, errlen);
    }
    if (rc == 0 && n > first + 1) {
        e->probe = dst_xstrndup(spec + off[first + 1], len[first + 1]);
        rc = check_probe(e->probe, err, errlen);
    }
    return rc;
}

/* Parses "CRON [TARGET [PROBE]]" into e (reason in why); e's strings are freed by the caller. */
static int parse_spec(struct sched_entry *e, const char *spec, char *why, size_t whylen)
{
    size_t off[8], len[8];
    int n = words(spec, off, len);
    int cron_words = n > 0 && spec[off[0]] == '@' ? 1 : 5;
    int64_t t;

    if (n < cron_words) /* too short: let the cron parser say what is missing */
        return dst_cron_parse(spec, &e->cron, why, whylen);
    e->expr = dst_xstrndup(spec + off[0], off[cron_words - 1] + len[cron_words - 1] - off[0]);
    int rc = dst_cron_parse(e->expr, &e->cron, why, whylen);
    rc = rc ? rc : parse_rest(e, spec, n < 8 ? n : 8, off, len, cron_words, why, whylen);
    if (rc == 0 && dst_cron_next(&e->cron, dst_datetime_now_ms() / 1000, &t) != 0) {
        snprintf(why, whylen, "never fires (no such date in the next 8 years)");
        rc = DST_EINVAL;
    }
    return rc;
}

int sched_add(struct sched *s, const char *spec, char *err, size_t errlen)
{
    struct sched_entry e = {0};
    char why[256] = "";

    if (s->n == MAX_ENTRIES) {
        snprintf(err, errlen, "more than %d schedules", MAX_ENTRIES);
        return DST_EINVAL;
    }
    int rc = parse_spec(&e, spec, why, sizeof(why));
    if (rc) {
        snprintf(err, errlen, "'%s': %s", spec, why);
        entry_release(&e);
        return rc;
    }
    e.spec = dst_xstrdup(spec);
    s->e[s->n++] = e;
    return 0;
}

/* "CRON [TARGET] [probe=PROBE]", for the logs. */
static char *parts_spec(const char *cron, const char *target, const char *probe)
{
    size_t n = strlen(cron) + (target ? strlen(target) : 0) + (probe ? strlen(probe) : 0) + 16;
    char *spec = dst_xmalloc(n);
    snprintf(spec, n, "%s%s%s%s%s", cron, target ? " " : "", target ? target : "",
             probe ? " probe=" : "", probe ? probe : "");
    return spec;
}

int sched_add_parts(struct sched *s, const char *cron, const char *target, const char *probe,
                    char *err, size_t errlen)
{
    struct sched_entry e = {0};
    char why[256] = "";
    const char *part = "cron: ";
    int64_t t;

    if (s->n == MAX_ENTRIES) {
        snprintf(err, errlen, "more than %d schedules", MAX_ENTRIES);
        return DST_EINVAL;
    }
    int rc = dst_cron_parse(cron ? cron : "", &e.cron, why, sizeof(why));
    if (rc == 0 && dst_cron_next(&e.cron, dst_datetime_now_ms() / 1000, &t) != 0) {
        snprintf(why, sizeof(why), "never fires (no such date in the next 8 years)");
        rc = DST_EINVAL;
    }
    if (rc == 0 && target) {
        part = "target: ";
        rc = engine_check_target(target, why, sizeof(why));
    }
    if (rc == 0 && probe) {
        part = ""; /* check_probe names it */
        rc = check_probe(probe, why, sizeof(why));
    }
    if (rc) {
        snprintf(err, errlen, "%s%s", part, why);
        return rc;
    }
    e.expr = dst_xstrdup(cron);
    e.target = target ? dst_xstrdup(target) : NULL;
    e.probe = probe ? dst_xstrdup(probe) : NULL;
    e.spec = parts_spec(cron, target, probe);
    s->e[s->n++] = e;
    return 0;
}

int sched_count(const struct sched *s)
{
    return s->n;
}

const struct sched_entry *sched_entry(const struct sched *s, int i)
{
    return i >= 0 && i < s->n ? &s->e[i] : NULL;
}

static long jitter(const struct sched *s)
{
    uint32_t r = 0;
    if (s->o.jitter_s <= 0)
        return 0;
    if (getrandom(&r, sizeof(r), 0) != sizeof(r))
        r = (uint32_t)rand(); /* never in practice: getrandom on a booted system */
    return (long)(r % (uint32_t)(s->o.jitter_s + 1));
}

static void plan_entry(struct sched *s, struct sched_entry *e, int64_t after_s)
{
    if (dst_cron_next(&e->cron, after_s, &e->cron_s) != 0) {
        if (e->due_s != 0 || e->cron_s != 0)
            dst_warn("schedule '%s' never fires again", e->spec);
        e->cron_s = e->due_s = 0;
        return;
    }
    e->due_s = e->cron_s + jitter(s);
}

/* Plans every schedule after now_s; called with the lock held. */
static void plan_all(struct sched *s, int64_t now_s)
{
    for (int i = 0; i < s->n; i++)
        plan_entry(s, &s->e[i], now_s);
}

void sched_plan(struct sched *s, int64_t now_s)
{
    pthread_mutex_lock(&s->lock);
    plan_all(s, now_s);
    pthread_mutex_unlock(&s->lock);
}

void sched_replace_take(struct sched *s, struct sched *from)
{
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n; i++)
        entry_release(&s->e[i]);
    memcpy(s->e, from->e, (size_t)from->n * sizeof(from->e[0]));
    s->n = from->n;
    from->n = 0;
    plan_all(s, dst_datetime_now_ms() / 1000);
    s->changed = true;
    pthread_mutex_unlock(&s->lock);
    sched_free(from);
}

void sched_set_paused(struct sched *s, bool paused)
{
    pthread_mutex_lock(&s->lock);
    if (paused != s->paused) {
        s->paused = paused;
        if (!paused)
            plan_all(s, dst_datetime_now_ms() / 1000);
        s->changed = true;
    }
    pthread_mutex_unlock(&s->lock);
}

bool sched_paused(struct sched *s)
{
    pthread_mutex_lock(&s->lock);
    bool p = s->paused;
    pthread_mutex_unlock(&s->lock);
    return p;
}

/* True once after each change (for sched_run). */
static bool take_changed(struct sched *s)
{
    pthread_mutex_lock(&s->lock);
    bool c = s->changed;
    s->changed = false;
    pthread_mutex_unlock(&s->lock);
    return c;
}

/* The earliest due time; called with the lock held. */
static int64_t next_locked(const struct sched *s)
{
    int64_t best = -1;
    for (int i = 0; i < s->n && !s->paused; i++) {
        if (s->e[i].due_s > 0 && (best < 0 || s->e[i].due_s < best))
            best = s->e[i].due_s;
    }
    return best;
}

int64_t sched_next(struct sched *s)
{
    pthread_mutex_lock(&s->lock);
    int64_t next = next_locked(s);
    pthread_mutex_unlock(&s->lock);
    return next;
}

bool sched_enabled(const struct sched *s)
{
    return !s->o.enable_file || !*s->o.enable_file || access(s->o.enable_file, F_OK) == 0;
}

int sched_publish(struct dst_queue *q, const char *target, const char *probe,
                  char rid[DST_UUID_LEN + 1])
{
    char id[DST_UUID_LEN + 1];

    dst_uuid_new(id);
    json_t *m = json_pack("{s:s, s:I, s:s}", "request_id", id, "requested_at",
                          (json_int_t)dst_datetime_now_ms(), "source", "scheduler");
    dst_json_set_str(m, "target", target);
    dst_json_set_str(m, "probe", probe);
    int rc = dst_queue_publish(q, SCHED_TOPIC, m, NULL);
    json_decref(m);
    if (rc == 0 && rid)
        memcpy(rid, id, sizeof(id));
    return rc;
}

/* Fires one due schedule: publishes (or logs the skip); 1 if published, 0, or an error. */
static int fire_one(struct sched *s, struct dst_queue *q, const struct sched_entry *e)
{
    char rid[DST_UUID_LEN + 1];

    if (!sched_enabled(s)) {
        dst_info("schedule '%s': skipped: enable file %s is absent", e->spec, s->o.enable_file);
        return 0;
    }
    int rc = sched_publish(q, e->target, e->probe, rid);
    if (rc) {
        dst_error("schedule '%s': cannot publish the request: %s", e->spec, dst_strerror(rc));
        return rc;
    }
    dst_info("schedule '%s': published request %s (%s%s, %s%s)", e->spec, rid,
             e->target ? "target " : "the probe's default target", e->target ? e->target : "",
             e->probe ? "probe " : "every probe", e->probe ? e->probe : "");
    return 1;
}

int sched_fire(struct sched *s, struct dst_queue *q, int64_t now_s)
{
    int published = 0, err = 0;

    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n; i++) {
        struct sched_entry *e = &s->e[i];
        if (e->due_s <= 0 || e->due_s > now_s)
            continue;
        int rc = s->paused ? 0 : fire_one(s, q, e);
        if (rc < 0 && err == 0)
            err = rc;
        published += rc > 0;
        if (rc == DST_EDEP && ++e->tries < PUBLISH_TRIES) { /* the queue is down: again soon */
            e->due_s = now_s + PUBLISH_RETRY_S;
            continue;
        }
        if (rc == DST_EDEP)
            dst_error("schedule '%s': gave up on this firing after %d tries", e->spec, e->tries);
        e->tries = 0;
        plan_entry(s, e, now_s); /* after now: a late firing is one firing */
    }
    pthread_mutex_unlock(&s->lock);
    return err ? err : published;
}

static void log_next(struct sched *s)
{
    char ts[DST_DATETIME_LEN];
    int64_t next = sched_next(s);

    if (next < 0 && sched_paused(s)) {
        dst_info("schedules paused: no run planned");
        return;
    }
    if (next < 0) {
        dst_warn("no schedule will fire again");
        return;
    }
    dst_datetime_format_local(next * 1000, ts);
    dst_info("next run at %s", ts);
}

int sched_run(struct sched *s, struct dst_queue *q)
{
    int64_t now_ms = dst_datetime_now_ms(), last_ms = now_ms;

    int64_t max_wait = s->o.live ? LIVE_POLL_MS : MAX_WAIT_MS;

    pthread_mutex_lock(&s->lock);
    plan_all(s, now_ms / 1000);
    for (int i = 0; i < s->n && s->o.fire_at_start; i++)
        s->e[i].due_s = s->e[i].due_s > 0 ? now_ms / 1000 : 0;
    s->changed = false;
    pthread_mutex_unlock(&s->lock);
    log_next(s);
    while (!dst_sig_stopping()) {
        int64_t next = sched_next(s), wait = next < 0 ? max_wait : next * 1000 - now_ms;
        if (dst_sig_wait((int)(wait < 0 ? 0 : wait > max_wait ? max_wait : wait)))
            break;
        now_ms = dst_datetime_now_ms();
        if (now_ms < last_ms - CLOCK_BACK_S * 1000) {
            dst_warn("the clock went back; planning the schedules again");
            sched_plan(s, now_ms / 1000);
            log_next(s);
        } else if (take_changed(s)) {
            log_next(s); /* replaced, paused or resumed: already planned */
        }
        last_ms = now_ms;
        next = sched_next(s);
        if (next >= 0 && next <= now_ms / 1000) {
            sched_fire(s, q, now_ms / 1000);
            log_next(s);
        }
    }
    return 0;
}

void sched_follow_doc(struct sched *s, const json_t *doc)
{
    struct sched_opts so = {0};
    struct sched *from = sched_new(&so);
    bool paused = json_is_true(json_object_get(doc, "paused"));
    json_t *item;
    size_t i;
    char err[512];

    json_array_foreach(json_object_get(doc, "schedules"), i, item)
    {
        if (json_is_false(json_object_get(item, "enabled")))
            continue;
        if (sched_add_parts(from, json_string_value(json_object_get(item, "cron")),
                            json_string_value(json_object_get(item, "target")),
                            json_string_value(json_object_get(item, "probe")), err,
                            sizeof(err)) != 0)
            dst_warn("schedules[%zu]: %s: skipped", i, err);
    }
    dst_info("schedules: %d enabled%s", sched_count(from), paused ? ", paused" : "");
    if (paused)
        sched_set_paused(s, true); /* before the new ones are planned: none fires */
    sched_replace_take(s, from);
    if (!paused)
        sched_set_paused(s, false);
}
