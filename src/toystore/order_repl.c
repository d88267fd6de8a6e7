/* order_repl.c - order replication: the leader's push, catch-up, a new leader's takeover */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/http_client.h"
#include "core/http_server.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "toystore/order.h"

/*
 * The protocol (docs/toystore.md, "Replication"). The front end picks the leader and numbers
 * each choice (the epoch); it tells every replica with PUT /leader. A replica takes buys only
 * as the leader of the newest epoch it knows, once caught up. With each group-commit batch it
 * writes, the leader POSTs the batch to every follower it does not believe dead
 * (/replicate, with its epoch); a follower fdatasyncs it before it answers, so a buy is answered
 * only once every live follower has it. The leader's own write of the batch runs meanwhile
 * (order_log.c's syncer). A follower of a newer epoch refuses (409): the batch's
 * buys then fail (503) and the front end retries them on the new leader under the same request
 * ids. A follower that lacks orders before the batch answers with where its log ends and gets
 * them; one whose tail differs (orders a dead leader wrote and never propagated, so never
 * acknowledged) has that tail replaced by the leader's lines.
 *
 * Catch-up: a replica that (re)starts is not ready: it may not lead, and takes a push only when
 * the push starts WINDOW lines before its own end (it answers with where to send from). Told of
 * a leader, it reads the leader's log from WINDOW lines before its own end (GET /orders?from=N)
 * and makes its log the leader's; the leader's next push does the same. A replica told that it leads first takes the log of the most
 * up-to-date live peer, when one is ahead of it: the highest epoch it synced with, then the
 * longest log (every acknowledged order is on each follower the old leader believed live).
 */
#define PAGE_LINES    4096 /* orders per GET /orders?from= page and per resend */
#define WINDOW        8192 /* orders before its end a catching-up replica compares */
#define DEAD_MS       1000 /* a follower that failed a push is skipped for this long */
#define MAX_REPL_BODY (4u << 20)
#define NUDGE_MS      300                /* how often a leader looks for followers left behind */
#define EPOCH_MAX     (INT64_C(1) << 53) /* epochs count far below any overflow */

/* Under o->rmu: whether this replica may take buys (order.h). */
static bool leads(const struct order *o)
{
    if (o->epoch == 0)
        return o->npeers == 0;
    return o->leader == o->id && o->ready && o->synced == o->epoch;
}

bool order_repl_may_serve(struct order *o, const char *epoch, bool buy, long *leader)
{
    char *end = NULL;
    long long e = epoch ? strtoll(epoch, &end, 10) : -1;

    pthread_mutex_lock(&o->rmu);
    bool ok = epoch ? end != epoch && !*end && e == o->epoch && leads(o) : !buy || leads(o);
    *leader = o->leader;
    pthread_mutex_unlock(&o->rmu);
    return ok;
}

/* A JSON call to a peer: 0 and *status, *data (the "data" member, or NULL; the caller's). */
static int call(const char *method, const char *url, json_t *body, long timeout_ms, long *status,
                json_t **data)
{
    struct dst_http_client *c = ts_client();
    struct dst_http_resp resp;
    char *text = body ? dst_json_dumps(body, NULL) : NULL;
    struct dst_http_call hc = {.method = method,
                               .url = url,
                               .body = text,
                               .content_type = text ? "application/json" : NULL,
                               .timeout_ms = timeout_ms,
                               .max_body = 2 * MAX_REPL_BODY};

    *data = NULL;
    *status = 0;
    if (!c) {
        free(text);
        return DST_EDEP;
    }
    int rc = dst_http_client_do(c, &hc, &resp);
    free(text);
    if (rc == 0) {
        *status = resp.status;
        json_t *j = dst_json_parse(resp.body, resp.len, NULL, 0);
        if (j && json_is_object(json_object_get(j, "data")))
            *data = json_incref(json_object_get(j, "data"));
        json_decref(j);
    } else {
        dst_warn("%s %s: %s", method, url, resp.err);
    }
    dst_http_resp_release(&resp);
    return rc;
}

static int64_t int_of(const json_t *obj, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(obj, key);

    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

/* Lines "N,NAME,QTY,ID\n"… numbered first, first + 1…; *recs malloc'd. DST_EINVAL. */
static int parse_lines(const char *text, size_t len, int64_t first, struct order_rec **recs, int *n)
{
    int cap = 0;

    *recs = NULL;
    *n = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        if (!nl)
            goto bad;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            *recs = dst_xrealloc(*recs, (size_t)cap * sizeof(**recs));
        }
        struct order_rec *r = &(*recs)[*n];
        if (order_log_parse_line(text + at, (size_t)(nl - text - at), r, NULL, 0) != 0 ||
            r->number != first + *n)
            goto bad;
        (*n)++;
        at = (size_t)(nl - text) + 1;
    }
    return 0;
bad:
    free(*recs);
    *recs = NULL;
    *n = 0;
    return DST_EINVAL;
}

/* ---- the leader ---- */

/* The lines of buf[0..len) after its first skip ones into *out, *olen; DST_EINVAL. */
static int batch_from(const char *buf, size_t len, int64_t skip, const char **out, size_t *olen)
{
    for (int64_t k = 0; k < skip; k++) {
        const char *nl = memchr(buf, '\n', len);
        if (!nl)
            return DST_EINVAL;
        len -= (size_t)(nl + 1 - buf);
        buf = nl + 1;
    }
    *out = buf;
    *olen = len;
    return 0;
}

/*
 * Sends orders [first, upto) to one follower (from earlier, as far back as it asks: a follower
 * that lacks orders or catches up); 0, DST_ECONFLICT (it knows a newer epoch), DST_EBUSY (it
 * answered 503: it cannot write its log now; it does not count, and is not left out), DST_EDEP.
 */
static int push_one(struct order *o, const char *url, int64_t epoch, int64_t first, const char *buf,
                    size_t len, int64_t upto)
{
    char target[300], *own = NULL;
    const char *bbuf = buf;
    size_t blen = len;
    int64_t bfirst = first;
    int rc = DST_EDEP;

    snprintf(target, sizeof(target), "%s/replicate", url);
    for (int round = 0; round < 1000; round++) {
        json_t *body = json_pack("{s:I,s:I,s:I,s:I,s:s%}", "epoch", (json_int_t)epoch, "leader",
                                 (json_int_t)o->id, "first", (json_int_t)first, "end",
                                 (json_int_t)upto, "lines", buf, len);
        json_t *data = NULL;
        long status = 0;
        int crc = body ? call("POST", target, body, o->peer_timeout_ms, &status, &data) : DST_EDEP;
        json_decref(body);
        int64_t next = int_of(data, "next", -1);
        json_decref(data);
        if (crc == 0 && status == 409) {
            rc = DST_ECONFLICT;
            break;
        }
        if (crc == 0 && status == 503) {
            rc = DST_EBUSY;
            break;
        }
        if (crc != 0 || status != 200 || next < 0 || next > upto)
            break;
        if (next == upto) {
            rc = 0;
            break;
        }
        /* the follower's log ends at next: send from there (the batch may not be on disk yet) */
        int64_t lnext = 0;
        free(own);
        own = NULL;
        if (next >= bfirst) {
            if (batch_from(bbuf, blen, next - bfirst, &buf, &len) != 0)
                break;
        } else if (order_log_read(o->log, next, PAGE_LINES, &own, &len, &lnext) != 0) {
            break;
        } else {
            buf = own;
        }
        first = next;
    }
    free(own);
    return rc;
}

/* One follower's part of a batch (push_one's arguments and outcome), for order_push_run. */
struct push_arg {
    struct order *o;
    const char *url;
    int64_t epoch, first, upto;
    const char *buf;
    size_t len;
};

static int push_job(void *arg)
{
    struct push_arg *a = arg;

    return push_one(a->o, a->url, a->epoch, a->first, a->buf, a->len, a->upto);
}

/*
 * The log's hook: a batch is being written to the leader's disk; it answers once every live
 * follower has it. The followers are sent it at the same time (order_push.c).
 */
static int push(void *ud, int64_t first, const char *buf, size_t len, int64_t upto)
{
    struct order *o = ud;
    struct order_peer peers[ORDER_PEERS_MAX];
    struct push_arg args[ORDER_PEERS_MAX];
    struct order_push_job jobs[ORDER_PEERS_MAX];
    bool stale = false;
    int njobs = 0;

    pthread_mutex_lock(&o->rmu);
    bool lead = leads(o);
    int64_t epoch = o->epoch;
    int n = o->npeers;
    memcpy(peers, o->peers, sizeof(peers[0]) * (size_t)n);
    pthread_mutex_unlock(&o->rmu);
    if (!lead)
        return DST_ECONFLICT; /* deposed while the batch was written */
    int64_t now = dst_monotonic_ms();
    for (int i = 0; i < n; i++) {
        if (!peers[i].r.url[0] || peers[i].retry_at > now || (!len && !peers[i].behind))
            continue;
        args[njobs] = (struct push_arg){o, peers[i].r.url, epoch, first, upto, buf, len};
        jobs[njobs] = (struct order_push_job){.slot = i, .fn = push_job, .arg = &args[njobs]};
        njobs++;
    }
    order_push_run(o->push, jobs, njobs);
    for (int k = 0; k < njobs; k++) {
        int i = jobs[k].slot, rc = jobs[k].rc;
        pthread_mutex_lock(&o->rmu);
        o->peers[i].behind = rc != 0;
        pthread_mutex_unlock(&o->rmu);
        if (rc == DST_ECONFLICT) {
            stale = true;
        } else if (rc && rc != DST_EBUSY) {
            if (len)
                dst_warn("replica %ld did not take orders %" PRId64 "..%" PRId64
                         ": it is left out for %d ms",
                         peers[i].r.id, first, upto - 1, DEAD_MS);
            else
                dst_warn("replica %ld did not answer: it is left out for %d ms", peers[i].r.id,
                         DEAD_MS);
            pthread_mutex_lock(&o->rmu);
            o->peers[i].retry_at = dst_monotonic_ms() + DEAD_MS;
            pthread_mutex_unlock(&o->rmu);
        }
    }
    pthread_mutex_lock(&o->rmu);
    stale = stale || !leads(o) || o->epoch != epoch;
    pthread_mutex_unlock(&o->rmu);
    if (stale && len)
        dst_warn("orders %" PRId64 "..%" PRId64 " not acknowledged: a newer leader exists", first,
                 upto - 1);
    return stale ? DST_ECONFLICT : 0;
}

/* ---- catching up ---- */

/*
 * Makes this log the one at url (from WINDOW orders before its end on). need_synced > 0: the
 * peer must have taken over that epoch (a follower reads only its leader's finished log).
 * Under o->sync_mu.
 */
static int pull(struct order *o, const char *url, int64_t need_synced)
{
    int64_t mine = order_log_next(o->log);
    int64_t from = mine > WINDOW ? mine - WINDOW : 0;
    char target[320];

    for (int page = 0; page < 1000000; page++) {
        json_t *data = NULL;
        long status = 0;
        snprintf(target, sizeof(target), "%s/orders?from=%" PRId64, url, from);
        if (call("GET", target, NULL, o->timeout_ms, &status, &data) != 0 || status != 200) {
            json_decref(data);
            return DST_EDEP;
        }
        int64_t first = int_of(data, "first", -1), next = int_of(data, "next", -1);
        const char *text = json_string_value(json_object_get(data, "lines"));
        if (need_synced > 0 && int_of(data, "synced", 0) != need_synced) {
            json_decref(data);
            return DST_EBUSY; /* the leader has not taken over yet */
        }
        if (first != from || next < 0 || !text) {
            json_decref(data);
            return DST_EDEP;
        }
        if (next < from) { /* the peer's log is shorter than our window: compare from earlier */
            json_decref(data);
            from = next > WINDOW ? next - WINDOW : 0;
            continue;
        }
        struct order_rec *recs = NULL;
        int n = 0;
        int rc = parse_lines(text, strlen(text), first, &recs, &n);
        json_decref(data);
        bool last = first + n >= next;
        if (rc == 0)
            rc = order_log_sync(o->log, first, recs, n, last ? next : -1);
        free(recs);
        if (rc || last)
            return rc;
        from = first + n;
    }
    return DST_EDEP;
}

/*
 * This replica leads epoch: takes the most up-to-date peer's log when it is ahead. Every peer
 * the front end saw live must answer (one that does not may hold acknowledged orders).
 */
static int takeover(struct order *o, int64_t epoch)
{
    struct order_peer peers[ORDER_PEERS_MAX];
    char target[300];
    const char *best = NULL;

    pthread_mutex_lock(&o->rmu);
    int64_t bsynced = o->synced, bnext = order_log_next(o->log);
    int n = o->npeers;
    memcpy(peers, o->peers, sizeof(peers[0]) * (size_t)n);
    pthread_mutex_unlock(&o->rmu);
    for (int i = 0; i < n; i++) {
        json_t *data = NULL;
        long status = 0;
        if (!peers[i].r.url[0])
            continue;
        snprintf(target, sizeof(target), "%s/ping", peers[i].r.url);
        if (call("GET", target, NULL, o->peer_timeout_ms, &status, &data) == 0 && status == 200) {
            int64_t s = int_of(data, "synced", 0), nx = int_of(data, "next_order", 0);
            if (s > bsynced || (s == bsynced && nx > bnext)) {
                best = peers[i].r.url;
                bsynced = s;
                bnext = nx;
            }
        } else if (peers[i].live) {
            json_decref(data); /* it may hold orders nobody else has: not without it */
            dst_warn("cannot lead epoch %" PRId64 " yet: replica %ld (live) does not answer", epoch,
                     peers[i].r.id);
            return DST_EDEP;
        }
        json_decref(data);
    }
    if (!best)
        return 0;
    dst_info("leading epoch %" PRId64 ": taking the log of %s (%" PRId64 " orders)", epoch, best,
             bnext);
    return pull(o, best, 0);
}

/* ---- the handlers ---- */

/* PUT /leader {"epoch":E,"id":L,"replicas":[{"id","url"}…]}: the front end's choice. */
static void on_leader(struct dst_http_req *req, void *ud)
{
    struct order *o = ud;
    if (!ts_write_ok(req))
        return;
    size_t len = 0;
    const char *body = dst_http_req_body(req, &len);
    json_t *j = dst_json_parse(body, len, NULL, 0);
    int64_t epoch = int_of(j, "epoch", -1), id = int_of(j, "id", -1);
    const json_t *reps = json_object_get(j, "replicas");
    char lurl[256] = "";

    if (epoch < 1 || epoch > EPOCH_MAX || id < 0 || (reps && !json_is_array(reps))) {
        ts_reply_error(req, 400, "expected {\"epoch\":E,\"id\":L,\"replicas\":[{\"id\",\"url\"}]}");
        goto out;
    }
    pthread_mutex_lock(&o->rmu);
    if (epoch < o->epoch) {
        pthread_mutex_unlock(&o->rmu);
        ts_reply_error(req, 409, "a newer epoch is known");
        goto out;
    }
    for (size_t i = 0; reps && i < json_array_size(reps); i++) {
        const json_t *r = json_array_get(reps, i);
        const char *url = json_string_value(json_object_get(r, "url"));
        long rid = (long)int_of(r, "id", -1);
        int k = 0;
        if (!url || rid < 0 || rid == o->id || strlen(url) >= sizeof(lurl))
            continue;
        while (k < o->npeers && o->peers[k].r.id != rid)
            k++;
        if (k == o->npeers && o->npeers == ORDER_PEERS_MAX)
            continue;
        if (k == o->npeers)
            o->peers[o->npeers++] = (struct order_peer){.r.id = rid};
        snprintf(o->peers[k].r.url, sizeof(o->peers[k].r.url), "%s", url);
        o->peers[k].live = json_is_true(json_object_get(r, "live"));
        if (o->peers[k].live)
            o->peers[k].retry_at = 0; /* the front end sees it answer */
        o->peers[k].behind = true;
    }
    for (int k = 0; k < o->npeers; k++)
        if (o->peers[k].r.id == id)
            snprintf(lurl, sizeof(lurl), "%s", o->peers[k].r.url);
    if (epoch > o->epoch || o->leader != id)
        dst_info("epoch %" PRId64 ": replica %" PRId64 " leads", epoch, id);
    o->epoch = epoch;
    o->leader = (long)id;
    bool self = id == o->id;
    bool need = self ? o->synced != epoch : !o->ready;
    pthread_mutex_unlock(&o->rmu);
    if (need) {
        pthread_mutex_lock(&o->sync_mu);
        int rc = self ? takeover(o, epoch) : lurl[0] ? pull(o, lurl, epoch) : DST_ENOTFOUND;
        pthread_mutex_unlock(&o->sync_mu);
        if (rc) {
            ts_reply_error(req, 503,
                           self ? "cannot take the peers' orders yet"
                                : "cannot read the leader's orders yet");
            goto out;
        }
        pthread_mutex_lock(&o->rmu);
        if (o->epoch == epoch) {
            o->ready = true;
            o->synced = epoch;
            for (int k = 0; self && k < o->npeers; k++)
                o->peers[k].behind = true;
        }
        pthread_mutex_unlock(&o->rmu);
        dst_info("caught up at epoch %" PRId64 ": %" PRId64 " orders", epoch,
                 order_log_next(o->log));
    }
    json_t *d = json_object();
    order_repl_stats(o, d);
    ts_reply_data(req, d);
out:
    json_decref(j);
}

/* POST /replicate {"epoch","leader","first","end","lines"}: a leader's batch. */
static void on_replicate(struct dst_http_req *req, void *ud)
{
    struct order *o = ud;
    if (!ts_write_ok(req))
        return;
    size_t len = 0;
    const char *body = dst_http_req_body(req, &len);
    json_t *j = dst_json_parse(body, len, NULL, 0);
    int64_t epoch = int_of(j, "epoch", -1), leader = int_of(j, "leader", -1);
    int64_t first = int_of(j, "first", -1), end = int_of(j, "end", -1);
    const json_t *lines = json_object_get(j, "lines");
    struct order_rec *recs = NULL;
    int n = 0;

    if (epoch < 1 || epoch > EPOCH_MAX || leader < 0 || first < 0 || end < first ||
        !json_is_string(lines) ||
        parse_lines(json_string_value(lines), json_string_length(lines), first, &recs, &n) != 0 ||
        first + n > end) {
        ts_reply_error(req, 400, "expected {\"epoch\",\"leader\",\"first\",\"end\",\"lines\"}");
        goto out;
    }
    pthread_mutex_lock(&o->rmu);
    bool stale = epoch < o->epoch || (epoch == o->epoch && leader != o->leader) || leader == o->id;
    if (!stale && epoch > o->epoch) {
        o->epoch = epoch;
        o->leader = (long)leader;
    }
    bool ready = o->ready;
    pthread_mutex_unlock(&o->rmu);
    if (stale) {
        ts_reply_error(req, 409, "not this replica's leader: a newer epoch is known");
        goto out;
    }
    if (!ready) {
        /*
         * Catching up (just started, or told of a leader it could not read yet): only a batch
         * that starts a whole window before the end of this log, or before the batch, is taken,
         * as a pull would compare it; any other gets where the leader should send from. So a
         * live follower is never left out while it catches up: a leader answers no buy before
         * every follower that answers has the order.
         */
        int64_t mine = order_log_next(o->log), from = mine < first ? mine : first;
        from = from > WINDOW ? from - WINDOW : 0;
        if (first > from) {
            ts_reply_data(req, json_pack("{s:I}", "next", (json_int_t)from));
            goto out;
        }
    }
    pthread_mutex_lock(&o->sync_mu);
    int rc = order_log_sync(o->log, first, recs, n, end);
    pthread_mutex_unlock(&o->sync_mu);
    if (rc != 0 && rc != DST_ECONFLICT) {
        ts_reply_error(req, 503, "the order log cannot be written");
        goto out;
    }
    if (rc == 0) {
        pthread_mutex_lock(&o->rmu);
        if (o->epoch == epoch) {
            if (!o->ready)
                dst_info("caught up at epoch %" PRId64 " through the leader's push: %" PRId64
                         " orders",
                         epoch, order_log_next(o->log));
            o->synced = epoch;
            o->ready = true;
        }
        pthread_mutex_unlock(&o->rmu);
    }
    ts_reply_data(req, json_pack("{s:I}", "next", (json_int_t)order_log_next(o->log)));
out:
    free(recs);
    json_decref(j);
}

/* GET /orders?from=N: up to PAGE_LINES lines of the log from order N on. */
static void on_lines(struct dst_http_req *req, void *ud)
{
    struct order *o = ud;
    const char *s = dst_http_req_query(req, "from");
    char *end = NULL, *text = NULL;
    size_t len = 0;
    int64_t next = 0;
    long long from = s ? strtoll(s, &end, 10) : -1;

    if (!s || s[0] < '0' || s[0] > '9' || *end) {
        ts_reply_error(req, 400, "from must be an order number");
        return;
    }
    int rc = order_log_read(o->log, (int64_t)from, PAGE_LINES, &text, &len, &next);
    if (rc != 0 && rc != DST_EINVAL) {
        ts_reply_error(req, 503, "the order log cannot be read");
        return;
    }
    json_t *d = json_pack("{s:I,s:I,s:s%}", "first", (json_int_t)from, "next", (json_int_t)next,
                          "lines", text ? text : "", text ? len : 0);
    free(text);
    order_repl_stats(o, d);
    ts_reply_data(req, d);
}

int order_repl_mount(struct dst_http_server *srv, struct order *o)
{
    int rc = dst_http_server_route(srv, "PUT", "/leader", on_leader, o, 0, 0);
    rc = rc ? rc
            : dst_http_server_route(srv, "POST", "/replicate", on_replicate, o, 0, MAX_REPL_BODY);
    rc = rc ? rc : dst_http_server_route(srv, "GET", "/orders", on_lines, o, 0, 0);
    return rc;
}

void order_repl_stats(struct order *o, json_t *into)
{
    json_t *out = json_array();

    pthread_mutex_lock(&o->rmu);
    int64_t now = dst_monotonic_ms();
    for (int i = 0; i < o->npeers; i++)
        if (o->peers[i].retry_at > now)
            json_array_append_new(out, json_integer(o->peers[i].r.id));
    json_object_set_new(into, "epoch", json_integer(o->epoch));
    json_object_set_new(into, "leader", json_integer(o->leader));
    json_object_set_new(into, "synced", json_integer(o->synced));
    json_object_set_new(into, "ready", json_boolean(o->ready));
    json_object_set_new(into, "leading", json_boolean(leads(o)));
    json_object_set_new(into, "left_out", out);
    pthread_mutex_unlock(&o->rmu);
}

void order_repl_init(struct order *o)
{
    pthread_mutex_init(&o->rmu, NULL);
    pthread_mutex_init(&o->sync_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&o->rcv, &ca);
    pthread_condattr_destroy(&ca);
    o->leader = -1;
}

/* While this replica leads, pushes to the followers left behind every NUDGE_MS. */
static void *nudger(void *arg)
{
    struct order *o = arg;

    pthread_mutex_lock(&o->rmu);
    while (!o->stop) {
        struct timespec ts;
        int64_t at = dst_monotonic_ms() + NUDGE_MS;
        ts.tv_sec = (time_t)(at / 1000);
        ts.tv_nsec = (long)(at % 1000) * 1000000L;
        pthread_cond_timedwait(&o->rcv, &o->rmu, &ts);
        bool any = false;
        for (int i = 0; i < o->npeers; i++)
            any = any || (o->peers[i].behind && o->peers[i].retry_at <= dst_monotonic_ms());
        if (o->stop || !any || !leads(o) || o->epoch == 0)
            continue;
        pthread_mutex_unlock(&o->rmu);
        order_log_nudge(o->log);
        pthread_mutex_lock(&o->rmu);
    }
    pthread_mutex_unlock(&o->rmu);
    return NULL;
}

void order_repl_attach(struct order *o)
{
    o->push = order_push_new();
    order_log_set_hooks(o->log, push, order_forget);
    o->nudging = pthread_create(&o->nudger, NULL, nudger, o) == 0;
    if (!o->nudging)
        dst_warn("no thread to bring followers up to date: they catch up with the next buy");
}

void order_repl_stop(struct order *o)
{
    if (o->nudging) {
        pthread_mutex_lock(&o->rmu);
        o->stop = true;
        pthread_cond_broadcast(&o->rcv);
        pthread_mutex_unlock(&o->rmu);
        pthread_join(o->nudger, NULL);
        o->nudging = false;
    }
    order_push_free(o->push);
    o->push = NULL;
}

void order_repl_free(struct order *o)
{
    order_repl_stop(o);
    pthread_cond_destroy(&o->rcv);
    pthread_mutex_destroy(&o->rmu);
    pthread_mutex_destroy(&o->sync_mu);
}
