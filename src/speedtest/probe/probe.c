/* probe.c - one speed test run the probe's way: engine, original console lines, upload */
#include "speedtest/probe/probe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/http_client.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/uuid.h"
#include "speedtest/engines/engine.h"

void probe_format_mbps(double bps, char *out, size_t outlen)
{
    double mbps = isfinite(bps) ? round(bps / 1e6 * 100) / 100 : 0;
    snprintf(out, outlen, "%.15g", mbps);
}

/* The id, time and probe identity of a result. */
static void identify(const struct probe_opts *o, const char *request_id, struct dst_result *r)
{
    if (request_id) {
        char *name = dst_xasprintf("%s/%s", request_id, o->agent);
        dst_uuid_from_name(name, r->id);
        free(name);
    } else {
        dst_uuid_new(r->id);
    }
    r->time_ms = dst_datetime_now_ms();
    dst_result_set(&r->probe, o->agent);
    dst_result_set_cut(&r->location, o->location, DST_RESULT_TEXT_MAX);
    dst_result_set_cut(&r->user, o->user, DST_RESULT_TEXT_MAX);
    r->device = o->device;
    dst_result_set_cut(&r->request_id, request_id, DST_RESULT_TEXT_MAX);
}

void probe_fail(const struct probe_opts *o, const char *target, const char *request_id,
                const char *reason, FILE *out, struct dst_result *r)
{
    identify(o, request_id, r);
    dst_result_set_cut(&r->target, target ? target : o->target, DST_RESULT_TEXT_MAX);
    r->status = DST_RESULT_FAILED;
    dst_result_set(&r->error, reason);
    if (out) {
        fprintf(out, "Test failed: %s\n", reason);
        fflush(out);
    }
}

int probe_measure(const struct probe_opts *o, const char *target, const char *request_id, FILE *out,
                  struct dst_result *r)
{
    struct engine_ctx ctx = {.target = target ? target : o->target,
                             .timeout_s = o->timeout_s,
                             .console = out,
                             .progress = o->progress,
                             .ud = o->progress_ud,
                             .live_line = o->progress_line};
    char down[32], up[32];

    identify(o, request_id, r);
    int64_t t0 = dst_monotonic_ms();
    int rc = engine_run(&ctx, r);
    if (rc)
        return rc;
    if (!isfinite(r->duration_s) || r->duration_s == 0)
        r->duration_s = (double)(dst_monotonic_ms() - t0) / 1000;
    if (out && o->progress_line)
        fputs("\r\033[K", out); /* clear the live line first */
    if (out && r->status == DST_RESULT_OK) {
        probe_format_mbps(r->download_bps, down, sizeof(down));
        probe_format_mbps(r->upload_bps, up, sizeof(up));
        fprintf(out, "Got download: %s Mbps and upload: %s Mbps\n", down, up);
    } else if (out) {
        fprintf(out, "Test failed: %s\n", r->error ? r->error : "unknown error");
    }
    if (out)
        fflush(out);
    return 0;
}

/* The API's URL for path, without a doubled slash (caller frees). */
static char *api_url(const struct probe_opts *o, const char *path)
{
    size_t n = strlen(o->api);
    while (n > 0 && o->api[n - 1] == '/')
        n--;
    return dst_xasprintf("%.*s%s", (int)n, o->api, path);
}

/* POSTs j (borrowed) as JSON to the API's path; the answer goes to resp (release it). */
static int post_json(const struct probe_opts *o, struct dst_http_client *hc, const char *path,
                     const json_t *j, const char *key, long timeout_ms, struct dst_http_resp *resp)
{
    char *url = api_url(o, path);
    char *body = dst_json_dumps(j, NULL);
    struct dst_http_call call = {.method = "POST",
                                 .url = url,
                                 .body = body,
                                 .content_type = "application/json",
                                 .bearer = o->token,
                                 .idempotency_key = key,
                                 .timeout_ms = timeout_ms};
    int rc = hc ? dst_http_client_do(hc, &call, resp) : dst_http_do(&call, resp);
    free(body);
    free(url);
    return rc;
}

/* Posts r over HTTP; on failure writes the original's reason into err. */
static int upload_http(const struct probe_opts *o, struct dst_http_client *hc,
                       const struct dst_result *r, char *err, size_t errlen)
{
    struct dst_http_resp resp = {0};
    json_t *j = dst_result_to_json(r);
    /* ingest is idempotent by the result's id: a proxy in front may retry it on a replica */
    int rc = post_json(o, hc, "/api/v1/results", j, r->id, 15000, &resp);
    json_decref(j);
    if (rc == 0 && (resp.status < 200 || resp.status > 299)) {
        snprintf(err, errlen, "Failure response: %s", resp.body ? resp.body : "");
        /* only a verdict on the result itself is final; 401, 404, 429, 5xx... may pass later */
        rc = resp.status == 400 || resp.status == 413 || resp.status == 422 ? DST_EINVAL : DST_EDEP;
    } else if (rc) {
        snprintf(err, errlen, "%s", resp.err[0] ? resp.err : dst_strerror(rc));
    }
    dst_http_resp_release(&resp);
    return rc;
}

int probe_post(const struct probe_opts *o, struct dst_http_client *hc, struct dst_result *r,
               char *err, size_t errlen)
{
    return o->sink ? o->sink->post(o->sink->ud, r, err, errlen)
                   : upload_http(o, hc, r, err, errlen);
}

int probe_upload(const struct probe_opts *o, struct dst_http_client *hc, struct dst_result *r,
                 FILE *out, char *err_out, size_t errlen)
{
    char err[1024] = "";

    if (!o->upload) {
        if (out)
            fputs("Skipping data upload to speedtest API\n", out);
        return 0;
    }
    bool ok = r->status == DST_RESULT_OK;
    if (out) /* a failed test is stored too, as a failure: it is no "complete" speed test */
        fputs(ok ? "Uploading data to speedtest API\n"
                 : "Uploading the failed test to speedtest API\n",
              out);
    int rc = probe_post(o, hc, r, err, sizeof(err));
    if (rc && err_out)
        snprintf(err_out, errlen, "%s", err);
    if (out) {
        if (rc)
            fprintf(out, "Upload failed! %s\n", err);
        fputs(rc || !ok ? "Speedtest failed!\n" : "Speedtest complete!\n", out);
        fflush(out);
    }
    return rc;
}

/* Sets key to s when s says something. */
static void set_if(json_t *j, const char *key, const char *s)
{
    if (s && *s)
        json_object_set_new(j, key, json_string(s));
}

/* The heartbeat's JSON body. */
static json_t *beat_json(const struct probe_opts *o, const struct probe_beat *b)
{
    char ts[DST_DATETIME_LEN];
    json_t *j = json_pack("{s:s}", "state", b->state ? b->state : "idle");

    dst_json_set_str(j, "location", o->location);
    dst_json_set_str(j, "target", o->target);
    set_if(j, "request_id", b->request_id);
    set_if(j, "phase", b->phase);
    if (isfinite(b->bps))
        json_object_set_new(j, "bps", json_real(b->bps));
    if (isfinite(b->elapsed_s))
        json_object_set_new(j, "elapsed_s", json_real(b->elapsed_s));
    set_if(j, "last_result_id", b->last_id);
    if (b->last_ms > 0) {
        dst_datetime_format_utc(b->last_ms, ts);
        json_object_set_new(j, "last_result_time", json_string(ts));
    }
    return j;
}

int probe_heartbeat(const struct probe_opts *o, struct dst_http_client *hc,
                    const struct probe_beat *b)
{
    struct dst_http_resp resp = {0};

    if (!o->sink && (!o->api || !*o->api))
        return 0;
    json_t *j = beat_json(o, b);
    if (o->sink) {
        o->sink->heartbeat(o->sink->ud, o->agent, j);
        json_decref(j);
        return 0;
    }
    char *path = dst_xasprintf("/api/v1/probes/%s/heartbeat", o->agent);
    int rc = post_json(o, hc, path, j, NULL, b->phase ? 1000 : 3000, &resp);
    free(path);
    json_decref(j);
    if (rc == 0 && resp.status != 204)
        rc = DST_EDEP;
    if (rc)
        dst_debug("heartbeat of %s: %s %s", o->agent, dst_strerror(rc), resp.err);
    dst_http_resp_release(&resp);
    return rc;
}
