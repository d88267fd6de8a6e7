/* catalog.c - `dstmc toystore catalog`: the toys and their stock, restock, invalidation push */
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
#include "core/sig.h"
#include "core/sse.h"
#include "toystore/services.h"
#include "toystore/toystore.h"

#define HEARTBEAT_MS 5000 /* the front end takes 15 s of silence for a lost stream */
#define DRAIN_MS     2000
#define MAX_BODY     4096
#define MAX_BATCH    (512u << 10) /* POST /buys: TS_BATCH_MAX buys of ~200 bytes fit */

/*
 * Internal API (docs/toystore.md): GET /products, GET /products/NAME, POST
 * /products/NAME/buy {"quantity","request_id"}, POST /buys {"buys":[{"name","quantity",
 * "request_id"},…]} (the order leader's batch: a result per buy), GET /events (an "invalidate" event
 * {"name":NAME} after each buy and restock, once it is on disk), GET /ping.
 */
struct catalog {
    struct catalog_db *db;
    struct dst_sse_hub *hub;
    long restock_s;
    pthread_t restocker;
    bool restocking;
};

static json_t *toy_json(const struct catalog_toy *t)
{
    return json_pack("{s:s,s:f,s:I}", "name", t->name, "price", t->price, "quantity",
                     (json_int_t)t->quantity);
}

static void invalidate(void *ud, const char *name)
{
    struct catalog *c = ud;
    json_t *j = json_pack("{s:s}", "name", name);
    char *data = dst_json_dumps(j, NULL);

    dst_sse_hub_publish(c->hub, "invalidate", data);
    free(data);
    json_decref(j);
}

static void on_ping(struct dst_http_req *req, void *ud)
{
    (void)ud;
    ts_reply_data(req, json_pack("{s:s}", "service", "catalog"));
}

static void on_list(struct dst_http_req *req, void *ud)
{
    struct catalog *c = ud;

    ts_reply_data(req, catalog_db_list(c->db));
}

static void on_get(struct dst_http_req *req, void *ud)
{
    struct catalog *c = ud;
    struct catalog_toy t;
    const char *name = dst_http_req_param(req, "name");

    if (!ts_name_valid(name) || catalog_db_get(c->db, name, &t) != 0)
        ts_reply_error(req, 404, "product not found");
    else
        ts_reply_data(req, toy_json(&t));
}

static void on_buy(struct dst_http_req *req, void *ud)
{
    struct catalog *c = ud;
    struct catalog_toy t;
    struct ts_buy b;
    char err[256];
    size_t len = 0;
    if (!ts_write_ok(req))
        return;
    bool dup = false;
    const char *name = dst_http_req_param(req, "name");
    const char *body = dst_http_req_body(req, &len);

    if (ts_buy_parse(body, len, false, false, &b, err, sizeof(err)) != 0) {
        ts_reply_error(req, 400, err);
        return;
    }
    int rc = ts_name_valid(name) ? catalog_db_buy(c->db, name, b.quantity,
                                                  b.request_id[0] ? b.request_id : NULL, &t, &dup)
                                 : DST_ENOTFOUND;
    if (rc == DST_ENOTFOUND)
        ts_reply_error(req, 404, "product not found");
    else if (rc == DST_ECONFLICT)
        ts_reply_error(req, 409, "out of stock");
    else if (rc)
        ts_reply_error(req, 503, "the catalog cannot store the change");
    if (rc)
        return;
    if (!dup)
        invalidate(c, t.name);
    ts_reply_data(req, toy_json(&t));
}

/* A batch answer's result for one buy: what POST /products/NAME/buy would have answered. */
static json_t *buy_result(const struct catalog_buy *b)
{
    if (b->rc == 0)
        return json_pack("{s:o}", "data", toy_json(&b->after));
    return json_pack("{s:{s:i,s:s}}", "error", "code", b->rc == DST_ENOTFOUND ? 404 : 409,
                     "message", b->rc == DST_ENOTFOUND ? "product not found" : "out of stock");
}

/*
 * POST /buys: the buys in order under one hold of the write lock, durable by one journal
 * write; one invalidation per toy changed. A body that does not parse changes nothing (400).
 */
static void on_buys(struct dst_http_req *req, void *ud)
{
    struct catalog *c = ud;
    struct ts_buy *in = NULL;
    struct catalog_buy *out = NULL;
    char err[256];
    size_t len = 0;
    int n = 0;
    if (!ts_write_ok(req))
        return;
    const char *body = dst_http_req_body(req, &len);

    if (ts_buys_parse(body, len, &in, &n, err, sizeof(err)) != 0) {
        ts_reply_error(req, 400, err);
        return;
    }
    out = dst_xcalloc((size_t)n, sizeof(*out));
    for (int i = 0; i < n; i++)
        out[i].in = &in[i];
    if (catalog_db_buy_many(c->db, out, n) != 0) {
        ts_reply_error(req, 503, "the catalog cannot store the change");
        goto out;
    }
    json_t *results = json_array();
    for (int i = 0; i < n; i++) {
        bool first = out[i].rc == 0 && !out[i].dup;
        for (int k = 0; first && k < i; k++) /* one invalidation per toy */
            first = !(out[k].rc == 0 && !out[k].dup && strcmp(in[k].name, in[i].name) == 0);
        if (first)
            invalidate(c, out[i].after.name);
        json_array_append_new(results, buy_result(&out[i]));
    }
    ts_reply_data(req, json_pack("{s:o}", "results", results));
out:
    free(out);
    free(in);
}

static void on_events(struct dst_http_req *req, void *ud)
{
    struct catalog *c = ud;

    if (dst_sse_hub_attach(c->hub, req) != 0)
        ts_reply_error(req, 503, "cannot open the event stream");
}

static void *restock_loop(void *ud)
{
    struct catalog *c = ud;

    while (!dst_sig_wait((int)(c->restock_s * 1000)))
        if (catalog_db_restock(c->db, invalidate, c) != 0)
            dst_error("restock failed: the file cannot be written");
    return NULL;
}

static int mount(struct dst_http_server *srv, struct catalog *c)
{
    int rc = dst_http_server_route(srv, "GET", "/ping", on_ping, c, 0, 0);
    rc = rc ? rc : dst_http_server_route(srv, "GET", "/products", on_list, c, 0, 0);
    rc = rc ? rc : dst_http_server_route(srv, "GET", "/products/{name}", on_get, c, 0, 0);
    rc = rc ? rc : dst_http_server_route(srv, "POST", "/products/{name}/buy", on_buy, c, 0, 0);
    rc = rc ? rc : dst_http_server_route(srv, "POST", "/buys", on_buys, c, 0, MAX_BATCH);
    rc = rc ? rc : dst_http_server_route(srv, "GET", "/events", on_events, c, 0, 0);
    return rc;
}

static int run(struct catalog *c, const struct dst_http_server_opts *so)
{
    struct dst_http_server *srv = NULL;
    int rc = dst_sse_hub_new(HEARTBEAT_MS, 0, &c->hub);

    rc = rc ? rc : dst_http_server_new(so, &srv);
    rc = rc ? rc : mount(srv, c);
    rc = rc ? rc : dst_http_server_start(srv);
    if (rc == 0 && c->restock_s > 0) {
        c->restocking = pthread_create(&c->restocker, NULL, restock_loop, c) == 0;
        rc = c->restocking ? 0 : DST_EDEP;
    }
    if (rc == 0)
        dst_sig_wait(-1);
    else
        dst_error("cannot start: %s", dst_strerror(rc));
    if (c->restocking)
        pthread_join(c->restocker, NULL);
    dst_sse_hub_close(c->hub); /* ends the streams before the server drains */
    if (srv)
        dst_http_server_stop(srv, DRAIN_MS);
    dst_http_server_free(srv);
    dst_sse_hub_free(c->hub); /* only now: a buy in the drain publishes its invalidation */
    c->hub = NULL;
    return rc;
}

int catalog_main(int argc, char **argv)
{
    struct catalog c = {0};
    const char *listen = NULL, *db = NULL;
    bool lab2 = false, access_log = false;
    long max_sessions = 0, journal_kib = 0;
    char err[512];
    struct dst_cfg_opt opts[] = {
        {"listen", DST_CFG_STR, &listen, "0.0.0.0:8101", "address to listen on", "HOST:PORT",
         .check = dst_cfg_check_hostport},
        {"db", DST_CFG_STR, &db, "catalog.txt",
         "the catalog file ('Tux 25.99 80' per line), created when missing", "FILE",
         .check = dst_cfg_check_file_rw},
        {"lab2", DST_CFG_BOOL, &lab2, "false",
         "a new file gets Lab 2's four toys (Tux, Whale, Elephant, Bird), not Lab 3's ten"},
        {"restock-interval", DST_CFG_INT, &c.restock_s, "10",
         "seconds between restocks of the toys sold out (to 100); 0: never", "S", 0, 86400},
        {"max-sessions", DST_CFG_INT, &max_sessions, "256",
         "connections served at once (a thread each: a buy waiting for its fsync holds only its "
         "own, so concurrent buys can share one)",
         "N", 1, 4096},
        {"journal-max", DST_CFG_INT, &journal_kib, "1024",
         "KiB of journal (one line per change, beside the file) after which the table is written "
         "to the file and the journal started again",
         "KIB", 1, 1048576},
        {"access-log", DST_CFG_BOOL, &access_log, "false", "log one line per request"},
    };
    struct dst_cfg cfg = {"toystore catalog",
                          "the toy store's catalog: toys, prices and stock in memory and in a "
                          "file, restock, invalidations pushed to the front ends",
                          opts, (int)(sizeof(opts) / sizeof(opts[0]))};
    struct dst_cfg_listener ls = {"listen", NULL, false};
    int rc = dst_cfg_parse(&cfg, argc, argv, stdout, stderr);

    if (rc)
        return rc == DST_CFG_EXIT ? 0 : 2;
    ls.value = listen;
    if (dst_cfg_check_listeners(&cfg, stderr, &ls, 1) != 0)
        return 2;
    if (cfg.check_only) {
        if (catalog_db_check(db, err, sizeof(err)) != 0)
            return dst_cfg_fail(&cfg, stderr, "db", "%s", err), 2;
        dst_cfg_ok(&cfg, stdout);
        return 0;
    }
    if (catalog_db_open(db, lab2, (size_t)journal_kib << 10, &c.db, err, sizeof(err)) != 0) {
        dst_cfg_fail(&cfg, stderr, "db", "%s", err);
        return 2;
    }
    struct dst_http_server_opts so = {.listen = listen,
                                      .name = "catalog",
                                      .access_log = access_log,
                                      .thread_per_conn = true,
                                      .max_conns = (unsigned)max_sessions,
                                      .max_body = MAX_BODY,
                                      .error_key = "code"};
    rc = run(&c, &so) ? 1 : 0;
    if (catalog_db_close(c.db) != 0)
        rc = 1;
    catalog_db_free(c.db);
    return rc;
}
