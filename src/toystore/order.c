/* order.c - `dstmc toystore order`: buys through the catalog, numbered orders in the order log */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cfg.h"
#include "core/cfg_check.h"
#include "core/err.h"
#include "core/http_server.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "toystore/order.h"
#include "toystore/services.h"
#include "toystore/toystore.h"

#define RECENT_REQUESTS 65536 /* request ids remembered (those of the log's last orders too) */
#define MAX_BODY        4096

/*
 * Internal API (docs/toystore.md): POST /orders {"name","quantity","request_id"} → {"data":
 * {"order_number":N}}; GET /orders/N; GET /ping (this replica's id and peers).
 *
 * A request id is answered once: while its buy is under way a repeat waits for it, then gets
 * the same answer (the order's number, or the same 404/409). A buy that failed for want of the
 * catalog (or the log) may be tried again with the same id. The catalog also remembers the
 * request ids it took stock for, so a buy retried after this service crashed between the
 * catalog's answer and the log's fsync does not take the stock twice.
 *
 * Replication (order_repl.c): only the leader the front end chose takes buys (others answer
 * 421); each batch of the log reaches every live follower before its buys are answered.
 */
void order_remember(void *ud, const struct order_rec *r)
{
    struct order *o = ud;

    if (!r->request_id[0])
        return;
    pthread_mutex_lock(&o->mu);
    struct ts_reqid *e = ts_reqids_get(o->recent, r->request_id);
    if (!e)
        e = ts_reqids_put(o->recent, r->request_id);
    if (e->state != REQ_PENDING) { /* a buy under way settles it itself */
        e->state = REQ_DONE;
        e->value = r->number;
    }
    pthread_mutex_unlock(&o->mu);
}

void order_forget(void *ud, const struct order_rec *r)
{
    struct order *o = ud;

    if (!r->request_id[0])
        return;
    pthread_mutex_lock(&o->mu);
    struct ts_reqid *e = ts_reqids_get(o->recent, r->request_id);
    if (e && e->state == REQ_DONE && e->value == r->number)
        e->state = REQ_RETRY; /* its order was cut off: the id may be tried again */
    pthread_mutex_unlock(&o->mu);
}

/* Waits for a request id's first outcome, or claims it; true: the caller runs the buy. */
static bool claim(struct order *o, const char *id, int *state, int64_t *value)
{
    pthread_mutex_lock(&o->mu);
    for (;;) {
        struct ts_reqid *e = ts_reqids_get(o->recent, id);
        if (!e)
            e = ts_reqids_put(o->recent, id);
        if (e->state == REQ_PENDING) {
            pthread_cond_wait(&o->cv, &o->mu);
            continue;
        }
        *state = e->state;
        *value = e->value;
        if (e->state == REQ_RETRY)
            e->state = REQ_PENDING;
        break;
    }
    pthread_mutex_unlock(&o->mu);
    return *state == REQ_RETRY;
}

static void settle(struct order *o, const char *id, int state, int64_t value)
{
    pthread_mutex_lock(&o->mu);
    struct ts_reqid *e = ts_reqids_get(o->recent, id);
    if (!e)
        e = ts_reqids_put(o->recent, id);
    e->state = state;
    e->value = value;
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

static void reply_outcome(struct dst_http_req *req, int state, int64_t value)
{
    if (state == REQ_DONE)
        ts_reply_data(req, json_pack("{s:I}", "order_number", (json_int_t)value));
    else if (state == REQ_FAILED && value == 404)
        ts_reply_error(req, 404, "product not found");
    else if (state == REQ_FAILED)
        ts_reply_error(req, 409, "out of stock");
    else
        ts_reply_error(req, 503, "the catalog or the order log is unavailable; try again");
}

/*
 * The buy itself: the catalog first (with the buys that wait with it: order_buys.c), then the
 * log (and the followers); the outcome as (state, value). A batch the followers refused (a newer leader exists) leaves its line in this log,
 * so its id is DONE here (should this log's tail survive), but the answer is *lost: a 503.
 */
static void buy(struct order *o, const struct ts_buy *b, int *state, int64_t *value, bool *lost)
{
    int log_rc = 0;
    int status = order_buys_take(o, b, value, &log_rc);

    *state = REQ_RETRY;
    *lost = false;
    if (status == 404 || status == 409) {
        *state = REQ_FAILED;
        *value = status;
    } else if (status == 200) {
        if (log_rc == 0 || log_rc == DST_ECONFLICT)
            *state = REQ_DONE;
        *lost = log_rc == DST_ECONFLICT;
    }
    if (*state == REQ_RETRY)
        *value = 0;
}

static void not_leader(struct dst_http_req *req, long leader)
{
    char msg[96];

    snprintf(msg, sizeof(msg), "not the leader (replica %ld leads)", leader);
    ts_reply_error(req, 421, msg);
}

static void on_buy(struct dst_http_req *req, void *ud)
{
    struct order *o = ud;
    struct ts_buy b;
    char err[256];
    size_t len = 0;
    const char *body = dst_http_req_body(req, &len);
    if (!ts_write_ok(req))
        return;
    int state = REQ_RETRY;
    int64_t value = 0;

    if (ts_buy_parse(body, len, true, false, &b, err, sizeof(err)) != 0) {
        ts_reply_error(req, 400, err);
        return;
    }
    if (b.unknown) {
        ts_reply_error(req, 404, "product not found");
        return;
    }
    long leader = -1;
    bool lost = false;
    if (!order_repl_may_serve(o, dst_http_req_query(req, "epoch"), true, &leader)) {
        not_leader(req, leader);
        return;
    }
    if (!b.request_id[0]) { /* a direct call without one: no retry to recognise */
        buy(o, &b, &state, &value, &lost);
    } else if (claim(o, b.request_id, &state, &value)) {
        buy(o, &b, &state, &value, &lost);
        settle(o, b.request_id, state, value);
    }
    if (lost)
        ts_reply_error(req, 503, "a newer leader exists; try again there");
    else
        reply_outcome(req, state, value);
}

static void on_get(struct dst_http_req *req, void *ud)
{
    struct order *o = ud;
    struct order_rec r;
    const char *s = dst_http_req_param(req, "n");
    char *end = NULL;
    long long n = strtoll(s, &end, 10);
    long leader = -1;

    if (!order_repl_may_serve(o, dst_http_req_query(req, "epoch"), false, &leader)) {
        not_leader(req, leader);
        return;
    }
    if (s[0] < '0' || s[0] > '9' || *end || order_log_get(o->log, n, &r) != 0) {
        ts_reply_error(req, 404, "order not found");
        return;
    }
    ts_reply_data(req, json_pack("{s:I,s:s,s:I}", "number", (json_int_t)r.number, "name", r.name,
                                 "quantity", (json_int_t)r.quantity));
}

static void on_ping(struct dst_http_req *req, void *ud)
{
    struct order *o = ud;
    json_t *peers = json_array();

    pthread_mutex_lock(&o->rmu);
    for (int i = 0; i < o->npeers; i++)
        json_array_append_new(peers, json_pack("{s:I,s:s}", "id", (json_int_t)o->peers[i].r.id,
                                               "url", o->peers[i].r.url));
    pthread_mutex_unlock(&o->rmu);
    json_t *d = json_pack("{s:s,s:I,s:o,s:I}", "service", "order", "id", (json_int_t)o->id, "peers",
                          peers, "next_order", (json_int_t)order_log_next(o->log));
    order_repl_stats(o, d);
    ts_reply_data(req, d);
}

static int mount(struct dst_http_server *srv, void *ud)
{
    int rc = dst_http_server_route(srv, "GET", "/ping", on_ping, ud, 0, 0);
    rc = rc ? rc : dst_http_server_route(srv, "POST", "/orders", on_buy, ud, 0, 0);
    rc = rc ? rc : dst_http_server_route(srv, "GET", "/orders/{n}", on_get, ud, 0, 0);
    return rc ? rc : order_repl_mount(srv, ud);
}

/* --peer values into o->peers; 0 or DST_EINVAL (reported). */
static int read_peers(struct order *o, const struct dst_cfg *cfg, const struct dst_cfg_list *l)
{
    char err[300];

    for (int i = 0; i < l->n; i++) {
        struct ts_replica *p = &o->peers[o->npeers++].r;
        if (ts_peer_parse(l->v[i], &p->id, p->url, sizeof(p->url), err, sizeof(err)) != 0)
            return dst_cfg_fail(cfg, stderr, "peer", "%s", err);
        if (p->id == o->id)
            return dst_cfg_fail(cfg, stderr, "peer", "%ld is this replica's own --id", p->id);
        for (int k = 0; k + 1 < o->npeers; k++)
            if (o->peers[k].r.id == p->id)
                return dst_cfg_fail(cfg, stderr, "peer", "id %ld is given twice", p->id);
    }
    return 0;
}

int order_main(int argc, char **argv)
{
    struct order *o = dst_xnew(struct order);
    struct dst_cfg_list peers = {0};
    const char *listen = NULL, *db = NULL, *catalog = NULL;
    bool access_log = false;
    long max_sessions = 0;
    char err[512];
    struct dst_cfg_opt opts[] = {
        {"listen", DST_CFG_STR, &listen, "0.0.0.0:8102", "address to listen on", "HOST:PORT",
         .check = dst_cfg_check_hostport},
        {"id", DST_CFG_INT, &o->id, "1", "this replica's id (the front end leads with the highest)",
         "N", 0, 1000000},
        {"db", DST_CFG_STR, &db, "orders.txt",
         "the order log ('number,name,quantity,request_id' per line), created when missing", "FILE",
         .check = dst_cfg_check_file_rw},
        {"catalog", DST_CFG_STR, &catalog, "http://127.0.0.1:8101", "the catalog's base URL", "URL",
         .check = dst_cfg_check_url},
        {"peer", DST_CFG_LIST, &peers, NULL,
         "another order replica, ID=URL (repeat; the front end's PUT /leader adds the others)",
         "ID=URL"},
        {"peer-timeout-ms", DST_CFG_INT, &o->peer_timeout_ms, "2000",
         "how long a push to a follower may take before it is left out", "MS", 1, 600000},
        {"timeout-ms", DST_CFG_INT, &o->timeout_ms, "5000",
         "how long a call to the catalog may take", "MS", 1, 600000},
        {"max-sessions", DST_CFG_INT, &max_sessions, "256",
         "connections served at once (a thread each)", "N", 1, 4096},
        {"access-log", DST_CFG_BOOL, &access_log, "false", "log one line per request"},
    };
    struct dst_cfg cfg = {"toystore order",
                          "the toy store's order service: buys through the catalog, order numbers "
                          "from 0, the order log fsync'd before each answer",
                          opts, (int)(sizeof(opts) / sizeof(opts[0]))};
    struct dst_cfg_listener ls = {"listen", NULL, false};
    int rc = 2;

    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    order_repl_init(o);
    o->recent = ts_reqids_new(RECENT_REQUESTS);
    int prc = dst_cfg_parse(&cfg, argc, argv, stdout, stderr);
    if (prc) {
        rc = prc == DST_CFG_EXIT ? 0 : 2;
        goto out;
    }
    snprintf(o->catalog, sizeof(o->catalog), "%s", catalog);
    for (size_t n = strlen(o->catalog); n > 0 && o->catalog[n - 1] == '/'; n--)
        o->catalog[n - 1] = '\0';
    ls.value = listen;
    if (read_peers(o, &cfg, &peers) != 0 || dst_cfg_check_listeners(&cfg, stderr, &ls, 1) != 0)
        goto out;
    if (cfg.check_only) {
        if (order_log_check(db, err, sizeof(err)) != 0) {
            dst_cfg_fail(&cfg, stderr, "db", "%s", err);
            goto out;
        }
        dst_cfg_ok(&cfg, stdout);
        rc = 0;
        goto out;
    }
    if (order_log_open(db, order_remember, o, &o->log, err, sizeof(err)) != 0) {
        dst_cfg_fail(&cfg, stderr, "db", "%s", err);
        goto out;
    }
    order_repl_attach(o);
    o->buys = order_buys_new();
    dst_info("replica %ld: %" PRId64 " orders in %s; the next is number %" PRId64, o->id,
             order_log_next(o->log), db, order_log_next(o->log));
    struct dst_http_server_opts so = {.listen = listen,
                                      .name = "order",
                                      .access_log = access_log,
                                      .thread_per_conn = true,
                                      .max_conns = (unsigned)max_sessions,
                                      .max_body = MAX_BODY,
                                      .error_key = "code"};
    rc = dst_http_serve(&so, mount, o) ? 1 : 0;
out:
    order_repl_stop(o); /* its threads use the log */
    order_log_free(o->log);
    order_buys_free(o->buys);
    ts_reqids_free(o->recent);
    order_repl_free(o);
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
    free(o);
    return rc;
}
