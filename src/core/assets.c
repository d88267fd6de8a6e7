/* assets.c - files embedded into the binary at build time (web UI, Swagger UI, OpenAPI) */
#include "core/assets.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/http_server.h"
#include "core/mem.h"

/* Generated into the build directory by cmake/embed.cmake. */
extern const struct dst_asset dst_assets_table[];
extern const size_t dst_assets_count;

/* The text served at /configuration.json; lives as long as the server. */
struct mount {
    char *config;
    size_t len;
};

const struct dst_asset *dst_asset_find(const char *path)
{
    if (!path)
        return NULL;
    for (size_t i = 0; i < dst_assets_count; i++) {
        if (strcmp(dst_assets_table[i].path, path) == 0)
            return &dst_assets_table[i];
    }
    return NULL;
}

const struct dst_asset *dst_assets_all(size_t *n)
{
    *n = dst_assets_count;
    return dst_assets_table;
}

/* Whether an If-None-Match value ("*" or a list of possibly weak tags) names etag. */
static bool etag_listed(const char *list, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = list;

    while (*p) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, ",");
        size_t k = n;
        while (k > 0 && (p[k - 1] == ' ' || p[k - 1] == '\t'))
            k--;
        const char *t = p;
        if (k >= 2 && t[0] == 'W' && t[1] == '/') {
            t += 2;
            k -= 2;
        }
        if ((k == 1 && t[0] == '*') || (k == elen && memcmp(t, etag, k) == 0))
            return true;
        p += n;
    }
    return false;
}

int dst_assets_reply(struct dst_http_req *req, const struct dst_asset *a)
{
    const char *inm = dst_http_req_header(req, "If-None-Match");

    dst_http_add_header(req, "ETag", a->etag);
    dst_http_add_header(req, "Cache-Control", "no-cache");
    if (inm && etag_listed(inm, a->etag))
        return dst_http_reply_static(req, 304, NULL, NULL, 0);
    return dst_http_reply_static(req, 200, a->ctype, a->data, a->len);
}

/* Replies with the asset at path, or 404. */
static void reply_path(struct dst_http_req *req, const char *path)
{
    const struct dst_asset *a = dst_asset_find(path);

    if (!a) {
        dst_http_reply_error(req, 404, "no such resource: %s", dst_http_req_path(req));
        return;
    }
    dst_assets_reply(req, a);
}

static void on_index(struct dst_http_req *req, void *ud)
{
    (void)ud;
    reply_path(req, "/index.html");
}

static void on_swagger(struct dst_http_req *req, void *ud)
{
    (void)ud;
    reply_path(req, "/swagger/index.html");
}

static void on_swagger_redirect(struct dst_http_req *req, void *ud)
{
    (void)ud;
    dst_http_add_header(req, "Location", "/swagger/");
    dst_http_reply_static(req, 301, NULL, NULL, 0);
}

static void on_config(struct dst_http_req *req, void *ud)
{
    const struct mount *m = ud;

    dst_http_add_header(req, "Cache-Control", "no-cache");
    dst_http_reply_static(req, 200, "application/json", m->config, m->len);
}

/* The catch-all GET route: any other embedded file, by its path. */
static void on_asset(struct dst_http_req *req, void *ud)
{
    const char *rest = dst_http_req_param(req, "*");
    char path[512];
    size_t n = strlen(rest);

    (void)ud;
    if (n + 2 > sizeof(path)) {
        dst_http_reply_error(req, 404, "no such resource");
        return;
    }
    path[0] = '/';
    memcpy(path + 1, rest, n + 1);
    reply_path(req, path);
}

static void mount_free(void *p)
{
    struct mount *m = p;

    if (!m)
        return;
    free(m->config);
    free(m);
}

int dst_assets_mount(struct dst_http_server *s, const char *config_json)
{
    struct mount *m = dst_xnew(struct mount);
    int rc = 0;

    m->config = dst_xstrdup(config_json ? config_json : "{}");
    m->len = strlen(m->config);
    dst_http_server_on_free(s, mount_free, m);
    rc = dst_http_server_route(s, "GET", "/", on_index, NULL, 0, 0);
    rc = rc ? rc : dst_http_server_route(s, "GET", "/configuration.json", on_config, m, 0, 0);
    rc = rc ? rc : dst_http_server_route(s, "GET", "/swagger", on_swagger_redirect, NULL, 0, 0);
    rc = rc ? rc : dst_http_server_route(s, "GET", "/swagger/", on_swagger, NULL, 0, 0);
    rc = rc ? rc : dst_http_server_route(s, "GET", "/*", on_asset, NULL, 0, 0);
    return rc;
}
