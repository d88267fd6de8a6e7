/* frontend.c - `dstmc toystore frontend`: the public face (the Lab 2/3 handout's REST API) */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cfg.h"
#include "core/cfg_check.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/http_client.h"
#include "core/http_server.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/sig.h"
#include "core/uuid.h"
#include "toystore/services.h"
#include "toystore/toystore.h"

#define MAX_BODY   4096 /* a POST /orders body; 413 beyond */
#define MAX_ORDERS FE_REPLICAS_MAX
#define DRAIN_MS   2000

/*
 * GET /products/NAME, POST /orders, GET /orders/N exactly as the handout has them, every error
 * {"error":{"code":N,"message":…}}. One thread per client connection (thread-per-session), each
 * with its own kept-alive connections to the catalog and the order service (ts_client).
 * Buys and order lookups go to the order leader (frontend_leader.c); one whose leader fails
 * mid-call is retried, under the same request id, on the next leader until --timeout-ms.
 * The live status page (/status/, read only) is frontend_status.c's.
 */
struct frontend {
    char catalog[256];
    struct ts_replica order[MAX_ORDERS]; /* highest id first */
    int norder;
    long timeout_ms, health_interval_ms, health_timeout_ms;
    struct fe_cache *cache;
    struct fe_leader *leader;
    struct fe_status *status;
};

/* A call to a back end within timeout_ms; the response's status (0: none came) and body. */
static int call_within(const char *method, const char *url, const char *body, long timeout_ms,
                       struct dst_http_resp *resp)
{
    struct dst_http_client *c = ts_client();
    struct dst_http_call hc = {.method = method,
                               .url = url,
                               .body = body,
                               .content_type = body ? "application/json" : NULL,
                               .timeout_ms = timeout_ms,
                               .max_body = 64 * 1024};

    if (!c) {
        memset(resp, 0, sizeof(*resp));
        return DST_EDEP;
    }
    int rc = dst_http_client_do(c, &hc, resp);
    if (rc)
        dst_warn("%s %s: %s", method, url, resp->err);
    return rc;
}

static int call(struct frontend *fe, const char *method, const char *url, const char *body,
                struct dst_http_resp *resp)
{
    return call_within(method, url, body, fe->timeout_ms, resp);
}

/*
 * Sends method path (body) to the order leader until it gives one of the statuses in ok (a list
 * ending with 0), re-choosing the leader after a failure, within --timeout-ms. true: *resp is
 * that answer (the caller releases it); false: none came in time.
 */
static bool to_leader(struct frontend *fe, const char *method, const char *path, const char *body,
                      const long *ok, struct dst_http_resp *resp)
{
    int64_t deadline = dst_monotonic_ms() + fe->timeout_ms;
    char base[256], url[512];

    for (int attempt = 0; attempt < 100000; attempt++) {
        int64_t epoch = 0;
        if (fe_leader_get(fe->leader, deadline, base, sizeof(base), &epoch) != 0)
            return false;
        long left = (long)(deadline - dst_monotonic_ms());
        if (left <= 0)
            return false;
        snprintf(url, sizeof(url), "%s%s?epoch=%" PRId64, base, path, epoch);
        int rc = call_within(method, url, body, left, resp);
        for (int i = 0; rc == 0 && ok[i]; i++)
            if (resp->status == ok[i])
                return true;
        if (rc == 0)
            dst_warn("%s %s: %ld; trying the leader again", method, url, resp->status);
        dst_http_resp_release(resp);
        fe_leader_failed(fe->leader, epoch, deadline);
    }
    return false;
}

/* Passes a back end's JSON answer on as it is. */
static void pass(struct dst_http_req *req, const struct dst_http_resp *resp)
{
    dst_http_reply(req, (int)resp->status, "application/json", resp->body, resp->len);
}

static void on_product(struct dst_http_req *req, void *ud)
{
    struct frontend *fe = ud;
    const char *name = dst_http_req_param(req, "name");
    struct fe_cache_token t;
    struct dst_http_resp resp;
    size_t len = 0;
    char url[512];

    if (!ts_name_valid(name)) {
        ts_reply_error(req, 404, "product not found");
        return;
    }
    char *body = fe_cache_get(fe->cache, name, &len, &t);
    if (body) {
        dst_http_reply_take(req, 200, "application/json", body, len);
        return;
    }
    snprintf(url, sizeof(url), "%s/products/%s", fe->catalog, name);
    int rc = call(fe, "GET", url, NULL, &resp);
    if (rc == 0 && resp.status == 200)
        fe_cache_put(fe->cache, name, resp.body, resp.len, &t);
    if (rc == 0 && (resp.status == 200 || resp.status == 404))
        pass(req, &resp);
    else
        ts_reply_error(req, 503, "the catalog is unavailable");
    dst_http_resp_release(&resp);
}

/* Sends a buy to the replicas, highest id first, until one answers it. */
static void on_buy(struct dst_http_req *req, void *ud)
{
    struct frontend *fe = ud;
    struct ts_buy b;
    char err[256], id[DST_UUID_LEN + 1];
    size_t len = 0;
    const char *body = dst_http_req_body(req, &len);
    if (!ts_write_ok(req))
        return;

    if (ts_buy_parse(body, len, true, false, &b, err, sizeof(err)) != 0) {
        ts_reply_error(req, 400, err);
        return;
    }
    if (b.unknown) {
        ts_reply_error(req, 404, "product not found");
        return;
    }
    dst_uuid_new(id); /* one per client request: a retry on another replica is the same buy */
    json_t *j = json_pack("{s:s,s:I,s:s}", "name", b.name, "quantity", (json_int_t)b.quantity,
                          "request_id", id);
    char *out = dst_json_dumps(j, NULL);
    json_decref(j);
    static const long ok[] = {200, 404, 409, 400, 0};
    struct dst_http_resp resp;
    if (to_leader(fe, "POST", "/orders", out, ok, &resp)) {
        if (resp.status == 200) {
            fe_cache_drop(fe->cache, b.name); /* before the answer: no stale read after it */
            fe_status_order(fe->status);
        }
        pass(req, &resp);
        dst_http_resp_release(&resp);
    } else {
        ts_reply_error(req, 503, "the order service is unavailable");
    }
    free(out);
}

static void on_order(struct dst_http_req *req, void *ud)
{
    struct frontend *fe = ud;
    const char *n = dst_http_req_param(req, "n");
    char path[64];

    if (strspn(n, "0123456789") != strlen(n) || strlen(n) > 18) {
        ts_reply_error(req, 404, "order not found");
        return;
    }
    static const long ok[] = {200, 404, 0};
    struct dst_http_resp resp;
    snprintf(path, sizeof(path), "/orders/%s", n);
    if (to_leader(fe, "GET", path, NULL, ok, &resp)) {
        pass(req, &resp);
        dst_http_resp_release(&resp);
    } else {
        ts_reply_error(req, 503, "the order service is unavailable");
    }
}

static void on_ping(struct dst_http_req *req, void *ud)
{
    struct frontend *fe = ud;

    ts_reply_data(req, json_pack("{s:s,s:o,s:o}", "service", "frontend", "cache",
                                 fe_cache_stats(fe->cache), "orders", fe_leader_stats(fe->leader)));
}

static int mount(struct dst_http_server *srv, struct frontend *fe)
{
    int rc = dst_http_server_route(srv, "GET", "/ping", on_ping, fe, 0, 0);
    rc = rc ? rc : dst_http_server_route(srv, "GET", "/products/{name}", on_product, fe, 0, 0);
    rc = rc ? rc : dst_http_server_route(srv, "POST", "/orders", on_buy, fe, 0, 0);
    rc = rc ? rc : dst_http_server_route(srv, "GET", "/orders/{n}", on_order, fe, 0, 0);
    rc = rc ? rc : fe_status_mount(fe->status, srv);
    return rc;
}

/* Serves until SIGTERM; the status page's streams end before the server drains. */
static int run(struct frontend *fe, const struct dst_http_server_opts *so)
{
    struct dst_http_server *srv = NULL;
    int rc = fe_status_new(fe->catalog, fe->leader, fe->cache, &fe->status);

    rc = rc ? rc : dst_http_server_new(so, &srv);
    rc = rc ? rc : mount(srv, fe);
    rc = rc ? rc : dst_http_server_start(srv);
    if (rc == 0)
        dst_sig_wait(-1);
    else
        dst_error("cannot start: %s", dst_strerror(rc));
    fe_status_close(fe->status);
    if (srv)
        dst_http_server_stop(srv, DRAIN_MS);
    dst_http_server_free(srv);
    fe_status_free(fe->status); /* only now: a buy in the drain counts its order */
    fe->status = NULL;
    return rc;
}

/* --order values, highest id first; 0 or DST_EINVAL (reported). */
static int read_orders(struct frontend *fe, const struct dst_cfg *cfg, const struct dst_cfg_list *l)
{
    char err[300];

    if (l->n == 0)
        return dst_cfg_fail(cfg, stderr, "order", "give at least one order replica, ID=URL");
    for (int i = 0; i < l->n; i++) {
        struct ts_replica r;
        if (ts_peer_parse(l->v[i], &r.id, r.url, sizeof(r.url), err, sizeof(err)) != 0)
            return dst_cfg_fail(cfg, stderr, "order", "%s", err);
        if (fe->norder == MAX_ORDERS)
            return dst_cfg_fail(cfg, stderr, "order", "at most %d replicas", MAX_ORDERS);
        int k = fe->norder++;
        for (; k > 0 && fe->order[k - 1].id <= r.id; k--) {
            if (fe->order[k - 1].id == r.id)
                return dst_cfg_fail(cfg, stderr, "order", "id %ld is given twice", r.id);
            fe->order[k] = fe->order[k - 1];
        }
        fe->order[k] = r;
    }
    return 0;
}

static int check_on_off(const char *value, char *err, size_t errlen)
{
    if (strcmp(value, "on") == 0 || strcmp(value, "off") == 0)
        return 0;
    return dst_errf(DST_EINVAL, err, errlen, "'%s' is neither on nor off", value);
}

int frontend_main(int argc, char **argv)
{
    struct frontend fe = {0};
    struct dst_cfg_list orders = {0};
    const char *listen = NULL, *catalog = NULL;
    const char *cache = NULL;
    bool access_log = false;
    long max_sessions = 0;
    struct dst_cfg_opt opts[] = {
        {"listen", DST_CFG_STR, &listen, "0.0.0.0:8100", "address to listen on", "HOST:PORT",
         .check = dst_cfg_check_hostport},
        {"catalog", DST_CFG_STR, &catalog, "http://127.0.0.1:8101", "the catalog's base URL", "URL",
         .check = dst_cfg_check_url},
        {"order", DST_CFG_LIST, &orders, NULL,
         "an order replica, ID=URL (repeat; the live one with the highest id leads)", "ID=URL"},
        {"health-interval-ms", DST_CFG_INT, &fe.health_interval_ms, "200",
         "how often the order replicas are health-checked (GET /ping)", "MS", 10, 600000},
        {"health-timeout-ms", DST_CFG_INT, &fe.health_timeout_ms, "1000",
         "how long a replica may take to answer a health check", "MS", 1, 600000},
        {"cache", DST_CFG_STR, &cache, "on",
         "on: answer queries from memory, kept true by the catalog's pushed invalidations; off",
         "on|off", .check = check_on_off},
        {"timeout-ms", DST_CFG_INT, &fe.timeout_ms, "5000",
         "how long a call to the catalog may take, and a buy or order lookup with its retries on "
         "the next leader",
         "MS", 1, 600000},
        {"max-sessions", DST_CFG_INT, &max_sessions, "256",
         "client connections served at once (a thread each: thread-per-session)", "N", 1, 4096},
        {"access-log", DST_CFG_BOOL, &access_log, "false", "log one line per request"},
    };
    struct dst_cfg cfg = {"toystore frontend",
                          "the toy store's front end: GET /products/NAME, POST /orders, "
                          "GET /orders/N, a thread per client session, a query cache, a live "
                          "status page at /status/",
                          opts, (int)(sizeof(opts) / sizeof(opts[0]))};
    struct dst_cfg_listener ls = {"listen", NULL, false};
    int rc = dst_cfg_parse(&cfg, argc, argv, stdout, stderr);

    if (rc)
        return rc == DST_CFG_EXIT ? 0 : 2;
    snprintf(fe.catalog, sizeof(fe.catalog), "%s", catalog);
    for (size_t n = strlen(fe.catalog); n > 0 && fe.catalog[n - 1] == '/'; n--)
        fe.catalog[n - 1] = '\0';
    ls.value = listen;
    if (read_orders(&fe, &cfg, &orders) != 0 || dst_cfg_check_listeners(&cfg, stderr, &ls, 1))
        return 2;
    if (cfg.check_only) {
        dst_cfg_ok(&cfg, stdout);
        return 0;
    }
    if (fe_cache_new(fe.catalog, strcmp(cache, "on") == 0, &fe.cache) != 0)
        return 1;
    if (fe_leader_new(fe.order, fe.norder, fe.health_interval_ms, fe.health_timeout_ms,
                      fe.timeout_ms, &fe.leader) != 0) {
        fe_cache_free(fe.cache);
        return 1;
    }
    struct dst_http_server_opts so = {.listen = listen,
                                      .name = "frontend",
                                      .access_log = access_log,
                                      .thread_per_conn = true,
                                      .max_conns = (unsigned)max_sessions,
                                      .max_body = MAX_BODY,
                                      .error_key = "code"};
    rc = run(&fe, &so) ? 1 : 0;
    fe_leader_free(fe.leader);
    fe_cache_free(fe.cache);
    return rc;
}
