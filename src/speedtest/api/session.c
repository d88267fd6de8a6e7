/* session.c - /api/v1/session: a browser logs in with a token and gets a session cookie */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cred.h"
#include "core/datetime.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/store.h"
#include "speedtest/api/api_priv.h"

#define SESSION_TTL_MS (30LL * 24 * 3600 * 1000) /* a login lasts 30 days */

/* Whether the page was served over TLS (by a proxy in front): the cookie is then Secure. */
static bool over_tls(struct dst_http_req *req)
{
    const char *p = dst_http_req_header(req, "X-Forwarded-Proto");
    return p && strcasecmp(p, "https") == 0;
}

void api_session_cookie(struct dst_http_req *req, char *name, size_t len)
{
    const char *host = dst_http_req_header(req, "Host");
    const char *colon = host ? strrchr(host, ':') : NULL;
    size_t digits = colon ? strspn(colon + 1, "0123456789") : 0;

    /* "[::1]:8080" has its port after the last ':', "[::1]" none (its last ':' is inside) */
    if (digits && digits <= 5 && !colon[1 + digits])
        snprintf(name, len, "dstmc_session_%s", colon + 1);
    else
        snprintf(name, len, "dstmc_session");
}

static void set_cookie(struct dst_http_req *req, const char *value, long max_age_s)
{
    char c[DST_CRED_TEXT_LEN + 128], name[32];

    api_session_cookie(req, name, sizeof(name));
    snprintf(c, sizeof(c), "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%ld%s", name, value,
             max_age_s, over_tls(req) ? "; Secure" : "");
    dst_http_add_header(req, "Set-Cookie", c);
}

/* What GET /api/v1/session says: who the request is, and what the UI may offer. */
static json_t *state_json(struct api *a, const struct api_who *w)
{
    char scopes[32], csrf[DST_SHA256_HEX], exp[DST_DATETIME_LEN];
    json_t *j = json_pack("{s:b, s:b}", "authenticated", w->known, "private", api_auth_private(a));

    if (!w->known)
        return j;
    dst_scopes_format(w->cred.scopes, scopes, sizeof(scopes));
    json_t *list = json_array();
    for (char *save = NULL, *p = strtok_r(scopes, ",", &save); p; p = strtok_r(NULL, ",", &save))
        json_array_append_new(list, json_string(p));
    json_object_set_new(j, "scopes", list);
    json_object_set_new(j, "name", json_string(w->cred.name));
    json_object_set_new(j, "via", json_string(w->session ? "session" : "token"));
    if (w->session) {
        dst_cred_csrf(w->text, csrf);
        json_object_set_new(j, "csrf", json_string(csrf));
        dst_datetime_format_utc(w->cred.expires_ms, exp);
        json_object_set_new(j, "expires", json_string(exp));
    }
    return j;
}

/* 200 with the session's state, never cached. */
static void reply_state(struct dst_http_req *req, struct api *a, const struct api_who *w)
{
    json_t *j = state_json(a, w);
    dst_http_add_header(req, "Cache-Control", "no-store");
    dst_http_reply_json(req, 200, j);
    json_decref(j);
}

/* GET /api/v1/session */
static void get_session(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    struct api_who w;

    if (!api_auth_check(a, req, API_OPEN, &w))
        return;
    reply_state(req, a, &w);
}

/* POST /api/v1/session {"token": "..."}: a session cookie for a valid token. */
static void post_session(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    struct api_who w;
    struct dst_cred by;
    char err[200], parent[64];
    size_t len = 0;

    if (!api_auth_check(a, req, API_OPEN, &w) || api_auth_throttled(a, req))
        return;
    const char *body = dst_http_req_body(req, &len);
    json_t *in = dst_json_parse(body, len, err, sizeof(err));
    json_t *tok = in ? json_object_get(in, "token") : NULL;
    if (!json_is_string(tok)) {
        dst_http_reply_error(req, 400, "%s", in ? "token: a string is needed" : err);
        json_decref(in);
        return;
    }
    int rc = api_auth_login(a, req, json_string_value(tok), &by, parent, sizeof(parent));
    json_decref(in);
    if (rc) {
        dst_http_reply_error(req, rc == DST_EPERM ? 401 : 503, "%s",
                             rc == DST_EPERM ? "that is not a valid token" : "store failed");
        return;
    }
    memset(&w, 0, sizeof(w));
    rc = dst_cred_session_new(a->store, &by, parent, SESSION_TTL_MS, w.text, &w.cred);
    if (rc)
        return (void)dst_http_reply_error(req, 503, "cannot open a session: %s", dst_strerror(rc));
    w.known = w.session = true;
    dst_info("%s logged in with the token '%s'", dst_http_req_client_ip(req), by.name);
    set_cookie(req, w.text, (long)(SESSION_TTL_MS / 1000));
    reply_state(req, a, &w);
}

/* DELETE /api/v1/session: logs out (ends the session, clears the cookie). */
static void delete_session(struct dst_http_req *req, void *ud)
{
    struct api *a = ud;
    struct api_who w;

    if (!api_auth_check(a, req, API_OPEN, &w))
        return;
    if (w.session)
        dst_store_cred_delete(a->store, w.cred.id, NULL);
    set_cookie(req, "", 0);
    dst_http_reply_static(req, 204, NULL, "", 0);
}

int api_session_mount(struct api *a, struct dst_http_server *s)
{
    int rc = dst_http_server_route(s, "GET", "/api/v1/session", get_session, a, 0, 0);
    rc = rc ? rc : dst_http_server_route(s, "POST", "/api/v1/session", post_session, a, 0, 8192);
    rc = rc ? rc : dst_http_server_route(s, "DELETE", "/api/v1/session", delete_session, a, 0, 0);
    return rc;
}
