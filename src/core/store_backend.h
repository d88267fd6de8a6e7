/* store_backend.h - what a store backend implements (for store_*.c only) */
#ifndef DST_STORE_BACKEND_H
#define DST_STORE_BACKEND_H

#include "store.h"

struct dst_store_ops {
    const char *scheme; /* "sqlite", "postgresql" */
    /* rest: the URL after "sqlite:"; PostgreSQL's is the whole URL (libpq reads it) */
    int (*open)(const char *rest, struct dst_store **out);
    void (*close)(struct dst_store *s);
    int (*schema_version)(struct dst_store *s);
    int (*insert)(struct dst_store *s, struct dst_result *rs, size_t n, bool *created);
    int (*get)(struct dst_store *s, const char *id, struct dst_result *r);
    int (*query)(struct dst_store *s, const struct dst_store_query *q, dst_store_row_fn fn,
                 void *ud);
    int (*count)(struct dst_store *s, const struct dst_store_query *q, int64_t *out);
    int (*version)(struct dst_store *s, uint64_t *out);
    /* deletes q's rows (checked by store.c) in one transaction; *count: how many */
    int (*delete_where)(struct dst_store *s, const struct dst_store_query *q, int64_t *count);
    /* sets id's (normalised) excluded flag; *matched: whether the row exists */
    int (*set_excluded)(struct dst_store *s, const char *id, bool excluded, bool *matched);
    int (*series)(struct dst_store *s, const struct dst_series_query *q,
                  struct dst_series_bucket **out, size_t *n);
    int (*probes)(struct dst_store *s, struct dst_probe_info **out, size_t *n);
    int (*ping)(struct dst_store *s);
    /* a setting's JSON text (malloc'd, *out set only on success; DST_ENOTFOUND), and its put */
    int (*setting_get)(struct dst_store *s, const char *key, char **out);
    int (*setting_put)(struct dst_store *s, const char *key, const char *json, int64_t now_ms);
    int (*setting_each)(struct dst_store *s, dst_store_setting_fn fn, void *ud);
    /* credentials, as in store.h (ids and kinds already checked by store.c) */
    int (*cred_add)(struct dst_store *s, const struct dst_store_cred *c);
    int (*cred_get)(struct dst_store *s, const char *id, struct dst_store_cred *out);
    int (*cred_list)(struct dst_store *s, const char *kind, struct dst_store_cred **out, size_t *n);
    int (*cred_delete)(struct dst_store *s, const char *id, bool *deleted);
    int (*cred_touch)(struct dst_store *s, const char *id, int64_t used_ms);
    int (*cred_purge)(struct dst_store *s, int64_t now_ms);
    /* dst_store_backup (dest checked by store.c); NULL: the backend has none */
    int (*backup)(struct dst_store *s, const char *dest);
};

/* Every backend's struct starts with this. */
struct dst_store {
    const struct dst_store_ops *ops;
};

extern const struct dst_store_ops dst_store_sqlite_ops;
extern const struct dst_store_ops dst_store_pg_ops;

/* Whether libpq can read url (its reason in err otherwise): DST_EINVAL, without connecting. */
int dst_store_pg_url_check(const char *url, char *err, size_t errlen);

#endif
