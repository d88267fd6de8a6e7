/* cache.c - whole API responses, reused while the store has not changed */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "speedtest/api/api_priv.h"

struct blob {
    atomic_int refs;
    char *data;
    size_t len;
    const char *ctype; /* a string literal */
};

struct entry {
    char *key;
    uint64_t version;
    struct blob *blob;
};

struct api_cache {
    pthread_mutex_t lock;
    struct entry *entries;
    size_t max;
    size_t next; /* round-robin victim when full */
};

static void blob_unref(void *p)
{
    struct blob *b = p;
    if (b && atomic_fetch_sub(&b->refs, 1) == 1) {
        free(b->data);
        free(b);
    }
}

int api_cache_new(size_t max_entries, struct api_cache **out)
{
    struct api_cache *c = dst_xnew(struct api_cache);
    c->max = max_entries ? max_entries : 64;
    c->entries = dst_xcalloc(c->max, sizeof(*c->entries));
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return 0;
}

void api_cache_free(struct api_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->max; i++) {
        free(c->entries[i].key);
        blob_unref(c->entries[i].blob);
    }
    free(c->entries);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* The slot holding key, or NULL. Called with the lock held. */
static struct entry *find(struct api_cache *c, const char *key)
{
    for (size_t i = 0; i < c->max; i++) {
        if (c->entries[i].key && strcmp(c->entries[i].key, key) == 0)
            return &c->entries[i];
    }
    return NULL;
}

bool api_cache_reply(struct api_cache *c, struct dst_http_req *req, const char *key,
                     uint64_t version)
{
    struct blob *b = NULL;

    pthread_mutex_lock(&c->lock);
    struct entry *e = find(c, key);
    if (e && e->version == version) {
        b = e->blob;
        atomic_fetch_add(&b->refs, 1);
    }
    pthread_mutex_unlock(&c->lock);
    if (!b)
        return false;
    dst_http_reply_shared(req, 200, b->ctype, b->data, b->len, b, blob_unref);
    return true;
}

int api_cache_put_reply(struct api_cache *c, struct dst_http_req *req, const char *key,
                        uint64_t version, const char *ctype, char *body, size_t len)
{
    struct blob *b = dst_xnew(struct blob);
    atomic_init(&b->refs, 2); /* the cache's reference and the reply's */
    b->data = body;
    b->len = len;
    b->ctype = ctype;

    pthread_mutex_lock(&c->lock);
    struct entry *e = find(c, key);
    if (!e) {
        for (size_t i = 0; i < c->max && !e; i++)
            e = c->entries[i].key ? NULL : &c->entries[i];
    }
    if (!e) {
        e = &c->entries[c->next];
        c->next = (c->next + 1) % c->max;
    }
    struct blob *old = e->blob;
    if (!e->key || strcmp(e->key, key) != 0) {
        free(e->key);
        e->key = dst_xstrdup(key);
    }
    e->version = version;
    e->blob = b;
    pthread_mutex_unlock(&c->lock);

    blob_unref(old);
    return dst_http_reply_shared(req, 200, ctype, b->data, b->len, b, blob_unref);
}
