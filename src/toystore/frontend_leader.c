/* frontend_leader.c - which order replica leads: health checks, epochs, PUT /leader */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/http_client.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "toystore/toystore.h"

/*
 * A poller thread pings every replica each interval (GET /ping, within ping_timeout). The
 * leader is the live replica with the highest id among those that are caught up ("ready"), or
 * the highest live one when none is. When that differs from the current leader (or the current
 * one stopped answering), it makes a new epoch (one above any epoch a replica reports) and tells
 * every live replica, the new leader last (PUT /leader; the new leader answers once it holds
 * the most up-to-date peer's log). Between the choice and that answer there is no leader:
 * requests wait. A replica whose reported epoch or leader is not the current one, or that is
 * not caught up yet, is told again each round (that is how a returning replica catches up).
 * A request thread whose call to the leader failed asks for a round at once (fe_leader_failed).
 */
struct fe_leader {
    struct ts_replica rep[FE_REPLICAS_MAX]; /* highest id first */
    int n;
    long interval_ms, ping_timeout_ms, call_timeout_ms;
    pthread_mutex_t mu; /* all below */
    pthread_cond_t changed, wake;
    int leader; /* index into rep, -1 none */
    int64_t epoch;
    bool live[FE_REPLICAS_MAX], ready[FE_REPLICAS_MAX];
    uint64_t rounds, elections;
    bool kick, stop;
    pthread_t th;
};

struct seen {
    bool live, ready;
    int64_t epoch;
    long leader;
};

static void deadline_ts(int64_t at_ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(at_ms / 1000);
    ts->tv_nsec = (long)(at_ms % 1000) * 1000000L;
}

static void ping(struct fe_leader *l, int i, struct seen *s)
{
    struct dst_http_client *c = ts_client();
    struct dst_http_resp resp;
    char url[300];
    struct dst_http_call hc = {.url = url, .timeout_ms = l->ping_timeout_ms, .max_body = 65536};

    memset(s, 0, sizeof(*s));
    s->leader = -1;
    snprintf(url, sizeof(url), "%s/ping", l->rep[i].url);
    if (!c || dst_http_client_do(c, &hc, &resp) != 0) {
        if (c)
            dst_http_resp_release(&resp);
        return;
    }
    json_t *j = resp.status == 200 ? dst_json_parse(resp.body, resp.len, NULL, 0) : NULL;
    json_t *d = json_object_get(j, "data");
    if (json_is_object(d) && json_integer_value(json_object_get(d, "id")) == l->rep[i].id) {
        s->live = true;
        s->ready = json_is_true(json_object_get(d, "ready"));
        s->epoch = (int64_t)json_integer_value(json_object_get(d, "epoch"));
        s->leader = json_is_integer(json_object_get(d, "leader"))
                        ? (long)json_integer_value(json_object_get(d, "leader"))
                        : -1;
    }
    json_decref(j);
    dst_http_resp_release(&resp);
}

/* PUT /leader on replica i (live: what this round saw); true when it took it. */
static bool tell(struct fe_leader *l, int i, int64_t epoch, int who, const bool *live)
{
    struct dst_http_client *c = ts_client();
    struct dst_http_resp resp;
    char url[300];
    json_t *reps = json_array();

    for (int k = 0; k < l->n; k++)
        json_array_append_new(reps, json_pack("{s:I,s:s,s:b}", "id", (json_int_t)l->rep[k].id,
                                              "url", l->rep[k].url, "live", live[k]));
    json_t *j = json_pack("{s:I,s:I,s:o}", "epoch", (json_int_t)epoch, "id",
                          (json_int_t)l->rep[who].id, "replicas", reps);
    char *body = dst_json_dumps(j, NULL);
    json_decref(j);
    snprintf(url, sizeof(url), "%s/leader", l->rep[i].url);
    struct dst_http_call hc = {.method = "PUT",
                               .url = url,
                               .body = body,
                               .content_type = "application/json",
                               .timeout_ms = l->call_timeout_ms,
                               .max_body = 65536};
    bool ok = c && dst_http_client_do(c, &hc, &resp) == 0 && resp.status == 200;
    if (c) {
        if (!ok)
            dst_warn("replica %ld did not take epoch %" PRId64 " (leader %ld) yet: %s%s",
                     l->rep[i].id, epoch, l->rep[who].id, resp.status ? "answered " : "",
                     resp.status ? (resp.status == 503 ? "503 (catching up)" : "an error")
                                 : resp.err);
        dst_http_resp_release(&resp);
    }
    free(body);
    return ok;
}

static void set_leader(struct fe_leader *l, int who, int64_t epoch)
{
    pthread_mutex_lock(&l->mu);
    l->leader = who;
    l->epoch = epoch;
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->mu);
}

static void round_once(struct fe_leader *l)
{
    struct seen s[FE_REPLICAS_MAX];
    bool live[FE_REPLICAS_MAX];
    int64_t maxep = 0;

    for (int i = 0; i < l->n; i++) {
        ping(l, i, &s[i]);
        live[i] = s[i].live;
        maxep = s[i].epoch > maxep ? s[i].epoch : maxep;
    }
    pthread_mutex_lock(&l->mu);
    int cur = l->leader;
    int64_t epoch = l->epoch;
    for (int i = 0; i < l->n; i++) {
        l->live[i] = s[i].live;
        l->ready[i] = s[i].ready;
    }
    pthread_mutex_unlock(&l->mu);
    for (int tries = 0; tries < l->n; tries++) {
        int want = -1;
        for (int i = 0; i < l->n && want < 0; i++) /* highest id first */
            if (s[i].live && s[i].ready)
                want = i;
        for (int i = 0; i < l->n && want < 0; i++)
            if (s[i].live)
                want = i;
        if (want >= 0 && want == cur && maxep <= epoch) { /* (a newer epoch: choose again) */
            for (int i = 0; i < l->n; i++) /* a replica that does not know, or is catching up */
                if (s[i].live && i != cur &&
                    (s[i].epoch != epoch || s[i].leader != l->rep[cur].id || !s[i].ready))
                    tell(l, i, epoch, cur, live);
            return;
        }
        set_leader(l, -1, epoch); /* requests wait while it changes */
        if (want < 0)
            return;
        epoch = (epoch > maxep ? epoch : maxep) + 1;
        dst_info("epoch %" PRId64 ": order replica %ld leads", epoch, l->rep[want].id);
        for (int i = 0; i < l->n; i++) /* the old leader steps down before the new one starts */
            if (s[i].live && i != want)
                tell(l, i, epoch, want, live);
        if (tell(l, want, epoch, want, live)) {
            pthread_mutex_lock(&l->mu);
            l->elections++;
            pthread_mutex_unlock(&l->mu);
            set_leader(l, want, epoch);
            return;
        }
        s[want].live = live[want] = false; /* the next one, in this round */
        maxep = epoch;
        cur = -1;
    }
}

static void *poller(void *arg)
{
    struct fe_leader *l = arg;

    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        pthread_mutex_unlock(&l->mu);
        round_once(l);
        pthread_mutex_lock(&l->mu);
        l->rounds++;
        pthread_cond_broadcast(&l->changed);
        struct timespec ts;
        deadline_ts(dst_monotonic_ms() + l->interval_ms, &ts);
        while (!l->stop && !l->kick)
            if (pthread_cond_timedwait(&l->wake, &l->mu, &ts) != 0)
                break;
        l->kick = false;
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

int fe_leader_new(const struct ts_replica *rep, int n, long interval_ms, long ping_timeout_ms,
                  long call_timeout_ms, struct fe_leader **out)
{
    struct fe_leader *l = dst_xnew(struct fe_leader);
    pthread_condattr_t ca;

    l->n = n < FE_REPLICAS_MAX ? n : FE_REPLICAS_MAX;
    memcpy(l->rep, rep, sizeof(rep[0]) * (size_t)l->n);
    l->interval_ms = interval_ms;
    l->ping_timeout_ms = ping_timeout_ms;
    l->call_timeout_ms = call_timeout_ms;
    l->leader = -1;
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->changed, &ca);
    pthread_cond_init(&l->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&l->th, NULL, poller, l) != 0) {
        dst_error("cannot start the replicas' health checks");
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->changed);
        pthread_cond_destroy(&l->wake);
        free(l);
        return DST_EIO;
    }
    *out = l;
    return 0;
}

void fe_leader_free(struct fe_leader *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->wake);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->th, NULL);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->changed);
    pthread_cond_destroy(&l->wake);
    free(l);
}

int fe_leader_get(struct fe_leader *l, int64_t deadline_ms, char *url, size_t len, int64_t *epoch)
{
    struct timespec ts;
    int rc = 0;

    deadline_ts(deadline_ms, &ts);
    pthread_mutex_lock(&l->mu);
    while (l->leader < 0 && !l->stop && rc == 0) {
        l->kick = true;
        pthread_cond_signal(&l->wake);
        rc = pthread_cond_timedwait(&l->changed, &l->mu, &ts);
    }
    if (l->leader >= 0) {
        snprintf(url, len, "%s", l->rep[l->leader].url);
        *epoch = l->epoch;
        rc = 0;
    } else {
        rc = DST_ETIMEDOUT;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void fe_leader_failed(struct fe_leader *l, int64_t epoch, int64_t deadline_ms)
{
    struct timespec ts;
    int64_t until = dst_monotonic_ms() + l->interval_ms;

    deadline_ts(until < deadline_ms ? until : deadline_ms, &ts);
    pthread_mutex_lock(&l->mu);
    uint64_t rounds = l->rounds;
    if (l->epoch == epoch && l->leader >= 0) {
        l->kick = true;
        pthread_cond_signal(&l->wake);
    }
    /* until the choice changes or a round has passed (it may find nothing to change) */
    while (l->epoch == epoch && l->rounds < rounds + 2 && !l->stop)
        if (pthread_cond_timedwait(&l->changed, &l->mu, &ts) != 0)
            break;
    pthread_mutex_unlock(&l->mu);
}

bool fe_leader_wait(struct fe_leader *l, long *leader, int64_t *epoch, int64_t deadline_ms)
{
    struct timespec ts;
    bool changed = false;

    deadline_ts(deadline_ms, &ts);
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < 1000; i++) { /* woken each round: bounded anyway */
        long now = l->leader >= 0 ? l->rep[l->leader].id : -1;
        changed = now != *leader || l->epoch != *epoch;
        *leader = now;
        *epoch = l->epoch;
        if (changed || l->stop || pthread_cond_timedwait(&l->changed, &l->mu, &ts) != 0)
            break;
    }
    pthread_mutex_unlock(&l->mu);
    return changed;
}

json_t *fe_leader_stats(struct fe_leader *l)
{
    json_t *reps = json_array();

    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < l->n; i++)
        json_array_append_new(reps,
                              json_pack("{s:I,s:s,s:b,s:b}", "id", (json_int_t)l->rep[i].id, "url",
                                        l->rep[i].url, "live", l->live[i], "ready", l->ready[i]));
    json_t *j =
        json_pack("{s:o,s:I,s:I,s:o}", "leader",
                  l->leader >= 0 ? json_integer(l->rep[l->leader].id) : json_null(), "epoch",
                  (json_int_t)l->epoch, "elections", (json_int_t)l->elections, "replicas", reps);
    pthread_mutex_unlock(&l->mu);
    return j;
}
