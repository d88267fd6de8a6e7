/* transfer_latency.c - latency samples: timed GETs on one kept-alive connection (libcurl) */
#include "core/transfer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/transfer_priv.h"

struct sample_body {
    char head[TRANSFER_REPLY_MAX];
    size_t len;
    int64_t first_us; /* when the first line of the answer came */
};

static size_t on_sample_header(char *p, size_t size, size_t n, void *arg)
{
    struct sample_body *b = arg;

    (void)p;
    if (!b->first_us)
        b->first_us = dst_monotonic_us();
    return size * n;
}

static size_t on_sample(char *p, size_t size, size_t n, void *arg)
{
    struct sample_body *b = arg;
    size_t room = TRANSFER_REPLY_MAX - 1 - b->len, take = size * n < room ? size * n : room;

    memcpy(b->head + b->len, p, take);
    b->len += take;
    b->head[b->len] = '\0';
    return size * n;
}

/*
 * One timed GET on h; the sample in ms (NAN if the body is not as expected): from the call to
 * the first byte of the answer, less the connection set-up, if there was one. (curl's own
 * PRETRANSFER/STARTTRANSFER times are microseconds apart on a reused connection in 7.88.)
 */
static int latency_one(CURL *h, const struct dst_latency_opts *o, int i, const char *errbuf,
                       double *sample, char *err, size_t errlen)
{
    struct sample_body b = {.len = 0};
    char url[DST_TRANSFER_MAX_URL + 64];
    curl_off_t setup = 0, tls = 0;
    long status = 0;

    if (o->buster)
        snprintf(url, sizeof(url), "%s%c%s=%lld.%d", o->url, strchr(o->url, '?') ? '&' : '?',
                 o->buster, (long long)dst_datetime_now_ms(), i);
    else
        snprintf(url, sizeof(url), "%s", o->url);
    dst_curl.easy_setopt(h, CURLOPT_URL, url);
    dst_curl.easy_setopt(h, CURLOPT_WRITEDATA, &b);
    dst_curl.easy_setopt(h, CURLOPT_HEADERDATA, &b);
    int64_t t0 = dst_monotonic_us();
    CURLcode cc = dst_curl.easy_perform(h);
    dst_curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK || status < 200 || status > 299)
        return transfer_classify(h, cc, status, o->url, errbuf, err, errlen);
    dst_curl.easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &setup);
    dst_curl.easy_getinfo(h, CURLINFO_APPCONNECT_TIME_T, &tls);
    double us = (double)(b.first_us - t0) - (double)(tls > setup ? tls : setup);
    bool ok = !o->expect_prefix || strncmp(b.head, o->expect_prefix, strlen(o->expect_prefix)) == 0;
    *sample = ok ? (us > 0 ? us : 0) / 1000 : NAN;
    return 0;
}

int dst_transfer_latency(const struct dst_latency_opts *o, double *samples, int *nvalid, char *err,
                         size_t errlen)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    long timeout = o->timeout_ms > 0 ? o->timeout_ms : TRANSFER_DEFAULT_CONNECT_MS;
    CURL *h = NULL;
    int rc = 0;

    *nvalid = 0;
    if (!o->url || strlen(o->url) >= DST_TRANSFER_MAX_URL || o->count < 1)
        return snprintf(err, errlen, "bad latency options"), DST_EINVAL;
    if (dst_curl_load() == 0)
        h = dst_curl.easy_init();
    if (!h)
        return snprintf(err, errlen, "libcurl cannot be loaded"), DST_EDEP;
    dst_curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    dst_curl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    dst_curl.easy_setopt(h, CURLOPT_USERAGENT, TRANSFER_USER_AGENT);
    dst_curl.easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    dst_curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    dst_curl.easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    dst_curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_sample);
    dst_curl.easy_setopt(h, CURLOPT_HEADERFUNCTION, on_sample_header);
    for (int i = 0; i < o->count; i++)
        samples[i] = NAN;
    for (int i = 0; i < o->count && rc == 0; i++) {
        rc = latency_one(h, o, i, errbuf, &samples[i], err, errlen);
        *nvalid += rc == 0 && !isnan(samples[i]);
    }
    dst_curl.easy_cleanup(h);
    return rc;
}
