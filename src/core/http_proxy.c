/* http_proxy.c - forwards HTTP requests to upstream servers: the requests' side */
#include "core/http_proxy.h"

#include <pthread.h>
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

static const char *const hop_by_hop[] = {
    "Connection", "Keep-Alive",     "Proxy-Connection", "TE",   "Trailer", "Transfer-Encoding",
    "Upgrade",    "Content-Length", "Expect",           "Date", NULL,
};

bool proxy_hop(const char *name, size_t len)
{
    for (int i = 0; hop_by_hop[i]; i++) {
        if (strlen(hop_by_hop[i]) == len && strncasecmp(name, hop_by_hop[i], len) == 0)
            return true;
    }
    return false;
}

void proxy_xfer_unref(struct xfer *x)
{
    pthread_mutex_lock(&x->mu);
    int n = --x->refs;
    pthread_mutex_unlock(&x->mu);
    if (n > 0)
        return;
    free(x->id_header);
    free(x->method);
    free(x->target);
    free(x->body);
    if (x->hdrs)
        dst_curl.slist_free_all(x->hdrs);
    dst_buf_release(&x->rhdr);
    dst_buf_release(&x->out);
    pthread_mutex_destroy(&x->mu);
    free(x);
}

/* Queues a command for the proxy's thread (under x->mu); the queue holds a reference. */
bool proxy_cmd_queue_locked(struct xfer *x)
{
    if (x->queued)
        return false;
    x->queued = true;
    x->refs++;
    return true;
}

/* Under p->mu, after queuing something: whether the proxy's thread must be woken for it (not
   when a wake-up is already on its way: the thread takes everything queued when it comes). */
static bool wake_needed_locked(struct dst_http_proxy *p)
{
    bool need = !p->woken;

    p->woken = true;
    return need;
}

void proxy_cmd_push(struct xfer *x)
{
    struct dst_http_proxy *p = x->p;

    pthread_mutex_lock(&p->mu);
    x->cmd_next = p->q_cmd;
    p->q_cmd = x;
    bool wake = wake_needed_locked(p);
    pthread_mutex_unlock(&p->mu);
    if (wake)
        dst_curl.multi_wakeup(p->multi);
}

/* ---- the request's side (server threads) ---- */

static long stream_read(void *ud, char *buf, size_t max)
{
    struct xfer *x = ud;
    long n = 0;
    bool push = false;

    pthread_mutex_lock(&x->mu);
    size_t avail = x->out.len - x->off;
    if (avail) {
        n = (long)(avail < max ? avail : max);
        memcpy(buf, x->out.data + x->off, (size_t)n);
        x->off += (size_t)n;
        if (x->off == x->out.len)
            x->off = x->out.len = 0;
        if (x->paused && !x->want_unpause && !x->eof) {
            x->want_unpause = true;
            push = proxy_cmd_queue_locked(x);
        }
    } else if (x->eof) {
        n = x->cut ? DST_HTTP_STREAM_ABORT : DST_HTTP_STREAM_END;
    }
    pthread_mutex_unlock(&x->mu);
    if (push)
        proxy_cmd_push(x);
    return n;
}

static void stream_done(void *ud)
{
    struct xfer *x = ud;

    pthread_mutex_lock(&x->mu);
    x->stream = NULL;
    pthread_mutex_unlock(&x->mu);
    proxy_xfer_unref(x);
}

static long head_read(void *ud, char *buf, size_t max)
{
    (void)ud;
    (void)buf;
    (void)max;
    return DST_HTTP_STREAM_END; /* not called for a HEAD */
}

static void head_done(void *ud)
{
    (void)ud;
}

/* The request is over (answered, cut by its client, or the server stopped). */
static void req_done(void *ud, const struct dst_http_done *d)
{
    struct xfer *x = ud;
    bool push = false;

    (void)d;
    pthread_mutex_lock(&x->mu);
    x->req = NULL;
    if (!x->eof) {
        x->want_abort = true;
        push = proxy_cmd_queue_locked(x);
    }
    pthread_mutex_unlock(&x->mu);
    if (push)
        proxy_cmd_push(x);
    proxy_xfer_unref(x);
}

/* The continuation: runs on a server thread once the proxy's thread resumed the request. */
static void req_answer(struct dst_http_req *req, void *ud)
{
    struct xfer *x = ud;
    char idv[16];

    pthread_mutex_lock(&x->mu);
    if (!x->ready) { /* woken early: sleep on */
        dst_http_req_defer(req, req_answer, x);
        pthread_mutex_unlock(&x->mu);
        return;
    }
    if (!x->err_status && x->eof && x->cut) {
        x->err_status = 502;
        snprintf(x->err, sizeof(x->err), "upstream %d cut its answer: %s", x->id, x->errbuf);
    }
    if (x->err_status) {
        int status = x->err_status;
        char msg[sizeof(x->err)];
        memcpy(msg, x->err, sizeof(msg));
        pthread_mutex_unlock(&x->mu);
        dst_http_reply_error(req, status, "%s", msg);
        return;
    }
    for (const char *h = x->rhdr.data, *end = h + x->rhdr.len; h && h < end;) {
        const char *v = h + strlen(h) + 1;
        dst_http_add_header(req, h, v);
        h = v + strlen(v) + 1;
    }
    if (x->id_header) {
        snprintf(idv, sizeof(idv), "%d", x->id);
        dst_http_add_header(req, x->id_header, idv);
    }
    int status = x->status;
    if (x->eof && strcmp(x->method, "HEAD") == 0 && x->clen >= 0) {
        /* a HEAD answer's length is the GET's: a bodiless stream of that length carries it */
        int64_t clen = x->clen;
        pthread_mutex_unlock(&x->mu);
        dst_http_reply_stream_len(req, status, NULL, clen, head_read, head_done, NULL, NULL);
        return;
    }
    if (x->eof) { /* all in: one reply with its length */
        size_t len = 0;
        char *body = NULL;
        if (x->off) {
            memmove(x->out.data, x->out.data + x->off, x->out.len - x->off);
            x->out.len -= x->off;
            x->off = 0;
        }
        body = dst_buf_detach(&x->out, &len);
        pthread_mutex_unlock(&x->mu);
        dst_http_reply_take(req, status, NULL, body, len);
        return;
    }
    x->refs++; /* the stream's */
    int64_t clen = x->clen;
    pthread_mutex_unlock(&x->mu);
    struct dst_http_stream *st = NULL;
    if (dst_http_reply_stream_len(req, status, NULL, clen, stream_read, stream_done, x, &st) == 0) {
        pthread_mutex_lock(&x->mu);
        x->stream = st;
        pthread_mutex_unlock(&x->mu);
    }
}

struct hdr_copy {
    struct curl_slist *list;
    bool xff, ctype, accept, key;
    const char *client;
};

static void hdr_add(struct hdr_copy *c, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = dst_xmalloc(n);

    snprintf(line, n, "%s: %s", name, value);
    c->list = dst_curl.slist_append(c->list, line);
    free(line);
}

static void hdr_each(void *ud, const char *name, const char *value)
{
    struct hdr_copy *c = ud;

    if (proxy_hop(name, strlen(name)) && strcasecmp(name, "Date") != 0)
        return;
    if (strcasecmp(name, "X-Forwarded-For") == 0) {
        char *v = dst_xasprintf("%s, %s", value, c->client); /* any length: never cut short */
        hdr_add(c, name, v);
        free(v);
        c->xff = true;
        return;
    }
    c->ctype |= strcasecmp(name, "Content-Type") == 0;
    c->key |= strcasecmp(name, "Idempotency-Key") == 0;
    c->accept |= strcasecmp(name, "Accept") == 0;
    hdr_add(c, name, value);
}

void dst_http_proxy_forward(struct dst_http_proxy *p, struct dst_http_req *req)
{
    struct xfer *x = dst_xnew(struct xfer);
    struct hdr_copy c = {.client = dst_http_req_client_ip(req)};
    const char *uri = dst_http_req_uri(req);
    const char *body = dst_http_req_body(req, &x->body_len);

    pthread_mutex_init(&x->mu, NULL);
    x->refs = 2; /* the proxy's thread and the request */
    x->p = p;
    x->id_header = dst_xstrdup(p->id_header);
    x->req = req;
    x->failed_id = -1;
    x->clen = -1;
    x->method = dst_xstrdup(dst_http_req_method(req));
    if (strncasecmp(uri, "http://", 7) == 0 || strncasecmp(uri, "https://", 8) == 0) {
        uri = strchr(strstr(uri, "//") + 2, '/'); /* absolute form: keep the path */
        uri = uri ? uri : "/";
    }
    x->target = dst_xstrdup(*uri == '/' ? uri : "/");
    if (x->body_len) {
        x->body = dst_xmalloc(x->body_len);
        memcpy(x->body, body, x->body_len);
    }
    dst_http_req_headers(req, hdr_each, &c);
    if (!c.xff)
        hdr_add(&c, "X-Forwarded-For", c.client);
    hdr_add(&c, "X-Forwarded-Proto", "http");
    /* no headers of libcurl's own making */
    c.list = dst_curl.slist_append(c.list, "Expect:");
    if (!c.accept)
        c.list = dst_curl.slist_append(c.list, "Accept:");
    if (!c.ctype)
        c.list = dst_curl.slist_append(c.list, "Content-Type:");
    x->hdrs = c.list;
    x->has_key = c.key;
    dst_buf_init(&x->rhdr, MAX_RESP_HEADERS);
    dst_buf_init(&x->out, 0);
    dst_http_req_on_done(req, req_done, x);
    dst_http_req_defer(req, req_answer, x);
    pthread_mutex_lock(&p->mu);
    x->cmd_next = p->q_new;
    p->q_new = x;
    bool wake = wake_needed_locked(p);
    pthread_mutex_unlock(&p->mu);
    if (wake)
        dst_curl.multi_wakeup(p->multi);
}

void dst_http_proxy_kick(struct dst_http_proxy *p)
{
    pthread_mutex_lock(&p->mu);
    p->kick = true;
    bool wake = wake_needed_locked(p);
    pthread_mutex_unlock(&p->mu);
    if (wake)
        dst_curl.multi_wakeup(p->multi);
}

int dst_http_proxy_new(const struct dst_http_proxy_opts *opts, const struct dst_http_proxy_ops *ops,
                       void *ud, struct dst_http_proxy **out)
{
    struct dst_http_proxy *p = NULL;
    int rc = dst_curl_load();

    if (rc)
        return rc;
    p = dst_xnew(struct dst_http_proxy);
    p->opts = *opts;
    p->name = dst_xstrdup(opts->name ? opts->name : "proxy");
    p->none_message = dst_xstrdup(opts->none_message ? opts->none_message : "no upstream is up");
    p->id_header = opts->id_header ? dst_xstrdup(opts->id_header) : NULL;
    p->opts.attempts = opts->attempts > 0 ? opts->attempts : DEFAULT_ATTEMPTS;
    p->opts.connect_timeout_ms =
        opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : DEFAULT_CONNECT_MS;
    p->opts.header_timeout_ms =
        opts->header_timeout_ms > 0 ? opts->header_timeout_ms : DEFAULT_HEADER_MS;
    p->opts.buffer = opts->buffer ? opts->buffer : DEFAULT_BUFFER;
    p->opts.idle_timeout_ms = opts->idle_timeout_ms > 0 ? opts->idle_timeout_ms : DEFAULT_IDLE_MS;
    p->ops = *ops;
    p->ud = ud;
    p->next_deadline = INT64_MAX;
    pthread_mutex_init(&p->mu, NULL);
    p->multi = dst_curl.multi_init();
    /* idle connections kept for reuse: libcurl's default (4 per transfer running) closes and
       reopens connections to the upstreams under load */
    if (p->multi)
        dst_curl.multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, (long)KEEP_CONNECTIONS);
    if (!p->multi || pthread_create(&p->thread, NULL, proxy_thread_main, p) != 0) {
        dst_error("%s: cannot start the proxy", p->name);
        dst_http_proxy_free(p);
        return DST_EDEP;
    }
    p->started = true;
    *out = p;
    return 0;
}

void dst_http_proxy_free(struct dst_http_proxy *p)
{
    if (!p)
        return;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stopping = true;
        pthread_mutex_unlock(&p->mu);
        dst_curl.multi_wakeup(p->multi);
        pthread_join(p->thread, NULL);
    }
    for (int i = 0; i < p->nspare; i++)
        dst_curl.easy_cleanup(p->spare[i]);
    if (p->multi)
        dst_curl.multi_cleanup(p->multi);
    pthread_mutex_destroy(&p->mu);
    free(p->name);
    free(p->none_message);
    free(p->id_header);
    free(p);
}
