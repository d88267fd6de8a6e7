/* http_proxy_upstream.c - the proxy's thread: libcurl multi transfers to the upstreams */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/http_server.h"
#include "core/http_proxy_priv.h"
#include "core/log.h"
#include "core/mem.h"

/* ---- the proxy's thread ---- */

static void ready_push(struct xfer *x)
{
    if (x->on_ready_list)
        return;
    x->on_ready_list = true;
    x->ready_next = x->p->ready;
    x->p->ready = x;
}

/* The proxy's thread is done with x: its reference goes at the end of this round. */
static void release_push(struct xfer *x)
{
    if (x->on_release_list)
        return;
    x->on_release_list = true;
    x->release_next = x->p->release;
    x->p->release = x;
}

/* Something must arrive from x's upstream by ms; the proxy's next check is no later. */
static void deadline_set(struct xfer *x, int64_t ms)
{
    x->deadline_ms = ms;
    if (ms < x->p->next_deadline)
        x->p->next_deadline = ms;
}

/*
 * The status of an HTTP/1.x status line ("HTTP/1.1 200 OK"), read within its len bytes: curl's
 * header bytes need not end in a NUL. 0 when the line is not one: curl also takes other
 * versions, leading white space, a second space and NCSA's "HTTP 200".
 */
static int status_of(const char *line, size_t len)
{
    int status = 0;

    if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)line[7]) ||
        line[8] != ' ')
        return 0;
    for (size_t i = 9; i < 12; i++) {
        if (!isdigit((unsigned char)line[i]))
            return 0;
        status = status * 10 + (line[i] - '0');
    }
    if (len > 12 && line[12] != ' ')
        return 0;
    return status >= 100 ? status : 0;
}

/* A Content-Length value of len bytes: digits only, within int64; -1 otherwise. */
static int64_t length_of(const char *v, size_t len)
{
    int64_t n = 0;

    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)v[i]) || n > (INT64_MAX - 9) / 10)
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

/* Whether the header name of len bytes is want (any case). */
static bool name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* One header line of the answer (data: len bytes, not NUL-terminated), or its blank end. */
size_t proxy_on_header(char *data, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n, nl = len, vl = 0, kl = 0;
    const char *colon = memchr(data, ':', len);
    const char *v = NULL;

    if (x->headers_done)
        return len; /* trailers of a chunked body: the headers are handed on already */
    while (nl && (data[nl - 1] == '\n' || data[nl - 1] == '\r'))
        nl--;
    if (nl == 0) { /* the blank line: an interim (1xx) answer's, or the final one's */
        if (x->status >= 200) {
            x->headers_done = true;
            deadline_set(x, dst_monotonic_ms() + x->p->opts.idle_timeout_ms);
            ready_push(x);
        }
        return len;
    }
    if (nl >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        x->status = status_of(data, nl);
        x->event_stream = false;
        dst_buf_reset(&x->rhdr);
        x->clen = -1;
        return x->status ? len : 0; /* 0 fails the attempt */
    }
    if (x->status == 0)
        return 0; /* the answer does not begin with a status line we take */
    if (!colon || colon == data)
        return len; /* not a header line: skip it */
    v = colon + 1;
    while (v < data + nl && (*v == ' ' || *v == '\t'))
        v++;
    vl = (size_t)(data + nl - v);
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;
    kl = (size_t)(colon - data);
    if (name_is(data, kl, "Content-Length")) {
        x->clen = length_of(v, vl);
        if (x->clen < 0)
            return 0; /* curl would not know where the answer ends either */
    }
    if (name_is(data, kl, "Content-Type"))
        x->event_stream = vl >= 17 && strncasecmp(v, "text/event-stream", 17) == 0;
    if (proxy_hop(data, kl))
        return len;
    if (dst_buf_append(&x->rhdr, data, kl) != 0 || dst_buf_append(&x->rhdr, "", 1) != 0 ||
        dst_buf_append(&x->rhdr, v, vl) != 0 || dst_buf_append(&x->rhdr, "", 1) != 0)
        return 0; /* more headers than we hold: fails the attempt */
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;

    pthread_mutex_lock(&x->mu);
    size_t held = x->out.len - x->off;
    if (held && held + len > x->p->opts.buffer) {
        x->paused = true;
        x->deadline_ms = INT64_MAX; /* a slow client is not an idle upstream */
        pthread_mutex_unlock(&x->mu);
        return CURL_WRITEFUNC_PAUSE;
    }
    if (x->off && x->off == x->out.len)
        x->off = x->out.len = 0;
    if (x->off > x->out.cap / 2) {
        memmove(x->out.data, x->out.data + x->off, held);
        x->out.len = held;
        x->off = 0;
    }
    deadline_set(x, dst_monotonic_ms() + x->p->opts.idle_timeout_ms);
    int rc = dst_buf_append(&x->out, data, len);
    if (x->stream)
        dst_http_stream_wake(x->stream);
    pthread_mutex_unlock(&x->mu);
    return rc == 0 ? len : 0;
}

static void active_unlink(struct xfer *x)
{
    struct dst_http_proxy *p = x->p;

    if (x->prev)
        x->prev->next = x->next;
    else if (p->active == x)
        p->active = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

/* Takes x's transfer out of the multi handle and keeps its easy handle for later. */
static void transfer_remove(struct xfer *x)
{
    struct dst_http_proxy *p = x->p;

    if (!x->in_multi)
        return;
    dst_curl.multi_remove_handle(p->multi, x->e);
    if (p->nspare < SPARE_HANDLES)
        p->spare[p->nspare++] = x->e;
    else
        dst_curl.easy_cleanup(x->e);
    x->e = NULL;
    x->in_multi = false;
    active_unlink(x);
}

/* Ends x with an error reply (nothing was sent to its client yet). */
__attribute__((format(printf, 3, 4))) static void final_error(struct xfer *x, int status,
                                                              const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&x->mu);
    x->err_status = status;
    va_start(ap, fmt);
    vsnprintf(x->err, sizeof(x->err), fmt, ap);
    va_end(ap);
    x->eof = true;
    pthread_mutex_unlock(&x->mu);
    ready_push(x);
    release_push(x);
}

/* RFC 9110's idempotent methods: sending one twice does no harm. */
static bool idempotent(const char *m)
{
    static const char *const ok[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", NULL};

    for (int i = 0; ok[i]; i++) {
        if (strcmp(m, ok[i]) == 0)
            return true;
    }
    return false;
}

static void easy_setup(struct xfer *x, CURL *e, const char *url)
{
    struct dst_http_proxy *p = x->p;
    const char *m = x->method;

    dst_curl.easy_setopt(e, CURLOPT_URL, url);
    dst_curl.easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    dst_curl.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    dst_curl.easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    dst_curl.easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    dst_curl.easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)p->opts.connect_timeout_ms);
    dst_curl.easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    dst_curl.easy_setopt(e, CURLOPT_HEADERFUNCTION, proxy_on_header);
    dst_curl.easy_setopt(e, CURLOPT_HEADERDATA, x);
    dst_curl.easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    dst_curl.easy_setopt(e, CURLOPT_WRITEDATA, x);
    dst_curl.easy_setopt(e, CURLOPT_PRIVATE, x);
    dst_curl.easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    if (x->body || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0) {
        dst_curl.easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
        dst_curl.easy_setopt(e, CURLOPT_POSTFIELDS, x->body ? x->body : "");
        if (strcmp(m, "POST") != 0)
            dst_curl.easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    } else if (strcmp(m, "HEAD") == 0) {
        dst_curl.easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(m, "GET") != 0) {
        dst_curl.easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    }
}

/* Starts attempt x->attempt on the upstream pick chooses, or ends x when there is none. */
static void attempt_start(struct xfer *x)
{
    struct dst_http_proxy *p = x->p;
    struct dst_http_upstream up = {.id = -1};
    char *url = NULL;

    if (p->halting) {
        final_error(x, 502, "%s", "the proxy is stopping");
        return;
    }
    if (x->attempt >= p->opts.attempts || !p->ops.pick(p->ud, x->attempt, x->failed_id, &up)) {
        if (x->attempt == 0)
            final_error(x, 503, "%s", p->none_message);
        else
            final_error(x, x->timed_out ? 504 : 502, "%s", x->last_fail);
        return;
    }
    x->id = up.id;
    x->status = 0;
    x->headers_done = false;
    x->timed_out = false;
    x->errbuf[0] = '\0';
    pthread_mutex_lock(&x->mu);
    dst_buf_reset(&x->rhdr);
    x->clen = -1;
    x->out.len = x->off = 0;
    x->paused = false;
    pthread_mutex_unlock(&x->mu);
    x->e = p->nspare ? p->spare[--p->nspare] : dst_curl.easy_init();
    if (!x->e) {
        final_error(x, 502, "%s", "cannot create a transfer (out of memory?)");
        return;
    }
    dst_curl.easy_reset(x->e);
    url = dst_xmalloc(strlen(up.base) + strlen(x->target) + 1);
    strcpy(url, up.base);
    strcat(url, x->target);
    easy_setup(x, x->e, url);
    free(url);
    deadline_set(x, dst_monotonic_ms() + p->opts.header_timeout_ms);
    x->in_multi = true;
    x->next = p->active;
    if (p->active)
        p->active->prev = x;
    p->active = x;
    dst_curl.multi_add_handle(p->multi, x->e);
}

/* An attempt failed: retried while nothing went to the client, else the client's reply is cut. */
static void attempt_failed(struct xfer *x, const char *reason, bool timeout)
{
    struct dst_http_proxy *p = x->p;
    long sent = 0;

    if (x->e)
        dst_curl.easy_getinfo(x->e, CURLINFO_REQUEST_SIZE, &sent);
    transfer_remove(x);
    if (p->ops.report)
        p->ops.report(p->ud, x->id, false, 0, reason);
    pthread_mutex_lock(&x->mu);
    bool gone = x->req == NULL, ready = x->ready;
    if (ready) {
        x->eof = x->cut = true;
        snprintf(x->errbuf, sizeof(x->errbuf), "%s", reason);
        if (x->stream)
            dst_http_stream_wake(x->stream);
    }
    pthread_mutex_unlock(&x->mu);
    if (ready || gone) {
        release_push(x);
        return;
    }
    dst_info("%s: upstream %d: %s %s: %s", p->name, x->id, x->method, x->target, reason);
    snprintf(x->last_fail, sizeof(x->last_fail), "upstream %d: %s", x->id, reason);
    x->timed_out = timeout;
    if (sent > 0 && !p->opts.retry_unsafe && !x->has_key && !idempotent(x->method)) {
        /* it may have been carried out: only its client can tell whether to send it again */
        final_error(x, timeout ? 504 : 502, "%s (not retried: a %s may have been carried out)",
                    x->last_fail, x->method);
        return;
    }
    x->failed_id = x->id;
    x->attempt++;
    attempt_start(x);
}

static void on_done_msg(struct xfer *x, CURLcode rc)
{
    struct dst_http_proxy *p = x->p;
    char reason[CURL_ERROR_SIZE + 64];

    if (rc == CURLE_OK && x->headers_done) {
        transfer_remove(x);
        if (p->ops.report)
            p->ops.report(p->ud, x->id, true, x->status, NULL);
        pthread_mutex_lock(&x->mu);
        x->eof = true;
        if (x->stream)
            dst_http_stream_wake(x->stream);
        pthread_mutex_unlock(&x->mu);
        release_push(x);
        return;
    }
    if (rc == CURLE_URL_MALFORMAT) {
        transfer_remove(x);
        final_error(x, 400, "the request target cannot be forwarded: %s", x->target);
        return;
    }
    snprintf(reason, sizeof(reason), "%s",
             rc == CURLE_OK ? "no answer"
             : x->errbuf[0] ? x->errbuf
                            : dst_curl.easy_strerror(rc));
    attempt_failed(x, reason, rc == CURLE_OPERATION_TIMEDOUT);
}

static void run_commands(struct xfer *news, struct xfer *cmds)
{
    while (news) {
        struct xfer *x = news;
        news = x->cmd_next;
        attempt_start(x);
    }
    while (cmds) {
        struct xfer *x = cmds;
        cmds = x->cmd_next;
        pthread_mutex_lock(&x->mu);
        bool abort = x->want_abort, unpause = x->want_unpause && x->paused;
        x->want_abort = x->want_unpause = x->queued = false;
        if (unpause)
            x->paused = false;
        pthread_mutex_unlock(&x->mu);
        if (abort && x->in_multi) {
            transfer_remove(x);
            release_push(x);
        } else if (unpause && x->in_multi) {
            deadline_set(x, dst_monotonic_ms() + x->p->opts.idle_timeout_ms);
            dst_curl.easy_pause(x->e, CURLPAUSE_CONT);
        }
        proxy_xfer_unref(x); /* the command's reference */
    }
}

/* Header timeouts, and (kicked) upstreams that went down. */
static void check_active(struct dst_http_proxy *p, bool kicked)
{
    int64_t now = dst_monotonic_ms();
    char reason[96];

    if (!kicked && now < p->next_deadline)
        return;
    p->next_deadline = INT64_MAX;
    for (struct xfer *x = p->active, *next = NULL; x; x = next) {
        next = x->next;
        if (now >= x->deadline_ms) {
            if (x->headers_done)
                snprintf(reason, sizeof(reason), "no data for %d ms", p->opts.idle_timeout_ms);
            else
                snprintf(reason, sizeof(reason), "no answer within %d ms",
                         p->opts.header_timeout_ms);
            attempt_failed(x, reason, true);
        } else if (kicked && p->ops.keep && !p->ops.keep(p->ud, x->id, x->event_stream)) {
            attempt_failed(x, "the upstream went down", false);
        } else if (x->deadline_ms < p->next_deadline) {
            p->next_deadline = x->deadline_ms;
        }
    }
}

static void resume_ready(struct dst_http_proxy *p)
{
    while (p->ready) {
        struct xfer *x = p->ready;
        p->ready = x->ready_next;
        x->on_ready_list = false;
        pthread_mutex_lock(&x->mu);
        if (!x->ready && (x->headers_done || x->err_status)) {
            x->ready = true;
            if (x->req)
                dst_http_req_resume(x->req);
        }
        pthread_mutex_unlock(&x->mu);
    }
    while (p->release) {
        struct xfer *x = p->release;
        p->release = x->release_next;
        proxy_xfer_unref(x);
    }
}

/* The queue was pushed at its head: in arrival order, first come first forwarded. */
static struct xfer *fifo(struct xfer *x)
{
    struct xfer *out = NULL;

    while (x) {
        struct xfer *next = x->cmd_next;
        x->cmd_next = out;
        out = x;
        x = next;
    }
    return out;
}

void *proxy_thread_main(void *arg)
{
    struct dst_http_proxy *p = arg;
    int running = 0;

    for (;;) {
        pthread_mutex_lock(&p->mu);
        struct xfer *news = p->q_new, *cmds = p->q_cmd;
        bool kicked = p->kick, stop = p->stopping;
        p->q_new = p->q_cmd = NULL;
        p->kick = p->woken = false;
        pthread_mutex_unlock(&p->mu);
        news = fifo(news);
        if (stop) {
            p->halting = true;
            for (struct xfer *x = news, *n = NULL; x; x = n) {
                n = x->cmd_next;
                final_error(x, 502, "%s", "the proxy is stopping");
            }
            run_commands(NULL, cmds);
            while (p->active)
                attempt_failed(p->active, "the proxy is stopping", false);
            resume_ready(p);
            break;
        }
        run_commands(news, cmds);
        dst_curl.multi_perform(p->multi, &running);
        CURLMsg *m = NULL;
        int left = 0;
        while ((m = dst_curl.multi_info_read(p->multi, &left))) {
            struct xfer *x = NULL;
            if (m->msg != CURLMSG_DONE)
                continue;
            dst_curl.easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            on_done_msg(x, m->data.result);
        }
        check_active(p, kicked);
        resume_ready(p);
        int64_t wait = IDLE_POLL_MS;
        if (p->next_deadline != INT64_MAX) {
            int64_t d = p->next_deadline - dst_monotonic_ms();
            wait = d < 0 ? 0 : d < wait ? d : wait;
        }
        dst_curl.multi_poll(p->multi, NULL, 0, (int)wait, NULL);
    }
    return NULL;
}
