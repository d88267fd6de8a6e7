/* swagger.c - the OpenAPI document and Swagger UI's entry under the API's base path (basePath) */
#include <stdlib.h>
#include <string.h>

#include "core/assets.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "speedtest/api/api_priv.h"

/*
 * Behind a proxy that strips a path prefix (the workshop's ingress: /backend(/|$)(.*) → /$2),
 * the API sees /swagger but the browser asked for /backend/swagger. The original API takes the
 * prefix from its basePath setting and puts it into the Swagger document's servers; so do we,
 * and into the /swagger → /swagger/ redirect, which would otherwise leave the prefix behind.
 */
struct swagger {
    char *doc; /* the OpenAPI document with servers = [{url: base path}] */
    size_t len;
    char *location; /* BASE/swagger/ */
};

static void swagger_free(void *p)
{
    struct swagger *sw = p;

    if (!sw)
        return;
    free(sw->doc);
    free(sw->location);
    free(sw);
}

static void get_doc(struct dst_http_req *req, void *ud)
{
    const struct swagger *sw = ud;

    dst_http_add_header(req, "Cache-Control", "no-cache");
    dst_http_reply_static(req, 200, "application/json", sw->doc, sw->len);
}

static void get_redirect(struct dst_http_req *req, void *ud)
{
    const struct swagger *sw = ud;

    dst_http_add_header(req, "Location", sw->location);
    dst_http_reply_static(req, 301, NULL, NULL, 0);
}

bool api_base_path_is_root(const char *base)
{
    return !base || !*base || strcmp(base, "/") == 0;
}

int api_base_path_check(const char *value, char *err, size_t errlen)
{
    if (api_base_path_is_root(value))
        return 0;
    if (value[0] != '/') {
        snprintf(err, errlen, "'%s' must start with '/' (e.g. /backend)", value);
        return DST_EINVAL;
    }
    for (const char *p = value; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == '"' || *p == '?' || *p == '#' || *p == '\\' ||
            (unsigned char)*p >= 0x7f) {
            snprintf(err, errlen, "'%s': a path has no spaces, quotes, '?', '#' or '\\'", value);
            return DST_EINVAL;
        }
    }
    return 0;
}

/* The embedded document with its servers replaced by the base path; NULL if unreadable. */
static char *document(const char *base, size_t *len)
{
    const struct dst_asset *a = dst_asset_find("/api/v1/openapi.json");
    char err[256] = "";
    json_t *j = a ? dst_json_parse((const char *)a->data, a->len, err, sizeof(err)) : NULL;
    char *text = NULL;

    if (!j) {
        dst_error("api: the embedded OpenAPI document: %s", a ? err : "missing");
        return NULL;
    }
    json_object_set_new(j, "servers",
                        json_pack("[{s:s, s:s}]", "url", base, "description",
                                  "this API, under its base path (basePath)"));
    text = dst_json_dumps(j, len);
    json_decref(j);
    return text;
}

int api_swagger_mount(struct api *a, struct dst_http_server *s)
{
    const char *base = a->opts.base_path;
    struct swagger *sw = NULL;
    size_t n = 0;
    int rc = 0;

    if (api_base_path_is_root(base))
        return 0; /* the embedded document's relative servers and routes serve as they are */
    sw = dst_xnew(struct swagger);
    n = strlen(base);
    while (n > 1 && base[n - 1] == '/')
        n--;
    sw->location = dst_xasprintf("%.*s/swagger/", (int)n, base);
    char *trimmed = dst_xasprintf("%.*s", (int)n, base);
    sw->doc = document(trimmed, &sw->len);
    free(trimmed);
    dst_http_server_on_free(s, swagger_free, sw);
    if (!sw->doc)
        return DST_EIO;
    rc = dst_http_server_route(s, "GET", "/api/v1/openapi.json", get_doc, sw, 0, 0);
    rc = rc ? rc : dst_http_server_route(s, "GET", "/swagger/v1/swagger.json", get_doc, sw, 0, 0);
    rc = rc ? rc : dst_http_server_route(s, "GET", "/swagger", get_redirect, sw, 0, 0);
    return rc;
}
