/* sse.c - server-sent events: a hub that fans events out to streaming HTTP replies */
#include "core/sse.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/mem.h"

#define EVENT_MAX (16u << 20) /* bytes in one formatted event */
#define PING      ": ping\n\n"
#define RETRY     "retry: 2000\n\n"

struct sse_event {
    uint64_t id;
    char *text; /* "id: N\n...\n\n" */
    size_t len;
};

struct sse_client {
    struct dst_sse_hub *hub;
    struct dst_http_stream *stream; /* NULL until the reply is queued */
    struct dst_buf out;             /* bytes not yet read start at off */
    size_t off;
    bool dropped; /* too far behind: end the stream now */
    bool linked;  /* in hub->clients */
    struct sse_client *prev, *next;
};

struct dst_sse_hub {
    pthread_mutex_t mu; /* guards everything below and every client */
    pthread_cond_t cv;
    pthread_t heartbeat;
    int heartbeat_ms;
    size_t max_buffer;
    bool closing;
    int refs; /* the owner's plus one per client whose stream is not done */
    struct sse_client *clients;
    size_t nclients;
    uint64_t last_id;
    uint64_t count; /* events published; the n-th sits at ring[n % DST_SSE_REPLAY] */
    bool clock_ids; /* ids from the wall clock (dst_sse_hub_clock_ids) */
    struct sse_event ring[DST_SSE_REPLAY];
};

static void hub_destroy(struct dst_sse_hub *hub)
{
    for (int i = 0; i < DST_SSE_REPLAY; i++)
        free(hub->ring[i].text);
    pthread_cond_destroy(&hub->cv);
    pthread_mutex_destroy(&hub->mu);
    free(hub);
}

/* Under the lock. */
static void client_unlink(struct sse_client *c)
{
    struct dst_sse_hub *hub = c->hub;

    if (!c->linked)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        hub->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->linked = false;
    hub->nclients--;
}

/*
 * Under the lock: queues n bytes for c. A client that would be more than max_buffer behind is
 * dropped: it leaves the hub at once and its stream ends on the next read.
 */
static void client_push(struct sse_client *c, const char *p, size_t n)
{
    if (c->dropped)
        return;
    if (c->off == c->out.len) {
        dst_buf_reset(&c->out);
        c->off = 0;
    } else if (c->off > 0) {
        memmove(c->out.data, c->out.data + c->off, c->out.len - c->off);
        c->out.len -= c->off;
        c->off = 0;
    }
    if (dst_buf_append(&c->out, p, n) != 0) {
        dst_info("sse: dropping a client more than %zu bytes behind", c->hub->max_buffer);
        c->dropped = true;
        client_unlink(c);
        dst_buf_release(&c->out);
        c->off = 0;
    }
    dst_http_stream_wake(c->stream);
}

/* The stream's read: hands out queued bytes; ends when dropped, or when closing and drained. */
static long client_read(void *ud, char *buf, size_t max)
{
    struct sse_client *c = ud;
    struct dst_sse_hub *hub = c->hub;
    long n = 0;

    pthread_mutex_lock(&hub->mu);
    size_t avail = c->out.len - c->off;
    if (c->dropped || (avail == 0 && hub->closing)) {
        n = DST_HTTP_STREAM_END;
    } else {
        size_t k = avail < max ? avail : max;
        if (k)
            memcpy(buf, c->out.data + c->off, k);
        c->off += k;
        n = (long)k;
    }
    pthread_mutex_unlock(&hub->mu);
    return n;
}

/* The stream is finished: leave the hub under its lock, so nobody wakes the stream again. */
static void client_done(void *ud)
{
    struct sse_client *c = ud;
    struct dst_sse_hub *hub = c->hub;

    pthread_mutex_lock(&hub->mu);
    client_unlink(c);
    bool last = --hub->refs == 0;
    pthread_mutex_unlock(&hub->mu);
    dst_buf_release(&c->out);
    free(c);
    if (last)
        hub_destroy(hub);
}

static void deadline_add(struct timespec *t, int ms)
{
    t->tv_sec += ms / 1000;
    t->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

/* Every heartbeat_ms: a comment line to every client (keeps proxies open, finds dead peers). */
static void *heartbeat_main(void *arg)
{
    struct dst_sse_hub *hub = arg;
    struct timespec dl;

    clock_gettime(CLOCK_MONOTONIC, &dl);
    deadline_add(&dl, hub->heartbeat_ms);
    pthread_mutex_lock(&hub->mu);
    while (!hub->closing) {
        if (pthread_cond_timedwait(&hub->cv, &hub->mu, &dl) != ETIMEDOUT)
            continue;
        for (struct sse_client *c = hub->clients, *next = NULL; c; c = next) {
            next = c->next; /* client_push may unlink c */
            client_push(c, PING, strlen(PING));
        }
        clock_gettime(CLOCK_MONOTONIC, &dl);
        deadline_add(&dl, hub->heartbeat_ms);
    }
    pthread_mutex_unlock(&hub->mu);
    return NULL;
}

int dst_sse_hub_new(int heartbeat_ms, size_t max_buffer, struct dst_sse_hub **out)
{
    struct dst_sse_hub *hub = NULL;
    pthread_condattr_t ca;

    if (heartbeat_ms < 0)
        return DST_EINVAL;
    hub = dst_xnew(struct dst_sse_hub);
    hub->heartbeat_ms = heartbeat_ms ? heartbeat_ms : 15000;
    hub->max_buffer = max_buffer ? max_buffer : 256 * 1024;
    hub->refs = 1;
    pthread_mutex_init(&hub->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&hub->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&hub->heartbeat, NULL, heartbeat_main, hub) != 0) {
        dst_error("sse: cannot start the heartbeat thread");
        hub_destroy(hub);
        return DST_EDEP;
    }
    *out = hub;
    return 0;
}

void dst_sse_hub_close(struct dst_sse_hub *hub)
{
    if (!hub)
        return;
    pthread_mutex_lock(&hub->mu);
    bool was = hub->closing;
    hub->closing = true;
    pthread_cond_broadcast(&hub->cv);
    for (struct sse_client *c = hub->clients; c; c = c->next)
        dst_http_stream_wake(c->stream);
    pthread_mutex_unlock(&hub->mu);
    if (!was)
        pthread_join(hub->heartbeat, NULL);
}

void dst_sse_hub_free(struct dst_sse_hub *hub)
{
    if (!hub)
        return;
    dst_sse_hub_close(hub);
    pthread_mutex_lock(&hub->mu);
    bool last = --hub->refs == 0;
    pthread_mutex_unlock(&hub->mu);
    if (last)
        hub_destroy(hub); /* else the last client's done frees it */
}

/* Parses a Last-Event-ID value; false if absent or not a number. */
static bool parse_id(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    if (!s || *s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return *s == '\0';
}

/* Under the lock: queues the kept events after id for c. */
static void client_replay(struct dst_sse_hub *hub, struct sse_client *c, uint64_t id)
{
    uint64_t first = hub->count > DST_SSE_REPLAY ? hub->count - DST_SSE_REPLAY : 0;

    for (uint64_t n = first; n < hub->count; n++) { /* oldest first */
        const struct sse_event *e = &hub->ring[n % DST_SSE_REPLAY];
        if (e->id > id)
            client_push(c, e->text, e->len);
    }
}

int dst_sse_hub_attach(struct dst_sse_hub *hub, struct dst_http_req *req)
{
    struct sse_client *c = dst_xnew(struct sse_client);
    struct dst_http_stream *st = NULL;
    uint64_t last = 0;
    bool replay = parse_id(dst_http_req_header(req, "Last-Event-ID"), &last);
    int rc = 0;

    c->hub = hub;
    dst_buf_init(&c->out, hub->max_buffer);
    dst_buf_puts(&c->out, RETRY);
    pthread_mutex_lock(&hub->mu);
    if (hub->closing) {
        pthread_mutex_unlock(&hub->mu);
        dst_buf_release(&c->out);
        free(c);
        return dst_http_reply_error(req, 503, "shutting down");
    }
    c->linked = true;
    c->next = hub->clients;
    if (hub->clients)
        hub->clients->prev = c;
    hub->clients = c;
    hub->nclients++;
    hub->refs++;
    if (replay)
        client_replay(hub, c, last);
    pthread_mutex_unlock(&hub->mu);
    dst_http_add_header(req, "Cache-Control", "no-cache");
    dst_http_add_header(req, "X-Accel-Buffering", "no");
    rc = dst_http_reply_stream(req, 200, "text/event-stream", client_read, client_done, c, &st);
    if (rc != 0)
        return rc; /* client_done already ran */
    /* The stream is read only after this handler returns, so nothing was missed meanwhile. */
    pthread_mutex_lock(&hub->mu);
    c->stream = st;
    pthread_mutex_unlock(&hub->mu);
    return 0;
}

/* Formats "id: N\nevent: E\ndata: ...\n\n" into b; each line of data becomes a data: line. */
static int event_format(struct dst_buf *b, uint64_t id, const char *event, const char *data)
{
    const char *p = data ? data : "";
    int rc = dst_buf_printf(b, "id: %llu\n", (unsigned long long)id);

    if (event && *event) {
        rc = rc ? rc : dst_buf_puts(b, "event: ");
        rc = rc ? rc : dst_buf_append(b, event, strcspn(event, "\r\n"));
        rc = rc ? rc : dst_buf_puts(b, "\n");
    }
    for (;;) {
        size_t n = strcspn(p, "\r\n");
        rc = rc ? rc : dst_buf_puts(b, "data: ");
        rc = rc ? rc : dst_buf_append(b, p, n);
        rc = rc ? rc : dst_buf_puts(b, "\n");
        p += n;
        if (!*p)
            break;
        p += (p[0] == '\r' && p[1] == '\n') ? 2 : 1;
    }
    return rc ? rc : dst_buf_puts(b, "\n");
}

uint64_t dst_sse_hub_publish(struct dst_sse_hub *hub, const char *event, const char *data)
{
    struct dst_buf b;
    uint64_t id = 0;

    dst_buf_init(&b, EVENT_MAX);
    pthread_mutex_lock(&hub->mu);
    id = hub->last_id + 1;
    if (hub->clock_ids) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
        id = now > id ? now : id;
    }
    hub->last_id = id;
    if (event_format(&b, id, event, data) != 0) {
        pthread_mutex_unlock(&hub->mu);
        dst_error("sse: event %s is over %u bytes; not sent", event ? event : "", EVENT_MAX);
        dst_buf_release(&b);
        return id;
    }
    struct sse_event *e = &hub->ring[hub->count++ % DST_SSE_REPLAY];
    free(e->text);
    e->id = id;
    e->text = dst_buf_detach(&b, &e->len);
    for (struct sse_client *c = hub->clients, *next = NULL; c; c = next) {
        next = c->next; /* client_push may unlink c */
        client_push(c, e->text, e->len);
    }
    pthread_mutex_unlock(&hub->mu);
    return id;
}

void dst_sse_hub_clock_ids(struct dst_sse_hub *hub)
{
    pthread_mutex_lock(&hub->mu);
    hub->clock_ids = true;
    pthread_mutex_unlock(&hub->mu);
}

size_t dst_sse_hub_clients(struct dst_sse_hub *hub)
{
    size_t n = 0;

    pthread_mutex_lock(&hub->mu);
    n = hub->nclients;
    pthread_mutex_unlock(&hub->mu);
    return n;
}
