/* api.h - the API service: stores and serves results (compatible and native faces) */
#ifndef DST_API_H
#define DST_API_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/result.h"

struct api;
struct dst_http_server;
struct dst_queue;
struct dst_store;

struct api_opts {
    const char *token;        /* bearer token required for writes; NULL/"" = open */
    bool web;                 /* serve the embedded web UI and Swagger UI */
    const char *web_api_base; /* configuration.json's speedTestApiBase ("" = same origin) */
    /*
     * Called with the schedules document (borrowed; see api_schedules_load) after every change
     * through the API and by api_schedules_load, one call at a time, on an HTTP thread or the
     * caller's. NULL: nothing in this process follows the schedules.
     */
    void (*schedules_changed)(void *ud, const json_t *doc);
    void *schedules_ud;
};

/*
 * Creates the API over a store and a queue (both borrowed: they must outlive the API).
 * Nothing listens yet: api_mount adds the routes to an HTTP server.
 */
int api_new(const struct api_opts *opts, struct dst_store *store, struct dst_queue *queue,
            struct api **out);
/* Adds every route of the API (and the web UI unless opts.web is false) to s. */
int api_mount(struct api *a, struct dst_http_server *s);
/* Ends SSE clients; call before stopping the HTTP server. */
void api_shutdown(struct api *a);
void api_free(struct api *a);

/*
 * In-process counterparts of POST /api/v1/results and POST /api/v1/probes/NAME/heartbeat, for
 * a probe that runs in the same process (`dstmc up`). api_ingest validates and stores r
 * (idempotent by id) and returns 0 or a DST_E* code with a reason in err. state is borrowed.
 */
int api_ingest(struct api *a, struct dst_result *r, char *err, size_t errlen);
void api_heartbeat(struct api *a, const char *name, const json_t *state);

/*
 * The schedules live in the store as one document, {"paused": bool, "schedules": [{"cron":
 * "0 9 * * 1-5", "target": "URL" | null, "probe": "NAME" | null, "enabled": bool}]}, edited
 * through /api/v1/schedules. If the store holds none yet, stores {"paused": false, "schedules":
 * seed} (seed: an array of such items, checked as a PUT is). Then calls opts.schedules_changed
 * with the stored document. DST_EINVAL (a bad seed) or the store's error, with a reason in err.
 */
int api_schedules_load(struct api *a, const json_t *seed, char *err, size_t errlen);

/* Fills the store with the original's Development-mode demo data (1345 rows) if it is empty. */
int api_seed_demo(struct dst_store *store);

/* The queue topic that carries test requests from the API and the scheduler to probes. */
#define API_REQUESTS_TOPIC "speedtest.requests"

#endif
