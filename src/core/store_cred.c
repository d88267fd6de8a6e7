/* store_cred.c - the store's credentials: checks arguments, forwards to the backend */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/store_backend.h"

#define CRED_ID_MAX 64

static bool id_ok(const char *id)
{
    return id && *id && strlen(id) <= CRED_ID_MAX;
}

static bool kind_ok(const char *kind)
{
    return kind && (strcmp(kind, "token") == 0 || strcmp(kind, "session") == 0);
}

void dst_store_cred_release(struct dst_store_cred *c)
{
    if (!c)
        return;
    free(c->id);
    free(c->kind);
    free(c->name);
    free(c->scopes);
    free(c->hash);
    free(c->parent);
    memset(c, 0, sizeof(*c));
}

void dst_store_creds_free(struct dst_store_cred *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++)
        dst_store_cred_release(&c[i]);
    free(c);
}

int dst_store_cred_add(struct dst_store *s, const struct dst_store_cred *c)
{
    if (!id_ok(c->id) || !kind_ok(c->kind) || !c->name || !c->scopes || !c->hash)
        return DST_EINVAL;
    return s->ops->cred_add(s, c);
}

int dst_store_cred_get(struct dst_store *s, const char *id, struct dst_store_cred *out)
{
    return id_ok(id) ? s->ops->cred_get(s, id, out) : DST_ENOTFOUND;
}

int dst_store_cred_list(struct dst_store *s, const char *kind, struct dst_store_cred **out,
                        size_t *n)
{
    if (kind && !kind_ok(kind))
        return DST_EINVAL;
    return s->ops->cred_list(s, kind, out, n);
}

int dst_store_cred_delete(struct dst_store *s, const char *id, bool *deleted)
{
    if (!id_ok(id)) {
        if (deleted)
            *deleted = false;
        return 0;
    }
    return s->ops->cred_delete(s, id, deleted);
}

int dst_store_cred_touch(struct dst_store *s, const char *id, int64_t used_ms)
{
    return id_ok(id) ? s->ops->cred_touch(s, id, used_ms) : 0;
}

int dst_store_cred_purge(struct dst_store *s, int64_t now_ms)
{
    return s->ops->cred_purge(s, now_ms);
}
