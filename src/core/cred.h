/* cred.h - credentials: API tokens with scopes and browser sessions, kept hashed in the store */
#ifndef DST_CRED_H
#define DST_CRED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/crypto.h"

struct dst_store;

/* What a credential may do. admin may do everything; read and ingest are separate. */
enum dst_scope {
    DST_SCOPE_READ = 1 << 0,   /* reads, where the API is private */
    DST_SCOPE_INGEST = 1 << 1, /* post results and heartbeats (a probe) */
    DST_SCOPE_ADMIN = 1 << 2,  /* everything: schedules, run-now, deletes, tokens */
};
#define DST_SCOPE_ALL (DST_SCOPE_READ | DST_SCOPE_INGEST | DST_SCOPE_ADMIN)

/* "read,ingest" (commas or spaces) → bits. DST_EINVAL naming the bad word in err. */
int dst_scopes_parse(const char *text, unsigned *out, char *err, size_t errlen);
/* bits → "read,ingest,admin" (at least 24 bytes in out). */
void dst_scopes_format(unsigned scopes, char *out, size_t len);
/* Whether scopes `have` allow what needs `need` (admin allows everything). */
bool dst_scopes_allow(unsigned have, unsigned need);

/*
 * A credential's text: "dstmc_" + a 12-hex-digit public id + "_" + a 64-hex-digit secret. The
 * store keeps the id and the secret's SHA-256 only; the text is shown once when made.
 */
#define DST_CRED_ID_LEN   12
#define DST_CRED_TEXT_LEN (6 + DST_CRED_ID_LEN + 1 + 64)
#define DST_CRED_NAME_MAX 100

/* What a verified credential is. */
struct dst_cred {
    char id[DST_CRED_ID_LEN + 1]; /* "" for the operator's own token (not stored) */
    char name[DST_CRED_NAME_MAX + 1];
    char parent[64]; /* a session's: the token id, or "operator:..." */
    unsigned scopes;
    bool session;
    int64_t expires_ms; /* 0: never */
};

/*
 * Makes a token named name (1..100 printable characters) with scopes: stores its hash, writes
 * its text into text (show it once: it cannot be read back) and fills out (may be NULL).
 * expires_ms 0: never. DST_EINVAL for a bad name or no scopes; the store's error otherwise.
 */
int dst_cred_token_new(struct dst_store *s, const char *name, unsigned scopes, int64_t expires_ms,
                       char text[DST_CRED_TEXT_LEN + 1], struct dst_cred *out);

/*
 * Opens a browser session for by (a verified credential: its scopes and name carry over),
 * valid for ttl_ms, with parent (by's id, or the caller's text for the operator's token).
 * Expired sessions are purged on the way. Writes the session's text into text.
 */
int dst_cred_session_new(struct dst_store *s, const struct dst_cred *by, const char *parent,
                         int64_t ttl_ms, char text[DST_CRED_TEXT_LEN + 1], struct dst_cred *out);

/*
 * Checks a presented credential text: a token (session false) or a session (true). On success
 * fills out and notes the use (at most once a minute per credential). DST_EPERM for every way
 * of not being one (malformed, unknown, wrong secret, other kind, expired), with the reason in
 * *why (for the log, never for the client); DST_EDEP if the store failed.
 */
int dst_cred_verify(struct dst_store *s, const char *text, bool session, struct dst_cred *out,
                    const char **why);

/* The CSRF token of a session: a keyed hash of its text, so nothing more is stored. */
void dst_cred_csrf(const char *session_text, char out[DST_SHA256_HEX]);

/*
 * Reads a secret for a client or a server: the value of an environment option (env, may be
 * NULL or "") or the first line of the file at path (may be NULL or ""), not both. *out is the
 * caller's (NULL when neither is given). DST_EINVAL with a reason in err: both given, the file
 * unreadable, or the secret empty, shorter than 16 characters, or not printable ASCII.
 */
int dst_cred_secret_load(const char *env, const char *path, char **out, char *err, size_t errlen);

/*
 * A client's options for its token for the API (a struct dst_cfg_opt initialiser): --token is
 * environment only (DSTMC_TOKEN), --token-file reads it from a file. dst_cred_secret_load
 * turns the two into the secret.
 */
#define DST_CRED_CLIENT_OPTS(token, token_file)                                 \
    {                                                                           \
        "token", DST_CFG_STR,     &(token), "", "the token to send to the API", \
        "TOKEN", .env_only = true},                                             \
    {                                                                           \
        "token-file", DST_CFG_STR, &(token_file), "",                           \
            "file whose first line is the token to send to the API", "PATH"     \
    }

#endif
