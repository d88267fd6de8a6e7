/* web.c - `dstmc web`: the web UI on its own, pointed at an API (the original speedtest-web) */
#include <stdio.h>
#include <stdlib.h>

#include "core/assets.h"
#include "core/cfg.h"
#include "core/cfg_check.h"
#include "core/http_server.h"
#include "core/json.h"
#include "speedtest/services.h"

/* Liveness for orchestrators (Kubernetes probes, the image's HEALTHCHECK): the page is served. */
static void get_healthz(struct dst_http_req *req, void *ud)
{
    (void)ud;
    dst_http_reply_static(req, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

static int mount(struct dst_http_server *srv, void *ud)
{
    int rc = dst_http_server_route(srv, "GET", "/healthz", get_healthz, NULL, 0, 0);
    return rc ? rc : dst_assets_mount(srv, ud); /* copies the configuration.json text */
}

/* The API the page reads: a URL, a path on this host, or "" (this host). */
static int check_api(const char *v, char *err, size_t errlen)
{
    return v[0] == '/' ? 0 : dst_cfg_check_url_or_empty(v, err, errlen);
}

int web_main(int argc, char **argv)
{
    const char *listen = NULL, *api = NULL;
    bool access_log = true;
    struct dst_cfg_opt opts[] = {
        {"listen", DST_CFG_STR, &listen, "0.0.0.0:8082", "address to listen on", "HOST:PORT",
         .check = dst_cfg_check_hostport},
        {"api", DST_CFG_STR, &api, "http://localhost:8080",
         "the API the page reads (absolute URL, or a path like /backend on this host)", "URL", 0, 0,
         "SpeedTestApiBase", .check = check_api},
        {"access-log", DST_CFG_BOOL, &access_log, "true", "log one line per request"},
    };
    struct dst_cfg cfg = {"web", "the web UI on its own (writes configuration.json for it)", opts,
                          (int)(sizeof(opts) / sizeof(opts[0]))};
    struct dst_cfg_listener ls[] = {{"listen", NULL, false}};
    int rc = dst_cfg_parse(&cfg, argc, argv, stdout, stderr);
    if (rc == DST_CFG_EXIT)
        return 0;
    ls[0].value = listen;
    if (rc || dst_cfg_check_listeners(&cfg, stderr, ls, 1))
        return 2;
    if (cfg.check_only) {
        dst_cfg_ok(&cfg, stdout);
        return 0;
    }
    json_t *conf = json_pack("{s:s}", "speedTestApiBase", api);
    char *text = dst_json_dumps(conf, NULL);
    json_decref(conf);
    struct dst_http_server_opts so = {.listen = listen, .name = "web", .access_log = access_log};
    rc = dst_http_serve(&so, mount, text);
    free(text);
    return rc ? 1 : 0;
}
