/* api_priv.h - what the API's own files share (not for other services) */
#ifndef DST_API_PRIV_H
#define DST_API_PRIV_H

#include <pthread.h>
#include <stdint.h>

#include "core/http_server.h"
#include "core/metrics.h"
#include "core/result.h"
#include "speedtest/api/api.h"

struct api_cache;
struct dst_series_query;
struct dst_sse_hub;
struct dst_store_query;

/* What the API remembers of a probe from its heartbeats. */
struct api_probe {
    char *name;
    int64_t last_seen_ms;
    json_t *state; /* the last heartbeat body, with "name" and "last_seen" added */
    struct api_probe *next;
};

struct api {
    struct api_opts opts;
    struct dst_store *store;
    struct dst_queue *queue;
    struct dst_sse_hub *hub;
    struct dst_metrics *metrics;
    struct api_cache *cache;
    int64_t started_ms;
    pthread_mutex_t lock; /* guards probes */
    struct api_probe *probes;
    pthread_mutex_t sched_lock; /* one change of the schedules at a time */
};

/* A heartbeat older than this means the probe is offline. */
#define API_PROBE_OFFLINE_MS 90000

/* Writes need the bearer token when one is configured; replies 401 and returns false if not. */
bool api_authorized(struct api *a, struct dst_http_req *req);

/* After results were stored: SSE "result" events and metrics. */
void api_results_stored(struct api *a, const struct dst_result *rs, size_t n, const bool *created,
                        const char *face);

/* Route registration of each part. */
int api_compat_mount(struct api *a, struct dst_http_server *s);
int api_results_mount(struct api *a, struct dst_http_server *s);
int api_series_mount(struct api *a, struct dst_http_server *s);
int api_probes_mount(struct api *a, struct dst_http_server *s);
int api_schedules_mount(struct api *a, struct dst_http_server *s);

/* The series' bucket width for a span when the client names none (at most ~400 buckets). */
int64_t api_series_auto_step(int64_t span_ms);

/* Reads time query argument name (ISO 8601 or ms) of the n args; *out untouched when absent. */
int api_query_time(const struct dst_http_qarg *args, int n, const char *name, int64_t *out);

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

#endif
