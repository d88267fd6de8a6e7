/* api_priv.h - what the API's own files share (not for other services) */
#ifndef DST_API_PRIV_H
#define DST_API_PRIV_H

#include <pthread.h>
#include <stdint.h>

#include "core/cred.h"
#include "core/http_server.h"
#include "core/metrics.h"
#include "core/result.h"
#include "speedtest/api/api.h"

struct api_auth;
struct api_retention;
struct api_cache;
struct dst_series_query;
struct dst_sse_hub;
struct dst_store_query;

/* A route of the API: its handler and what it needs (api_route). */
struct api_route {
    struct api *a;
    dst_http_handler_fn fn;
    int access; /* enum api_access */
};
#define API_ROUTES_MAX 48

/* What the API remembers of a probe from its heartbeats. */
struct api_probe {
    char *name;
    int64_t last_seen_ms;
    json_t *state;       /* the last heartbeat body, with "name" and "last_seen" added */
    int64_t progress_ms; /* when the last `progress` event of this probe went out */
    char phase[32];      /* and its phase */
    struct api_probe *next;
};

struct api {
    struct api_opts opts;
    struct dst_store *store;
    struct dst_queue *queue;
    struct dst_sse_hub *hub;
    struct dst_metrics *metrics;
    struct api_cache *cache;
    struct api_auth *auth;
    struct api_route routes[API_ROUTES_MAX];
    int nroutes;
    int64_t started_ms;
    pthread_mutex_t lock; /* guards probes */
    struct api_probe *probes;
    pthread_mutex_t sched_lock;      /* one change of the schedules at a time */
    struct api_retention *retention; /* the background roller and pruner, if running */
};

/* A heartbeat older than this means the probe is offline. */
#define API_PROBE_OFFLINE_MS 90000

/* ---- who may do what (auth.c) ---- */

/* What a route needs. Every write also must not come from a foreign page and must be JSON. */
enum api_access {
    API_OPEN,   /* anyone: health checks, the login itself */
    API_READ,   /* anyone, unless the API is private: then the read scope */
    API_INGEST, /* results and heartbeats: the ingest scope, or a trusted network */
    API_ADMIN,  /* every other write: the admin scope */
};

/* Who sent a request: the credential it carried, if any. */
struct api_who {
    bool known;                       /* a valid credential came with it */
    bool session;                     /* a browser session (cookie), not a bearer token */
    struct dst_cred cred;             /* when known */
    char text[DST_CRED_TEXT_LEN + 1]; /* a session's cookie value (for its CSRF token) */
};

/*
 * The name of the session cookie of req's API: "dstmc_session", and "_PORT" when the Host the
 * browser used names a port. Browsers keep cookies per host, not per port: two dstmc on one
 * host would otherwise overwrite each other's login. Replicas behind one address share it.
 */
void api_session_cookie(struct dst_http_req *req, char *name, size_t len);

int api_auth_new(const struct api_opts *o, struct api_auth **out);
void api_auth_free(struct api_auth *au);

/*
 * Adds a route (flags and max_body as dst_http_server_route's) whose requests pass
 * api_auth_check with access before fn(req, a) runs. DST_ETOOBIG past API_ROUTES_MAX routes.
 */
int api_route(struct api *a, struct dst_http_server *s, const char *method, const char *pattern,
              dst_http_handler_fn fn, enum api_access access, unsigned flags, size_t max_body);

/*
 * Whether req may go on to a route needing access; if not, it has been answered (403 for a
 * write from a foreign page or a failed CSRF check, 415 for a write that is not JSON, 401
 * without a valid credential, 403 for one without the scope, 429 after too many failures from
 * its address). who (may be NULL) receives the credential it carried.
 */
bool api_auth_check(struct api *a, struct dst_http_req *req, enum api_access access,
                    struct api_who *who);

/*
 * Checks a token given to log in (a stored token or the operator's) from req's client: 0 and
 * *out, DST_EPERM (logged, counted against the client's address; 429 is the caller's when
 * api_auth_throttled), or the store's error. parent receives the session's parent text.
 */
int api_auth_login(struct api *a, struct dst_http_req *req, const char *token, struct dst_cred *out,
                   char *parent, size_t parentlen);
/* Whether the client's address has failed too often lately; sets Retry-After and answers 429. */
bool api_auth_throttled(struct api *a, struct dst_http_req *req);
/* Whether reads need a credential (--private). */
bool api_auth_private(const struct api *a);

/*
 * The store's change feed (feed.c) publishes the SSE events of every store change (result,
 * deleted, excluded, schedules, resync), made here or through another replica: started by
 * api_new, stopped by api_shutdown.
 */
int api_feed_start(struct api *a);
void api_feed_stop(struct api *a);
/*
 * The schedules changed (feed): reads them, publishes the "schedules" event (the GET body) and
 * calls opts.schedules_changed, under sched_lock.
 */
void api_schedules_changed(struct api *a);

/* After results were stored: metrics (the "result" events come from the store's feed). */
void api_results_stored(struct api *a, const struct dst_result *rs, size_t n, const bool *created,
                        const char *face);

/* ---- the background roller and pruner (retention.c) ---- */

/* Starts it when opts.retention_interval_ms > 0 (its first pass at once). */
int api_retention_start(struct api *a);
/* Stops it and waits for its pass to end (each store call is short); NULL and twice are fine. */
void api_retention_stop(struct api *a);

/* Route registration of each part. */
int api_compat_mount(struct api *a, struct dst_http_server *s);
int api_results_mount(struct api *a, struct dst_http_server *s);
int api_results_delete_mount(struct api *a, struct dst_http_server *s);
int api_series_mount(struct api *a, struct dst_http_server *s);
int api_probes_mount(struct api *a, struct dst_http_server *s);
int api_schedules_mount(struct api *a, struct dst_http_server *s);
int api_session_mount(struct api *a, struct dst_http_server *s);

/* The series' bucket width for a span when the client names none (at most ~400 buckets). */
int64_t api_series_auto_step(int64_t span_ms);

/*
 * The times the API takes: years 1 to 9999, as dst_datetime_parse reads them. Far from the
 * int64 limits, so sums and differences of two of them cannot overflow.
 */
#define API_TIME_MIN (-62135596800000LL) /* 0001-01-01T00:00:00Z */
#define API_TIME_MAX 253402300799999LL   /* 9999-12-31T23:59:59.999Z */

/*
 * Reads time query argument name (ISO 8601 or ms) of the n args within API_TIME_MIN..MAX;
 * *out untouched when absent. DST_EINVAL with the 400's message (naming name) in err.
 */
int api_query_time(const struct dst_http_qarg *args, int n, const char *name, int64_t *out,
                   char *err, size_t errlen);
/*
 * The store query of GET /api/v1/results (limit non-NULL: also the page size, limit=, and
 * cursor=; q->limit is one more, to tell if there is a next page) or of GET
 * /api/v1/results.csv (limit NULL) from the n decoded query args: from, to, probe, engine,
 * status. q is initialised here; its text values point into args. DST_EINVAL with the 400's
 * message in err on an unknown argument or a bad value.
 */
int api_results_query(const struct dst_http_qarg *args, int n, int64_t *limit,
                      struct dst_store_query *q, char *err, size_t errlen);

/*
 * The series query of GET /api/v1/series from the n decoded query args (from, to, probe,
 * step; now_ms is "now", the default end): the bucket width is step=, or a nice one for the
 * span. q->probe points into args. DST_EINVAL with the 400's message in err.
 */
int api_series_query(const struct dst_http_qarg *args, int n, int64_t now_ms,
                     struct dst_series_query *q, char *err, size_t errlen);

/*
 * The schedules document a PUT /api/v1/schedules body makes, given the current one (paused
 * stays unless the body says): *out is a new reference. DST_EINVAL with the 400's message in
 * err, naming the first bad field ("schedules[2].cron: minute: '61' is out of 0-59").
 */
int api_schedules_check(const json_t *body, const json_t *cur, json_t **out, char *err,
                        size_t errlen);
/* The GET body of a stored document: each schedule with its id and next_run; a new reference. */
json_t *api_schedules_view(const json_t *doc);

/* A whole decimal int64 (optional '-', digits, nothing else, in range); false otherwise. */
bool api_parse_int64(const char *s, int64_t *out);

/* ---- the response cache (cache.c) ---- */

/*
 * Whole responses keyed by request (path + query), valid while the store version they were
 * built from is current. Hits are served without a copy (reference counted).
 */
int api_cache_new(size_t max_entries, struct api_cache **out);
void api_cache_free(struct api_cache *c);
/* Replies from the cache if key is there for version; true if it did. */
bool api_cache_reply(struct api_cache *c, struct dst_http_req *req, const char *key,
                     uint64_t version);
/* Stores body (taken) for key and version, and replies with it (200, ctype). */
int api_cache_put_reply(struct api_cache *c, struct dst_http_req *req, const char *key,
                        uint64_t version, const char *ctype, char *body, size_t len);

/* ---- the OpenAPI document under a base path (swagger.c) ---- */

/* Whether a base path is none at all (NULL, "" or "/"). */
bool api_base_path_is_root(const char *base);

/* The check of --base-path: none, or an absolute path without spaces, quotes, '?', '#', '\\'. */
int api_base_path_check(const char *value, char *err, size_t errlen);

/*
 * With a base path (opts.base_path), serves the OpenAPI document with servers = [base path] at
 * /api/v1/openapi.json and /swagger/v1/swagger.json, and redirects /swagger to BASE/swagger/.
 * Call before dst_assets_mount (first route wins). Nothing without one.
 */
int api_swagger_mount(struct api *a, struct dst_http_server *s);

#endif
