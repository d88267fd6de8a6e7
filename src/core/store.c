/* store.c - the results store: picks a backend by URL scheme and forwards to its ops table */
#include "core/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cfg_check.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store_backend.h"
#include "core/store_rollup_priv.h"

/* The part after "sqlite:", or NULL if url is not a sqlite URL with a path. */
static const char *sqlite_rest(const char *url)
{
    if (!url || strncmp(url, "sqlite:", 7) != 0 || url[7] == '\0')
        return NULL;
    return url + 7;
}

static bool is_postgres(const char *url)
{
    return url && (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0);
}

int dst_store_url_check(const char *url, char *err, size_t errlen)
{
    const char *why = NULL;

    if (sqlite_rest(url))
        return 0;
    if (is_postgres(url))
        return dst_store_pg_url_check(url, err, errlen);
    if (url && strcmp(url, "sqlite:") == 0)
        why = "sqlite: needs a path (sqlite:PATH or sqlite::memory:)";
    else
        why = "unknown store URL (use sqlite:PATH, sqlite::memory: or postgresql://...)";
    if (err && errlen)
        snprintf(err, errlen, "%s", why);
    return DST_EINVAL;
}

int dst_store_url_check_path(const char *url, char *err, size_t errlen)
{
    const char *path = sqlite_rest(url);

    if (!path || strcmp(path, ":memory:") == 0)
        return 0;
    return dst_cfg_check_file_rw(path, err, errlen);
}

int dst_store_open(const char *url, struct dst_store **out)
{
    char why[600];

    if (dst_store_url_check(url, why, sizeof(why)) != 0) {
        dst_error("store: %s", why);
        return DST_EINVAL;
    }
    if (is_postgres(url))
        return dst_store_pg_ops.open(url, out);
    return dst_store_sqlite_ops.open(sqlite_rest(url), out);
}

void dst_store_free(struct dst_store *s)
{
    if (!s)
        return;
    dst_store_feed_stop(s);
    s->ops->close(s);
}

int dst_store_schema_version(struct dst_store *s)
{
    return s->ops->schema_version(s);
}

int dst_store_insert(struct dst_store *s, struct dst_result *rs, size_t n, bool *created)
{
    if (n == 0)
        return 0;
    return s->ops->insert(s, rs, n, created);
}

int dst_store_insert_bulk(struct dst_store *s, struct dst_result *rs, size_t n, int64_t *created)
{
    bool *made = NULL;
    int rc = 0;

    *created = 0;
    if (n == 0)
        return 0;
    if (s->ops->insert_bulk)
        return s->ops->insert_bulk(s, rs, n, created);
    made = dst_xcalloc(n, sizeof(*made));
    rc = s->ops->insert(s, rs, n, made);
    for (size_t i = 0; rc == 0 && i < n; i++)
        *created += made[i];
    free(made);
    return rc;
}

int dst_store_analyze(struct dst_store *s)
{
    return s->ops->analyze ? s->ops->analyze(s) : 0;
}

int dst_store_get(struct dst_store *s, const char *id, struct dst_result *r)
{
    char norm[DST_UUID_LEN + 1];

    if (dst_uuid_normalize(id, norm) != 0)
        return DST_ENOTFOUND; /* ids are stored as lower-case UUIDs */
    return s->ops->get(s, norm, r);
}

void dst_store_query_init(struct dst_store_query *q)
{
    memset(q, 0, sizeof(*q));
    q->sort = DST_F_TIME;
    q->desc = true;
}

int dst_store_query_add(struct dst_store_query *q, struct dst_cond c)
{
    if (q->nconds >= DST_QUERY_MAX_CONDS)
        return DST_ETOOBIG;
    q->conds[q->nconds++] = c;
    return 0;
}

/* Backends build SQL from these enums, so out-of-range values are refused here. */
static int query_check(const struct dst_store_query *q)
{
    if (q->nconds < 0 || q->nconds > DST_QUERY_MAX_CONDS || (unsigned)q->sort >= DST_F_COUNT_)
        return DST_EINVAL;
    for (int i = 0; i < q->nconds; i++) {
        const struct dst_cond *c = &q->conds[i];
        if ((unsigned)c->field >= DST_F_COUNT_ || (unsigned)c->op > DST_OP_LT ||
            (unsigned)c->kind > DST_V_REAL || (c->kind == DST_V_TEXT && !c->s))
            return DST_EINVAL;
    }
    return 0;
}

int dst_store_query(struct dst_store *s, const struct dst_store_query *q, dst_store_row_fn fn,
                    void *ud)
{
    int rc = query_check(q);
    return rc ? rc : s->ops->query(s, q, fn, ud);
}

int dst_store_count(struct dst_store *s, const struct dst_store_query *q, int64_t *out)
{
    int rc = query_check(q);
    return rc ? rc : s->ops->count(s, q, out);
}

int dst_store_delete(struct dst_store *s, const char *id)
{
    char norm[DST_UUID_LEN + 1];
    struct dst_store_query q;
    int64_t n = 0;

    if (dst_uuid_normalize(id, norm) != 0)
        return DST_ENOTFOUND;
    dst_store_query_init(&q);
    dst_store_query_add(&q, (struct dst_cond){DST_F_ID, DST_OP_EQ, DST_V_TEXT, .s = norm});
    int rc = s->ops->delete_where(s, &q, &n);
    return rc ? rc : n ? 0 : DST_ENOTFOUND;
}

int dst_store_delete_where(struct dst_store *s, const struct dst_store_query *q, bool all,
                           bool dry_run, int64_t *count)
{
    int rc = query_check(q);

    if (rc == 0 && q->nconds == 0 && !all)
        rc = DST_EINVAL; /* everything goes only when asked for by name */
    if (rc)
        return rc;
    return dry_run ? s->ops->count(s, q, count) : s->ops->delete_where(s, q, count);
}

int dst_store_set_excluded(struct dst_store *s, const char *id, bool excluded)
{
    char norm[DST_UUID_LEN + 1];
    bool matched = false;

    if (dst_uuid_normalize(id, norm) != 0)
        return DST_ENOTFOUND;
    int rc = s->ops->set_excluded(s, norm, excluded, &matched);
    return rc ? rc : matched ? 0 : DST_ENOTFOUND;
}

int dst_store_version(struct dst_store *s, uint64_t *out)
{
    return s->ops->version(s, out);
}

int dst_store_series(struct dst_store *s, const struct dst_series_query *q,
                     struct dst_series_bucket **out, size_t *n)
{
    if (q->step_ms <= 0 || q->to_ms <= q->from_ms)
        return DST_EINVAL;
    /* (to - from) may overflow for extreme inputs: compare in unsigned arithmetic */
    uint64_t span = (uint64_t)q->to_ms - (uint64_t)q->from_ms;
    if ((span - 1) / (uint64_t)q->step_ms + 1 > 100000)
        return DST_EINVAL;
    if (!q->raw) {
        int rc = dst_store_rollup_series(s, q, out, n);
        if (rc != DST_ENOTFOUND)
            return rc;
    }
    return s->ops->series(s, q, out, n);
}

int dst_store_probes(struct dst_store *s, struct dst_probe_info **out, size_t *n)
{
    return s->ops->probes(s, out, n);
}

void dst_store_probes_free(struct dst_probe_info *p, size_t n)
{
    if (!p)
        return;
    for (size_t i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].location);
        dst_result_release(&p[i].last);
    }
    free(p);
}

#define SETTING_KEY_MAX 128

int dst_store_setting_get(struct dst_store *s, const char *key, json_t **out, int64_t *version)
{
    char *text = NULL, err[160];
    int64_t v = 0;

    if (!key || !*key || strlen(key) > SETTING_KEY_MAX)
        return DST_EINVAL;
    int rc = s->ops->setting_get(s, key, &text, &v);
    if (rc)
        return rc;
    json_t *j = dst_json_parse(text, strlen(text), err, sizeof(err));
    free(text);
    if (!j) {
        dst_error("store: setting '%s' is not JSON: %s", key, err);
        return DST_EDEP;
    }
    *out = j;
    if (version)
        *version = v;
    return 0;
}

int dst_store_setting_put(struct dst_store *s, const char *key, const json_t *value,
                          int64_t expected, int64_t *version)
{
    int64_t v = 0;

    if (!key || !*key || strlen(key) > SETTING_KEY_MAX || !value ||
        expected < DST_STORE_ANY_VERSION)
        return DST_EINVAL;
    char *text = dst_json_dumps(value, NULL);
    int rc = s->ops->setting_put(s, key, text, dst_datetime_now_ms(), expected, &v);
    free(text);
    if ((rc == 0 || rc == DST_ECONFLICT) && version)
        *version = v;
    return rc;
}

int dst_store_setting_each(struct dst_store *s, dst_store_setting_fn fn, void *ud)
{
    return s->ops->setting_each(s, fn, ud);
}

int dst_store_setting_put_text(struct dst_store *s, const char *key, const char *json,
                               int64_t updated_ms)
{
    char err[160];

    if (!key || !*key || strlen(key) > SETTING_KEY_MAX || !json)
        return DST_EINVAL;
    json_t *j = dst_json_parse(json, strlen(json), err, sizeof(err));
    if (!j)
        return DST_EINVAL;
    json_decref(j);
    int64_t version = 0; /* the target's own count of puts goes on */
    return s->ops->setting_put(s, key, json, updated_ms, DST_STORE_ANY_VERSION, &version);
}

int dst_store_ping(struct dst_store *s)
{
    return s->ops->ping(s);
}

int dst_store_backup(struct dst_store *s, const char *dest)
{
    if (!dest || !*dest || !s->ops->backup)
        return DST_EINVAL;
    return s->ops->backup(s, dest);
}
