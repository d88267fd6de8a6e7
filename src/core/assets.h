/* assets.h - files embedded into the binary at build time (web UI, Swagger UI, OpenAPI) */
#ifndef DST_ASSETS_H
#define DST_ASSETS_H

#include <stddef.h>

struct dst_asset {
    const char *path;  /* "/index.html", "/vendor/uPlot.iife.min.js", "/swagger/index.html" */
    const char *ctype; /* from the extension */
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted strong validator from the content hash */
};

/* The asset with exactly this path, or NULL. */
const struct dst_asset *dst_asset_find(const char *path);

/* All assets (for listings and tests); *n receives the count. */
const struct dst_asset *dst_assets_all(size_t *n);

struct dst_http_req;
struct dst_http_server;

/*
 * Replies with an asset: 200 with its Content-Type, ETag and "Cache-Control: no-cache", or 304
 * when If-None-Match matches the ETag. No copy (the data lives in the binary).
 */
int dst_assets_reply(struct dst_http_req *req, const struct dst_asset *a);

/*
 * Serves the embedded web UI on s: GET / (index.html), GET /configuration.json (the text of
 * config_json, copied), GET /swagger → 301 /swagger/, GET /swagger/ (Swagger UI), and a final
 * catch-all GET route (pattern "/" followed by "*") for every other asset path (404 JSON when
 * there is none). Call after the service's own routes, since the catch-all must come last.
 */
int dst_assets_mount(struct dst_http_server *s, const char *config_json);

#endif
