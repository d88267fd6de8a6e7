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
struct dst_sse_hub;

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

/*
 * The times the API takes: years 1 to 9999, as dst_datetime_parse reads them. Far from the
 * int64 limits, so sums and differences of two of them cannot overflow.
 */
#define API_TIME_MIN (-62135596800000LL) /* 0001-01-01T00:00:00Z */
#define API_TIME_MAX 253402300799999LL   /* 9999-12-31T23:59:59.999Z */

/*
 * Reads a time query argument (ISO 8601 or ms) within API_TIME_MIN..MAX; *out untouched when
 * absent. On bad input replies 400 naming the argument and returns DST_EINVAL.
 */
int api_query_time(struct dst_http_req *req, const char *name, int64_t *out);

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

#endif
