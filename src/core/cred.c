/* cred.c - credentials: API tokens with scopes and browser sessions, kept hashed in the store */
#include "core/cred.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/datetime.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store.h"

#define PREFIX       "dstmc_"
#define PREFIX_LEN   6
#define SECRET_BYTES 32
#define TOUCH_MS     60000 /* a use is written at most this often per credential */
#define SECRET_MIN   16
#define SECRET_MAX   4096

static const struct {
    const char *word;
    unsigned bit;
} scope_words[] = {
    {"read", DST_SCOPE_READ}, {"ingest", DST_SCOPE_INGEST}, {"admin", DST_SCOPE_ADMIN}};

int dst_scopes_parse(const char *text, unsigned *out, char *err, size_t errlen)
{
    unsigned bits = 0;
    const char *p = text ? text : "";

    while (*p) {
        size_t n = strcspn(p, ", ");
        size_t i = 0;
        for (; n && i < sizeof(scope_words) / sizeof(scope_words[0]); i++) {
            if (strlen(scope_words[i].word) == n && strncmp(p, scope_words[i].word, n) == 0)
                break;
        }
        if (n && i == sizeof(scope_words) / sizeof(scope_words[0])) {
            snprintf(err, errlen, "'%.*s' is not a scope (read, ingest, admin)",
                     (int)(n > 40 ? 40 : n), p);
            return DST_EINVAL;
        }
        bits |= n ? scope_words[i].bit : 0;
        p += n + (p[n] ? 1 : 0);
    }
    if (!bits) {
        snprintf(err, errlen, "no scope given (read, ingest, admin)");
        return DST_EINVAL;
    }
    *out = bits;
    return 0;
}

void dst_scopes_format(unsigned scopes, char *out, size_t len)
{
    size_t n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < sizeof(scope_words) / sizeof(scope_words[0]); i++) {
        if (scopes & scope_words[i].bit)
            n += (size_t)snprintf(out + n, n < len ? len - n : 0, "%s%s", n ? "," : "",
                                  scope_words[i].word);
    }
}

bool dst_scopes_allow(unsigned have, unsigned need)
{
    return (have & DST_SCOPE_ADMIN) || (need && (have & need) == need);
}

static bool name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > DST_CRED_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isprint((unsigned char)name[i]))
            return false;
    }
    return true;
}

/* Splits "dstmc_ID_SECRET" into id and secret; false if text is not of that form. */
static bool split(const char *text, char id[DST_CRED_ID_LEN + 1], const char **secret)
{
    if (!text || strlen(text) != DST_CRED_TEXT_LEN || strncmp(text, PREFIX, PREFIX_LEN) != 0 ||
        text[PREFIX_LEN + DST_CRED_ID_LEN] != '_')
        return false;
    for (size_t i = PREFIX_LEN; i < DST_CRED_TEXT_LEN; i++) {
        if (i != PREFIX_LEN + DST_CRED_ID_LEN && !isxdigit((unsigned char)text[i]))
            return false;
    }
    memcpy(id, text + PREFIX_LEN, DST_CRED_ID_LEN);
    id[DST_CRED_ID_LEN] = '\0';
    *secret = text + PREFIX_LEN + DST_CRED_ID_LEN + 1;
    return true;
}

/*
 * Makes a fresh id and secret, stores row (its id and hash are filled in here), and writes the
 * credential's text and its id.
 */
static int make(struct dst_store *s, struct dst_store_cred *row, char text[DST_CRED_TEXT_LEN + 1],
                char id[DST_CRED_ID_LEN + 1])
{
    char secret[2 * SECRET_BYTES + 1], hash[DST_SHA256_HEX];
    int rc = DST_ECONFLICT;

    /* An id taken already (2^48 ids: only by a broken random source) is tried again. */
    for (int tries = 0; rc == DST_ECONFLICT && tries < 3; tries++) {
        rc = dst_random_hex(DST_CRED_ID_LEN / 2, id);
        rc = rc ? rc : dst_random_hex(SECRET_BYTES, secret);
        if (rc)
            break;
        dst_sha256_hex(secret, strlen(secret), hash);
        row->id = id;
        row->hash = hash;
        rc = dst_store_cred_add(s, row);
    }
    row->id = row->hash = NULL;
    if (rc == 0)
        snprintf(text, DST_CRED_TEXT_LEN + 1, PREFIX "%s_%s", id, secret);
    return rc;
}

static void fill(struct dst_cred *out, const char *id, const char *name, const char *parent,
                 unsigned scopes, bool session, int64_t expires_ms)
{
    snprintf(out->id, sizeof(out->id), "%s", id ? id : "");
    snprintf(out->name, sizeof(out->name), "%s", name ? name : "");
    snprintf(out->parent, sizeof(out->parent), "%s", parent ? parent : "");
    out->scopes = scopes;
    out->session = session;
    out->expires_ms = expires_ms;
}

int dst_cred_token_new(struct dst_store *s, const char *name, unsigned scopes, int64_t expires_ms,
                       char text[DST_CRED_TEXT_LEN + 1], struct dst_cred *out)
{
    char sc[32];

    if (!name_ok(name) || !(scopes & DST_SCOPE_ALL) || (scopes & ~(unsigned)DST_SCOPE_ALL))
        return DST_EINVAL;
    dst_scopes_format(scopes, sc, sizeof(sc));
    struct dst_store_cred row = {.kind = "token",
                                 .name = (char *)name,
                                 .scopes = sc,
                                 .created_ms = dst_datetime_now_ms(),
                                 .expires_ms = expires_ms};
    char id[DST_CRED_ID_LEN + 1];
    int rc = make(s, &row, text, id);
    if (rc == 0 && out)
        fill(out, id, name, NULL, scopes, false, expires_ms);
    return rc;
}

int dst_cred_session_new(struct dst_store *s, const struct dst_cred *by, const char *parent,
                         int64_t ttl_ms, char text[DST_CRED_TEXT_LEN + 1], struct dst_cred *out)
{
    char sc[32];
    int64_t now = dst_datetime_now_ms();

    if (!parent || !*parent || strlen(parent) >= sizeof(by->parent) || ttl_ms <= 0)
        return DST_EINVAL;
    dst_store_cred_purge(s, now); /* a failure here is not the login's */
    dst_scopes_format(by->scopes, sc, sizeof(sc));
    struct dst_store_cred row = {.kind = "session",
                                 .name = (char *)(by->name[0] ? by->name : "session"),
                                 .scopes = sc,
                                 .parent = (char *)parent,
                                 .created_ms = now,
                                 .expires_ms = now + ttl_ms};
    char id[DST_CRED_ID_LEN + 1];
    int rc = make(s, &row, text, id);
    if (rc == 0 && out)
        fill(out, id, row.name, parent, by->scopes, true, row.expires_ms);
    return rc;
}

int dst_cred_verify(struct dst_store *s, const char *text, bool session, struct dst_cred *out,
                    const char **why)
{
    char id[DST_CRED_ID_LEN + 1], hash[DST_SHA256_HEX], err[80];
    const char *secret = NULL;
    struct dst_store_cred row = {0};
    unsigned scopes = 0;
    int64_t now = dst_datetime_now_ms();
    const char *reason = NULL;
    int rc;

    if (!split(text, id, &secret)) {
        *why = "not a dstmc credential";
        return DST_EPERM;
    }
    rc = dst_store_cred_get(s, id, &row);
    if (rc == DST_ENOTFOUND) {
        *why = "unknown or revoked";
        return DST_EPERM;
    }
    if (rc)
        return rc;
    dst_sha256_hex(secret, strlen(secret), hash);
    if (!dst_secret_equal(hash, row.hash))
        reason = "wrong secret";
    else if (strcmp(row.kind, session ? "session" : "token") != 0)
        reason = session ? "a token, not a session" : "a session, not a token";
    else if (row.expires_ms && row.expires_ms <= now)
        reason = "expired";
    else if (dst_scopes_parse(row.scopes, &scopes, err, sizeof(err)) != 0)
        reason = "stored scopes unreadable";
    if (reason) {
        *why = reason;
        dst_store_cred_release(&row);
        return DST_EPERM;
    }
    fill(out, row.id, row.name, row.parent, scopes, session, row.expires_ms);
    if (now - row.used_ms >= TOUCH_MS)
        dst_store_cred_touch(s, id, now); /* best effort: a failed note fails no request */
    dst_store_cred_release(&row);
    return 0;
}

void dst_cred_csrf(const char *session_text, char out[DST_SHA256_HEX])
{
    dst_hmac_sha256_hex(session_text, "dstmc csrf", out);
}

/* The first line of the file at path, without its line end; NULL with a reason in err. */
static char *read_first_line(const char *path, char *err, size_t errlen)
{
    char buf[SECRET_MAX + 2];
    FILE *f = fopen(path, "r");

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (!fgets(buf, sizeof(buf), f))
        buf[0] = '\0';
    fclose(f);
    if (strlen(buf) > SECRET_MAX) {
        snprintf(err, errlen, "%s: the secret is longer than %d characters", path, SECRET_MAX);
        return NULL;
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    return dst_xstrdup(buf);
}

int dst_cred_secret_load(const char *env, const char *path, char **out, char *err, size_t errlen)
{
    char *v = NULL;

    *out = NULL;
    if (env && *env && path && *path) {
        snprintf(err, errlen, "give the token in the environment or in a file, not both");
        return DST_EINVAL;
    }
    if (path && *path) {
        v = read_first_line(path, err, errlen);
        if (!v)
            return DST_EINVAL;
    } else if (env && *env) {
        v = dst_xstrdup(env);
    } else {
        return 0;
    }
    size_t n = strlen(v);
    bool printable = true;
    for (size_t i = 0; i < n; i++)
        printable = printable && isgraph((unsigned char)v[i]);
    if (n < SECRET_MIN || n > SECRET_MAX || !printable) {
        snprintf(err, errlen, "the token must be %d to %d printable characters without spaces",
                 SECRET_MIN, SECRET_MAX);
        free(v);
        return DST_EINVAL;
    }
    *out = v;
    return 0;
}
