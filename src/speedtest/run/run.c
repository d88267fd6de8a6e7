/* run.c - `dstmc run`: one speed test now, from the command line */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cfg.h"
#include "core/cfg_check.h"
#include "core/cred.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/json.h"
#include "core/result.h"
#include "speedtest/engines/engine.h"
#include "speedtest/probe/probe.h"
#include "speedtest/services.h"

struct run_cfg {
    const char *target, *api, *token, *token_file, *agent, *delim;
    bool json, csv, csv_header;
    long timeout;
};

static int check_target(const char *v, char *err, size_t errlen)
{
    return engine_check_target(v, err, errlen);
}

/* The live line on a terminal: the phase and its current rate, rewritten in place. */
static void show_progress(void *ud, const char *phase, double bps)
{
    FILE *tty = ud;
    fprintf(tty, "\r\033[K  %-8s %10.2f Mbps", phase, bps / 1e6);
    fflush(tty);
}

/* speedtest-cli's --json: its keys, plus "result", dstmc's own form of the same test. */
static json_t *speedtest_cli_json(const struct dst_result *r)
{
    char ts[DST_DATETIME_LEN];
    dst_datetime_format_utc(r->time_ms, ts);
    json_t *server = json_object();
    dst_json_set_str(server, "host", r->server_host);
    dst_json_set_str(server, "name", r->server_name);
    dst_json_set_str(server, "sponsor", r->server_sponsor);
    dst_json_set_str(server, "cc", r->server_country);
    dst_json_set_num(server, "lat", r->server_lat);
    dst_json_set_num(server, "lon", r->server_lon);
    dst_json_set_num(server, "d", r->server_distance_m / 1000);
    dst_json_set_num(server, "latency", r->ping_ms);
    json_object_set_new(server, "id", r->server_id >= 0 ? json_integer(r->server_id) : json_null());
    json_t *client = json_object();
    dst_json_set_str(client, "ip", r->client_ip);
    dst_json_set_str(client, "isp", r->client_isp);
    dst_json_set_str(client, "country", r->client_country);
    dst_json_set_num(client, "lat", r->client_lat);
    dst_json_set_num(client, "lon", r->client_lon);
    json_t *j = json_object();
    dst_json_set_num(j, "download", r->download_bps);
    dst_json_set_num(j, "upload", r->upload_bps);
    dst_json_set_num(j, "ping", r->ping_ms);
    json_object_set_new(j, "server", server);
    json_object_set_new(j, "timestamp", json_string(ts));
    json_object_set_new(j, "bytes_sent", json_integer(r->bytes_up > 0 ? r->bytes_up : 0));
    json_object_set_new(j, "bytes_received", json_integer(r->bytes_down > 0 ? r->bytes_down : 0));
    json_object_set_new(j, "share", json_null());
    json_object_set_new(j, "client", client);
    json_object_set_new(j, "result", dst_result_to_json(r));
    return j;
}

/* One CSV field; quoted when it holds the delimiter, a quote or a line break. */
static void csv_field(const char *s, const char *delim, bool last)
{
    s = s ? s : "";
    if (strpbrk(s, "\"\r\n") || strstr(s, delim)) {
        putchar('"');
        for (; *s; s++)
            fputs(*s == '"' ? "\"\"" : (char[2]){*s, '\0'}, stdout);
        putchar('"');
    } else {
        fputs(s, stdout);
    }
    fputs(last ? "\n" : delim, stdout);
}

static void csv_num(double v, const char *delim)
{
    char buf[64] = "";
    if (isfinite(v))
        snprintf(buf, sizeof(buf), "%.15g", v);
    csv_field(buf, delim, false);
}

/* speedtest-cli's --csv: Server ID, Sponsor, Server Name, Timestamp, Distance, Ping, Download,
 * Upload, Share, IP Address (speeds in bit/s, distance in km). */
static void print_csv(const struct dst_result *r, const char *delim, bool header)
{
    char ts[DST_DATETIME_LEN], id[32] = "";
    if (header)
        printf("Server ID%sSponsor%sServer Name%sTimestamp%sDistance%sPing%sDownload%sUpload%s"
               "Share%sIP Address\n",
               delim, delim, delim, delim, delim, delim, delim, delim, delim);
    dst_datetime_format_utc(r->time_ms, ts);
    if (r->server_id >= 0)
        snprintf(id, sizeof(id), "%lld", (long long)r->server_id);
    csv_field(id, delim, false);
    csv_field(r->server_sponsor, delim, false);
    csv_field(r->server_name ? r->server_name : r->server_host, delim, false);
    csv_field(ts, delim, false);
    csv_num(r->server_distance_m / 1000, delim);
    csv_num(r->ping_ms, delim);
    csv_num(r->download_bps, delim);
    csv_num(r->upload_bps, delim);
    csv_field("", delim, false);
    csv_field(r->client_ip, delim, true);
}

/* A rate in bit/s as people read it: Mbit/s, or Gbit/s from 1000 Mbit/s on. */
static void rate_text(double bps, char *out, size_t outlen)
{
    if (!isfinite(bps))
        snprintf(out, outlen, "unknown");
    else if (bps >= 1e9)
        snprintf(out, outlen, "%.2f Gbit/s", bps / 1e9);
    else
        snprintf(out, outlen, "%.2f Mbit/s", bps / 1e6);
}

/*
 * What speedtest-cli says of a test, after the original's lines: the server and its latency
 * ("Hosted by Sponsor (Name) [2.43 km]: 12.345 ms"), ping and jitter, the speeds, the data used.
 */
static void print_summary(const struct dst_result *r, FILE *out)
{
    const char *name = r->server_name ? r->server_name : r->server_host;
    char down[32], up[32];

    if (r->status != DST_RESULT_OK)
        return; /* "Test failed: <why>" said it */
    if (name) {
        fprintf(out, "Hosted by %s", r->server_sponsor ? r->server_sponsor : name);
        if (r->server_sponsor)
            fprintf(out, " (%s)", name);
        if (isfinite(r->server_distance_m))
            fprintf(out, " [%.2f km]", r->server_distance_m / 1000);
        if (isfinite(r->ping_ms))
            fprintf(out, ": %.3f ms", r->ping_ms);
        fputc('\n', out);
    }
    if (isfinite(r->ping_ms) && isfinite(r->jitter_ms))
        fprintf(out, "Ping: %.2f ms, jitter: %.2f ms\n", r->ping_ms, r->jitter_ms);
    else if (isfinite(r->ping_ms))
        fprintf(out, "Ping: %.2f ms\n", r->ping_ms);
    rate_text(r->download_bps, down, sizeof(down));
    rate_text(r->upload_bps, up, sizeof(up));
    fprintf(out, "Download: %s\nUpload: %s\n", down, up);
    if (r->bytes_down >= 0 && r->bytes_up >= 0)
        fprintf(out, "Data used: %.1f MB down, %.1f MB up\n", (double)r->bytes_down / 1e6,
                (double)r->bytes_up / 1e6);
    fflush(out);
}

/* Runs the test; the original's lines and the summary go to lines (NULL: none). */
static int run_test(const struct run_cfg *c, FILE *lines, struct dst_result *r)
{
    bool tty = lines == stdout && isatty(STDOUT_FILENO);
    struct probe_opts o = {.target = c->target,
                           .api = c->api,
                           .token = c->token,
                           .agent = c->agent,
                           .user = c->agent,
                           .device = 1,
                           .timeout_s = (int)c->timeout,
                           .upload = *c->api != '\0',
                           .progress = tty ? show_progress : NULL,
                           .progress_ud = stdout,
                           .progress_line = tty};
    int rc = probe_measure(&o, NULL, NULL, lines, r);
    if (rc == 0 && lines)
        print_summary(r, lines);
    if (rc == 0 && o.upload)
        rc = probe_upload(&o, NULL, r, lines, NULL, 0);
    return rc;
}

int run_main(int argc, char **argv)
{
    struct run_cfg c = {0};
    char host[65] = "probe";
    gethostname(host, sizeof(host) - 1);
    struct dst_cfg_opt opts[] = {
        {"target", DST_CFG_STR, &c.target, "speedtest://auto",
         "what to test against (speedtest://auto: the nearest speedtest.net servers, as "
         "speedtest-cli; dummy: for canned values)",
         "URL", .check = check_target},
        {"api", DST_CFG_STR, &c.api, "", "also post the result to this API", "URL",
         .check = dst_cfg_check_url_or_empty},
        DST_CRED_CLIENT_OPTS(c.token, c.token_file),
        {"agent", DST_CFG_STR, &c.agent, host, "probe name stored with the result", "NAME"},
        {"json", DST_CFG_BOOL, &c.json, "false",
         "print speedtest-cli's JSON (with dstmc's result under \"result\")"},
        {"csv", DST_CFG_BOOL, &c.csv, "false", "print speedtest-cli's CSV line"},
        {"csv-header", DST_CFG_BOOL, &c.csv_header, "false", "print the CSV header first"},
        {"csv-delimiter", DST_CFG_STR, &c.delim, ",", "CSV field delimiter", "C"},
        {"timeout", DST_CFG_INT, &c.timeout, "120", "limit for the test", "SECONDS", 1, 3600},
    };
    struct dst_cfg cfg = {"run", "one speed test now", opts, (int)(sizeof(opts) / sizeof(opts[0]))};
    struct dst_result r;

    int rc = dst_cfg_parse(&cfg, argc, argv, stdout, stderr);
    if (rc == DST_CFG_EXIT)
        return 0;
    if (rc)
        return 2;
    if (c.json && c.csv)
        return dst_cfg_fail(&cfg, stderr, "csv", "--json and --csv exclude each other"), 2;
    char *token = NULL, err[200];
    if (dst_cred_secret_load(c.token, c.token_file, &token, err, sizeof(err)) != 0)
        return dst_cfg_fail(&cfg, stderr, *c.token_file ? "token-file" : "token", "%s", err), 2;
    if (cfg.check_only) {
        dst_cfg_ok(&cfg, stdout);
        free(token);
        return 0;
    }
    c.token = token;
    /* with --json or --csv, stdout holds only that; the original's lines go to stderr */
    FILE *lines = c.json || c.csv ? stderr : stdout;
    dst_result_init(&r);
    rc = run_test(&c, lines, &r);
    if (c.json) {
        json_t *j = speedtest_cli_json(&r);
        char *text = dst_json_dumps(j, NULL);
        puts(text);
        free(text);
        json_decref(j);
    } else if (c.csv) {
        print_csv(&r, c.delim, c.csv_header);
    }
    bool ok = rc == 0 && r.status == DST_RESULT_OK;
    dst_result_release(&r);
    free(token);
    return ok ? 0 : 1;
}
