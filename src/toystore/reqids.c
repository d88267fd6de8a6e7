/* reqids.c - the recent request ids: a bounded table, the oldest forgotten first */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "toystore/toystore.h"

/*
 * A ring of cap entries (the oldest is overwritten) with a chained hash over them: buckets
 * hold the index of a chain's first entry, each entry the next one's (-1 ends a chain).
 */
struct ts_reqids {
    struct ts_reqid *e;
    int *bucket;
    int cap, nbuckets, used, oldest;
};

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u; /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

struct ts_reqids *ts_reqids_new(int cap)
{
    struct ts_reqids *r = dst_xnew(struct ts_reqids);

    r->cap = cap > 0 ? cap : 1;
    r->nbuckets = r->cap * 2;
    r->e = dst_xcalloc((size_t)r->cap, sizeof(*r->e));
    r->bucket = dst_xmalloc((size_t)r->nbuckets * sizeof(*r->bucket));
    for (int i = 0; i < r->nbuckets; i++)
        r->bucket[i] = -1;
    return r;
}

void ts_reqids_free(struct ts_reqids *r)
{
    if (!r)
        return;
    free(r->e);
    free(r->bucket);
    free(r);
}

struct ts_reqid *ts_reqids_get(struct ts_reqids *r, const char *id)
{
    for (int i = r->bucket[hash(id) % (unsigned)r->nbuckets]; i >= 0; i = r->e[i].next)
        if (strcmp(r->e[i].id, id) == 0)
            return &r->e[i];
    return NULL;
}

/* Takes entry i out of its chain. */
static void unlink_entry(struct ts_reqids *r, int i)
{
    int *p = &r->bucket[hash(r->e[i].id) % (unsigned)r->nbuckets];

    while (*p >= 0 && *p != i)
        p = &r->e[*p].next;
    if (*p == i)
        *p = r->e[i].next;
}

struct ts_reqid *ts_reqids_put(struct ts_reqids *r, const char *id)
{
    int i = 0;

    if (r->used < r->cap) {
        i = r->used++;
    } else {
        i = r->oldest;
        r->oldest = (r->oldest + 1) % r->cap;
        unlink_entry(r, i);
    }
    struct ts_reqid *e = &r->e[i];
    memset(e, 0, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "%s", id);
    unsigned b = hash(e->id) % (unsigned)r->nbuckets;
    e->next = r->bucket[b];
    r->bucket[b] = i;
    return e;
}

void ts_reqids_each(struct ts_reqids *r, void (*fn)(void *ud, const struct ts_reqid *e), void *ud)
{
    for (int k = 0; k < r->used; k++)
        fn(ud, &r->e[(r->oldest + k) % r->cap]);
}
