/* transfer.c - parallel HTTP transfers for speed tests (libcurl multi): one phase */
#include "core/transfer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/sig.h"
#include "core/transfer_priv.h"

#define TICK_MS          200 /* progress reports: ~5 a second */
#define POLL_MS          20
#define DEFAULT_STALL_MS 5000L

/* ---- failures ---- */

/* Records the first failure (later ones are only counted). */
static void fail(struct transfer_run *r, int rc, long status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(struct transfer_run *r, int rc, long status, const char *fmt, ...)
{
    va_list ap;

    r->st->failed++;
    if (r->rc)
        return;
    r->rc = rc;
    r->st->status = status;
    va_start(ap, fmt);
    vsnprintf(r->st->error, sizeof(r->st->error), fmt, ap);
    va_end(ap);
}

/* "host:port" of url (the scheme's port when none is given); host alone when !with_port. */
static void authority(const char *url, bool with_port, char *out, size_t outlen)
{
    const char *p = strstr(url, "://");
    const char *host = p ? p + 3 : url;
    size_t n = strcspn(host, "/?#");
    const char *colon = host[0] == '[' ? memchr(host, ']', n) : memchr(host, ':', n);

    if (host[0] == '[' && colon)
        colon = colon + 1 < host + n && colon[1] == ':' ? colon + 1 : NULL;
    size_t hlen = colon ? (size_t)(colon - host) : n;
    if (!with_port)
        snprintf(out, outlen, "%.*s", (int)hlen, host);
    else if (colon)
        snprintf(out, outlen, "%.*s", (int)n, host);
    else
        snprintf(out, outlen, "%.*s:%d", (int)n, host, strncmp(url, "https:", 6) ? 80 : 443);
}

int transfer_classify(CURL *h, CURLcode cc, long status, const char *url, const char *errbuf,
                      char *out, size_t outlen)
{
    char where[300];
    long oserr = 0;
    curl_off_t got = 0, want = -1;

    if (status && (status < 200 || status > 299))
        return snprintf(out, outlen, "HTTP %ld from %s", status, url), DST_EDEP;
    dst_curl.easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
    authority(url, cc != CURLE_COULDNT_RESOLVE_HOST, where, sizeof(where));
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        return snprintf(out, outlen, "DNS: cannot resolve '%s'", where), DST_EDEP;
    case CURLE_COULDNT_CONNECT:
        if (oserr == ECONNREFUSED)
            return snprintf(out, outlen, "refused: %s", where), DST_EDEP;
        return snprintf(out, outlen, "cannot connect to %s: %s", where, errbuf), DST_EDEP;
    case CURLE_OPERATION_TIMEDOUT:
        return snprintf(out, outlen, "timeout: %s", errbuf), DST_ETIMEDOUT;
    case CURLE_PARTIAL_FILE:
        dst_curl.easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &got);
        dst_curl.easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &want);
        return snprintf(out, outlen, "short body: %lld of %lld bytes from %s", (long long)got,
                        (long long)want, url),
               DST_EDEP;
    case CURLE_GOT_NOTHING:
        return snprintf(out, outlen, "empty reply from %s", url), DST_EDEP;
    default:
        return snprintf(out, outlen, "%s: %s", url, errbuf[0] ? errbuf : "transfer failed"),
               DST_EDEP;
    }
}

/* ---- a stream's requests ---- */

/* Starts the next request on x; false when there is none (the list ended, no repeat). */
static bool xfer_start(struct transfer_run *r, struct transfer_xfer *x)
{
    const struct dst_transfer_opts *o = r->o;
    size_t count = o->nurls > o->nsizes ? o->nurls : o->nsizes;

    if (!o->repeat && r->next >= count)
        return false;
    x->url = o->urls[r->next % o->nurls];
    if (o->buster)
        snprintf(x->full, sizeof(x->full), "%s%c%s=%lld.%llu", x->url,
                 strchr(x->url, '?') ? '&' : '?', o->buster, (long long)r->epoch,
                 (unsigned long long)r->next);
    else
        snprintf(x->full, sizeof(x->full), "%s", x->url);
    x->size = o->dir == DST_TRANSFER_UPLOAD ? o->sizes[r->next % o->nsizes] : 0;
    x->moved = x->base = x->seen = x->reply_len = 0;
    x->reply[0] = x->errbuf[0] = '\0';
    x->last_ms = r->stamp;
    x->fd = -1;
    r->next++;
    dst_curl.easy_setopt(x->h, CURLOPT_URL, x->full);
    if (o->dir == DST_TRANSFER_UPLOAD)
        dst_curl.easy_setopt(x->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->size);
    if (dst_curl.multi_add_handle(r->m, x->h) != CURLM_OK) {
        fail(r, DST_EDEP, 0, "libcurl: cannot add a transfer");
        return false;
    }
    x->busy = true;
    r->active++;
    r->st->requests++;
    return true;
}

/* Takes x out of the running set. */
static void xfer_stop(struct transfer_run *r, struct transfer_xfer *x)
{
    dst_curl.multi_remove_handle(r->m, x->h);
    x->busy = false;
    r->active--;
}

/* A request ended: count it, or record why it failed. */
static void xfer_done(struct transfer_run *r, struct transfer_xfer *x, CURLcode cc)
{
    long status = 0;
    char why[256];
    bool up = r->o->dir == DST_TRANSFER_UPLOAD;

    dst_curl.easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
    xfer_stop(r, x);
    if (cc != CURLE_OK || status < 200 || status > 299) {
        int rc = transfer_classify(x->h, cc, status, x->url, x->errbuf, why, sizeof(why));
        fail(r, rc, status, "%s", why);
        return;
    }
    if (up && r->o->check_reply &&
        r->o->check_reply(r->o->reply_ud, x->size, x->reply, why, sizeof(why)) != 0) {
        fail(r, DST_EDEP, status, "%s", why);
        return;
    }
    r->st->completed++;
    r->done_bytes += x->moved;
    if (r->window_open && !r->window_closed && x->moved > x->base)
        r->st->bytes += x->moved - x->base;
}

/* ---- the phase ---- */

static uint64_t moved_so_far(const struct transfer_run *r)
{
    uint64_t n = r->done_bytes;
    for (int i = 0; i < r->o->streams; i++)
        n += r->x[i].busy ? r->x[i].moved : 0;
    return n;
}

static void open_window(struct transfer_run *r)
{
    for (int i = 0; i < r->o->streams; i++) {
        if (r->x[i].busy)
            r->x[i].base = transfer_delivered(&r->x[i]);
    }
    r->window_open = true;
    r->window_start = r->stamp;
}

/* Stops counting: what the requests in flight delivered so far counts too, unless one failed. */
static void close_window(struct transfer_run *r)
{
    for (int i = 0; i < r->o->streams && r->window_open && !r->rc; i++) {
        uint64_t d = r->x[i].busy ? transfer_delivered(&r->x[i]) : 0;
        if (r->x[i].busy && d > r->x[i].base)
            r->st->bytes += d - r->x[i].base;
    }
    r->window_closed = true;
    r->window_end = r->stamp;
}

/*
 * A request stalls when none of its bytes reached the other end for the stall time. For an
 * upload that is what the peer acknowledged, not what curl took from on_send: curl takes the
 * body 256 KiB at a time and the socket holds more, which on a slow link (or a stream that gets
 * less than its share) drains for seconds with no callback at all, then waits for the answer.
 */
static void check_stalls(struct transfer_run *r)
{
    long stall = r->o->stall_ms > 0 ? r->o->stall_ms : DEFAULT_STALL_MS;

    for (int i = 0; i < r->o->streams; i++) {
        struct transfer_xfer *x = &r->x[i];
        uint64_t d = x->busy ? transfer_delivered(x) : 0;
        if (d > x->seen) {
            x->seen = d;
            x->last_ms = r->stamp;
        }
        if (x->busy && r->stamp - x->last_ms > stall) {
            xfer_stop(r, x);
            fail(r, DST_ETIMEDOUT, 0, "timeout: no data for %.1f s from %s", stall / 1000.0,
                 x->url);
        }
    }
}

static void report(struct transfer_run *r)
{
    double ms;
    uint64_t n;

    if (!r->o->progress || r->stamp < r->next_tick)
        return;
    r->next_tick = r->stamp + TICK_MS;
    if (r->window_open) {
        n = r->st->bytes;
        for (int i = 0; i < r->o->streams; i++)
            n += r->x[i].busy && r->x[i].moved > r->x[i].base ? r->x[i].moved - r->x[i].base : 0;
        ms = (double)(r->stamp - r->window_start);
    } else {
        n = moved_so_far(r);
        ms = (double)(r->stamp - r->t0);
    }
    if (ms > 0)
        r->o->progress(r->o->progress_ud, (double)n * 8 * 1000 / ms);
}

/* Hands finished requests to xfer_done. */
static void reap(struct transfer_run *r)
{
    CURLMsg *msg;
    int left = 0;

    while ((msg = dst_curl.multi_info_read(r->m, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURLcode cc = msg->data.result;
        char *priv = NULL;
        dst_curl.easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        xfer_done(r, (struct transfer_xfer *)priv, cc);
    }
}

/*
 * Runs requests until the time until, the end of the work, a failure or a stop; with
 * starting, new requests replace finished ones and the window opens after the grace period.
 */
static void pump(struct transfer_run *r, int64_t until, bool starting)
{
    const struct dst_transfer_opts *o = r->o;

    for (;;) {
        r->stamp = dst_monotonic_ms();
        if (starting && !r->window_open && r->stamp >= r->grace_end)
            open_window(r);
        if (dst_sig_stopping())
            fail(r, DST_EDEP, 0, "stopped");
        if (r->rc || r->stamp >= until)
            return;
        if (starting && o->max_bytes && moved_so_far(r) >= o->max_bytes)
            return;
        for (int i = 0; starting && i < o->streams && !r->rc; i++) {
            if (!r->x[i].busy && !xfer_start(r, &r->x[i]))
                break;
        }
        if (r->active == 0)
            return;
        int running = 0;
        dst_curl.multi_perform(r->m, &running);
        reap(r);
        check_stalls(r);
        report(r);
        if (r->active == 0)
            continue; /* start the next ones, or end now: polling nothing would only wait */
        int64_t wait = until - r->stamp < POLL_MS ? until - r->stamp : POLL_MS;
        dst_curl.multi_poll(r->m, NULL, 0, (int)(wait > 0 ? wait : 0), NULL);
    }
}

/*
 * The time the requests in flight need to finish at the measured rate, in ms; false when a
 * length is unknown (a body without Content-Length). A request not answered yet counts as 0:
 * the next look knows more.
 */
static bool drain_estimate(struct transfer_run *r, double *ms)
{
    uint64_t left = 0;

    for (int i = 0; i < r->o->streams; i++) {
        struct transfer_xfer *x = &r->x[i];
        curl_off_t len = (curl_off_t)x->size;
        long status = 0;
        if (!x->busy)
            continue;
        if (r->o->dir == DST_TRANSFER_DOWNLOAD) {
            dst_curl.easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
            dst_curl.easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
            if (len < 0 && status != 0)
                return false;
            len = len < 0 ? 0 : len;
        }
        left += (uint64_t)len > x->moved ? (uint64_t)len - x->moved : 0;
    }
    *ms = (double)left * 8 * 1000 / r->st->bps;
    return true;
}

/*
 * After the deadline: lets the requests in flight finish as long as what they still have to
 * move takes, at the measured rate, no longer than what is left of drain_ms.
 */
static void drain(struct transfer_run *r)
{
    int64_t end = r->stamp + r->o->drain_ms;
    double need = 0;

    while (r->active > 0 && !r->rc && r->st->bps > 0 && r->stamp < end) {
        if (!drain_estimate(r, &need) || (double)r->stamp + need > (double)end)
            return;
        pump(r, r->stamp + 50 < end ? r->stamp + 50 : end, false);
    }
}

/*
 * Cuts off what is still running; what reached the other end is part of bytes_total. An
 * upload's socket is reset rather than closed: the data still queued in it would otherwise
 * go on flowing after the phase, into the next measurement.
 */
static void abort_all(struct transfer_run *r)
{
    struct linger reset = {.l_onoff = 1, .l_linger = 0};

    for (int i = 0; i < r->o->streams; i++) {
        struct transfer_xfer *x = &r->x[i];
        if (!x->busy)
            continue;
        r->done_bytes += transfer_delivered(x);
        r->st->aborted++;
        if (x->fd >= 0 && r->o->dir == DST_TRANSFER_UPLOAD)
            setsockopt(x->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
        xfer_stop(r, x);
    }
}

/* The counted figures, once the window is closed. */
static void window_stats(struct transfer_run *r)
{
    struct dst_transfer_stats *st = r->st;

    if (!r->window_open) {
        /* ended inside the grace period: everything counts */
        st->bytes = moved_so_far(r);
        st->seconds = (double)(r->window_end - r->t0) / 1000;
    } else {
        st->seconds = (double)(r->window_end - r->window_start) / 1000;
    }
    st->bps = st->seconds > 0 ? (double)st->bytes * 8 / st->seconds : 0;
}

static int check_opts(const struct dst_transfer_opts *o, struct dst_transfer_stats *st)
{
    const char *why = NULL;
    size_t plen = o->prefix ? strlen(o->prefix) : 0;

    if (!o->urls || o->nurls == 0)
        why = "no URL";
    else if (o->streams < 1 || o->streams > DST_TRANSFER_MAX_STREAMS)
        why = "streams out of range";
    else if (o->duration_ms <= 0 || o->grace_ms < 0 || o->grace_ms >= o->duration_ms)
        why = "bad duration or grace period";
    else if (o->dir == DST_TRANSFER_UPLOAD && (!o->sizes || o->nsizes == 0))
        why = "no upload sizes";
    for (size_t i = 0; !why && i < o->nurls; i++)
        why = strlen(o->urls[i]) < DST_TRANSFER_MAX_URL ? NULL : "URL too long";
    for (size_t i = 0; !why && o->dir == DST_TRANSFER_UPLOAD && i < o->nsizes; i++)
        why = o->sizes[i] >= plen && o->sizes[i] > 0 ? NULL : "upload size below its prefix";
    if (!why)
        return 0;
    snprintf(st->error, sizeof(st->error), "%s", why);
    return DST_EINVAL;
}

static void run_release(struct transfer_run *r)
{
    for (int i = 0; r->x && i < r->o->streams; i++)
        dst_curl.easy_cleanup(r->x[i].h); /* NULL is fine */
    free(r->x);
    if (r->m)
        dst_curl.multi_cleanup(r->m);
    dst_curl.slist_free_all(r->hdrs);
}

static void set_headers(struct transfer_run *r)
{
    char ctype[160];

    r->hdrs = dst_curl.slist_append(NULL, "Expect:"); /* no 100-continue round trip */
    if (r->o->dir == DST_TRANSFER_UPLOAD) {
        snprintf(ctype, sizeof(ctype), "Content-Type: %s",
                 r->o->content_type ? r->o->content_type : "application/octet-stream");
        r->hdrs = dst_curl.slist_append(r->hdrs, ctype);
    }
    r->hdrs = dst_curl.slist_append(r->hdrs, "Cache-Control: no-cache");
}

int dst_transfer_run(const struct dst_transfer_opts *o, struct dst_transfer_stats *st)
{
    struct transfer_run r = {.o = o, .st = st};
    int rc = 0;

    memset(st, 0, sizeof(*st));
    rc = check_opts(o, st);
    if (rc == 0 && dst_curl_load() != 0) {
        snprintf(st->error, sizeof(st->error), "libcurl cannot be loaded");
        rc = DST_EDEP;
    }
    if (rc)
        return rc;
    r.m = dst_curl.multi_init();
    r.x = dst_xcalloc((size_t)o->streams, sizeof(*r.x));
    set_headers(&r);
    for (int i = 0; i < o->streams && rc == 0; i++)
        rc = r.m ? transfer_xfer_init(&r, &r.x[i]) : DST_EDEP;
    if (rc) {
        snprintf(st->error, sizeof(st->error), "libcurl: cannot create handles");
        goto out;
    }
    r.t0 = r.stamp = dst_monotonic_ms();
    r.epoch = dst_datetime_now_ms();
    r.grace_end = r.t0 + o->grace_ms;
    r.next_tick = r.t0 + TICK_MS;
    pump(&r, r.t0 + o->duration_ms, true);
    close_window(&r);
    window_stats(&r);
    drain(&r);
    abort_all(&r);
    st->bytes_total = r.done_bytes;
    rc = r.rc;
out:
    run_release(&r);
    return rc;
}
