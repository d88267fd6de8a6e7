/* result.h - the result model: one speed test, ok or failed, and its native JSON form */
#ifndef DST_RESULT_H
#define DST_RESULT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "uuid.h"

enum dst_result_status {
    DST_RESULT_OK = 0,
    DST_RESULT_FAILED = 1,
};

/*
 * One speed test. Unknown numbers are NAN (stored as NULL, shown as null); unknown strings
 * are NULL. Strings are owned by the result (dst_result_release frees them). Speeds are bit/s,
 * times ms since the epoch, distances metres. A failed test is a result too: status FAILED
 * with error saying what happened.
 */
struct dst_result {
    char id[DST_UUID_LEN + 1]; /* given by the probe; ingest is idempotent by id */
    int64_t seq;               /* store row number, 0 before it is stored */
    int64_t time_ms;           /* when the test ran */
    enum dst_result_status status;
    char *error;

    char *probe;      /* agent name */
    char *location;   /* location label of the probe */
    char *user;       /* the original's "user" (userId) */
    int64_t device;   /* the original's "device" (loggerId) */
    char *engine;     /* "dummy", "speedtest", "ookla", "librespeed", "iperf3", ... */
    char *target;     /* the target URL the test ran against */
    char *request_id; /* the queue request this answers, if any */

    double download_bps, upload_bps;
    double ping_ms, jitter_ms, loss_pct;
    int64_t bytes_down, bytes_up; /* -1 unknown */
    double duration_s;
    int64_t streams; /* -1 unknown */

    int64_t server_id; /* -1 unknown */
    char *server_host, *server_name, *server_sponsor, *server_country;
    double server_lat, server_lon, server_distance_m;

    char *client_ip, *client_isp, *client_country;
    double client_lat, client_lon;

    bool demo;     /* made by --seed-demo: removable in one call */
    bool excluded; /* kept and listed, but left out of the charts (an outlier) */
};

/* Sets every field to "unknown" (NAN, -1, NULL), status OK, time 0, empty id. */
void dst_result_init(struct dst_result *r);
void dst_result_release(struct dst_result *r); /* frees the strings; r may be re-initialised */
/* Deep copy of src into dst (dst is overwritten without being released). */
void dst_result_copy(struct dst_result *dst, const struct dst_result *src);
/* Replaces *field with a copy of s (NULL clears). */
void dst_result_set(char **field, const char *s);

#define DST_RESULT_TEXT_MAX 500 /* bytes of most text fields (target, request_id, user, ...) */
#define DST_RESULT_INT_MAX  9007199254740992LL /* 2^53: integer fields (JSON holds no more) */

/*
 * Like dst_result_set, with at most max bytes of s, cut between UTF-8 characters: for text from
 * outside (a request's target or id) that must not make the result one the API refuses.
 */
void dst_result_set_cut(char **field, const char *s, size_t max);

/* The native JSON form (see docs/api.md); never NULL. */
json_t *dst_result_to_json(const struct dst_result *r);

/*
 * Reads the native JSON form into r (initialised by the caller) and validates it. A missing id
 * gets a new UUID, a missing time is now. Unknown fields, wrong types, out-of-range values
 * and over-long strings are errors: returns DST_EINVAL and writes "field: reason" into err
 * (the first problem found). r may hold partial data on failure; release it either way.
 */
int dst_result_from_json(const json_t *j, struct dst_result *r, char *err, size_t errlen);

/* Checks the invariants every stored result must hold (ranges, lengths); same err form. */
int dst_result_validate(const struct dst_result *r, char *err, size_t errlen);

const char *dst_result_status_name(enum dst_result_status s); /* "ok" / "failed" */
int dst_result_status_parse(const char *s, enum dst_result_status *out);

#endif
