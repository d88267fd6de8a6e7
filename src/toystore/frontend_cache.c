/* frontend_cache.c - the front end's query cache and the catalog event stream that keeps it true */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/http_client.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/sig.h"
#include "toystore/toystore.h"

#define NBUCKETS       256
#define MAX_ENTRIES    16384
#define IDLE_MS        15000 /* the catalog sends a heartbeat every 5 s */
#define RECONNECT_S    1
#define EVENT_LINE_MAX 1024

/*
 * Why no stale answer (docs/toystore.md): an entry is dropped by the push for a change made
 * elsewhere, and by a buy through this front end before its answer. A miss's fetch may begin
 * before a change and end after its drop: it must not put the old answer back. So each bucket
 * of names has a generation, bumped by every drop in it, and the whole cache an epoch, bumped
 * when it is emptied (stream started or lost); a miss notes both, and its put is kept only
 * when neither moved. While the stream is down the cache is not used at all: a change then
 * would go unseen.
 */
struct entry {
    char name[TS_NAME_MAX + 1];
    char *body;
    size_t len;
    struct entry *next;
};

struct fe_cache {
    bool on;
    char url[512];
    pthread_mutex_t mu; /* everything below */
    struct entry *bucket[NBUCKETS];
    uint64_t gen[NBUCKETS];
    uint64_t epoch;
    int count;
    bool up; /* the event stream is up */
    uint64_t hits, misses, drops, streams;
    /* the event thread */
    pthread_t thread;
    bool started;
    atomic_bool stop;
    char line[EVENT_LINE_MAX];
    size_t line_len;
    bool line_over;
    char event[32];
};

static unsigned bucket_of(const char *s)
{
    unsigned h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % NBUCKETS;
}

/* Under mu. */
static void clear_locked(struct fe_cache *c)
{
    for (int b = 0; b < NBUCKETS; b++) {
        while (c->bucket[b]) {
            struct entry *e = c->bucket[b];
            c->bucket[b] = e->next;
            free(e->body);
            free(e);
        }
    }
    c->count = 0;
    c->epoch++;
}

char *fe_cache_get(struct fe_cache *c, const char *name, size_t *len, struct fe_cache_token *t)
{
    unsigned b = bucket_of(name);
    char *body = NULL;

    pthread_mutex_lock(&c->mu);
    for (struct entry *e = c->up ? c->bucket[b] : NULL; e; e = e->next) {
        if (strcmp(e->name, name) == 0) {
            body = dst_xstrndup(e->body, e->len);
            *len = e->len;
            break;
        }
    }
    c->hits += body != NULL;
    c->misses += body == NULL;
    t->epoch = c->epoch;
    t->gen = c->gen[b];
    pthread_mutex_unlock(&c->mu);
    return body;
}

void fe_cache_put(struct fe_cache *c, const char *name, const char *body, size_t len,
                  const struct fe_cache_token *t)
{
    unsigned b = bucket_of(name);

    pthread_mutex_lock(&c->mu);
    bool keep = c->up && t->epoch == c->epoch && t->gen == c->gen[b] && c->count < MAX_ENTRIES;
    for (struct entry *e = c->bucket[b]; keep && e; e = e->next)
        keep = strcmp(e->name, name) != 0; /* another miss put it first */
    if (keep) {
        struct entry *e = dst_xnew(struct entry);
        snprintf(e->name, sizeof(e->name), "%s", name);
        e->body = dst_xstrndup(body, len);
        e->len = len;
        e->next = c->bucket[b];
        c->bucket[b] = e;
        c->count++;
    }
    pthread_mutex_unlock(&c->mu);
}

void fe_cache_drop(struct fe_cache *c, const char *name)
{
    unsigned b = bucket_of(name);

    pthread_mutex_lock(&c->mu);
    c->gen[b]++;
    c->drops++;
    for (struct entry **p = &c->bucket[b]; *p; p = &(*p)->next) {
        if (strcmp((*p)->name, name) == 0) {
            struct entry *e = *p;
            *p = e->next;
            free(e->body);
            free(e);
            c->count--;
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
}

json_t *fe_cache_stats(struct fe_cache *c)
{
    pthread_mutex_lock(&c->mu);
    json_t *j =
        json_pack("{s:b,s:b,s:I,s:I,s:I,s:I,s:i}", "on", c->on, "events", c->up, "hits",
                  (json_int_t)c->hits, "misses", (json_int_t)c->misses, "drops",
                  (json_int_t)c->drops, "streams", (json_int_t)c->streams, "entries", c->count);
    pthread_mutex_unlock(&c->mu);
    return j;
}

/* ---- the event stream ---- */

/* One complete line of the stream: "event: X", "data: {...}", or the blank end of an event. */
static void on_line(struct fe_cache *c, const char *line)
{
    if (strncmp(line, "event:", 6) == 0) {
        snprintf(c->event, sizeof(c->event), "%s", line + 6 + (line[6] == ' '));
    } else if (strncmp(line, "data:", 5) == 0 && strcmp(c->event, "invalidate") == 0) {
        const char *d = line + 5 + (line[5] == ' ');
        json_t *j = dst_json_parse(d, strlen(d), NULL, 0);
        const char *name = json_string_value(json_object_get(j, "name"));
        if (name)
            fe_cache_drop(c, name);
        else
            dst_warn("catalog event: no name in '%.100s'", d);
        json_decref(j);
    } else if (line[0] == '\0') {
        c->event[0] = '\0';
    }
}

static bool on_data(void *ud, const char *p, size_t n)
{
    struct fe_cache *c = ud;

    if (!p)
        return !c->stop;
    pthread_mutex_lock(&c->mu);
    if (!c->up) { /* subscribed: from now on every change is seen */
        clear_locked(c);
        c->up = true;
        c->streams++;
        dst_info("following the catalog's changes: the cache is on");
    }
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            c->line[c->line_len] = '\0';
            if (c->line_len > 0 && c->line[c->line_len - 1] == '\r')
                c->line[c->line_len - 1] = '\0';
            if (!c->line_over)
                on_line(c, c->line);
            c->line_len = 0;
            c->line_over = false;
        } else if (c->line_len + 1 < sizeof(c->line)) {
            c->line[c->line_len++] = p[i];
        } else {
            c->line_over = true;
        }
    }
    return !c->stop;
}

static void *follow(void *ud)
{
    struct fe_cache *c = ud;
    struct dst_http_client *client = NULL;
    struct dst_http_call call = {.url = c->url, .idle_ms = IDLE_MS};
    bool warned = false;

    if (dst_http_client_new(&client) != 0) {
        dst_error("cannot make an HTTP client: the cache stays off");
        return NULL;
    }
    while (!c->stop) {
        struct dst_http_resp resp;
        c->line_len = 0;
        c->line_over = false;
        c->event[0] = '\0';
        int rc = dst_http_client_stream(client, &call, on_data, c, &resp);
        pthread_mutex_lock(&c->mu);
        bool was_up = c->up;
        c->up = false;
        clear_locked(c);
        pthread_mutex_unlock(&c->mu);
        if (!c->stop && (was_up || !warned))
            dst_warn("lost the catalog's event stream (%s): the cache is off until it is back",
                     rc                   ? resp.err
                     : resp.status != 200 ? "bad status"
                                          : "it ended");
        warned = !was_up;
        dst_http_resp_release(&resp);
        for (int i = 0; i < RECONNECT_S * 10 && !c->stop; i++)
            dst_sig_wait(100);
    }
    dst_http_client_free(client);
    return NULL;
}

int fe_cache_new(const char *catalog_url, bool on, struct fe_cache **out)
{
    struct fe_cache *c = dst_xnew(struct fe_cache);

    c->on = on;
    snprintf(c->url, sizeof(c->url), "%s/events", catalog_url);
    pthread_mutex_init(&c->mu, NULL);
    if (on) {
        c->started = pthread_create(&c->thread, NULL, follow, c) == 0;
        if (!c->started) {
            fe_cache_free(c);
            return DST_EDEP;
        }
    }
    *out = c;
    return 0;
}

void fe_cache_free(struct fe_cache *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_mutex_unlock(&c->mu);
    if (c->started)
        pthread_join(c->thread, NULL);
    clear_locked(c);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
