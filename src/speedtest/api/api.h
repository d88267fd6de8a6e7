/* api.h - the API service: stores and serves results (compatible and native faces) */
#ifndef DST_API_H
#define DST_API_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/cfg.h"
#include "core/cidr.h"
#include "core/http_server.h"
#include "core/result.h"

struct api;
struct dst_http_server;
struct dst_queue;
struct dst_store;

struct api_opts {
    /*
     * Who may do what (auth.c). Writes always need a credential: a token from the store
     * (`dstmc token`), the operator's token, or a browser session opened with either; results
     * may also be posted without one from the trusted networks. operator_token: the operator's
     * admin token (DSTMC_TOKEN, --token-file), compared by hash; NULL/"" none. private_reads:
     * reads need a credential with the read scope too. trust_ingest[0 .. ntrust_ingest): CIDRs
     * (comma-separated in each entry, "none"; checked already) whose result posts need none.
     * (Pages of the web origins that may write are the HTTP server's cors_origins.) first_token: if neither the operator nor the store has a token, make an
     * admin token and log a link that logs a browser in with it (api_auth_first_token).
     */
    const char *operator_token;
    bool private_reads;
    const char *const *trust_ingest;
    size_t ntrust_ingest;
    bool first_token;
    bool web;                 /* serve the embedded web UI and Swagger UI */
    const char *web_api_base; /* configuration.json's speedTestApiBase ("" = same origin) */
    /*
     * The path prefix a proxy strips before the API sees a request (the original's basePath,
     * e.g. "/backend" behind the workshop's ingress): the OpenAPI document's servers and the
     * /swagger redirect name it (swagger.c). NULL, "" or "/": none.
     */
    const char *base_path;
    /*
     * Called with the schedules document (borrowed; see api_schedules_load) after every change
     * through the API, after every change the store's feed reports (another replica's too),
     * and by api_schedules_load, one call at a time, on an HTTP thread, the feed's or the
     * caller's (the same document may come twice). NULL: nothing in this process follows
     * the schedules.
     */
    void (*schedules_changed)(void *ud, const json_t *doc);
    void *schedules_ud;
    /*
     * The background thread (retention.c), every retention_interval_ms (0: no thread): rolls
     * the changed buckets up, then prunes raw results older than retention_raw_ms by whole
     * days (0: kept forever) and rollups older than retention_rollups_ms (0: forever).
     */
    int64_t retention_raw_ms, retention_rollups_ms, retention_interval_ms;
};

/*
 * Creates the API over a store and a queue (both borrowed: they must outlive the API).
 * Nothing listens yet: api_mount adds the routes to an HTTP server.
 */
int api_new(const struct api_opts *opts, struct dst_store *store, struct dst_queue *queue,
            struct api **out);
/* Adds every route of the API (and the web UI unless opts.web is false) to s. */
int api_mount(struct api *a, struct dst_http_server *s);
/* Ends the SSE streams; call before stopping the HTTP server (publishing stays safe until api_free). */
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
 * seed} (seed: an array of such items, checked as a PUT is) and sets *seeded (may be NULL).
 * Then calls opts.schedules_changed with the stored document. DST_EINVAL (a bad seed) or the
 * store's error, with a reason in err.
 */
int api_schedules_load(struct api *a, const json_t *seed, bool *seeded, char *err, size_t errlen);

/*
 * The access options `dstmc api` and `dstmc up` share: the operator's token (DSTMC_TOKEN only,
 * never on the command line, or --token-file), --private, --trust-ingest, --cors-origin.
 * API_ACCESS_CFG_OPTS(c) expands to their struct dst_cfg_opt entries for c's fields.
 */
struct api_access_cfg {
    const char *token, *token_file;
    bool private_reads;
    struct dst_cfg_list trust_ingest, cors_origins;
};
#define API_ACCESS_CFG_OPTS(c)                                                                     \
    {                                                                                              \
        "token", DST_CFG_STR,     &(c).token, "", "the operator's admin token",                    \
        "TOKEN", .env_only = true},                                                                \
        {"token-file",                                                                             \
         DST_CFG_STR,                                                                              \
         &(c).token_file,                                                                          \
         "",                                                                                       \
         "file whose first line is the operator's admin token",                                    \
         "PATH"},                                                                                  \
        {"private", DST_CFG_BOOL, &(c).private_reads, "false",                                     \
         "reads need a credential too (read scope)"},                                              \
        {"trust-ingest",                                                                           \
         DST_CFG_LIST,                                                                             \
         &(c).trust_ingest,                                                                        \
         "127.0.0.0/8,::1",                                                                        \
         "networks whose result posts need no credential (repeat; \"none\")",                      \
         "CIDR",                                                                                   \
         .check = dst_cidr_check},                                                                 \
    {                                                                                              \
        "cors-origin", DST_CFG_LIST, &(c).cors_origins, NULL,                                      \
            "a web origin whose pages may use this API, with the user's login (repeat)", "ORIGIN", \
            .check = dst_http_cors_origins_check                                                   \
    }

/*
 * Checks what start would: that the operator's token can be read and is fit to be one.
 * DST_EINVAL with the option's name in *key and a reason in err.
 */
int api_access_cfg_check(const struct api_access_cfg *c, const char **key, char *err,
                         size_t errlen);

/*
 * Applies c to the API's and its HTTP server's options (pointers into c and *secret, which must
 * outlive both): loads the operator's token into *secret (the caller frees it). DST_EINVAL
 * (logged) if it cannot.
 */
int api_access_cfg_apply(const struct api_access_cfg *c, struct api_opts *ao,
                         struct dst_http_server_opts *so, char **secret);

/*
 * When opts.first_token is set and no token exists (neither the operator's nor one in the
 * store), makes an admin token named "first-start" and logs, once, a link that logs a browser
 * in with it: url (the API's own, "http://HOST:PORT") + "/#token=...". Call once the API
 * listens. A store error is logged and returned.
 */
int api_auth_first_token(struct api *a, const char *url);

/*
 * The retention options `dstmc api` and `dstmc up` share: --retention-raw, --retention-rollups
 * (durations: 0, or a number with s, m, h, d or w) and --retention-interval (seconds).
 */
struct api_retention_cfg {
    const char *raw, *rollups;
    long interval;
};
#define API_RETENTION_CFG_OPTS(c)                                                             \
    {"retention-raw",                                                                         \
     DST_CFG_STR,                                                                             \
     &(c).raw,                                                                                \
     "0",                                                                                     \
     "prune raw results older than this, by whole days, keeping their hourly and daily "      \
     "rollups (0: keep forever)",                                                             \
     "DURATION",                                                                              \
     .check = api_check_duration},                                                            \
        {"retention-rollups",                                                                 \
         DST_CFG_STR,                                                                         \
         &(c).rollups,                                                                        \
         "0",                                                                                 \
         "prune rollups older than this (0: keep forever; else at least --retention-raw)",    \
         "DURATION",                                                                          \
         .check = api_check_duration},                                                        \
    {                                                                                         \
        "retention-interval", DST_CFG_INT, &(c).interval, "60",                               \
            "seconds between passes of the background roller and pruner", "SECONDS", 1, 86400 \
    }

/* A duration option's value ("0", "90d", "12h", "30m", "45s", "2w"): 0 or DST_EINVAL. */
int api_parse_duration(const char *s, int64_t *ms);
/* The cfg check of a duration option. */
int api_check_duration(const char *v, char *err, size_t errlen);
/* Sets ao's retention fields from c; DST_EINVAL with the reason in err (rollups < raw). */
int api_retention_cfg_apply(const struct api_retention_cfg *c, struct api_opts *ao, char *err,
                            size_t errlen);

/* Fills the store with the original's Development-mode demo data (1345 rows) if it is empty. */
int api_seed_demo(struct dst_store *store);

/* The queue topic that carries test requests from the API and the scheduler to probes. */
#define API_REQUESTS_TOPIC "speedtest.requests"

#endif
