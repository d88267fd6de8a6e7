/* frontend_status.c - the front end's live status page: /status/, its JSON and its events */
#include <pthread.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assets.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/http_client.h"
#include "core/http_server.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/sse.h"
#include "toystore/toystore.h"

#define SLOTS        60   /* seconds of order counts kept (the page's sparkline) */
#define RATE_WINDOW  5    /* orders per second: the mean of the last RATE_WINDOW whole seconds */
#define PUSH_MS      1000 /* a status event this often while a page listens */
#define HEARTBEAT_MS 15000
#define CATALOG_MS   2000 /* GET /products may take this long; the page shows the error after */
#define LIST_MAX     (1024 * 1024)

/*
 * Reads only: the page changes nothing, it shows the catalog's list (GET /products, asked at
 * each status), the orders this front end acknowledged, the replicas and the leader as
 * frontend_leader.c sees them, and the cache's counters. The page and its files are embedded
 * (web/toystore/, served under /status/) and get a Content-Security-Policy that allows no
 * inline script and no other origin.
 */
struct fe_status {
    char products_url[512];
    struct fe_leader *leader;
    struct fe_cache *cache;
    struct dst_sse_hub *hub;
    pthread_mutex_t mu; /* the counts */
    uint64_t total;
    int64_t sec[SLOTS]; /* the monotonic second each slot counts */
    uint64_t count[SLOTS];
    pthread_t thread;
    bool started;
    atomic_bool stop;
};

static const char CSP[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'";

/* The slot of second t (t may be negative: a machine up for less than a minute). */
static int slot(int64_t t)
{
    return (int)((t % SLOTS + SLOTS) % SLOTS);
}

void fe_status_order(struct fe_status *s)
{
    int64_t now = dst_monotonic_ms() / 1000;
    int k = slot(now);

    pthread_mutex_lock(&s->mu);
    if (s->sec[k] != now) {
        s->sec[k] = now;
        s->count[k] = 0;
    }
    s->count[k]++;
    s->total++;
    pthread_mutex_unlock(&s->mu);
}

/* {"total","per_s","window_s","per_second":[the last SLOTS whole seconds, oldest first]} */
static json_t *orders_json(struct fe_status *s)
{
    int64_t now = dst_monotonic_ms() / 1000;
    json_t *hist = json_array();
    uint64_t recent = 0;

    pthread_mutex_lock(&s->mu);
    for (int64_t t = now - SLOTS; t < now; t++) {
        int k = slot(t);
        uint64_t n = s->sec[k] == t ? s->count[k] : 0;
        json_array_append_new(hist, json_integer((json_int_t)n));
        recent += t >= now - RATE_WINDOW ? n : 0;
    }
    uint64_t total = s->total;
    pthread_mutex_unlock(&s->mu);
    return json_pack("{s:I,s:f,s:i,s:o}", "total", (json_int_t)total, "per_s",
                     (double)recent / RATE_WINDOW, "window_s", RATE_WINDOW, "per_second", hist);
}

/* The catalog's toys ({"toys":[…]}) or why not ({"toys":null,"catalog_error":…}), into j. */
static void toys_into(struct fe_status *s, json_t *j)
{
    struct dst_http_client *c = ts_client();
    struct dst_http_call hc = {
        .url = s->products_url, .timeout_ms = CATALOG_MS, .max_body = LIST_MAX};
    struct dst_http_resp resp = {0};
    json_t *doc = NULL, *toys = NULL;
    char why[300] = "";

    if (!c)
        snprintf(why, sizeof(why), "no HTTP client");
    else if (dst_http_client_do(c, &hc, &resp) != 0)
        snprintf(why, sizeof(why), "%s", resp.err);
    else if (resp.status != 200)
        snprintf(why, sizeof(why), "the catalog answered %ld", resp.status);
    else if (!(doc = dst_json_parse(resp.body, resp.len, NULL, 0)) ||
             !json_is_array(toys = json_object_get(doc, "data")))
        snprintf(why, sizeof(why), "the catalog's list is not {\"data\":[…]}");
    if (c)
        dst_http_resp_release(&resp);
    json_object_set(j, "toys", why[0] ? json_null() : toys);
    json_object_set_new(j, "catalog_error", why[0] ? json_string(why) : json_null());
    json_decref(doc);
}

/* The whole status: {"data":{toys, catalog_error, orders, leader, epoch, replicas, cache…}}. */
static json_t *status_json(struct fe_status *s)
{
    char now[DST_DATETIME_LEN];
    json_t *d = fe_leader_stats(s->leader); /* leader, epoch, elections, replicas */
    json_t *reps = json_object_get(d, "replicas");
    json_t *leader = json_object_get(d, "leader");
    size_t i;
    json_t *r;

    json_array_foreach(reps, i, r)
    {
        bool leads = json_is_integer(leader) &&
                     json_integer_value(json_object_get(r, "id")) == json_integer_value(leader);
        json_object_set_new(r, "leader", json_boolean(leads));
    }
    toys_into(s, d);
    json_object_set_new(d, "orders", orders_json(s));
    json_object_set_new(d, "cache", fe_cache_stats(s->cache));
    dst_datetime_format_utc(dst_datetime_now_ms(), now);
    json_object_set_new(d, "updated", json_string(now));
    return json_pack("{s:o}", "data", d);
}

static void publish(struct fe_status *s)
{
    json_t *j = status_json(s);
    char *text = dst_json_dumps(j, NULL);

    if (text)
        dst_sse_hub_publish(s->hub, "status", text);
    free(text);
    json_decref(j);
}

/* Pushes the status each PUSH_MS while a page listens, and at once when the leader changes. */
static void *pusher(void *ud)
{
    struct fe_status *s = ud;
    long leader = -2; /* nobody yet: the first look is a change */
    int64_t epoch = -1, due = dst_monotonic_ms();

    while (!atomic_load(&s->stop)) {
        bool changed = fe_leader_wait(s->leader, &leader, &epoch, due);
        int64_t now = dst_monotonic_ms();
        if (atomic_load(&s->stop))
            break;
        if (!changed && now < due)
            continue;
        if (dst_sse_hub_clients(s->hub) > 0)
            publish(s);
        due = now + PUSH_MS;
    }
    return NULL;
}

/* ---- routes ---- */

static void on_data(struct dst_http_req *req, void *ud)
{
    json_t *j = status_json(ud);

    dst_http_add_header(req, "Cache-Control", "no-store");
    dst_http_reply_json(req, 200, j);
    json_decref(j);
}

static void on_events(struct dst_http_req *req, void *ud)
{
    struct fe_status *s = ud;

    if (dst_sse_hub_attach(s->hub, req) != 0)
        ts_reply_error(req, 503, "cannot open the event stream");
}

static void on_redirect(struct dst_http_req *req, void *ud)
{
    (void)ud;
    dst_http_add_header(req, "Location", "/status/");
    dst_http_reply_static(req, 301, NULL, NULL, 0);
}

static void on_page(struct dst_http_req *req, void *ud)
{
    const char *file = dst_http_req_param(req, "file");
    char path[128];

    (void)ud;
    int n = snprintf(path, sizeof(path), "/status/%s", file && *file ? file : "index.html");
    const struct dst_asset *a = n > 0 && (size_t)n < sizeof(path) ? dst_asset_find(path) : NULL;
    if (!a) {
        ts_reply_error(req, 404, "no such resource");
        return;
    }
    dst_http_add_header(req, "Content-Security-Policy", CSP);
    dst_http_add_header(req, "X-Content-Type-Options", "nosniff");
    dst_assets_reply(req, a);
}

int fe_status_mount(struct fe_status *s, struct dst_http_server *srv)
{
    int rc = dst_http_server_route(srv, "GET", "/status", on_redirect, s, 0, 0);
    rc = rc ? rc : dst_http_server_route(srv, "GET", "/status/", on_page, s, 0, 0);
    rc = rc ? rc : dst_http_server_route(srv, "GET", "/status/data", on_data, s, 0, 0);
    rc = rc ? rc : dst_http_server_route(srv, "GET", "/status/events", on_events, s, 0, 0);
    rc = rc ? rc : dst_http_server_route(srv, "GET", "/status/{file}", on_page, s, 0, 0);
    return rc;
}

/* ---- life ---- */

int fe_status_new(const char *catalog_url, struct fe_leader *leader, struct fe_cache *cache,
                  struct fe_status **out)
{
    struct fe_status *s = dst_xnew(struct fe_status);
    int rc = 0;

    snprintf(s->products_url, sizeof(s->products_url), "%s/products", catalog_url);
    s->leader = leader;
    s->cache = cache;
    pthread_mutex_init(&s->mu, NULL);
    for (int k = 0; k < SLOTS; k++)
        s->sec[k] = INT64_MIN; /* no second */
    rc = dst_sse_hub_new(HEARTBEAT_MS, 0, &s->hub);
    if (rc == 0) {
        s->started = pthread_create(&s->thread, NULL, pusher, s) == 0;
        rc = s->started ? 0 : DST_EDEP;
    }
    if (rc) {
        dst_error("cannot start the status page: %s", dst_strerror(rc));
        fe_status_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void fe_status_close(struct fe_status *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    if (s->started)
        pthread_join(s->thread, NULL);
    s->started = false;
    dst_sse_hub_close(s->hub);
}

void fe_status_free(struct fe_status *s)
{
    if (!s)
        return;
    fe_status_close(s);
    dst_sse_hub_free(s->hub);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
