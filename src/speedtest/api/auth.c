/* auth.c - who may do what: credentials, trusted networks, foreign pages, failed attempts */
#include <inttypes.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cidr.h"
#include "core/cred.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store.h"
#include "speedtest/api/api_priv.h"
#include "speedtest/api/compat.h"

#define FAIL_SLOTS     256   /* client addresses whose failures are remembered */
#define FAIL_WINDOW_MS 60000 /* failures are counted per address over this long */
#define FAIL_MAX       10    /* failures in a window before the address is refused */

struct fail {
    char ip[64];
    int64_t since_ms; /* start of its window */
    int count;
};

struct api_auth {
    char op_hash[DST_SHA256_HEX]; /* the operator's token's SHA-256; "" for none */
    char op_parent[32];           /* the parent of sessions opened with it */
    bool private_reads;
    struct dst_cidr_list trust;
    pthread_mutex_t lock; /* guards fails */
    struct fail fails[FAIL_SLOTS];
};

int api_auth_new(const struct api_opts *o, struct api_auth **out)
{
    struct api_auth *au = dst_xnew(struct api_auth);
    char err[160];

    if (o->operator_token && *o->operator_token) {
        dst_sha256_hex(o->operator_token, strlen(o->operator_token), au->op_hash);
        /* a new operator token ends the sessions opened with the old one */
        snprintf(au->op_parent, sizeof(au->op_parent), "operator:%.16s", au->op_hash);
    }
    au->private_reads = o->private_reads;
    if (dst_cidr_list_add(&au->trust, o->trust_ingest, o->ntrust_ingest, err, sizeof(err)) != 0) {
        dst_error("--trust-ingest: %s", err);
        api_auth_free(au);
        return DST_EINVAL;
    }
    pthread_mutex_init(&au->lock, NULL);
    *out = au;
    return 0;
}

void api_auth_free(struct api_auth *au)
{
    if (!au)
        return;
    dst_cidr_list_release(&au->trust);
    pthread_mutex_destroy(&au->lock);
    free(au);
}

bool api_auth_private(const struct api *a)
{
    return a->auth->private_reads;
}

/* ---- failed attempts ---- */

/* How soon a slot may be reused: free and expired ones first, then the oldest. */
static int64_t reuse_key(const struct fail *f, int64_t now)
{
    return f->count && now - f->since_ms < FAIL_WINDOW_MS ? f->since_ms : INT64_MIN;
}

/* ip's slot, or (add) a reused one for it; NULL if none and !add. Under the lock. */
static struct fail *fail_slot(struct api_auth *au, const char *ip, int64_t now, bool add)
{
    struct fail *victim = &au->fails[0];

    for (int i = 0; i < FAIL_SLOTS; i++) {
        struct fail *f = &au->fails[i];
        if (f->count && strcmp(f->ip, ip) == 0)
            return f;
        if (reuse_key(f, now) < reuse_key(victim, now))
            victim = f;
    }
    if (!add)
        return NULL;
    memset(victim, 0, sizeof(*victim));
    snprintf(victim->ip, sizeof(victim->ip), "%s", ip);
    victim->since_ms = now;
    return victim;
}

/* Counts a refused credential of req's client and logs it (never the credential itself). */
static void fail_note(struct api *a, struct dst_http_req *req, const char *what, const char *why)
{
    struct api_auth *au = a->auth;
    const char *ip = dst_http_req_client_ip(req);
    int64_t now = dst_datetime_now_ms();

    pthread_mutex_lock(&au->lock);
    struct fail *f = fail_slot(au, ip, now, true);
    if (now - f->since_ms >= FAIL_WINDOW_MS) {
        f->since_ms = now;
        f->count = 0;
    }
    int n = ++f->count;
    pthread_mutex_unlock(&au->lock);
    dst_warn("refused %s from %s for %s %s: %s (%d in the last minute)", what, ip,
             dst_http_req_method(req), dst_http_req_path(req), why, n);
    if (n == FAIL_MAX)
        dst_warn("%s failed %d times within a minute: its credentials are refused for a "
                 "minute",
                 ip, FAIL_MAX);
}

bool api_auth_throttled(struct api *a, struct dst_http_req *req)
{
    struct api_auth *au = a->auth;
    int64_t now = dst_datetime_now_ms(), left = 0;

    pthread_mutex_lock(&au->lock);
    struct fail *f = fail_slot(au, dst_http_req_client_ip(req), now, false);
    if (f && f->count >= FAIL_MAX && now - f->since_ms < FAIL_WINDOW_MS)
        left = FAIL_WINDOW_MS - (now - f->since_ms);
    pthread_mutex_unlock(&au->lock);
    if (!left)
        return false;
    char secs[24];
    snprintf(secs, sizeof(secs), "%" PRId64, (left + 999) / 1000);
    dst_http_add_header(req, "Retry-After", secs);
    dst_http_reply_error(req, 429, "too many failed attempts from %s: try again in %s s",
                         dst_http_req_client_ip(req), secs);
    return true;
}

/* ---- credentials ---- */

/* The operator's token, if text is it (compared by hash, in constant time). */
static bool is_operator(const struct api_auth *au, const char *text, struct dst_cred *out)
{
    char h[DST_SHA256_HEX];

    if (!au->op_hash[0])
        return false;
    dst_sha256_hex(text, strlen(text), h);
    if (!dst_secret_equal(h, au->op_hash))
        return false;
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "operator");
    out->scopes = DST_SCOPE_ALL;
    return true;
}

int api_auth_login(struct api *a, struct dst_http_req *req, const char *token, struct dst_cred *out,
                   char *parent, size_t parentlen)
{
    const char *why = "not a dstmc token";

    if (token && is_operator(a->auth, token, out)) {
        snprintf(parent, parentlen, "%s", a->auth->op_parent);
        return 0;
    }
    int rc = token ? dst_cred_verify(a->store, token, false, out, &why) : DST_EPERM;
    if (rc == 0)
        snprintf(parent, parentlen, "%s", out->id);
    else if (rc == DST_EPERM)
        fail_note(a, req, "a login", why);
    return rc;
}

/*
 * Reads the credential req carries into who: a bearer token (false, answered, if it is not a
 * valid one) or a session cookie (an invalid or expired one is as none).
 */
static bool identify(struct api *a, struct dst_http_req *req, struct api_who *who)
{
    const char *h = dst_http_req_header(req, "Authorization");
    const char *why = "not a dstmc token";
    int rc = DST_EPERM;

    memset(who, 0, sizeof(*who));
    if (h) {
        if (api_auth_throttled(a, req))
            return false;
        const char *tok = strncasecmp(h, "Bearer ", 7) == 0 ? h + 7 : NULL;
        if (tok && is_operator(a->auth, tok, &who->cred))
            rc = 0;
        else if (tok)
            rc = dst_cred_verify(a->store, tok, false, &who->cred, &why);
        else
            why = "not a bearer token";
        if (rc) {
            if (rc == DST_EPERM)
                fail_note(a, req, "a token", why);
            dst_http_add_header(req, "WWW-Authenticate", "Bearer");
            dst_http_reply_error(req, rc == DST_EPERM ? 401 : 503, "%s",
                                 rc == DST_EPERM ? "the bearer token is not valid (revoked?)"
                                                 : "the credential store failed");
            return false;
        }
        who->known = true;
        return true;
    }
    char name[32];
    api_session_cookie(req, name, sizeof(name));
    const char *cookie = dst_http_req_cookie(req, name);
    if (cookie && dst_cred_verify(a->store, cookie, true, &who->cred, &why) == 0) {
        bool operator_session = strncmp(who->cred.parent, "operator:", 9) == 0;
        if (operator_session && strcmp(who->cred.parent, a->auth->op_parent) != 0)
            return true; /* opened with an operator token that is no longer the operator's */
        who->known = who->session = true;
        snprintf(who->text, sizeof(who->text), "%s", cookie);
    }
    return true;
}

/* Whether the body, if any, is declared JSON (as the original's POST /SpeedTest takes it). */
static bool json_body(struct dst_http_req *req)
{
    const char *ct = dst_http_req_header(req, "Content-Type");
    size_t len = 0;

    dst_http_req_body(req, &len);
    if (!ct)
        return len == 0 && dst_http_req_body_bytes(req) == 0;
    return dst_http_json_ctype(ct);
}

static bool is_read(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

/* The checks every write passes first, whatever it needs: no foreign page, JSON only. */
static bool write_ok(struct dst_http_req *req)
{
    if (dst_http_req_foreign(req)) {
        const char *o = dst_http_req_header(req, "Origin");
        dst_warn("refused %s %s from a page of %s (%s)", dst_http_req_method(req),
                 dst_http_req_path(req), o ? o : "another site", dst_http_req_client_ip(req));
        dst_http_reply_error(req, 403,
                             "refused: a write from a page of another origin (%s); the API's "
                             "--cors-origin lists the origins that may write",
                             o ? o : "another site");
        return false;
    }
    if (!json_body(req)) {
        dst_http_reply_error(req, 415, "writes take a JSON body: Content-Type: application/json");
        return false;
    }
    return true;
}

static unsigned scope_needed(const struct api *a, enum api_access access)
{
    switch (access) {
    case API_READ:
        return a->auth->private_reads ? DST_SCOPE_READ : 0;
    case API_INGEST:
        return DST_SCOPE_INGEST;
    case API_ADMIN:
        return DST_SCOPE_ADMIN;
    default:
        return 0;
    }
}

bool api_auth_check(struct api *a, struct dst_http_req *req, enum api_access access,
                    struct api_who *who)
{
    struct api_who local;
    struct api_who *w = who ? who : &local;
    bool write = !is_read(dst_http_req_method(req));
    char csrf[DST_SHA256_HEX], have[32], need_text[32];

    if (write && !write_ok(req))
        return false;
    if (!identify(a, req, w))
        return false;
    if (access == API_OPEN)
        return true;
    if (w->session && write) {
        const char *sent = dst_http_req_header(req, "X-CSRF-Token");
        dst_cred_csrf(w->text, csrf);
        if (!sent || !dst_secret_equal(sent, csrf)) {
            dst_warn("refused %s %s from %s: the session's CSRF token is missing or wrong",
                     dst_http_req_method(req), dst_http_req_path(req), dst_http_req_client_ip(req));
            dst_http_reply_error(req, 403,
                                 "CSRF check failed: send the csrf of GET /api/v1/session as "
                                 "X-CSRF-Token");
            return false;
        }
    }
    unsigned need = scope_needed(a, access);
    if (!need)
        return true;
    if (!w->known) {
        if (access == API_INGEST &&
            dst_cidr_list_contains(&a->auth->trust, dst_http_req_client_ip(req)))
            return true;
        dst_http_add_header(req, "WWW-Authenticate", "Bearer");
        dst_http_reply_error(req, 401,
                             "this needs a credential: 'Authorization: Bearer TOKEN' (`dstmc token "
                             "new`) or a login");
        return false;
    }
    if (!dst_scopes_allow(w->cred.scopes, need)) {
        dst_scopes_format(w->cred.scopes, have, sizeof(have));
        dst_scopes_format(need, need_text, sizeof(need_text));
        dst_http_reply_error(req, 403, "the credential '%s' has the scopes %s; this needs %s",
                             w->cred.name, have, need_text);
        return false;
    }
    return true;
}

/* ---- routes ---- */

static void guarded(struct dst_http_req *req, void *ud)
{
    struct api_route *r = ud;

    if (api_auth_check(r->a, req, (enum api_access)r->access, NULL))
        r->fn(req, r->a);
}

int api_route(struct api *a, struct dst_http_server *s, const char *method, const char *pattern,
              dst_http_handler_fn fn, enum api_access access, unsigned flags, size_t max_body)
{
    if (a->nroutes == API_ROUTES_MAX)
        return DST_ETOOBIG;
    struct api_route *r = &a->routes[a->nroutes++];
    r->a = a;
    r->fn = fn;
    r->access = (int)access;
    return dst_http_server_route(s, method, pattern, guarded, r, flags, max_body);
}

/* ---- options and the first start ---- */

int api_access_cfg_check(const struct api_access_cfg *c, const char **key, char *err, size_t errlen)
{
    char *secret = NULL;
    int rc = dst_cred_secret_load(c->token, c->token_file, &secret, err, errlen);

    free(secret);
    *key = c->token_file && *c->token_file ? "token-file" : "token";
    return rc;
}

int api_access_cfg_apply(const struct api_access_cfg *c, struct api_opts *ao,
                         struct dst_http_server_opts *so, char **secret)
{
    char err[200];

    if (dst_cred_secret_load(c->token, c->token_file, secret, err, sizeof(err)) != 0) {
        dst_error("--%s: %s", c->token_file && *c->token_file ? "token-file" : "token", err);
        return DST_EINVAL;
    }
    ao->operator_token = *secret;
    ao->private_reads = c->private_reads;
    ao->trust_ingest = c->trust_ingest.v;
    ao->ntrust_ingest = (size_t)c->trust_ingest.n;
    so->cors_origins = c->cors_origins.v;
    so->ncors_origins = (size_t)c->cors_origins.n;
    return 0;
}

/* url with a wildcard host (0.0.0.0, [::]) made one a browser can open. */
static void browsable(const char *url, char *out, size_t len)
{
    const char *hosts[] = {"http://0.0.0.0:", "http://[::]:"};
    for (size_t i = 0; i < 2; i++) {
        if (strncmp(url, hosts[i], strlen(hosts[i])) == 0) {
            snprintf(out, len, "http://localhost:%s", url + strlen(hosts[i]));
            return;
        }
    }
    snprintf(out, len, "%s", url);
}

int api_auth_first_token(struct api *a, const char *url)
{
    struct dst_store_cred *list = NULL;
    size_t n = 0;
    char text[DST_CRED_TEXT_LEN + 1], base[300];

    if (!a->opts.first_token || a->auth->op_hash[0])
        return 0;
    int rc = dst_store_cred_list(a->store, "token", &list, &n);
    dst_store_creds_free(list, n);
    if (rc == 0 && n > 0)
        return 0;
    rc = rc ? rc : dst_cred_token_new(a->store, "first-start", DST_SCOPE_ADMIN, 0, text, NULL);
    if (rc) {
        dst_error("cannot make the first admin token: %s", dst_strerror(rc));
        return rc;
    }
    browsable(url, base, sizeof(base));
    dst_warn("no credential was configured, so an admin token named \"first-start\" was "
             "made; it is shown only this once. Open this link to log in, and keep it:");
    dst_warn("    %s/#token=%s", base, text);
    dst_warn("(`dstmc token new` makes more, `dstmc token list` lists them)");
    return 0;
}
